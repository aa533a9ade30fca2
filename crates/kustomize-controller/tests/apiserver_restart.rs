//! The kube-apiserver restarts while a Kustomization is reconciling: the
//! controllers must recover on their own and the cluster converge with no
//! object lost or duplicated.
//!
//! A test binary of its own on a control plane of its own
//! ([`e2e::cluster::Cluster::start_dedicated`]): restarting the shared one
//! would break every other test running at the same time.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::kustomize::Kustomization;
use fixture::{Env, condition};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::ListParams;
use serde_json::json;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  clusterIP: None\n  ports:\n  - port: 80\n  selector:\n    app: app\n";

/// How long the controllers may take to notice the apiserver is back and
/// converge: their watches back off while it is away (source-controller's
/// up to kube's default 30 s, plus jitter).
const RECOVERY: Duration = Duration::from_secs(180);

fn config_map(name: &str, value: &str) -> (String, String) {
    (
        format!("deploy/{name}.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n"
        ),
    )
}

/// The inventory ids the Kustomization must record for these ConfigMaps
/// plus the Deployment and the Service.
fn expected_ids(ns: &str, config_maps: &[String]) -> Vec<String> {
    let mut ids: Vec<String> = config_maps
        .iter()
        .map(|name| format!("{ns}_{name}__ConfigMap"))
        .collect();
    ids.push(format!("{ns}_app__Service"));
    ids.push(format!("{ns}_app_apps_Deployment"));
    ids.sort();
    ids
}

/// The inventory ids, in the order recorded (duplicates kept, so they show).
fn inventory(ks: &Kustomization) -> Vec<String> {
    ks.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|inv| inv.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

/// Checks the inventory and the live ConfigMaps carrying the owner labels
/// are exactly `config_maps` (plus the Deployment and Service).
async fn assert_exactly(env: &Env, ks: &Kustomization, config_maps: &[String]) -> Result<()> {
    let mut recorded = inventory(ks);
    recorded.sort();
    ensure!(
        recorded == expected_ids(env.ns(), config_maps),
        "inventory {recorded:?}, expected {config_maps:?}"
    );
    let owned = ListParams::default().labels("kustomize.toolkit.fluxcd.io/name=app");
    let live: BTreeSet<String> = env
        .api::<ConfigMap>()
        .list(&owned)
        .await?
        .items
        .into_iter()
        .filter_map(|cm| cm.metadata.name)
        .collect();
    let wanted: BTreeSet<String> = config_maps.iter().cloned().collect();
    ensure!(
        live == wanted,
        "live ConfigMaps {live:?}, expected {wanted:?}"
    );
    ensure!(
        env.get("v1", "Service", "app").await?.is_some(),
        "Service app lost"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn apiserver_restart_while_reconciling_converges() -> Result<()> {
    let mut cluster = e2e::cluster::Cluster::start_dedicated().await?;
    let first_names: Vec<String> = (0..10).map(|i| format!("cm-{i}")).collect();
    let mut files: Vec<(String, String)> = first_names
        .iter()
        .map(|name| config_map(name, "one"))
        .collect();
    files.push(("deploy/deployment.yaml".into(), DEPLOYMENT.into()));
    files.push(("deploy/service.yaml".into(), SERVICE.into()));
    let file_refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let env = Env::start_on(&cluster, "ks-apiserver-restart", &file_refs, &[]).await?;
    let ns = env.ns().to_owned();

    // A health check on an object nobody has created yet keeps the
    // reconciliation in flight, at a known step, for as long as needed.
    env.kustomization(
        "app",
        json!({"path": "./deploy", "timeout": "5m",
            "healthChecks": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "gate", "namespace": ns}]}),
    )
    .await?;
    let first = env.head()?;
    let waiting = format!("Running health checks for revision {first} with a timeout of 5m0s");
    env.wait_for::<Kustomization, _>("app", |ks| {
        let ready = condition(ks.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "Unknown" && ready.reason == "Progressing" && ready.message == waiting)
            .then_some(())
    })
    .await?;
    let deployment_uid = env
        .api::<Deployment>()
        .get("app")
        .await?
        .metadata
        .uid
        .context("uid")?;

    cluster.restart_apiserver().await?;
    env.apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gate"}}))
        .await?;
    let ks = env.ready_within("app", &first, RECOVERY).await?;
    assert_exactly(&env, &ks, &first_names).await?;

    // A new revision, and the apiserver goes away again while the source is
    // fetched and the Kustomization applies it (pruning five ConfigMaps,
    // adding five, changing one).
    let mut second_names: Vec<String> = (5..15).map(|i| format!("cm-{i}")).collect();
    second_names.sort();
    let changed: Vec<(String, String)> = (5..15)
        .map(|i| config_map(&format!("cm-{i}"), if i == 5 { "two" } else { "one" }))
        .collect();
    let changed_refs: Vec<(&str, &str)> = changed
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let deleted: Vec<String> = (0..5).map(|i| format!("deploy/cm-{i}.yaml")).collect();
    let deleted_refs: Vec<&str> = deleted.iter().map(String::as_str).collect();
    let second = env
        .commit(
            &changed_refs,
            &deleted_refs,
            "five out, five in, one changed",
        )
        .await?;
    cluster.restart_apiserver().await?;
    let ks = env.ready_within("app", &second, RECOVERY).await?;
    assert_exactly(&env, &ks, &second_names).await?;
    let cm5 = env.api::<ConfigMap>().get("cm-5").await?;
    ensure!(
        cm5.data.and_then(|d| d.get("value").cloned()).as_deref() == Some("two"),
        "cm-5 not updated"
    );
    let uid_after = env.api::<Deployment>().get("app").await?.metadata.uid;
    ensure!(
        uid_after.as_deref() == Some(deployment_uid.as_str()),
        "the Deployment was recreated ({deployment_uid} -> {uid_after:?})"
    );
    // The namespace goes (finalizers released) before the control plane stops.
    drop(env);
    Ok(())
}
