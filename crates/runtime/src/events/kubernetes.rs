//! Kubernetes events (`events.k8s.io/v1`), folded into series as client-go
//! folds them: the same event about the same object again within six
//! minutes raises the first one's `series.count` instead of adding an
//! object. "The same" includes the note, so a second `NewArtifact` with
//! another revision is an event of its own.
//!
//! kube's `Recorder` keeps every event it wrote in full for six minutes and
//! walks that cache on every write; a controller whose notes differ each
//! time ("finished in 1.2s") paid megabytes for it. This keeps a hash and
//! the event's name per series.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};

/// How long a series stays open for more of the same event (client-go's
/// and kube's window).
const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// Closed series are dropped when the table has grown by this many since
/// the last sweep, so a sweep costs little per event.
const SWEEP_EVERY: usize = 256;

/// One open series: where its event is and how often it happened.
struct Series {
    name: String,
    count: i32,
    last: Timestamp,
}

#[derive(Default)]
struct Table {
    series: HashMap<u64, Series>,
    sweep_at: usize,
}

/// Writes events for one reporting controller.
pub(super) struct KubeEvents {
    client: Client,
    controller: String,
    instance: String,
    table: Mutex<Table>,
}

/// What one event says.
pub(super) struct Note<'a> {
    pub warning: bool,
    pub reason: &'a str,
    pub note: &'a str,
}

impl KubeEvents {
    pub(super) fn new(client: Client, controller: &str, instance: Option<&str>) -> Self {
        Self {
            client,
            controller: controller.to_string(),
            instance: instance.unwrap_or(controller).to_string(),
            table: Mutex::new(Table {
                series: HashMap::new(),
                sweep_at: SWEEP_EVERY,
            }),
        }
    }

    /// Writes `event` about `regarding`: a new Event, or one more in the
    /// series of the same event written in the last six minutes.
    pub(super) async fn publish(
        &self,
        regarding: &ObjectReference,
        event: &Note<'_>,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = series_key(regarding, event);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        if let Some((name, count)) = self.next_in_series(key, now) {
            let patch = serde_json::json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(now),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Gone (expired or deleted): start a new series.
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let created = api
            .create(
                &PostParams::default(),
                &self.new_event(regarding, event, now),
            )
            .await?;
        self.open_series(key, created.metadata.name.unwrap_or_default(), now);
        Ok(())
    }

    /// The name and next count of `key`'s open series, if it has one.
    fn next_in_series(&self, key: u64, now: Timestamp) -> Option<(String, i32)> {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        let series = table.series.get_mut(&key)?;
        if series.last + SERIES_WINDOW <= now {
            table.series.remove(&key);
            return None;
        }
        series.count = series.count.saturating_add(1);
        series.last = now;
        Some((series.name.clone(), series.count))
    }

    fn open_series(&self, key: u64, name: String, now: Timestamp) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        table.series.insert(
            key,
            Series {
                name,
                count: 1,
                last: now,
            },
        );
        if table.series.len() >= table.sweep_at {
            table.series.retain(|_, s| s.last + SERIES_WINDOW > now);
            table.sweep_at = table.series.len() + SWEEP_EVERY;
        }
    }

    fn new_event(
        &self,
        regarding: &ObjectReference,
        event: &Note<'_>,
        now: Timestamp,
    ) -> KubeEvent {
        KubeEvent {
            metadata: ObjectMeta {
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                )),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if event.warning { "Warning" } else { "Normal" }.to_string()),
            reason: Some(event.reason.to_string()),
            action: Some(event.reason.to_string()),
            note: Some(event.note.to_string()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..KubeEvent::default()
        }
    }
}

/// The identity of a series: the object, the type, the reason and the note.
fn series_key(regarding: &ObjectReference, event: &Note<'_>) -> u64 {
    let mut hasher = DefaultHasher::new();
    regarding.uid.hash(&mut hasher);
    regarding.kind.hash(&mut hasher);
    regarding.namespace.hash(&mut hasher);
    regarding.name.hash(&mut hasher);
    event.warning.hash(&mut hasher);
    event.reason.hash(&mut hasher);
    event.note.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(name: &str) -> ObjectReference {
        ObjectReference {
            kind: Some("GitRepository".into()),
            namespace: Some("flux-system".into()),
            name: Some(name.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectReference::default()
        }
    }

    fn note<'a>(reason: &'a str, note: &'a str) -> Note<'a> {
        Note {
            warning: false,
            reason,
            note,
        }
    }

    #[test]
    fn a_series_is_the_same_object_reason_and_note() {
        let a = series_key(&reference("a"), &note("NewArtifact", "rev 1"));
        assert_eq!(
            a,
            series_key(&reference("a"), &note("NewArtifact", "rev 1"))
        );
        assert_ne!(
            a,
            series_key(&reference("a"), &note("NewArtifact", "rev 2"))
        );
        assert_ne!(
            a,
            series_key(&reference("b"), &note("NewArtifact", "rev 1"))
        );
        assert_ne!(a, series_key(&reference("a"), &note("Other", "rev 1")));
        let warning = Note {
            warning: true,
            ..note("NewArtifact", "rev 1")
        };
        assert_ne!(a, series_key(&reference("a"), &warning));
    }
}
