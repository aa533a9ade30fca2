//! Starts helm-controller: admin endpoints, leader election, helm, and the
//! HelmRelease controller with its watches (the release itself; the
//! HelmCharts and OCIRepositories it takes charts from; the labelled
//! ConfigMaps and Secrets it takes values from), until a signal or the loss
//! of leadership stops it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;

use api::helm::HelmRelease;
use api::meta::{ConfigKind, FORCE_REQUEST_ANNOTATION, RESET_REQUEST_ANNOTATION};
use api::source::{HelmChart, OCIRepository};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use prometheus_client::metrics::counter::Counter;
use runtime::admin::Readiness;
use runtime::artifact::{ArtifactFetcher, DEFAULT_MAX_DOWNLOAD_SIZE};
use runtime::metrics::Metrics;
use runtime::reconcile_request::REQUESTED_AT;
use tower::util::MapRequestLayer;
use tracing::info;

use crate::Error;
use crate::chart::{ChartCache, source_of};
use crate::helm_cli::{HelmCli, HelmCliConfig};
use crate::options::Flags;
use crate::reconciler::{Context, Settings, error_policy, reconcile};
use runtime::options::namespaced_or_all;

/// Requests sent to the Kubernetes API, counted by the client.
pub const API_REQUESTS_METRIC: &str = "helm_controller_api_requests";

/// Runs the controller until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    // The post-renderer is this very binary in `post-render` mode.
    let program = std::env::current_exe().map_err(|source| Error::Io {
        context: "locating the helm-controller binary".into(),
        source,
    })?;
    let mut helm = HelmCli::new(HelmCliConfig {
        helm_path: flags.helm_path.clone(),
        kubeconfig: flags.kubeconfig.clone(),
        post_renderer: Some(program.clone()),
        niceness: flags.helm_niceness,
        launcher: Some(program),
    })?;
    let mut metrics = Metrics::new();
    helm.register_metrics(metrics.registry_mut());
    let storage_lists = crate::storage::register_list_metric(metrics.registry_mut());
    let api_requests = Counter::<u64>::default();
    metrics.registry_mut().register(
        API_REQUESTS_METRIC,
        "The number of requests helm-controller sent to the Kubernetes API (helm's own excluded)",
        api_requests.clone(),
    );
    let metrics = Arc::new(metrics);
    let readiness = Readiness::default();
    runtime::admin::serve(
        flags.common.metrics_socket()?,
        flags.common.health_socket()?,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;
    info!(helm = %helm.binary().display(), version = %helm.version().await?, "using helm");

    let config = kube::Config::infer()
        .await
        .map_err(kube::Error::InferConfig)?;
    // Counts every request, watches included: API round trips are most of
    // what a release costs outside helm.
    let count_requests = MapRequestLayer::new(move |request| {
        api_requests.inc();
        request
    });
    let client = kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count_requests)
        .build();
    let runtime_namespace = runtime::options::ControllerOptions::runtime_namespace();
    let lost_leadership = runtime::leader::leadership(
        client.clone(),
        flags.common.enable_leader_election,
        &runtime_namespace,
        &flags.leader_election_id,
    )
    .await?;

    let fetcher = ArtifactFetcher::new(
        flags.http_timeout,
        flags.http_retry,
        DEFAULT_MAX_DOWNLOAD_SIZE,
    )
    .map_err(runtime::Error::from)?;
    let charts =
        ChartCache::new(PathBuf::from(&flags.chart_cache_dir), fetcher).map_err(|source| {
            Error::Io {
                context: format!("creating {}", flags.chart_cache_dir.display()),
                source,
            }
        })?;
    let settings = Settings {
        requeue_dependency: flags.common.requeue_dependency,
        jitter_percent: flags.common.interval_jitter_percentage,
        no_cross_namespace_refs: flags.common.no_cross_namespace_refs,
        default_service_account: flags.default_service_account(),
        detect_drift: flags.common.feature_enabled("DetectDrift"),
        correct_drift: flags.common.feature_enabled("CorrectDrift"),
        min_retry_delay: flags.min_retry_delay,
        max_retry_delay: flags.max_retry_delay,
        kubeconfig_policy: crate::target_cluster::KubeConfigPolicy {
            allow_exec: flags.insecure_kubeconfig_exec,
            allow_insecure_tls: flags.insecure_kubeconfig_tls,
        },
    };
    let namespace = (!flags.common.watch_all_namespaces).then_some(runtime_namespace.as_str());
    // Helm's storage Secrets where the HelmReleases are watched; releases
    // stored elsewhere (targetNamespace) are read directly.
    let (storage_index, storage_watch) =
        crate::storage::StorageIndex::watch(client.clone(), namespace);
    let storage_watch = tokio::spawn(storage_watch);
    let (helm_charts, helm_charts_writer) = reflector::store::<HelmChart>();
    let (oci_repositories, oci_repositories_writer) = reflector::store::<OCIRepository>();
    let mut context = Context::new(client.clone(), helm, charts, metrics, settings);
    context.sources = Some(crate::chart::SourceCache::new(
        helm_charts,
        oci_repositories,
    ));
    context.storage = crate::storage::ReleaseStorage::new(client.clone())
        .with_list_durations(storage_lists)
        .with_index(storage_index);
    let ctx = Arc::new(context);

    let mut watch_config = watcher::Config::default().any_semantic();
    if !flags.common.watch_label_selector.is_empty() {
        watch_config = watch_config.labels(&flags.common.watch_label_selector);
    }
    let controller = helm_release_controller(
        client.clone(),
        namespace,
        watch_config,
        watcher::Config::default().labels(&flags.watch_configs_label_selector),
        ControllerConfig::default().concurrency(flags.concurrent.max(1)),
        SourceWriters {
            helm_charts: helm_charts_writer,
            oci_repositories: oci_repositories_writer,
        },
        ctx,
    );

    readiness.set(true);
    info!(
        namespaces = namespace.unwrap_or("*"),
        concurrent = flags.concurrent,
        "starting controller"
    );
    let stopped =
        runtime::shutdown::run_until_stopped(controller, lost_leadership, &readiness).await;
    storage_watch.abort();
    stopped?;
    Ok(())
}

/// Watch-event filter: only changes calling for a reconciliation pass (a
/// new generation, a new `requestedAt`/`forceAt`/`resetAt` token, deletion
/// starting), never the controller's own status writes, nor the finalizer
/// it adds while releasing.
pub fn needs_reconcile(hr: &HelmRelease) -> Option<u64> {
    let meta = hr.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    for key in [
        REQUESTED_AT,
        FORCE_REQUEST_ANNOTATION,
        RESET_REQUEST_ANNOTATION,
    ] {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .hash(&mut hasher);
    }
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// HelmReleases taking their chart from the source `kind` `namespace/name`.
fn releases_of_source(
    store: &Store<HelmRelease>,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<HelmRelease>> {
    store
        .state()
        .iter()
        .filter(|hr| {
            source_of(hr)
                .is_some_and(|s| s.kind == kind && s.namespace == namespace && s.name == name)
        })
        .map(|hr| ObjectRef::from_obj(hr.as_ref()))
        .collect()
}

/// HelmReleases taking values from the `kind` `namespace/name`.
fn releases_of_values(
    store: &Store<HelmRelease>,
    kind: ConfigKind,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<HelmRelease>> {
    store
        .state()
        .iter()
        .filter(|hr| hr.namespace().as_deref() == Some(namespace))
        .filter(|hr| {
            hr.spec
                .values_from
                .iter()
                .flatten()
                .any(|r| r.kind == kind && r.name == name)
        })
        .map(|hr| ObjectRef::from_obj(hr.as_ref()))
        .collect()
}

/// The writers of [`crate::chart::SourceCache`]'s stores, filled by the
/// source watches that trigger reconciliations.
struct SourceWriters {
    helm_charts: reflector::store::Writer<HelmChart>,
    oci_repositories: reflector::store::Writer<OCIRepository>,
}

async fn helm_release_controller(
    client: Client,
    namespace: Option<&str>,
    watch_config: watcher::Config,
    configs_config: watcher::Config,
    config: ControllerConfig,
    sources: SourceWriters,
    ctx: Arc<Context>,
) {
    let api: Api<HelmRelease> = namespaced_or_all(&client, namespace);
    let (reader, writer) = reflector::store::<HelmRelease>();
    let trigger = watcher(api, watch_config.clone())
        .backoff(runtime::watch_backoff::WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_reconcile, PredicateConfig::default());
    let (charts_store, sources_store, config_maps_store, secrets_store) = (
        reader.clone(),
        reader.clone(),
        reader.clone(),
        reader.clone(),
    );
    Controller::for_stream(trigger, reader)
        .with_config(config)
        .trigger_backoff(runtime::watch_backoff::WatchBackoff::default())
        .watches_stream(
            watcher(
                namespaced_or_all::<HelmChart>(&client, namespace),
                watcher::Config::default(),
            )
            .backoff(runtime::watch_backoff::WatchBackoff::default())
            .reflect(sources.helm_charts)
            .touched_objects(),
            move |chart: HelmChart| {
                releases_of_source(
                    &charts_store,
                    "HelmChart",
                    &chart.namespace().unwrap_or_default(),
                    &chart.name_any(),
                )
            },
        )
        .watches_stream(
            watcher(
                namespaced_or_all::<OCIRepository>(&client, namespace),
                watcher::Config::default(),
            )
            .backoff(runtime::watch_backoff::WatchBackoff::default())
            .reflect(sources.oci_repositories)
            .touched_objects(),
            move |repository: OCIRepository| {
                releases_of_source(
                    &sources_store,
                    "OCIRepository",
                    &repository.namespace().unwrap_or_default(),
                    &repository.name_any(),
                )
            },
        )
        .watches(
            namespaced_or_all::<ConfigMap>(&client, namespace),
            configs_config.clone(),
            move |cm: ConfigMap| {
                releases_of_values(
                    &config_maps_store,
                    ConfigKind::ConfigMap,
                    &cm.namespace().unwrap_or_default(),
                    &cm.name_any(),
                )
            },
        )
        .watches(
            namespaced_or_all::<Secret>(&client, namespace),
            configs_config,
            move |secret: Secret| {
                releases_of_values(
                    &secrets_store,
                    ConfigKind::Secret,
                    &secret.namespace().unwrap_or_default(),
                    &secret.name_any(),
                )
            },
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_sees_requests_not_status() {
        let base: HelmRelease = serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "a", "namespace": "ns", "generation": 1},
            "spec": {"interval": "5m", "chartRef": {"kind": "OCIRepository", "name": "x"}}
        }))
        .expect("object");
        let mut with_status = base.clone();
        with_status.status = Some(Default::default());
        assert_eq!(needs_reconcile(&base), needs_reconcile(&with_status));
        // The finalizer is added while the release is made.
        let mut with_finalizer = base.clone();
        with_finalizer.metadata.finalizers = Some(vec![api::meta::FINALIZER.to_string()]);
        assert_eq!(needs_reconcile(&base), needs_reconcile(&with_finalizer));
        for key in [
            REQUESTED_AT,
            FORCE_REQUEST_ANNOTATION,
            RESET_REQUEST_ANNOTATION,
        ] {
            let mut requested = base.clone();
            requested.metadata.annotations = Some([(key.to_string(), "t".to_string())].into());
            assert_ne!(needs_reconcile(&base), needs_reconcile(&requested), "{key}");
        }
    }
}
