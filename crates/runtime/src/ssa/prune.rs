//! Garbage collection of objects that left the set.

use futures::{StreamExt, stream};
use kube::api::{DeleteParams, Preconditions};

use super::object::{ObjectAnnotations, ObjectRef};
use super::{Engine, api_reason, is_not_found};

/// What pruning did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneResult {
    /// Deleted, or already gone.
    pub deleted: Vec<ObjectRef>,
    /// Left alone, with why: not (or no longer) owned by this owner, or
    /// annotated to be kept.
    pub skipped: Vec<(ObjectRef, String)>,
    /// Deletions the API server did not confirm; keep them in the inventory
    /// so the next reconciliation retries.
    pub failed: Vec<(ObjectRef, String)>,
}

impl PruneResult {
    /// The objects whose deletion failed.
    pub fn failed_objects(&self) -> Vec<ObjectRef> {
        self.failed.iter().map(|(o, _)| o.clone()).collect()
    }

    /// Flux's summary: one `Kind/namespace/name deleted` line per deletion.
    pub fn summary(&self) -> String {
        self.deleted
            .iter()
            .map(|o| format!("{o} deleted"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

enum Outcome {
    Deleted,
    Skipped(String),
    Failed(String),
}

impl Engine {
    /// Deletes the `stale` objects (background propagation) that still carry
    /// this owner's labels and are not annotated `prune: disabled`,
    /// `reconcile: disabled` or `ssa: Ignore`. An object already gone counts
    /// as deleted.
    pub async fn prune(&self, stale: &[ObjectRef]) -> PruneResult {
        // Futures made up front keep this future `Send` (see `detect_drift`).
        let deletions: Vec<_> = stale
            .iter()
            .map(|object| async move { (object.clone(), self.prune_one(object).await) })
            .collect();
        let outcomes: Vec<(ObjectRef, Outcome)> = stream::iter(deletions)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut result = PruneResult::default();
        for (object, outcome) in outcomes {
            match outcome {
                Outcome::Deleted => result.deleted.push(object),
                Outcome::Skipped(why) => result.skipped.push((object, why)),
                Outcome::Failed(why) => result.failed.push((object, why)),
            }
        }
        result
    }

    async fn prune_one(&self, object: &ObjectRef) -> Outcome {
        let resource = match self.resolver.resolve(&self.client, &object.gvk()).await {
            Ok(Some(resource)) => resource,
            // The kind is gone (its CRD was deleted), and its objects with it.
            Ok(None) => return Outcome::Deleted,
            Err(err) => return Outcome::Failed(format!("discovery failed{}", api_reason(&err))),
        };
        let api = resource.api(&self.client, object);
        let live = match api.get_opt(&object.name).await {
            Ok(Some(live)) => live,
            Ok(None) => return Outcome::Deleted,
            Err(err) => return Outcome::Failed(format!("read failed{}", api_reason(&err))),
        };
        let labels = live.metadata.labels.as_ref();
        let label = |key: &str| labels.and_then(|l| l.get(key)).map(String::as_str);
        if label(&self.keys.name_label) != Some(self.owner.name.as_str())
            || label(&self.keys.namespace_label) != Some(self.owner.namespace.as_str())
        {
            return Outcome::Skipped("not owned: owner labels missing or different".to_string());
        }
        let annotations = ObjectAnnotations::read(&live, &self.keys);
        if annotations.prune_disabled || annotations.ignored() {
            return Outcome::Skipped("annotated to be kept".to_string());
        }
        if live.metadata.deletion_timestamp.is_some() {
            return Outcome::Deleted;
        }
        let params = DeleteParams::background().preconditions(Preconditions {
            uid: live.metadata.uid.clone(),
            resource_version: None,
        });
        match api.delete(&object.name, &params).await {
            Ok(_) => Outcome::Deleted,
            Err(err) if is_not_found(&err) => Outcome::Deleted,
            Err(err) => Outcome::Failed(format!("delete failed{}", api_reason(&err))),
        }
    }
}
