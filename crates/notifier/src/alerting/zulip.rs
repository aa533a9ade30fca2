//! `zulip`: a stream message through Zulip's REST API
//! (`POST <server>/api/v1/messages`, the address's path replaced), form
//! encoded, with the bot's e-mail and API key (the Secret's username and
//! password) as basic auth. spec.channel is `<stream>/<topic>`; the content
//! is Flux's Markdown status post.

use reqwest::Method;
use reqwest::header::CONTENT_TYPE;

use super::{address_url, metadata, require_channel};
use crate::http::Poster;
use crate::markdown::status_post;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "zulip")?;
    stream_and_topic(target).map(drop)
}

/// spec.channel split at its first `/` into stream and topic.
fn stream_and_topic(target: &Target) -> Result<(&str, &str), NotifyError> {
    let channel = require_channel(target, "zulip", "`<stream>/<topic>`")?;
    match channel.split_once('/') {
        Some((stream, topic)) if !stream.is_empty() && !topic.is_empty() => Ok((stream, topic)),
        _ => Err(NotifyError::InvalidConfig(format!(
            "zulip: spec.channel must be `<stream>/<topic>`, got '{channel}'"
        ))),
    }
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let mut url = address_url(target, "zulip")?;
    url.set_path("/api/v1/messages");
    let (stream, topic) = stream_and_topic(target)?;
    // Go's url.Values.Encode sorts the keys.
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("content", &status_post(event, metadata(event)))
        .append_pair("to", stream)
        .append_pair("topic", topic)
        .append_pair("type", "stream")
        .finish();
    let username = target.username.clone().unwrap_or_default();
    let password = target.password.clone().unwrap_or_default();
    let basic = !username.is_empty() || !password.is_empty();
    poster
        .send(|| {
            let request = poster
                .request(Method::POST, url.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.clone());
            if basic {
                request.basic_auth(&username, Some(&password))
            } else {
                request
            }
        })
        .await?;
    Ok(())
}
