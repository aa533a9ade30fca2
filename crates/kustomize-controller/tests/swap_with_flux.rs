//! Swapping Flux's kustomize-controller and ferroflux's on a live cluster,
//! and back (issue 20): whoever takes over re-applies nothing that did not
//! change (no object's `resourceVersion` moves), records the same
//! inventory, applies the next revision and prunes with the inventory the
//! other one wrote.
//!
//! Flux's kustomize-controller is built from its Go module
//! ([`e2e::gobuild::flux_controller`], once per machine); the GitRepository
//! is served by ferroflux's source-controller for both.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use api::kustomize::Kustomization;
use fixture::{Env, Setup, condition, workspace_kustomize_controller};
use serde_json::{Value, json};

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n";
const EXTRA: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  pruned: by-ferroflux\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  ports:\n  - port: 80\n  selector:\n    app: app\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n";

/// Every object the Kustomization applies at some revision.
const OBJECTS: [(&str, &str, &str); 4] = [
    ("v1", "ConfigMap", "app-config"),
    ("v1", "ConfigMap", "extra"),
    ("v1", "Service", "app"),
    ("apps/v1", "Deployment", "app"),
];

/// Status fields the controller taking over must keep as it found them
/// when nothing changed.
const KEPT_STATUS: [&str; 4] = [
    "inventory",
    "lastAppliedRevision",
    "lastAppliedOriginRevision",
    "lastAttemptedRevision",
];

/// What a swap with nothing changed must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    /// `uid` and `resourceVersion` of each of [`OBJECTS`] that exists.
    objects: BTreeMap<String, (String, String)>,
    /// [`KEPT_STATUS`] fields as stored.
    status: BTreeMap<String, Value>,
    /// The digests of `status.history`, newest first: a snapshot the other
    /// side computes differently would show as a new entry.
    history_digests: Vec<String>,
}

async fn observe(env: &Env) -> Result<Observed> {
    let mut objects = BTreeMap::new();
    for (api_version, kind, name) in OBJECTS {
        if let Some(object) = env.get(api_version, kind, name).await? {
            let metadata = &object["metadata"];
            objects.insert(
                format!("{kind}/{name}"),
                (
                    metadata["uid"].as_str().unwrap_or_default().to_string(),
                    metadata["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                ),
            );
        }
    }
    let ks = env
        .get("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "app")
        .await?
        .context("the Kustomization")?;
    let status = &ks["status"];
    Ok(Observed {
        objects,
        status: KEPT_STATUS
            .iter()
            .map(|f| (f.to_string(), status.get(f).cloned().unwrap_or(Value::Null)))
            .collect(),
        history_digests: status["history"]
            .as_array()
            .map(|h| {
                h.iter()
                    .filter_map(|s| s["digest"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Asks the running controller to reconcile `app` and waits until it has
/// (`lastHandledReconcileAt`) with Ready=True at `revision`.
async fn reconciled_by_running_controller(env: &Env, revision: &str) -> Result<()> {
    let token = env.request_reconcile::<Kustomization>("app").await?;
    env.wait_for::<Kustomization, _>("app", |ks| {
        let status = ks.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str())
            && ready.status == "True"
            && status.last_applied_revision.as_deref() == Some(revision))
        .then_some(())
    })
    .await
}

/// The inventory ids of `observed`, sorted.
fn inventory_ids(observed: &Observed) -> Vec<String> {
    let mut ids: Vec<String> = observed.status["inventory"]["entries"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn kustomization_swaps_both_ways_untouched_and_prunes_with_the_others_inventory() -> Result<()>
{
    let flux =
        tokio::task::block_in_place(|| e2e::gobuild::flux_controller("kustomize-controller"))?;
    let setup = Setup {
        kustomize_binary: Some(flux.clone()),
        ..Setup::default()
    };
    let cluster = e2e::cluster::shared().await?;
    let mut env = Env::start_with(
        cluster,
        "ks-swap",
        &[
            ("deploy/configmap.yaml", CONFIGMAP),
            ("deploy/extra.yaml", EXTRA),
            ("deploy/service.yaml", SERVICE),
            ("deploy/deployment.yaml", DEPLOYMENT),
        ],
        &[],
        setup,
    )
    .await?;
    let ns = env.ns().to_string();
    env.kustomization("app", json!({"path": "./deploy", "wait": true}))
        .await?;
    let first = env.head()?;
    env.ready("app", &first).await?;
    let by_flux = observe(&env).await?;
    assert_eq!(by_flux.objects.len(), 4, "{by_flux:?}");
    assert_eq!(by_flux.history_digests.len(), 1, "{by_flux:?}");

    // Flux → ferroflux, nothing changed: nothing is re-applied.
    env.swap_kustomize_controller(workspace_kustomize_controller())?;
    reconciled_by_running_controller(&env, &first).await?;
    let taken_over = observe(&env).await?;
    assert_eq!(
        taken_over,
        by_flux,
        "ferroflux changed what Flux applied; logs:\n{}",
        env.logs(80)
    );

    // ferroflux applies the next revision and prunes `extra`, which only
    // Flux's inventory lists.
    let second = env
        .commit(
            &[(
                "deploy/configmap.yaml",
                &CONFIGMAP.replace("hello", "from ferroflux"),
            )],
            &["deploy/extra.yaml"],
            "change the config, drop extra",
        )
        .await?;
    env.ready("app", &second).await?;
    let by_ferroflux = observe(&env).await?;
    assert!(
        !by_ferroflux.objects.contains_key("ConfigMap/extra"),
        "extra was not pruned: {by_ferroflux:?}"
    );
    for unchanged in ["Service/app", "Deployment/app"] {
        assert_eq!(
            by_ferroflux.objects.get(unchanged),
            by_flux.objects.get(unchanged),
            "{unchanged} was re-applied"
        );
    }
    assert_ne!(
        by_ferroflux.objects.get("ConfigMap/app-config"),
        by_flux.objects.get("ConfigMap/app-config")
    );
    assert_eq!(
        inventory_ids(&by_ferroflux),
        [
            format!("{ns}_app-config__ConfigMap"),
            format!("{ns}_app__Service"),
            format!("{ns}_app_apps_Deployment"),
        ]
    );

    // ferroflux → Flux, nothing changed: nothing is re-applied.
    env.swap_kustomize_controller(flux)?;
    reconciled_by_running_controller(&env, &second).await?;
    assert_eq!(
        observe(&env).await?,
        by_ferroflux,
        "Flux changed what ferroflux applied; logs:\n{}",
        env.logs(80)
    );

    // Flux prunes the Service, which only ferroflux's inventory lists.
    let third = env
        .commit(&[], &["deploy/service.yaml"], "drop the Service")
        .await?;
    env.ready("app", &third).await?;
    let back = observe(&env).await?;
    assert!(
        !back.objects.contains_key("Service/app"),
        "Flux did not prune the Service: {back:?}"
    );
    assert_eq!(
        back.objects.get("Deployment/app"),
        by_flux.objects.get("Deployment/app"),
        "the Deployment was re-applied"
    );
    Ok(())
}
