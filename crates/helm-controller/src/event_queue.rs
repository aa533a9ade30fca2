//! Kubernetes events published off the reconciliation's path: each event is
//! queued and one task writes them in order, so a reconciliation never
//! waits for the events API round trip (Flux's recorder is asynchronous the
//! same way).

use api::event::{ANNOTATION_PREFIX, Severity};
use api::helm::HelmRelease;
use kube::core::{ObjectMeta, PartialObjectMeta, PartialObjectMetaExt};
use runtime::events::EventRecorder;
use tokio::sync::mpsc;

/// Events waiting to be written before [`EventQueue::publish`] waits for
/// room: far more than a burst of reconciliations emits.
const QUEUE_CAPACITY: usize = 1024;

struct QueuedEvent {
    object: PartialObjectMeta<HelmRelease>,
    severity: Severity,
    reason: String,
    message: String,
    metadata: Vec<(&'static str, String)>,
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
                let metadata: Vec<(&str, &str)> = event
                    .metadata
                    .iter()
                    .map(|(key, value)| (*key, value.as_str()))
                    .collect();
                recorder
                    .publish(
                        &event.object,
                        event.severity,
                        &event.reason,
                        &event.message,
                        &metadata,
                    )
                    .await;
            }
        });
        Self { sender }
    }

    /// Queues a `Normal` event.
    pub async fn normal(&self, object: &HelmRelease, reason: &str, message: &str) {
        self.publish(object, Severity::Info, reason, message, Vec::new())
            .await;
    }

    /// Queues a `Warning` event.
    pub async fn warning(&self, object: &HelmRelease, reason: &str, message: &str) {
        self.publish(object, Severity::Error, reason, message, Vec::new())
            .await;
    }

    /// Queues an event about a release: with its chart version as
    /// `revision` and the digest of its chart and values as `token`, as
    /// Flux's helm-controller sends them.
    pub async fn release(
        &self,
        object: &HelmRelease,
        severity: Severity,
        reason: &str,
        message: &str,
        revision: Option<&str>,
        token: Option<&str>,
    ) {
        let metadata = [
            (api::event::METADATA_REVISION, revision),
            (api::event::METADATA_TOKEN, token),
        ]
        .into_iter()
        .filter_map(|(key, value)| Some((key, value?.to_string())))
        .collect();
        self.publish(object, severity, reason, message, metadata)
            .await;
    }

    async fn publish(
        &self,
        object: &HelmRelease,
        severity: Severity,
        reason: &str,
        message: &str,
        metadata: Vec<(&'static str, String)>,
    ) {
        // Only what the event refers to is kept, so a long queue stays small;
        // `event.toolkit.fluxcd.io/*` annotations travel with the event.
        let annotations = object.metadata.annotations.as_ref().map(|all| {
            all.iter()
                .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect()
        });
        let object = ObjectMeta {
            name: object.metadata.name.clone(),
            namespace: object.metadata.namespace.clone(),
            uid: object.metadata.uid.clone(),
            annotations,
            ..ObjectMeta::default()
        }
        .into_request_partial::<HelmRelease>();
        let event = QueuedEvent {
            object,
            severity,
            reason: reason.to_string(),
            message: message.to_string(),
            metadata,
        };
        if self.sender.send(event).await.is_err() {
            tracing::warn!(%reason, "event queue closed: event dropped");
        }
    }
}
