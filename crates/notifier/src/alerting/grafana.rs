//! `grafana`: an annotation through Grafana's annotations API in Graphite
//! format (`POST /api/annotations/graphite`, the address): the object as
//! text, the event's time, tags `flux`, the reporting controller, each
//! metadata `key: value` (colons inside turned into `|`), `kind`, `name` and
//! `namespace`. Auth: the Secret's token as bearer, else username/password
//! as basic auth.

use serde_json::json;

use super::{address_url, kind, metadata, name, namespace, non_empty, object_name, unix_seconds};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "grafana").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "grafana")?;
    let mut tags = vec!["flux".to_string(), event.reporting_controller.clone()];
    for (key, value) in metadata(event) {
        tags.push(format!(
            "{}: {}",
            key.replace(':', "|"),
            value.replace(':', "|")
        ));
    }
    tags.push(format!("kind: {}", kind(event)));
    tags.push(format!("name: {}", name(event)));
    tags.push(format!("namespace: {}", namespace(event)));
    let body = json!({
        "when": unix_seconds(event),
        "text": object_name(event),
        "tags": tags,
    });
    let token = non_empty(target.token.as_deref());
    let username = non_empty(target.username.as_deref());
    let password = non_empty(target.password.as_deref());
    poster
        .post_json(url.as_str(), &body, |request| {
            match (token, username, password) {
                (Some(token), _, _) => request.bearer_auth(token),
                (None, Some(user), Some(pass)) => request.basic_auth(user, Some(pass)),
                _ => request,
            }
        })
        .await?;
    Ok(())
}
