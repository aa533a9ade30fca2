//! `datadog`: an event through Datadog's events API
//! (`POST <scheme>://<host>/api/v1/events` of the address, e.g.
//! `https://api.datadoghq.eu`) with the Secret's token as `DD-API-KEY`.
//! Tags: `flux_reporting_controller`, `flux_reason`, `kube_kind`,
//! `kube_name`, `kube_namespace` and the metadata, all lower-case.

use serde_json::json;

use super::{address_url, is_error, kind, metadata, name, namespace, require_token, unix_seconds};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    require_token(target, "datadog")?;
    address_url(target, "datadog").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let token = require_token(target, "datadog")?;
    let mut url = address_url(target, "datadog")?;
    // Datadog's client keeps only the site's scheme and host.
    url.set_path("/api/v1/events");
    url.set_query(None);
    url.set_fragment(None);
    let mut tags = vec![
        format!("flux_reporting_controller:{}", event.reporting_controller),
        format!("flux_reason:{}", event.reason),
        format!("kube_kind:{}", kind(event)),
        format!("kube_name:{}", name(event)),
        format!("kube_namespace:{}", namespace(event)),
    ];
    tags.extend(metadata(event).map(|(key, value)| format!("{key}:{value}")));
    let tags: Vec<String> = tags.iter().map(|tag| tag.to_lowercase()).collect();
    // Keys in alphabetical order, as Datadog's Go client encodes them.
    let body = json!({
        "alert_type": if is_error(event) { "error" } else { "info" },
        "date_happened": unix_seconds(event),
        "source_type_name": "fluxcd",
        "tags": tags,
        "text": event.message,
        "title": format!("Events from the {} {}/{}", kind(event), name(event), namespace(event)),
    });
    poster
        .post_json(url.as_str(), &body, |r| {
            r.header("DD-API-KEY", token)
                .header(reqwest::header::ACCEPT, "application/json")
        })
        .await?;
    Ok(())
}
