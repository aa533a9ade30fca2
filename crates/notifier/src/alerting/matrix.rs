//! `matrix`: a text message to a Matrix room through the client-server API:
//! `PUT <homeserver>/_matrix/client/r0/rooms/<spec.channel>/send/m.room.message/<txn>`
//! with the Secret's access token as bearer. The transaction id is the SHA-1
//! of the event's JSON, so a retried event is not posted twice.

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::json;
use sha1::{Digest, Sha1};

use super::{address_url, is_error, metadata, object_name, to_json};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "matrix").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let mut url = address_url(target, "matrix")?;
    let txn = hex::encode(Sha1::digest(to_json(event)?));
    let room = target.channel.as_deref().unwrap_or_default();
    if let Ok(mut segments) = url.path_segments_mut() {
        // Pushed as segments: a room id's `#` or `/` is escaped, not a new URL part.
        segments.pop_if_empty().extend([
            "_matrix",
            "client",
            "r0",
            "rooms",
            room,
            "send",
            "m.room.message",
            &txn,
        ]);
    }
    let emoji = if is_error(event) { "🚨" } else { "💫" };
    let mut body = format!("{emoji} {}\n{}\n", object_name(event), event.message);
    for (key, value) in metadata(event) {
        let _ = writeln!(body, "- {key}: {value}");
    }
    let payload = to_json(&json!({"body": body, "msgtype": "m.text"}))?;
    let token = target.token.clone().unwrap_or_default();
    poster
        .send(|| {
            poster
                .request(Method::PUT, url.as_str())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .bearer_auth(&token)
                .body(payload.clone())
        })
        .await?;
    Ok(())
}
