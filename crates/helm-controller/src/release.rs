//! Helm release objects as helm writes them (the JSON of its storage and of
//! `helm status -o json`), and what the controller records of them in
//! `status.history`.

use std::collections::BTreeMap;

use api::helm::{Snapshot, TestHookStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::values::config_digest;

/// A Helm release (`helm.sh/helm/v4/pkg/release/v1.Release`), the fields the
/// controller reads. Unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// Release name.
    pub name: String,
    /// Release namespace.
    #[serde(default)]
    pub namespace: String,
    /// Revision.
    pub version: i64,
    /// Status and timestamps.
    #[serde(default)]
    pub info: Info,
    /// The chart (only its metadata is read).
    #[serde(default)]
    pub chart: Option<Chart>,
    /// The user-supplied values.
    #[serde(default)]
    pub config: Option<serde_json::Map<String, Value>>,
    /// The rendered objects, hooks excluded.
    #[serde(default)]
    pub manifest: String,
    /// The hooks and how they last ran.
    #[serde(default)]
    pub hooks: Option<Vec<Hook>>,
}

/// Status of a release revision.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// When the release was first deployed.
    #[serde(default)]
    pub first_deployed: Option<String>,
    /// When this revision was deployed.
    #[serde(default)]
    pub last_deployed: Option<String>,
    /// When the release was deleted.
    #[serde(default)]
    pub deleted: Option<String>,
    /// What happened.
    #[serde(default)]
    pub description: String,
    /// `deployed`, `failed`, `superseded`, `uninstalled`, `pending-install`, ...
    #[serde(default)]
    pub status: String,
}

/// The chart of a release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Chart {
    /// `Chart.yaml`.
    #[serde(default)]
    pub metadata: ChartMetadata,
}

/// The fields of `Chart.yaml` the controller uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartMetadata {
    /// Chart name.
    #[serde(default)]
    pub name: String,
    /// Chart version.
    #[serde(default)]
    pub version: String,
    /// Version of the packaged application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
}

/// A hook of a release.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    /// Object name.
    #[serde(default)]
    pub name: String,
    /// Object kind.
    #[serde(default)]
    pub kind: String,
    /// Events the hook runs on (`test`, `pre-install`, ...).
    #[serde(default)]
    pub events: Vec<String>,
    /// Its last execution.
    #[serde(default)]
    pub last_run: HookExecution,
}

/// One execution of a hook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HookExecution {
    /// When it started.
    #[serde(default)]
    pub started_at: Option<String>,
    /// When it completed.
    #[serde(default)]
    pub completed_at: Option<String>,
    /// `Running`, `Succeeded`, `Failed` or empty when it never ran.
    #[serde(default)]
    pub phase: String,
}

/// Helm status of a release revision in the middle of an action.
pub fn is_pending(status: &str) -> bool {
    status.starts_with("pending-")
}

impl Release {
    /// The chart metadata (empty when the release carries no chart).
    pub fn chart_metadata(&self) -> ChartMetadata {
        self.chart
            .as_ref()
            .map(|chart| chart.metadata.clone())
            .unwrap_or_default()
    }

    /// `<namespace>/<name>.v<version>`, as Flux names a release revision.
    pub fn full_name(&self) -> String {
        format!("{}/{}.v{}", self.namespace, self.name, self.version)
    }

    /// The user-supplied values as an object (`{}` when none).
    pub fn values(&self) -> Value {
        Value::Object(self.config.clone().unwrap_or_default())
    }

    /// The test hooks of the release, by name, with their last execution.
    pub fn test_hooks(&self) -> BTreeMap<String, TestHookStatus> {
        self.hooks
            .iter()
            .flatten()
            .filter(|hook| hook.events.iter().any(|event| event == "test"))
            .map(|hook| {
                let run = &hook.last_run;
                let status = TestHookStatus {
                    last_started: run.started_at.as_deref().and_then(parse_time),
                    last_completed: run.completed_at.as_deref().and_then(parse_time),
                    phase: (!run.phase.is_empty()).then(|| run.phase.clone()),
                };
                (hook.name.clone(), status)
            })
            .collect()
    }

    /// Digest of the release as the controller observed it, test hook runs
    /// left out so that running tests (also by hand with `helm test`) does
    /// not make the release look modified.
    pub fn digest(&self) -> String {
        let hooks: Vec<&Hook> = self
            .hooks
            .iter()
            .flatten()
            .filter(|hook| !hook.events.iter().any(|event| event == "test"))
            .collect();
        let observed = serde_json::json!({
            "name": self.name,
            "namespace": self.namespace,
            "version": self.version,
            "info": self.info,
            "chartMetadata": self.chart_metadata(),
            "config": self.config,
            "manifest": self.manifest,
            "hooks": hooks,
        });
        runtime::artifact::sha256_digest(observed.to_string().as_bytes())
    }

    /// The history entry for this revision. `oci_digest` is carried over from
    /// what the controller knew of the chart; test hooks are not recorded
    /// here (only after the controller ran the tests).
    pub fn to_snapshot(&self, oci_digest: Option<String>) -> Snapshot {
        let metadata = self.chart_metadata();
        Snapshot {
            api_version: None,
            digest: self.digest(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            version: self.version,
            status: self.info.status.clone(),
            action: None,
            chart_name: metadata.name,
            chart_version: metadata.version,
            app_version: metadata.app_version.filter(|v| !v.is_empty()),
            config_digest: config_digest(&self.values()),
            first_deployed: time_or_epoch(self.info.first_deployed.as_deref()),
            last_deployed: time_or_epoch(self.info.last_deployed.as_deref()),
            deleted: self.info.deleted.as_deref().and_then(parse_time),
            test_hooks: None,
            oci_digest,
        }
    }
}

/// Parses helm's RFC 3339 timestamps to whole seconds (what the API server
/// keeps); Go's zero time means "never".
pub fn parse_time(text: &str) -> Option<Time> {
    let timestamp: Timestamp = text.parse().ok()?;
    if timestamp.as_second() <= 0 {
        return None;
    }
    Timestamp::from_second(timestamp.as_second()).ok().map(Time)
}

fn time_or_epoch(text: Option<&str>) -> Time {
    text.and_then(parse_time)
        .unwrap_or(Time(Timestamp::UNIX_EPOCH))
}

/// `<namespace>/<name>.v<version>` of a history entry.
pub fn snapshot_full_name(snapshot: &Snapshot) -> String {
    format!(
        "{}/{}.v{}",
        snapshot.namespace, snapshot.name, snapshot.version
    )
}

/// `<chart>@<version>` of a history entry.
pub fn snapshot_chart(snapshot: &Snapshot) -> String {
    format!("{}@{}", snapshot.chart_name, snapshot.chart_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTALLED: &str = r#"{"name":"r1","info":{"first_deployed":"2026-11-24T21:15:26.243846287Z","last_deployed":"2026-11-24T21:15:26.243846287Z","deleted":"","description":"Install complete","status":"deployed"},"chart":{"metadata":{"name":"cm","version":"0.1.0","apiVersion":"v2","appVersion":"1.0"},"templates":[]},"config":{"data":{"x":1}},"manifest":"---\napiVersion: v1\n","hooks":[{"name":"r1-test","kind":"ConfigMap","path":"cm/templates/test.yaml","events":["test"],"last_run":{"phase":""}},{"name":"r1-pre","kind":"ConfigMap","events":["pre-install"],"last_run":{"phase":"Succeeded"}}],"version":1,"namespace":"hx","apply_method":"ssa"}"#;

    #[test]
    fn snapshot_of_a_release() {
        let release: Release = serde_json::from_str(INSTALLED).expect("release JSON");
        let snapshot = release.to_snapshot(Some("sha256:abc".into()));
        assert_eq!(snapshot.name, "r1");
        assert_eq!(snapshot.namespace, "hx");
        assert_eq!(snapshot.version, 1);
        assert_eq!(snapshot.status, "deployed");
        assert_eq!(snapshot.chart_name, "cm");
        assert_eq!(snapshot.chart_version, "0.1.0");
        assert_eq!(snapshot.app_version.as_deref(), Some("1.0"));
        assert_eq!(
            snapshot.config_digest,
            config_digest(&serde_json::json!({"data": {"x": 1}}))
        );
        assert_eq!(snapshot.first_deployed.0.as_second(), 1_795_554_926);
        assert_eq!(snapshot.deleted, None);
        assert_eq!(snapshot.oci_digest.as_deref(), Some("sha256:abc"));
        assert_eq!(release.full_name(), "hx/r1.v1");
        assert_eq!(snapshot_full_name(&snapshot), "hx/r1.v1");
        assert_eq!(snapshot_chart(&snapshot), "cm@0.1.0");
    }

    #[test]
    fn test_runs_do_not_change_the_digest() {
        let release: Release = serde_json::from_str(INSTALLED).expect("release JSON");
        let mut tested = release.clone();
        if let Some(hooks) = tested.hooks.as_mut() {
            hooks[0].last_run.phase = "Succeeded".into();
        }
        assert_eq!(release.digest(), tested.digest());
        let mut failed = release.clone();
        failed.info.status = "failed".into();
        assert_ne!(release.digest(), failed.digest());
        let hooks = tested.test_hooks();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks["r1-test"].phase.as_deref(), Some("Succeeded"));
        assert!(release.test_hooks()["r1-test"].phase.is_none());
    }

    #[test]
    fn pending_states() {
        assert!(is_pending("pending-upgrade"));
        assert!(is_pending("pending-install"));
        assert!(is_pending("pending-rollback"));
        assert!(!is_pending("deployed"));
    }
}
