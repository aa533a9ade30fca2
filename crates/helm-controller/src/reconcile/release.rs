//! The release loop (Flux's atomic release): observe the release in Helm's
//! storage, decide the next action ([`crate::state`]), run it with helm,
//! record what it did (conditions, history, counters, events), and repeat
//! until nothing is left to do, an action would run twice, or a remediation
//! ran. Conditions are summarised into `Ready` after every action.

use std::collections::HashSet;
use std::time::Duration;

use api::event::Severity;
use api::helm::{ReleaseAction, Snapshot};
use api::meta::{condition_type, reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;

use super::Run;
use super::actions::*;
use crate::Error;
use crate::chart::LoadedChart;
use crate::helm_cli::{HelmError, ReleaseRef};
use crate::post_render::{PostRenderSpec, SpecDigests};
use crate::release::Release;
use crate::state::{
    Action, ActionKind, Desired, Halt, ReleaseState, active_remediation, determine_state, latest,
    next_action, retries_on_failure,
};

/// `Released` reasons.
pub(super) const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
pub(super) const INSTALL_FAILED: &str = "InstallFailed";
pub(super) const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
pub(super) const UPGRADE_FAILED: &str = "UpgradeFailed";
pub(super) const TEST_SUCCEEDED: &str = "TestSucceeded";
pub(super) const TEST_FAILED: &str = "TestFailed";
pub(super) const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
pub(super) const ROLLBACK_FAILED: &str = "RollbackFailed";
pub(super) const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
pub(super) const UNINSTALL_FAILED: &str = "UninstallFailed";
pub(super) const PENDING_RELEASE: &str = "PendingRelease";
pub(super) const DRIFT_DETECTED: &str = "DriftDetected";
pub(super) const NO_DRIFT_DETECTED: &str = "NoDriftDetected";
/// Retry interval of `RetryOnFailure` when none is given.
pub(super) const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(300);

/// What the release loop works with.
pub(crate) struct Request<'a> {
    /// Release name, namespace and identity.
    pub release: ReleaseRef,
    /// The chart.
    pub chart: &'a LoadedChart,
    /// The composed values.
    pub values: serde_json::Value,
    /// What "in sync" means.
    pub desired: Desired,
    /// Post-rendering instructions.
    pub post_render: PostRenderSpec,
    /// Flux's digests of the post-rendering spec.
    pub spec_digests: SpecDigests,
    /// A `forceAt` request is pending.
    pub force: bool,
}

/// How the release loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing left to do (Ready reflects the result).
    Done,
    /// Another pass is needed soon (after a remediation or a repeated action).
    RequeueSoon,
    /// `RetryOnFailure`: try again after this delay.
    RetryAfter(Duration),
    /// Out of retries or without a rollback target.
    Stalled,
}

pub(super) fn bump(counter: &mut Option<i64>) {
    *counter = Some(counter.unwrap_or(0) + 1);
}

/// Whether the storage holds a revision newer than `before`.
pub(super) fn wrote_revision(revisions: &[Release], before: Option<i64>) -> bool {
    revisions
        .last()
        .is_some_and(|r| before.is_none_or(|v| r.version > v))
}

pub(super) fn cause(err: &HelmError) -> String {
    match err {
        HelmError::Failed { cause, .. } => cause.clone(),
        other => other.to_string(),
    }
}

pub(super) fn now() -> Time {
    let seconds = k8s_openapi::jiff::Timestamp::now().as_second();
    Time(
        k8s_openapi::jiff::Timestamp::from_second(seconds)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

impl Run<'_> {
    pub(super) fn spec(&self) -> &api::helm::HelmReleaseSpec {
        &self.hr.spec
    }

    pub(super) fn current(&self) -> Option<Snapshot> {
        latest(self.session.status.history.as_deref().unwrap_or_default()).cloned()
    }

    /// Runs the release loop.
    pub(crate) async fn release(&mut self, req: &Request<'_>) -> Result<Outcome, Error> {
        let mut done: HashSet<ActionKind> = HashSet::new();
        loop {
            // Right after an action, the storage was just read directly;
            // otherwise the index answers unless it is behind the history.
            let stored = match self.observed_latest.take() {
                Some(observed) => observed,
                None => {
                    self.cluster
                        .storage
                        .latest_release(
                            &req.release.namespace,
                            &req.release.name,
                            self.session.status.history.as_deref().unwrap_or_default(),
                        )
                        .await?
                }
            };
            let stored = stored.as_ref();
            self.latest_stored = stored.cloned();
            let desired = Desired {
                spec_digests_changed: self.spec_digests_changed(req),
                ..req.desired.clone()
            };
            let state = determine_state(
                stored,
                self.session.status.history.as_deref().unwrap_or_default(),
                &desired,
                self.spec(),
                &self.session.status,
            );
            let mut drift = Vec::new();
            if state == ReleaseState::InSync
                && let Some(release) = stored
            {
                drift = self.detect_drift(release).await?;
            }
            let correct = !drift.is_empty() && self.drift_mode().1;
            let action = match next_action(
                &state,
                self.spec(),
                &self.session.status,
                req.force,
                correct,
            ) {
                Ok(action) => action,
                Err(Halt::RetriesExhausted(action)) => {
                    let failures = active_remediation(self.spec(), &self.session.status)
                        .map_or(0, |r| r.failures);
                    return Ok(self.retries_exceeded(action, failures).await);
                }
                Err(Halt::MissingRollbackTarget) => {
                    self.session.conditions.mark_stalled(
                        "MissingRollbackTarget",
                        "Failed to perform remediation: missing target release for rollback: cannot remediate failed release",
                    );
                    return Ok(Outcome::Stalled);
                }
            };
            let Some(action) = action else {
                self.in_sync();
                self.session.conditions.delete(condition_type::RECONCILING);
                self.summarize();
                return Ok(self.settle());
            };
            tracing::info!(object = %self.hr.name_any(), state = ?state, action = action.name(), "release action");
            if done.contains(&action.kind()) {
                return Ok(self.stop_for_now());
            }
            let message = format!(
                "Running '{}' action with timeout of {}",
                action.name(),
                api::Duration::from_std(action_timeout(&action, self.hr))
            );
            self.session.conditions.mark_true(
                condition_type::RECONCILING,
                reason::PROGRESSING,
                message.clone(),
            );
            if action.kind() == ActionKind::Release {
                self.session.conditions.mark_unknown(
                    condition_type::READY,
                    reason::PROGRESSING,
                    message,
                );
            }
            // The start of the action is written while the action runs:
            // the status shows it as before, and helm does not wait for the
            // round trip.
            let start = self.status_write();
            let (started, result) = tokio::join!(start, async {
                match &action {
                    Action::Install => self.install(req, stored).await,
                    Action::Upgrade { clear_history } => self.upgrade(req, *clear_history).await,
                    Action::Test => self.test(req).await,
                    Action::Unlock => self.unlock(req).await,
                    Action::Rollback { to_version } => self.rollback(req, *to_version).await,
                    Action::UninstallRemediation => self.uninstall_remediation(req).await,
                    Action::CorrectDrift => self.correct_drift(&drift).await,
                }
            });
            match started {
                Ok(status) => self.status_written(status),
                // Not fatal: the next write carries everything since the
                // last successful one.
                Err(err) => {
                    tracing::warn!(object = %self.hr.name_any(), error = %err, "writing the start of a release action failed");
                }
            }
            self.summarize();
            if let Err(err) = result {
                if self.session.conditions.is_true(condition_type::READY) {
                    self.session.conditions.mark_false(
                        condition_type::READY,
                        "ReconcileError",
                        err.to_string(),
                    );
                }
                return Err(err);
            }
            if action.kind() == ActionKind::Remediate {
                return Ok(self.after_remediation().await);
            }
            done.insert(action.kind());
            // No status write here: the next action writes status before it
            // starts, and every way out of the loop ends with a write.
        }
    }

    /// The outcome once nothing is left to do: a failure under
    /// `RetryOnFailure` is retried after its interval.
    pub(super) fn settle(&self) -> Outcome {
        if let Some(action) = self.session.status.last_attempted_release_action
            && retries_on_failure(self.spec(), action)
            && self.session.conditions.is_false(condition_type::READY)
        {
            return Outcome::RetryAfter(self.retry_interval(action));
        }
        Outcome::Done
    }

    pub(super) fn retry_interval(&self, action: ReleaseAction) -> Duration {
        let strategy = match action {
            ReleaseAction::Install => self
                .spec()
                .install
                .as_ref()
                .and_then(|s| s.strategy.clone()),
            ReleaseAction::Upgrade => self
                .spec()
                .upgrade
                .as_ref()
                .and_then(|s| s.strategy.clone()),
        };
        strategy
            .and_then(|s| s.retry_interval)
            .and_then(|d| d.to_std().ok())
            .unwrap_or(DEFAULT_RETRY_INTERVAL)
    }

    /// An action would run a second time in this reconciliation: continue
    /// in a new one, unless the retries are used up.
    pub(super) fn stop_for_now(&mut self) -> Outcome {
        let exhausted = active_remediation(self.spec(), &self.session.status)
            .is_some_and(|r| r.retries_exhausted());
        if exhausted {
            self.session.conditions.delete(condition_type::RECONCILING);
            return Outcome::Done;
        }
        if let Some(action) = self.session.status.last_attempted_release_action
            && retries_on_failure(self.spec(), action)
        {
            self.session.conditions.delete(condition_type::RECONCILING);
            return Outcome::RetryAfter(self.retry_interval(action));
        }
        self.retry_soon()
    }

    /// Another attempt follows at once: Reconciling says so, with the
    /// failure Ready carries.
    pub(super) fn retry_soon(&mut self) -> Outcome {
        let message = self
            .session
            .conditions
            .get(condition_type::READY)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        self.session.conditions.mark_true(
            condition_type::RECONCILING,
            reason::PROGRESSING_WITH_RETRY,
            message,
        );
        Outcome::RequeueSoon
    }

    /// The remediation retries of `action` are used up: Stalled, and a
    /// warning event.
    pub(super) async fn retries_exceeded(
        &mut self,
        action: impl std::fmt::Display,
        failures: i64,
    ) -> Outcome {
        let message = format!("Failed to {action} after {failures} attempt(s)");
        self.session
            .conditions
            .mark_stalled("RetriesExceeded", message.clone());
        self.ctx
            .recorder
            .warning(self.hr, "RetriesExceeded", &message)
            .await;
        Outcome::Stalled
    }

    pub(super) async fn after_remediation(&mut self) -> Outcome {
        match active_remediation(self.spec(), &self.session.status) {
            Some(r) if r.retries_exhausted() => {
                let action = match r.action {
                    ReleaseAction::Install => "install",
                    ReleaseAction::Upgrade => "upgrade",
                };
                self.retries_exceeded(action, r.failures).await
            }
            _ => self.retry_soon(),
        }
    }

    /// Re-reads the stored revisions and records what an action wrote: a new
    /// latest revision becomes the newest history entry, and entries of
    /// revisions it rewrote (superseded, failed) are refreshed.
    pub(super) async fn observe(
        &mut self,
        req: &Request<'_>,
        before: Option<i64>,
    ) -> Result<Vec<Release>, Error> {
        self.observe_storage(req, before, true, None).await
    }

    /// [`Self::observe`]; a newer revision is recorded in the history only
    /// when `wrote` (the action may have written it). `printed` is the
    /// release the action's helm process printed, if any.
    pub(super) async fn observe_storage(
        &mut self,
        req: &Request<'_>,
        before: Option<i64>,
        wrote: bool,
        printed: Option<Release>,
    ) -> Result<Vec<Release>, Error> {
        let (namespace, name) = (&req.release.namespace, &req.release.name);
        // An install into an absent release (nothing stored before, no
        // history) wrote revision 1 or nothing: what helm printed is that
        // revision, else one GET tells instead of a list.
        let first_install = wrote && before.is_none() && self.session.status.history.is_none();
        let printed = printed.filter(|r| r.name == *name && r.version == 1);
        let storage = &self.cluster.storage;
        let stored = match printed {
            Some(release) if first_install => {
                storage.remember_printed(namespace, &release);
                return Ok(self.record_revisions(req, before, wrote, vec![release]));
            }
            _ if first_install => storage
                .first_revision(namespace, name)
                .await?
                .into_iter()
                .collect(),
            _ => storage.revisions(namespace, name).await?,
        };
        let revisions = stored.into_iter().map(|stored| stored.release).collect();
        Ok(self.record_revisions(req, before, wrote, revisions))
    }

    /// Records `revisions` (oldest first) as [`Self::observe_storage`] read
    /// them, and returns them.
    pub(super) fn record_revisions(
        &mut self,
        req: &Request<'_>,
        before: Option<i64>,
        wrote: bool,
        revisions: Vec<Release>,
    ) -> Vec<Release> {
        let mut history = self.session.status.history.take().unwrap_or_default();
        for snapshot in &mut history {
            if let Some(stored) = revisions
                .iter()
                .find(|r| r.version == snapshot.version && r.name == snapshot.name)
            {
                let mut refreshed = stored.to_snapshot(snapshot.oci_digest.clone());
                refreshed.test_hooks = snapshot.test_hooks.clone();
                refreshed.action = snapshot.action;
                *snapshot = refreshed;
            }
        }
        if let Some(newest) = revisions.last()
            && wrote
            && before.is_none_or(|v| newest.version > v)
            && !history.iter().any(|s| s.version == newest.version)
        {
            let mut snapshot = newest.to_snapshot(req.chart.oci_digest.clone());
            snapshot.action = self.session.status.last_attempted_release_action;
            history.push(snapshot);
        }
        history.sort_by_key(|s| std::cmp::Reverse(s.version));
        self.session.status.history = (!history.is_empty()).then_some(history);
        self.observed_latest = Some(revisions.last().cloned());
        revisions
    }

    pub(super) fn chart_label(req: &Request<'_>) -> String {
        format!("{}@{}", req.chart.metadata.name, req.chart.metadata.version)
    }

    /// Records a successful action: `type_=True` with `reason`, and an event.
    pub(super) async fn succeeded(&mut self, type_: &str, reason: &str, message: String) {
        self.session
            .conditions
            .mark_true(type_, reason, message.clone());
        self.release_event(Severity::Info, reason, &message).await;
    }

    /// Records a failed action: one more failure, `type_=False` with
    /// `reason`, and a warning event.
    pub(super) async fn failed(&mut self, type_: &str, reason: &str, message: String) {
        bump(&mut self.session.status.failures);
        self.session
            .conditions
            .mark_false(type_, reason, message.clone());
        self.release_event(Severity::Error, reason, &message).await;
    }

    /// An event about the release attempted: its chart version and
    /// configuration digest go along as metadata.
    async fn release_event(&self, severity: Severity, reason: &str, message: &str) {
        let status = &self.session.status;
        self.ctx
            .recorder
            .release(
                self.hr,
                severity,
                reason,
                message,
                status.last_attempted_revision.as_deref(),
                status.last_attempted_config_digest.as_deref(),
            )
            .await;
    }

    /// Counts a failure against the remediation of `action`.
    pub(super) fn count_failure(&mut self, action: ReleaseAction) {
        match action {
            ReleaseAction::Install => bump(&mut self.session.status.install_failures),
            ReleaseAction::Upgrade => bump(&mut self.session.status.upgrade_failures),
        }
    }

    /// Why the post-renderers or common metadata need a new release, as
    /// Flux decides it: only for a new generation (within one, the digests
    /// recorded after the last release are the spec's), when their digests
    /// differ from those recorded.
    pub(super) fn spec_digests_changed(&self, req: &Request<'_>) -> Option<&'static str> {
        if self.session.status.observed_generation == self.hr.metadata.generation {
            return None;
        }
        req.spec_digests.changed(&self.session.status)
    }
}
