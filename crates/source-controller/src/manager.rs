//! Starts source-controller: admin endpoints, leader election, the artifact
//! server and one controller per kind, until a signal or the loss of
//! leadership stops it.

use std::path::Path;
use std::sync::Arc;

use api::source::{GitRepository, HelmChart, HelmRepository, OCIRepository};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Client, Resource};
use runtime::admin::Readiness;
use runtime::metrics::Metrics;
use tracing::info;

use crate::Error;
use crate::controller::{Context, Settings, error_policy, needs_reconcile};
use crate::options::Flags;
use crate::storage::{ArtifactStore, Retention, advertised_base_url};
use crate::{git_repository, helm_chart, helm_repository, oci_repository};
use runtime::options::namespaced_or_all;

/// Runs the controller until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    runtime::admin::serve(
        flags.common.metrics_socket()?,
        flags.common.health_socket()?,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;

    let client = Client::try_default().await?;
    let runtime_namespace = runtime::options::ControllerOptions::runtime_namespace();

    let lost_leadership = runtime::leader::leadership(
        client.clone(),
        flags.common.enable_leader_election,
        &runtime_namespace,
        &flags.leader_election_id,
    )
    .await?;

    let base_url = advertised_base_url(&flags.storage_addr, &flags.storage_adv_addr);
    let store = ArtifactStore::new(
        Path::new(&flags.storage_path),
        &base_url,
        Retention {
            ttl: flags.artifact_retention_ttl,
            records: flags.artifact_retention_records.max(1),
        },
    )?;
    let storage_addr = runtime::options::parse_listen_addr(&flags.storage_addr)?;
    crate::server::serve(storage_addr, store.root()).await?;
    info!(addr = %storage_addr, %base_url, root = %store.root().display(), "serving artifacts");

    let settings = Settings {
        jitter_percent: flags.common.interval_jitter_percentage,
        requeue_dependency: flags.common.requeue_dependency,
        min_retry_delay: flags.min_retry_delay,
        max_retry_delay: flags.max_retry_delay,
        artifact_max_size: flags.artifact_size_limit(),
        helm_index_max_size: flags.helm_index_max_size,
        helm_chart_max_size: flags.helm_chart_max_size,
        helm_chart_file_max_size: flags.helm_chart_file_max_size,
    };
    let ctx = Arc::new(Context::new(client.clone(), store, metrics, settings));

    let namespace = (!flags.common.watch_all_namespaces).then_some(runtime_namespace.as_str());
    let mut watch_config = watcher::Config::default().any_semantic();
    if !flags.common.watch_label_selector.is_empty() {
        watch_config = watch_config.labels(&flags.common.watch_label_selector);
    }
    let controller_config = ControllerConfig::default().concurrency(flags.concurrent.max(1));

    let git_api: Api<GitRepository> = namespaced_or_all(&client, namespace);
    let git = git_repository_controller(
        git_api,
        watch_config.clone(),
        controller_config.clone(),
        ctx.clone(),
    );
    let helm_api: Api<HelmRepository> = namespaced_or_all(&client, namespace);
    let helm = simple_controller(
        helm_api,
        watch_config.clone(),
        controller_config.clone(),
        ctx.clone(),
        helm_repository::reconcile,
    );
    let charts_api: Api<HelmChart> = namespaced_or_all(&client, namespace);
    let repos_api: Api<HelmRepository> = namespaced_or_all(&client, namespace);
    let chart_sources_api: Api<GitRepository> = namespaced_or_all(&client, namespace);
    let charts = helm_chart_controller(
        charts_api,
        repos_api,
        chart_sources_api,
        watch_config.clone(),
        controller_config.clone(),
        ctx.clone(),
    );

    let oci_api: Api<OCIRepository> = namespaced_or_all(&client, namespace);
    let oci = simple_controller(
        oci_api,
        watch_config.clone(),
        controller_config.clone(),
        ctx.clone(),
        oci_repository::reconcile,
    );

    readiness.set(true);
    info!(
        namespaces = namespace.unwrap_or("*"),
        concurrent = flags.concurrent,
        "starting controllers"
    );
    runtime::shutdown::run_until_stopped(
        futures::future::join4(git, helm, charts, oci),
        lost_leadership,
        &readiness,
    )
    .await?;
    Ok(())
}

async fn git_repository_controller(
    api: Api<GitRepository>,
    watch_config: watcher::Config,
    config: ControllerConfig,
    ctx: Arc<Context>,
) {
    let (reader, writer) = reflector::store::<GitRepository>();
    let trigger = watcher(api.clone(), watch_config.clone())
        .backoff(runtime::watch_backoff::WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_reconcile, PredicateConfig::default());
    let includers_store = reader.clone();
    Controller::for_stream(trigger, reader)
        .with_config(config)
        .trigger_backoff(runtime::watch_backoff::WatchBackoff::default())
        // A new artifact of an included repository changes the including one.
        .watches(api, watch_config, move |changed: GitRepository| {
            git_repository::includers_of(&changed, &includers_store.state())
        })
        .run(git_repository::reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

async fn helm_chart_controller(
    api: Api<HelmChart>,
    repos: Api<HelmRepository>,
    git_sources: Api<GitRepository>,
    watch_config: watcher::Config,
    config: ControllerConfig,
    ctx: Arc<Context>,
) {
    let (reader, writer) = reflector::store::<HelmChart>();
    let trigger = watcher(api, watch_config.clone())
        .backoff(runtime::watch_backoff::WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_reconcile, PredicateConfig::default());
    let users_store = reader.clone();
    let git_users_store = reader.clone();
    Controller::for_stream(trigger, reader)
        .with_config(config)
        .trigger_backoff(runtime::watch_backoff::WatchBackoff::default())
        // A new index of the repository may hold a newer matching version.
        .watches(repos, watch_config.clone(), move |repo: HelmRepository| {
            helm_chart::users_of(&repo, &users_store.state())
        })
        // A new artifact of a Git source may hold a new chart.
        .watches(git_sources, watch_config, move |repo: GitRepository| {
            helm_chart::users_of_git(&repo, &git_users_store.state())
        })
        .run(helm_chart::reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

/// A controller for a kind whose objects depend only on themselves.
async fn simple_controller<K, F, Fut>(
    api: Api<K>,
    watch_config: watcher::Config,
    config: ControllerConfig,
    ctx: Arc<Context>,
    reconcile: F,
) where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    F: FnMut(Arc<K>, Arc<Context>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<kube::runtime::controller::Action, Error>>
        + Send
        + 'static,
{
    let (reader, writer) = reflector::store::<K>();
    let trigger = watcher(api, watch_config)
        .backoff(runtime::watch_backoff::WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_reconcile, PredicateConfig::default());
    Controller::for_stream(trigger, reader)
        .with_config(config)
        .trigger_backoff(runtime::watch_backoff::WatchBackoff::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}
