//! `pagerduty`: PagerDuty Events API v2 with spec.channel as the routing
//! (integration) key and the involved object's UID as dedup key. An error
//! triggers an incident; any other event resolves it (in case one is open),
//! and info events are also sent as change events. Progressing events are
//! skipped: only outcomes page anyone. Only the address's scheme and host
//! are used (`https://events.pagerduty.com`).

use reqwest::Url;
use serde_json::{Map, Value, json};

use super::{address_url, is_error, kind, metadata_map, name, rfc3339, uid};
use crate::forge::describe_reason;
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "pagerduty").map(drop)
}

/// `scheme://host[:port]` of the address.
fn endpoint(target: &Target) -> Result<String, NotifyError> {
    let url = address_url(target, "pagerduty")?;
    Ok(url.origin().ascii_serialization())
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    if event.reason == api::meta::reason::PROGRESSING {
        return Err(NotifyError::Skipped(
            "pagerduty does not post Progressing events".to_string(),
        ));
    }
    let endpoint = endpoint(target)?;
    let routing_key = target.channel.as_deref().unwrap_or_default();
    let enqueue = join(&endpoint, "/v2/enqueue")?;
    poster
        .post_json(enqueue.as_str(), &alert_event(event, routing_key), |r| r)
        .await?;
    if event.severity == api::event::Severity::Info {
        let change = join(&endpoint, "/v2/change/enqueue")?;
        poster
            .post_json(change.as_str(), &change_event(event, routing_key), |r| r)
            .await?;
    }
    Ok(())
}

fn join(endpoint: &str, path: &str) -> Result<Url, NotifyError> {
    Url::parse(&format!("{endpoint}{path}")).map_err(|e| {
        NotifyError::InvalidConfig(format!("pagerduty: the address is not a valid URL: {e}"))
    })
}

/// `reconciliation succeeded: kustomization/apps`: the reason split into
/// lower-case words, then the lower-case `kind/name`.
fn summary(event: &Event) -> String {
    let object = format!("{}/{}", kind(event), name(event)).to_lowercase();
    format!("{}: {object}", describe_reason(&event.reason))
}

/// `custom_details`: the message and the metadata (`null` without any, as Go encodes a nil map).
fn details(event: &Event) -> Value {
    let metadata = event.metadata.as_ref().map(|_| metadata_map(event));
    json!({"message": event.message, "metadata": metadata})
}

/// An Events API v2 event: `trigger` with a payload for errors, `resolve` otherwise.
fn alert_event(event: &Event, routing_key: &str) -> Value {
    let mut body = Map::new();
    body.insert("routing_key".to_string(), json!(routing_key));
    let action = if is_error(event) {
        "trigger"
    } else {
        "resolve"
    };
    body.insert("event_action".to_string(), json!(action));
    if !uid(event).is_empty() {
        body.insert("dedup_key".to_string(), json!(uid(event)));
    }
    if is_error(event) {
        body.insert(
            "payload".to_string(),
            json!({
                "summary": summary(event),
                "source": format!("Flux {}", event.reporting_controller),
                "severity": "error",
                "timestamp": rfc3339(event),
                "component": name(event),
                "group": kind(event),
                "custom_details": details(event),
            }),
        );
    }
    Value::Object(body)
}

/// A change event (recorded on the service's timeline, pages nobody).
fn change_event(event: &Event, routing_key: &str) -> Value {
    json!({
        "routing_key": routing_key,
        "payload": {
            "source": format!("Flux {}", event.reporting_controller),
            "summary": summary(event),
            "timestamp": rfc3339(event),
            "custom_details": details(event),
        },
    })
}
