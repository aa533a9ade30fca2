//! `zoom`: a Zoom Team Chat incoming webhook in its rich format
//! (`?format=full` added unless the address sets a format), authenticated
//! with the verification token (the Secret's token) as the bare
//! `Authorization` value: the object as head, the severity as sub-head, the
//! message, then the metadata as fields.

use serde_json::{Value, json};

use super::{address_url, metadata, object_name, require_token};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "zoom")?;
    require_token(target, "zoom").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let mut url = address_url(target, "zoom")?;
    let token = require_token(target, "zoom")?;
    if !url
        .query_pairs()
        .any(|(key, value)| key == "format" && !value.is_empty())
    {
        url.query_pairs_mut().append_pair("format", "full");
    }
    let mut body = vec![json!({"type": "message", "text": event.message})];
    let fields: Vec<Value> = metadata(event)
        .map(|(key, value)| json!({"key": key, "value": value}))
        .collect();
    if !fields.is_empty() {
        body.push(json!({"type": "fields", "items": fields}));
    }
    let payload = json!({
        "content": {
            "head": {"text": object_name(event), "sub_head": {"text": event.severity.as_str()}},
            "body": body,
        },
    });
    poster
        .post_json(url.as_str(), &payload, |r| {
            r.header(reqwest::header::AUTHORIZATION, token)
        })
        .await?;
    Ok(())
}
