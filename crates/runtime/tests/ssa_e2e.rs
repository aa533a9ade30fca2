//! The apply engine against a real API server (etcd, kube-apiserver and
//! kube-controller-manager; no kubelet, so Pods never run).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use runtime::ssa::inventory::{inventory_of, stale_objects};
use runtime::ssa::yaml::objects_from_yaml;
use runtime::ssa::{Action, ApplyOptions, ChangeSet, DriftState, Engine, Error, Owner};

/// A client of the shared control plane and a fresh namespace for one test.
async fn setup(prefix: &str) -> Result<(kube::Client, e2e::cluster::TestNamespace)> {
    let cluster = e2e::cluster::shared().await?;
    let client = cluster.client().await?;
    let namespace = cluster.test_namespace(prefix).await?;
    Ok((client, namespace))
}

fn engine(client: &kube::Client, namespace: &str, force: bool) -> Engine {
    let options = ApplyOptions {
        force,
        poll_interval: Duration::from_millis(500),
        ..ApplyOptions::default()
    };
    Engine::new(
        client.clone(),
        Owner::kustomization("app", namespace),
        options,
    )
}

fn action(changes: &ChangeSet, display: &str) -> Option<Action> {
    changes
        .changes
        .iter()
        .find(|c| c.object.to_string() == display)
        .map(|c| c.action)
}

fn position(changes: &ChangeSet, display: &str) -> Result<usize> {
    changes
        .changes
        .iter()
        .position(|c| c.object.to_string() == display)
        .with_context(|| format!("{display} missing from {changes:?}"))
}

/// Deletes cluster-scoped leftovers of a test, best-effort.
async fn delete_cluster_scoped(client: &kube::Client, crd: &str, namespace: &str) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(crd, &DeleteParams::background()).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let _ = namespaces
        .delete(namespace, &DeleteParams::background())
        .await;
}

/// Each test run gets its own API group (`group`), so runs never share a CRD.
fn app_set(ns: &str, extra_ns: &str, group: &str, greeting: &str) -> Result<Vec<DynamicObject>> {
    Ok(objects_from_yaml(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: settings, namespace: {ns}}}
data: {{greeting: {greeting}}}
---
apiVersion: {group}/v1
kind: Widget
metadata: {{name: gadget, namespace: {ns}}}
spec: {{size: 3}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 0
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.27"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: {ns}}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: in-new-namespace, namespace: {extra_ns}}}
data: {{a: b}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: {extra_ns}}}
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: widgets.{group}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {{type: integer}}
"#
    ))?)
}

#[tokio::test]
async fn apply_creates_in_stages_then_reports_unchanged_and_configured() -> Result<()> {
    let (client, namespace) = setup("ssa-apply").await?;
    let ns = namespace.name();
    let extra_ns = format!("{ns}-extra");
    let group = format!("{ns}.example.ferroflux.dev");
    let crd_name = format!("widgets.{group}");
    let engine = engine(&client, ns, false);

    let outcome = async {
        let changes = engine
            .apply_staged(app_set(ns, &extra_ns, &group, "hello")?)
            .await?;
        let expected = [
            format!("CustomResourceDefinition/{crd_name}"),
            format!("Namespace/{extra_ns}"),
            format!("ConfigMap/{ns}/settings"),
            format!("ConfigMap/{extra_ns}/in-new-namespace"),
            format!("Service/{ns}/web"),
            format!("Deployment/{ns}/web"),
            format!("Widget/{ns}/gadget"),
        ];
        for object in &expected {
            ensure!(
                action(&changes, object) == Some(Action::Created),
                "{object} not created: {changes:?}"
            );
        }
        ensure!(changes.changes.len() == expected.len(), "{changes:?}");
        ensure!(
            position(&changes, &expected[0])? < position(&changes, &expected[6])?,
            "the CRD must be applied before its custom resource: {changes:?}"
        );
        ensure!(changes.has_changes());

        // Owner labels on every object.
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let labels = deployments
            .get("web")
            .await?
            .metadata
            .labels
            .unwrap_or_default();
        ensure!(
            labels
                .get("kustomize.toolkit.fluxcd.io/name")
                .map(String::as_str)
                == Some("app")
        );
        ensure!(
            labels
                .get("kustomize.toolkit.fluxcd.io/namespace")
                .map(String::as_str)
                == Some(ns)
        );

        let again = engine
            .apply_staged(app_set(ns, &extra_ns, &group, "hello")?)
            .await?;
        ensure!(
            again.changes.iter().all(|c| c.action == Action::Unchanged),
            "re-apply must change nothing: {again:?}"
        );
        ensure!(!again.has_changes());

        let changed = engine
            .apply_staged(app_set(ns, &extra_ns, &group, "bonjour")?)
            .await?;
        ensure!(
            action(&changed, &format!("ConfigMap/{ns}/settings")) == Some(Action::Configured),
            "{changed:?}"
        );
        ensure!(
            changed
                .changes
                .iter()
                .filter(|c| c.action == Action::Configured)
                .count()
                == 1,
            "only the ConfigMap changed: {changed:?}"
        );
        ensure!(changed.summary() == format!("ConfigMap/{ns}/settings configured"));
        let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
        let data = configmaps.get("settings").await?.data.unwrap_or_default();
        ensure!(data.get("greeting").map(String::as_str) == Some("bonjour"));
        let inventory = changed.to_inventory();
        ensure!(inventory.entries.len() == expected.len());
        ensure!(
            inventory
                .entries
                .iter()
                .any(|e| e.id == format!("{ns}_web__Service") && e.v == "v1")
        );
        Ok(())
    }
    .await;
    delete_cluster_scoped(&client, &crd_name, &extra_ns).await;
    outcome
}

#[tokio::test]
async fn an_invalid_object_stops_the_whole_set() -> Result<()> {
    let (client, namespace) = setup("ssa-invalid").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);
    let objects = objects_from_yaml(&format!(
        r#"
apiVersion: v1
kind: ConfigMap
metadata: {{name: fine, namespace: {ns}}}
data: {{a: b}}
---
apiVersion: v1
kind: Service
metadata: {{name: broken, namespace: {ns}}}
spec:
  ports: [{{port: 99999}}]
"#
    ))?;
    let err = match engine.apply_staged(objects).await {
        Ok(changes) => bail!("an invalid Service was accepted: {changes:?}"),
        Err(err) => err,
    };
    let Error::Validation { failures } = &err else {
        bail!("expected a validation error, got {err}");
    };
    ensure!(failures.len() == 1, "{failures:?}");
    ensure!(
        failures[0].object == format!("Service/{ns}/broken"),
        "{failures:?}"
    );
    let message = err.to_string();
    ensure!(message.contains("dry-run failed (Invalid)"), "{message}");
    ensure!(
        message.contains("99999"),
        "the API server's reason is kept: {message}"
    );
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    ensure!(
        configmaps.get_opt("fine").await?.is_none(),
        "nothing may be applied when an object is invalid"
    );

    let unknown = objects_from_yaml(&format!(
        "apiVersion: nowhere.example.com/v1\nkind: Ghost\nmetadata: {{name: boo, namespace: {ns}}}\n"
    ))?;
    let err = engine
        .apply_staged(unknown)
        .await
        .err()
        .context("unknown kind accepted")?;
    ensure!(
        err.to_string().contains(&format!("Ghost/{ns}/boo"))
            && err.to_string().contains("no matches for kind"),
        "{err}"
    );
    Ok(())
}

fn job(ns: &str, image: &str, annotations: &str) -> Result<Vec<DynamicObject>> {
    Ok(objects_from_yaml(&format!(
        r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  namespace: {ns}
  annotations: {{{annotations}}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: migrate, image: "{image}"}}]
"#
    ))?)
}

#[tokio::test]
async fn immutable_changes_fail_without_force_and_recreate_with_it() -> Result<()> {
    let (client, namespace) = setup("ssa-force").await?;
    let ns = namespace.name();
    let jobs: Api<Job> = Api::namespaced(client.clone(), ns);

    let plain = engine(&client, ns, false);
    let created = plain.apply_staged(job(ns, "busybox:1", "")?).await?;
    ensure!(action(&created, &format!("Job/{ns}/migrate")) == Some(Action::Created));
    let first_uid = jobs.get("migrate").await?.metadata.uid;

    let err = plain
        .apply_staged(job(ns, "busybox:2", "")?)
        .await
        .err()
        .context("an immutable change was applied without force")?;
    let message = err.to_string();
    ensure!(message.contains(&format!("Job/{ns}/migrate")), "{message}");
    ensure!(message.contains("immutable"), "{message}");
    ensure!(jobs.get("migrate").await?.metadata.uid == first_uid);

    let forced = engine(&client, ns, true);
    let recreated = forced.apply_staged(job(ns, "busybox:2", "")?).await?;
    ensure!(
        action(&recreated, &format!("Job/{ns}/migrate")) == Some(Action::Created),
        "{recreated:?}"
    );
    let live = jobs.get("migrate").await?;
    ensure!(
        live.metadata.uid != first_uid,
        "the Job must have been recreated"
    );
    let image = live
        .spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image);
    ensure!(image.as_deref() == Some("busybox:2"), "{image:?}");

    // The per-object annotation works without the engine-wide option.
    let second_uid = live.metadata.uid;
    let annotated = plain
        .apply_staged(job(
            ns,
            "busybox:3",
            r#""kustomize.toolkit.fluxcd.io/force": "Enabled""#,
        )?)
        .await?;
    ensure!(
        action(&annotated, &format!("Job/{ns}/migrate")) == Some(Action::Created),
        "{annotated:?}"
    );
    ensure!(jobs.get("migrate").await?.metadata.uid != second_uid);
    Ok(())
}

fn configmap(ns: &str, name: &str, value: &str, annotations: &str) -> Result<Vec<DynamicObject>> {
    Ok(objects_from_yaml(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: {ns}, annotations: {{{annotations}}}}}\ndata: {{value: \"{value}\"}}\n"
    ))?)
}

async fn configmap_value(client: &kube::Client, ns: &str, name: &str) -> Result<Option<String>> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    Ok(api
        .get_opt(name)
        .await?
        .and_then(|cm| cm.data)
        .and_then(|data| data.get("value").cloned()))
}

#[tokio::test]
async fn annotations_if_not_present_and_reconcile_disabled_are_honoured() -> Result<()> {
    let (client, namespace) = setup("ssa-annotations").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);
    let once = r#""kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent""#;

    let first = engine
        .apply_staged(configmap(ns, "seed", "1", once)?)
        .await?;
    ensure!(action(&first, &format!("ConfigMap/{ns}/seed")) == Some(Action::Created));
    let second = engine
        .apply_staged(configmap(ns, "seed", "2", once)?)
        .await?;
    ensure!(
        action(&second, &format!("ConfigMap/{ns}/seed")) == Some(Action::Skipped),
        "{second:?}"
    );
    ensure!(configmap_value(&client, ns, "seed").await?.as_deref() == Some("1"));
    ensure!(
        second.to_inventory().entries.len() == 1,
        "skipped objects stay in the inventory"
    );

    let disabled = r#""kustomize.toolkit.fluxcd.io/reconcile": "disabled""#;
    let skipped = engine
        .apply_staged(configmap(ns, "hands-off", "1", disabled)?)
        .await?;
    ensure!(action(&skipped, &format!("ConfigMap/{ns}/hands-off")) == Some(Action::Skipped));
    ensure!(configmap_value(&client, ns, "hands-off").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn prune_deletes_only_stale_objects_this_owner_labelled() -> Result<()> {
    let (client, namespace) = setup("ssa-prune").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);

    let mut set = configmap(ns, "kept", "1", "")?;
    set.extend(configmap(ns, "stale", "1", "")?);
    set.extend(configmap(
        ns,
        "protected",
        "1",
        r#""kustomize.toolkit.fluxcd.io/prune": "disabled""#,
    )?);
    let old = engine.apply_staged(set).await?.to_inventory();

    // An object nobody labelled, whose name an inventory lists (e.g. it was
    // replaced by hand): prune must leave it alone.
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    configmaps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("foreign".to_string()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await?;
    let mut old = old;
    let foreign = runtime::ssa::ObjectRef {
        group: String::new(),
        version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        namespace: ns.to_string(),
        name: "foreign".to_string(),
    };
    let gone = runtime::ssa::ObjectRef {
        name: "already-gone".to_string(),
        ..foreign.clone()
    };
    runtime::ssa::inventory::merge_into(&mut old, &[foreign.clone(), gone.clone()]);

    let new = engine.apply_staged(configmap(ns, "kept", "1", "")?).await?;
    let new_inventory = new.to_inventory();
    let stale = stale_objects(&old, &new_inventory)?;
    ensure!(stale.len() == 4, "{stale:?}");
    let result = engine.prune(&stale).await;
    ensure!(result.failed.is_empty(), "{result:?}");
    let deleted: Vec<String> = result.deleted.iter().map(|o| o.name.clone()).collect();
    ensure!(
        deleted.contains(&"stale".to_string()) && deleted.contains(&"already-gone".to_string()),
        "{result:?}"
    );
    let skipped: Vec<String> = result.skipped.iter().map(|(o, _)| o.name.clone()).collect();
    ensure!(
        skipped.contains(&"foreign".to_string()) && skipped.contains(&"protected".to_string()),
        "{result:?}"
    );

    ensure!(
        configmaps.get_opt("foreign").await?.is_some(),
        "unlabelled object deleted"
    );
    ensure!(
        configmaps.get_opt("protected").await?.is_some(),
        "prune: disabled ignored"
    );
    ensure!(configmaps.get_opt("kept").await?.is_some());
    ensure!(
        configmaps.get_opt("stale").await?.is_none(),
        "stale object not pruned"
    );
    ensure!(inventory_of(new.applied().iter()).entries.len() == 1);
    Ok(())
}

fn deployment(ns: &str, name: &str, replicas: u32) -> Result<Vec<DynamicObject>> {
    Ok(objects_from_yaml(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {ns}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "nginx:1.27"}}]
"#
    ))?)
}

#[tokio::test]
async fn a_scaled_to_zero_deployment_is_healthy() -> Result<()> {
    let (client, namespace) = setup("ssa-health").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);
    let changes = engine.apply_staged(deployment(ns, "idle", 0)?).await?;
    engine
        .wait_for_health(&changes.applied(), Duration::from_secs(60))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_deployment_that_cannot_become_ready_times_out_by_name() -> Result<()> {
    let (client, namespace) = setup("ssa-unhealthy").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);
    let changes = engine.apply_staged(deployment(ns, "stuck", 1)?).await?;
    let started = std::time::Instant::now();
    let err = engine
        .wait_for_health(&changes.applied(), Duration::from_secs(6))
        .await
        .err()
        .context("a Deployment without a kubelet became healthy")?;
    let elapsed = started.elapsed();
    ensure!(
        elapsed >= Duration::from_secs(6) && elapsed < Duration::from_secs(20),
        "{elapsed:?}"
    );
    let message = err.to_string();
    ensure!(message.contains("timeout waiting for"), "{message}");
    ensure!(
        message.contains(&format!("Deployment/{ns}/stuck status: 'InProgress'")),
        "{message}"
    );
    Ok(())
}

#[tokio::test]
async fn drift_is_detected_and_corrected_by_reapplying() -> Result<()> {
    let (client, namespace) = setup("ssa-drift").await?;
    let ns = namespace.name();
    let engine = Engine::new(
        client.clone(),
        Owner::helm_release("app", ns),
        ApplyOptions::default(),
    );
    let desired = configmap(ns, "values", "1", "")?;
    engine.apply_staged(desired.clone()).await?;
    ensure!(
        engine.detect_drift(&desired).await?.is_empty(),
        "no drift right after apply"
    );

    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    configmaps
        .patch(
            "values",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"value": "edited by hand"}})),
        )
        .await?;
    let drift = engine.detect_drift(&desired).await?;
    ensure!(drift.len() == 1, "{drift:?}");
    ensure!(
        drift[0].state
            == DriftState::Modified {
                paths: vec!["/data/value".to_string()]
            },
        "{drift:?}"
    );
    ensure!(drift[0].object.to_string() == format!("ConfigMap/{ns}/values"));
    let labels = configmaps
        .get("values")
        .await?
        .metadata
        .labels
        .unwrap_or_default();
    ensure!(
        labels.contains_key("helm.toolkit.fluxcd.io/name"),
        "{labels:?}"
    );

    let corrected = engine.apply_staged(desired.clone()).await?;
    ensure!(action(&corrected, &format!("ConfigMap/{ns}/values")) == Some(Action::Configured));
    ensure!(configmap_value(&client, ns, "values").await?.as_deref() == Some("1"));
    ensure!(engine.detect_drift(&desired).await?.is_empty());

    configmaps
        .delete("values", &DeleteParams::default())
        .await?;
    let missing = engine.detect_drift(&desired).await?;
    ensure!(
        missing.len() == 1 && missing[0].state == DriftState::Missing,
        "{missing:?}"
    );
    Ok(())
}

#[tokio::test]
async fn fields_kubectl_set_are_taken_over_unless_merge() -> Result<()> {
    let (client, namespace) = setup("ssa-takeover").await?;
    let ns = namespace.name();
    let engine = engine(&client, ns, false);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let by_kubectl = |name: &str| ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            annotations: Some(
                [(
                    "kubectl.kubernetes.io/last-applied-configuration".to_string(),
                    "{}".to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        data: Some(
            [
                ("value".to_string(), "1".to_string()),
                ("old".to_string(), "x".to_string()),
            ]
            .into(),
        ),
        ..ConfigMap::default()
    };
    let kubectl = PostParams {
        field_manager: Some("kubectl-client-side-apply".to_string()),
        ..PostParams::default()
    };
    configmaps.create(&kubectl, &by_kubectl("adopted")).await?;
    configmaps.create(&kubectl, &by_kubectl("merged")).await?;

    // The manifest no longer has `old`: once kubectl's fields are taken
    // over, applying removes it.
    let changes = engine
        .apply_staged(configmap(ns, "adopted", "1", "")?)
        .await?;
    ensure!(
        action(&changes, &format!("ConfigMap/{ns}/adopted")) == Some(Action::Configured),
        "{changes:?}"
    );
    let adopted = configmaps.get("adopted").await?;
    let data = adopted.data.unwrap_or_default();
    ensure!(!data.contains_key("old"), "{data:?}");
    let annotations = adopted.metadata.annotations.unwrap_or_default();
    ensure!(
        !annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration"),
        "{annotations:?}"
    );
    let again = engine
        .apply_staged(configmap(ns, "adopted", "1", "")?)
        .await?;
    ensure!(!again.has_changes(), "{again:?}");

    // `ssa: Merge` keeps what other managers set.
    let merge = r#""kustomize.toolkit.fluxcd.io/ssa": "Merge""#;
    engine
        .apply_staged(configmap(ns, "merged", "1", merge)?)
        .await?;
    let merged = configmaps.get("merged").await?.data.unwrap_or_default();
    ensure!(
        merged.get("old").map(String::as_str) == Some("x"),
        "{merged:?}"
    );
    Ok(())
}

#[tokio::test]
async fn custom_resources_use_cel_checks_and_fail_fast() -> Result<()> {
    let (client, namespace) = setup("ssa-cel").await?;
    let ns = namespace.name();
    let group = format!("{ns}.example.ferroflux.dev");
    let crd_name = format!("gizmos.{group}");
    let engine = engine(&client, ns, false);
    let outcome = async {
        let objects = objects_from_yaml(&format!(
            r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: {crd_name}}}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Gizmo, plural: gizmos, singular: gizmo, listKind: GizmoList}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: {group}/v1
kind: Gizmo
metadata: {{name: healthy, namespace: {ns}}}
---
apiVersion: {group}/v1
kind: Gizmo
metadata: {{name: broken, namespace: {ns}}}
"#
        ))?;
        let changes = engine.apply_staged(objects).await?;
        let gizmo = |name: &str| {
            changes
                .changes
                .iter()
                .find(|c| c.object.kind == "Gizmo" && c.object.name == name)
                .map(|c| c.object.clone())
                .context("gizmo missing from the change set")
        };
        let (healthy, broken) = (gizmo("healthy")?, gizmo("broken")?);
        let check = api::meta::CustomHealthCheck {
            api_version: format!("{group}/v1"),
            kind: Some("Gizmo".to_string()),
            current: "status.phase == 'Running'".to_string(),
            in_progress: None,
            failed: Some("status.phase == 'Broken'".to_string()),
        };
        let options = runtime::ssa::HealthOptions {
            timeout: Duration::from_secs(3),
            poll_interval: Duration::from_millis(500),
            checks: vec![check],
            ..runtime::ssa::HealthOptions::default()
        };
        // No status yet: the expressions cannot be evaluated, so it waits.
        let err = engine
            .wait_for_health_with(std::slice::from_ref(&healthy), &options)
            .await
            .err()
            .context("a gizmo without status was healthy")?;
        ensure!(err.to_string().contains("timeout waiting for"), "{err}");

        let gizmos: Api<DynamicObject> = Api::namespaced_with(
            client.clone(),
            ns,
            &kube::api::ApiResource {
                group: group.clone(),
                version: "v1".to_string(),
                api_version: format!("{group}/v1"),
                kind: "Gizmo".to_string(),
                plural: "gizmos".to_string(),
            },
        );
        let set_phase =
            |phase: &'static str| Patch::Merge(serde_json::json!({"status": {"phase": phase}}));
        gizmos
            .patch("healthy", &PatchParams::default(), &set_phase("Running"))
            .await?;
        gizmos
            .patch("broken", &PatchParams::default(), &set_phase("Broken"))
            .await?;
        engine
            .wait_for_health_with(std::slice::from_ref(&healthy), &options)
            .await?;

        let started = std::time::Instant::now();
        let long = runtime::ssa::HealthOptions {
            timeout: Duration::from_secs(60),
            ..options.clone()
        };
        let err = engine
            .wait_for_health_with(&[healthy, broken], &long)
            .await
            .err()
            .context("a broken gizmo was healthy")?;
        ensure!(started.elapsed() < Duration::from_secs(10), "no fail-fast");
        let message = err.to_string();
        ensure!(message.contains("failed early"), "{message}");
        ensure!(
            message.contains(&format!("Gizmo/{ns}/broken status: 'Failed'")),
            "{message}"
        );
        ensure!(!message.contains("healthy"), "{message}");
        Ok(())
    }
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds.delete(&crd_name, &DeleteParams::background()).await;
    outcome
}
