//! The release state machine of Flux's helm-controller, as pure functions:
//! [`determine_state`] compares the latest release in Helm's storage with
//! what the HelmRelease recorded (`status.history`) and wants (chart,
//! values digest, tests), and [`next_action`] picks what to do about it:
//! install when absent, upgrade when out of sync or not managed, unlock when
//! a revision is stuck pending, test when untested, remediate a failure
//! (roll back or uninstall) while retries remain, correct drift, or nothing.

use api::helm::{
    ActionStrategyName, HelmReleaseSpec, HelmReleaseStatus, ReleaseAction, RemediationStrategy,
    Snapshot,
};

use crate::release::{Release, is_pending};

/// Helm status of a release revision that is live.
const STATUS_DEPLOYED: &str = "deployed";
/// Helm status of a revision replaced by a newer one.
pub(crate) const STATUS_SUPERSEDED: &str = "superseded";
/// Helm status of a failed revision.
const STATUS_FAILED: &str = "failed";
/// Helm status of an uninstalled release kept in history.
const STATUS_UNINSTALLED: &str = "uninstalled";
/// Phase of a failed test hook.
const TEST_PHASE_FAILED: &str = "Failed";
/// History kept when no previous successful release bounds it.
const DEFAULT_MAX_HISTORY: usize = 5;

/// State of the release compared with the HelmRelease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReleaseState {
    /// No release in storage (or only an uninstalled one).
    Absent(String),
    /// A release exists that this HelmRelease did not make (or that was
    /// changed behind its back).
    Unmanaged(String),
    /// The release differs from the desired chart or values.
    OutOfSync(String),
    /// The latest revision is stuck in a `pending-*` status.
    Locked(String),
    /// The release is current but tests are enabled and have not run.
    Untested,
    /// The release failed (or its tests did).
    Failed(String),
    /// The release is current.
    InSync,
}

/// What the HelmRelease wants released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Chart name.
    pub chart_name: String,
    /// Chart version.
    pub chart_version: String,
    /// Digest of the composed values ([`crate::values::config_digest`]).
    pub config_digest: String,
    /// Digest of the chart artifact, when the source is an OCIRepository.
    pub oci_digest: Option<String>,
    /// Why the post-renderers or common metadata of a new generation need a
    /// new release (Flux's reason), if they do.
    pub spec_digests_changed: Option<&'static str>,
}

/// Failure handling of the action last attempted (Flux's active remediation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remediation {
    /// The action it applies to.
    pub action: ReleaseAction,
    /// Retries before giving up; negative for unlimited.
    pub retries: i64,
    /// Failures counted so far for this action.
    pub failures: i64,
    /// Remediate the last failure too once retries are exhausted.
    pub remediate_last_failure: bool,
    /// Failed tests do not count as failures.
    pub ignore_test_failures: bool,
    /// Roll back or uninstall (installs always uninstall).
    pub strategy: RemediationStrategy,
}

impl Remediation {
    /// Whether no retries remain.
    pub fn retries_exhausted(&self) -> bool {
        self.retries >= 0 && self.failures > self.retries
    }
}

/// Whether the action uses `RetryOnFailure` (no remediation, periodic retry).
pub fn retries_on_failure(spec: &HelmReleaseSpec, action: ReleaseAction) -> bool {
    let strategy = match action {
        ReleaseAction::Install => spec.install.as_ref().and_then(|i| i.strategy.as_ref()),
        ReleaseAction::Upgrade => spec.upgrade.as_ref().and_then(|u| u.strategy.as_ref()),
    };
    strategy.is_some_and(|s| s.name == ActionStrategyName::RetryOnFailure)
}

/// The remediation settings of `action`, with the failures counted for it.
pub fn remediation_for(
    spec: &HelmReleaseSpec,
    status: &HelmReleaseStatus,
    action: ReleaseAction,
) -> Remediation {
    let test_ignore = spec
        .test
        .as_ref()
        .and_then(|t| t.ignore_failures)
        .unwrap_or(false);
    match action {
        ReleaseAction::Install => {
            let remediation = spec
                .install
                .as_ref()
                .and_then(|i| i.remediation.clone())
                .unwrap_or_default();
            Remediation {
                action,
                retries: remediation.retries.unwrap_or(0),
                failures: status.install_failures.unwrap_or(0),
                remediate_last_failure: remediation.remediate_last_failure.unwrap_or(false),
                ignore_test_failures: remediation.ignore_test_failures.unwrap_or(test_ignore),
                strategy: RemediationStrategy::Uninstall,
            }
        }
        ReleaseAction::Upgrade => {
            let remediation = spec
                .upgrade
                .as_ref()
                .and_then(|u| u.remediation.clone())
                .unwrap_or_default();
            let retries = remediation.retries.unwrap_or(0);
            Remediation {
                action,
                retries,
                failures: status.upgrade_failures.unwrap_or(0),
                // Flux: defaults to true when retries are configured.
                remediate_last_failure: remediation.remediate_last_failure.unwrap_or(retries > 0),
                ignore_test_failures: remediation.ignore_test_failures.unwrap_or(test_ignore),
                strategy: remediation
                    .strategy
                    .unwrap_or(RemediationStrategy::Rollback),
            }
        }
    }
}

/// The remediation of the action last attempted, unless that action retries
/// on failure instead of remediating.
pub fn active_remediation(
    spec: &HelmReleaseSpec,
    status: &HelmReleaseStatus,
) -> Option<Remediation> {
    let action = status.last_attempted_release_action?;
    if retries_on_failure(spec, action) {
        return None;
    }
    Some(remediation_for(spec, status, action))
}

/// Whether failed tests must be ignored: the active remediation decides,
/// else `test.ignoreFailures`.
pub fn ignore_test_failures(spec: &HelmReleaseSpec, status: &HelmReleaseStatus) -> bool {
    match active_remediation(spec, status) {
        Some(remediation) => remediation.ignore_test_failures,
        None => spec
            .test
            .as_ref()
            .and_then(|t| t.ignore_failures)
            .unwrap_or(false),
    }
}

/// Whether `spec.test.enable` is set.
pub fn tests_enabled(spec: &HelmReleaseSpec) -> bool {
    spec.test.as_ref().and_then(|t| t.enable).unwrap_or(false)
}

/// The newest entry of a history (highest revision).
pub fn latest(history: &[Snapshot]) -> Option<&Snapshot> {
    history.iter().max_by_key(|s| s.version)
}

/// Whether a history entry records test runs (an empty map means "tested,
/// no tests").
pub fn has_been_tested(snapshot: &Snapshot) -> bool {
    snapshot.test_hooks.is_some()
}

/// Whether any test of a history entry failed.
pub fn has_failed_test(snapshot: &Snapshot) -> bool {
    snapshot
        .test_hooks
        .iter()
        .flatten()
        .any(|(_, hook)| hook.phase.as_deref() == Some(TEST_PHASE_FAILED))
}

/// The newest entry before the latest that was deployed (or superseded),
/// skipping ones with failed tests unless `ignore_tests`: the rollback target.
pub fn previous(history: &[Snapshot], ignore_tests: bool) -> Option<&Snapshot> {
    let latest_version = latest(history)?.version;
    let mut candidates: Vec<&Snapshot> = history
        .iter()
        .filter(|s| s.version < latest_version)
        .collect();
    candidates.sort_by_key(|s| std::cmp::Reverse(s.version));
    candidates.into_iter().find(|s| {
        (s.status == STATUS_DEPLOYED || s.status == STATUS_SUPERSEDED)
            && (ignore_tests || !has_failed_test(s))
    })
}

/// Drops the entries older than the previous successful release (keeping
/// it, so a rollback target survives); without one, keeps the newest five.
pub fn truncate(history: &mut Vec<Snapshot>, ignore_tests: bool) {
    if history.len() < 2 {
        return;
    }
    history.sort_by_key(|s| std::cmp::Reverse(s.version));
    let cut = history.iter().skip(1).position(|s| {
        (s.status == STATUS_DEPLOYED || s.status == STATUS_SUPERSEDED)
            && (ignore_tests || !has_failed_test(s))
    });
    match cut {
        Some(index) => history.truncate(index + 2),
        None => history.truncate(DEFAULT_MAX_HISTORY),
    }
}

/// Compares the latest release in storage with the HelmRelease.
pub fn determine_state(
    latest_release: Option<&Release>,
    history: &[Snapshot],
    desired: &Desired,
    spec: &HelmReleaseSpec,
    status: &HelmReleaseStatus,
) -> ReleaseState {
    let Some(release) = latest_release else {
        return ReleaseState::Absent("no release in storage for object".into());
    };
    if is_pending(&release.info.status) {
        return ReleaseState::Locked(format!("release with status '{}'", release.info.status));
    }
    let Some(current) = latest(history) else {
        if release.info.status == STATUS_UNINSTALLED {
            return ReleaseState::Absent("found uninstalled release in storage".into());
        }
        return ReleaseState::Unmanaged("found existing release in storage".into());
    };
    if current.name != release.name
        || current.namespace != release.namespace
        || current.version != release.version
    {
        return ReleaseState::Unmanaged(format!(
            "release not observed to be made for object: latest release {} is not {}",
            release.full_name(),
            crate::release::snapshot_full_name(current)
        ));
    }
    if let Err(reason) = release.verify_snapshot(current) {
        return ReleaseState::Unmanaged(reason.into());
    }
    match release.info.status.as_str() {
        STATUS_FAILED => ReleaseState::Failed(String::new()),
        STATUS_UNINSTALLED => ReleaseState::Absent("found uninstalled release in storage".into()),
        STATUS_DEPLOYED => {
            let metadata = release.chart_metadata();
            if metadata.name != desired.chart_name || metadata.version != desired.chart_version {
                return ReleaseState::OutOfSync("release chart changed".into());
            }
            if current.config_digest != desired.config_digest {
                return ReleaseState::OutOfSync("release config values changed".into());
            }
            if let (Some(wanted), Some(recorded)) = (&desired.oci_digest, &current.oci_digest)
                && wanted != recorded
            {
                return ReleaseState::OutOfSync("release chart artifact digest changed".into());
            }
            if let Some(reason) = desired.spec_digests_changed {
                return ReleaseState::OutOfSync(reason.into());
            }
            if tests_enabled(spec) {
                if !has_been_tested(current) {
                    return ReleaseState::Untested;
                }
                if let Some(remediation) = active_remediation(spec, status)
                    && !remediation.ignore_test_failures
                    && has_failed_test(current)
                {
                    return ReleaseState::Failed("release has test in failed phase".into());
                }
            }
            ReleaseState::InSync
        }
        other => ReleaseState::Failed(format!("unexpected release status '{other}'")),
    }
}

/// A Helm action the controller runs next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `helm install`.
    Install,
    /// `helm upgrade`; `clear_history` when the release was not managed.
    Upgrade {
        /// Forget the recorded history first.
        clear_history: bool,
    },
    /// `helm test`.
    Test,
    /// Mark the pending revision failed.
    Unlock,
    /// `helm rollback` to this revision.
    Rollback {
        /// Revision to roll back to.
        to_version: i64,
    },
    /// `helm uninstall` as remediation.
    UninstallRemediation,
    /// Correct drifted objects.
    CorrectDrift,
}

/// The kinds of action, of which each runs at most once per reconciliation
/// (Flux's clean release strategy); a remediation ends the reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Install or upgrade.
    Release,
    /// Test.
    Test,
    /// Unlock.
    Unlock,
    /// Rollback or uninstall.
    Remediate,
    /// Drift correction.
    DriftCorrection,
}

impl Action {
    /// The kind of the action.
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::Install | Action::Upgrade { .. } => ActionKind::Release,
            Action::Test => ActionKind::Test,
            Action::Unlock => ActionKind::Unlock,
            Action::Rollback { .. } | Action::UninstallRemediation => ActionKind::Remediate,
            Action::CorrectDrift => ActionKind::DriftCorrection,
        }
    }

    /// Flux's name of the action (used in progress messages).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Install => "install",
            Action::Upgrade { .. } => "upgrade",
            Action::Test => "test",
            Action::Unlock => "unlock",
            Action::Rollback { .. } => "rollback",
            Action::UninstallRemediation => "uninstall",
            Action::CorrectDrift => "correct cluster drift",
        }
    }
}

/// Why no action can be taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Halt {
    /// Out of retries for `action` (`install` or `upgrade`): Stalled.
    RetriesExhausted(&'static str),
    /// Rolling back is required but no earlier successful release is known.
    MissingRollbackTarget,
}

/// What to do about `state`. `Ok(None)`: nothing, the release is done.
/// `force` is a pending `reconcile.fluxcd.io/forceAt` request; `drifted`
/// tells, for an in-sync release, whether drift was found and must be
/// corrected.
pub fn next_action(
    state: &ReleaseState,
    spec: &HelmReleaseSpec,
    status: &HelmReleaseStatus,
    force: bool,
    correct_drift: bool,
) -> Result<Option<Action>, Halt> {
    match state {
        ReleaseState::InSync => {
            if force {
                return Ok(Some(Action::Upgrade {
                    clear_history: false,
                }));
            }
            if correct_drift {
                return Ok(Some(Action::CorrectDrift));
            }
            Ok(None)
        }
        ReleaseState::Locked(_) => Ok(Some(Action::Unlock)),
        ReleaseState::Absent(_) => {
            let remediation = remediation_for(spec, status, ReleaseAction::Install);
            if !retries_on_failure(spec, ReleaseAction::Install)
                && remediation.retries_exhausted()
                && !force
            {
                return Err(Halt::RetriesExhausted("install"));
            }
            Ok(Some(Action::Install))
        }
        ReleaseState::Unmanaged(_) => Ok(Some(Action::Upgrade {
            clear_history: true,
        })),
        ReleaseState::OutOfSync(_) => {
            let remediation = remediation_for(spec, status, ReleaseAction::Upgrade);
            if !retries_on_failure(spec, ReleaseAction::Upgrade)
                && remediation.retries_exhausted()
                && !force
            {
                return Err(Halt::RetriesExhausted("upgrade"));
            }
            Ok(Some(Action::Upgrade {
                clear_history: false,
            }))
        }
        ReleaseState::Untested => Ok(Some(Action::Test)),
        ReleaseState::Failed(_) => {
            let upgrade = Ok(Some(Action::Upgrade {
                clear_history: false,
            }));
            let Some(remediation) = active_remediation(spec, status) else {
                return upgrade;
            };
            // No failure counted: the conditions changed since the failure.
            if remediation.failures <= 0 || force {
                return upgrade;
            }
            if remediation.retries_exhausted() && !remediation.remediate_last_failure {
                return Err(Halt::RetriesExhausted(match remediation.action {
                    ReleaseAction::Install => "install",
                    ReleaseAction::Upgrade => "upgrade",
                }));
            }
            match remediation.strategy {
                RemediationStrategy::Uninstall => Ok(Some(Action::UninstallRemediation)),
                RemediationStrategy::Rollback => {
                    let history = status.history.as_deref().unwrap_or_default();
                    match previous(history, remediation.ignore_test_failures) {
                        Some(target) => Ok(Some(Action::Rollback {
                            to_version: target.version,
                        })),
                        None => Err(Halt::MissingRollbackTarget),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::helm::{
        ActionStrategy, Install, InstallRemediation, Test, TestHookStatus, Upgrade,
        UpgradeRemediation,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use std::collections::BTreeMap;

    use crate::release::{Chart, Info, Metadata};

    fn spec() -> HelmReleaseSpec {
        serde_json::from_value(serde_json::json!({
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": "podinfo"}
        }))
        .expect("valid spec")
    }

    fn release(version: i64, status: &str, chart_version: &str) -> Release {
        Release {
            name: "podinfo".into(),
            namespace: "apps".into(),
            version,
            info: Info {
                status: status.into(),
                ..Info::default()
            },
            chart: Some(Chart {
                metadata: Some(Metadata {
                    name: "podinfo".into(),
                    version: chart_version.into(),
                    ..Metadata::default()
                }),
            }),
            config: None,
            manifest: String::new(),
            hooks: None,
            apply_method: String::new(),
        }
    }

    fn desired(chart_version: &str) -> Desired {
        Desired {
            chart_name: "podinfo".into(),
            chart_version: chart_version.into(),
            config_digest: crate::values::config_digest(&serde_json::json!({})),
            oci_digest: None,
            spec_digests_changed: None,
        }
    }

    fn snapshot(release: &Release) -> Snapshot {
        release.to_snapshot(None)
    }

    fn status_with(history: Vec<Snapshot>) -> HelmReleaseStatus {
        HelmReleaseStatus {
            history: Some(history),
            ..HelmReleaseStatus::default()
        }
    }

    fn state(
        latest: Option<&Release>,
        status: &HelmReleaseStatus,
        spec: &HelmReleaseSpec,
        d: &Desired,
    ) -> ReleaseState {
        determine_state(
            latest,
            status.history.as_deref().unwrap_or_default(),
            d,
            spec,
            status,
        )
    }

    #[test]
    fn absent_locked_and_unmanaged() {
        let spec = spec();
        let empty = HelmReleaseStatus::default();
        assert!(matches!(
            state(None, &empty, &spec, &desired("1.0.0")),
            ReleaseState::Absent(_)
        ));
        let pending = release(2, "pending-upgrade", "1.0.0");
        assert_eq!(
            state(Some(&pending), &empty, &spec, &desired("1.0.0")),
            ReleaseState::Locked("release with status 'pending-upgrade'".into())
        );
        let deployed = release(1, "deployed", "1.0.0");
        assert!(matches!(
            state(Some(&deployed), &empty, &spec, &desired("1.0.0")),
            ReleaseState::Unmanaged(_)
        ));
        let uninstalled = release(1, "uninstalled", "1.0.0");
        assert!(matches!(
            state(Some(&uninstalled), &empty, &spec, &desired("1.0.0")),
            ReleaseState::Absent(_)
        ));
        // A revision made behind the controller's back (e.g. `helm upgrade`).
        let status = status_with(vec![snapshot(&deployed)]);
        let newer = release(2, "deployed", "1.0.0");
        assert!(matches!(
            state(Some(&newer), &status, &spec, &desired("1.0.0")),
            ReleaseState::Unmanaged(_)
        ));
        // The same revision rewritten behind its back.
        let mut modified = deployed.clone();
        modified.manifest = "changed".into();
        assert!(matches!(
            state(Some(&modified), &status, &spec, &desired("1.0.0")),
            ReleaseState::Unmanaged(_)
        ));
    }

    #[test]
    fn in_sync_out_of_sync_and_tests() {
        let mut spec = spec();
        let deployed = release(1, "deployed", "1.0.0");
        let status = status_with(vec![snapshot(&deployed)]);
        assert_eq!(
            state(Some(&deployed), &status, &spec, &desired("1.0.0")),
            ReleaseState::InSync
        );
        assert_eq!(
            state(Some(&deployed), &status, &spec, &desired("1.1.0")),
            ReleaseState::OutOfSync("release chart changed".into())
        );
        let mut new_values = desired("1.0.0");
        new_values.config_digest = crate::values::config_digest(&serde_json::json!({"a": 1}));
        assert_eq!(
            state(Some(&deployed), &status, &spec, &new_values),
            ReleaseState::OutOfSync("release config values changed".into())
        );
        spec.test = Some(Test {
            enable: Some(true),
            ..Test::default()
        });
        assert_eq!(
            state(Some(&deployed), &status, &spec, &desired("1.0.0")),
            ReleaseState::Untested
        );
        let mut tested = snapshot(&deployed);
        tested.test_hooks = Some(BTreeMap::from([(
            "t".to_string(),
            TestHookStatus {
                phase: Some("Failed".into()),
                ..TestHookStatus::default()
            },
        )]));
        let mut status = status_with(vec![tested]);
        assert_eq!(
            state(Some(&deployed), &status, &spec, &desired("1.0.0")),
            ReleaseState::InSync,
            "no active remediation: failures stand"
        );
        status.last_attempted_release_action = Some(ReleaseAction::Install);
        assert_eq!(
            state(Some(&deployed), &status, &spec, &desired("1.0.0")),
            ReleaseState::Failed("release has test in failed phase".into())
        );
    }

    #[test]
    fn actions_for_states() {
        let spec = spec();
        let status = HelmReleaseStatus::default();
        let next = |s: &ReleaseState, status: &HelmReleaseStatus, force: bool| {
            next_action(s, &spec, status, force, false)
        };
        assert_eq!(
            next(&ReleaseState::Absent(String::new()), &status, false),
            Ok(Some(Action::Install))
        );
        assert_eq!(
            next(&ReleaseState::Locked(String::new()), &status, false),
            Ok(Some(Action::Unlock))
        );
        assert_eq!(
            next(&ReleaseState::Untested, &status, false),
            Ok(Some(Action::Test))
        );
        assert_eq!(
            next(&ReleaseState::Unmanaged(String::new()), &status, false),
            Ok(Some(Action::Upgrade {
                clear_history: true
            }))
        );
        assert_eq!(next(&ReleaseState::InSync, &status, false), Ok(None));
        assert_eq!(
            next(&ReleaseState::InSync, &status, true),
            Ok(Some(Action::Upgrade {
                clear_history: false
            }))
        );
        assert_eq!(
            next_action(&ReleaseState::InSync, &spec, &status, false, true),
            Ok(Some(Action::CorrectDrift))
        );
        // One failed install with the default of 0 retries: out of retries.
        let failed_once = HelmReleaseStatus {
            install_failures: Some(1),
            last_attempted_release_action: Some(ReleaseAction::Install),
            ..HelmReleaseStatus::default()
        };
        assert_eq!(
            next(&ReleaseState::Absent(String::new()), &failed_once, false),
            Err(Halt::RetriesExhausted("install"))
        );
        assert_eq!(
            next(&ReleaseState::Absent(String::new()), &failed_once, true),
            Ok(Some(Action::Install))
        );
        assert_eq!(
            next(&ReleaseState::Failed(String::new()), &failed_once, false),
            Err(Halt::RetriesExhausted("install"))
        );
    }

    #[test]
    fn remediation_of_failures() {
        let mut spec = spec();
        spec.install = Some(Install {
            remediation: Some(InstallRemediation {
                retries: Some(2),
                ..InstallRemediation::default()
            }),
            ..Install::default()
        });
        spec.upgrade = Some(Upgrade {
            remediation: Some(UpgradeRemediation {
                retries: Some(1),
                ..UpgradeRemediation::default()
            }),
            ..Upgrade::default()
        });
        let failed = ReleaseState::Failed(String::new());
        let install_failed = HelmReleaseStatus {
            install_failures: Some(1),
            last_attempted_release_action: Some(ReleaseAction::Install),
            ..HelmReleaseStatus::default()
        };
        assert_eq!(
            next_action(&failed, &spec, &install_failed, false, false),
            Ok(Some(Action::UninstallRemediation))
        );
        // Upgrade failed: roll back to the previous deployed revision.
        let v1 = release(1, "superseded", "1.0.0");
        let v2 = release(2, "failed", "1.1.0");
        let upgrade_failed = HelmReleaseStatus {
            upgrade_failures: Some(1),
            last_attempted_release_action: Some(ReleaseAction::Upgrade),
            history: Some(vec![snapshot(&v2), snapshot(&v1)]),
            ..HelmReleaseStatus::default()
        };
        assert_eq!(
            next_action(&failed, &spec, &upgrade_failed, false, false),
            Ok(Some(Action::Rollback { to_version: 1 }))
        );
        // Exhausted, but upgrades remediate the last failure by default when
        // retries are configured.
        let exhausted = HelmReleaseStatus {
            upgrade_failures: Some(2),
            ..upgrade_failed.clone()
        };
        assert_eq!(
            next_action(&failed, &spec, &exhausted, false, false),
            Ok(Some(Action::Rollback { to_version: 1 }))
        );
        // Without a previous successful release there is nothing to roll back to.
        let alone = HelmReleaseStatus {
            history: Some(vec![snapshot(&v2)]),
            ..upgrade_failed.clone()
        };
        assert_eq!(
            next_action(&failed, &spec, &alone, false, false),
            Err(Halt::MissingRollbackTarget)
        );
        // A changed configuration resets the counters: try again.
        let reset = HelmReleaseStatus {
            upgrade_failures: Some(0),
            ..upgrade_failed
        };
        assert_eq!(
            next_action(&failed, &spec, &reset, false, false),
            Ok(Some(Action::Upgrade {
                clear_history: false
            }))
        );
    }

    #[test]
    fn retry_on_failure_never_remediates_or_stalls() {
        let mut spec = spec();
        spec.upgrade = Some(Upgrade {
            strategy: Some(ActionStrategy {
                name: ActionStrategyName::RetryOnFailure,
                retry_interval: None,
            }),
            ..Upgrade::default()
        });
        let status = HelmReleaseStatus {
            upgrade_failures: Some(7),
            last_attempted_release_action: Some(ReleaseAction::Upgrade),
            ..HelmReleaseStatus::default()
        };
        assert_eq!(active_remediation(&spec, &status), None);
        assert_eq!(
            next_action(
                &ReleaseState::Failed(String::new()),
                &spec,
                &status,
                false,
                false
            ),
            Ok(Some(Action::Upgrade {
                clear_history: false
            }))
        );
        assert_eq!(
            next_action(
                &ReleaseState::OutOfSync(String::new()),
                &spec,
                &status,
                false,
                false
            ),
            Ok(Some(Action::Upgrade {
                clear_history: false
            }))
        );
    }

    #[test]
    fn history_previous_and_truncate() {
        let at = |v: i64, status: &str| {
            let mut s = snapshot(&release(v, status, "1.0.0"));
            s.first_deployed = Time(Timestamp::UNIX_EPOCH);
            s
        };
        let mut history = vec![
            at(1, "superseded"),
            at(2, "superseded"),
            at(3, "failed"),
            at(4, "failed"),
        ];
        assert_eq!(previous(&history, false).map(|s| s.version), Some(2));
        truncate(&mut history, false);
        assert_eq!(
            history.iter().map(|s| s.version).collect::<Vec<_>>(),
            [4, 3, 2]
        );
        let mut failures: Vec<Snapshot> = (1..=8).map(|v| at(v, "failed")).collect();
        truncate(&mut failures, false);
        assert_eq!(failures.len(), 5);
        assert_eq!(failures[0].version, 8);
        let mut bad_test = at(1, "superseded");
        bad_test.test_hooks = Some(BTreeMap::from([(
            "t".to_string(),
            TestHookStatus {
                phase: Some("Failed".into()),
                ..TestHookStatus::default()
            },
        )]));
        let history = vec![bad_test, at(2, "failed")];
        assert_eq!(previous(&history, false), None);
        assert_eq!(previous(&history, true).map(|s| s.version), Some(1));
    }
}
