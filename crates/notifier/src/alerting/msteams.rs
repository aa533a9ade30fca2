//! `msteams`: Microsoft Teams. An address whose host ends with
//! `.webhook.office.com` is a (deprecated) Office 365 connector and gets a
//! legacy `MessageCard`; any other address (a Teams Workflows webhook) gets
//! an Adaptive Card 1.4 message, as Flux decides.

use serde_json::{Value, json};

use super::{address_url, is_error, metadata, object_name};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// The Adaptive Card schema version Teams accepts.
const ADAPTIVE_CARD_VERSION: &str = "1.4";
/// The metadata key shown first among the facts.
const SUMMARY_KEY: &str = "summary";

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "msteams").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "msteams")?;
    let body = if is_office_connector(&url) {
        message_card(event)
    } else {
        adaptive_card(event)
    };
    poster.post_json(url.as_str(), &body, |r| r).await?;
    Ok(())
}

/// Whether the address is a (deprecated) Office 365 connector webhook.
fn is_office_connector(url: &reqwest::Url) -> bool {
    url.host_str()
        .is_some_and(|host| host.ends_with(".webhook.office.com"))
}

/// The Office 365 connector's `MessageCard`.
fn message_card(event: &Event) -> Value {
    let object = object_name(event);
    let facts: Vec<Value> = metadata(event)
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "themeColor": if is_error(event) { "FF0000" } else { "0076D7" },
        "summary": object,
        "sections": [{
            "activityTitle": event.message,
            "activitySubtitle": object,
            "facts": facts,
        }],
    })
}

/// A message with one Adaptive Card: the object in large bold text, the
/// message (red for errors), then the metadata as facts, `summary` first.
fn adaptive_card(event: &Event) -> Value {
    let mut message = json!({"type": "TextBlock", "text": event.message, "wrap": true});
    if is_error(event) {
        message["color"] = json!("attention");
    }
    let summary = metadata(event).filter(|(k, _)| *k == SUMMARY_KEY);
    let rest = metadata(event).filter(|(k, _)| *k != SUMMARY_KEY);
    let facts: Vec<Value> = summary
        .chain(rest)
        .map(|(title, value)| json!({"title": title, "value": value}))
        .collect();
    let mut fact_set = json!({"type": "FactSet"});
    if !facts.is_empty() {
        fact_set["facts"] = Value::Array(facts);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": ADAPTIVE_CARD_VERSION,
                "body": [{
                    "type": "Container",
                    "items": [
                        {"type": "TextBlock", "text": object_name(event), "size": "large", "weight": "bolder", "wrap": true},
                        message,
                        fact_set,
                    ],
                }],
                "msteams": {"width": "Full"},
            },
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "HelmRelease", "namespace": "apps", "name": "web"},
            "severity": "error",
            "timestamp": "2026-12-04T10:00:00Z",
            "message": "upgrade failed",
            "reason": "UpgradeFailed",
            "metadata": {"revision": "1.2.3"},
            "reportingController": "helm-controller",
        }))
        .unwrap()
    }

    #[test]
    fn office_connectors_are_told_apart_by_host() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(is_office_connector(&url(
            "https://contoso.webhook.office.com/webhookb2/x"
        )));
        assert!(!is_office_connector(&url(
            "https://prod-01.westus.logic.azure.com:443/workflows/x"
        )));
        assert!(!is_office_connector(&url(
            "https://webhook.office.com.evil.example/x"
        )));
    }

    #[test]
    fn legacy_message_card() {
        assert_eq!(
            message_card(&event()),
            json!({
                "@type": "MessageCard",
                "@context": "http://schema.org/extensions",
                "themeColor": "FF0000",
                "summary": "helmrelease/web.apps",
                "sections": [{
                    "activityTitle": "upgrade failed",
                    "activitySubtitle": "helmrelease/web.apps",
                    "facts": [{"name": "revision", "value": "1.2.3"}],
                }],
            })
        );
    }

    #[test]
    fn adaptive_card_without_metadata_has_an_empty_fact_set() {
        let mut event = event();
        event.metadata = None;
        event.severity = api::event::Severity::Info;
        let card = adaptive_card(&event);
        let items = &card["attachments"][0]["content"]["body"][0]["items"];
        assert_eq!(
            items[1],
            json!({"type": "TextBlock", "text": "upgrade failed", "wrap": true})
        );
        assert_eq!(items[2], json!({"type": "FactSet"}));
    }
}
