//! The release loop (Flux's atomic release): observe the release in Helm's
//! storage, decide the next action ([`crate::state`]), run it with helm,
//! record what it did (conditions, history, counters, events), and repeat
//! until nothing is left to do, an action would run twice, or a remediation
//! ran. Conditions are summarised into `Ready` after every action.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use api::helm::{CRDsPolicy, HelmRelease, ReleaseAction, Snapshot, WaitStrategyName};
use api::meta::{ConditionStatus, ResourceInventory, condition_type, reason};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::DynamicObject;
use kube::{Resource, ResourceExt};
use runtime::ssa::{ApplyOptions, DriftState, Engine, ObjectRef, Owner};

use crate::Error;
use crate::chart::LoadedChart;
use crate::helm_cli::{
    ChartOptions, HelmError, InstallOptions, ReleaseRef, RollbackOptions, ServerSide, TestOptions,
    UpgradeOptions, Wait,
};
use crate::post_render::PostRenderSpec;
use crate::reconciler::{DEFAULT_TIMEOUT, Run, uninstall_options};
use crate::release::{Release, snapshot_chart, snapshot_full_name};
use crate::state::{
    Action, ActionKind, Desired, Halt, ReleaseState, active_remediation, determine_state,
    has_been_tested, ignore_test_failures, latest, next_action, retries_on_failure, tests_enabled,
    truncate,
};

/// `Released` reasons.
const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
const INSTALL_FAILED: &str = "InstallFailed";
const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
const UPGRADE_FAILED: &str = "UpgradeFailed";
const TEST_SUCCEEDED: &str = "TestSucceeded";
const TEST_FAILED: &str = "TestFailed";
const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
const ROLLBACK_FAILED: &str = "RollbackFailed";
const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
const UNINSTALL_FAILED: &str = "UninstallFailed";
const PENDING_RELEASE: &str = "PendingRelease";
const DRIFT_DETECTED: &str = "DriftDetected";
const NO_DRIFT_DETECTED: &str = "NoDriftDetected";
/// Retry interval of `RetryOnFailure` when none is given.
const DEFAULT_RETRY_INTERVAL: Duration = Duration::from_secs(300);

/// What the release loop works with.
pub struct Request<'a> {
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
    /// A `forceAt` request is pending.
    pub force: bool,
}

/// How the release loop ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing left to do (Ready reflects the result).
    Done,
    /// Another pass is needed soon (after a remediation or a repeated action).
    RequeueSoon,
    /// `RetryOnFailure`: try again after this delay.
    RetryAfter(Duration),
    /// Out of retries or without a rollback target.
    Stalled,
}

/// The timeout of an action: its own, else `spec.timeout`, else 5m.
pub fn timeout_of(own: Option<&api::Duration>, hr: &HelmRelease) -> Duration {
    own.or(hr.spec.timeout.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_TIMEOUT)
}

fn wait_of(hr: &HelmRelease, disabled: Option<bool>) -> Wait {
    if disabled.unwrap_or(false) {
        return Wait::HookOnly;
    }
    match hr.spec.wait_strategy.as_ref().map(|w| w.name) {
        Some(WaitStrategyName::Legacy) => Wait::Legacy,
        _ => Wait::Watcher,
    }
}

fn server_side(mode: Option<api::helm::ServerSideApplyMode>) -> ServerSide {
    match mode {
        Some(api::helm::ServerSideApplyMode::Enabled) => ServerSide::Enabled,
        Some(api::helm::ServerSideApplyMode::Disabled) => ServerSide::Disabled,
        _ => ServerSide::Auto,
    }
}

fn history_max(hr: &HelmRelease) -> u32 {
    u32::try_from(hr.spec.max_history.unwrap_or(5)).unwrap_or(0)
}

/// The CRDs policy of installs: `install.crds`, else `Skip` with the
/// deprecated `skipCRDs`, else `Create`.
pub fn install_crds_policy(hr: &HelmRelease) -> CRDsPolicy {
    let spec = hr.spec.install.clone().unwrap_or_default();
    spec.crds.unwrap_or(if spec.skip_crds.unwrap_or(false) {
        CRDsPolicy::Skip
    } else {
        CRDsPolicy::Create
    })
}

/// The CRDs policy of upgrades: `upgrade.crds`, else `Skip`.
pub fn upgrade_crds_policy(hr: &HelmRelease) -> CRDsPolicy {
    hr.spec
        .upgrade
        .as_ref()
        .and_then(|u| u.crds)
        .unwrap_or(CRDsPolicy::Skip)
}

/// The settings install and upgrade share, from `spec.install` or
/// `spec.upgrade` (different types with the same field names).
macro_rules! chart_options {
    ($hr:expr, $spec:expr) => {
        ChartOptions {
            timeout: timeout_of($spec.timeout.as_ref(), $hr),
            wait: wait_of($hr, $spec.disable_wait),
            wait_for_jobs: !$spec.disable_wait_for_jobs.unwrap_or(false),
            take_ownership: !$spec.disable_take_ownership.unwrap_or(false),
            disable_hooks: $spec.disable_hooks.unwrap_or(false),
            disable_openapi_validation: $spec.disable_openapi_validation.unwrap_or(false),
            skip_schema_validation: $spec.disable_schema_validation.unwrap_or(false),
        }
    };
}

/// `helm install` settings of a HelmRelease.
pub fn install_options(hr: &HelmRelease, replace: bool) -> InstallOptions {
    let spec = hr.spec.install.clone().unwrap_or_default();
    // helm creates missing CRDs itself; any other policy is the controller's.
    let crds = install_crds_policy(hr);
    InstallOptions {
        chart: chart_options!(hr, spec),
        create_namespace: spec.create_namespace.unwrap_or(false),
        skip_crds: crds != CRDsPolicy::Create,
        replace: replace || spec.replace.unwrap_or(false),
        server_side: spec.server_side_apply.unwrap_or(true),
    }
}

/// `helm upgrade` settings of a HelmRelease.
pub fn upgrade_options(hr: &HelmRelease) -> UpgradeOptions {
    let spec = hr.spec.upgrade.clone().unwrap_or_default();
    UpgradeOptions {
        chart: chart_options!(hr, spec),
        force: spec.force.unwrap_or(false),
        preserve_values: spec.preserve_values.unwrap_or(false),
        cleanup_on_fail: spec.cleanup_on_fail.unwrap_or(false),
        history_max: history_max(hr),
        server_side: server_side(spec.server_side_apply),
    }
}

fn rollback_options(hr: &HelmRelease, revision: i64) -> RollbackOptions {
    let spec = hr.spec.rollback.clone().unwrap_or_default();
    RollbackOptions {
        revision,
        timeout: timeout_of(spec.timeout.as_ref(), hr),
        wait: wait_of(hr, spec.disable_wait),
        wait_for_jobs: !spec.disable_wait_for_jobs.unwrap_or(false),
        disable_hooks: spec.disable_hooks.unwrap_or(false),
        force: spec.force.unwrap_or(false),
        cleanup_on_fail: spec.cleanup_on_fail.unwrap_or(false),
        history_max: history_max(hr),
        server_side: server_side(spec.server_side_apply),
    }
}

fn test_options(hr: &HelmRelease) -> TestOptions {
    let spec = hr.spec.test.clone().unwrap_or_default();
    TestOptions {
        timeout: timeout_of(spec.timeout.as_ref(), hr),
        filters: spec
            .filters
            .iter()
            .flatten()
            .map(|f| (f.name.clone(), f.exclude.unwrap_or(false)))
            .collect(),
    }
}

fn action_timeout(action: &Action, hr: &HelmRelease) -> Duration {
    let spec = &hr.spec;
    let own = match action {
        Action::Install => spec.install.as_ref().and_then(|s| s.timeout.as_ref()),
        Action::Upgrade { .. } => spec.upgrade.as_ref().and_then(|s| s.timeout.as_ref()),
        Action::Test => spec.test.as_ref().and_then(|s| s.timeout.as_ref()),
        Action::Rollback { .. } => spec.rollback.as_ref().and_then(|s| s.timeout.as_ref()),
        Action::UninstallRemediation => spec.uninstall.as_ref().and_then(|s| s.timeout.as_ref()),
        Action::Unlock | Action::CorrectDrift => None,
    };
    timeout_of(own, hr)
}

fn bump(counter: &mut Option<i64>) {
    *counter = Some(counter.unwrap_or(0) + 1);
}

/// Whether the storage holds a revision newer than `before`.
fn wrote_revision(revisions: &[Release], before: Option<i64>) -> bool {
    revisions
        .last()
        .is_some_and(|r| before.is_none_or(|v| r.version > v))
}

fn cause(err: &HelmError) -> String {
    match err {
        HelmError::Failed { cause, .. } => cause.clone(),
        other => other.to_string(),
    }
}

fn now() -> Time {
    let seconds = k8s_openapi::jiff::Timestamp::now().as_second();
    Time(
        k8s_openapi::jiff::Timestamp::from_second(seconds)
            .unwrap_or(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    )
}

impl Run<'_> {
    fn spec(&self) -> &api::helm::HelmReleaseSpec {
        &self.hr.spec
    }

    fn current(&self) -> Option<Snapshot> {
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
                post_renderers_changed: self.post_renderers_changed(req),
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
    fn settle(&self) -> Outcome {
        if let Some(action) = self.session.status.last_attempted_release_action
            && retries_on_failure(self.spec(), action)
            && self.session.conditions.is_false(condition_type::READY)
        {
            return Outcome::RetryAfter(self.retry_interval(action));
        }
        Outcome::Done
    }

    fn retry_interval(&self, action: ReleaseAction) -> Duration {
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
    fn stop_for_now(&mut self) -> Outcome {
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
    fn retry_soon(&mut self) -> Outcome {
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
    async fn retries_exceeded(&mut self, action: impl std::fmt::Display, failures: i64) -> Outcome {
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

    async fn after_remediation(&mut self) -> Outcome {
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

    /// In sync: trim the history, and turn a lingering `Remediated` into
    /// `Released` (the release already matches after a rollback).
    fn in_sync(&mut self) {
        let ignore = ignore_test_failures(self.spec(), &self.session.status);
        if let Some(history) = self.session.status.history.as_mut() {
            truncate(history, ignore);
        }
        if self.session.conditions.is_true(condition_type::REMEDIATED)
            && let Some(current) = self.current()
        {
            let message = format!(
                "Helm upgrade succeeded for release {} with chart {}",
                snapshot_full_name(&current),
                snapshot_chart(&current)
            );
            let mut items = std::mem::take(&mut self.session.conditions).into_items();
            items.retain(|c| c.type_ != condition_type::RELEASED);
            for condition in &mut items {
                if condition.type_ == condition_type::REMEDIATED {
                    condition.type_ = condition_type::RELEASED.to_string();
                    condition.reason = UPGRADE_SUCCEEDED.to_string();
                    condition.message = message.clone();
                    condition.status = ConditionStatus::True.to_string();
                }
            }
            self.session.conditions =
                runtime::conditions::Conditions::new(items, self.hr.meta().generation);
        }
    }

    /// `Ready` from `Remediated`, `TestSuccess` (when tests count) and
    /// `Released`: the most recent of them, in that order of priority; a
    /// remediation always means not ready.
    fn summarize(&mut self) {
        let tests = tests_enabled(self.spec());
        if !tests {
            self.session.conditions.delete(condition_type::TEST_SUCCESS);
        }
        let counts_tests = tests
            && !self
                .spec()
                .test
                .as_ref()
                .and_then(|t| t.ignore_failures)
                .unwrap_or(false);
        let order: &[&str] = if counts_tests {
            &[
                condition_type::REMEDIATED,
                condition_type::TEST_SUCCESS,
                condition_type::RELEASED,
            ]
        } else {
            &[condition_type::REMEDIATED, condition_type::RELEASED]
        };
        let mut best: Option<(i64, usize)> = None;
        for (priority, type_) in order.iter().enumerate() {
            if let Some(condition) = self.session.conditions.get(type_) {
                let generation = condition.observed_generation.unwrap_or(0);
                if best.is_none_or(|(g, _)| generation > g) {
                    best = Some((generation, priority));
                }
            }
        }
        let Some((_, priority)) = best else {
            return;
        };
        let Some(source) = self.session.conditions.get(order[priority]).cloned() else {
            return;
        };
        let status = if source.type_ == condition_type::REMEDIATED {
            ConditionStatus::False
        } else {
            ConditionStatus::of(&source.status)
        };
        if status == ConditionStatus::True {
            self.session.conditions.delete(condition_type::STALLED);
        }
        self.session.conditions.set(
            condition_type::READY,
            status,
            &source.reason,
            source.message,
        );
    }

    /// Re-reads the stored revisions and records what an action wrote: a new
    /// latest revision becomes the newest history entry, and entries of
    /// revisions it rewrote (superseded, failed) are refreshed.
    async fn observe(
        &mut self,
        req: &Request<'_>,
        before: Option<i64>,
    ) -> Result<Vec<Release>, Error> {
        self.observe_storage(req, before, true, None).await
    }

    /// [`Self::observe`]; a newer revision is recorded in the history only
    /// when `wrote` (the action may have written it). `printed` is the
    /// release the action's helm process printed, if any.
    async fn observe_storage(
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
    fn record_revisions(
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

    fn chart_label(req: &Request<'_>) -> String {
        format!("{}@{}", req.chart.metadata.name, req.chart.metadata.version)
    }

    /// Records a successful action: `type_=True` with `reason`, and an event.
    async fn succeeded(&mut self, type_: &str, reason: &str, message: String) {
        self.session
            .conditions
            .mark_true(type_, reason, message.clone());
        self.ctx.recorder.normal(self.hr, reason, &message).await;
    }

    /// Records a failed action: one more failure, `type_=False` with
    /// `reason`, and a warning event.
    async fn failed(&mut self, type_: &str, reason: &str, message: String) {
        bump(&mut self.session.status.failures);
        self.session
            .conditions
            .mark_false(type_, reason, message.clone());
        self.ctx.recorder.warning(self.hr, reason, &message).await;
    }

    /// Counts a failure against the remediation of `action`.
    fn count_failure(&mut self, action: ReleaseAction) {
        match action {
            ReleaseAction::Install => bump(&mut self.session.status.install_failures),
            ReleaseAction::Upgrade => bump(&mut self.session.status.upgrade_failures),
        }
    }

    /// Applies the chart's CRDs per `policy` before helm runs; a failure is
    /// a failed release attempt that left nothing in the storage.
    async fn apply_chart_crds(
        &mut self,
        req: &Request<'_>,
        policy: CRDsPolicy,
    ) -> Result<(), Error> {
        if policy == CRDsPolicy::Skip {
            return Ok(());
        }
        let files = crate::chart::read_crd_files(&req.chart.path)?;
        let applied = match crate::crds::parse_crds(&files) {
            Ok(crds) => {
                crate::crds::apply(
                    &self.cluster.client,
                    policy,
                    &crds,
                    crate::reconciler::CONTROLLER_NAME,
                )
                .await
            }
            Err(err) => Err(err),
        };
        if let Err(err) = applied {
            let message = format!(
                "failed to apply CustomResourceDefinitions of chart {}: {err}",
                Self::chart_label(req)
            );
            self.failed(condition_type::RELEASED, "CRDsFailed", message.clone())
                .await;
            return Err(Error::Release(message));
        }
        Ok(())
    }

    /// Whether the post-renderers or common metadata differ from those of
    /// the last successful release.
    fn post_renderers_changed(&self, req: &Request<'_>) -> bool {
        let differs = |observed: &Option<String>, now: String| {
            observed.as_ref().is_some_and(|digest| *digest != now)
        };
        differs(
            &self.session.status.observed_post_renderers_digest,
            req.post_render.renderers_digest(),
        ) || differs(
            &self.session.status.observed_common_metadata_digest,
            req.post_render.common_metadata_digest(),
        )
    }

    /// Runs an install or upgrade and records its outcome. Only a failure
    /// that left a release behind counts towards the remediation: without
    /// one there is nothing to remediate, and the action is simply retried.
    async fn release_action(
        &mut self,
        req: &Request<'_>,
        action: ReleaseAction,
        before: Option<i64>,
        result: Result<Option<Release>, HelmError>,
        started: Instant,
    ) -> Result<(), Error> {
        self.session.status.last_attempted_release_action_duration =
            Some(api::Duration::from_std(started.elapsed()));
        let refused = result.as_ref().is_err_and(HelmError::is_name_in_use);
        let (result, printed) = match result {
            Ok(printed) => (Ok(()), printed),
            Err(err) => (Err(err), None),
        };
        let revisions = self.observe_storage(req, before, !refused, printed).await?;
        let (verb, succeeded, failed) = match action {
            ReleaseAction::Install => ("install", INSTALL_SUCCEEDED, INSTALL_FAILED),
            ReleaseAction::Upgrade => ("upgrade", UPGRADE_SUCCEEDED, UPGRADE_FAILED),
        };
        if let Err(err) = result {
            let message = format!(
                "Helm {verb} failed for release {}/{} with chart {}: {}",
                req.release.namespace,
                req.release.name,
                Self::chart_label(req),
                cause(&err)
            );
            self.failed(condition_type::RELEASED, failed, message.clone())
                .await;
            // Only a revision this action wrote is remediated: not the one a
            // refused install found (judged afresh on the next attempt), nor
            // a newer revision of another chart.
            let ours = revisions.last().is_some_and(|r| {
                let metadata = r.chart_metadata();
                metadata.name == req.chart.metadata.name
                    && metadata.version == req.chart.metadata.version
            });
            if refused || !ours || !wrote_revision(&revisions, before) {
                return Err(Error::Release(message));
            }
            self.count_failure(action);
            return Ok(());
        }
        // The release now carries the current post-renderers.
        self.session.status.observed_post_renderers_digest =
            Some(req.post_render.renderers_digest());
        self.session.status.observed_common_metadata_digest =
            Some(req.post_render.common_metadata_digest());
        let Some(current) = self.current() else {
            return Ok(());
        };
        let (full, chart) = (snapshot_full_name(&current), snapshot_chart(&current));
        if tests_enabled(self.spec()) && !has_been_tested(&current) {
            self.session.conditions.mark_unknown(
                condition_type::TEST_SUCCESS,
                "AwaitingTests",
                format!("Helm release {full} with chart {chart} is awaiting tests"),
            );
        }
        if retries_on_failure(self.spec(), action) {
            self.session.status.failures = None;
            self.session.status.install_failures = None;
            self.session.status.upgrade_failures = None;
        }
        let message = format!("Helm {verb} succeeded for release {full} with chart {chart}");
        self.succeeded(condition_type::RELEASED, succeeded, message)
            .await;
        Ok(())
    }

    async fn install(&mut self, req: &Request<'_>, stored: Option<&Release>) -> Result<(), Error> {
        self.session.status.last_attempted_release_action = Some(ReleaseAction::Install);
        // An install starts a new lifecycle: never roll back past it.
        self.session.status.history = None;
        self.session.conditions.delete(condition_type::TEST_SUCCESS);
        self.session.conditions.delete(condition_type::REMEDIATED);
        let before = stored.map(|s| s.version);
        let replace = stored.is_some_and(|s| s.info.status == "uninstalled");
        let started = Instant::now();
        if install_crds_policy(self.hr) == CRDsPolicy::CreateReplace {
            self.apply_chart_crds(req, CRDsPolicy::CreateReplace)
                .await?;
        }
        let result = self
            .cluster
            .helm
            .install(
                &req.release,
                &req.chart.path,
                &req.values,
                Some(&req.post_render),
                &install_options(self.hr, replace),
            )
            .await;
        self.release_action(req, ReleaseAction::Install, before, result, started)
            .await
    }

    async fn upgrade(&mut self, req: &Request<'_>, clear_history: bool) -> Result<(), Error> {
        if clear_history {
            self.session.status.history = None;
        }
        self.session.status.last_attempted_release_action = Some(ReleaseAction::Upgrade);
        self.session.conditions.delete(condition_type::TEST_SUCCESS);
        self.session.conditions.delete(condition_type::REMEDIATED);
        // The latest revision as the release loop just read it.
        let before = self.latest_stored.as_ref().map(|s| s.version);
        let started = Instant::now();
        self.apply_chart_crds(req, upgrade_crds_policy(self.hr))
            .await?;
        let result = self
            .cluster
            .helm
            .upgrade(
                &req.release,
                &req.chart.path,
                &req.values,
                Some(&req.post_render),
                &upgrade_options(self.hr),
            )
            .await;
        self.release_action(req, ReleaseAction::Upgrade, before, result, started)
            .await
    }

    async fn test(&mut self, req: &Request<'_>) -> Result<(), Error> {
        let Some(current) = self.current() else {
            return Err(Error::Release(
                "no latest release: required for test".into(),
            ));
        };
        let result = self
            .cluster
            .helm
            .test(&req.release, &test_options(self.hr))
            .await;
        // Record the hooks' results on the entry of the tested revision.
        let tested_release = self
            .cluster
            .storage
            .latest(&req.release.namespace, &req.release.name)
            .await?;
        self.observed_latest = Some(tested_release.as_ref().map(|s| s.release.clone()));
        if let Some(stored) = tested_release
            && stored.release.version == current.version
            && let Some(history) = self.session.status.history.as_mut()
            && let Some(entry) = history.iter_mut().find(|s| s.version == current.version)
        {
            entry.test_hooks = Some(stored.release.test_hooks());
        }
        let tested = self.current().and_then(|s| s.test_hooks);
        let (full, chart) = (snapshot_full_name(&current), snapshot_chart(&current));
        if let Err(err) = result {
            let message = format!(
                "Helm test failed for release {full} with chart {chart}: {}",
                cause(&err)
            );
            self.failed(condition_type::TEST_SUCCESS, TEST_FAILED, message.clone())
                .await;
            if tested.is_none() {
                return Err(Error::Release(message));
            }
            if let Some(remediation) = active_remediation(self.spec(), &self.session.status)
                && !remediation.ignore_test_failures
            {
                self.count_failure(remediation.action);
            }
            return Ok(());
        }
        let detail = match tested.map_or(0, |hooks| hooks.len()) {
            0 => "no test hooks".to_string(),
            1 => "1 test hook completed successfully".to_string(),
            n => format!("{n} test hooks completed successfully"),
        };
        let message =
            format!("Helm test succeeded for release {full} with chart {chart}: {detail}");
        self.succeeded(condition_type::TEST_SUCCESS, TEST_SUCCEEDED, message)
            .await;
        Ok(())
    }

    async fn unlock(&mut self, req: &Request<'_>) -> Result<(), Error> {
        let Some(stored) = self
            .cluster
            .storage
            .latest(&req.release.namespace, &req.release.name)
            .await?
        else {
            return Ok(());
        };
        if !stored.is_pending() {
            return Ok(());
        }
        let status = stored.release.info.status.clone();
        let full = stored.release.full_name();
        let metadata = stored.release.chart_metadata();
        let chart = format!("{}@{}", metadata.name, metadata.version);
        let result = self
            .cluster
            .storage
            .mark_failed(
                &stored,
                &format!("Release unlocked from stale '{status}' state"),
            )
            .await;
        self.observe(req, Some(stored.release.version)).await?;
        match result {
            Ok(_) => {
                // Released=False: the pending action did not complete.
                let message =
                    format!("Unlocked Helm release {full} with chart {chart} in {status} state");
                self.session.conditions.mark_false(
                    condition_type::RELEASED,
                    PENDING_RELEASE,
                    message.clone(),
                );
                self.ctx
                    .recorder
                    .normal(self.hr, PENDING_RELEASE, &message)
                    .await;
                Ok(())
            }
            Err(err) => {
                let message = format!(
                    "Unlock of Helm release {full} with chart {chart} in {status} state failed: {err}"
                );
                self.failed(condition_type::RELEASED, PENDING_RELEASE, message)
                    .await;
                Err(err.into())
            }
        }
    }

    async fn rollback(&mut self, req: &Request<'_>, to_version: i64) -> Result<(), Error> {
        let history = self.session.status.history.clone().unwrap_or_default();
        let Some(target) = history.iter().find(|s| s.version == to_version).cloned() else {
            return Err(Error::Release("missing target release for rollback".into()));
        };
        let before = latest(&history).map(|s| s.version);
        let result = self
            .cluster
            .helm
            .rollback(&req.release, &rollback_options(self.hr, to_version))
            .await;
        let revisions = self.observe(req, before).await?;
        let (full, chart) = (snapshot_full_name(&target), snapshot_chart(&target));
        if let Err(err) = result {
            let message = format!(
                "Helm rollback to previous release {full} with chart {chart} failed: {}",
                cause(&err)
            );
            self.failed(condition_type::REMEDIATED, ROLLBACK_FAILED, message.clone())
                .await;
            return if wrote_revision(&revisions, before) {
                Ok(())
            } else {
                Err(Error::Release(message))
            };
        }
        // The new revision carries the target's chart, not the failed one's.
        if let Some(newest) = self
            .session
            .status
            .history
            .as_mut()
            .and_then(|h| h.first_mut())
        {
            newest.oci_digest = target.oci_digest.clone();
        }
        let message =
            format!("Helm rollback to previous release {full} with chart {chart} succeeded");
        self.succeeded(condition_type::REMEDIATED, ROLLBACK_SUCCEEDED, message)
            .await;
        Ok(())
    }

    async fn uninstall_remediation(&mut self, req: &Request<'_>) -> Result<(), Error> {
        let Some(current) = self.current() else {
            return Err(Error::Release(
                "no latest release: required to uninstall".into(),
            ));
        };
        let (full, chart) = (snapshot_full_name(&current), snapshot_chart(&current));
        let result = self
            .cluster
            .helm
            .uninstall(&req.release, &uninstall_options(self.hr))
            .await;
        let revisions = self.observe(req, Some(current.version)).await?;
        if let Err(err) = result {
            let message = format!(
                "Helm uninstall remediation for release {full} with chart {chart} failed: {}",
                cause(&err)
            );
            self.failed(
                condition_type::REMEDIATED,
                UNINSTALL_FAILED,
                message.clone(),
            )
            .await;
            return Err(Error::Release(message));
        }
        if !revisions.iter().any(|r| r.version == current.version)
            && let Some(entry) = self
                .session
                .status
                .history
                .as_mut()
                .and_then(|h| h.iter_mut().find(|s| s.version == current.version))
        {
            // Purged from storage: record the uninstall on the entry.
            entry.status = "uninstalled".to_string();
            entry.deleted = Some(now());
        }
        let message =
            format!("Helm uninstall remediation for release {full} with chart {chart} succeeded");
        self.succeeded(condition_type::REMEDIATED, UNINSTALL_SUCCEEDED, message)
            .await;
        Ok(())
    }

    /// `(detect, correct)` from `driftDetection.mode` and the feature gates.
    fn drift_mode(&self) -> (bool, bool) {
        let mode = self.spec().drift_detection.as_ref().and_then(|d| d.mode);
        let settings = &self.ctx.settings;
        let correct =
            settings.correct_drift || mode == Some(api::helm::DriftDetectionMode::Enabled);
        let detect =
            correct || settings.detect_drift || mode == Some(api::helm::DriftDetectionMode::Warn);
        (detect, correct)
    }

    fn drift_engine(&self) -> Engine {
        let ignore = self
            .spec()
            .drift_detection
            .as_ref()
            .and_then(|d| d.ignore.clone())
            .unwrap_or_default();
        Engine::with_resolver(
            self.cluster.client.clone(),
            Owner {
                // Helm v4 applies with this field manager; drift is judged
                // and corrected as helm's own apply would.
                field_manager: "helm".to_string(),
                group: runtime::ssa::HELM_GROUP.to_string(),
                name: self.hr.name_any(),
                namespace: self.hr.namespace().unwrap_or_default(),
            },
            ApplyOptions {
                ignore,
                ..ApplyOptions::default()
            },
            self.cluster.resolver.clone(),
        )
    }

    /// The objects of a release manifest, with the release namespace filled
    /// in where the chart left it out.
    async fn manifest_objects(&self, release: &Release) -> Result<Vec<DynamicObject>, Error> {
        let mut objects = runtime::ssa::yaml::objects_from_yaml(&release.manifest)?;
        for object in &mut objects {
            if object.metadata.namespace.is_none() {
                let reference = ObjectRef::from_object(object)?;
                let namespaced = self
                    .cluster
                    .resolver
                    .resolve(&self.cluster.client, &reference.gvk())
                    .await?
                    .is_none_or(|r| r.namespaced);
                if namespaced {
                    object.metadata.namespace = Some(release.namespace.clone());
                }
            }
        }
        Ok(objects)
    }

    async fn detect_drift(&mut self, release: &Release) -> Result<Vec<runtime::ssa::Drift>, Error> {
        let (detect, _) = self.drift_mode();
        if !detect {
            self.session.conditions.delete(condition_type::DRIFTED);
            return Ok(Vec::new());
        }
        let objects = self.manifest_objects(release).await?;
        let drift = self.drift_engine().detect_drift(&objects).await?;
        if drift.is_empty() {
            self.session.conditions.mark_false(
                condition_type::DRIFTED,
                NO_DRIFT_DETECTED,
                format!("No drift detected for release {}", release.full_name()),
            );
            return Ok(drift);
        }
        let summary = drift
            .iter()
            .map(|d| match &d.state {
                DriftState::Missing => format!("{} removed", d.object),
                DriftState::Modified { paths } => {
                    format!("{} changed ({})", d.object, paths.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let message = format!(
            "Cluster state of release {} has drifted from the desired state:\n{summary}",
            release.full_name()
        );
        self.session
            .conditions
            .mark_true(condition_type::DRIFTED, DRIFT_DETECTED, message.clone());
        self.ctx
            .recorder
            .warning(self.hr, DRIFT_DETECTED, &message)
            .await;
        Ok(drift)
    }

    async fn correct_drift(&mut self, drift: &[runtime::ssa::Drift]) -> Result<(), Error> {
        // The release whose drift was just detected.
        let Some(release) = self.latest_stored.clone() else {
            return Ok(());
        };
        let drifted: HashSet<String> = drift.iter().map(|d| d.object.inventory_id()).collect();
        let mut objects = Vec::new();
        for object in self.manifest_objects(&release).await? {
            if drifted.contains(&ObjectRef::from_object(&object)?.inventory_id()) {
                objects.push(object);
            }
        }
        match self.drift_engine().apply_staged(objects).await {
            Ok(changes) => {
                let message = format!(
                    "Cluster state of release {} has been corrected:\n{}",
                    release.full_name(),
                    changes.summary()
                );
                self.session.conditions.mark_false(
                    condition_type::DRIFTED,
                    NO_DRIFT_DETECTED,
                    message.clone(),
                );
                self.ctx
                    .recorder
                    .normal(self.hr, "DriftCorrected", &message)
                    .await;
                Ok(())
            }
            Err(err) => {
                let message = format!(
                    "Failed to correct drift of release {}: {err}",
                    release.full_name()
                );
                self.session.conditions.mark_false(
                    condition_type::READY,
                    "DriftCorrectionFailed",
                    message.clone(),
                );
                self.ctx
                    .recorder
                    .warning(self.hr, "DriftCorrectionFailed", &message)
                    .await;
                Err(Error::Release(message))
            }
        }
    }

    /// The inventory of the current release: its manifest's objects (chart
    /// CRDs included, hooks excluded).
    pub(crate) async fn inventory(&self, req: &Request<'_>) -> Result<ResourceInventory, Error> {
        let latest = match &self.latest_stored {
            Some(release) => Some(release.clone()),
            None => self
                .cluster
                .storage
                .latest(&req.release.namespace, &req.release.name)
                .await?
                .map(|stored| stored.release),
        };
        let Some(release) = latest else {
            return Ok(ResourceInventory::default());
        };
        let objects = self.manifest_objects(&release).await?;
        let mut references = objects
            .iter()
            .map(ObjectRef::from_object)
            .collect::<Result<Vec<_>, _>>()?;
        references.sort_by(runtime::ssa::apply_order);
        Ok(runtime::ssa::inventory::inventory_of(&references))
    }
}
