//! HelmChart from an HTTP HelmRepository: pick the newest chart version in the
//! repository's stored index that satisfies `spec.version`, download the
//! chart (with the repository's credentials, its index digest checked), and
//! store it as `<chart>-<version>.tgz`, revision = the chart version.

use std::sync::Arc;
use std::time::Duration;

use api::meta::{Artifact, FINALIZER};
use api::source::{
    HelmChart, HelmChartSourceKind, HelmChartStatus, HelmRepository, HelmRepositoryType,
};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as FinalizerEvent, finalizer};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::Error;
use crate::controller::{Context, instrumented};
use crate::helm_repository::{error_chain, repository_client};
use crate::source_status::{self, Outcome};
use crate::storage::ArtifactStore;

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "HelmChart";
/// Timeout for downloading a chart.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Reconciles one HelmChart.
pub async fn reconcile(obj: Arc<HelmChart>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = obj
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<HelmChart> = Api::namespaced(ctx.client.clone(), &namespace);
    let handle = obj.clone();
    instrumented(handle.as_ref(), &ctx, async {
        finalizer(&api, FINALIZER, obj, |event| async {
            match event {
                FinalizerEvent::Apply(obj) => apply(obj, &ctx).await,
                FinalizerEvent::Cleanup(obj) => {
                    ctx.store.remove_object(
                        KIND,
                        &obj.namespace().unwrap_or_default(),
                        &obj.name_any(),
                    )?;
                    Ok(Action::await_change())
                }
            }
        })
        .await
        .map_err(Error::from_finalizer)
    })
    .await
}

async fn apply(obj: Arc<HelmChart>, ctx: &Context) -> Result<Action, Error> {
    if obj.spec.suspend == Some(true) {
        debug!(name = %obj.name_any(), "reconciliation is suspended");
        return Ok(Action::await_change());
    }
    let (current, mut status) = source_status::begin(obj.as_ref());
    let result = sync(&obj, ctx, &mut status).await;
    source_status::finish(obj.as_ref(), ctx, current, status, result).await
}

async fn sync(
    obj: &HelmChart,
    ctx: &Context,
    status: &mut HelmChartStatus,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    if spec.source_ref.kind != HelmChartSourceKind::HelmRepository {
        return Err(Error::Unsupported(format!(
            "charts from a {:?} source are not supported yet",
            spec.source_ref.kind
        )));
    }

    // Fetch: the repository, its stored index, the matching version.
    let repos: Api<HelmRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(repo) = repos.get_opt(&spec.source_ref.name).await? else {
        return Err(Error::SourceUnavailable(format!(
            "failed to get source: HelmRepository '{}' not found",
            spec.source_ref.name
        )));
    };
    if repo.spec.r#type == Some(HelmRepositoryType::Oci) {
        return Err(Error::Unsupported(
            "charts from OCI HelmRepositories are not supported yet".into(),
        ));
    }
    let Some(index_artifact) = repo.status.as_ref().and_then(|s| s.artifact.clone()) else {
        return Err(Error::SourceUnavailable(format!(
            "HelmRepository '{}' has no artifact yet",
            spec.source_ref.name
        )));
    };
    let index = read_index(ctx, &index_artifact)?;
    let range_text = spec
        .version
        .clone()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "*".into());
    let range = runtime::semver::Range::parse(&range_text).map_err(|e| Error::InvalidSemver {
        range: range_text.clone(),
        message: e.to_string(),
    })?;
    let entries = index["entries"][&spec.chart]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(Error::ChartPull(format!(
            "no chart name found in index: '{}'",
            spec.chart
        )));
    }
    let versions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["version"].as_str())
        .collect();
    let (version, _) = range.highest(versions.iter().copied()).ok_or_else(|| {
        Error::ChartPull(format!(
            "no '{}' chart with version matching '{range_text}' found",
            spec.chart
        ))
    })?;
    let version = version.to_string();
    let entry = entries
        .iter()
        .find(|e| e["version"].as_str() == Some(version.as_str()))
        .cloned()
        .unwrap_or(Value::Null);

    // Decide: the stored chart is the chosen version of the same chart.
    if let Some(artifact) = status
        .artifact
        .as_ref()
        .filter(|a| ctx.store.exists(&a.path))
        && artifact.revision == version
        && status.observed_chart_name.as_deref() == Some(spec.chart.as_str())
    {
        status.observed_source_artifact_revision = Some(index_artifact.revision.clone());
        return Ok(Outcome::UpToDate {
            message: pulled_message(&spec.chart, &version),
        });
    }

    // Act: download, check, store.
    let chart_url = entry["urls"][0].as_str().ok_or_else(|| {
        Error::ChartPull(format!(
            "chart '{}' version '{version}' has no URL",
            spec.chart
        ))
    })?;
    let chart_url = absolute_url(&repo.spec.url, chart_url)?;
    let (client, basic) = repository_client(ctx, &namespace, &repo, DOWNLOAD_TIMEOUT).await?;
    let mut request = client.get(&chart_url);
    // Credentials go only to the repository's own host, unless passCredentials.
    if let Some((username, password)) = &basic
        && (repo.spec.pass_credentials == Some(true) || same_host(&repo.spec.url, &chart_url))
    {
        request = request.basic_auth(username, Some(password));
    }
    let response = request
        .send()
        .await
        .map_err(|e| Error::ChartPull(format!("failed to download chart: {}", error_chain(&e))))?;
    if !response.status().is_success() {
        return Err(Error::ChartPull(format!(
            "failed to download chart from {chart_url}: HTTP status {}",
            response.status()
        )));
    }
    let limit = ctx.settings.helm_chart_max_size;
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| Error::ChartPull(format!("failed to download chart: {e}")))?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            return Err(Error::ChartPull(format!(
                "chart exceeds the size limit of {limit} bytes"
            )));
        }
    }
    if let Some(expected) = entry["digest"].as_str().filter(|d| !d.is_empty()) {
        runtime::artifact::verify_digest(&bytes, &format!("sha256:{expected}"))
            .map_err(|e| Error::ChartPull(format!("chart does not match the index: {e}")))?;
    }
    let path = ArtifactStore::artifact_path(
        KIND,
        &namespace,
        &name,
        &format!("{}-{version}.tgz", spec.chart),
    );
    let stored = ctx
        .store
        .store_bytes(&path, bytes)
        .await
        .map_err(|e| Error::Archive(Box::new(e)))?;
    info!(%namespace, %name, chart = %spec.chart, %version, "pulled chart");
    status.artifact = Some(Artifact {
        url: stored.url,
        path: stored.path.clone(),
        revision: version.clone(),
        digest: stored.digest,
        last_update_time: Time(k8s_openapi::jiff::Timestamp::now()),
        size: Some(stored.size),
        metadata: None,
    });
    status.observed_chart_name = Some(spec.chart.clone());
    status.observed_source_artifact_revision = Some(index_artifact.revision.clone());
    match ctx.store.link_latest(&stored.path, "latest.tar.gz") {
        Ok(link) => status.url = Some(link),
        Err(err) => {
            warn!(%namespace, %name, error = %err, "failed to update the latest.tar.gz link")
        }
    }
    if let Err(err) = ctx.store.garbage_collect(&stored.path) {
        warn!(%namespace, %name, error = %err, "garbage collection of old artifacts failed");
    }
    Ok(Outcome::Stored {
        message: pulled_message(&spec.chart, &version),
    })
}

fn pulled_message(chart: &str, version: &str) -> String {
    format!("pulled '{chart}' chart with version '{version}'")
}

/// The repository's stored (normalised) index, read from our own store with
/// its digest checked.
fn read_index(ctx: &Context, artifact: &Artifact) -> Result<Value, Error> {
    let path = ctx.store.local_path(&artifact.path)?;
    let bytes = std::fs::read(&path)
        .map_err(|e| Error::SourceUnavailable(format!("reading the repository index: {e}")))?;
    runtime::artifact::verify_digest(&bytes, &artifact.digest)
        .map_err(|e| Error::SourceUnavailable(format!("repository index: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Index(format!("stored repository index does not parse: {e}")))
}

/// A chart URL from an index, made absolute against the repository URL.
fn absolute_url(repo_url: &str, chart_url: &str) -> Result<String, Error> {
    if chart_url.contains("://") {
        return Ok(chart_url.to_string());
    }
    let base =
        reqwest::Url::parse(&format!("{}/", repo_url.trim_end_matches('/'))).map_err(|e| {
            Error::InvalidUrl {
                url: repo_url.to_string(),
                reason: e.to_string(),
            }
        })?;
    base.join(chart_url)
        .map(|u| u.to_string())
        .map_err(|e| Error::ChartPull(format!("invalid chart URL '{chart_url}': {e}")))
}

fn same_host(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

/// The HelmCharts that use `repo`, to reconcile when its index changes.
pub fn users_of(
    repo: &HelmRepository,
    all: &[Arc<HelmChart>],
) -> Vec<kube::runtime::reflector::ObjectRef<HelmChart>> {
    let namespace = repo.namespace();
    let name = repo.name_any();
    all.iter()
        .filter(|chart| {
            chart.namespace() == namespace
                && chart.spec.source_ref.kind == HelmChartSourceKind::HelmRepository
                && chart.spec.source_ref.name == name
        })
        .map(|chart| kube::runtime::reflector::ObjectRef::from(chart.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_urls() {
        assert_eq!(
            absolute_url("http://127.0.0.1:8080", "podinfo-6.0.0.tgz").unwrap(),
            "http://127.0.0.1:8080/podinfo-6.0.0.tgz"
        );
        assert_eq!(
            absolute_url("https://charts.example/sub/", "pkg/a-1.0.0.tgz").unwrap(),
            "https://charts.example/sub/pkg/a-1.0.0.tgz"
        );
        assert_eq!(
            absolute_url("https://charts.example", "https://cdn.example/a-1.tgz").unwrap(),
            "https://cdn.example/a-1.tgz"
        );
        assert!(same_host("http://h:1/x", "http://h:1/y/z.tgz"));
        assert!(!same_host("http://h:1/x", "http://other:1/z.tgz"));
    }
}
