//! HelmReleases reconciled end to end by the helm-controller binary, with
//! the real helm v4 against the harness control plane.
//!
//! The charts come from an OCIRepository whose `.status.artifact` the test
//! writes itself, playing source-controller's part (that controller does not
//! serve OCI charts yet): helm-controller only ever reads a source's status,
//! so this is the same contract. The artifact files are served by the
//! harness's chart repository (lighttpd). No kubelet runs Pods here, so the
//! charts are made of ConfigMaps, ready as soon as they exist; the only Job is
//! a hook meant never to finish.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::chart_repo::ChartSpec;
use helm_controller::storage::ReleaseStorage;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{Controller, World, condition, has, message, ready_with};

/// A passing test hook: helm counts a created ConfigMap as a passed test.
const PASSING_TEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\ndata:\n  ok: \"yes\"\n";
/// A hook the API server refuses (ConfigMap data must be strings).
const FAILING_HOOK: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-bad-hook\n  annotations:\n    helm.sh/hook: post-install,post-upgrade\ndata:\n  count: 1\n";
/// A post-upgrade Job that never completes without a kubelet.
const ENDLESS_HOOK: &str = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-wait\n  annotations:\n    helm.sh/hook: post-upgrade\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: wait\n        image: busybox\n        command: [\"true\"]\n";

#[tokio::test]
async fn install_upgrade_on_values_and_chart_then_uninstall_on_delete() -> Result<()> {
    let world = World::new("hr-lifecycle").await?;
    let ns = world.ns().to_string();
    world
        .publish(
            "demo",
            &ChartSpec::config_maps("demo", "1.0.0").app_version("1.0"),
        )
        .await?;
    // Values from a watched ConfigMap, placed with a targetPath.
    let values_cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "extra", "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
        "data": {"level": "one"}
    }))?;
    world
        .config_maps()
        .create(&PostParams::default(), &values_cm)
        .await?;
    world
        .create_release(
            "demo",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "demo"},
                "values": {"data": {"greeting": "hi"}},
                "valuesFrom": [{"kind": "ConfigMap", "name": "extra", "valuesKey": "level", "targetPath": "data.level"}]
            }),
        )
        .await?;
    let installed = world.succeeded("install", "demo", 1, "demo@1.0.0");
    let hr = world
        .wait_for("demo", "the install", |hr| ready_with(hr, &installed))
        .await?;
    let status = hr.status.clone().unwrap_or_default();
    assert!(has(&hr, "Released", "True", "InstallSucceeded"));
    let history = status.history.clone().unwrap_or_default();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].version, history[0].status.as_str()),
        (1, "deployed")
    );
    assert_eq!(history[0].app_version.as_deref(), Some("1.0"));
    assert!(
        history[0]
            .oci_digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    assert_eq!(status.storage_namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(status.last_attempted_revision.as_deref(), Some("1.0.0"));
    assert_eq!(
        status.last_attempted_config_digest.as_deref(),
        Some(history[0].config_digest.as_str())
    );
    let inventory = status.inventory.clone().unwrap_or_default();
    assert_eq!(inventory.entries.len(), 1, "{inventory:?}");
    assert_eq!(
        inventory.entries[0].id,
        format!("{ns}_demo-demo__ConfigMap")
    );
    let cm = world.config_maps().get("demo-demo").await?;
    let data = cm.data.clone().unwrap_or_default();
    assert_eq!(data["greeting"], "hi");
    assert_eq!(data["level"], "one");
    let labels = cm.metadata.labels.unwrap_or_default();
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "demo");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], ns);

    // A change of the referenced ConfigMap upgrades the release.
    world
        .config_maps()
        .patch(
            "extra",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"level": "two"}})),
        )
        .await?;
    let upgraded = world.succeeded("upgrade", "demo", 2, "demo@1.0.0");
    world
        .wait_for("demo", "the values upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    assert_eq!(world.config_value("demo-demo", "level").await?, "two");

    // A new chart version upgrades the release.
    world
        .publish("demo", &ChartSpec::config_maps("demo", "2.0.0"))
        .await?;
    let upgraded = world.succeeded("upgrade", "demo", 3, "demo@2.0.0");
    let hr = world
        .wait_for("demo", "the chart upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    let history = hr
        .status
        .clone()
        .unwrap_or_default()
        .history
        .unwrap_or_default();
    assert_eq!(
        history
            .iter()
            .map(|s| (s.version, s.status.as_str()))
            .collect::<Vec<_>>(),
        [(3, "deployed"), (2, "superseded")],
        "history is kept back to the previous successful release"
    );
    assert_eq!(
        world.config_value("demo-demo", "chartVersion").await?,
        "2.0.0"
    );
    // helm itself sees what the controller did.
    let storage = ReleaseStorage::new(world.client.clone());
    assert_eq!(storage.revisions(&ns, "demo").await?.len(), 3);

    // Deletion uninstalls the release.
    world.delete_and_wait("demo").await?;
    assert!(world.config_maps().get_opt("demo-demo").await?.is_none());
    assert!(storage.revisions(&ns, "demo").await?.is_empty());
    let _ = &world.kubeconfig;
    Ok(())
}

#[tokio::test]
async fn tests_run_and_failed_upgrades_roll_back_until_retries_run_out() -> Result<()> {
    let world = World::new("hr-remediation").await?;
    let ns = world.ns().to_string();
    world
        .publish(
            "app",
            &ChartSpec::config_maps("app", "1.0.0").template("test.yaml", PASSING_TEST),
        )
        .await?;
    world
        .create_release(
            "app",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "app"},
                "test": {"enable": true},
                "upgrade": {"remediation": {"retries": 1}}
            }),
        )
        .await?;
    let tested = format!(
        "Helm test succeeded for release {ns}/app.v1 with chart app@1.0.0: 1 test hook completed successfully"
    );
    let hr = world
        .wait_for("app", "install and tests", |hr| ready_with(hr, &tested))
        .await?;
    assert!(has(&hr, "TestSuccess", "True", "TestSucceeded"));
    assert!(has(&hr, "Released", "True", "InstallSucceeded"));
    let history = hr
        .status
        .clone()
        .unwrap_or_default()
        .history
        .unwrap_or_default();
    let hooks = history[0].test_hooks.clone().unwrap_or_default();
    assert_eq!(hooks["app-test"].phase.as_deref(), Some("Succeeded"));

    // Version 2 has a hook the API server refuses: the upgrade fails, is
    // rolled back, retried once, rolled back again, then stalls.
    world
        .publish(
            "app",
            &ChartSpec::config_maps("app", "2.0.0")
                .template("test.yaml", PASSING_TEST)
                .template("hook.yaml", FAILING_HOOK),
        )
        .await?;
    let hr = world
        .wait_for("app", "retries to run out", |hr| {
            has(hr, "Stalled", "True", "RetriesExceeded")
        })
        .await?;
    let status = hr.status.clone().unwrap_or_default();
    assert_eq!(status.upgrade_failures, Some(2));
    let ready = condition(&hr, "Ready").context("Ready")?;
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "RetriesExceeded");
    assert_eq!(ready.message, "Failed to upgrade after 2 attempt(s)");
    assert!(has(&hr, "Remediated", "True", "RollbackSucceeded"));
    let history = status.history.unwrap_or_default();
    assert_eq!(
        history[0].chart_version, "1.0.0",
        "rolled back: {history:?}"
    );
    assert_eq!(history[0].status, "deployed");
    let failed = format!("Helm upgrade failed for release {ns}/app with chart app@2.0.0: ");
    world
        .wait_for_event("UpgradeFailed", |message| message.starts_with(&failed))
        .await?;
    world.wait_for_event("RollbackSucceeded", |_| true).await?;
    assert_eq!(
        world.config_value("app-app", "chartVersion").await?,
        "1.0.0"
    );
    Ok(())
}

#[tokio::test]
async fn failed_installs_are_uninstalled_and_bad_input_is_reported() -> Result<()> {
    let world = World::new("hr-failures").await?;
    let ns = world.ns().to_string();
    world
        .publish(
            "broken",
            &ChartSpec::config_maps("broken", "1.0.0").template("hook.yaml", FAILING_HOOK),
        )
        .await?;
    world
        .create_release(
            "broken",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "broken"},
                "install": {"remediation": {"retries": 1}}
            }),
        )
        .await?;
    let hr = world
        .wait_for("broken", "install retries to run out", |hr| {
            has(hr, "Stalled", "True", "RetriesExceeded")
        })
        .await?;
    assert_eq!(
        condition(&hr, "Ready").map(|c| c.message.as_str()),
        Some("Failed to install after 2 attempt(s)")
    );
    let remediated = format!("Helm uninstall remediation for release {ns}/broken.v1");
    world
        .wait_for_event("UninstallSucceeded", |message| {
            message.starts_with(&remediated)
        })
        .await?;
    // The last failure is left as helm left it.
    let latest = ReleaseStorage::new(world.client.clone())
        .latest(&ns, "broken")
        .await?
        .context("kept")?;
    assert_eq!(latest.release.info.status, "failed");

    // Values that break the chart's schema.
    let schema = r#"{"type":"object","properties":{"data":{"type":"object","additionalProperties":{"type":"string"}}}}"#;
    world
        .publish(
            "strict",
            &ChartSpec::config_maps("strict", "1.0.0").values_schema(schema),
        )
        .await?;
    world
        .create_release(
            "strict",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "strict"},
                "values": {"data": {"greeting": 5}}
            }),
        )
        .await?;
    let hr = world
        .wait_for("strict", "the schema failure", |hr| {
            has(hr, "Ready", "False", "InstallFailed")
        })
        .await?;
    let ready = message(&hr, "Ready");
    assert!(
        ready.starts_with(&format!(
            "Helm install failed for release {ns}/strict with chart strict@1.0.0: "
        )) && ready.contains("values don't meet the specifications of the schema"),
        "{ready}"
    );

    // A missing valuesFrom ConfigMap; an optional one is fine.
    world
        .create_release(
            "novalues",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "strict"},
                "valuesFrom": [{"kind": "ConfigMap", "name": "absent"}]
            }),
        )
        .await?;
    let hr = world
        .wait_for("novalues", "the values error", |hr| {
            has(hr, "Ready", "False", "ValuesError")
        })
        .await?;
    assert_eq!(
        message(&hr, "Ready"),
        format!(
            "could not resolve ConfigMap chart values reference '{ns}/absent' with key 'values.yaml': resource not found"
        )
    );
    world
        .patch_spec(
            "novalues",
            json!({"valuesFrom": [{"kind": "ConfigMap", "name": "absent", "optional": true}]}),
        )
        .await?;
    let installed = world.succeeded("install", "novalues", 1, "strict@1.0.0");
    world
        .wait_for("novalues", "the optional values install", |hr| {
            ready_with(hr, &installed)
        })
        .await?;

    // A source without an artifact.
    world
        .create_release(
            "nosource",
            json!({"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "missing"}}),
        )
        .await?;
    let hr = world
        .wait_for("nosource", "the source error", |hr| {
            has(hr, "Ready", "False", "ArtifactFailed")
        })
        .await?;
    assert!(
        condition(&hr, "Ready")
            .is_some_and(|c| c.message.starts_with("could not get Source object")),
        "{:?}",
        condition(&hr, "Ready")
    );
    Ok(())
}

/// Drift is detected and corrected; with `--override-manager=someone`, the
/// fields only `someone` set are taken over and removed too.
#[tokio::test]
async fn drift_is_detected_and_corrected() -> Result<()> {
    let world = World::with_args("hr-drift", &["--override-manager=someone"]).await?;
    world
        .install(
            "drifty",
            &ChartSpec::config_maps("drifty", "1.0.0"),
            json!({"driftDetection": {"mode": "enabled"}}),
        )
        .await?;
    // Someone edits the release's ConfigMap by hand.
    world
        .config_maps()
        .patch(
            "drifty-drifty",
            &PatchParams::apply("someone").force(),
            &Patch::Apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "drifty-drifty"}, "data": {"greeting": "tampered", "extra": "added by someone"}})),
        )
        .await?;
    world
        .releases()
        .patch(
            "drifty",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "drift-1"}}})),
        )
        .await?;
    world
        .wait_for("drifty", "drift correction", |hr| {
            hr.status
                .as_ref()
                .and_then(|s| s.reconcile_request.last_handled_reconcile_at.as_deref())
                == Some("drift-1")
                && has(hr, "Drifted", "False", "NoDriftDetected")
        })
        .await?;
    assert_eq!(
        world.config_value("drifty-drifty", "greeting").await?,
        "hello"
    );
    let corrected = world.config_maps().get("drifty-drifty").await?;
    assert!(
        !corrected.data.unwrap_or_default().contains_key("extra"),
        "a field of an overridden manager survived drift correction"
    );
    world.wait_for_event("DriftDetected", |_| true).await?;
    world.wait_for_event("DriftCorrected", |_| true).await?;
    Ok(())
}

#[tokio::test]
async fn killed_controller_leaves_pending_upgrade_unlocked_on_restart() -> Result<()> {
    let mut world = World::new("hr-kill").await?;
    let ns = world.ns().to_string();
    world
        .install(
            "locked",
            &ChartSpec::config_maps("locked", "1.0.0"),
            json!({}),
        )
        .await?;
    // Version 2's post-upgrade Job never completes: helm waits mid-upgrade.
    world
        .publish(
            "locked",
            &ChartSpec::config_maps("locked", "2.0.0").template("hook.yaml", ENDLESS_HOOK),
        )
        .await?;
    let storage = ReleaseStorage::new(world.client.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(latest) = storage.latest(&ns, "locked").await?
            && latest.is_pending()
        {
            break;
        }
        if Instant::now() > deadline {
            bail!("no pending upgrade; log:\n{}", world.controller.log());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    world.controller.kill();
    // helm dies with the controller: the release stays locked.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stuck = storage.latest(&ns, "locked").await?.context("stored")?;
    assert_eq!(stuck.release.info.status, "pending-upgrade");

    // A fixed chart is published; the restarted controller unlocks and retries.
    world
        .publish("locked", &ChartSpec::config_maps("locked", "3.0.0"))
        .await?;
    world.controller = Controller::start(&world.kubeconfig, &ns)?;
    let upgraded = world.succeeded("upgrade", "locked", 3, "locked@3.0.0");
    world
        .wait_for("locked", "recovery", |hr| ready_with(hr, &upgraded))
        .await?;
    let revisions = storage.revisions(&ns, "locked").await?;
    assert_eq!(revisions[1].release.info.status, "failed");
    assert_eq!(
        revisions[1].release.info.description,
        "Release unlocked from stale 'pending-upgrade' state"
    );
    let unlocked = format!(
        "Unlocked Helm release {ns}/locked.v2 with chart locked@2.0.0 in pending-upgrade state"
    );
    world
        .wait_for_event("PendingRelease", |message| message == unlocked)
        .await?;
    Ok(())
}

#[tokio::test]
async fn chart_templates_become_helm_charts() -> Result<()> {
    let world = World::new("hr-template").await?;
    let ns = world.ns().to_string();
    world
        .create_release(
            "web",
            json!({
                "interval": "10m",
                "chart": {
                    "metadata": {"labels": {"team": "web"}},
                    "spec": {"chart": "web", "version": "1.x", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
                }
            }),
        )
        .await?;
    let chart_name = format!("{ns}-web");
    let hr = world
        .wait_for("web", "the HelmChart", |hr| {
            has(hr, "Ready", "False", "SourceNotReady")
        })
        .await?;
    assert_eq!(
        hr.status.as_ref().and_then(|s| s.helm_chart.clone()),
        Some(format!("{ns}/{chart_name}"))
    );
    assert_eq!(
        condition(&hr, "Ready").map(|c| c.message.clone()),
        Some(format!(
            "HelmChart '{ns}/{chart_name}' is not ready: latest generation of object has not been reconciled"
        ))
    );
    let charts: Api<api::source::HelmChart> = Api::namespaced(world.client.clone(), &ns);
    let chart = charts.get(&chart_name).await?;
    assert_eq!(chart.spec.chart, "web");
    assert_eq!(chart.spec.version.as_deref(), Some("1.x"));
    assert_eq!(chart.spec.interval.as_str(), "10m");
    let labels = chart.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["team"], "web");
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "web");

    // Playing source-controller: the HelmChart gets its artifact.
    let tgz = world
        .repo
        .add_chart(&ChartSpec::config_maps("web", "1.2.0"))?;
    let bytes = std::fs::read(&tgz)?;
    let file = tgz
        .file_name()
        .and_then(|f| f.to_str())
        .context("file")?
        .to_string();
    let status = json!({"status": {
        "observedGeneration": chart.metadata.generation,
        "artifact": {
            "url": format!("{}/{file}", world.repo.url()),
            "path": format!("helmchart/{ns}/{chart_name}/{file}"),
            "revision": "1.2.0",
            "digest": runtime::artifact::sha256_digest(&bytes),
            "lastUpdateTime": "2026-01-01T00:00:00Z",
        }
    }});
    charts
        .patch_status(&chart_name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    let installed = world.succeeded("install", "web", 1, "web@1.2.0");
    world
        .wait_for("web", "the install", |hr| ready_with(hr, &installed))
        .await?;

    // Deleting the HelmRelease deletes its HelmChart.
    world
        .releases()
        .delete("web", &DeleteParams::default())
        .await?;
    world
        .wait_until_gone(&charts, &chart_name, Duration::from_secs(60))
        .await?;

    // OCIRepository fields in a HelmChart template (the CRD's rules let all
    // but `url` through) have no place in a HelmChart: the release stalls
    // naming them and no HelmChart is made.
    world
        .create_release(
            "misplaced",
            json!({
                "interval": "10m",
                "chart": {"spec": {
                    "chart": "web", "insecure": true, "ref": {"tag": "1.2.0"},
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}
                }}
            }),
        )
        .await?;
    let refused = "chart.spec.ref, chart.spec.insecure cannot be set when chart.kind is 'HelmChart': a HelmChart has no such field";
    let hr = world
        .wait_for("misplaced", "the refusal", |hr| {
            has(hr, "Stalled", "True", "InvalidChartReference")
                && condition(hr, "Ready").is_some_and(|c| c.message == refused)
        })
        .await?;
    assert!(hr.status.and_then(|s| s.helm_chart).is_none());
    assert!(charts.get_opt(&format!("{ns}-misplaced")).await?.is_none());
    Ok(())
}

#[tokio::test]
async fn post_renderers_common_metadata_and_force_requests() -> Result<()> {
    let world = World::new("hr-postrender").await?;
    world
        .install(
            "shaped",
            &ChartSpec::config_maps("shaped", "1.0.0"),
            json!({
                "commonMetadata": {"labels": {"team": "a"}, "annotations": {"owner": "ops"}},
                "postRenderers": [{"kustomize": {"patches": [{
                    "target": {"kind": "ConfigMap"},
                    "patch": "- op: add\n  path: /data/patched\n  value: \"yes\"\n"
                }]}}]
            }),
        )
        .await?;
    let cm = world.config_maps().get("shaped-shaped").await?;
    assert_eq!(cm.data.clone().unwrap_or_default()["patched"], "yes");
    assert_eq!(cm.metadata.labels.clone().unwrap_or_default()["team"], "a");
    assert_eq!(
        cm.metadata.annotations.clone().unwrap_or_default()["owner"],
        "ops"
    );

    // A new post-renderer makes a new release.
    world
        .patch_spec(
            "shaped",
            json!({"postRenderers": [{"kustomize": {"patches": [{
                "target": {"kind": "ConfigMap"},
                "patch": "- op: add\n  path: /data/patched\n  value: \"again\"\n"
            }]}}]}),
        )
        .await?;
    let upgraded = world.succeeded("upgrade", "shaped", 2, "shaped@1.0.0");
    world
        .wait_for("shaped", "the post-renderer upgrade", |hr| {
            ready_with(hr, &upgraded)
        })
        .await?;
    assert_eq!(
        world.config_value("shaped-shaped", "patched").await?,
        "again"
    );

    // forceAt (with the same requestedAt token) upgrades an in-sync release.
    world
        .releases()
        .patch(
            "shaped",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "force-1",
                "reconcile.fluxcd.io/forceAt": "force-1"
            }}})),
        )
        .await?;
    let forced = world.succeeded("upgrade", "shaped", 3, "shaped@1.0.0");
    let hr = world
        .wait_for("shaped", "the forced upgrade", |hr| ready_with(hr, &forced))
        .await?;
    assert_eq!(
        hr.status
            .and_then(|s| s.force_request.last_handled_force_at),
        Some("force-1".to_string())
    );
    Ok(())
}

#[tokio::test]
async fn dependencies_suspension_and_impersonation() -> Result<()> {
    let world = World::new("hr-deps").await?;
    let ns = world.ns().to_string();
    world
        .publish("base", &ChartSpec::config_maps("base", "1.0.0"))
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
                "dependsOn": [{"name": "base"}],
                "serviceAccountName": "deployer"
            }),
        )
        .await?;
    let hr = world
        .wait_for("top", "the dependency wait", |hr| {
            has(hr, "Ready", "False", "DependencyNotReady")
        })
        .await?;
    assert!(
        condition(&hr, "Ready").is_some_and(|c| c.message.contains(&format!("'{ns}/base'"))),
        "{:?}",
        condition(&hr, "Ready")
    );
    world
        .create_release(
            "base",
            json!({"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "base"}}),
        )
        .await?;
    let installed = world.succeeded("install", "base", 1, "base@1.0.0");
    world
        .wait_for("base", "the dependency", |hr| ready_with(hr, &installed))
        .await?;

    // The dependent acts as ServiceAccount `deployer`, which may do nothing yet.
    let hr = world
        .wait_for("top", "the forbidden install", |hr| {
            has(hr, "Ready", "False", "InstallFailed")
        })
        .await?;
    let ready = message(&hr, "Ready");
    assert!(
        ready.contains(&format!("system:serviceaccount:{ns}:deployer"))
            && ready.contains("forbidden"),
        "{ready}"
    );
    let rbac = [
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deployer"},
               "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "deployer"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
               "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": ns}]}),
    ];
    for object in rbac {
        let object: kube::api::DynamicObject = serde_json::from_value(object)?;
        let gvk = kube::api::GroupVersionKind::try_from(object.types.as_ref().context("types")?)?;
        let (resource, _) = kube::discovery::pinned_kind(&world.client, &gvk).await?;
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(world.client.clone(), &ns, &resource);
        api.create(&PostParams::default(), &object).await?;
    }
    let installed = world.succeeded("install", "top", 1, "top@1.0.0");
    world
        .wait_for("top", "the permitted install", |hr| {
            ready_with(hr, &installed)
        })
        .await?;

    // Suspended: spec changes wait until resumed.
    world
        .patch_spec(
            "base",
            json!({"suspend": true, "values": {"data": {"greeting": "later"}}}),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(world.config_value("base-base", "greeting").await?, "hello");
    world.patch_spec("base", json!({"suspend": false})).await?;
    let upgraded = world.succeeded("upgrade", "base", 2, "base@1.0.0");
    world
        .wait_for("base", "the resumed upgrade", |hr| {
            ready_with(hr, &upgraded)
        })
        .await?;
    assert_eq!(world.config_value("base-base", "greeting").await?, "later");
    Ok(())
}

#[tokio::test]
async fn retry_on_failure_retries_without_remediation() -> Result<()> {
    let world = World::new("hr-retry").await?;
    world
        .install(
            "flaky",
            &ChartSpec::config_maps("flaky", "1.0.0"),
            json!({"upgrade": {"strategy": {"name": "RetryOnFailure", "retryInterval": "2s"}}}),
        )
        .await?;
    world
        .publish(
            "flaky",
            &ChartSpec::config_maps("flaky", "2.0.0").template("hook.yaml", FAILING_HOOK),
        )
        .await?;
    let hr = world
        .wait_for("flaky", "repeated upgrade attempts", |hr| {
            hr.status
                .as_ref()
                .and_then(|s| s.upgrade_failures)
                .unwrap_or(0)
                >= 2
        })
        .await?;
    assert!(has(&hr, "Ready", "False", "UpgradeFailed"));
    assert!(
        condition(&hr, "Stalled").is_none(),
        "RetryOnFailure never stalls"
    );
    assert!(condition(&hr, "Remediated").is_none(), "nor remediates");
    world
        .publish("flaky", &ChartSpec::config_maps("flaky", "3.0.0"))
        .await?;
    let hr = world
        .wait_for("flaky", "recovery", |hr| {
            condition(hr, "Ready").is_some_and(|c| {
                c.status == "True" && c.message.ends_with("with chart flaky@3.0.0")
            }) && condition(hr, "Reconciling").is_none()
        })
        .await?;
    assert_eq!(hr.status.and_then(|s| s.upgrade_failures), None);
    Ok(())
}

/// A CRD of the `crds/` directory, at `version` (v1, or v1 and v2).
fn widget_crd(versions: &[&str]) -> String {
    let versions: Vec<String> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "  - name: {v}\n    served: true\n    storage: {}\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-preserve-unknown-fields: true\n",
                i == 0
            )
        })
        .collect();
    format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.{0}.example.com\nspec:\n  group: {0}.example.com\n  names:\n    kind: Widget\n    plural: widgets\n  scope: Namespaced\n  versions:\n{1}",
        "WIDGET_GROUP",
        versions.concat()
    )
}

#[tokio::test]
async fn crds_policies_and_chart_renames() -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let world = World::new("hr-crds").await?;
    let ns = world.ns().to_string();
    // A group per test namespace: CRDs are cluster-wide.
    let group = ns.clone();
    let crd = |versions: &[&str]| widget_crd(versions).replace("WIDGET_GROUP", &group);
    world
        .install(
            "kit",
            &ChartSpec::config_maps("kit", "1.0.0").file("crds/widgets.yaml", &crd(&["v1"])),
            json!({"upgrade": {"crds": "CreateReplace"}}),
        )
        .await?;
    let crds: Api<CustomResourceDefinition> = Api::all(world.client.clone());
    let name = format!("widgets.{group}.example.com");
    let served = |crd: &CustomResourceDefinition| {
        crd.spec
            .versions
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        served(&crds.get(&name).await?),
        ["v1"],
        "helm created the CRD"
    );

    // CreateReplace on upgrade replaces it with the chart's new version.
    world
        .publish(
            "kit",
            &ChartSpec::config_maps("kit", "2.0.0").file("crds/widgets.yaml", &crd(&["v1", "v2"])),
        )
        .await?;
    let upgraded = world.succeeded("upgrade", "kit", 2, "kit@2.0.0");
    world
        .wait_for("kit", "the upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    assert_eq!(served(&crds.get(&name).await?), ["v1", "v2"]);

    // Another chart name: the release is uninstalled and installed anew.
    world
        .publish("kit", &ChartSpec::config_maps("kit2", "1.0.0"))
        .await?;
    let reinstalled = world.succeeded("install", "kit", 1, "kit2@1.0.0");
    world
        .wait_for("kit", "the reinstall", |hr| ready_with(hr, &reinstalled))
        .await?;
    assert!(world.config_maps().get_opt("kit-kit").await?.is_none());
    assert!(world.config_maps().get_opt("kit-kit2").await?.is_some());
    assert!(
        crds.get_opt(&name).await?.is_some(),
        "CRDs are never deleted"
    );
    crds.delete(&name, &DeleteParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn template_errors_and_unreadable_values_are_reported() -> Result<()> {
    let world = World::new("hr-bad-input").await?;
    let ns = world.ns().to_string();

    // A template error: helm's cause in the message, nothing installed.
    world
        .publish(
            "tmpl",
            &ChartSpec::config_maps("tmpl", "1.0.0")
                .template("bad.yaml", "{{ .Values.nope.deeper }}\n"),
        )
        .await?;
    world
        .create_release(
            "tmpl",
            json!({"interval": "10m", "chartRef": {"kind": "OCIRepository", "name": "tmpl"}}),
        )
        .await?;
    let prefix = format!("Helm install failed for release {ns}/tmpl with chart tmpl@1.0.0: ");
    world
        .wait_for("tmpl", "the template failure", |hr| {
            // Released keeps helm's message whether or not Ready moved on
            // to the exhausted retries.
            has(hr, "Released", "False", "InstallFailed")
                && condition(hr, "Released").is_some_and(|c| {
                    c.message.starts_with(&prefix) && c.message.contains("nil pointer evaluating")
                })
        })
        .await?;
    assert!(world.config_maps().get_opt("tmpl-tmpl").await?.is_none());

    // valuesFrom documents that are not values, and a missing key.
    for (name, data) in [
        ("list-values", json!({"values.yaml": "- a\n- b\n"})),
        ("broken-values", json!({"values.yaml": "data: [unclosed\n"})),
        ("other-key", json!({"something.yaml": "data: {}\n"})),
    ] {
        let cm: ConfigMap = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
        )?;
        world
            .config_maps()
            .create(&PostParams::default(), &cm)
            .await?;
    }
    world
        .publish("plain", &ChartSpec::config_maps("plain", "1.0.0"))
        .await?;
    for (release, source, reason) in [
        (
            "listed",
            "list-values",
            "failed to read values data: the document is not a map",
        ),
        ("keyless", "other-key", "key not found"),
    ] {
        world
            .create_release(
                release,
                json!({
                    "interval": "10m",
                    "chartRef": {"kind": "OCIRepository", "name": "plain"},
                    "valuesFrom": [{"kind": "ConfigMap", "name": source}]
                }),
            )
            .await?;
        let expected = format!(
            "could not resolve ConfigMap chart values reference '{ns}/{source}' with key 'values.yaml': {reason}"
        );
        world
            .wait_for(release, "the values error", |hr| {
                has(hr, "Ready", "False", "ValuesError")
                    && condition(hr, "Ready").is_some_and(|c| c.message == expected)
            })
            .await?;
    }
    world
        .create_release(
            "unparsable",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "plain"},
                "valuesFrom": [{"kind": "ConfigMap", "name": "broken-values"}]
            }),
        )
        .await?;
    let prefix = format!(
        "could not resolve ConfigMap chart values reference '{ns}/broken-values' with key 'values.yaml': failed to read values data: "
    );
    world
        .wait_for("unparsable", "the YAML error", |hr| {
            has(hr, "Ready", "False", "ValuesError")
                && condition(hr, "Ready").is_some_and(|c| c.message.starts_with(&prefix))
        })
        .await?;

    // An optional reference to a missing key is skipped.
    world
        .patch_spec(
            "keyless",
            json!({"valuesFrom": [{"kind": "ConfigMap", "name": "other-key", "optional": true}]}),
        )
        .await?;
    let installed = world.succeeded("install", "keyless", 1, "plain@1.0.0");
    world
        .wait_for("keyless", "the install without the optional key", |hr| {
            ready_with(hr, &installed)
        })
        .await?;
    Ok(())
}

/// The controller refuses to start without helm, saying where it looked.
#[test]
fn missing_helm_stops_the_controller_with_a_clear_message() -> Result<()> {
    for (helm_path, path_env, expected) in [
        (
            Some("/nonexistent/helm"),
            None,
            "helm binary not found: /nonexistent/helm does not exist or is not executable (set --helm-path)",
        ),
        (
            None,
            Some("/nonexistent-bin"),
            "helm binary not found: no executable 'helm' on PATH (install helm v4 or set --helm-path)",
        ),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"));
        cmd.args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--log-encoding=console",
        ])
        .env_remove("HELM_PATH")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        if let Some(helm_path) = helm_path {
            cmd.arg(format!("--helm-path={helm_path}"));
        }
        if let Some(path) = path_env {
            cmd.env("PATH", path);
        }
        let mut child = cmd.spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                child.kill()?;
                bail!("helm-controller kept running without helm");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let output = child.wait_with_output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{text}");
        assert!(text.contains(expected), "{text}");
    }
    Ok(())
}

/// A Deployment no kubelet will ever make ready: only `disableWait` lets
/// its release succeed.
const NEVER_READY_DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}-app\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n  template:\n    metadata:\n      labels:\n        app: {{ .Release.Name }}\n    spec:\n      containers:\n      - name: app\n        image: busybox\n";

/// `install.createNamespace` into a new `targetNamespace`, `disableWait`,
/// `maxHistory`, `uninstall.keepHistory`, and what `kubectl get hr` shows.
#[tokio::test]
async fn namespaces_waits_history_limits_and_kept_history() -> Result<()> {
    let world = World::new("hr-options").await?;
    let target = format!("{}-apps", world.ns());
    let release = format!("{target}-opts");
    let chart =
        ChartSpec::config_maps("opts", "1.0.0").template("deployment.yaml", NEVER_READY_DEPLOYMENT);
    world.publish("opts", &chart).await?;
    world
        .create_release(
            "opts",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "opts"},
                "targetNamespace": target,
                "maxHistory": 2,
                "install": {"createNamespace": true, "disableWait": true},
                "upgrade": {"disableWait": true},
                "uninstall": {"keepHistory": true}
            }),
        )
        .await?;
    let message_of = |action: &str, revision: u32| {
        format!(
            "Helm {action} succeeded for release {target}/{release}.v{revision} with chart opts@1.0.0"
        )
    };
    let installed = message_of("install", 1);
    world
        .wait_for("opts", "the install", |hr| ready_with(hr, &installed))
        .await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(world.client.clone());
    assert!(namespaces.get_opt(&target).await?.is_some());
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(world.client.clone(), &target);
    assert!(
        deployments
            .get_opt(&format!("{release}-app"))
            .await?
            .is_some()
    );

    // `kubectl get hr`: Flux's columns, the Ready status and its message.
    let output = std::process::Command::new(e2e::packages::kubectl_kustomize()?)
        .arg("--kubeconfig")
        .arg(&world.kubeconfig)
        .args(["get", "hr", "opts", "-n", world.ns()])
        .output()?;
    let table = String::from_utf8_lossy(&output.stdout);
    let mut lines = table.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "AGE", "READY", "STATUS"], "{table}");
    let row = lines.next().unwrap_or_default();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        (cells.first(), cells.get(2)),
        (Some(&"opts"), Some(&"True")),
        "{table}"
    );
    assert!(row.trim_end().ends_with(&installed), "{table}");

    // Three upgrades; helm keeps the two newest revisions.
    for round in 2..=4u32 {
        world
            .patch_spec(
                "opts",
                json!({"values": {"data": {"round": round.to_string()}}}),
            )
            .await?;
        let upgraded = message_of("upgrade", round);
        world
            .wait_for("opts", "an upgrade", |hr| ready_with(hr, &upgraded))
            .await?;
    }
    let storage = ReleaseStorage::new(world.client.clone());
    let versions: Vec<i64> = storage
        .revisions(&target, &release)
        .await?
        .iter()
        .map(|r| r.release.version)
        .collect();
    assert_eq!(versions, [3, 4]);

    // Deleted with keepHistory: the objects go, the history stays.
    world.delete_and_wait("opts").await?;
    let kept = storage.revisions(&target, &release).await?;
    assert_eq!(
        kept.last()
            .map(|r| (r.release.version, r.release.info.status.as_str())),
        Some((4, "uninstalled"))
    );
    let config_maps: Api<ConfigMap> = Api::namespaced(world.client.clone(), &target);
    assert!(
        config_maps
            .get_opt(&format!("{release}-opts"))
            .await?
            .is_none()
    );
    namespaces.delete(&target, &DeleteParams::default()).await?;
    Ok(())
}

/// A Widget (of `widget_crd`'s group `GROUP`) with no status: only the test
/// writes `status.phase`, so only a CEL expression can judge it.
const WIDGET: &str = "apiVersion: GROUP/v1\nkind: Widget\nmetadata:\n  name: {{ .Release.Name }}-w\nspec:\n  size: 1\n";

#[tokio::test]
async fn health_check_exprs_judge_custom_resources() -> Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let world = World::new("hr-cel").await?;
    let ns = world.ns().to_string();
    let group = format!("{ns}.example.com");
    let chart = ChartSpec::config_maps("gadget", "1.0.0")
        .file(
            "crds/widgets.yaml",
            &widget_crd(&["v1"]).replace("WIDGET_GROUP", &ns),
        )
        .template("widget.yaml", &WIDGET.replace("GROUP", &group));
    world.publish("gadget", &chart).await?;
    let check = |current: &str| {
        json!([{"apiVersion": format!("{group}/v1"), "kind": "Widget",
                "current": current, "failed": "status.phase == 'Failed'"}])
    };
    world
        .create_release(
            "gadget",
            json!({
                "interval": "10m",
                "timeout": "2m",
                "chartRef": {"kind": "OCIRepository", "name": "gadget"},
                "healthCheckExprs": check("status.phase == 'Ready'")
            }),
        )
        .await?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(world.client.clone(), &ns, &resource);
    let deadline = Instant::now() + Duration::from_secs(120);
    // Until helm creates the CRD, the API answers 404 without a Status.
    while widgets.get_opt("gadget-w").await.ok().flatten().is_none() {
        if Instant::now() > deadline {
            bail!(
                "the chart's Widget was never created; log:\n{}",
                world.controller.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // No phase yet: the install waits, not Ready.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let hr = world.releases().get("gadget").await?;
    assert!(
        has(&hr, "Ready", "Unknown", "Progressing"),
        "{:?}",
        condition(&hr, "Ready")
    );
    assert!(condition(&hr, "Released").is_none(), "{:?}", hr.status);

    // Ready by the `current` expression: the install succeeds.
    let set_phase = |phase: &'static str| {
        let widgets = widgets.clone();
        async move {
            widgets
                .patch(
                    "gadget-w",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": phase}})),
                )
                .await
        }
    };
    set_phase("Ready").await?;
    let installed = world.succeeded("install", "gadget", 1, "gadget@1.0.0");
    world
        .wait_for("gadget", "the healthy install", |hr| {
            ready_with(hr, &installed)
        })
        .await?;

    // Failed by the `failed` expression: the upgrade fails at once, the
    // revision is failed in Helm's storage as helm's own wait leaves it.
    set_phase("Failed").await?;
    world
        .patch_spec("gadget", json!({"values": {"data": {"greeting": "again"}}}))
        .await?;
    let hr = world
        .wait_for("gadget", "the unhealthy upgrade", |hr| {
            has(hr, "Released", "False", "UpgradeFailed")
        })
        .await?;
    let unhealthy = format!(
        "resource Widget/{ns}/gadget-w not ready. status: Failed, message: failed expression is true"
    );
    assert_eq!(
        message(&hr, "Released"),
        format!("Helm upgrade failed for release {ns}/gadget with chart gadget@1.0.0: {unhealthy}")
    );
    let status = hr.status.context("status")?;
    let history = status.history.context("history")?;
    assert_eq!(
        (history[0].version, history[0].status.as_str()),
        (2, "failed")
    );
    let latest = ReleaseStorage::new(world.client.clone())
        .latest(&ns, "gadget")
        .await?
        .context("stored")?;
    assert_eq!(
        (latest.release.version, latest.release.info.status.as_str()),
        (2, "failed")
    );
    assert_eq!(
        latest.release.info.description,
        format!("Upgrade \"gadget\" failed: {unhealthy}")
    );

    // The rollback remediating the next failed upgrade waits as well.
    world
        .patch_spec(
            "gadget",
            json!({"upgrade": {"remediation": {"retries": 1}}}),
        )
        .await?;
    let hr = world
        .wait_for("gadget", "the unhealthy rollback", |hr| {
            has(hr, "Remediated", "False", "RollbackFailed")
        })
        .await?;
    let remediated = message(&hr, "Remediated");
    assert!(
        remediated.starts_with(&format!(
            "Helm rollback to previous release {ns}/gadget.v1 with chart gadget@1.0.0 failed: "
        )) && remediated.ends_with(&unhealthy),
        "{remediated}"
    );

    // An expression that does not compile stalls the HelmRelease.
    world
        .patch_spec(
            "gadget",
            json!({"healthCheckExprs": check("status.phase ==")}),
        )
        .await?;
    let hr = world
        .wait_for("gadget", "the invalid expression", |hr| {
            has(hr, "Stalled", "True", "InvalidCELExpression")
        })
        .await?;
    assert!(has(&hr, "Ready", "False", "InvalidCELExpression"));
    assert!(
        message(&hr, "Stalled").contains("\"status.phase ==\""),
        "{}",
        message(&hr, "Stalled")
    );
    let crds: Api<CustomResourceDefinition> = Api::all(world.client.clone());
    crds.delete(&format!("widgets.{group}"), &DeleteParams::default())
        .await?;
    Ok(())
}

/// `chartRef.kind: ExternalArtifact`: with the feature gate, the chart an
/// ExternalArtifact's status names is installed; without it, the release
/// stalls with Flux's access-denied message.
#[tokio::test]
async fn external_artifact_chart_refs_behind_their_feature_gate() -> Result<()> {
    use api::source::{ExternalArtifact, OCIRepository};

    let world = World::with_args("hr-external", &["--feature-gates=ExternalArtifact=true"]).await?;
    let chart = ChartSpec::config_maps("ext", "1.0.0");
    // The chart's artifact, published as a third-party producer would.
    world.publish("ext-src", &chart).await?;
    let published: Api<OCIRepository> = Api::namespaced(world.client.clone(), world.ns());
    let status = published.get("ext-src").await?.status.context("status")?;
    let external: Api<ExternalArtifact> = Api::namespaced(world.client.clone(), world.ns());
    external
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
                "metadata": {"name": "ext"}, "spec": {},
            }))?,
        )
        .await?;
    external
        .patch_status(
            "ext",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
                "artifact": status.artifact, "conditions": status.conditions,
            }})),
        )
        .await?;
    let spec = json!({"interval": "10m", "chartRef": {"kind": "ExternalArtifact", "name": "ext"}});
    world.create_release("ext", spec.clone()).await?;
    let installed = world.succeeded("install", "ext", 1, "ext@1.0.0");
    world
        .wait_for("ext", "the install", |hr| ready_with(hr, &installed))
        .await?;

    let gated = World::new("hr-external-off").await?;
    gated.create_release("ext", spec).await?;
    let denied = format!(
        "can't access 'ExternalArtifact/{}/ext', ExternalArtifact feature gate is disabled",
        gated.ns()
    );
    gated
        .wait_for("ext", "access denied", |hr| {
            has(hr, "Stalled", "True", "AccessDenied")
                && condition(hr, "Ready").is_some_and(|c| c.message == denied)
        })
        .await?;
    Ok(())
}
