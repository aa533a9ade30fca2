//! `webex`: a message to a Webex space through the messages API
//! (`https://webexapis.com/v1/messages`): `roomId` from spec.channel, the
//! event as Markdown, the Secret's bot token as bearer.

use std::fmt::Write as _;

use serde_json::{Map, Value, json};

use super::{address_url, is_error, kind, metadata, name, namespace, non_empty};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "webex").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "webex")?;
    let mut body = Map::new();
    if let Some(room) = non_empty(target.channel.as_deref()) {
        body.insert("roomId".to_string(), json!(room));
    }
    body.insert("markdown".to_string(), json!(markdown(event)));
    let token = target.token.clone().unwrap_or_default();
    poster
        .post_json(url.as_str(), &Value::Object(body), |r| {
            r.bearer_auth(&token)
        })
        .await?;
    Ok(())
}

fn markdown(event: &Event) -> String {
    let emoji = if is_error(event) { "💣" } else { "✅" };
    let mut text = format!(
        "{emoji} **{}/{}.{}**\n{}\n",
        kind(event).to_lowercase(),
        name(event),
        namespace(event),
        event.message
    );
    for (key, value) in metadata(event) {
        let _ = writeln!(text, ">**{key}**: {value}");
    }
    text
}
