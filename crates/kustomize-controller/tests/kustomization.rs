//! Kustomization end to end: the real source-controller and
//! kustomize-controller binaries against the real control plane and Git
//! server.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use anyhow::{Context, Result, ensure};
use api::kustomize::Kustomization;
use fixture::{Env, condition, sops_fixture};
use kube::api::{Patch, PatchParams};
use serde_json::json;

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n";
const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: app\nspec:\n  ports:\n  - port: 80\n  selector:\n    app: app\n";
const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: app\n  template:\n    metadata:\n      labels:\n        app: app\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n";

fn label<'a>(object: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

/// The ids of the inventory `status` records, sorted.
fn sorted_inventory(status: &api::kustomize::KustomizationStatus) -> Result<Vec<String>> {
    let inventory = status.inventory.as_ref().context("inventory")?;
    let mut ids: Vec<String> = inventory.entries.iter().map(|e| e.id.clone()).collect();
    ids.sort();
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_updates_and_prunes_only_owned_objects() -> Result<()> {
    let env = Env::start(
        "ks-apply",
        &[
            ("deploy/configmap.yaml", CONFIGMAP),
            ("deploy/service.yaml", SERVICE),
            ("deploy/deployment.yaml", DEPLOYMENT),
            ("README.md", "not a manifest\n"),
        ],
        &[],
    )
    .await?;
    env.kustomization("app", json!({"path": "./deploy", "wait": true}))
        .await?;
    let first = env.head()?;
    let ks = env.ready("app", &first).await?;
    let status = ks.status.clone().context("status")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(ready.reason == "ReconciliationSucceeded", "{ready:?}");
    ensure!(
        ready.message == format!("Applied revision: {first}"),
        "{ready:?}"
    );
    let healthy = condition(status.conditions.as_ref(), "Healthy").context("Healthy")?;
    ensure!(
        healthy.status == "True" && healthy.reason == "Succeeded",
        "{healthy:?}"
    );
    ensure!(status.last_attempted_revision.as_deref() == Some(first.as_str()));
    let ids = sorted_inventory(&status)?;
    let ns = env.ns();
    ensure!(
        ids == [
            format!("{ns}_app-config__ConfigMap"),
            format!("{ns}_app__Service"),
            format!("{ns}_app_apps_Deployment"),
        ],
        "{ids:?}"
    );
    let history = status.history.context("history")?;
    ensure!(history.len() == 1 && history[0].last_reconciled_status == "ReconciliationSucceeded");
    let configmap = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("configmap")?;
    ensure!(label(&configmap, "kustomize.toolkit.fluxcd.io/name") == Some("app"));
    ensure!(label(&configmap, "kustomize.toolkit.fluxcd.io/namespace") == Some(ns));

    // Someone else takes the Deployment over: without the owner labels it
    // must survive being removed from the source.
    env.api::<k8s_openapi::api::apps::v1::Deployment>()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {
                "kustomize.toolkit.fluxcd.io/name": null, "kustomize.toolkit.fluxcd.io/namespace": null}}})),
        )
        .await?;

    let second = env
        .commit(
            &[(
                "deploy/configmap.yaml",
                &CONFIGMAP.replace("hello", "goodbye"),
            )],
            &["deploy/service.yaml", "deploy/deployment.yaml"],
            "update config, drop service and deployment",
        )
        .await?;
    let ks = env.ready("app", &second).await?;
    let configmap = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("configmap")?;
    ensure!(configmap["data"]["greeting"] == "goodbye", "{configmap}");
    ensure!(
        env.get("v1", "Service", "app").await?.is_none(),
        "the Service was not pruned"
    );
    ensure!(
        env.get("apps/v1", "Deployment", "app").await?.is_some(),
        "the unowned Deployment was pruned"
    );
    let entries = ks
        .status
        .context("status")?
        .inventory
        .context("inventory")?
        .entries;
    ensure!(entries.len() == 1, "{entries:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_corrected_on_request() -> Result<()> {
    let env = Env::start("ks-drift", &[("configmap.yaml", CONFIGMAP)], &[]).await?;
    env.kustomization("app", json!({})).await?;
    let head = env.head()?;
    env.ready("app", &head).await?;
    env.api::<k8s_openapi::api::core::v1::ConfigMap>()
        .patch(
            "app-config",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"greeting": "edited by hand", "extra": "x"}})),
        )
        .await?;
    let token = env.request_reconcile::<Kustomization>("app").await?;
    // The request is recorded as handled when the reconciliation starts (as
    // in Flux); it is over once Ready is back and Reconciling gone.
    env.wait_for::<Kustomization, _>("app", |ks| {
        let status = ks.status.as_ref()?;
        let handled = status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str());
        let conditions = status.conditions.as_ref();
        let ready = condition(conditions, "Ready").is_some_and(|c| c.status == "True");
        let reconciling = condition(conditions, "Reconciling").is_some();
        (handled && ready && !reconciling).then_some(())
    })
    .await?;
    let configmap = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("configmap")?;
    ensure!(configmap["data"]["greeting"] == "hello", "{configmap}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn substitutes_variables_and_decrypts_sops_secrets() -> Result<()> {
    let env = Env::start(
        "ks-postbuild",
        &[
            (
                "app/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${greeting}\n  region: ${region:=eu-west-1}\n  shared: ${from_configmap}\n  literal: $${not_a_var}\n",
            ),
            (
                "app/replicas.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: scaled\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels:\n      app: scaled\n  template:\n    metadata:\n      labels:\n        app: scaled\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n",
            ),
            ("app/secret.yaml", &sops_fixture("encrypted/secret.yaml")),
        ],
        &[],
    )
    .await?;
    env.secret(
        "sops-age",
        &[("identity.agekey", &sops_fixture("age.agekey"))],
    )
    .await?;
    env.apply(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "vars"},
        "data": {"from_configmap": "shared-value", "replicas": "1"}}),
    )
    .await?;
    env.kustomization(
        "app",
        json!({
            "path": "./app",
            "postBuild": {"substitute": {"greeting": "hi", "replicas": "0"},
                "substituteFrom": [{"kind": "ConfigMap", "name": "vars"}, {"kind": "Secret", "name": "absent", "optional": true}]},
            "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}},
        }),
    )
    .await?;
    env.ready("app", &env.head()?).await?;
    let settings = env
        .get("v1", "ConfigMap", "settings")
        .await?
        .context("configmap")?;
    ensure!(
        settings["data"]
            == json!({"greeting": "hi", "region": "eu-west-1", "shared": "shared-value", "literal": "${not_a_var}"}),
        "{settings}"
    );
    let deployment = env
        .get("apps/v1", "Deployment", "scaled")
        .await?
        .context("deployment")?;
    ensure!(
        deployment["spec"]["replicas"] == 0,
        "inline variables override substituteFrom: {deployment}"
    );
    let secret = env
        .get("v1", "Secret", "app-credentials")
        .await?
        .context("secret")?;
    let password = secret["data"]["password"].as_str().context("password")?;
    use base64::Engine as _;
    let password = base64::engine::general_purpose::STANDARD.decode(password)?;
    ensure!(password == b"s3cr3t-p@ss:word", "{secret}");
    ensure!(secret["metadata"]["namespace"] == env.ns());
    ensure!(secret.get("sops").is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_report_flux_reasons_and_keep_what_was_applied() -> Result<()> {
    let env = Env::start(
        "ks-fail",
        &[
            ("good/configmap.yaml", CONFIGMAP),
            ("vars/configmap.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: v\ndata:\n  a: ${undefined_var}\n"),
            ("sops/secret.yaml", &sops_fixture("encrypted/secret-other-key.yaml")),
        ],
        &[],
    )
    .await?;
    let head = env.head()?;
    env.secret(
        "sops-age",
        &[("identity.agekey", &sops_fixture("age.agekey"))],
    )
    .await?;
    env.kustomization("missing-path", json!({"path": "./nope"}))
        .await?;
    env.kustomization(
        "undefined-var",
        json!({"path": "./vars", "postBuild": {"substitute": {"defined": "x"}}}),
    )
    .await?;
    env.kustomization("sops-no-decryption", json!({"path": "./sops"}))
        .await?;
    env.kustomization(
        "sops-wrong-key",
        json!({"path": "./sops", "decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}),
    )
    .await?;
    env.kustomization(
        "missing-source",
        json!({"sourceRef": {"kind": "GitRepository", "name": "nope"}}),
    )
    .await?;
    env.kustomization("good", json!({"path": "./good"})).await?;

    let (_, message) = env
        .failing_with("missing-path", "ArtifactFailed", "kustomization path")
        .await?;
    ensure!(
        message.starts_with("kustomization path not found"),
        "{message}"
    );
    let (_, message) = env.failing("undefined-var", "BuildFailed").await?;
    ensure!(
        message.contains("variable not set (strict mode): \"undefined_var\""),
        "{message}"
    );
    let (_, message) = env.failing("sops-no-decryption", "BuildFailed").await?;
    ensure!(
        message.contains("is SOPS encrypted, configuring decryption is required"),
        "{message}"
    );
    let (_, message) = env.failing("sops-wrong-key", "BuildFailed").await?;
    let other = sops_fixture("other.agekey");
    let recipient = other
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .context("recipient")?;
    ensure!(message.contains(recipient), "{message}");
    let (ks, message) = env
        .failing_with("missing-source", "ArtifactFailed", "Source 'GitRepository/")
        .await?;
    ensure!(
        message.contains(&format!(
            "Source 'GitRepository/{}/nope' not found",
            env.ns()
        )),
        "{message}"
    );
    ensure!(ks.status.and_then(|s| s.last_attempted_revision).is_none());

    // An object the API server rejects: nothing of the new revision is applied.
    env.ready("good", &head).await?;
    let bad_service = "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 99999\n";
    let second = env
        .commit(
            &[
                (
                    "good/configmap.yaml",
                    &CONFIGMAP.replace("hello", "changed"),
                ),
                ("good/service.yaml", bad_service),
            ],
            &[],
            "invalid service",
        )
        .await?;
    let (ks, message) = env.failing("good", "ReconciliationFailed").await?;
    ensure!(
        message.contains("Service/") && message.contains("broken"),
        "{message}"
    );
    let status = ks.status.context("status")?;
    ensure!(status.last_attempted_revision.as_deref() == Some(second.as_str()));
    ensure!(status.last_applied_revision.as_deref() == Some(head.as_str()));
    let configmap = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("configmap")?;
    ensure!(
        configmap["data"]["greeting"] == "hello",
        "a half-applied revision: {configmap}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn depends_on_waits_for_the_dependency() -> Result<()> {
    let env = Env::start(
        "ks-deps",
        &[
            ("infra/configmap.yaml", CONFIGMAP),
            ("apps/service.yaml", SERVICE),
        ],
        &[],
    )
    .await?;
    let head = env.head()?;
    env.kustomization("infra", json!({"path": "./infra", "suspend": true}))
        .await?;
    env.kustomization(
        "apps",
        json!({"path": "./apps", "dependsOn": [{"name": "infra"}]}),
    )
    .await?;
    let (_, message) = env.failing("apps", "DependencyNotReady").await?;
    ensure!(
        message == format!("dependency '{}/infra' is not ready", env.ns()),
        "{message}"
    );
    ensure!(env.get("v1", "Service", "app").await?.is_none());
    env.patch_kustomization("infra", json!({"suspend": false}))
        .await?;
    env.ready("infra", &head).await?;
    env.ready("apps", &head).await?;
    ensure!(env.get("v1", "Service", "app").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn impersonation_is_denied_without_rbac_and_allowed_with_it() -> Result<()> {
    let env = Env::start("ks-sa", &[("configmap.yaml", CONFIGMAP)], &[]).await?;
    env.apply(
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}}),
    )
    .await?;
    env.kustomization("app", json!({"serviceAccountName": "deployer"}))
        .await?;
    let (_, message) = env.failing("app", "ReconciliationFailed").await?;
    ensure!(message.contains("forbidden"), "{message}");
    ensure!(
        message.contains(&format!("system:serviceaccount:{}:deployer", env.ns())),
        "{message}"
    );
    ensure!(env.get("v1", "ConfigMap", "app-config").await?.is_none());

    env.apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deployer"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}))
        .await?;
    env.apply(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "deployer"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": env.ns()}]}))
        .await?;
    env.request_reconcile::<Kustomization>("app").await?;
    env.ready("app", &env.head()?).await?;
    ensure!(env.get("v1", "ConfigMap", "app-config").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_then_restart_converges_and_deletion_prunes() -> Result<()> {
    let mut env = Env::start(
        "ks-kill",
        &[
            ("configmap.yaml", CONFIGMAP),
            ("service.yaml", SERVICE),
            ("deployment.yaml", DEPLOYMENT),
        ],
        &[],
    )
    .await?;
    env.kustomization("app", json!({"wait": true})).await?;
    // Kill the controller while it works on the first reconciliation.
    env.wait_for::<Kustomization, _>("app", |ks| {
        ks.metadata
            .finalizers
            .as_ref()
            .filter(|f| !f.is_empty())
            .map(|_| ())
    })
    .await?;
    env.kill_kustomize_controller();
    env.start_kustomize_controller()?;
    let head = env.head()?;
    let ks = env.ready("app", &head).await?;
    ensure!(
        ks.status
            .context("status")?
            .inventory
            .context("inventory")?
            .entries
            .len()
            == 3
    );

    // And once more while already converged: nothing is lost or duplicated.
    env.kill_kustomize_controller();
    env.start_kustomize_controller()?;
    let token = env.request_reconcile::<Kustomization>("app").await?;
    let ks = env
        .wait_for::<Kustomization, _>("app", |ks| {
            let status = ks.status.as_ref()?;
            (status
                .reconcile_request
                .last_handled_reconcile_at
                .as_deref()
                == Some(token.as_str())
                && condition(status.conditions.as_ref(), "Ready")?.status == "True")
                .then(|| ks.clone())
        })
        .await?;
    ensure!(
        ks.status
            .context("status")?
            .inventory
            .context("inventory")?
            .entries
            .len()
            == 3
    );

    // Deleting the Kustomization (prune: true, MirrorPrune) deletes its objects.
    env.delete_and_wait("app").await?;
    ensure!(
        env.get("v1", "ConfigMap", "app-config").await?.is_none(),
        "ConfigMap left behind"
    );
    ensure!(
        env.get("v1", "Service", "app").await?.is_none(),
        "Service left behind"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_health_check_fails_fast_with_the_object_named() -> Result<()> {
    // No node runs the pod, and a one-second progress deadline makes the
    // Deployment controller declare the rollout failed.
    let stuck = DEPLOYMENT
        .replace("replicas: 0", "replicas: 1\n  progressDeadlineSeconds: 1")
        .replace("name: app\nspec", "name: stuck\nspec");
    let env = Env::start(
        "ks-health",
        &[("configmap.yaml", CONFIGMAP), ("deployment.yaml", &stuck)],
        &[],
    )
    .await?;
    env.kustomization("app", json!({"wait": true, "timeout": "2m"}))
        .await?;
    let (ks, message) = env.failing("app", "HealthCheckFailed").await?;
    ensure!(
        message.contains("Deployment/") && message.contains("stuck"),
        "{message}"
    );
    let status = ks.status.context("status")?;
    let healthy = condition(status.conditions.as_ref(), "Healthy").context("Healthy")?;
    ensure!(
        healthy.status == "False" && healthy.reason == "HealthCheckFailed",
        "{healthy:?}"
    );
    // Applied, but not healthy: the revision is not recorded as applied.
    ensure!(status.last_applied_revision.is_none());
    ensure!(status.history.context("history")?[0].last_reconciled_status == "HealthCheckFailed");
    ensure!(env.get("v1", "ConfigMap", "app-config").await?.is_some());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_namespace_sources_are_refused_when_disabled() -> Result<()> {
    let env = Env::start(
        "ks-xns",
        &[("configmap.yaml", CONFIGMAP)],
        &["--no-cross-namespace-refs=true"],
    )
    .await?;
    env.kustomization(
        "app",
        json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux-system"}}),
    )
    .await?;
    let ks = env
        .wait_for::<Kustomization, _>("app", |ks| {
            let status = ks.status.as_ref()?;
            condition(status.conditions.as_ref(), "Stalled").map(|_| ks.clone())
        })
        .await?;
    let status = ks.status.context("status")?;
    let stalled = condition(status.conditions.as_ref(), "Stalled").context("Stalled")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(
        stalled.reason == "AccessDenied" && ready.status == "False",
        "{stalled:?} {ready:?}"
    );
    ensure!(
        ready
            .message
            .contains("cross-namespace references have been blocked"),
        "{ready:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn labelled_configs_trigger_the_kustomizations_using_them() -> Result<()> {
    let env = Env::start(
        "ks-config-watch",
        &[(
            "configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: ${greeting}\n",
        )],
        &[],
    )
    .await?;
    let vars = |greeting: &str| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "vars", "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
            "data": {"greeting": greeting}})
    };
    env.apply(vars("hello")).await?;
    // An hour's interval: only the watch can bring the change in quickly.
    env.kustomization(
        "app",
        json!({"interval": "1h",
            "postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "vars"}]}}),
    )
    .await?;
    env.ready("app", &env.head()?).await?;
    let greeting = |object: Option<serde_json::Value>| {
        object.and_then(|o| o["data"]["greeting"].as_str().map(str::to_owned))
    };
    ensure!(greeting(env.get("v1", "ConfigMap", "settings").await?).as_deref() == Some("hello"));

    env.apply(vars("bonjour")).await?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while greeting(env.get("v1", "ConfigMap", "settings").await?).as_deref() != Some("bonjour") {
        ensure!(
            std::time::Instant::now() < deadline,
            "the labelled ConfigMap's change was not applied\n{}",
            env.logs(40)
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

/// A kustomization listing a base in another repository (read anonymously
/// over HTTP, as kustomize does: never with the source's credentials): built
/// and applied by default; refused by name, with nothing applied, under
/// `--no-remote-bases=true`.
#[tokio::test(flavor = "multi_thread")]
async fn remote_bases_are_fetched_unless_refused() -> Result<()> {
    let git = fixture::git_server().await?;
    let remote = "ks-remote-bases-upstream";
    let remote_config = CONFIGMAP.replace("app-config", "remote-config");
    tokio::task::spawn_blocking(move || {
        git.create_repo(
            remote,
            [
                ("base/kustomization.yaml", "resources:\n- configmap.yaml\n"),
                ("base/configmap.yaml", remote_config.as_str()),
            ],
        )
    })
    .await??;
    let url = format!("{}//base?ref=main", git.http_anonymous_url(remote));
    let overlay = format!("resources:\n- {url}\n- configmap.yaml\n");
    // A remote that accepts connections and never answers, with a URL
    // timeout longer than the Kustomization's.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let hanging = format!(
        "resources:\n- http://127.0.0.1:{}/org/repo.git//base?timeout=10m\n",
        silent.local_addr()?.port()
    );
    let files = [
        ("deploy/kustomization.yaml", overlay.as_str()),
        ("deploy/configmap.yaml", CONFIGMAP),
        ("hang/kustomization.yaml", hanging.as_str()),
    ];

    let env = Env::start("ks-remote", &files, &[]).await?;
    env.kustomization("app", json!({"path": "./deploy"}))
        .await?;
    env.kustomization("hangs", json!({"path": "./hang", "timeout": "30s"}))
        .await?;
    env.ready("app", &env.head()?).await?;
    let fetched = env.get("v1", "ConfigMap", "remote-config").await?;
    ensure!(
        fetched.is_some(),
        "the remote base's ConfigMap was not applied"
    );
    let (_, message) = env
        .failing_with("hangs", "BuildFailed", "timed out")
        .await?;
    ensure!(message.contains("/org/repo.git//base"), "{message}");

    let refused = Env::start("ks-remote-refused", &files, &["--no-remote-bases=true"]).await?;
    refused
        .kustomization("app", json!({"path": "./deploy"}))
        .await?;
    let (_, message) = refused
        .failing_with("app", "BuildFailed", "--no-remote-bases=true")
        .await?;
    ensure!(message.contains(&url), "{message}");
    ensure!(
        refused
            .get("v1", "ConfigMap", "app-config")
            .await?
            .is_none(),
        "a refused build applied its local objects"
    );
    drop(silent);
    Ok(())
}

/// `spec.kubeConfig.secretRef`: dry-run, apply, prune, health checks and
/// garbage collection on deletion all happen on a second control plane,
/// nothing in the controller's own; the Kustomization, its source and the
/// kubeconfig Secret stay in the controller's. A missing Secret fails with
/// Flux's reason and message (and is recovered from once created), the
/// ServiceAccount is impersonated on the remote cluster, and `configMapRef`
/// stalls naming what to use instead.
#[tokio::test(flavor = "multi_thread")]
async fn applies_prunes_and_collects_on_the_cluster_of_kube_config() -> Result<()> {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Service};
    use kube::Api;

    let remote = e2e::cluster::Cluster::start_dedicated().await?;
    let remote_client = remote.client().await?;
    let env = Env::start(
        "ks-kubeconfig",
        &[
            ("deploy/configmap.yaml", CONFIGMAP),
            ("deploy/service.yaml", SERVICE),
            ("deploy/deployment.yaml", DEPLOYMENT),
        ],
        &[],
    )
    .await?;
    let ns = env.ns().to_owned();
    env.kustomization(
        "remote",
        json!({"path": "./deploy", "wait": true, "targetNamespace": "default",
            "namePrefix": "ks-kubeconfig-",
            "kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}}),
    )
    .await?;
    let (_, message) = env.failing("remote", "ReconciliationFailed").await?;
    ensure!(
        message
            == format!(
                "unable to read KubeConfig secret '{ns}/remote-kubeconfig' error: secrets \"remote-kubeconfig\" not found"
            ),
        "{message}"
    );

    let kubeconfig = std::fs::read_to_string(remote.kubeconfig_path())?;
    env.secret("remote-kubeconfig", &[("value", &kubeconfig)])
        .await?;
    env.request_reconcile::<Kustomization>("remote").await?;
    let first = env.head()?;
    let ks = env.ready("remote", &first).await?;
    let status = ks.status.clone().context("status")?;
    let healthy = condition(status.conditions.as_ref(), "Healthy").context("Healthy")?;
    ensure!(
        healthy.status == "True" && healthy.reason == "Succeeded",
        "{healthy:?}"
    );
    let ids = sorted_inventory(&status)?;
    ensure!(
        ids == [
            "default_ks-kubeconfig-app-config__ConfigMap",
            "default_ks-kubeconfig-app__Service",
            "default_ks-kubeconfig-app_apps_Deployment",
        ],
        "{ids:?}"
    );
    let remote_config_maps: Api<ConfigMap> = Api::namespaced(remote_client.clone(), "default");
    let remote_services: Api<Service> = Api::namespaced(remote_client.clone(), "default");
    let remote_deployments: Api<Deployment> = Api::namespaced(remote_client.clone(), "default");
    let config_map = remote_config_maps
        .get_opt("ks-kubeconfig-app-config")
        .await?
        .context("the ConfigMap is not on the remote cluster")?;
    let labels = config_map.metadata.labels.unwrap_or_default();
    ensure!(
        labels
            .get("kustomize.toolkit.fluxcd.io/name")
            .map(String::as_str)
            == Some("remote")
            && labels.get("kustomize.toolkit.fluxcd.io/namespace") == Some(&ns),
        "{labels:?}"
    );
    ensure!(
        remote_services
            .get_opt("ks-kubeconfig-app")
            .await?
            .is_some()
    );
    ensure!(
        remote_deployments
            .get_opt("ks-kubeconfig-app")
            .await?
            .is_some()
    );
    for local_ns in ["default", ns.as_str()] {
        let local: Api<ConfigMap> = Api::namespaced(env.client.clone(), local_ns);
        ensure!(
            local.get_opt("ks-kubeconfig-app-config").await?.is_none(),
            "the ConfigMap landed in the controller's cluster ({local_ns})"
        );
        let local: Api<Deployment> = Api::namespaced(env.client.clone(), local_ns);
        ensure!(
            local.get_opt("ks-kubeconfig-app").await?.is_none(),
            "the Deployment landed in the controller's cluster ({local_ns})"
        );
    }

    // A commit drops the Service: pruned on the remote cluster.
    let second = env
        .commit(&[], &["deploy/service.yaml"], "drop the service")
        .await?;
    env.ready("remote", &second).await?;
    ensure!(
        remote_services
            .get_opt("ks-kubeconfig-app")
            .await?
            .is_none(),
        "the Service was not pruned on the remote cluster"
    );
    ensure!(
        remote_config_maps
            .get_opt("ks-kubeconfig-app-config")
            .await?
            .is_some()
    );

    // The ServiceAccount is impersonated there: without RBAC on the remote
    // cluster, the dry-run is forbidden to it.
    env.kustomization(
        "impersonated",
        json!({"path": "./deploy", "targetNamespace": "default", "namePrefix": "as-nobody-",
            "serviceAccountName": "nobody",
            "kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}}),
    )
    .await?;
    let (_, message) = env
        .failing_with("impersonated", "ReconciliationFailed", "forbidden")
        .await?;
    ensure!(
        message.contains(&format!("system:serviceaccount:{ns}:nobody")),
        "{message}"
    );

    // Secret-less access through a cloud provider is refused for good.
    env.kustomization(
        "cloud",
        json!({"path": "./deploy", "kubeConfig": {"configMapRef": {"name": "eks"}}}),
    )
    .await?;
    let message = env
        .wait_for::<Kustomization, _>("cloud", |ks| {
            let conditions = ks.status.as_ref()?.conditions.as_ref();
            let stalled = condition(conditions, "Stalled")?;
            let ready = condition(conditions, "Ready")?;
            (stalled.status == "True"
                && stalled.reason == "ReconciliationFailed"
                && ready.status == "False")
                .then(|| stalled.message.clone())
        })
        .await?;
    ensure!(
        message.starts_with("spec.kubeConfig.configMapRef is not supported")
            && message.contains("use spec.kubeConfig.secretRef"),
        "{message}"
    );

    // Deleting the Kustomization collects its objects on the remote cluster.
    env.delete_and_wait("remote").await?;
    ensure!(
        remote_config_maps
            .get_opt("ks-kubeconfig-app-config")
            .await?
            .is_none(),
        "the ConfigMap was left on the remote cluster"
    );
    ensure!(
        remote_deployments
            .get_opt("ks-kubeconfig-app")
            .await?
            .is_none(),
        "the Deployment was left on the remote cluster"
    );
    Ok(())
}

/// The revision of Bucket `manifests`' artifact once it differs from `not`.
async fn bucket_revision(env: &Env, not: Option<&str>) -> Result<String> {
    env.wait_for::<api::source::Bucket, _>("manifests", |b| {
        let revision = b.status.as_ref()?.artifact.as_ref()?.revision.clone();
        (Some(revision.as_str()) != not).then_some(revision)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn applies_the_artifact_of_a_bucket_and_follows_it() -> Result<()> {
    let env = Env::start("ks-bucket", &[("README.md", "unused\n")], &[]).await?;
    let s3 = e2e::s3::S3Server::shared(false).await?;
    let bucket = env.ns().to_string();
    s3.create_bucket(&bucket).await?;
    s3.put_object(&bucket, "deploy/configmap.yaml", CONFIGMAP.as_bytes())
        .await?;
    env.secret(
        "s3-auth",
        &[
            ("accesskey", s3.access_key()),
            ("secretkey", s3.secret_key()),
        ],
    )
    .await?;
    env.create::<api::source::Bucket>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "Bucket",
        "metadata": {"name": "manifests"},
        "spec": {"endpoint": s3.endpoint(), "insecure": true, "bucketName": bucket,
                 "interval": "1h", "secretRef": {"name": "s3-auth"}},
    }))
    .await?;
    let first = bucket_revision(&env, None).await?;
    ensure!(first.starts_with("sha256:"), "{first}");
    env.kustomization(
        "app",
        json!({"path": "./deploy", "sourceRef": {"kind": "Bucket", "name": "manifests"}}),
    )
    .await?;
    let ks = env.ready("app", &first).await?;
    let ready = condition(
        ks.status.as_ref().and_then(|s| s.conditions.as_ref()),
        "Ready",
    )
    .context("Ready")?;
    ensure!(
        ready.message == format!("Applied revision: {first}"),
        "{ready:?}"
    );
    let cm = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("ConfigMap not applied")?;
    ensure!(cm["data"]["greeting"] == "hello", "{cm}");

    // A changed object: the Bucket's new artifact is applied.
    s3.put_object(
        &bucket,
        "deploy/configmap.yaml",
        CONFIGMAP.replace("hello", "bonjour").as_bytes(),
    )
    .await?;
    env.request_reconcile::<api::source::Bucket>("manifests")
        .await?;
    let second = bucket_revision(&env, Some(&first)).await?;
    env.ready("app", &second).await?;
    let cm = env
        .get("v1", "ConfigMap", "app-config")
        .await?
        .context("ConfigMap gone")?;
    ensure!(cm["data"]["greeting"] == "bonjour", "{cm}");
    Ok(())
}

/// `sourceRef.kind: ExternalArtifact`: with the feature gate, the artifact an
/// ExternalArtifact's status names (here a GitRepository's, copied by the
/// test as a third-party producer would publish its own) is applied; without
/// it, the Kustomization stalls with Flux's access-denied message.
#[tokio::test(flavor = "multi_thread")]
async fn external_artifacts_behind_their_feature_gate() -> Result<()> {
    use api::source::{ExternalArtifact, GitRepository};

    let files = [("configmap.yaml", CONFIGMAP)];
    let env = Env::start(
        "ks-external",
        &files,
        &["--feature-gates=ExternalArtifact=true"],
    )
    .await?;
    let artifact = env
        .wait_for::<GitRepository, _>("repo", |repo| repo.status.as_ref()?.artifact.clone())
        .await?;
    env.create::<ExternalArtifact>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
        "metadata": {"name": "published"},
        "spec": {"sourceRef": {"apiVersion": "example.com/v1", "kind": "Generator", "name": "gen"}},
    }))
    .await?;
    env.api::<ExternalArtifact>()
        .patch_status(
            "published",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"artifact": artifact}})),
        )
        .await?;
    let external = json!({"kind": "ExternalArtifact", "name": "published"});
    env.kustomization("app", json!({"sourceRef": external}))
        .await?;
    env.ready("app", &artifact.revision).await?;
    ensure!(
        env.get("v1", "ConfigMap", "app-config").await?.is_some(),
        "the ExternalArtifact's objects were not applied"
    );

    let gated = Env::start("ks-external-off", &files, &[]).await?;
    gated
        .kustomization("app", json!({"sourceRef": external}))
        .await?;
    let (ks, message) = gated.failing("app", "AccessDenied").await?;
    ensure!(
        message
            == format!(
                "can't access 'ExternalArtifact/{}/published', ExternalArtifact feature gate is disabled",
                gated.ns()
            ),
        "{message}"
    );
    let stalled = condition(
        ks.status.as_ref().and_then(|s| s.conditions.as_ref()),
        "Stalled",
    );
    ensure!(stalled.is_some_and(|c| c.status == "True"), "{ks:?}");
    Ok(())
}
