//! source-controller's controllers, declared: one per source kind, each with
//! the related kinds whose changes concern it, on the shared harness
//! (`runtime::manager`), beside the artifact server.

use std::path::Path;
use std::sync::Arc;

use api::source::{Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository};
use runtime::manager::{Manager, Related};
use runtime::metrics::Metrics;
use runtime::reconcile::ReconcileTrigger;
use tracing::info;

use crate::Error;
use crate::controller::{CONTROLLER_NAME, Context, Settings};
use crate::options::Flags;
use crate::storage::{ArtifactStore, Retention, advertised_base_url};
use crate::{bucket, git_repository, helm_chart, helm_repository, oci_repository};

/// Feature gates source-controller knows (Flux's, with their defaults).
pub const FEATURE_GATES: &[runtime::options::FeatureGate] =
    &[runtime::options::FeatureGate::fixed(
        "CacheSecretsAndConfigMaps",
        false,
    )];

/// Runs the controllers until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    flags.common.feature_gates(FEATURE_GATES)?;
    git::set_ssh_algorithms(git::SshAlgorithms {
        host_key: flags.ssh.ssh_hostkey_algos.clone(),
        kex: flags.ssh.ssh_kex_algos.clone(),
    })
    .map_err(|e| flags.ssh.invalid(e))?;
    let digest = runtime::artifact::DigestAlgorithm::parse(&flags.artifact_digest_algo)
        .ok_or_else(|| runtime::Error::InvalidFlag {
            flag: "--artifact-digest-algo",
            value: flags.artifact_digest_algo.clone(),
            reason: "expected sha256, sha384, sha512 or blake3".into(),
        })?;
    runtime::artifact::set_canonical_digest(digest).map_err(runtime::Error::from)?;
    let mut manager = Manager::new(CONTROLLER_NAME, &flags, Metrics::new()).await?;

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
        artifact_max_size: flags.artifact_size_limit(),
        helm_index_max_size: flags.helm_index_max_size,
        helm_chart_max_size: flags.helm_chart_max_size,
        helm_chart_file_max_size: flags.helm_chart_file_max_size,
        helm_cache_max_size: usize::try_from(flags.helm_cache_max_size.max(0)).unwrap_or(0),
        helm_cache_ttl: helm_cache_duration("--helm-cache-ttl", &flags.helm_cache_ttl)?,
    };
    let purge_every = helm_cache_duration(
        "--helm-cache-purge-interval",
        &flags.helm_cache_purge_interval,
    )?;
    let ctx = Arc::new(Context::new(
        manager.client().clone(),
        store,
        manager.metrics(),
        manager.event_recorder()?,
        settings,
    ));

    if ctx.index_cache.enabled() {
        let purged = ctx.clone();
        manager.spawn(async move {
            let mut every = tokio::time::interval(purge_every);
            loop {
                every.tick().await;
                purged.index_cache.purge_expired();
            }
        });
    }

    let trigger = ReconcileTrigger::default();
    let git = manager
        .controller::<GitRepository>(trigger)
        // A new artifact of an included repository changes the including one.
        .watches(Related::in_scope(), |changed, repositories| {
            git_repository::includers_of(changed, &repositories.state())
        })
        .run(git_repository::reconcile, ctx.clone());
    let helm = manager
        .controller::<HelmRepository>(trigger)
        .run(helm_repository::reconcile, ctx.clone());
    let charts = manager
        .controller::<HelmChart>(trigger)
        // A new index of the repository may hold a newer matching version.
        .watches(Related::in_scope(), |repository, charts| {
            helm_chart::users_of(repository, &charts.state())
        })
        // A new artifact of a Git source may hold a new chart.
        .watches(Related::in_scope(), |repository, charts| {
            helm_chart::users_of_git(repository, &charts.state())
        })
        // So may a new artifact of a Bucket.
        .watches(Related::in_scope(), |bucket, charts| {
            helm_chart::users_of_bucket(bucket, &charts.state())
        })
        .run(helm_chart::reconcile, ctx.clone());
    let oci = manager
        .controller::<OCIRepository>(trigger)
        .run(oci_repository::reconcile, ctx.clone());
    let buckets = manager
        .controller::<Bucket>(trigger)
        .run(bucket::reconcile, ctx);
    for controller in [git, helm, charts, oci, buckets] {
        manager.add(controller);
    }
    manager.run().await?;
    Ok(())
}

/// A `--helm-cache-*` duration (Flux parses them as Go durations at start).
fn helm_cache_duration(flag: &'static str, value: &str) -> Result<std::time::Duration, Error> {
    runtime::options::parse_duration(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Error::from(runtime::Error::InvalidFlag {
                flag,
                value: value.to_string(),
                reason: "expected a positive Go duration such as 15m".into(),
            })
        })
}
