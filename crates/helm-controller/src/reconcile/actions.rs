//! The helm actions of the release loop — install, upgrade, test, unlock,
//! rollback and the uninstall remediation — each run through
//! `Run::release_action`, and the helm options a HelmRelease's spec
//! gives them.

use std::time::{Duration, Instant};

use api::helm::{CRDsPolicy, HelmRelease, ReleaseAction, WaitStrategyName};
use api::meta::condition_type;

use super::health::HealthWait;
use super::{DEFAULT_TIMEOUT, Run, uninstall_options};
use crate::Error;
use crate::helm_cli::{
    ChartOptions, HelmError, InstallOptions, RollbackOptions, ServerSide, TestOptions,
    UpgradeOptions, Wait,
};
use crate::release::{Release, snapshot_chart, snapshot_full_name};
use crate::state::{
    Action, active_remediation, has_been_tested, latest, retries_on_failure, tests_enabled,
};

use super::release::*;

/// The timeout of an action: its own, else `spec.timeout`, else 5m.
pub(crate) fn timeout_of(own: Option<&api::Duration>, hr: &HelmRelease) -> Duration {
    own.or(hr.spec.timeout.as_ref())
        .and_then(|d| d.to_std().ok())
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// The wait of an action as Flux configures it: none (hooks only) when
/// disabled, else the `waitStrategy`.
fn strategy_of(hr: &HelmRelease, disabled: Option<bool>) -> Wait {
    if disabled.unwrap_or(false) {
        return Wait::HookOnly;
    }
    match hr.spec.wait_strategy.as_ref().map(|w| w.name) {
        Some(WaitStrategyName::Legacy) => Wait::Legacy,
        _ => Wait::Watcher,
    }
}

/// Whether the controller, not helm, waits for the objects of an action:
/// `healthCheckExprs` under the `watcher` strategy. Flux hands the
/// expressions to helm's status watcher as custom status readers, which the
/// helm CLI cannot take; so helm waits for hooks only, and the runtime's
/// health engine (kstatus, and CEL for the kinds the expressions cover)
/// waits for the release's objects once helm is done.
fn waits_with_exprs(hr: &HelmRelease, disabled: Option<bool>) -> bool {
    hr.spec
        .health_check_exprs
        .as_ref()
        .is_some_and(|checks| !checks.is_empty())
        && strategy_of(hr, disabled) == Wait::Watcher
}

/// How helm waits in an action.
pub(super) fn wait_of(hr: &HelmRelease, disabled: Option<bool>) -> Wait {
    if waits_with_exprs(hr, disabled) {
        return Wait::HookOnly;
    }
    strategy_of(hr, disabled)
}

/// The controller's own wait after an action (see [`waits_with_exprs`]),
/// from the action's `timeout`, `disableWait` and `disableWaitForJobs`.
pub(super) fn health_wait(
    hr: &HelmRelease,
    timeout: Option<&api::Duration>,
    disable_wait: Option<bool>,
    disable_wait_for_jobs: Option<bool>,
) -> Option<HealthWait> {
    waits_with_exprs(hr, disable_wait).then(|| HealthWait {
        timeout: timeout_of(timeout, hr),
        wait_for_jobs: !disable_wait_for_jobs.unwrap_or(false),
    })
}

pub(super) fn server_side(mode: Option<api::helm::ServerSideApplyMode>) -> ServerSide {
    match mode {
        Some(api::helm::ServerSideApplyMode::Enabled) => ServerSide::Enabled,
        Some(api::helm::ServerSideApplyMode::Disabled) => ServerSide::Disabled,
        _ => ServerSide::Auto,
    }
}

pub(super) fn history_max(hr: &HelmRelease) -> u32 {
    u32::try_from(hr.spec.max_history.unwrap_or(5)).unwrap_or(0)
}

/// The CRDs policy of installs: `install.crds`, else `Skip` with the
/// deprecated `skipCRDs`, else `Create`.
pub(crate) fn install_crds_policy(hr: &HelmRelease) -> CRDsPolicy {
    let spec = hr.spec.install.clone().unwrap_or_default();
    spec.crds.unwrap_or(if spec.skip_crds.unwrap_or(false) {
        CRDsPolicy::Skip
    } else {
        CRDsPolicy::Create
    })
}

/// The CRDs policy of upgrades: `upgrade.crds`, else `Skip`.
pub(crate) fn upgrade_crds_policy(hr: &HelmRelease) -> CRDsPolicy {
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
pub(crate) fn install_options(hr: &HelmRelease, replace: bool) -> InstallOptions {
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
pub(crate) fn upgrade_options(hr: &HelmRelease) -> UpgradeOptions {
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

pub(super) fn rollback_options(hr: &HelmRelease, revision: i64) -> RollbackOptions {
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

pub(super) fn test_options(hr: &HelmRelease) -> TestOptions {
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

pub(super) fn action_timeout(action: &Action, hr: &HelmRelease) -> Duration {
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

impl Run<'_> {
    /// Applies the chart's CRDs per `policy` before helm runs; a failure is
    /// a failed release attempt that left nothing in the storage.
    pub(super) async fn apply_chart_crds(
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
                crate::crds::apply(&self.cluster.client, policy, &crds, super::CONTROLLER_NAME)
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

    /// Runs an install or upgrade and records its outcome. Only a failure
    /// that left a release behind counts towards the remediation: without
    /// one there is nothing to remediate, and the action is simply retried.
    pub(super) async fn release_action(
        &mut self,
        req: &Request<'_>,
        action: ReleaseAction,
        before: Option<i64>,
        result: Result<Option<Release>, HelmError>,
        started: Instant,
        health: Option<HealthWait>,
    ) -> Result<(), Error> {
        let refused = result.as_ref().is_err_and(HelmError::is_name_in_use);
        let (result, printed) = match result {
            Ok(printed) => (Ok(()), printed),
            Err(err) => (Err(cause(&err)), None),
        };
        let mut revisions = self.observe_storage(req, before, !refused, printed).await?;
        // helm records a release whose wait fails as failed, with this
        // description; the controller's own wait does the same.
        let description = |cause: &str| match action {
            ReleaseAction::Install => format!("Release {:?} failed: {cause}", req.release.name),
            ReleaseAction::Upgrade => format!("Upgrade {:?} failed: {cause}", req.release.name),
        };
        let result = match (result, health) {
            (Ok(()), Some(wait)) => {
                // An upgrade supersedes the latest revision as the release
                // loop read it.
                let replaced = self
                    .latest_stored
                    .clone()
                    .filter(|r| action == ReleaseAction::Upgrade && Some(r.version) == before);
                self.await_written_health(
                    req,
                    before,
                    replaced,
                    &mut revisions,
                    &wait,
                    started,
                    description,
                )
                .await?
            }
            (result, _) => result,
        };
        self.session.status.last_attempted_release_action_duration =
            Some(api::Duration::from_std(started.elapsed()));
        let (verb, succeeded, failed) = match action {
            ReleaseAction::Install => ("install", INSTALL_SUCCEEDED, INSTALL_FAILED),
            ReleaseAction::Upgrade => ("upgrade", UPGRADE_SUCCEEDED, UPGRADE_FAILED),
        };
        if let Err(cause) = result {
            let message = format!(
                "Helm {verb} failed for release {}/{} with chart {}: {cause}",
                req.release.namespace,
                req.release.name,
                Self::chart_label(req),
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
        req.spec_digests.record(&mut self.session.status);
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

    pub(super) async fn install(
        &mut self,
        req: &Request<'_>,
        stored: Option<&Release>,
    ) -> Result<(), Error> {
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
        let spec = self.spec().install.clone().unwrap_or_default();
        let health = health_wait(
            self.hr,
            spec.timeout.as_ref(),
            spec.disable_wait,
            spec.disable_wait_for_jobs,
        );
        self.release_action(req, ReleaseAction::Install, before, result, started, health)
            .await
    }

    pub(super) async fn upgrade(
        &mut self,
        req: &Request<'_>,
        clear_history: bool,
    ) -> Result<(), Error> {
        if clear_history {
            self.session.status.history = None;
        }
        self.session.status.last_attempted_release_action = Some(ReleaseAction::Upgrade);
        self.session.conditions.delete(condition_type::TEST_SUCCESS);
        self.session.conditions.delete(condition_type::REMEDIATED);
        // The latest revision as the release loop just read it.
        let before = self.latest_stored.as_ref().map(|s| s.version);
        let mut options = upgrade_options(self.hr);
        options.server_side = options.server_side.resolve(
            self.latest_stored
                .as_ref()
                .map(|latest| latest.apply_method.as_str()),
        );
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
                &options,
            )
            .await;
        let spec = self.spec().upgrade.clone().unwrap_or_default();
        let health = health_wait(
            self.hr,
            spec.timeout.as_ref(),
            spec.disable_wait,
            spec.disable_wait_for_jobs,
        );
        self.release_action(req, ReleaseAction::Upgrade, before, result, started, health)
            .await
    }

    pub(super) async fn test(&mut self, req: &Request<'_>) -> Result<(), Error> {
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

    pub(super) async fn unlock(&mut self, req: &Request<'_>) -> Result<(), Error> {
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

    pub(super) async fn rollback(
        &mut self,
        req: &Request<'_>,
        to_version: i64,
    ) -> Result<(), Error> {
        let history = self.session.status.history.clone().unwrap_or_default();
        let Some(target) = history.iter().find(|s| s.version == to_version).cloned() else {
            return Err(Error::Release("missing target release for rollback".into()));
        };
        let before = latest(&history).map(|s| s.version);
        let mut options = rollback_options(self.hr, to_version);
        if options.server_side == ServerSide::Auto {
            // `auto` follows how the target revision was applied.
            let target = self
                .cluster
                .storage
                .revision(&req.release.namespace, &req.release.name, to_version)
                .await?;
            options.server_side = options
                .server_side
                .resolve(target.as_ref().map(|release| release.apply_method.as_str()));
        }
        let started = Instant::now();
        let result = self.cluster.helm.rollback(&req.release, &options).await;
        let mut revisions = self.observe(req, before).await?;
        let spec = self.spec().rollback.clone().unwrap_or_default();
        let health = health_wait(
            self.hr,
            spec.timeout.as_ref(),
            spec.disable_wait,
            spec.disable_wait_for_jobs,
        );
        let result = match (result.map_err(|err| cause(&err)), health) {
            (Ok(()), Some(wait)) => {
                let description =
                    |cause: &str| format!("Release {:?} failed: {cause}", req.release.name);
                self.await_written_health(
                    req,
                    before,
                    None,
                    &mut revisions,
                    &wait,
                    started,
                    description,
                )
                .await?
            }
            (result, _) => result,
        };
        let (full, chart) = (snapshot_full_name(&target), snapshot_chart(&target));
        if let Err(cause) = result {
            let message = format!(
                "Helm rollback to previous release {full} with chart {chart} failed: {cause}"
            );
            self.failed(condition_type::REMEDIATED, ROLLBACK_FAILED, message.clone())
                .await;
            return if wrote_revision(&revisions, before) {
                Ok(())
            } else {
                Err(Error::Release(message))
            };
        }
        // Flux records the revision a rollback wrote as helm stored it, with
        // no OCI digest (its observeRollback snapshots ObserveRelease of the
        // new release): the failed upgrade's chart digest the entry was
        // recorded with would make the release fail verification
        // ("release not observed to be made for object") at the next run.
        if let Some(newest) = self
            .session
            .status
            .history
            .as_mut()
            .and_then(|h| h.first_mut())
            && before.is_none_or(|v| newest.version > v)
            && let Some(written) = revisions.iter().find(|r| r.version == newest.version)
        {
            let mut snapshot = written.to_snapshot(None);
            snapshot.action = newest.action;
            snapshot.test_hooks = newest.test_hooks.take();
            *newest = snapshot;
        }
        let message =
            format!("Helm rollback to previous release {full} with chart {chart} succeeded");
        self.succeeded(condition_type::REMEDIATED, ROLLBACK_SUCCEEDED, message)
            .await;
        Ok(())
    }

    pub(super) async fn uninstall_remediation(&mut self, req: &Request<'_>) -> Result<(), Error> {
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
}
