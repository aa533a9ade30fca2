//! The typed options of each helm action, and what helm prints back
//! (`history`, `list`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How helm waits for the objects of an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait for hooks only (helm's default when `--wait` is not given).
    HookOnly,
    /// kstatus-based watching (`--wait=watcher`, Flux's `poller`).
    Watcher,
    /// Helm 3's readiness checks (`--wait=legacy`).
    Legacy,
}

impl Wait {
    pub(super) fn flag(self) -> Option<&'static str> {
        match self {
            Wait::HookOnly => None,
            Wait::Watcher => Some("--wait=watcher"),
            Wait::Legacy => Some("--wait=legacy"),
        }
    }
}

/// `--server-side` of upgrades and rollbacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerSide {
    /// Server-side apply.
    Enabled,
    /// Client-side three-way merge.
    Disabled,
    /// Whatever the previous release used.
    Auto,
}

impl ServerSide {
    pub(super) fn value(self) -> &'static str {
        match self {
            ServerSide::Enabled => "true",
            ServerSide::Disabled => "false",
            ServerSide::Auto => "auto",
        }
    }

    /// `Auto` resolved as Flux does before calling helm: server-side apply
    /// when `apply_method` (of the latest revision for an upgrade, of the
    /// target revision for a rollback) is `ssa`. Flux resolves it itself
    /// because it forces conflicts exactly when applying server-side, and
    /// helm refuses `--force-conflicts` with a client-side apply.
    pub fn resolve(self, apply_method: Option<&str>) -> Self {
        match self {
            ServerSide::Auto if apply_method == Some("ssa") => ServerSide::Enabled,
            ServerSide::Auto => ServerSide::Disabled,
            resolved => resolved,
        }
    }
}

/// Who helm acts as: the controller itself, or an impersonated identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `--kube-as-user`.
    pub user: Option<String>,
    /// `--kube-as-group`, repeated.
    pub groups: Vec<String>,
}

impl Identity {
    /// The identity of ServiceAccount `name` in `namespace`, with the groups a
    /// token of that ServiceAccount would carry.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            user: Some(format!("system:serviceaccount:{namespace}:{name}")),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{namespace}"),
            ],
        }
    }
}

/// The release an action is about: its name and namespace (which is also
/// where helm stores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseRef {
    /// Release name.
    pub name: String,
    /// Release (and storage) namespace.
    pub namespace: String,
    /// Who acts.
    pub identity: Identity,
}

/// Settings `helm install` and `helm upgrade` share.
#[derive(Clone, Debug)]
pub struct ChartOptions {
    /// Timeout of each Kubernetes operation.
    pub timeout: Duration,
    /// How to wait.
    pub wait: Wait,
    /// Also wait for Jobs (only with a wait other than hooks-only).
    pub wait_for_jobs: bool,
    /// Adopt existing objects that belong to no release (`--take-ownership`).
    pub take_ownership: bool,
    /// `--no-hooks`.
    pub disable_hooks: bool,
    /// `--disable-openapi-validation`.
    pub disable_openapi_validation: bool,
    /// `--skip-schema-validation`.
    pub skip_schema_validation: bool,
}

impl Default for ChartOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            wait: Wait::Watcher,
            wait_for_jobs: true,
            take_ownership: true,
            disable_hooks: false,
            disable_openapi_validation: false,
            skip_schema_validation: false,
        }
    }
}

/// Settings of `helm install`.
#[derive(Clone, Debug)]
pub struct InstallOptions {
    /// What install shares with upgrade.
    pub chart: ChartOptions,
    /// Create the namespace when missing.
    pub create_namespace: bool,
    /// Do not install the chart's `crds/`.
    pub skip_crds: bool,
    /// `--replace`.
    pub replace: bool,
    /// Server-side apply (`--server-side`).
    pub server_side: bool,
}

impl Default for InstallOptions {
    fn default() -> Self {
        Self {
            chart: ChartOptions::default(),
            create_namespace: false,
            skip_crds: false,
            replace: false,
            server_side: true,
        }
    }
}

/// Settings of `helm upgrade` (never with `--install`).
#[derive(Clone, Debug)]
pub struct UpgradeOptions {
    /// What upgrade shares with install.
    pub chart: ChartOptions,
    /// `--force-replace`.
    pub force: bool,
    /// Reuse the previous release's values (`--reuse-values`) instead of
    /// resetting to the chart's (`--reset-values`).
    pub preserve_values: bool,
    /// `--cleanup-on-fail`.
    pub cleanup_on_fail: bool,
    /// `--history-max`; 0 keeps every revision.
    pub history_max: u32,
    /// `--server-side`.
    pub server_side: ServerSide,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        Self {
            chart: ChartOptions::default(),
            force: false,
            preserve_values: false,
            cleanup_on_fail: false,
            history_max: 5,
            server_side: ServerSide::Auto,
        }
    }
}

/// Settings of `helm rollback`.
#[derive(Clone, Debug)]
pub struct RollbackOptions {
    /// Revision to roll back to.
    pub revision: i64,
    /// Timeout of each Kubernetes operation.
    pub timeout: Duration,
    /// How to wait.
    pub wait: Wait,
    /// Also wait for Jobs.
    pub wait_for_jobs: bool,
    /// `--no-hooks`.
    pub disable_hooks: bool,
    /// `--force-replace`.
    pub force: bool,
    /// `--cleanup-on-fail`.
    pub cleanup_on_fail: bool,
    /// `--history-max`; 0 keeps every revision.
    pub history_max: u32,
    /// `--server-side`.
    pub server_side: ServerSide,
}

/// Deletion propagation of an uninstall (`--cascade`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cascade {
    /// Dependents are deleted in the background.
    Background,
    /// Dependents are deleted first.
    Foreground,
    /// Dependents are left behind.
    Orphan,
}

/// Settings of `helm uninstall`.
#[derive(Clone, Debug)]
pub struct UninstallOptions {
    /// Timeout of each Kubernetes operation.
    pub timeout: Duration,
    /// `--no-hooks`.
    pub disable_hooks: bool,
    /// Mark the release uninstalled instead of deleting its history.
    pub keep_history: bool,
    /// How to wait for the deletions.
    pub wait: Wait,
    /// `--cascade`.
    pub cascade: Cascade,
}

impl Default for UninstallOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            disable_hooks: false,
            keep_history: false,
            wait: Wait::Watcher,
            cascade: Cascade::Background,
        }
    }
}

/// Settings of `helm test`.
#[derive(Clone, Debug, Default)]
pub struct TestOptions {
    /// Timeout of each test.
    pub timeout: Duration,
    /// Tests to run (`name=x`) or skip (`!name=x`, when the flag is true).
    pub filters: Vec<(String, bool)>,
}

/// One line of `helm history -o json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Release revision.
    pub revision: i64,
    /// When this revision was last written.
    #[serde(default)]
    pub updated: String,
    /// Helm status (`deployed`, `failed`, `pending-upgrade`, ...).
    pub status: String,
    /// `<chart name>-<chart version>`.
    #[serde(default)]
    pub chart: String,
    /// App version of the chart.
    #[serde(default)]
    pub app_version: String,
    /// Helm's description of what happened.
    #[serde(default)]
    pub description: String,
}

/// One line of `helm list -o json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListEntry {
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// Latest revision (helm prints it as a string).
    pub revision: String,
    /// Helm status.
    pub status: String,
    /// `<chart name>-<chart version>`.
    #[serde(default)]
    pub chart: String,
    /// App version of the chart.
    #[serde(default)]
    pub app_version: String,
}
