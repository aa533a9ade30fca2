//! helm-controller on the shared controller harness, end to end: SIGTERM
//! in the middle of a helm install lets the install finish (and its result
//! be recorded) before the process exits, so no release is left
//! pending-install for the next leader; `dependsOn[].readyExpr` is honoured
//! as by Kustomizations; an unknown feature gate stops the binary at once.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use anyhow::{Result, bail, ensure};
use e2e::chart_repo::ChartSpec;
use helm_controller::storage::ReleaseStorage;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::{World, has, message, ready_with};

/// A post-install Job that never completes without a kubelet: helm waits
/// in pending-install until the release's timeout.
const ENDLESS_INSTALL_HOOK: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-wait\n  annotations:\n    helm.sh/hook: post-install\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: wait\n        image: busybox\n        command: [\"true\"]\n";

#[tokio::test]
async fn sigterm_during_an_install_lets_it_finish_before_exit() -> Result<()> {
    let mut world = World::new("hr-sigterm").await?;
    let ns = world.ns().to_string();
    world
        .publish(
            "drained",
            &ChartSpec::config_maps("drained", "1.0.0").template("hook.yaml", ENDLESS_INSTALL_HOOK),
        )
        .await?;
    world
        .create_release(
            "drained",
            json!({"interval": "10m", "timeout": "8s",
                   "chartRef": {"kind": "OCIRepository", "name": "drained"}}),
        )
        .await?;
    let storage = ReleaseStorage::new(world.client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(latest) = storage.latest(&ns, "drained").await?
            && latest.release.info.status == "pending-install"
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("no pending install; log:\n{}", world.controller.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let signalled = Instant::now();
    let status = world.controller.terminate(Duration::from_secs(120))?;
    let took = signalled.elapsed();
    ensure!(
        status.success(),
        "exit {status}; log:\n{}",
        world.controller.log()
    );
    // helm ran to its timeout rather than being killed with the process.
    ensure!(
        took >= Duration::from_secs(2),
        "exited {took:?} after SIGTERM: the install was not waited for"
    );
    let latest = storage.latest(&ns, "drained").await?;
    ensure!(
        latest
            .as_ref()
            .is_none_or(|r| r.release.info.status != "pending-install"),
        "left pending-install: {:?}",
        latest.map(|r| r.release.info.status)
    );
    // The outcome was recorded before the exit: the install failed at its
    // timeout, and with no retries configured the release is stalled.
    let hr = world.releases().get("drained").await?;
    ensure!(
        has(&hr, "Released", "False", "InstallFailed")
            && has(&hr, "Ready", "False", "RetriesExceeded"),
        "status after the drain: {:?}",
        hr.status
    );
    let log = world.controller.log();
    ensure!(
        log.contains("in-flight reconciliations finished"),
        "log:\n{log}"
    );
    Ok(())
}

#[tokio::test]
async fn ready_expressions_decide_when_a_dependency_is_ready() -> Result<()> {
    let world = World::new("hr-ready-expr").await?;
    let ns = world.ns().to_string();
    world
        .install("base", &ChartSpec::config_maps("base", "1.0.0"), json!({}))
        .await?;
    world
        .publish("top", &ChartSpec::config_maps("top", "1.0.0"))
        .await?;
    world
        .create_release(
            "top",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "top"},
                "dependsOn": [{"name": "base",
                               "readyExpr": "dep.metadata.labels['stage'] == 'done' && self.metadata.name == 'top'"}]
            }),
        )
        .await?;
    // `base` is Ready, but the expression wants a label it does not have yet.
    let hr = world
        .wait_for("top", "the dependency wait", |hr| {
            has(hr, "Ready", "False", "DependencyNotReady")
        })
        .await?;
    ensure!(
        message(&hr, "Ready") == format!("dependency '{ns}/base' is not ready"),
        "{}",
        message(&hr, "Ready")
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    ensure!(
        world.config_value("top-top", "greeting").await.is_err(),
        "installed before the expression held"
    );
    world
        .releases()
        .patch(
            "base",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"stage": "done"}}})),
        )
        .await?;
    let installed = world.succeeded("install", "top", 1, "top@1.0.0");
    world
        .wait_for("top", "the install once the expression holds", |hr| {
            ready_with(hr, &installed)
        })
        .await?;

    // An expression that does not compile stalls: retrying cannot help.
    world
        .publish("broken", &ChartSpec::config_maps("broken", "1.0.0"))
        .await?;
    world
        .create_release(
            "broken",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "broken"},
                "dependsOn": [{"name": "base", "readyExpr": "dep.metadata.name +"}]
            }),
        )
        .await?;
    let hr = world
        .wait_for("broken", "the stall", |hr| {
            has(hr, "Stalled", "True", "InvalidCELExpression")
        })
        .await?;
    ensure!(
        has(&hr, "Ready", "False", "InvalidCELExpression"),
        "{:?}",
        hr.status
    );
    Ok(())
}

#[test]
fn unknown_and_unimplemented_feature_gates_stop_the_binary_with_one_line() -> Result<()> {
    e2e::process::assert_flags_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_helm-controller")),
        &[
            (
                "--feature-gates=DetectDrift=true,NoSuchGate=true",
                "feature-gate 'NoSuchGate' not supported",
            ),
            (
                "--feature-gates=OOMWatch=true",
                "feature-gate 'OOMWatch=true' is not implemented by ferroflux",
            ),
        ],
    )
}
