//! Flux's Markdown status post, written the same way for chat (Zulip) and
//! for change request comments.

use std::fmt::Write as _;

use api::event::{METADATA_CHANGE_REQUEST, Severity};

use crate::Event;

/// A heading, the severity emoji with `Kind/namespace/name`, the message and
/// `metadata` as a list (the change request key left out).
pub(crate) fn status_post<'a>(
    event: &Event,
    metadata: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let emoji = if event.severity == Severity::Error {
        "⚠️"
    } else {
        "ℹ️"
    };
    let object = &event.involved_object;
    let mut lines = String::new();
    for (key, value) in metadata {
        if key != METADATA_CHANGE_REQUEST {
            let _ = writeln!(lines, "* `{key}`: {value}");
        }
    }
    format!(
        "## Flux Status\n\n{emoji} {}/{}/{}\n\n{}\n\nMetadata:\n{lines}",
        object.kind.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default(),
        event.message
    )
}
