//! Getting the chart of a HelmRelease: only through source objects' status.
//!
//! With `spec.chart` the controller keeps the HelmChart or OCIRepository of
//! the template in sync ([`crate::template`]; source-controller produces its
//! artifact); with `spec.chartRef` it reads the referenced OCIRepository,
//! HelmChart or ExternalArtifact. Either way it takes `.status.artifact`,
//! downloads it, checks its digest, and keeps the archive in a local cache
//! keyed by digest for helm to install from.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use api::helm::{ChartSourceKind, HelmRelease};
use api::meta::Artifact;
use api::source::{HelmChart, OCIRepository};
use kube::api::DynamicObject;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use runtime::artifact::ArtifactFetcher;

use crate::release::ChartMetadata;

/// Largest `Chart.yaml` read from an archive.
const MAX_CHART_YAML: u64 = 1024 * 1024;
/// Archives kept in the cache; the oldest go first.
const CACHE_ENTRIES: usize = 512;

/// Why the chart is not available.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The source object is missing or could not be read.
    #[error("could not get Source object: {0}")]
    Source(String),
    /// The source has no (current) artifact yet.
    #[error("{0}")]
    NotReady(String),
    /// The reference crosses namespaces and that is forbidden.
    #[error("{0}")]
    AccessDenied(String),
    /// Creating or updating the object of a `spec.chart` template failed.
    #[error("failed to reconcile {0}")]
    Template(String),
    /// Downloading or verifying the artifact failed.
    #[error("Could not load chart: {0}")]
    Download(#[source] runtime::artifact::Error),
    /// The artifact cannot be kept in the chart cache.
    #[error("Could not load chart: {0}")]
    Artifact(String),
    /// The archive is not a chart.
    #[error("Could not load chart: {0}")]
    Invalid(String),
    /// The chart version cannot carry the source's digest (Flux's
    /// `ChartMutateError`).
    #[error("{0}")]
    Mutate(String),
}

/// The chart a release is made from.
#[derive(Clone, Debug)]
pub struct LoadedChart {
    /// The `.tgz` in the cache.
    pub path: PathBuf,
    /// Its `Chart.yaml`.
    pub metadata: ChartMetadata,
    /// The artifact it came from.
    pub artifact: Artifact,
    /// The digest of the source revision, when the source is an
    /// OCIRepository or an ExternalArtifact whose revision has one
    /// (`lastAttemptedRevisionDigest`, `history[].ociDigest`).
    pub oci_digest: Option<String>,
}

/// The source object a HelmRelease takes its chart from.
pub use runtime::source::SourceRef;

/// The source of a HelmRelease: its `chartRef`, or the HelmChart or
/// OCIRepository made from its `chart` template.
pub fn source_of(hr: &HelmRelease) -> Option<SourceRef> {
    let namespace = hr.namespace().unwrap_or_default();
    if let Some(reference) = &hr.spec.chart_ref {
        let kind = match reference.kind {
            ChartSourceKind::OCIRepository => "OCIRepository",
            ChartSourceKind::HelmChart => "HelmChart",
            ChartSourceKind::ExternalArtifact => "ExternalArtifact",
        };
        return Some(SourceRef {
            kind,
            namespace: reference.namespace.clone().unwrap_or(namespace),
            name: reference.name.clone(),
        });
    }
    crate::template::reference(hr)
}

/// The chart sources (HelmCharts and OCIRepositories) as the controller's
/// watches last delivered them.
#[derive(Clone)]
pub struct SourceCache {
    helm_charts: Store<HelmChart>,
    oci_repositories: Store<OCIRepository>,
}

impl SourceCache {
    /// A cache reading from the stores the watches fill.
    pub fn new(helm_charts: Store<HelmChart>, oci_repositories: Store<OCIRepository>) -> Self {
        Self {
            helm_charts,
            oci_repositories,
        }
    }

    /// The cached object of `source`, if its kind is watched, the watch has
    /// listed once and the object is there.
    fn get(&self, source: &SourceRef) -> Option<DynamicObject> {
        fn cached<K>(store: &Store<K>, source: &SourceRef) -> Option<serde_json::Value>
        where
            K: kube::Resource<DynamicType = ()> + Clone + serde::Serialize + 'static,
        {
            futures::FutureExt::now_or_never(store.wait_until_ready())?.ok()?;
            let key = ObjectRef::new(&source.name).within(&source.namespace);
            serde_json::to_value(store.get(&key)?.as_ref()).ok()
        }
        let value = match source.kind {
            "HelmChart" => cached(&self.helm_charts, source),
            "OCIRepository" => cached(&self.oci_repositories, source),
            _ => None,
        }?;
        serde_json::from_value(value).ok()
    }
}

/// Reads the source's artifact, refusing sources that are not ready:
/// generation not yet observed, stalled, or without an artifact (Flux's
/// readiness rule for chart sources). A ready artifact in `cache` is used
/// as it is (a newer one triggers another reconciliation when the watch
/// delivers it); anything else is read from the API.
pub async fn source_artifact(
    client: &Client,
    cache: Option<&SourceCache>,
    source: &SourceRef,
) -> Result<Artifact, ChartError> {
    if let Some(object) = cache.and_then(|cache| cache.get(source))
        && let Ok(artifact) = ready_artifact(source, &object)
    {
        return Ok(artifact);
    }
    let object = runtime::source::get(client, source)
        .await
        .map_err(|err| ChartError::Source(err.to_string()))?;
    ready_artifact(source, &object)
}

/// The artifact of a source object, if the object is ready to be used.
pub fn ready_artifact(source: &SourceRef, object: &DynamicObject) -> Result<Artifact, ChartError> {
    runtime::source::ready_artifact(object)
        .map_err(|why| ChartError::NotReady(format!("{source} is not ready: {why}")))
}

/// Downloaded chart archives, by digest.
pub struct ChartCache {
    dir: PathBuf,
    fetcher: ArtifactFetcher,
    /// Whether chart versions carry the source digest ([`crate::chart_digest`];
    /// off with the `DisableChartDigestTracking` feature gate).
    track_digests: bool,
}

impl ChartCache {
    /// A cache in `dir` (created if missing) downloading with `fetcher`.
    pub fn new(
        dir: PathBuf,
        fetcher: ArtifactFetcher,
        track_digests: bool,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            fetcher,
            track_digests,
        })
    }

    /// The chart of `artifact`: from the cache, or downloaded and verified.
    pub async fn load(
        &self,
        artifact: &Artifact,
        source: &SourceRef,
    ) -> Result<LoadedChart, ChartError> {
        let file_name = format!("{}.tgz", artifact.digest.replace(':', "-"));
        if file_name.contains('/') {
            return Err(ChartError::Artifact(format!(
                "invalid digest '{}'",
                artifact.digest
            )));
        }
        let path = self.dir.join(file_name);
        if !path.exists() {
            let mut file = self
                .fetcher
                .fetch(&artifact.url, &artifact.digest)
                .await
                .map_err(ChartError::Download)?;
            let partial = tempfile::NamedTempFile::new_in(&self.dir)
                .map_err(|e| ChartError::Artifact(format!("cache: {e}")))?;
            std::io::copy(&mut file, &mut partial.as_file())
                .map_err(|e| ChartError::Artifact(format!("cache: {e}")))?;
            // Rename: a concurrent reader never sees a half-written archive.
            partial
                .persist(&path)
                .map_err(|e| ChartError::Artifact(format!("cache: {e}")))?;
            self.evict();
        }
        let mut metadata = read_chart_metadata(&path)?;
        let mut path = path;
        let has_digest = source.kind == "OCIRepository"
            || (source.kind == "ExternalArtifact" && artifact.revision.contains(':'));
        let mut oci_digest = None;
        if has_digest {
            let (version, digest) =
                crate::chart_digest::tracked_version(&metadata.version, &artifact.revision)
                    .map_err(ChartError::Mutate)?;
            if self.track_digests {
                let tracked = path.with_extension(format!("v{version}.tgz"));
                if !tracked.exists() {
                    crate::chart_digest::rewrite_version(&path, &tracked, &version)?;
                }
                path = tracked;
                metadata.version = version;
            }
            oci_digest = Some(digest);
        }
        Ok(LoadedChart {
            path,
            metadata,
            artifact: artifact.clone(),
            oci_digest,
        })
    }

    /// Drops the least recently written archives beyond [`CACHE_ENTRIES`].
    fn evict(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "tgz"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        if files.len() <= CACHE_ENTRIES {
            return;
        }
        files.sort();
        for (_, path) in files.iter().take(files.len() - CACHE_ENTRIES) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The files of a packaged chart's `crds/` directories (its own and those
/// of subcharts kept as directories under `charts/`), in archive order.
/// Subcharts packaged as nested archives are not looked into.
pub fn read_crd_files(path: &Path) -> Result<Vec<(String, String)>, ChartError> {
    let invalid = |why: String| ChartError::Invalid(format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| invalid(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(|e| invalid(e.to_string()))? {
        let entry = entry.map_err(|e| invalid(e.to_string()))?;
        let entry_path = entry
            .path()
            .map_err(|e| invalid(e.to_string()))?
            .into_owned();
        let parts: Vec<String> = entry_path
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let in_crds = match parts.as_slice() {
            [_, crds, _] => crds == "crds",
            [_, charts, _, crds, _] => charts == "charts" && crds == "crds",
            _ => false,
        };
        let yaml_or_json = entry_path
            .extension()
            .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
        if !in_crds || !yaml_or_json {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_CHART_YAML)
            .read_to_string(&mut text)
            .map_err(|e| invalid(e.to_string()))?;
        files.push((entry_path.display().to_string(), text));
    }
    Ok(files)
}

/// `Chart.yaml` of a packaged chart (`<chart>/Chart.yaml` in the archive).
pub fn read_chart_metadata(path: &Path) -> Result<ChartMetadata, ChartError> {
    let invalid = |why: String| ChartError::Invalid(format!("{}: {why}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| invalid(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = archive.entries().map_err(|e| invalid(e.to_string()))?;
    for entry in entries {
        let entry = entry.map_err(|e| invalid(e.to_string()))?;
        let entry_path = entry
            .path()
            .map_err(|e| invalid(e.to_string()))?
            .into_owned();
        let parts: Vec<_> = entry_path.components().collect();
        if parts.len() != 2 || entry_path.file_name().is_none_or(|n| n != "Chart.yaml") {
            continue;
        }
        let mut text = String::new();
        entry
            .take(MAX_CHART_YAML)
            .read_to_string(&mut text)
            .map_err(|e| invalid(e.to_string()))?;
        let fields: BTreeMap<String, serde_json::Value> =
            serde_saphyr::from_str(&text).map_err(|e| invalid(format!("Chart.yaml: {e}")))?;
        let text_field = |key: &str| match fields.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let name = text_field("name").ok_or_else(|| invalid("Chart.yaml has no name".into()))?;
        let version =
            text_field("version").ok_or_else(|| invalid("Chart.yaml has no version".into()))?;
        return Ok(ChartMetadata {
            name,
            version,
            app_version: text_field("appVersion"),
        });
    }
    Err(invalid("no Chart.yaml found".into()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The HelmRelease `apps/podinfo` with `spec`.
    pub(crate) fn hr(spec: serde_json::Value) -> HelmRelease {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 3},
            "spec": spec,
        }))
        .expect("valid HelmRelease")
    }

    #[test]
    fn sources_of_chart_ref_and_template() {
        let by_ref = hr(serde_json::json!({
            "interval": "5m",
            "chartRef": {"kind": "OCIRepository", "name": "podinfo", "namespace": "flux-system"}
        }));
        assert_eq!(
            source_of(&by_ref),
            Some(SourceRef {
                kind: "OCIRepository",
                namespace: "flux-system".into(),
                name: "podinfo".into()
            })
        );
        let by_template = hr(serde_json::json!({
            "interval": "5m",
            "chart": {
                "spec": {"chart": "podinfo", "version": "6.5.*",
                         "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}
            }
        }));
        let source = source_of(&by_template).expect("source");
        assert_eq!(
            (source.kind, source.namespace.as_str(), source.name.as_str()),
            ("HelmChart", "flux-system", "apps-podinfo")
        );
        let by_oci_template = hr(serde_json::json!({
            "interval": "5m",
            "chart": {"kind": "OCIRepository", "spec": {"url": "oci://registry/podinfo"}}
        }));
        let source = source_of(&by_oci_template).expect("source");
        assert_eq!(
            (source.kind, source.namespace.as_str(), source.name.as_str()),
            ("OCIRepository", "apps", "apps-podinfo")
        );
    }

    fn object(generation: i64, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": generation},
            "status": status,
        }))
        .expect("object")
    }

    #[test]
    fn plural_names_of_source_kinds() {
        assert_eq!(
            runtime::source::api_resource("OCIRepository").plural,
            "ocirepositories"
        );
        assert_eq!(
            runtime::source::api_resource("HelmChart").plural,
            "helmcharts"
        );
        assert_eq!(
            runtime::source::api_resource("ExternalArtifact").plural,
            "externalartifacts"
        );
    }

    #[test]
    fn sources_must_be_ready() {
        let source = SourceRef {
            kind: "OCIRepository",
            namespace: "apps".into(),
            name: "podinfo".into(),
        };
        let artifact = serde_json::json!({
            "url": "http://source/x.tgz", "path": "x.tgz", "revision": "6.5.4@sha256:abc",
            "digest": "sha256:0000", "lastUpdateTime": "2026-01-01T00:00:00Z"
        });
        let err = ready_artifact(
            &source,
            &object(2, serde_json::json!({"observedGeneration": 1})),
        )
        .expect_err("not observed");
        assert_eq!(
            err.to_string(),
            "OCIRepository 'apps/podinfo' is not ready: latest generation of object has not been reconciled"
        );
        let err = ready_artifact(
            &source,
            &object(1, serde_json::json!({"observedGeneration": 1})),
        )
        .expect_err("no artifact");
        assert!(
            err.to_string().ends_with("does not have an artifact"),
            "{err}"
        );
        let ok = ready_artifact(
            &source,
            &object(
                1,
                serde_json::json!({"observedGeneration": 1, "artifact": artifact}),
            ),
        )
        .expect("ready");
        assert_eq!(ok.revision, "6.5.4@sha256:abc");
    }

    #[test]
    fn cached_sources_give_the_artifact_a_read_would() {
        let repository: OCIRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 1},
            "spec": {"url": "oci://registry/podinfo", "interval": "5m"},
            "status": {
                "observedGeneration": 1,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                    "message": "stored", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
                "artifact": {"url": "http://source/x.tgz", "path": "x.tgz",
                    "revision": "6.5.4@sha256:abc", "digest": "sha256:0000",
                    "lastUpdateTime": "2026-01-01T00:00:00Z"}
            }
        }))
        .expect("OCIRepository");
        let (oci_repositories, mut writer) = kube::runtime::reflector::store();
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(repository));
        let (helm_charts, mut charts_writer) = kube::runtime::reflector::store();
        charts_writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
        let cache = SourceCache::new(helm_charts, oci_repositories);
        let source = SourceRef {
            kind: "OCIRepository",
            namespace: "apps".into(),
            name: "podinfo".into(),
        };
        let object = cache.get(&source).expect("cached");
        let artifact = ready_artifact(&source, &object).expect("ready");
        assert_eq!(artifact.revision, "6.5.4@sha256:abc");
        assert_eq!(artifact.digest, "sha256:0000");
        // Other objects, and kinds not watched, are read from the API.
        let other = SourceRef {
            name: "other".into(),
            ..source.clone()
        };
        assert!(cache.get(&other).is_none());
        let external = SourceRef {
            kind: "ExternalArtifact",
            ..source
        };
        assert!(cache.get(&external).is_none());
    }
}
