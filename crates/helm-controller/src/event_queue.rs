//! Kubernetes events published off the reconciliation's path: each event is
//! queued and one task writes them in order, so a reconciliation never
//! waits for the events API round trip (Flux's recorder is asynchronous the
//! same way).

use api::helm::HelmRelease;
use kube::core::{ObjectMeta, PartialObjectMeta, PartialObjectMetaExt};
use kube::runtime::events::EventType;
use runtime::events::EventRecorder;
use tokio::sync::mpsc;

/// Events waiting to be written before [`EventQueue::publish`] waits for
/// room: far more than a burst of reconciliations emits.
const QUEUE_CAPACITY: usize = 1024;

struct QueuedEvent {
    object: PartialObjectMeta<HelmRelease>,
    type_: EventType,
    reason: String,
    message: String,
}

/// Publishes events about HelmReleases through one background task.
#[derive(Clone)]
pub struct EventQueue {
    sender: mpsc::Sender<QueuedEvent>,
}

impl EventQueue {
    /// A queue writing through `recorder`. Must be called inside a Tokio
    /// runtime: the writing task is spawned at once and ends when the last
    /// queue handle is dropped.
    pub fn spawn(recorder: EventRecorder) -> Self {
        let (sender, mut receiver) = mpsc::channel::<QueuedEvent>(QUEUE_CAPACITY);
        tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                match event.type_ {
                    EventType::Normal => {
                        recorder
                            .normal(&event.object, &event.reason, &event.message)
                            .await;
                    }
                    EventType::Warning => {
                        recorder
                            .warning(&event.object, &event.reason, &event.message)
                            .await;
                    }
                }
            }
        });
        Self { sender }
    }

    /// Queues a `Normal` event.
    pub async fn normal(&self, object: &HelmRelease, reason: &str, message: &str) {
        self.publish(object, EventType::Normal, reason, message)
            .await;
    }

    /// Queues a `Warning` event.
    pub async fn warning(&self, object: &HelmRelease, reason: &str, message: &str) {
        self.publish(object, EventType::Warning, reason, message)
            .await;
    }

    async fn publish(&self, object: &HelmRelease, type_: EventType, reason: &str, message: &str) {
        // Only what the event refers to is kept, so a long queue stays small.
        let object = ObjectMeta {
            name: object.metadata.name.clone(),
            namespace: object.metadata.namespace.clone(),
            uid: object.metadata.uid.clone(),
            ..ObjectMeta::default()
        }
        .into_request_partial::<HelmRelease>();
        let event = QueuedEvent {
            object,
            type_,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        if self.sender.send(event).await.is_err() {
            tracing::warn!(%reason, "event queue closed: event dropped");
        }
    }
}
