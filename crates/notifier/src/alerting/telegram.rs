//! `telegram`: `sendMessage` of the Telegram Bot API with the Secret's bot
//! token, to spec.channel (`<chat id>` or `<chat id>:<topic thread id>`), as
//! MarkdownV2 with Telegram's special characters escaped.
//!
//! Flux always calls `https://api.telegram.org`. Here an address, when set,
//! is the Bot API server to call instead (Telegram's self-hosted
//! `telegram-bot-api` server, or a test server); without one it is
//! `https://api.telegram.org`, as in Flux.

use std::fmt::Write as _;

use reqwest::Url;
use serde_json::{Map, Value, json};

use super::{
    hide_secret, is_error, kind, metadata, name, namespace, parse_http_url, require_channel,
    require_token,
};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// Telegram's Bot API server.
const DEFAULT_API: &str = "https://api.telegram.org";
/// The characters MarkdownV2 requires escaped.
const SPECIAL: &str = "\\.-_[]()~>`#+=|{}!*";

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    require_channel(
        target,
        "telegram",
        "the chat id, optionally `<chat id>:<thread id>`",
    )?;
    let token = require_token(target, "telegram")?;
    api_url(target, token).map(drop)
}

/// `<server>/bot<token>/sendMessage`.
fn api_url(target: &Target, token: &str) -> Result<Url, NotifyError> {
    let server = match target.address.trim() {
        "" => DEFAULT_API,
        address => address,
    };
    let mut url = parse_http_url(server, "telegram")?;
    if let Ok(mut segments) = url.path_segments_mut() {
        segments
            .pop_if_empty()
            .push(&format!("bot{token}"))
            .push("sendMessage");
    }
    Ok(url)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let channel = require_channel(target, "telegram", "the chat id")?;
    let token = require_token(target, "telegram")?;
    let url = api_url(target, token)?;
    let (chat_id, thread) = match channel.split_once(':') {
        Some((chat, thread)) => (chat, Some(thread)),
        None => (channel, None),
    };
    let mut body = Map::new();
    body.insert("chat_id".to_string(), json!(chat_id));
    if let Some(thread) = thread.filter(|t| !t.is_empty()) {
        body.insert("message_thread_id".to_string(), json!(thread));
    }
    body.insert("text".to_string(), json!(message(event)));
    body.insert("parse_mode".to_string(), json!("MarkdownV2"));
    poster
        .post_json(url.as_str(), &Value::Object(body), |r| r)
        .await
        .map_err(|e| hide_secret(e, token))?;
    Ok(())
}

fn message(event: &Event) -> String {
    let emoji = if is_error(event) { "🚨" } else { "💫" };
    let heading = format!(
        "{emoji} {}/{}/{}",
        kind(event).to_lowercase(),
        name(event),
        namespace(event)
    );
    let mut text = format!("*{}*\n{}\n", escape(&heading), escape(&event.message));
    for (key, value) in metadata(event) {
        let _ = writeln!(text, "\\- *{}*: {}", escape(key), escape(value));
    }
    text
}

/// `text` with a backslash before each MarkdownV2 special character.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if SPECIAL.contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markdown_v2() {
        assert_eq!(escape("a.b-c_d[e](f)!"), "a\\.b\\-c\\_d\\[e\\]\\(f\\)\\!");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
    }

    #[test]
    fn default_server_is_telegram() {
        let target = Target::default();
        assert_eq!(
            api_url(&target, "123:abc").unwrap().as_str(),
            "https://api.telegram.org/bot123:abc/sendMessage"
        );
    }
}
