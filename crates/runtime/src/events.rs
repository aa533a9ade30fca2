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
        let event = Event {
            type_,
            reason: reason.to_string(),
            // The events API caps the note at 1 kB.
            note: Some(truncate(message, 1024)),
            action: reason.to_string(),
            secondary: None,
        };
        // An event that cannot be written must never fail a reconciliation.
        if let Err(err) = self.recorder.publish(&event, &obj.object_ref(&())).await {
            warn!(%reason, error = %err, "failed to publish event");
        }
    }
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
    use super::truncate;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(2000), 1024).len(), 1024);
    }
}
