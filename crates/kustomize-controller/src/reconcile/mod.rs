//! The Kustomization reconciler. One attempt reads top to bottom, a step
//! per module: `source` (the source's artifact, the dependencies, the
//! download) → `build` (generate, kustomize, decrypt, substitute) →
//! `apply` (staged server-side apply after a dry-run) → `prune` →
//! `health` → status, with Flux's conditions, reasons, messages, events
//! and requeue rules. A step that cannot go on returns a `Halt` (reason,
//! message, stall or retry, the event to send), which ends the attempt with
//! `Ready=False`; only infrastructure errors (writing status, the
//! finalizer, local I/O) go back to the harness.

mod apply;
mod build;
mod health;
mod prune;
mod source;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::event;
use api::kustomize::{DeletionPolicy, Kustomization};
use api::meta::{ConditionStatus, FINALIZER, ResourceInventory, condition_type, reason};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use runtime::ssa::Status as HealthStatus;
use runtime::ssa::inventory::stale_objects;
use runtime::status::{Conclusion, StatusSession};
use tracing::{info, warn};

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context};
use crate::history;

/// Kind name used in metrics and logs.
const KIND: &str = "Kustomization";

/// Go's `time.Duration.String()` (`1m30s`, `1.5s`, `250ms`), which Flux's
/// messages use.
fn go_duration(duration: Duration) -> api::Duration {
    api::Duration::from_std(duration)
}

/// `spec.interval`, falling back to 10 minutes when unparsable (the CRD
/// validates the pattern, so that does not happen on a real API server).
fn interval(ks: &Kustomization) -> Duration {
    ks.spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(600))
}

/// `spec.retryInterval`, else `spec.interval`.
fn retry_interval(ks: &Kustomization) -> Duration {
    ks.spec
        .retry_interval
        .as_ref()
        .and_then(|d| d.to_std().ok())
        .unwrap_or_else(|| interval(ks))
}

/// Flux's `GetTimeout`: `spec.timeout`, else interval − 30s; never under 30s.
fn timeout(ks: &Kustomization) -> Duration {
    let floor = Duration::from_secs(30);
    ks.spec
        .timeout
        .as_ref()
        .and_then(|d| d.to_std().ok())
        .unwrap_or_else(|| interval(ks).saturating_sub(floor))
        .max(floor)
}

/// How an attempt ended, for requeueing and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    /// Success: come back after the (jittered) interval.
    Interval,
    /// Failure: retry after `retryInterval`.
    Retry,
    /// A dependency is not ready: retry after `--requeue-dependency`.
    Dependency,
    /// Nothing will change until the spec does.
    Wait,
}

/// The event a halted attempt sends.
enum Announce {
    /// None.
    Nothing,
    /// A warning with the halt's message.
    Warning,
    /// A normal event with its own message.
    Normal(String),
}

/// Why a step ended the attempt before Ready: what `Ready` says, whether
/// retrying can help, and what is announced.
struct Halt {
    reason: &'static str,
    message: String,
    stalled: bool,
    next: Next,
    announce: Announce,
}

impl Halt {
    /// A failure retried after `retryInterval`, announced with a warning.
    fn retry(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            stalled: false,
            next: Next::Retry,
            announce: Announce::Warning,
        }
    }

    /// A failure retrying cannot fix (`Stalled=True`), announced with a warning.
    fn stall(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            stalled: true,
            next: Next::Wait,
            ..Self::retry(reason, message)
        }
    }

    /// Without an event.
    fn quiet(self) -> Self {
        Self {
            announce: Announce::Nothing,
            ..self
        }
    }

    /// With a normal event saying `message` instead of a warning.
    fn announcing(self, message: String) -> Self {
        Self {
            announce: Announce::Normal(message),
            ..self
        }
    }

    /// Coming back as `next` says.
    fn then(self, next: Next) -> Self {
        Self { next, ..self }
    }
}

/// How a step stops the attempt: a halt reported in the status, or an
/// infrastructure error for the harness.
enum Stop {
    Halt(Halt),
    Error(Error),
}

impl From<Halt> for Stop {
    fn from(halt: Halt) -> Self {
        Stop::Halt(halt)
    }
}

impl<E: Into<Error>> From<E> for Stop {
    fn from(err: E) -> Self {
        Stop::Error(err.into())
    }
}

/// One reconciliation attempt of one Kustomization.
struct Attempt<'a> {
    ctx: &'a Context,
    obj: &'a Kustomization,
    name: String,
    namespace: String,
    /// The status being built and the writes.
    session: StatusSession<Kustomization>,
    started: Instant,
    /// The manifests' digest and snapshot metadata once built, for
    /// `.status.history`.
    history: Option<(String, BTreeMap<String, String>)>,
}

impl<'a> Attempt<'a> {
    fn new(obj: &'a Kustomization, ctx: &'a Context) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let api = Api::namespaced(ctx.client.clone(), &namespace);
        Attempt {
            ctx,
            obj,
            name: obj.name_any(),
            namespace,
            session: StatusSession::begin(obj, api, CONTROLLER_NAME),
            started: Instant::now(),
            history: None,
        }
    }

    /// Writes the status so far (only what changed).
    async fn patch(&mut self) -> Result<(), Error> {
        self.session.patch().await?;
        Ok(())
    }

    fn progressing(&mut self, message: String) {
        self.session.conditions.delete(condition_type::STALLED);
        self.session.conditions.mark_true(
            condition_type::RECONCILING,
            reason::PROGRESSING,
            message.clone(),
        );
        self.session
            .conditions
            .mark_unknown(condition_type::READY, reason::PROGRESSING, message);
    }

    fn fail(&mut self, why: &str, message: impl Into<String>) {
        self.session
            .conditions
            .mark_false(condition_type::READY, why, message);
    }

    /// An event as Flux sends it: the reason is the Ready reason once Ready
    /// is decided, the severity otherwise; the metadata names the revision.
    async fn event(&self, error: bool, message: &str) {
        self.event_with(error, message, &[]).await;
    }

    /// [`Attempt::event`] with more metadata (the commit status request of
    /// a finished reconciliation).
    async fn event_with(&self, error: bool, message: &str, extra: &[(&str, &str)]) {
        let reason = match self.session.conditions.get(condition_type::READY) {
            Some(ready) if ConditionStatus::of(&ready.status) != ConditionStatus::Unknown => {
                ready.reason.clone()
            }
            _ => if error { "error" } else { "info" }.to_string(),
        };
        let status = &self.session.status;
        let revision = status
            .last_attempted_revision
            .as_deref()
            .or(status.last_applied_revision.as_deref())
            .unwrap_or_default();
        let origin = status
            .last_applied_origin_revision
            .as_deref()
            .unwrap_or_default();
        let mut metadata = vec![
            (event::METADATA_REVISION, revision),
            (event::METADATA_ORIGIN_REVISION, origin),
        ];
        metadata.extend_from_slice(extra);
        let severity = if error {
            event::Severity::Error
        } else {
            event::Severity::Info
        };
        self.ctx
            .recorder
            .publish(self.obj, severity, &reason, message, &metadata)
            .await;
    }

    /// Records the outcome of applying the built manifests in `.status.history`.
    fn record(&mut self, outcome: &str) {
        let Some((checksum, metadata)) = &self.history else {
            return;
        };
        let history = self.session.status.history.get_or_insert_with(Vec::new);
        history::upsert(
            history,
            checksum,
            k8s_openapi::jiff::Timestamp::now(),
            self.started.elapsed(),
            outcome,
            metadata.clone(),
        );
    }

    /// Reports a halted attempt in the conditions and events.
    async fn halt(&mut self, halt: &Halt) {
        if halt.stalled {
            self.session
                .conditions
                .mark_stalled(halt.reason, halt.message.clone());
        } else {
            self.fail(halt.reason, halt.message.clone());
        }
        match &halt.announce {
            Announce::Nothing => {}
            Announce::Warning => self.event(true, &halt.message).await,
            Announce::Normal(message) => self.event(false, message).await,
        }
    }

    /// The attempt: its steps, and a halt turned into status.
    async fn run(&mut self) -> Result<Next, Error> {
        match self.steps().await {
            Ok(()) => Ok(Next::Interval),
            Err(Stop::Halt(halt)) => {
                self.halt(&halt).await;
                Ok(halt.next)
            }
            Err(Stop::Error(err)) => Err(err),
        }
    }

    /// The steps, top to bottom.
    async fn steps(&mut self) -> Result<(), Stop> {
        let source = self.source_artifact().await?;
        let revision = source.artifact.revision.clone();
        self.dependencies_ready(&revision).await?;

        self.session.status.last_attempted_revision = Some(revision.clone());
        let timeout = timeout(self.obj);
        self.progressing(format!(
            "Fetching manifests for revision {revision} with a timeout of {}",
            go_duration(timeout)
        ));
        self.patch().await?;

        let unpacked = self.unpack(&source.artifact).await?;
        let engine = self.apply_engine().await?;
        let built = self.build(unpacked.root.clone()).await?;
        drop(unpacked);
        let mut metadata = BTreeMap::from([("revision".to_owned(), revision.clone())]);
        if let Some(origin) = &source.origin {
            metadata.insert("originRevision".to_owned(), origin.clone());
        }
        self.history = Some((built.checksum.clone(), metadata));

        let change_set = self.apply(&engine, built, &revision).await?;
        self.prune(&engine, &change_set).await?;
        self.check_health(&engine, &change_set, &revision, timeout)
            .await?;

        let new_revision =
            self.session.status.last_applied_revision.as_deref() != Some(revision.as_str());
        let was_ready = self.session.conditions.is_true(condition_type::READY);
        self.session.status.last_applied_revision = Some(revision.clone());
        self.session.status.last_applied_origin_revision = source.origin;
        self.session.conditions.mark_ready(
            reason::RECONCILIATION_SUCCEEDED,
            format!("Applied revision: {revision}"),
        );
        self.record(reason::RECONCILIATION_SUCCEEDED);
        let message = format!(
            "Reconciliation finished in {}, next run in {}",
            go_duration(self.started.elapsed()),
            go_duration(interval(self.obj))
        );
        info!(kustomization = %self.name, namespace = %self.namespace, %revision, "{message}");
        // Repeated no-op passes (drift checks) do not add events.
        if new_revision || change_set.has_changes() || !was_ready {
            self.event_with(
                false,
                &message,
                &[(event::METADATA_COMMIT_STATUS, event::COMMIT_STATUS_UPDATE)],
            )
            .await;
        }
        Ok(())
    }
}

/// The API server's message (not kube's debug dump).
fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

async fn apply(obj: Arc<Kustomization>, ctx: &Context) -> Result<Action, Error> {
    let mut attempt = Attempt::new(&obj, ctx);
    let next = attempt.run().await;
    attempt.session.conclude(Conclusion::WhenReady);
    let patched = attempt.patch().await;
    let next = next?;
    patched?;
    Ok(match next {
        Next::Interval => Action::requeue(runtime::options::jittered(
            interval(&obj),
            ctx.settings.jitter_percent,
        )),
        Next::Retry => Action::requeue(retry_interval(&obj)),
        Next::Dependency => Action::requeue(ctx.settings.requeue_dependency),
        Next::Wait => Action::await_change(),
    })
}

/// The Kustomization is being deleted: garbage-collect its objects as its
/// `deletionPolicy` says, then let the finalizer go.
async fn cleanup(obj: Arc<Kustomization>, ctx: &Context) -> Result<Action, Error> {
    let policy = obj
        .spec
        .deletion_policy
        .unwrap_or(DeletionPolicy::MirrorPrune);
    let delete = match policy {
        DeletionPolicy::MirrorPrune => obj.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    let inventory: ResourceInventory = obj
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    if !delete || obj.spec.suspend == Some(true) || inventory.entries.is_empty() {
        return Ok(Action::await_change());
    }
    let attempt = Attempt::new(&obj, ctx);
    // A cluster that cannot be reached now is tried again (Flux keeps the
    // finalizer until it can collect); one that never can be is given up.
    let target = match ctx.target(&obj).await {
        Ok(target) => target,
        Err(err) if err.is_terminal() => {
            let message = format!("garbage collection skipped: {err}");
            attempt.event(true, &message).await;
            return Ok(Action::await_change());
        }
        Err(err) => return Err(Error::Cluster(err)),
    };
    let engine = attempt.engine(target);
    let objects = stale_objects(&inventory, &ResourceInventory::default()).unwrap_or_default();
    let pruned = engine.prune(&objects).await;
    if !pruned.deleted.is_empty() {
        attempt.event(false, &pruned.summary()).await;
    }
    for (object, why) in &pruned.failed {
        warn!(%object, %why, "garbage collection failed");
    }
    if policy == DeletionPolicy::WaitForTermination {
        let deadline = Instant::now() + timeout(&obj);
        loop {
            let health = engine.health_of(&pruned.deleted, &[]).await;
            if health.iter().all(|h| h.status == HealthStatus::NotFound) {
                break;
            }
            if Instant::now() >= deadline {
                attempt
                    .event(true, "timeout waiting for the deleted objects to terminate")
                    .await;
                break;
            }
            tokio::time::sleep(ctx.settings.health_poll_interval).await;
        }
    }
    Ok(Action::await_change())
}

/// Reconciles one Kustomization (the harness's entry point): the
/// finalizer added alongside the first pass, the cleanup on deletion.
pub async fn reconcile(obj: Arc<Kustomization>, ctx: Arc<Context>) -> Result<Action, Error> {
    runtime::finalizer::reconcile_namespaced(
        &ctx.client,
        FINALIZER,
        obj,
        |obj| obj.spec.suspend == Some(true),
        |obj, _| apply(obj, &ctx),
        |obj, _| cleanup(obj, &ctx),
    )
    .await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::build::manifests_digest;
    use super::*;
    use serde_json::Value;

    fn ks(spec: Value) -> Kustomization {
        let mut base = json!({"interval": "10m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "r"}});
        if let (Some(b), Some(s)) = (base.as_object_mut(), spec.as_object()) {
            b.extend(s.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "k", "namespace": "ns"}, "spec": base,
        }))
        .expect("kustomization")
    }

    #[test]
    fn timeouts_and_intervals_follow_flux_defaults() {
        assert_eq!(timeout(&ks(json!({}))), Duration::from_secs(570));
        assert_eq!(
            timeout(&ks(json!({"interval": "20s"}))),
            Duration::from_secs(30)
        );
        assert_eq!(
            timeout(&ks(json!({"timeout": "2m"}))),
            Duration::from_secs(120)
        );
        assert_eq!(
            timeout(&ks(json!({"timeout": "5s"}))),
            Duration::from_secs(30)
        );
        assert_eq!(retry_interval(&ks(json!({}))), Duration::from_secs(600));
        assert_eq!(
            retry_interval(&ks(json!({"retryInterval": "1m"}))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn manifest_digests_depend_on_content_only() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let objects = vec![a.as_object().expect("map").clone()];
        let digest = manifests_digest(&objects);
        assert!(digest.starts_with("sha256:"));
        assert_eq!(digest, manifests_digest(&objects));
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
        assert_ne!(
            digest,
            manifests_digest(&[b.as_object().expect("map").clone()])
        );
    }
}
