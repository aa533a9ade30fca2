//! Helm release objects as helm writes them (the JSON of its storage and of
//! `helm status -o json`), and what the controller records of them in
//! `status.history`.

use std::collections::BTreeMap;

use api::helm::{Snapshot, TestHookStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::go_json::{self, GoAny, GoObject, GoTime};
use crate::values::config_digest;

/// A Helm release (`helm.sh/helm/v4/pkg/release/v1.Release`) as decoded
/// from helm's storage or output. Unknown fields are ignored, as Go does; the
/// fields Flux digests (see [`Release::digest`]) mirror helm's Go types.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
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
    /// How helm applied this revision: `ssa` (server-side apply), `csa`, or
    /// empty (helm 3). Upgrades and rollbacks with `serverSideApply: auto`
    /// follow it, as Flux resolves `auto` itself.
    #[serde(default)]
    pub apply_method: String,
}

/// Status of a release revision (helm's `Info`; serialized as helm's
/// `MarshalJSON` writes it: zero times and empty strings left out).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Info {
    /// When the release was first deployed.
    #[serde(default, skip_serializing_if = "GoTime::is_zero")]
    pub first_deployed: GoTime,
    /// When this revision was deployed.
    #[serde(default, skip_serializing_if = "GoTime::is_zero")]
    pub last_deployed: GoTime,
    /// When the release was deleted.
    #[serde(default, skip_serializing_if = "GoTime::is_zero")]
    pub deleted: GoTime,
    /// What happened.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `deployed`, `failed`, `superseded`, `uninstalled`, `pending-install`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The rendered `NOTES.txt`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

/// The chart of a release.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Chart {
    /// `Chart.yaml`.
    #[serde(default)]
    pub metadata: Option<Metadata>,
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

/// `Chart.yaml` of a release's chart, every field of helm's Go type
/// (`chart/v2.Metadata`, in its order and with its `omitempty` rules): all of
/// it is in the digest Flux records. Keys helm does not know are dropped, as
/// Go drops them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Chart name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Project home page.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub home: String,
    /// Source code URLs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Chart version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// One-line description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Search keywords.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    /// Maintainers (a `null` entry stays `null`, as Go's nil pointer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Option<Maintainer>>,
    /// Icon URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    /// Chart API version (`v1`, `v2`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// Condition enabling the chart as a dependency.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Tags enabling the chart as a dependency.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    /// Version of the packaged application.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    /// Whether the chart is deprecated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deprecated: bool,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Supported Kubernetes versions.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    /// Chart dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Option<Dependency>>,
    /// `application` or `library`.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
}

/// A chart maintainer (helm's `chart/v2.Maintainer`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintainer {
    /// Name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Email address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    /// URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A chart dependency (helm's `chart/v2.Dependency`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// Chart name.
    #[serde(default)]
    pub name: String,
    /// Version range.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Repository URL.
    #[serde(default)]
    pub repository: String,
    /// Values path enabling it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    /// Tags enabling it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Whether it is enabled.
    #[serde(default, skip_serializing_if = "is_false")]
    pub enabled: bool,
    /// Values imported from it (strings or child/parent maps, Go `any`s).
    #[serde(
        rename = "import-values",
        default,
        serialize_with = "go_any_list",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_values: Vec<Value>,
    /// Name it is used under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

/// A hook of a release (helm's `release/v1.Hook`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Hook {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Object kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Template path.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// The rendered object.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub manifest: String,
    /// Events the hook runs on (`test`, `pre-install`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,
    /// Its last execution.
    #[serde(default)]
    pub last_run: HookExecution,
    /// Order among the hooks of an event.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub weight: i64,
    /// When the hook object is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delete_policies: Vec<String>,
    /// When the hook's output is logged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_log_policies: Vec<String>,
}

/// One execution of a hook (helm's `HookExecution`, serialized as its
/// `MarshalJSON` writes it).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HookExecution {
    /// When it started.
    #[serde(default, skip_serializing_if = "GoTime::is_zero")]
    pub started_at: GoTime,
    /// When it completed.
    #[serde(default, skip_serializing_if = "GoTime::is_zero")]
    pub completed_at: GoTime,
    /// `Running`, `Succeeded`, `Failed` or empty when it never ran.
    #[serde(default)]
    pub phase: String,
}

fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

fn go_any_list<S: serde::Serializer>(values: &[Value], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(values.iter().map(GoAny))
}

/// What Flux's helm-controller digests of a release (its
/// `release.Observation`, fields in that order): the release without its
/// chart files, test hooks left out so that running tests (also by hand
/// with `helm test`) does not make the release look modified, and the OCI
/// digest of the chart artifact.
#[derive(Serialize)]
struct Observation<'a> {
    name: &'a str,
    version: i64,
    info: &'a Info,
    #[serde(rename = "chartMetadata")]
    chart_metadata: &'a Metadata,
    /// Go's `copystructure` leaves empty values out: `null`.
    config: Option<GoObject<'a>>,
    manifest: &'a str,
    /// `null` when no hook is left.
    hooks: Option<Vec<&'a Hook>>,
    namespace: &'a str,
    #[serde(rename = "ociDigest", skip_serializing_if = "Option::is_none")]
    oci_digest: Option<&'a str>,
}

/// The API version of the snapshots this controller records, as Flux's
/// `CurrentSnapshotAPIVersion`: Flux verifies the digest of a snapshot only
/// when it has this version (older ones were digested differently).
pub const SNAPSHOT_API_VERSION: &str = "v2";

/// Helm status of a release revision in the middle of an action.
pub fn is_pending(status: &str) -> bool {
    status.starts_with("pending-")
}

impl Release {
    /// The chart metadata (empty when the release carries no chart).
    pub fn chart_metadata(&self) -> ChartMetadata {
        let metadata = self
            .chart
            .as_ref()
            .and_then(|chart| chart.metadata.as_ref());
        metadata.map_or_else(ChartMetadata::default, |metadata| ChartMetadata {
            name: metadata.name.clone(),
            version: metadata.version.clone(),
            app_version: Some(metadata.app_version.clone()).filter(|v| !v.is_empty()),
        })
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
            .filter(|hook| is_test_hook(hook))
            .map(|hook| {
                let run = &hook.last_run;
                let status = TestHookStatus {
                    last_started: k8s_time(&run.started_at),
                    last_completed: k8s_time(&run.completed_at),
                    phase: (!run.phase.is_empty()).then(|| run.phase.clone()),
                };
                (hook.name.clone(), status)
            })
            .collect()
    }

    /// The JSON Flux's helm-controller hashes for this release (Go's
    /// `json.Encoder` output of its `Observation`, newline included).
    pub fn observation_json(&self, oci_digest: Option<&str>) -> Vec<u8> {
        let no_metadata = Metadata::default();
        let config = self.config.as_ref().filter(|config| !config.is_empty());
        let hooks: Vec<&Hook> = self
            .hooks
            .iter()
            .flatten()
            .filter(|hook| !is_test_hook(hook))
            .collect();
        let observation = Observation {
            name: &self.name,
            version: self.version,
            info: &self.info,
            chart_metadata: self
                .chart
                .as_ref()
                .and_then(|chart| chart.metadata.as_ref())
                .unwrap_or(&no_metadata),
            config: config.map(GoObject),
            manifest: &self.manifest,
            hooks: (!hooks.is_empty()).then_some(hooks),
            namespace: &self.namespace,
            oci_digest: oci_digest.filter(|digest| !digest.is_empty()),
        };
        // Only non-finite floats fail, which JSON cannot carry: the empty
        // observation then stands for the release, as no digest matches it.
        let mut json = go_json::to_vec(&observation).unwrap_or_default();
        json.push(b'\n');
        json
    }

    /// The digest Flux's helm-controller records for this release in
    /// `status.history[].digest`, with the OCI digest of the chart artifact
    /// the snapshot carries.
    pub fn digest(&self, oci_digest: Option<&str>) -> String {
        runtime::artifact::sha256_digest(&self.observation_json(oci_digest))
    }

    /// Checks that `snapshot` records this very release, as Flux verifies
    /// it: the digest (in the snapshot's own algorithm) over the release with
    /// the snapshot's OCI digest. Snapshots of another API version were
    /// digested differently and are trusted, as Flux trusts them. The error
    /// is Flux's reason for the release then being unmanaged.
    pub fn verify_snapshot(&self, snapshot: &Snapshot) -> Result<(), &'static str> {
        if snapshot.api_version.as_deref() != Some(SNAPSHOT_API_VERSION) {
            return Ok(());
        }
        let json = self.observation_json(snapshot.oci_digest.as_deref());
        match runtime::artifact::verify_digest(&json, &snapshot.digest) {
            Ok(()) => Ok(()),
            Err(runtime::artifact::Error::DigestMismatch { .. }) => {
                Err("release not observed to be made for object")
            }
            Err(_) => Err("release digest verification error"),
        }
    }

    /// The history entry for this revision. `oci_digest` is carried over from
    /// what the controller knew of the chart; test hooks are not recorded
    /// here (only after the controller ran the tests).
    pub fn to_snapshot(&self, oci_digest: Option<String>) -> Snapshot {
        let metadata = self.chart_metadata();
        Snapshot {
            api_version: Some(SNAPSHOT_API_VERSION.into()),
            digest: self.digest(oci_digest.as_deref()),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            version: self.version,
            status: self.info.status.clone(),
            action: None,
            chart_name: metadata.name,
            chart_version: metadata.version,
            app_version: metadata.app_version.filter(|v| !v.is_empty()),
            config_digest: config_digest(&self.values()),
            first_deployed: time_or_epoch(&self.info.first_deployed),
            last_deployed: time_or_epoch(&self.info.last_deployed),
            deleted: k8s_time(&self.info.deleted),
            test_hooks: None,
            oci_digest,
        }
    }
}

/// A helm time in whole seconds (what the API server keeps); Go's zero
/// time (and anything up to the epoch) means "never".
fn k8s_time(time: &GoTime) -> Option<Time> {
    let seconds = time.unix_seconds().filter(|seconds| *seconds > 0)?;
    Timestamp::from_second(seconds).ok().map(Time)
}

fn time_or_epoch(time: &GoTime) -> Time {
    k8s_time(time).unwrap_or(Time(Timestamp::UNIX_EPOCH))
}

/// Whether `hook` runs on `helm test` (Flux's `IsHookForEvent(hook, "test")`).
fn is_test_hook(hook: &Hook) -> bool {
    hook.events.iter().any(|event| event == "test")
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
        assert_eq!(release.digest(None), tested.digest(None));
        let mut failed = release.clone();
        failed.info.status = "failed".into();
        assert_ne!(release.digest(None), failed.digest(None));
        let hooks = tested.test_hooks();
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks["r1-test"].phase.as_deref(), Some("Succeeded"));
        assert!(release.test_hooks()["r1-test"].phase.is_none());
    }

    /// A vector of `testdata/release-digest/releases.json`: a stored release
    /// and what Flux helm-controller v1.6.0 (`release.ObserveRelease`,
    /// `release.Digest`, helm v4.2.1's types, Go 1.26) made of it.
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Vector {
        name: String,
        #[serde(default)]
        oci_digest: Option<String>,
        release: Value,
        observation: String,
        digest: String,
        sha512: String,
    }

    fn vectors() -> Vec<Vector> {
        serde_json::from_str(include_str!("../testdata/release-digest/releases.json"))
            .expect("release vectors")
    }

    fn snapshot_with(release: &Release, digest: &str, oci_digest: Option<&str>) -> Snapshot {
        let mut snapshot = release.to_snapshot(oci_digest.map(str::to_string));
        snapshot.digest = digest.to_string();
        snapshot
    }

    #[test]
    fn digests_equal_fluxs() {
        let vectors = vectors();
        assert_eq!(vectors.len(), 8);
        for vector in vectors {
            // As the storage decodes it: JSON value first, then the release.
            let release: Release = serde_json::from_value(vector.release).expect(&vector.name);
            let oci = vector.oci_digest.as_deref();
            let observed = String::from_utf8(release.observation_json(oci)).expect("UTF-8");
            assert_eq!(observed, vector.observation, "{}", vector.name);
            assert_eq!(release.digest(oci), vector.digest, "{}", vector.name);
            // Flux's snapshots verify, in any algorithm it may record them in.
            let snapshot = release.to_snapshot(vector.oci_digest.clone());
            assert_eq!(snapshot.api_version.as_deref(), Some("v2"));
            assert_eq!(snapshot.digest, vector.digest);
            for digest in [&vector.digest, &vector.sha512] {
                let flux = snapshot_with(&release, digest, oci);
                assert_eq!(release.verify_snapshot(&flux), Ok(()), "{}", vector.name);
            }
        }
    }

    #[test]
    fn snapshots_that_do_not_match_are_refused_as_flux_refuses_them() {
        let release: Release = serde_json::from_str(INSTALLED).expect("release JSON");
        let recorded = release.to_snapshot(Some("sha256:abc".into()));
        assert_eq!(release.verify_snapshot(&recorded), Ok(()));
        // The OCI digest is part of what is digested.
        let mut other_chart = recorded.clone();
        other_chart.oci_digest = Some("sha256:def".into());
        assert_eq!(
            release.verify_snapshot(&other_chart),
            Err("release not observed to be made for object")
        );
        let mut modified = release.clone();
        modified.info.notes = "changed".into();
        assert_eq!(
            modified.verify_snapshot(&recorded),
            Err("release not observed to be made for object")
        );
        let mut unreadable = recorded.clone();
        unreadable.digest = "md5:abc".into();
        assert_eq!(
            release.verify_snapshot(&unreadable),
            Err("release digest verification error")
        );
        // Snapshots of older controllers (no or another API version) were
        // digested differently: trusted as they are.
        for api_version in [None, Some("v2beta2".to_string())] {
            let legacy = Snapshot {
                api_version: api_version.clone(),
                ..unreadable.clone()
            };
            assert_eq!(modified.verify_snapshot(&legacy), Ok(()), "{api_version:?}");
        }
    }

    #[test]
    fn odd_releases_digest_without_panicking() {
        let odd = serde_json::json!({
            "name": "odd", "version": 1,
            "info": {"first_deployed": "yesterday", "last_deployed": null},
            "chart": {"metadata": null},
            "hooks": [{"weight": 3}],
        });
        let release: Release = serde_json::from_value(odd).expect("decodes as Go would");
        let json = String::from_utf8(release.observation_json(None)).expect("UTF-8");
        assert_eq!(
            json,
            "{\"name\":\"odd\",\"version\":1,\"info\":{\"first_deployed\":\"yesterday\"},\
             \"chartMetadata\":{},\"config\":null,\"manifest\":\"\",\
             \"hooks\":[{\"last_run\":{\"phase\":\"\"},\"weight\":3}],\"namespace\":\"\"}\n"
        );
        let snapshot = release.to_snapshot(None);
        assert_eq!(snapshot.first_deployed.0, Timestamp::UNIX_EPOCH);
    }

    #[test]
    fn pending_states() {
        assert!(is_pending("pending-upgrade"));
        assert!(is_pending("pending-install"));
        assert!(is_pending("pending-rollback"));
        assert!(!is_pending("deployed"));
    }
}
