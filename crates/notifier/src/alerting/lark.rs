//! `lark`: a Lark (Feishu) custom bot webhook, one interactive card: the
//! object with an emoji as title (turquoise, red for errors), the message in
//! bold and the metadata as `key: value` lines.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{address_url, is_error, metadata, object_name};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "lark").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "lark")?;
    poster
        .post_json(url.as_str(), &payload(event), |r| r)
        .await?;
    Ok(())
}

fn payload(event: &Event) -> Value {
    let (emoji, color) = if is_error(event) {
        ("🚨", "red")
    } else {
        ("💫", "turquoise")
    };
    let mut content = format!("**{}**\n\n", event.message);
    for (key, value) in metadata(event) {
        let _ = writeln!(content, "{key}: {value}");
    }
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "title": {"tag": "plain_text", "content": format!("{emoji} {}", object_name(event))},
                "template": color,
            },
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": content}}],
        },
    })
}
