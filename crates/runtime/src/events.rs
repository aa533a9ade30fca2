//! Kubernetes events for Flux objects: `Normal` on progress (a new revision,
//! a successful apply), `Warning` on failures, with Flux's reason strings.

use kube::Client;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

/// Publishes events on behalf of one controller.
#[derive(Clone)]
pub struct EventRecorder {
    recorder: Recorder,
}

impl EventRecorder {
    /// A recorder reporting as `controller` (e.g. `source-controller`).
    pub fn new(client: Client, controller: &str) -> Self {
        let reporter = Reporter {
            controller: controller.to_string(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// A `Normal` event.
    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: &str,
    ) {
        self.publish(obj, EventType::Normal, reason, message).await;
    }

    /// A `Warning` event.
    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: &str,
    ) {
        self.publish(obj, EventType::Warning, reason, message).await;
    }

    async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        message: &str,
    ) {
        let note = truncate(message, 1024);
        let event = Event {
            type_,
            reason: reason.to_string(),
            action: action_of(reason, &note),
            // The events API caps the note at 1 kB.
            note: Some(note),
            secondary: None,
        };
        // An event that cannot be written must never fail a reconciliation.
        if let Err(err) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(%reason, error = %err, "failed to publish event");
        }
    }
}

/// The event's `action`: its reason, told apart by its note. kube's
/// recorder folds events with the same type, reason and action into one
/// series and keeps the first note, so a second `NewArtifact` would still
/// read the first revision; client-go (Flux's) keys on the message too.
fn action_of(reason: &str, note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    note.hash(&mut hasher);
    format!("{reason}-{:08x}", hasher.finish() as u32)
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::{action_of, truncate};

    #[test]
    fn events_with_other_notes_are_other_series() {
        assert_eq!(action_of("NewArtifact", "a"), action_of("NewArtifact", "a"));
        assert_ne!(action_of("NewArtifact", "a"), action_of("NewArtifact", "b"));
        assert!(action_of("NewArtifact", "a").starts_with("NewArtifact-"));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(2000), 1024).len(), 1024);
    }
}
