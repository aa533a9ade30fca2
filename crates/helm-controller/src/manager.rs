//! helm-controller's controller, declared on the shared harness
//! (`runtime::manager`): the HelmRelease itself (new generation,
//! `requestedAt`/`forceAt`/`resetAt`, deletion); the HelmCharts and
//! OCIRepositories it takes charts from (kept in the chart source cache
//! too); the labelled ConfigMaps and Secrets it takes values from. helm is
//! found and checked first, and Helm's storage is indexed by a watch of its
//! own.

use std::path::PathBuf;
use std::sync::Arc;

use api::helm::HelmRelease;
use api::meta::{ConfigKind, FORCE_REQUEST_ANNOTATION, RESET_REQUEST_ANNOTATION};
use api::source::{HelmChart, OCIRepository};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use runtime::artifact::{ArtifactFetcher, DEFAULT_MAX_DOWNLOAD_SIZE};
use runtime::manager::{Manager, Related};
use runtime::metrics::Metrics;
use runtime::options::FeatureGate;
use runtime::reconcile::ReconcileTrigger;
use tracing::info;

use crate::Error;
use crate::chart::{ChartCache, source_of};
use crate::helm_cli::{HelmCli, HelmCliConfig};
use crate::options::Flags;
use crate::reconcile::{CONTROLLER_NAME, Context, Settings, reconcile};

/// Feature gate: detect drift of every release.
pub const DETECT_DRIFT: &str = "DetectDrift";
/// Feature gate: correct drift of every release.
pub const CORRECT_DRIFT: &str = "CorrectDrift";
/// Feature gate: install charts from digest-carrying sources without the
/// digest in their version ([`crate::chart_digest`]).
pub const DISABLE_CHART_DIGEST_TRACKING: &str = "DisableChartDigestTracking";

/// Feature gates helm-controller knows (Flux's, with their defaults); those
/// ferroflux does not implement accept only their default.
pub const FEATURE_GATES: &[FeatureGate] = &[
    FeatureGate::off(DETECT_DRIFT),
    FeatureGate::off(CORRECT_DRIFT),
    FeatureGate::fixed("AllowDNSLookups", false),
    FeatureGate::fixed("OOMWatch", false),
    FeatureGate::fixed("AdoptLegacyReleases", false),
    FeatureGate::off(DISABLE_CHART_DIGEST_TRACKING),
    FeatureGate::fixed("UseHelm3Defaults", false),
    FeatureGate::fixed("CancelHealthCheckOnNewRevision", false),
    FeatureGate::fixed("DefaultToRetryOnFailure", false),
    FeatureGate::off(EXTERNAL_ARTIFACT),
];

/// Feature gate: a `chartRef` may name an ExternalArtifact.
const EXTERNAL_ARTIFACT: &str = "ExternalArtifact";

/// Changes of a HelmRelease that call for a reconciliation.
const TRIGGER: ReconcileTrigger =
    ReconcileTrigger::with_annotations(&[FORCE_REQUEST_ANNOTATION, RESET_REQUEST_ANNOTATION]);

/// Runs the controller until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    let gates = flags.common.feature_gates(FEATURE_GATES)?;
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
    let mut manager = Manager::new(CONTROLLER_NAME, &flags, metrics).await?;
    info!(helm = %helm.binary().display(), version = %helm.version().await?, "using helm");

    let fetcher = ArtifactFetcher::new(
        flags.http_timeout,
        flags.http_retry,
        DEFAULT_MAX_DOWNLOAD_SIZE,
    )
    .map_err(runtime::Error::from)?;
    let charts = ChartCache::new(
        PathBuf::from(&flags.chart_cache_dir),
        fetcher,
        !gates.enabled(DISABLE_CHART_DIGEST_TRACKING),
    )
    .map_err(|source| Error::Io {
        context: format!("creating {}", flags.chart_cache_dir.display()),
        source,
    })?;
    let settings = Settings {
        jitter_percent: flags.common.interval_jitter_percentage,
        no_cross_namespace_refs: flags.common.no_cross_namespace_refs,
        default_service_account: flags.default_service_account(),
        detect_drift: gates.enabled(DETECT_DRIFT),
        correct_drift: gates.enabled(CORRECT_DRIFT),
        requeue_dependency: flags.common.requeue_dependency,
        kubeconfig_policy: flags.remote_clusters.policy(),
        override_managers: flags.override_managers.clone(),
        allow_external_artifact: gates.enabled(EXTERNAL_ARTIFACT),
    };
    let client = manager.client().clone();
    // Helm's storage Secrets where the HelmReleases are watched; releases
    // stored elsewhere (targetNamespace) are read directly.
    let (storage_index, storage_watch) =
        crate::storage::StorageIndex::watch(client.clone(), manager.namespace());
    manager.spawn(storage_watch);
    let (helm_charts, helm_charts_writer) = reflector::store::<HelmChart>();
    let (oci_repositories, oci_repositories_writer) = reflector::store::<OCIRepository>();
    let mut context = Context::new(
        client.clone(),
        helm,
        charts,
        manager.metrics(),
        manager.event_recorder()?,
        settings,
    );
    context.sources = Some(crate::chart::SourceCache::new(
        helm_charts,
        oci_repositories,
    ));
    context.storage = crate::storage::ReleaseStorage::new(client)
        .with_list_durations(storage_lists)
        .with_index(storage_index);
    let ctx = Arc::new(context);

    let configs = flags.watch_configs_label_selector.as_str();
    let controller = manager
        .controller::<HelmRelease>(TRIGGER)
        .watches(
            Related::<HelmChart>::all().cached_in(helm_charts_writer),
            |chart, releases| releases_of_source(releases, "HelmChart", chart),
        )
        .watches(
            Related::<OCIRepository>::all().cached_in(oci_repositories_writer),
            |repository, releases| releases_of_source(releases, "OCIRepository", repository),
        )
        .watches(Related::<ConfigMap>::labelled(configs), |cm, releases| {
            releases_of_values(releases, ConfigKind::ConfigMap, cm)
        })
        .watches(Related::<Secret>::labelled(configs), |secret, releases| {
            releases_of_values(releases, ConfigKind::Secret, secret)
        })
        .run(reconcile, ctx);
    manager.add(controller);
    manager.run().await?;
    Ok(())
}

/// HelmReleases taking their chart from `source` of `kind`.
fn releases_of_source(
    store: &Store<HelmRelease>,
    kind: &str,
    source: &impl ResourceExt,
) -> Vec<ObjectRef<HelmRelease>> {
    let (namespace, name) = (source.namespace().unwrap_or_default(), source.name_any());
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

/// HelmReleases taking values from `object` of `kind`.
fn releases_of_values(
    store: &Store<HelmRelease>,
    kind: ConfigKind,
    object: &impl ResourceExt,
) -> Vec<ObjectRef<HelmRelease>> {
    let (namespace, name) = (object.namespace(), object.name_any());
    store
        .state()
        .iter()
        .filter(|hr| hr.namespace() == namespace)
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
