//! `googlechat`: a Google Chat webhook, one card (the legacy `cards`
//! format Flux sends): the object as title, the reporting controller as
//! subtitle, the message (red for errors), then the metadata as key/values.

use serde_json::{Value, json};

use super::{address_url, is_error, metadata, object_name};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    address_url(target, "googlechat").map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let url = address_url(target, "googlechat")?;
    poster
        .post_json(url.as_str(), &payload(event), |r| r)
        .await?;
    Ok(())
}

fn payload(event: &Event) -> Value {
    let text = if is_error(event) {
        format!("<font color=\"#ff0000\">{}</font>", event.message)
    } else {
        event.message.clone()
    };
    let mut sections = vec![json!({
        "header": "",
        "widgets": [{"textParagraph": {"text": text}, "keyValue": null}],
    })];
    let key_values: Vec<Value> = metadata(event)
        .map(|(key, value)| {
            json!({
                "textParagraph": null,
                "keyValue": {
                    "topLabel": key,
                    "content": value,
                    "contentMultiline": false,
                    "bottomLabel": null,
                    "icon": null,
                },
            })
        })
        .collect();
    if !key_values.is_empty() {
        sections.push(json!({"header": "", "widgets": key_values}));
    }
    json!({
        "cards": [{
            "header": {
                "title": object_name(event),
                "subtitle": event.reporting_controller,
                "imageUrl": null,
                "imageStyle": null,
            },
            "sections": sections,
        }],
    })
}
