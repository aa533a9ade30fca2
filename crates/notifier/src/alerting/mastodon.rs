//! `mastodon`: a status posted through Mastodon's REST API
//! (`POST <server>/api/v1/statuses`, the path appended to the address unless
//! it already ends with it) with the Secret's OAuth access token (scope
//! `write:statuses`) as a bearer token.
//!
//! The status is plain text: the severity emoji, `kind/name.namespace`, the
//! message and one `key: value` line per metadata entry, cut to Mastodon's
//! default limit of 500 characters (a longer status is refused with a 422,
//! and a server's own limit needs another API call to learn). An
//! `Idempotency-Key` (SHA-256 of the object's uid, the reason, the time and
//! the text) makes Mastodon drop the duplicate when a retry follows a lost
//! response. A `visibility` query parameter on the address (`public`,
//! `unlisted`, `private`, `direct`) becomes the status's visibility and is
//! not sent in the URL: the Provider API has no field for it.

use std::fmt::Write as _;

use reqwest::Url;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{address_url, is_error, metadata, object_name, require_token, rfc3339, uid};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// Mastodon's default maximum status length, in characters.
const MAX_STATUS_CHARS: usize = 500;
/// The API path statuses are created at.
const STATUSES_PATH: &str = "/api/v1/statuses";
/// The visibilities Mastodon accepts.
const VISIBILITIES: [&str; 4] = ["public", "unlisted", "private", "direct"];

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    require_token(target, "mastodon")?;
    statuses_url(target).map(drop)
}

/// The statuses endpoint and the requested visibility, if any.
fn statuses_url(target: &Target) -> Result<(Url, Option<String>), NotifyError> {
    let mut url = address_url(target, "mastodon")?;
    let mut visibility = None;
    let mut kept = Vec::new();
    for (key, value) in url.query_pairs() {
        if key == "visibility" {
            visibility = Some(value.into_owned());
        } else {
            kept.push((key.into_owned(), value.into_owned()));
        }
    }
    if let Some(value) = &visibility
        && !VISIBILITIES.contains(&value.as_str())
    {
        return Err(NotifyError::InvalidConfig(format!(
            "mastodon: the address's visibility '{value}' is not one of {}",
            VISIBILITIES.join(", ")
        )));
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    if !url.path().trim_end_matches('/').ends_with(STATUSES_PATH) {
        let path = format!("{}{STATUSES_PATH}", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    Ok((url, visibility))
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let token = require_token(target, "mastodon")?;
    let (url, visibility) = statuses_url(target)?;
    let text = status(event);
    let mut body = Map::new();
    body.insert("status".to_string(), json!(text));
    if let Some(visibility) = visibility {
        body.insert("visibility".to_string(), json!(visibility));
    }
    let key = idempotency_key(event, &text);
    poster
        .post_json(url.as_str(), &Value::Object(body), |request| {
            request
                .bearer_auth(token)
                .header("Idempotency-Key", key.as_str())
        })
        .await?;
    Ok(())
}

/// The status text, at most [`MAX_STATUS_CHARS`] characters.
fn status(event: &Event) -> String {
    let emoji = if is_error(event) { "🚨" } else { "💫" };
    let mut text = format!("{emoji} {}\n{}", object_name(event), event.message);
    for (key, value) in metadata(event) {
        let _ = write!(text, "\n{key}: {value}");
    }
    match text.char_indices().nth(MAX_STATUS_CHARS) {
        // Cut one character earlier to end with an ellipsis.
        Some(_) => {
            let end = text
                .char_indices()
                .nth(MAX_STATUS_CHARS - 1)
                .map_or(text.len(), |(at, _)| at);
            text.truncate(end);
            text.push('…');
            text
        }
        None => text,
    }
}

/// The same event always yields the same key; another event never does.
fn idempotency_key(event: &Event, text: &str) -> String {
    let mut hash = Sha256::new();
    let time = rfc3339(event);
    for part in [uid(event), event.reason.as_str(), time.as_str(), text] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str) -> Target {
        Target {
            address: address.to_string(),
            token: Some("t".to_string()),
            ..Target::default()
        }
    }

    #[test]
    fn the_statuses_path_is_appended_once() {
        for (address, url) in [
            (
                "https://mastodon.example",
                "https://mastodon.example/api/v1/statuses",
            ),
            (
                "https://mastodon.example/",
                "https://mastodon.example/api/v1/statuses",
            ),
            (
                "https://mastodon.example/api/v1/statuses",
                "https://mastodon.example/api/v1/statuses",
            ),
            (
                "https://example.com/social/",
                "https://example.com/social/api/v1/statuses",
            ),
        ] {
            let (got, visibility) = statuses_url(&target(address)).unwrap();
            assert_eq!(got.as_str(), url, "{address}");
            assert_eq!(visibility, None);
        }
    }

    #[test]
    fn visibility_comes_from_the_address_query() {
        let (url, visibility) =
            statuses_url(&target("https://m.example/?visibility=unlisted&x=1")).unwrap();
        assert_eq!(url.as_str(), "https://m.example/api/v1/statuses?x=1");
        assert_eq!(visibility.as_deref(), Some("unlisted"));
        let err = statuses_url(&target("https://m.example/?visibility=everyone")).unwrap_err();
        assert!(err.to_string().contains("everyone"), "{err}");
    }

    fn event(message: &str) -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "web", "uid": "u-1"},
            "severity": "info",
            "timestamp": "2026-12-04T10:00:00Z",
            "message": message,
            "reason": "ReconciliationSucceeded",
            "metadata": {"revision": "main@sha1:abc"},
            "reportingController": "kustomize-controller",
        }))
        .unwrap()
    }

    #[test]
    fn status_text_and_limit() {
        assert_eq!(
            status(&event("Applied")),
            "💫 kustomization/web.apps\nApplied\nrevision: main@sha1:abc"
        );
        let long = status(&event(&"é".repeat(600)));
        assert_eq!(long.chars().count(), MAX_STATUS_CHARS);
        assert!(long.ends_with("é…"), "{long}");
    }

    #[test]
    fn idempotency_keys_differ_per_event() {
        let a = event("one");
        let b = event("two");
        assert_eq!(idempotency_key(&a, "x"), idempotency_key(&a, "x"));
        assert_ne!(idempotency_key(&a, "x"), idempotency_key(&b, "y"));
        assert_eq!(idempotency_key(&a, "x").len(), 64);
    }

    #[test]
    fn a_token_is_required() {
        let mut without = target("https://m.example");
        without.token = None;
        assert!(
            validate(&without)
                .unwrap_err()
                .to_string()
                .contains("token")
        );
    }
}
