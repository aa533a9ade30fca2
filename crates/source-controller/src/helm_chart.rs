//! HelmChart: a chart from an HTTP HelmRepository (the newest version in the
//! repository's stored index that satisfies `spec.version`, downloaded with
//! the repository's credentials and checked against the index digest), from
//! an OCI HelmRepository (the newest matching tag, pulled by digest) or
//! from a path inside a GitRepository artifact (packaged here, its missing
//! dependencies added), with `valuesFiles` merged into its `values.yaml`,
//! stored as `<chart>-<version>.tgz`; the revision is the chart version, with
//! build metadata as Flux adds it (`+<commit>` for `reconcileStrategy:
//! Revision`, `+<generation>` with values files).

use std::sync::Arc;
use std::time::Duration;

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use api::meta::Artifact;
use api::source::{
    Bucket, GitRepository, HelmChart, HelmChartSourceKind, HelmChartStatus, HelmRepository,
    HelmRepositoryType, ReconcileStrategy,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use serde_json::Value;
use tracing::{info, warn};

use crate::Error;
use crate::chart_dependencies::{self, ChartLocation};
use crate::chart_package::{
    BuildReason, Chart, Limits, clean_relative, effective_values_files, merge_values, parse_values,
    with_build_metadata,
};
use crate::chart_repository::{ChartRepositoryClient, select_version};
use crate::controller::Context;
use crate::oci_chart::OciChartRepository;
use crate::source_status::{self, Outcome};
use crate::storage::ArtifactStore;

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "HelmChart";
/// Timeout for downloading a chart.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Reconciles one HelmChart.
pub async fn reconcile(obj: Arc<HelmChart>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.suspend == Some(true);
    source_status::reconcile_source(obj, ctx, KIND, suspended, |obj, ctx, status| {
        Box::pin(sync(obj, ctx, status))
    })
    .await
}

async fn sync(
    obj: &HelmChart,
    ctx: &Context,
    status: &mut HelmChartStatus,
) -> Result<Outcome, Error> {
    if obj.spec.verify.is_some() {
        // Refused rather than ignored: an unverified chart must not pass as verified.
        return Err(Error::Unsupported(
            "verify (chart signature verification) is not supported by this source-controller"
                .into(),
        ));
    }
    let namespace = obj.namespace().unwrap_or_default();
    let name = &obj.spec.source_ref.name;
    let source = match obj.spec.source_ref.kind {
        HelmChartSourceKind::HelmRepository => {
            return from_helm_repository(obj, ctx, status).await;
        }
        HelmChartSourceKind::GitRepository => SourceArtifact {
            kind: "GitRepository",
            artifact: source::<GitRepository>(ctx, &namespace, name)
                .await?
                .status
                .and_then(|s| s.artifact),
        },
        HelmChartSourceKind::Bucket => SourceArtifact {
            kind: "Bucket",
            artifact: source::<Bucket>(ctx, &namespace, name)
                .await?
                .status
                .and_then(|s| s.artifact),
        },
    };
    from_source_artifact(obj, ctx, status, source).await
}

/// A chart ready to store.
struct Build {
    /// The chart's name.
    name: String,
    /// The version, build metadata included; the artifact revision.
    version: String,
    /// The `.tgz`.
    archive: Vec<u8>,
    /// Packaged here rather than stored as pulled.
    packaged: bool,
    /// The values files merged into `values.yaml`.
    values_files: Vec<String>,
}

/// Flux's reason for a successful build, from its `summary`.
pub fn success_reason(summary: &str) -> &'static str {
    if summary.starts_with("packaged ") {
        api::meta::reason::CHART_PACKAGE_SUCCEEDED
    } else {
        api::meta::reason::CHART_PULL_SUCCEEDED
    }
}

/// Flux's summary of a build, the `Ready` message.
fn summary(name: &str, version: &str, packaged: bool, values_files: &[String]) -> String {
    let action = if packaged { "packaged" } else { "pulled" };
    let mut text = format!("{action} '{name}' chart with version '{version}'");
    if !values_files.is_empty() {
        text.push_str(&format!(
            " and merged values files [{}]",
            values_files.join(" ")
        ));
    }
    text
}

/// The stored artifact already is `name` at `version`, built for this
/// generation: the last reconciliation of this generation ended Ready (a
/// failed one, e.g. a values file gone missing, must be tried again rather
/// than covered by the older artifact).
fn is_current(
    obj: &HelmChart,
    ctx: &Context,
    status: &HelmChartStatus,
    name: &str,
    version: &str,
) -> bool {
    status
        .artifact
        .as_ref()
        .is_some_and(|a| ctx.store.exists(&a.path) && a.revision == version)
        && status.observed_chart_name.as_deref() == Some(name)
        && status.observed_generation == obj.metadata.generation
        && ready_condition(status).is_some_and(|ready| {
            ready.status == "True" && ready.observed_generation == obj.metadata.generation
        })
}

fn ready_condition(status: &HelmChartStatus) -> Option<&Condition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == api::meta::condition_type::READY)
}

/// The `Ready` message for an unchanged artifact: the last summary when it
/// was about this version.
fn unchanged_message(status: &HelmChartStatus, fallback: String, version: &str) -> String {
    ready_condition(status)
        .filter(|ready| ready.status == "True" && ready.message.contains(&format!("'{version}'")))
        .map(|ready| ready.message.clone())
        .unwrap_or(fallback)
}

/// The source object `name`, or Flux's `SourceUnavailable` failure.
async fn source<K>(ctx: &Context, namespace: &str, name: &str) -> Result<K, Error>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.get_opt(name).await?.ok_or_else(|| {
        Error::SourceUnavailable(format!(
            "failed to get source: {} '{name}' not found",
            K::kind(&())
        ))
    })
}

async fn from_helm_repository(
    obj: &HelmChart,
    ctx: &Context,
    status: &mut HelmChartStatus,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let spec = &obj.spec;
    let repo: HelmRepository = source(ctx, &namespace, &spec.source_ref.name).await?;
    let requested = spec.version.as_deref().unwrap_or("");
    let limit = ctx.settings.helm_chart_max_size;
    if repo.spec.r#type == Some(HelmRepositoryType::Oci) {
        // A data container: no artifact, the registry is asked directly.
        let registry = OciChartRepository::for_repository(ctx, &namespace, &repo).await?;
        let chart_version = registry.resolve_version(&spec.chart, requested).await?;
        status.observed_source_artifact_revision = None;
        let Some(version) = needed_version(obj, ctx, status, &chart_version)? else {
            return unchanged(obj, status, &chart_version);
        };
        let pulled = registry.pull(&spec.chart, &chart_version, limit).await?;
        let build = repository_build(obj, version, pulled, Limits::of(&ctx.settings))?;
        return store(obj, ctx, status, build).await;
    }
    let Some(index_artifact) = repo.status.as_ref().and_then(|s| s.artifact.clone()) else {
        return Err(Error::SourceUnavailable(format!(
            "no artifact available for HelmRepository source '{}'",
            spec.source_ref.name
        )));
    };
    let chart_name = obj.name_any();
    let index = read_index(ctx, &index_artifact, (&namespace, &chart_name))?;
    let entry = select_version(&index, &spec.chart, requested)?;
    status.observed_source_artifact_revision = Some(index_artifact.revision.clone());
    let Some(version) = needed_version(obj, ctx, status, &entry.version)? else {
        return unchanged(obj, status, &entry.version);
    };
    let client =
        ChartRepositoryClient::for_repository(ctx, &namespace, &repo, DOWNLOAD_TIMEOUT).await?;
    let pulled = client.download(&entry, limit).await.map_err(|e| {
        BuildReason::ChartPull.error(format!(
            "failed to download chart for remote reference: {e}"
        ))
    })?;
    let build = repository_build(obj, version, pulled, Limits::of(&ctx.settings))?;
    store(obj, ctx, status, build).await
}

/// The artifact version of a repository chart at `chart_version`: with
/// values files, the generation as build metadata (merged values change the
/// chart without changing its version, and consumers must notice).
fn repository_version(obj: &HelmChart, chart_version: &str) -> Result<String, Error> {
    let values_files = effective_values_files(obj.spec.values_files.as_deref().unwrap_or(&[]));
    if values_files.is_empty() {
        Ok(chart_version.to_string())
    } else {
        with_build_metadata(
            chart_version,
            &obj.metadata.generation.unwrap_or_default().to_string(),
        )
    }
}

/// The version to build, or `None` when the stored artifact already is it.
fn needed_version(
    obj: &HelmChart,
    ctx: &Context,
    status: &HelmChartStatus,
    chart_version: &str,
) -> Result<Option<String>, Error> {
    let version = repository_version(obj, chart_version)?;
    Ok((!is_current(obj, ctx, status, &obj.spec.chart, &version)).then_some(version))
}

/// The outcome for a repository chart whose stored artifact is current.
fn unchanged(
    obj: &HelmChart,
    status: &HelmChartStatus,
    chart_version: &str,
) -> Result<Outcome, Error> {
    let version = repository_version(obj, chart_version)?;
    let values_files = effective_values_files(obj.spec.values_files.as_deref().unwrap_or(&[]));
    let merged = status
        .observed_values_files
        .clone()
        .unwrap_or_else(|| values_files.to_vec());
    let fallback = summary(&obj.spec.chart, &version, !values_files.is_empty(), &merged);
    Ok(Outcome::UpToDate {
        message: unchanged_message(status, fallback, &version),
    })
}

/// A pulled repository chart as it is stored: as pulled, or repackaged with
/// its values files merged and `version`.
fn repository_build(
    obj: &HelmChart,
    version: String,
    pulled: Vec<u8>,
    limits: Limits,
) -> Result<Build, Error> {
    let spec = &obj.spec;
    let values_files = effective_values_files(spec.values_files.as_deref().unwrap_or(&[]));
    if values_files.is_empty() {
        return Ok(Build {
            name: spec.chart.clone(),
            version,
            archive: pulled,
            packaged: false,
            values_files: Vec::new(),
        });
    }
    let mut chart = Chart::from_archive(&pulled, limits)?;
    let name = chart.metadata()?.name;
    chart.set_version(&version)?;
    let merged = merge_chart_values(
        &mut chart,
        values_files,
        spec.ignore_missing_values_files == Some(true),
    )?;
    Ok(Build {
        archive: chart.package(&name)?,
        name,
        version,
        packaged: true,
        values_files: merged,
    })
}

/// Merges values files found inside the chart (paths relative to its root,
/// `values.yaml` being its own values) into its `values.yaml`; returns the
/// files merged.
fn merge_chart_values(
    chart: &mut Chart,
    files: &[String],
    ignore_missing: bool,
) -> Result<Vec<String>, Error> {
    let mut merged = serde_json::Map::new();
    let mut used = Vec::new();
    for file in files {
        let path = clean_relative(file);
        let values = match path.as_deref() {
            Some("values.yaml") => chart.values()?,
            other => match other.and_then(|p| chart.file(p)) {
                Some(bytes) => parse_values(bytes, file)?,
                None if ignore_missing => continue,
                None => {
                    return Err(BuildReason::ValuesFiles
                        .error(format!("no values file found at path '{file}'")));
                }
            },
        };
        merge_values(&mut merged, values);
        used.push(file.clone());
    }
    chart.replace_values(&merged)?;
    Ok(used)
}

/// A Git or Bucket source's kind and artifact, for [`from_source_artifact`].
struct SourceArtifact {
    kind: &'static str,
    artifact: Option<Artifact>,
}

/// A chart packaged from a path in a GitRepository's or Bucket's artifact.
async fn from_source_artifact(
    obj: &HelmChart,
    ctx: &Context,
    status: &mut HelmChartStatus,
    source: SourceArtifact,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let spec = &obj.spec;
    let Some(artifact) = source.artifact.filter(|a| ctx.store.exists(&a.path)) else {
        return Err(Error::SourceUnavailable(format!(
            "no artifact available for {} source '{}'",
            source.kind, spec.source_ref.name
        )));
    };
    // Nothing to do when neither the source nor the spec changed.
    if status.observed_source_artifact_revision.as_deref() == Some(artifact.revision.as_str())
        && let Some(stored) = status.artifact.as_ref()
        && let Some(name) = status.observed_chart_name.clone()
        && is_current(obj, ctx, status, &name, &stored.revision)
    {
        let version = stored.revision.clone();
        let fallback = summary(&name, &version, true, &[]);
        return Ok(Outcome::UpToDate {
            message: unchanged_message(status, fallback, &version),
        });
    }

    let work = unpack_source(ctx, &artifact).await?;
    let root = work.path();
    let chart_path = clean_relative(&spec.chart).ok_or_else(|| {
        BuildReason::ChartReference.error(format!(
            "chart path '{}' is not a relative path inside the source",
            spec.chart
        ))
    })?;
    let on_disk = root.join(&chart_path);
    let limit = ctx.settings.helm_chart_max_size;
    // A packaged chart in the source, kept as it is when nothing changes it.
    let (mut chart, packaged_file) = if on_disk.is_dir() {
        (Chart::from_dir(&on_disk, Limits::of(&ctx.settings))?, None)
    } else if on_disk.is_file() {
        let bytes = std::fs::read(&on_disk)
            .map_err(|e| BuildReason::ChartReference.error(format!("reading {chart_path}: {e}")))?;
        (
            Chart::from_archive(&bytes, Limits::of(&ctx.settings))?,
            Some(bytes),
        )
    } else {
        return Err(BuildReason::ChartReference.error(format!(
            "stat {chart_path}: no such file or directory in {} artifact '{}'",
            source.kind, artifact.revision
        )));
    };
    let metadata = chart.metadata()?;

    let values_files = effective_values_files(spec.values_files.as_deref().unwrap_or(&[]));
    let mut build_metadata = Vec::new();
    if spec.reconcile_strategy == Some(ReconcileStrategy::Revision) {
        build_metadata.push(short_commit(&artifact.revision));
    }
    if !values_files.is_empty() {
        build_metadata.push(obj.metadata.generation.unwrap_or_default().to_string());
    }
    let version = if build_metadata.is_empty() {
        metadata.version.clone()
    } else {
        with_build_metadata(&metadata.version, &build_metadata.join("."))?
    };
    status.observed_source_artifact_revision = Some(artifact.revision.clone());
    // As Flux: a new source revision alone makes no new artifact while the
    // chart version stays the same (unless reconcileStrategy is Revision).
    if is_current(obj, ctx, status, &metadata.name, &version) {
        let fallback = summary(&metadata.name, &version, true, values_files);
        return Ok(Outcome::UpToDate {
            message: unchanged_message(status, fallback, &version),
        });
    }

    if let Some(archive) = packaged_file.clone()
        && build_metadata.is_empty()
        && values_files.is_empty()
    {
        let build = Build {
            name: metadata.name,
            version,
            archive,
            packaged: false,
            values_files: Vec::new(),
        };
        return store(obj, ctx, status, build).await;
    }
    let merged = merge_source_values(
        root,
        values_files,
        spec.ignore_missing_values_files == Some(true),
    )?;
    let mut values_merged = Vec::new();
    if let Some((values, files)) = merged {
        chart.replace_values(&values)?;
        values_merged = files;
    }
    chart.set_version(&version)?;
    if packaged_file.is_none() {
        let chart_dir = std::path::PathBuf::from(&chart_path);
        let location = ChartLocation {
            source_root: root,
            chart_dir: &chart_dir,
            namespace: &namespace,
        };
        chart_dependencies::add_missing(ctx, &location, &mut chart).await?;
    }
    let archive = chart.package(&metadata.name)?;
    if archive.len() as u64 > limit {
        return Err(BuildReason::ChartPackage.error(format!(
            "the packaged chart exceeds the size limit of {limit} bytes"
        )));
    }
    let build = Build {
        name: metadata.name,
        version,
        archive,
        packaged: true,
        values_files: values_merged,
    };
    store(obj, ctx, status, build).await
}

/// Merges values files of the source (paths relative to its root); `None`
/// when there are none to merge.
#[allow(clippy::type_complexity)]
fn merge_source_values(
    root: &Path,
    files: &[String],
    ignore_missing: bool,
) -> Result<Option<(serde_json::Map<String, serde_json::Value>, Vec<String>)>, Error> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut merged = serde_json::Map::new();
    let mut used = Vec::new();
    for file in files {
        let path = clean_relative(file);
        let bytes = path
            .as_ref()
            .filter(|p| root.join(p).is_file())
            .and_then(|p| std::fs::read(root.join(p)).ok());
        let Some(bytes) = bytes else {
            if ignore_missing {
                continue;
            }
            return Err(BuildReason::ValuesFiles.error(format!(
                "no values file found at path '/{}' (reference '{file}')",
                path.as_deref().unwrap_or(file.trim_start_matches('/'))
            )));
        };
        merge_values(&mut merged, parse_values(&bytes, file)?);
        used.push(file.clone());
    }
    Ok(Some((merged, used)))
}

/// The first 12 characters of the commit in a GitRepository revision
/// (`main@sha1:<commit>`, `sha1:<commit>`), or of the digest in a Bucket
/// revision (`sha256:<hex>`).
fn short_commit(revision: &str) -> String {
    let hash = revision
        .rsplit_once(':')
        .map(|(_, hash)| hash)
        .or_else(|| revision.rsplit_once('/').map(|(_, hash)| hash))
        .unwrap_or(revision);
    hash.chars().take(12).collect()
}

/// The source artifact from our own store, its digest checked, unpacked
/// into a temporary directory under the same rules as any consumer's.
async fn unpack_source(ctx: &Context, artifact: &Artifact) -> Result<tempfile::TempDir, Error> {
    let path = ctx.store.local_path(&artifact.path)?;
    let digest = artifact.digest.clone();
    let max_size = ctx
        .settings
        .artifact_max_size
        .unwrap_or(runtime::artifact::DEFAULT_MAX_UNTAR_SIZE);
    tokio::task::spawn_blocking(move || {
        let unavailable =
            |what: String| Error::SourceUnavailable(format!("source artifact {what}"));
        let mut file = std::fs::File::open(&path).map_err(|e| unavailable(e.to_string()))?;
        let algorithm = digest
            .split_once(':')
            .and_then(|(name, _)| runtime::artifact::DigestAlgorithm::parse(name))
            .ok_or_else(|| unavailable(format!("has an unsupported digest '{digest}'")))?;
        let mut hasher = algorithm.hasher();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = file
                .read(&mut buffer)
                .map_err(|e| unavailable(e.to_string()))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
        }
        let actual = hasher.finish();
        if actual != digest {
            return Err(unavailable(format!(
                "does not match its digest: expected {digest}, got {actual}"
            )));
        }
        file.seek(SeekFrom::Start(0))
            .map_err(|e| unavailable(e.to_string()))?;
        let work = tempfile::Builder::new()
            .prefix("helmchart-")
            .tempdir()
            .map_err(Error::io("creating a work directory"))?;
        runtime::artifact::untar_gz(
            file,
            work.path(),
            runtime::artifact::UntarOptions {
                max_size: Some(max_size),
                skip_symlinks: true,
            },
        )
        .map_err(|e| unavailable(format!("cannot be unpacked: {e}")))?;
        Ok(work)
    })
    .await
    .map_err(|e| Error::Io {
        context: "unpacking the source artifact".into(),
        source: std::io::Error::other(e.to_string()),
    })?
}

/// Stores a build as `<name>-<version>.tgz` (nothing is written when the
/// stored artifact has the same content) and records it in the status.
async fn store(
    obj: &HelmChart,
    ctx: &Context,
    status: &mut HelmChartStatus,
    build: Build,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let message = summary(
        &build.name,
        &build.version,
        build.packaged,
        &build.values_files,
    );
    let path = ArtifactStore::artifact_path(
        KIND,
        &namespace,
        &name,
        &format!("{}-{}.tgz", build.name, build.version),
    );
    let digest = runtime::artifact::canonical_digest().digest(&build.archive);
    let same = status
        .artifact
        .as_ref()
        .is_some_and(|a| a.path == path && a.digest == digest && ctx.store.exists(&a.path));
    status.observed_chart_name = Some(build.name.clone());
    status.observed_values_files =
        (obj.spec.ignore_missing_values_files == Some(true)).then(|| build.values_files.clone());
    if same {
        return Ok(Outcome::UpToDate { message });
    }
    let stored = ctx
        .store
        .store_bytes(&path, build.archive)
        .await
        .map_err(|e| Error::Archive(Box::new(e)))?;
    info!(%namespace, %name, chart = %build.name, version = %build.version, "stored chart");
    status.artifact = Some(Artifact {
        url: stored.url,
        path: stored.path.clone(),
        revision: build.version.clone(),
        digest: stored.digest,
        last_update_time: Time(k8s_openapi::jiff::Timestamp::now()),
        size: Some(stored.size),
        metadata: None,
    });
    match ctx.store.link_latest(&stored.path, "latest.tar.gz") {
        Ok(link) => status.url = Some(link),
        Err(err) => {
            warn!(%namespace, %name, error = %err, "failed to update the latest.tar.gz link")
        }
    }
    if let Err(err) = ctx.store.garbage_collect(&stored.path) {
        warn!(%namespace, %name, error = %err, "garbage collection of old artifacts failed");
    }
    Ok(Outcome::Stored { message })
}

/// The repository's stored (normalised) index, read from our own store with
/// its digest checked, or from the index cache (`--helm-cache-*`) for the
/// HelmChart `chart` (namespace, name).
fn read_index(
    ctx: &Context,
    artifact: &Artifact,
    chart: (&str, &str),
) -> Result<std::sync::Arc<Value>, Error> {
    ctx.index_cache
        .get_or_load(&artifact.path, &artifact.digest, chart, || {
            let path = ctx.store.local_path(&artifact.path)?;
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::SourceUnavailable(format!("reading the repository index: {e}"))
            })?;
            runtime::artifact::verify_digest(&bytes, &artifact.digest)
                .map_err(|e| Error::SourceUnavailable(format!("repository index: {e}")))?;
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::Index(format!("stored repository index does not parse: {e}")))
        })
}

/// The HelmCharts that use `repo`, to reconcile when its index changes.
pub fn users_of(
    repo: &HelmRepository,
    all: &[Arc<HelmChart>],
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    users_of_source(HelmChartSourceKind::HelmRepository, repo, all)
}

/// The HelmCharts built from `bucket`, to reconcile when its artifact changes.
pub fn users_of_bucket(
    bucket: &Bucket,
    all: &[Arc<HelmChart>],
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    users_of_source(HelmChartSourceKind::Bucket, bucket, all)
}

/// The HelmCharts built from `repo`, to reconcile when its artifact changes.
pub fn users_of_git(
    repo: &GitRepository,
    all: &[Arc<HelmChart>],
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    users_of_source(HelmChartSourceKind::GitRepository, repo, all)
}

fn users_of_source<K: kube::Resource>(
    kind: HelmChartSourceKind,
    source: &K,
    all: &[Arc<HelmChart>],
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    let namespace = source.meta().namespace.clone();
    let name = source.meta().name.clone().unwrap_or_default();
    all.iter()
        .filter(|chart| {
            chart.namespace() == namespace
                && chart.spec.source_ref.kind == kind
                && chart.spec.source_ref.name == name
        })
        .map(|chart| kube::runtime::reflector::ObjectRef::from(chart.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_summaries_and_short_commits() {
        assert_eq!(
            summary(
                "podinfo",
                "6.0.3+4e5cbb7b97d0",
                true,
                &["a.yaml".into(), "b.yaml".into()]
            ),
            "packaged 'podinfo' chart with version '6.0.3+4e5cbb7b97d0' and merged values files [a.yaml b.yaml]"
        );
        assert_eq!(
            summary("podinfo", "6.0.3", false, &[]),
            "pulled 'podinfo' chart with version '6.0.3'"
        );
        assert_eq!(
            short_commit("main@sha1:4e5cbb7b97d00a9bd5e5b8a7b4a46b3e1c6b0a11"),
            "4e5cbb7b97d0"
        );
        assert_eq!(short_commit("sha1:0123456789abcdef"), "0123456789ab");
    }

    #[test]
    fn values_files_of_a_source_merge_in_order() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("charts/app")).unwrap();
        std::fs::write(
            root.path().join("charts/app/values.yaml"),
            "a: 1
b: {x: 1}
",
        )
        .unwrap();
        std::fs::write(
            root.path().join("prod.yaml"),
            "b: {y: 2}
a: 3
",
        )
        .unwrap();
        let files = vec![
            "charts/app/values.yaml".to_string(),
            "./prod.yaml".to_string(),
        ];
        let (values, used) = merge_source_values(root.path(), &files, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(values),
            serde_json::json!({"a": 3, "b": {"x": 1, "y": 2}})
        );
        assert_eq!(used, files);
        let missing = vec!["prod.yaml".to_string(), "missing.yaml".to_string()];
        let err = merge_source_values(root.path(), &missing, false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "values files merge error: no values file found at path '/missing.yaml' (reference 'missing.yaml')"
        );
        assert!(matches!(err.failure().reason, "ValuesFilesError"));
        let (_, used) = merge_source_values(root.path(), &missing, true)
            .unwrap()
            .unwrap();
        assert_eq!(used, vec!["prod.yaml".to_string()]);
    }
}
