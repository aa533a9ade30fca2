//! `incident.io`: an event to an incident.io HTTP alert source
//! (`POST /v2/alert_events/http/<config id>`, the address) with the Secret's
//! token as bearer. Errors fire the alert, anything else resolves it; the
//! involved object's UID is the deduplication key. Progressing events are
//! skipped.

use serde_json::{Map, Value, json};

use super::{address_url, is_error, metadata_map, object_name, require_token, uid};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "incident.io")?;
    require_token(target, "incident.io").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    if event.reason == api::meta::reason::PROGRESSING {
        return Err(NotifyError::Skipped(
            "incident.io does not post Progressing events".to_string(),
        ));
    }
    let url = address_url(target, "incident.io")?;
    let token = require_token(target, "incident.io")?;
    let mut metadata = metadata_map(event);
    metadata.insert("severity".to_string(), event.severity.as_str().to_string());
    metadata.insert("reason".to_string(), event.reason.clone());
    if !event.reporting_controller.is_empty() {
        metadata.insert(
            "reportingController".to_string(),
            event.reporting_controller.clone(),
        );
    }
    let mut body = Map::new();
    body.insert(
        "title".to_string(),
        json!(format!("{}: {}", object_name(event), event.reason)),
    );
    body.insert(
        "status".to_string(),
        json!(if is_error(event) {
            "firing"
        } else {
            "resolved"
        }),
    );
    body.insert("deduplication_key".to_string(), json!(uid(event)));
    if !event.message.is_empty() {
        body.insert("description".to_string(), json!(event.message));
    }
    body.insert("metadata".to_string(), json!(metadata));
    poster
        .post_json(url.as_str(), &Value::Object(body), |r| r.bearer_auth(token))
        .await?;
    Ok(())
}
