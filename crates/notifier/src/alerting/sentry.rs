//! `sentry`: events to Sentry through its envelope endpoint, located by the
//! DSN in the address (`https://<public key>@<host>/<project id>` →
//! `POST https://<host>/api/<project id>/envelope/` with an `X-Sentry-Auth`
//! header carrying the key). spec.channel is the Sentry environment.
//!
//! As in Flux: an error event becomes a Sentry error event (the object as
//! transaction, the reporting controller as server name, the metadata as
//! extra); an info event becomes a transaction with one span tagged with
//! the object, controller, reason and metadata (for dashboards, no alert);
//! trace events are not sent. Unlike Flux's fire-and-forget SDK client,
//! a refused envelope is an error here.

use std::collections::BTreeMap;

use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde_json::{Map, Value, json};

use super::{ADDRESS_FIELD, kind, metadata_map, name, namespace, non_empty};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// Sentry's protocol version in the auth header.
const PROTOCOL_VERSION: u32 = 7;
/// How this client names itself to Sentry.
const CLIENT: &str = concat!("ferroflux-notifier/", env!("CARGO_PKG_VERSION"));

/// A parsed DSN.
struct Dsn {
    /// The envelope endpoint.
    envelope_url: Url,
    public_key: String,
    secret_key: Option<String>,
}

fn parse_dsn(target: &Target) -> Result<Dsn, NotifyError> {
    let invalid = |why: &str| {
        NotifyError::InvalidConfig(format!(
            "sentry: the {ADDRESS_FIELD} must be a Sentry DSN (https://<public key>@<host>/<project id>): {why}"
        ))
    };
    let address = target.address.trim();
    if address.is_empty() {
        return Err(invalid("it is empty"));
    }
    let url = Url::parse(address).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme is not http or https"));
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("no host"))?;
    if url.username().is_empty() {
        return Err(invalid("no public key"));
    }
    let path = url.path().trim_end_matches('/');
    let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
    if project.is_empty() {
        return Err(invalid("no project id"));
    }
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let envelope = format!(
        "{}://{host}{port}{prefix}/api/{project}/envelope/",
        url.scheme()
    );
    let envelope_url = Url::parse(&envelope).map_err(|e| invalid(&e.to_string()))?;
    Ok(Dsn {
        envelope_url,
        public_key: url.username().to_string(),
        secret_key: url.password().map(str::to_string),
    })
}

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    parse_dsn(target).map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let dsn = parse_dsn(target)?;
    let (item_type, mut item) = match event.severity {
        api::event::Severity::Error => ("event", error_event(event)),
        api::event::Severity::Info => ("transaction", transaction(event)),
        api::event::Severity::Trace => {
            return Err(NotifyError::Skipped(
                "sentry does not post trace events".to_string(),
            ));
        }
    };
    let event_id = random_hex::<16>();
    item.insert("event_id".to_string(), json!(event_id));
    item.insert("platform".to_string(), json!("other"));
    item.insert(
        "sdk".to_string(),
        json!({"name": "ferroflux.notifier", "version": env!("CARGO_PKG_VERSION")}),
    );
    if let Some(environment) = non_empty(target.channel.as_deref()) {
        item.insert("environment".to_string(), json!(environment));
    }
    let item = super::to_json(&Value::Object(item))?;
    let header = json!({
        "event_id": event_id,
        "sent_at": k8s_openapi::jiff::Timestamp::now().to_string(),
        "dsn": target.address.trim(),
    });
    let mut envelope = super::to_json(&header)?;
    envelope.push(b'\n');
    envelope.extend(super::to_json(
        &json!({"type": item_type, "length": item.len()}),
    )?);
    envelope.push(b'\n');
    envelope.extend(&item);
    envelope.push(b'\n');
    let mut auth = format!(
        "Sentry sentry_version={PROTOCOL_VERSION}, sentry_client={CLIENT}, sentry_key={}",
        dsn.public_key
    );
    if let Some(secret) = &dsn.secret_key {
        auth.push_str(&format!(", sentry_secret={secret}"));
    }
    poster
        .send(|| {
            poster
                .request(Method::POST, dsn.envelope_url.as_str())
                .header(CONTENT_TYPE, "application/x-sentry-envelope")
                .header("X-Sentry-Auth", auth.as_str())
                .body(envelope.clone())
        })
        .await?;
    Ok(())
}

/// `Kustomization: flux-system/apps`.
fn summary(event: &Event) -> String {
    format!("{}: {}/{}", kind(event), namespace(event), name(event))
}

fn error_event(event: &Event) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("level".to_string(), json!("error"));
    item.insert("message".to_string(), json!(event.message));
    item.insert("extra".to_string(), json!(metadata_map(event)));
    item.insert("server_name".to_string(), json!(event.reporting_controller));
    item.insert("transaction".to_string(), json!(summary(event)));
    item.insert(
        "timestamp".to_string(),
        json!(event.timestamp.0.to_string()),
    );
    item
}

fn transaction(event: &Event) -> Map<String, Value> {
    let mut tags = BTreeMap::new();
    tags.insert("flux_involved_object_kind", kind(event).to_string());
    tags.insert(
        "flux_involved_object_namespace",
        namespace(event).to_string(),
    );
    tags.insert("flux_involved_object_name", name(event).to_string());
    tags.insert(
        "flux_reporting_controller",
        event.reporting_controller.clone(),
    );
    tags.insert(
        "flux_reporting_instance",
        event.reporting_instance.clone().unwrap_or_default(),
    );
    tags.insert("flux_reason", event.reason.clone());
    let metadata = metadata_map(event);
    for (key, value) in &metadata {
        tags.insert(key.as_str(), value.clone());
    }
    let trace_id = random_hex::<16>();
    let span_id = random_hex::<8>();
    let time = event.timestamp.0.to_string();
    let mut item = Map::new();
    // Flux sends the span it started both as the trace context and as the only span.
    item.insert("type".to_string(), json!("transaction"));
    item.insert("transaction".to_string(), json!(summary(event)));
    item.insert("message".to_string(), json!(event.message));
    item.insert(
        "contexts".to_string(),
        json!({"trace": {"trace_id": trace_id, "span_id": span_id, "op": "event"}}),
    );
    item.insert("tags".to_string(), json!(tags));
    item.insert("start_timestamp".to_string(), json!(time));
    item.insert("timestamp".to_string(), json!(time));
    item.insert(
        "spans".to_string(),
        json!([{
            "trace_id": trace_id,
            "span_id": span_id,
            "op": "event",
            "tags": tags,
            "start_timestamp": time,
            "timestamp": time,
        }]),
    );
    item
}

/// `N` random bytes in hex (Sentry's event, trace and span ids).
fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(address: &str) -> Result<Dsn, NotifyError> {
        parse_dsn(&Target {
            address: address.to_string(),
            ..Target::default()
        })
    }

    #[test]
    fn dsn_locates_the_envelope_endpoint() {
        let d = dsn("https://abc@o1.ingest.sentry.io/42").unwrap();
        assert_eq!(
            d.envelope_url.as_str(),
            "https://o1.ingest.sentry.io/api/42/envelope/"
        );
        assert_eq!(d.public_key, "abc");
        let d = dsn("http://key:secret@127.0.0.1:9000/sentry/7").unwrap();
        assert_eq!(
            d.envelope_url.as_str(),
            "http://127.0.0.1:9000/sentry/api/7/envelope/"
        );
        assert_eq!(d.secret_key.as_deref(), Some("secret"));
        for bad in [
            "",
            "https://host/42",
            "https://key@host/",
            "ftp://key@host/1",
        ] {
            assert!(
                matches!(dsn(bad), Err(NotifyError::InvalidConfig(_))),
                "{bad}"
            );
        }
    }
}
