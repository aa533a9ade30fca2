//! What every source kind does around its own fetch-and-store step: record
//! the reconcile request, turn the outcome into Flux's conditions, write the
//! status once (nothing when nothing changed), publish events and pick the
//! next requeue.

use std::fmt::Debug;
use std::time::Duration;

use api::event;
use api::meta::{Artifact, condition_type, reason};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use runtime::status::{Conclusion, StatusObject, StatusSession};

use crate::Error;
use crate::controller::{CONTROLLER_NAME, Context};
use runtime::reconcile::Failure;

/// A source kind's object and the status fields the shared steps touch
/// beyond those of every Flux kind ([`StatusObject`]).
pub trait SourceObject:
    StatusObject<Status: Debug> + Resource<Scope = kube::core::NamespaceResourceScope>
{
    /// The reconciliation interval.
    fn interval(&self) -> Option<Duration>;
    /// `status.artifact`.
    fn artifact(status: &mut Self::Status) -> &mut Option<Artifact>;
    /// The `ArtifactInStorage` message for a stored `revision` (Flux words it per kind).
    fn stored_message(revision: &str) -> String {
        format!("stored artifact for revision '{revision}'")
    }
    /// The reason on `Ready` after a success with `message` (Flux's HelmChart
    /// says whether the chart was pulled or packaged).
    fn success_reason(_message: &str) -> &'static str {
        reason::SUCCEEDED
    }
    /// Whether `ArtifactInStorage` carries the reason and message of the last
    /// success (Flux's HelmChart: the build summary) rather than
    /// [`stored_message`](Self::stored_message).
    fn storage_condition_follows_ready() -> bool {
        false
    }
    /// The note of the `NewArtifact` event for `artifact`; the `Ready` message
    /// unless the kind words it otherwise.
    fn new_artifact_note(&self, _artifact: &Artifact, ready_message: &str) -> String {
        ready_message.to_string()
    }
}

/// What a successful pass produced; the message goes on `Ready`.
pub enum Outcome {
    /// The stored artifact is still current.
    UpToDate {
        /// `Ready` message.
        message: String,
    },
    /// A new artifact was stored.
    Stored {
        /// `Ready` message and event note.
        message: String,
    },
    /// A new artifact was stored, announced with a note of its own (Flux's
    /// Bucket counts the fetched files).
    StoredWithNote {
        /// `Ready` message.
        message: String,
        /// `NewArtifact` event note.
        note: String,
    },
}

impl Outcome {
    /// The `Ready` message.
    fn message(&self) -> &str {
        match self {
            Outcome::UpToDate { message }
            | Outcome::Stored { message }
            | Outcome::StoredWithNote { message, .. } => message,
        }
    }
}

/// Turns `result` into conditions, writes the status if it changed, emits
/// events, and returns what the controller should do next.
pub async fn finish<K: SourceObject>(
    obj: &K,
    ctx: &Context,
    mut session: StatusSession<K>,
    result: Result<Outcome, Error>,
) -> Result<Action, Error> {
    let StatusSession {
        ref mut status,
        ref mut conditions,
        ..
    } = session;
    let previous_ready = conditions
        .get(condition_type::READY)
        .map(|c| c.message.clone());

    // The artifact in storage, whatever happened this time.
    let stored = K::artifact(status)
        .as_ref()
        .filter(|a| ctx.store.exists(&a.path))
        .cloned();
    let success = result.as_ref().ok().map(Outcome::message);
    // After a failure, the summary of the build that is still stored stays.
    let follows_ready = K::storage_condition_follows_ready()
        .then(|| {
            success
                .map(|message| (K::success_reason(message).to_string(), message.to_string()))
                .or_else(|| {
                    conditions
                        .get(condition_type::ARTIFACT_IN_STORAGE)
                        .map(|c| (c.reason.clone(), c.message.clone()))
                })
        })
        .flatten();
    match (&stored, follows_ready) {
        (Some(_), Some((reason, message))) => {
            conditions.mark_true(condition_type::ARTIFACT_IN_STORAGE, &reason, message);
        }
        (Some(artifact), None) => conditions.mark_true(
            condition_type::ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            K::stored_message(&artifact.revision),
        ),
        (None, _) => {
            *K::artifact(status) = None;
            conditions.delete(condition_type::ARTIFACT_IN_STORAGE);
        }
    }
    let negative = [
        condition_type::FETCH_FAILED,
        condition_type::STORAGE_OPERATION_FAILED,
        condition_type::INCLUDE_UNAVAILABLE,
        condition_type::BUILD_FAILED,
        condition_type::ARTIFACT_OUTDATED,
    ];
    match &result {
        Ok(outcome) => {
            for stale in negative {
                conditions.delete(stale);
            }
            let message = outcome.message();
            conditions.mark_ready(K::success_reason(message), message.to_string());
        }
        Err(err) => {
            let Failure {
                condition, reason, ..
            } = err.failure();
            let stalled = err.failure().is_stalled();
            let message = err.to_string();
            for other in negative {
                if Some(other) != condition {
                    conditions.delete(other);
                }
            }
            if let Some(condition) = condition {
                conditions.mark_true(condition, reason, message.clone());
            }
            if stalled {
                conditions.mark_stalled(reason, message);
            } else {
                conditions.mark_failed_retrying(reason, message);
            }
        }
    }
    let ready = conditions
        .get(condition_type::READY)
        .map(|c| c.message.clone());
    session.conclude(Conclusion::WhenSettled);
    session.patch().await?;

    match result {
        Ok(outcome) => {
            let stored = match &outcome {
                Outcome::UpToDate { .. } => None,
                Outcome::Stored { message } => Some((message, None)),
                Outcome::StoredWithNote { message, note } => Some((message, Some(note))),
            };
            if let Some((message, note)) = stored {
                let (note, revision, digest) = match K::artifact(&mut session.status) {
                    Some(artifact) => (
                        note.cloned()
                            .unwrap_or_else(|| obj.new_artifact_note(artifact, message)),
                        artifact.revision.clone(),
                        artifact.digest.clone(),
                    ),
                    None => (message.clone(), String::new(), String::new()),
                };
                // The revision and digest let notification-controller tell
                // artifacts apart (and commit statuses find their commit).
                let metadata = [
                    (event::METADATA_REVISION, revision.as_str()),
                    (event::METADATA_DIGEST, digest.as_str()),
                ];
                ctx.recorder
                    .publish(obj, event::Severity::Info, "NewArtifact", &note, &metadata)
                    .await;
            }
            Ok(match obj.interval() {
                Some(interval) => ctx.requeue_after(interval),
                None => Action::await_change(),
            })
        }
        Err(err) => {
            // Repeating the same failure adds nothing; a new one is worth an event.
            if ready != previous_ready {
                ctx.recorder
                    .warning(obj, err.failure().reason, &err.to_string())
                    .await;
            }
            if err.failure().is_stalled() {
                // Nothing changes until the spec does.
                Ok(Action::await_change())
            } else {
                Err(err)
            }
        }
    }
}

/// A kind's own fetch-decide-act step: fills the status being built and says
/// what it produced.
pub type SyncFn<K> = for<'a> fn(
    &'a K,
    &'a Context,
    &'a mut <K as StatusObject>::Status,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Outcome, Error>> + Send + 'a>,
>;

/// The whole reconciliation of a source kind around its `sync` step: the
/// `finalizers.fluxcd.io` finalizer (cleanup removes the object's artifacts
/// from the store), nothing while `suspended`, otherwise a
/// [`StatusSession`], `sync` and [`finish`]; the harness records metrics.
pub async fn reconcile_source<K: SourceObject>(
    obj: std::sync::Arc<K>,
    ctx: std::sync::Arc<Context>,
    kind: &'static str,
    suspended: bool,
    sync: SyncFn<K>,
) -> Result<Action, Error> {
    runtime::finalizer::reconcile_namespaced(
        &ctx.client,
        api::meta::FINALIZER,
        obj,
        |_| suspended,
        |obj, api| async {
            let obj = obj;
            let mut session = StatusSession::begin(obj.as_ref(), api, CONTROLLER_NAME);
            // The kind's own step edits a status with its conditions inline.
            let mut status = session.desired();
            let result = sync(obj.as_ref(), &ctx, &mut status).await;
            session.replace_status(status);
            finish(obj.as_ref(), &ctx, session, result).await
        },
        |obj, api| async {
            let (obj, api) = (obj, api);
            let namespace = api.namespace().unwrap_or_default();
            if ctx.store.remove_object(kind, namespace, &obj.name_any())? {
                tracing::info!(namespace, name = %obj.name_any(), "garbage collected artifacts for deleted resource");
            }
            Ok(Action::await_change())
        },
    )
    .await
}

macro_rules! source_object {
    ($kind:ty, $status:ty) => {
        source_object!($kind, $status, {});
    };
    ($kind:ty, $status:ty, { $($extra:item)* }) => {
        impl SourceObject for $kind {

            $($extra)*

            fn interval(&self) -> Option<Duration> {
                interval_of(&self.spec.interval)
            }

            fn artifact(status: &mut Self::Status) -> &mut Option<Artifact> {
                &mut status.artifact
            }
        }
    };
}

/// The interval of a spec, whether required or optional there.
trait IntervalField {
    fn get(&self) -> Option<&api::Duration>;

    /// The interval when the spec sets none.
    fn default_interval(&self) -> Option<Duration> {
        None
    }
}

impl IntervalField for api::Duration {
    fn get(&self) -> Option<&api::Duration> {
        Some(self)
    }
}

impl IntervalField for Option<api::Duration> {
    fn get(&self) -> Option<&api::Duration> {
        self.as_ref()
    }

    fn default_interval(&self) -> Option<Duration> {
        // Only HelmRepository's interval is optional: Flux refreshes it every minute.
        Some(DEFAULT_HELM_REPOSITORY_INTERVAL)
    }
}

/// Flux's `HelmRepository.GetRequeueAfter` without `spec.interval`.
const DEFAULT_HELM_REPOSITORY_INTERVAL: Duration = Duration::from_secs(60);

fn interval_of(field: &impl IntervalField) -> Option<Duration> {
    match field.get() {
        Some(interval) => interval.to_std().ok(),
        None => field.default_interval(),
    }
}

source_object!(api::source::GitRepository, api::source::GitRepositoryStatus);
source_object!(api::source::Bucket, api::source::BucketStatus, {
    fn stored_message(revision: &str) -> String {
        crate::bucket::stored_message(revision)
    }
});
source_object!(
    api::source::HelmRepository,
    api::source::HelmRepositoryStatus
);
source_object!(api::source::HelmChart, api::source::HelmChartStatus, {
    fn success_reason(message: &str) -> &'static str {
        crate::helm_chart::success_reason(message)
    }

    fn storage_condition_follows_ready() -> bool {
        true
    }
});
source_object!(
    api::source::OCIRepository,
    api::source::OCIRepositoryStatus,
    {
        fn stored_message(revision: &str) -> String {
            crate::oci_repository::stored_message(revision)
        }

        fn new_artifact_note(&self, artifact: &Artifact, _ready_message: &str) -> String {
            crate::oci_repository::new_artifact_note(self, artifact)
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helm_repositories_without_interval_refresh_every_minute() {
        let repo = |spec: serde_json::Value| -> api::source::HelmRepository {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "charts"}, "spec": spec,
            }))
            .unwrap()
        };
        let url = "https://charts.example.com";
        assert_eq!(
            repo(serde_json::json!({"url": url})).interval(),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            repo(serde_json::json!({"url": url, "interval": "5m"})).interval(),
            Some(Duration::from_secs(300))
        );
    }
}
