//! kustomize-controller on the shared controller harness: SIGTERM in the
//! middle of a reconciliation lets it finish and record its inventory, so
//! the next leader starts from a consistent one; an unknown feature gate
//! stops the binary at once with one line.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use api::kustomize::Kustomization;
use fixture::{Env, condition};
use serde_json::json;

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n";
/// One replica: never available without a kubelet, so the health check
/// waits until the Kustomization's timeout.
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n";

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_reconciliation_leaves_a_consistent_inventory() -> Result<()> {
    let mut env = Env::start(
        "ks-sigterm",
        &[
            ("configmap.yaml", CONFIGMAP),
            ("deployment.yaml", DEPLOYMENT),
        ],
        &[],
    )
    .await?;
    env.kustomization("app", json!({"wait": true, "timeout": "30s"}))
        .await?;
    // The objects are applied and the health check is under way.
    env.wait_for::<Kustomization, _>("app", |ks| {
        let status = ks.status.as_ref()?;
        let healthy = condition(status.conditions.as_ref(), "Healthy")?;
        (healthy.status == "Unknown").then_some(())
    })
    .await?;
    let signalled = Instant::now();
    let exit = tokio::task::block_in_place(|| {
        env.terminate_kustomize_controller(Duration::from_secs(120))
    })?;
    ensure!(exit.success(), "exit {exit}\n{}", env.logs(40));
    ensure!(
        signalled.elapsed() >= Duration::from_secs(5),
        "exited {:?} after SIGTERM: the health check was not waited for\n{}",
        signalled.elapsed(),
        env.logs(40)
    );
    ensure!(
        env.logs(200).contains("in-flight reconciliations finished"),
        "{}",
        env.logs(60)
    );
    // The drained reconciliation recorded its outcome and its inventory.
    let ks: Kustomization = env.api().get("app").await?;
    let status = ks.status.clone().context("status")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(
        ready.status == "False" && ready.reason == "HealthCheckFailed",
        "{ready:?}"
    );
    let entries = |ks: &Kustomization| -> Vec<String> {
        let mut ids: Vec<String> = ks
            .status
            .as_ref()
            .and_then(|s| s.inventory.as_ref())
            .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids
    };
    let ns = env.ns().to_string();
    let expected = vec![
        format!("{ns}_app-config__ConfigMap"),
        format!("{ns}_app_apps_Deployment"),
    ];
    ensure!(entries(&ks) == expected, "inventory {:?}", entries(&ks));

    // The next leader starts from that inventory: removing the Deployment
    // from Git prunes it.
    env.start_kustomize_controller()?;
    let revision = env
        .commit(&[], &["deployment.yaml"], "drop the deployment")
        .await?;
    let ks = env.ready("app", &revision).await?;
    ensure!(
        entries(&ks) == vec![format!("{ns}_app-config__ConfigMap")],
        "inventory {:?}",
        entries(&ks)
    );
    ensure!(env.get("apps/v1", "Deployment", "app").await?.is_none());
    Ok(())
}

#[test]
fn unknown_and_unimplemented_feature_gates_stop_the_binary_with_one_line() -> Result<()> {
    e2e::process::assert_flags_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_kustomize-controller")),
        &[
            (
                "--feature-gates=StrictPostBuildSubstitutions=false,Nope=true",
                "feature-gate 'Nope' not supported",
            ),
            (
                "--feature-gates=GroupChangeLog=true",
                "feature-gate 'GroupChangeLog=true' is not implemented by ferroflux",
            ),
        ],
    )
}

/// Two shards of kustomize-controller with leader election on, each with its
/// own `--watch-label-selector`: each leads a Lease of its own (Flux's name:
/// the controller's plus 8 hex digits of the selector's SHA-256) with the
/// timing its flags give, reconciles only its shard's Kustomizations, and
/// hands its Lease back on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn shards_lead_leases_of_their_own() -> Result<()> {
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::api::{Patch, PatchParams};

    let selector = |shard: &str| format!("sharding.fluxcd.io/key={shard}");
    let first_args = [
        "--enable-leader-election".to_string(),
        format!("--watch-label-selector={}", selector("one")),
        "--leader-election-lease-duration=20s".to_string(),
        "--leader-election-renew-deadline=15s".to_string(),
        "--leader-election-retry-period=2s".to_string(),
    ];
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let renamed = |name: &str| CONFIGMAP.replace("app-config", name);
    let (one, two, none) = (renamed("one"), renamed("two"), renamed("none"));
    let mut env = Env::start(
        "ks-shards",
        &[
            ("one/configmap.yaml", one.as_str()),
            ("two/configmap.yaml", two.as_str()),
            ("none/configmap.yaml", none.as_str()),
        ],
        &first_args,
    )
    .await?;
    let _second = env.spawn_kustomize_controller(
        "kustomize-controller-shard-two",
        &[
            "--enable-leader-election".to_string(),
            format!("--watch-label-selector={}", selector("two")),
        ],
    )?;
    for name in ["one", "two", "none"] {
        env.kustomization(name, json!({"path": format!("./{name}")}))
            .await?;
        if name != "none" {
            env.api::<Kustomization>()
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"labels": {"sharding.fluxcd.io/key": name}}}),
                    ),
                )
                .await?;
        }
    }
    let head = env.head()?;
    env.ready("one", &head).await?;
    env.ready("two", &head).await?;
    // Its status is only what the CRD defaults (observedGeneration -1).
    let unsharded = env.api::<Kustomization>().get("none").await?;
    ensure!(
        unsharded
            .status
            .as_ref()
            .is_none_or(|s| s.conditions.is_none() && s.last_attempted_revision.is_none()),
        "a Kustomization outside both shards was reconciled: {:?}",
        unsharded.status
    );

    let base = "kustomize-controller-leader-election";
    let leases = env.api::<Lease>();
    let lease_one = leases
        .get(&runtime::leader::lease_name(base, &selector("one")))
        .await?;
    let lease_two = leases
        .get(&runtime::leader::lease_name(base, &selector("two")))
        .await?;
    let spec_one = lease_one.spec.context("lease spec")?;
    ensure!(spec_one.holder_identity.is_some(), "{spec_one:?}");
    ensure!(spec_one.lease_duration_seconds == Some(20), "{spec_one:?}");
    let spec_two = lease_two.spec.context("lease spec")?;
    ensure!(spec_two.holder_identity.is_some(), "{spec_two:?}");
    ensure!(spec_two.lease_duration_seconds == Some(35), "{spec_two:?}");

    let status = env.terminate_kustomize_controller(Duration::from_secs(30))?;
    ensure!(status.success(), "shard one exited with {status}");
    let released = leases
        .get(&runtime::leader::lease_name(base, &selector("one")))
        .await?
        .spec
        .context("lease spec")?;
    ensure!(
        released
            .holder_identity
            .as_deref()
            .unwrap_or_default()
            .is_empty(),
        "shard one kept its lease after SIGTERM: {released:?}"
    );
    Ok(())
}
