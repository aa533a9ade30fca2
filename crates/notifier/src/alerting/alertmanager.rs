//! `alertmanager`: one firing alert POSTed to Prometheus Alertmanager's
//! `/api/v2/alerts` (the address). Labels: the metadata (except `summary`)
//! plus `alertname` (`Flux<Kind><Reason>`, the reason title-cased as Go's
//! `cases.Title` does), `severity`, `reason`, `kind`, `name`, `namespace`,
//! `reportingcontroller`; annotations: `message` and the `summary`.
//! `startsAt` is the event's time; `endsAt` is Go's zero time (unset), so
//! Alertmanager's `resolve_timeout` applies. Auth: the Secret's
//! username/password as basic auth, else its token as bearer.

use serde_json::json;

use super::{address_url, kind, metadata_map, name, namespace, non_empty, rfc3339};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// Go's zero `time.Time` in RFC 3339, what Flux sends as `endsAt`.
const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "alertmanager").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "alertmanager")?;
    let mut labels = metadata_map(event);
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("message".to_string(), event.message.clone());
    if let Some(summary) = labels.remove("summary") {
        annotations.insert("summary".to_string(), summary);
    }
    let fixed = [
        (
            "alertname",
            format!("Flux{}{}", kind(event), title_case(&event.reason)),
        ),
        ("severity", event.severity.as_str().to_string()),
        ("reason", event.reason.clone()),
        ("kind", kind(event).to_string()),
        ("name", name(event).to_string()),
        ("namespace", namespace(event).to_string()),
        ("reportingcontroller", event.reporting_controller.clone()),
    ];
    for (key, value) in fixed {
        labels.insert(key.to_string(), value);
    }
    let body = json!([{
        "status": "firing",
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(event),
        "endsAt": GO_ZERO_TIME,
    }]);
    // Flux's last auth option wins: basic auth when both are set.
    let username = non_empty(target.username.as_deref());
    let password = non_empty(target.password.as_deref());
    let token = non_empty(target.token.as_deref());
    poster
        .post_json(url.as_str(), &body, |request| {
            match (username, password, token) {
                (Some(user), Some(pass), _) => request.basic_auth(user, Some(pass)),
                (_, _, Some(token)) => request.bearer_auth(token),
                _ => request,
            }
        })
        .await?;
    Ok(())
}

/// Each word's first letter upper-case and the rest lower-case, as
/// `cases.Title(language.Und)` renders Flux reasons
/// (`ReconciliationSucceeded` → `Reconciliationsucceeded`).
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_word = false;
    for c in text.chars() {
        let word_char = c.is_alphanumeric() || c == '_' || c == '\'';
        if word_char && !in_word {
            out.extend(c.to_uppercase());
        } else if word_char {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        in_word = word_char;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_cases_reasons_like_go() {
        assert_eq!(
            title_case("ReconciliationSucceeded"),
            "Reconciliationsucceeded"
        );
        assert_eq!(title_case("health check failed"), "Health Check Failed");
        assert_eq!(title_case(""), "");
    }
}
