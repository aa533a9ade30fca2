//! `opsgenie`: an alert through Opsgenie's alert API
//! (`https://api.opsgenie.com/v2/alerts`), authenticated with
//! `Authorization: GenieKey <token>`: `Kind/name` as message, the event's
//! message as description, the metadata plus `severity` as details.

use serde_json::json;

use super::{address_url, kind, metadata_map, name, require_token};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "opsgenie")?;
    require_token(target, "opsgenie").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "opsgenie")?;
    let token = require_token(target, "opsgenie")?;
    let mut details = metadata_map(event);
    details.insert("severity".to_string(), event.severity.as_str().to_string());
    let body = json!({
        "message": format!("{}/{}", kind(event), name(event)),
        "description": event.message,
        "details": details,
    });
    let authorization = format!("GenieKey {token}");
    poster
        .post_json(url.as_str(), &body, |r| {
            r.header(reqwest::header::AUTHORIZATION, authorization.as_str())
        })
        .await?;
    Ok(())
}
