//! Swapping Flux's helm-controller and ferroflux's on a live cluster, and
//! back (issue 20): a Flux user stops Flux's controller and starts
//! ferroflux's, and nothing happens to their releases — no Helm upgrade, no
//! re-applied object, no test re-run — then a change is applied by
//! ferroflux, and Flux takes the releases back the same way.
//!
//! Flux's helm-controller is built from its Go module
//! ([`e2e::gobuild::flux_controller`], once per machine); the sources are
//! served by ferroflux's source-controller for both (the workspace's binary,
//! `cargo build -p source-controller`).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result};
use e2e::chart_repo::ChartSpec;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::{Value, json};
use support::sources::{
    WithSources, chart_oci_spec, charts_repository, create_source, push_chart, request_reconcile,
};
use support::{Controller, World, condition};

/// A Deployment with no replicas: Ready without a node to run Pods.
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-app\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n    spec:\n      containers:\n      - name: app\n        image: busybox\n";

/// A test hook that passes at once (a ConfigMap: helm waits for nothing).
const TEST_HOOK: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\ndata:\n  ok: \"yes\"\n";

/// The chart every swap installs: a ConfigMap of the values, a Deployment
/// and a test hook.
fn podinfo(version: &str) -> ChartSpec {
    ChartSpec::config_maps("podinfo", version)
        .template("deployment.yaml", DEPLOYMENT)
        .template("test.yaml", TEST_HOOK)
}

/// The objects whose `resourceVersion` must survive a swap untouched.
const OBJECTS: [(&str, &str); 3] = [
    ("ConfigMap", "podinfo-podinfo"),
    ("ConfigMap", "podinfo-test"),
    ("Deployment", "podinfo-app"),
];

/// The status fields either controller must take from the other as its own
/// (issue 20): any change would mean it saw the release as foreign or
/// changed.
const KEPT_STATUS: [&str; 12] = [
    "history",
    "helmChart",
    "storageNamespace",
    "lastAttemptedRevision",
    "lastAttemptedRevisionDigest",
    "lastAttemptedConfigDigest",
    "lastAttemptedGeneration",
    "observedPostRenderersDigest",
    "observedCommonMetadataDigest",
    "failures",
    "installFailures",
    "upgradeFailures",
];

/// What a swap must leave as it was.
#[derive(Debug, PartialEq)]
struct Observed {
    /// Revisions `helm history` lists.
    revisions: Vec<u64>,
    /// Helm's storage Secrets of the release.
    storage_secrets: usize,
    /// `resourceVersion` of each of [`OBJECTS`].
    resource_versions: BTreeMap<String, String>,
    /// [`KEPT_STATUS`] fields as stored (raw JSON, as the other side reads it).
    status: BTreeMap<String, Value>,
}

/// Reads what [`Observed`] holds for the HelmRelease `podinfo`.
async fn observe(world: &World) -> Result<Observed> {
    let ns = world.ns();
    let output = e2e::process::run(
        std::process::Command::new(e2e::packages::helm()?)
            .args(["history", "podinfo", "--output", "json", "--namespace", ns])
            .arg("--kubeconfig")
            .arg(&world.kubeconfig),
    )?;
    let history: Vec<Value> = serde_json::from_slice(&output.stdout)
        .with_context(|| format!("helm history: {}", String::from_utf8_lossy(&output.stdout)))?;
    let revisions = history
        .iter()
        .filter_map(|r| r["revision"].as_u64())
        .collect();
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), ns);
    let storage_secrets = secrets
        .list(&ListParams::default().labels("owner=helm,name=podinfo"))
        .await?
        .items
        .len();
    let mut resource_versions = BTreeMap::new();
    for (kind, name) in OBJECTS {
        let version = match kind {
            "Deployment" => {
                Api::<Deployment>::namespaced(world.client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
            _ => {
                Api::<ConfigMap>::namespaced(world.client.clone(), ns)
                    .get(name)
                    .await?
                    .metadata
                    .resource_version
            }
        };
        resource_versions.insert(format!("{kind}/{name}"), version.unwrap_or_default());
    }
    let raw = raw_release(world).await?;
    let status = KEPT_STATUS
        .iter()
        .map(|field| {
            (
                field.to_string(),
                raw.data["status"]
                    .get(field)
                    .cloned()
                    .unwrap_or(Value::Null),
            )
        })
        .collect();
    Ok(Observed {
        revisions,
        storage_secrets,
        resource_versions,
        status,
    })
}

/// The HelmRelease `podinfo` as stored, not through ferroflux's types.
async fn raw_release(world: &World) -> Result<DynamicObject> {
    let resource = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
    ));
    let api: Api<DynamicObject> = Api::namespaced_with(world.client.clone(), world.ns(), &resource);
    Ok(api.get("podinfo").await?)
}

/// Ready=True, no reconciliation under way, this generation observed.
fn settled(hr: &api::helm::HelmRelease) -> bool {
    condition(hr, "Ready").is_some_and(|c| c.status == "True")
        && condition(hr, "Reconciling").is_none()
        && hr.status.as_ref().and_then(|s| s.observed_generation) == hr.metadata.generation
}

/// The revision of the newest snapshot in `status.history`.
fn latest_revision(hr: &api::helm::HelmRelease) -> Option<i64> {
    hr.status
        .as_ref()?
        .history
        .as_ref()?
        .first()
        .map(|s| s.version)
}

/// Asks the running controller to reconcile the release and waits until
/// it has (`lastHandledReconcileAt` is `token`) and the release is settled:
/// proof that the controller just started has looked at it.
async fn reconciled_by_running_controller(
    world: &World,
    token: &str,
) -> Result<api::helm::HelmRelease> {
    request_reconcile(&world.releases(), "podinfo", token).await?;
    world
        .wait_for("podinfo", &format!("the reconciliation {token}"), |hr| {
            hr.status
                .as_ref()
                .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
                == Some(token)
                && settled(hr)
        })
        .await
}

/// ferroflux's helm-controller with Flux's defaults (chart digest tracking on).
fn ferroflux(kubeconfig: &std::path::Path, namespace: &str) -> Result<Controller> {
    Controller::start_with(
        kubeconfig,
        namespace,
        &["--feature-gates=DisableChartDigestTracking=false"],
    )
}

/// Stops the running controller (SIGTERM, as `kubectl scale --replicas=0`
/// would) and starts `next` in its place.
fn swap(world: &mut World, next: fn(&std::path::Path, &str) -> Result<Controller>) -> Result<()> {
    world.controller.terminate(Duration::from_secs(30))?;
    world.controller = next(&world.kubeconfig, world.ns())?;
    Ok(())
}

/// The HelmRelease `podinfo` from `chart` (a `chart` or `chartRef` spec
/// field), with a test, a post-renderer and common metadata so that every
/// digest Flux records is compared.
fn release_spec(chart: Value) -> Value {
    let mut spec = json!({
        "interval": "10m",
        "test": {"enable": true},
        "commonMetadata": {"labels": {"team": "apps"}},
        "postRenderers": [{"kustomize": {"patches": [{
            "target": {"kind": "ConfigMap", "name": "podinfo-podinfo"},
            "patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-podinfo\n  annotations:\n    rendered: by-kustomize\n"
        }]}}],
        "values": {"data": {"greeting": "from Flux"}}
    });
    if let (Some(spec), Value::Object(chart)) = (spec.as_object_mut(), chart) {
        spec.extend(chart);
    }
    spec
}

/// Flux installs, ferroflux takes over without a change and then upgrades,
/// Flux takes back without a change. `chart_version` is the chart version
/// the release records.
async fn swap_both_ways(
    sources: &mut WithSources,
    chart: Value,
    chart_version: &str,
) -> Result<()> {
    let world = &mut sources.world;
    world.create_release("podinfo", release_spec(chart)).await?;
    let hr = world
        .wait_for("podinfo", "Flux's install and test", |hr| {
            settled(hr) && latest_revision(hr) == Some(1)
        })
        .await?;
    let snapshot = hr
        .status
        .as_ref()
        .and_then(|s| s.history.as_ref())
        .and_then(|h| h.first())
        .context("no snapshot")?;
    assert_eq!(snapshot.chart_version, chart_version);
    assert!(
        snapshot.test_hooks.as_ref().is_some_and(|t| !t.is_empty()),
        "Flux ran the test: {snapshot:?}"
    );
    let config_map = world.config_maps().get("podinfo-podinfo").await?;
    let labels = config_map.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("apps"));
    let annotations = config_map.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("rendered").map(String::as_str),
        Some("by-kustomize")
    );
    let by_flux = observe(world).await?;
    assert_eq!(by_flux.revisions, [1]);
    assert_eq!(by_flux.storage_secrets, 1);

    // Flux → ferroflux, nothing changed: nothing happens.
    swap(world, ferroflux)?;
    let hr = reconciled_by_running_controller(world, "to-ferroflux").await?;
    assert_eq!(
        observe(world).await?,
        by_flux,
        "ferroflux changed the release Flux made; its log:\n{}",
        world.controller.log()
    );
    assert_eq!(latest_revision(&hr), Some(1));

    // ferroflux applies a change: revision 2.
    world
        .patch_spec(
            "podinfo",
            json!({"values": {"data": {"greeting": "from ferroflux"}}}),
        )
        .await?;
    world
        .wait_for("podinfo", "ferroflux's upgrade", |hr| {
            settled(hr) && latest_revision(hr) == Some(2)
        })
        .await?;
    assert_eq!(
        world.config_value("podinfo-podinfo", "greeting").await?,
        "from ferroflux"
    );
    let by_ferroflux = observe(world).await?;
    assert_eq!(by_ferroflux.revisions, [1, 2]);
    assert_eq!(by_ferroflux.storage_secrets, 2);

    // ferroflux → Flux, nothing changed: nothing happens.
    swap(world, Controller::start_flux)?;
    let hr = reconciled_by_running_controller(world, "to-flux").await?;
    assert_eq!(
        observe(world).await?,
        by_ferroflux,
        "Flux changed the release ferroflux made; its log:\n{}",
        world.controller.log()
    );
    assert_eq!(latest_revision(&hr), Some(2));
    Ok(())
}

/// Flux's helm-controller, with the sources of ferroflux's source-controller.
async fn with_flux(name: &str) -> Result<WithSources> {
    WithSources::with_controller(name, Controller::start_flux).await
}

#[tokio::test]
async fn helm_repository_release_swaps_both_ways_untouched() -> Result<()> {
    let mut sources = with_flux("swap-helmrepo").await?;
    sources.world.repo.add_chart(&podinfo("6.0.0"))?;
    charts_repository(&sources.world).await?;
    let chart = json!({"chart": {"spec": {
        "chart": "podinfo",
        "version": "6.x",
        "interval": "1h",
        "sourceRef": {"kind": "HelmRepository", "name": "charts"}
    }}});
    swap_both_ways(&mut sources, chart, "6.0.0").await
}

#[tokio::test]
async fn oci_repository_release_swaps_both_ways_untouched() -> Result<()> {
    let mut sources = with_flux("swap-oci").await?;
    let registry = e2e::registry::Registry::start(false)?;
    let digest = push_chart(&registry, &podinfo("6.0.0"))?;
    let mut spec = chart_oci_spec(&registry, "podinfo");
    spec["interval"] = json!("1h");
    create_source::<api::source::OCIRepository>(&sources.world, "OCIRepository", "podinfo", spec)
        .await?;
    let chart = json!({"chartRef": {"kind": "OCIRepository", "name": "podinfo"}});
    // Flux's chart digest tracking: the version carries the manifest digest.
    let version = support::sources::tracked("6.0.0", &digest);
    swap_both_ways(&mut sources, chart, &version).await
}
