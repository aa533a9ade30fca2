//! `slack`, `discord` and `rocket`: Slack's message format with one
//! attachment (the involved object as author, the message as text, the
//! metadata as fields, the severity as colour).
//!
//! Slack: with a token (a bot token for `https://slack.com/api/chat.postMessage`)
//! the request carries `Authorization: Bearer <token>`; `spec.channel` becomes
//! the `channel` field and `spec.username` the `username` (default: the
//! reporting controller). The Web API answers 200 even on failure, so a
//! `chat.postMessage` response must be `{"ok": true}` (as Flux checks);
//! any other Slack address fails on a JSON `{"ok": false}` answer too, while
//! an incoming webhook's plain `ok` passes.
//!
//! Discord: Slack-compatible webhooks, so `/slack` is appended to the address
//! unless it already ends so. Rocket.Chat: the same payload with Rocket's
//! colours and no username default.

use reqwest::Url;
use serde_json::{Value, json};

use super::{address_url, is_error, metadata, non_empty, object_name};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// The path of Slack's Web API method that posts a message.
const POST_MESSAGE_PATH: &str = "/api/chat.postMessage";

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "slack").map(drop)
}

pub(super) fn validate_discord(target: &Target) -> Result<(), NotifyError> {
    discord_url(target).map(drop)
}

pub(super) fn validate_rocket(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "rocket").map(drop)
}

/// Slack's message with one attachment, as Flux fills `SlackPayload`.
fn payload(event: &Event, channel: &str, username: &str, color: &str) -> Value {
    let fields: Vec<Value> = metadata(event)
        .map(|(title, value)| json!({"title": title, "value": value, "short": false}))
        .collect();
    json!({
        "channel": channel,
        "username": username,
        "icon_url": "",
        "icon_emoji": "",
        "attachments": [{
            "color": color,
            "author_name": object_name(event),
            "text": event.message,
            "mrkdwn_in": ["text"],
            "fields": fields,
        }],
    })
}

/// `good` for progress, `danger` for failures (Slack's named colours).
fn slack_color(event: &Event) -> &'static str {
    if is_error(event) { "danger" } else { "good" }
}

fn username<'a>(target: &'a Target, event: &'a Event) -> &'a str {
    non_empty(target.username.as_deref()).unwrap_or(&event.reporting_controller)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "slack")?;
    let body = payload(
        event,
        target.channel.as_deref().unwrap_or_default(),
        username(target, event),
        slack_color(event),
    );
    let token = non_empty(target.token.as_deref());
    let response = poster
        .post_json(url.as_str(), &body, |request| match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
        .await?;
    let text = response.text().await.map_err(|e| NotifyError::Transport {
        method: "POST".to_string(),
        url: url.to_string(),
        message: format!("reading Slack's answer: {e}"),
    })?;
    check_answer(&url, &text)
}

/// Slack's Web API answers 200 with `{"ok": false, "error": "..."}` when it
/// refuses a message.
fn check_answer(url: &Url, text: &str) -> Result<(), NotifyError> {
    let web_api = url.path().ends_with(POST_MESSAGE_PATH);
    let answer = serde_json::from_str::<Value>(text).ok();
    let ok = answer
        .as_ref()
        .and_then(|a| a.get("ok"))
        .and_then(Value::as_bool);
    let refused = match ok {
        Some(ok) => !ok,
        // chat.postMessage always answers JSON with `ok`; webhooks answer `ok` as text.
        None => web_api,
    };
    if !refused {
        return Ok(());
    }
    let error = answer
        .as_ref()
        .and_then(|a| a.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("unexpected answer {text:?}"));
    Err(NotifyError::Status {
        method: "POST".to_string(),
        url: url.to_string(),
        status: 200,
        body: format!("Slack responded with error: {error}"),
    })
}

/// The Discord webhook address with `/slack` appended (Discord's
/// Slack-compatible endpoint), unless it already ends so.
fn discord_url(target: &Target) -> Result<Url, NotifyError> {
    let mut url = address_url(target, "discord")?;
    if !url.path().ends_with("/slack") {
        let path = format!("{}/slack", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok(url)
}

pub(super) async fn post_discord(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = discord_url(target)?;
    // Flux leaves `channel` empty for Discord (a webhook belongs to one
    // channel); a spec.channel is passed on rather than silently dropped.
    let body = payload(
        event,
        target.channel.as_deref().unwrap_or_default(),
        username(target, event),
        slack_color(event),
    );
    poster.post_json(url.as_str(), &body, |r| r).await?;
    Ok(())
}

pub(super) async fn post_rocket(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "rocket")?;
    let color = if is_error(event) {
        "#FF0000"
    } else {
        "#0076D7"
    };
    let body = payload(
        event,
        target.channel.as_deref().unwrap_or_default(),
        target.username.as_deref().unwrap_or_default(),
        color,
    );
    poster.post_json(url.as_str(), &body, |r| r).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn web_api_answers_are_checked() {
        let api = url("https://slack.com/api/chat.postMessage");
        assert!(check_answer(&api, r#"{"ok":true,"ts":"1"}"#).is_ok());
        let err = check_answer(&api, r#"{"ok":false,"error":"channel_not_found"}"#).unwrap_err();
        assert!(err.to_string().contains("channel_not_found"), "{err}");
        assert!(check_answer(&api, "ok").is_err());
        let hook = url("https://hooks.slack.com/services/T/B/X");
        assert!(check_answer(&hook, "ok").is_ok());
        assert!(check_answer(&hook, r#"{"ok":false,"error":"invalid_token"}"#).is_err());
    }

    #[test]
    fn discord_gets_the_slack_suffix_once() {
        let target = |address: &str| Target {
            address: address.to_string(),
            ..Target::default()
        };
        assert_eq!(
            discord_url(&target("https://discord.com/api/webhooks/1/abc"))
                .unwrap()
                .as_str(),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        assert_eq!(
            discord_url(&target("https://discord.com/api/webhooks/1/abc/slack"))
                .unwrap()
                .as_str(),
            "https://discord.com/api/webhooks/1/abc/slack"
        );
        assert_eq!(
            discord_url(&target("https://discord.com/api/webhooks/1/abc/?wait=true"))
                .unwrap()
                .as_str(),
            "https://discord.com/api/webhooks/1/abc/slack?wait=true"
        );
    }
}
