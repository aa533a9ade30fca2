//! Alerting services: chat, incident and webhook integrations.
//!
//! Each service renders a Flux [`Event`] in the request format Flux's
//! notification-controller sends it (`internal/notifier/<service>.go`):
//! same method, path, headers and JSON fields. One file per service;
//! [`validate`] checks a Provider once, [`post`] sends one event.
//!
//! `nats` publishes to a NATS subject instead of an HTTP endpoint;
//! `azureeventhub` and `googlepubsub` use their services' REST APIs where
//! Flux uses the vendors' SDKs. The type not implemented here (`otel`) is
//! [`NotifyError::Unsupported`], never a silent drop.

mod alertmanager;
mod azureeventhub;
mod datadog;
mod generic;
mod googlechat;
mod googlepubsub;
mod grafana;
mod incidentio;
mod lark;
mod mastodon;
mod matrix;
mod msteams;
mod nats;
mod opsgenie;
mod pagerduty;
mod sentry;
mod slack;
mod telegram;
mod webex;
mod zoom;
mod zulip;

use std::collections::BTreeMap;

use api::notification::ProviderType;
use reqwest::Url;

use crate::http::Poster;
use crate::{Event, NotifyError, Target, Transport, type_name};

/// Checks `target` for `provider_type` before any event is sent: what Flux
/// refuses when it builds the notifier (an unparsable address, a missing
/// token or channel) is refused here, naming the field.
pub fn validate(
    provider_type: ProviderType,
    target: &Target,
    transport: &Transport,
) -> Result<(), NotifyError> {
    match provider_type {
        ProviderType::Generic => generic::validate(target, false),
        ProviderType::GenericHmac => generic::validate(target, true),
        ProviderType::Slack => slack::validate(target),
        ProviderType::Discord => slack::validate_discord(target),
        ProviderType::Rocket => slack::validate_rocket(target),
        ProviderType::Msteams => msteams::validate(target),
        ProviderType::Googlechat => googlechat::validate(target),
        ProviderType::Googlepubsub => googlepubsub::validate(target),
        ProviderType::Webex => webex::validate(target),
        ProviderType::Matrix => matrix::validate(target),
        ProviderType::Lark => lark::validate(target),
        ProviderType::Telegram => telegram::validate(target),
        ProviderType::Opsgenie => opsgenie::validate(target),
        ProviderType::Pagerduty => pagerduty::validate(target),
        ProviderType::Alertmanager => alertmanager::validate(target),
        ProviderType::Azureeventhub => azureeventhub::validate(target),
        ProviderType::Grafana => grafana::validate(target),
        ProviderType::Datadog => datadog::validate(target),
        ProviderType::Sentry => sentry::validate(target),
        ProviderType::Zulip => zulip::validate(target),
        ProviderType::Zoom => zoom::validate(target),
        ProviderType::IncidentIo => incidentio::validate(target),
        ProviderType::Mastodon => mastodon::validate(target),
        ProviderType::Nats => nats::validate(target, transport),
        other => Err(NotifyError::Unsupported(type_name(other))),
    }
}

/// Sends `event` to the service.
///
/// Events asking for a Git commit status update (metadata `commit_status:
/// update`) are meant for forges: chat and incident services skip them, as
/// Flux does ([`NotifyError::Skipped`], nothing sent); the generic webhooks and Pub/Sub forward every event (Flux's
/// forwarder and Pub/Sub notifier do not skip them).
pub async fn post(
    provider_type: ProviderType,
    target: &Target,
    transport: &Transport,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let forwards_everything = matches!(
        provider_type,
        ProviderType::Generic | ProviderType::GenericHmac | ProviderType::Googlepubsub
    );
    if !forwards_everything && is_commit_status_update(event) {
        return Err(NotifyError::Skipped(format!(
            "{} does not post commit status updates (they are for Git forges)",
            type_name(provider_type)
        )));
    }
    match provider_type {
        ProviderType::Generic => generic::post(target, poster, event, false).await,
        ProviderType::GenericHmac => generic::post(target, poster, event, true).await,
        ProviderType::Slack => slack::post(target, poster, event).await,
        ProviderType::Discord => slack::post_discord(target, poster, event).await,
        ProviderType::Rocket => slack::post_rocket(target, poster, event).await,
        ProviderType::Msteams => msteams::post(target, poster, event).await,
        ProviderType::Googlechat => googlechat::post(target, poster, event).await,
        ProviderType::Googlepubsub => googlepubsub::post(target, transport, event).await,
        ProviderType::Webex => webex::post(target, poster, event).await,
        ProviderType::Matrix => matrix::post(target, poster, event).await,
        ProviderType::Lark => lark::post(target, poster, event).await,
        ProviderType::Telegram => telegram::post(target, poster, event).await,
        ProviderType::Opsgenie => opsgenie::post(target, poster, event).await,
        ProviderType::Pagerduty => pagerduty::post(target, poster, event).await,
        ProviderType::Alertmanager => alertmanager::post(target, poster, event).await,
        ProviderType::Azureeventhub => azureeventhub::post(target, poster, event).await,
        ProviderType::Grafana => grafana::post(target, poster, event).await,
        ProviderType::Datadog => datadog::post(target, poster, event).await,
        ProviderType::Sentry => sentry::post(target, poster, event).await,
        ProviderType::Zulip => zulip::post(target, poster, event).await,
        ProviderType::Zoom => zoom::post(target, poster, event).await,
        ProviderType::IncidentIo => incidentio::post(target, poster, event).await,
        ProviderType::Mastodon => mastodon::post(target, poster, event).await,
        ProviderType::Nats => nats::post(target, transport, event).await,
        other => Err(NotifyError::Unsupported(type_name(other))),
    }
}

/// Whether the event only asks forges to update a commit status. The
/// controller may pass metadata with or without the `<group>/` prefix.
fn is_commit_status_update(event: &Event) -> bool {
    event.metadata_value(api::event::METADATA_COMMIT_STATUS)
        == Some(api::event::COMMIT_STATUS_UPDATE)
        || event.has_commit_status_update()
}

/// Where the Provider's `address` comes from, for error messages.
const ADDRESS_FIELD: &str = "address (spec.address or the Secret's `address` key)";

/// The Provider's address as an absolute `http(s)` URL, as Flux parses it
/// (`url.ParseRequestURI`) before sending anything. The address itself is
/// not repeated in errors: webhook URLs carry credentials.
fn address_url(target: &Target, service: &str) -> Result<Url, NotifyError> {
    let address = target.address.trim();
    if address.is_empty() {
        return Err(NotifyError::InvalidConfig(format!(
            "{service} needs an {ADDRESS_FIELD}"
        )));
    }
    parse_http_url(address, service)
}

/// `value` as an absolute `http(s)` URL.
fn parse_http_url(value: &str, service: &str) -> Result<Url, NotifyError> {
    let url = Url::parse(value).map_err(|e| {
        NotifyError::InvalidConfig(format!(
            "{service}: the {ADDRESS_FIELD} is not a valid URL: {e}"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(NotifyError::InvalidConfig(format!(
            "{service}: the {ADDRESS_FIELD} must be an http:// or https:// URL with a host, not scheme '{}'",
            url.scheme()
        )));
    }
    Ok(url)
}

/// The Secret's `token`, required by `service`.
fn require_token<'a>(target: &'a Target, service: &str) -> Result<&'a str, NotifyError> {
    match target.token.as_deref() {
        Some(token) if !token.is_empty() => Ok(token),
        _ => Err(NotifyError::InvalidConfig(format!(
            "{service} needs a token: set the `token` key in the Secret of spec.secretRef"
        ))),
    }
}

/// `spec.channel`, required by `service` (`what` says what the channel is).
fn require_channel<'a>(
    target: &'a Target,
    service: &str,
    what: &str,
) -> Result<&'a str, NotifyError> {
    match target.channel.as_deref() {
        Some(channel) if !channel.is_empty() => Ok(channel),
        _ => Err(NotifyError::InvalidConfig(format!(
            "{service} needs spec.channel ({what})"
        ))),
    }
}

/// A non-empty optional string.
fn non_empty(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// `kustomization/apps.flux-system`: Flux's name for the involved object in
/// chat messages (lower-case kind, name, dot, namespace).
fn object_name(event: &Event) -> String {
    let object = &event.involved_object;
    format!(
        "{}/{}.{}",
        object.kind.as_deref().unwrap_or_default().to_lowercase(),
        object.name.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default()
    )
}

fn kind(event: &Event) -> &str {
    event.involved_object.kind.as_deref().unwrap_or_default()
}

fn name(event: &Event) -> &str {
    event.involved_object.name.as_deref().unwrap_or_default()
}

fn namespace(event: &Event) -> &str {
    event
        .involved_object
        .namespace
        .as_deref()
        .unwrap_or_default()
}

fn uid(event: &Event) -> &str {
    event.involved_object.uid.as_deref().unwrap_or_default()
}

/// The event's metadata in key order (Go ranges over a map in random order;
/// sorted keys keep messages stable).
fn metadata(event: &Event) -> impl Iterator<Item = (&str, &str)> {
    event
        .metadata
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str()))
}

/// The metadata as an owned map (serialised with sorted keys, as Go encodes maps).
fn metadata_map(event: &Event) -> BTreeMap<String, String> {
    event.metadata.clone().unwrap_or_default()
}

fn is_error(event: &Event) -> bool {
    event.severity == api::event::Severity::Error
}

/// The event's time in seconds since the epoch.
fn unix_seconds(event: &Event) -> i64 {
    event.timestamp.0.as_second()
}

/// The event's time as Go's `time.RFC3339` prints it (UTC, whole seconds).
fn rfc3339(event: &Event) -> String {
    event.timestamp.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A JSON body: request bodies are built from values that always encode.
fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, NotifyError> {
    serde_json::to_vec(value).map_err(|e| {
        NotifyError::InvalidConfig(format!("the event cannot be encoded as JSON: {e}"))
    })
}

/// `err` with every occurrence of `secret` replaced, for services whose
/// credentials travel in the URL path (Telegram's bot token).
fn hide_secret(err: NotifyError, secret: &str) -> NotifyError {
    if secret.is_empty() {
        return err;
    }
    let hide = |s: String| s.replace(secret, "<token>");
    match err {
        NotifyError::Status {
            method,
            url,
            status,
            body,
        } => NotifyError::Status {
            method,
            url: hide(url),
            status,
            body: hide(body),
        },
        NotifyError::Transport {
            method,
            url,
            message,
        } => NotifyError::Transport {
            method,
            url: hide(url),
            message: hide(message),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_must_be_an_http_url() {
        let target = |address: &str| Target {
            address: address.to_string(),
            ..Target::default()
        };
        assert!(address_url(&target("https://hooks.example.com/x"), "slack").is_ok());
        for bad in [
            "",
            "  ",
            "not a url",
            "/relative/path",
            "ftp://host/x",
            "mailto:a@b",
        ] {
            let err = address_url(&target(bad), "slack").unwrap_err();
            assert!(matches!(err, NotifyError::InvalidConfig(_)), "{bad}: {err}");
            assert!(err.to_string().contains("address"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_hidden_from_errors() {
        let err = NotifyError::Status {
            method: "POST".into(),
            url: "https://api.telegram.org/bot123:abc/sendMessage".into(),
            status: 401,
            body: "bad token 123:abc".into(),
        };
        let text = hide_secret(err, "123:abc").to_string();
        assert!(!text.contains("123:abc"), "{text}");
        assert!(text.contains("bot<token>/sendMessage"), "{text}");
    }
}
