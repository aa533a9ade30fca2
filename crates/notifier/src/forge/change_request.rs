//! Change request comments: the pull/merge request an event is about (its
//! `change_request` metadata), and the comment Flux writes there. Each
//! comment carries a hidden marker with the Provider UID and the object, so
//! that the next event about the same object edits it instead of adding one.

use std::collections::BTreeMap;

use api::event::{METADATA_CHANGE_REQUEST, Severity};

use super::{flux_metadata, invalid};
use crate::{Event, NotifyError, Target};

/// What to write on which change request.
#[derive(Clone, Debug)]
pub(super) struct CommentRequest {
    /// The pull request number or merge request IID.
    pub number: u64,
    /// The hidden marker identifying this Provider's comment on the object.
    pub marker: String,
    /// The whole comment: marker, then the event in Markdown.
    pub body: String,
}

/// Comment markers start with the Provider UID, so one is required.
pub(super) fn require_provider_uid(target: &Target) -> Result<(), NotifyError> {
    if target.provider.uid.trim().is_empty() {
        return Err(invalid(
            "metadata.uid",
            "the Provider UID is required to recognise its own comments",
        ));
    }
    Ok(())
}

impl CommentRequest {
    /// The comment `event` asks for, its marker starting with
    /// `marker_prefix`; `Skipped` without a usable `change_request`.
    pub fn from_event(
        target: &Target,
        event: &Event,
        marker_prefix: &str,
    ) -> Result<Self, NotifyError> {
        let metadata = flux_metadata(event);
        let Some(value) = metadata.get(METADATA_CHANGE_REQUEST) else {
            return Err(NotifyError::Skipped(format!(
                "event has no '{METADATA_CHANGE_REQUEST}' metadata naming a change request"
            )));
        };
        let number = value.trim().parse::<u64>().map_err(|_| {
            NotifyError::Skipped(format!(
                "invalid '{METADATA_CHANGE_REQUEST}' metadata value '{value}': not a change request number"
            ))
        })?;
        let object = &event.involved_object;
        let key = format!(
            "{}/{}/{}/{}",
            target.provider.uid,
            object.kind.as_deref().unwrap_or_default(),
            object.namespace.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default()
        );
        let marker = format!("<!-- {marker_prefix}:{key} -->");
        let body = format!("{marker}\n\n{}", markdown(event, &metadata));
        Ok(Self {
            number,
            marker,
            body,
        })
    }
}

/// The event as Flux renders it in Markdown.
fn markdown(event: &Event, metadata: &BTreeMap<String, String>) -> String {
    let emoji = if event.severity == Severity::Error {
        "⚠️"
    } else {
        "ℹ️"
    };
    let object = &event.involved_object;
    let object_id = format!(
        "{}/{}/{}",
        object.kind.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default()
    );
    let lines: String = metadata
        .iter()
        .filter(|(key, _)| key.as_str() != METADATA_CHANGE_REQUEST)
        .map(|(key, value)| format!("* `{key}`: {value}\n"))
        .collect();
    format!(
        "## Flux Status\n\n{emoji} {object_id}\n\n{}\n\nMetadata:\n{lines}",
        event.message
    )
}
