//! The controller harness against a real API server: the drain on shutdown,
//! the graceful-shutdown timeout, and the retry policy of failed
//! reconciliations, with the metrics the harness records.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::Parser;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::Action;
use runtime::manager::{Manager, ManagerOptions};
use runtime::metrics::Metrics;
use runtime::options::ControllerOptions;
use runtime::reconcile::{Disposition, ReconcileError, ReconcileTrigger};

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    common: ControllerOptions,
}

/// The common flags of a test controller: admin endpoints on free ports,
/// objects labelled for this test only.
fn flags(label: &str, extra: &[&str]) -> ControllerOptions {
    let selector = format!("--watch-label-selector=harness-test={label}");
    let mut args = vec![
        "test-controller",
        "--metrics-addr=127.0.0.1:0",
        "--health-addr=127.0.0.1:0",
        selector.as_str(),
    ];
    args.extend_from_slice(extra);
    Flags::parse_from(args).common
}

async fn manager(label: &str, extra: &[&str]) -> Result<Manager> {
    let cluster = e2e::cluster::shared().await?;
    let options = ManagerOptions {
        name: "test-controller",
        leader_election_id: format!("harness-{label}"),
        concurrent: 2,
    };
    Ok(Manager::with_config(
        options,
        &flags(label, extra),
        Metrics::new(),
        cluster.config().clone(),
    )
    .await?)
}

async fn create(api: &Api<ConfigMap>, name: &str, label: &str) -> Result<()> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some([("harness-test".to_string(), label.to_string())].into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    api.create(&PostParams::default(), &cm).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("not yet")]
struct NotYet;

impl ReconcileError for NotYet {
    fn disposition(&self) -> Disposition {
        Disposition::Retry
    }
}

/// What the test reconciler saw: (object, event, when).
type Journal = Arc<Mutex<Vec<(String, &'static str, Instant)>>>;

fn record(journal: &Journal, name: &str, event: &'static str) {
    journal
        .lock()
        .unwrap()
        .push((name.to_string(), event, Instant::now()));
}

fn events(journal: &Journal, name: &str, event: &str) -> Vec<Instant> {
    journal
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, e, _)| n == name && *e == event)
        .map(|(_, _, at)| *at)
        .collect()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

struct Slow {
    journal: Journal,
    takes: Duration,
}

async fn slow_reconcile(cm: Arc<ConfigMap>, ctx: Arc<Slow>) -> Result<Action, NotYet> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    record(&ctx.journal, &name, "started");
    tokio::time::sleep(ctx.takes).await;
    record(&ctx.journal, &name, "finished");
    Ok(Action::await_change())
}

#[tokio::test]
async fn shutdown_drains_in_flight_reconciliations_and_takes_no_new_work() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("harness-drain").await?;
    let label = namespace.name().to_string();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace.name());
    let mut manager = manager(&label, &[]).await?;
    let journal = Journal::default();
    let ctx = Arc::new(Slow {
        journal: journal.clone(),
        takes: Duration::from_secs(2),
    });
    let controller = manager
        .controller::<ConfigMap>(ReconcileTrigger::default())
        .run(slow_reconcile, ctx);
    manager.add(controller);
    let shutdown = manager.shutdown_token();
    let running = tokio::spawn(manager.run());

    create(&api, "first", &label).await?;
    wait_for("the first reconciliation", || {
        !events(&journal, "first", "started").is_empty()
    })
    .await?;
    let signalled = Instant::now();
    shutdown.cancel();
    // Work arriving after the signal is not taken.
    create(&api, "second", &label).await?;
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .context("the manager did not stop")???;
    let stopped = Instant::now();
    let finished = events(&journal, "first", "finished");
    ensure!(
        finished.len() == 1,
        "the in-flight reconciliation was not drained: {finished:?}"
    );
    ensure!(
        finished[0] <= stopped && finished[0] > signalled,
        "it finished before the signal"
    );
    ensure!(
        events(&journal, "second", "started").is_empty(),
        "a reconciliation started after the shutdown signal"
    );
    namespace.delete().await
}

#[tokio::test]
async fn graceful_shutdown_timeout_bounds_the_drain() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("harness-timeout").await?;
    let label = namespace.name().to_string();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace.name());
    let mut manager = manager(&label, &["--graceful-shutdown-timeout=1s"]).await?;
    let journal = Journal::default();
    let ctx = Arc::new(Slow {
        journal: journal.clone(),
        takes: Duration::from_secs(120),
    });
    let controller = manager
        .controller::<ConfigMap>(ReconcileTrigger::default())
        .run(slow_reconcile, ctx);
    manager.add(controller);
    let shutdown = manager.shutdown_token();
    let running = tokio::spawn(manager.run());
    create(&api, "endless", &label).await?;
    wait_for("the reconciliation", || {
        !events(&journal, "endless", "started").is_empty()
    })
    .await?;
    let signalled = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .context("the manager did not stop")???;
    let took = signalled.elapsed();
    ensure!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(10),
        "stopped after {took:?}, not after the 1s timeout"
    );
    ensure!(events(&journal, "endless", "finished").is_empty());
    namespace.delete().await
}

struct Flaky {
    journal: Journal,
    failures: usize,
}

async fn flaky_reconcile(cm: Arc<ConfigMap>, ctx: Arc<Flaky>) -> Result<Action, NotYet> {
    let name = cm.metadata.name.clone().unwrap_or_default();
    record(&ctx.journal, &name, "attempt");
    if events(&ctx.journal, &name, "attempt").len() <= ctx.failures {
        return Err(NotYet);
    }
    Ok(Action::await_change())
}

#[tokio::test]
async fn failures_back_off_per_object_and_are_counted() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("harness-retry").await?;
    let label = namespace.name().to_string();
    let api: Api<ConfigMap> = Api::namespaced(cluster.client().await?, namespace.name());
    let mut manager = manager(
        &label,
        &["--min-retry-delay=300ms", "--max-retry-delay=600ms"],
    )
    .await?;
    let metrics = manager.metrics();
    let journal = Journal::default();
    let ctx = Arc::new(Flaky {
        journal: journal.clone(),
        failures: 3,
    });
    let controller = manager
        .controller::<ConfigMap>(ReconcileTrigger::default())
        .run(flaky_reconcile, ctx);
    manager.add(controller);
    let shutdown = manager.shutdown_token();
    let running = tokio::spawn(manager.run());
    create(&api, "flaky", &label).await?;
    wait_for("four attempts", || {
        events(&journal, "flaky", "attempt").len() >= 4
    })
    .await?;
    let attempts = events(&journal, "flaky", "attempt");
    let gaps: Vec<Duration> = attempts.windows(2).map(|w| w[1] - w[0]).collect();
    // 300ms, doubled to 600ms, then held at the maximum.
    let expected = [300, 600, 600];
    for (gap, want) in gaps.iter().zip(expected) {
        let want = Duration::from_millis(want);
        ensure!(
            *gap >= want && *gap < want + Duration::from_millis(400),
            "retry gaps {gaps:?}, expected about {expected:?} ms"
        );
    }
    let text = metrics.encode()?;
    ensure!(
        text.contains(
            r#"controller_runtime_reconcile_total{controller="configmap",result="error"} 3"#
        ) && text.contains(
            r#"controller_runtime_reconcile_total{controller="configmap",result="success"} 1"#
        ),
        "{text}"
    );
    ensure!(
        text.contains(r#"gotk_reconcile_duration_seconds_count{kind="ConfigMap",name="flaky""#),
        "{text}"
    );
    ensure!(text.contains("rest_client_requests_total{"), "{text}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), running)
        .await
        .context("the manager did not stop")???;
    namespace.delete().await
}
