//! The helm driver and the storage reader against the real helm v4 binary
//! and the harness control plane.
//!
//! No kubelet runs Pods in the harness, so the charts here are made of
//! ConfigMaps (ready as soon as they exist); the one Job (a hook) is there
//! precisely because it never completes, to hold helm mid-upgrade.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::chart_repo::{ChartSpec, package_chart};
use helm_controller::helm_cli::{
    ChartOptions, HelmCli, HelmCliConfig, HelmError, InstallOptions, ReleaseRef, RollbackOptions,
    ServerSide, TestOptions, UninstallOptions, UpgradeOptions, Wait,
};
use helm_controller::post_render::{Origin, PostRenderSpec};
use helm_controller::storage::ReleaseStorage;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use serde_json::json;

/// A test hook that succeeds without a kubelet: helm counts a created
/// ConfigMap as a passed test.
const PASSING_TEST: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-test\n  annotations:\n    helm.sh/hook: test\ndata:\n  ok: \"yes\"\n";

fn helm(kubeconfig: PathBuf) -> Result<HelmCli> {
    Ok(HelmCli::new(HelmCliConfig {
        helm_path: e2e::packages::helm()?,
        kubeconfig: Some(kubeconfig),
        post_renderer: Some(PathBuf::from(env!("CARGO_BIN_EXE_helm-controller"))),
        niceness: helm_controller::helm_cli::DEFAULT_HELM_NICENESS,
        launcher: Some(PathBuf::from(env!("CARGO_BIN_EXE_helm-controller"))),
    })?)
}

fn release(name: &str, namespace: &str) -> ReleaseRef {
    ReleaseRef {
        name: name.to_string(),
        namespace: namespace.to_string(),
        identity: Default::default(),
    }
}

/// Options that do not wait for readiness (nothing would make Pods ready).
fn install_options() -> InstallOptions {
    InstallOptions {
        chart: ChartOptions {
            timeout: Duration::from_secs(60),
            wait: Wait::Watcher,
            ..ChartOptions::default()
        },
        ..InstallOptions::default()
    }
}

fn upgrade_options() -> UpgradeOptions {
    UpgradeOptions {
        chart: ChartOptions {
            timeout: Duration::from_secs(60),
            ..ChartOptions::default()
        },
        ..UpgradeOptions::default()
    }
}

#[tokio::test]
async fn install_upgrade_test_rollback_uninstall() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("helm-cli-lifecycle").await?;
    let ns = namespace.name();
    let client = cluster.client().await?;
    let helm = helm(cluster.kubeconfig_path().to_path_buf())?;
    let charts = tempfile::tempdir()?;
    let v1 = package_chart(
        &ChartSpec::config_maps("demo", "1.0.0")
            .app_version("1.0")
            .template("test.yaml", PASSING_TEST),
        charts.path(),
    )?;
    let v2 = package_chart(
        &ChartSpec::config_maps("demo", "2.0.0").template("test.yaml", PASSING_TEST),
        charts.path(),
    )?;
    let rel = release("demo", ns);
    let storage = ReleaseStorage::new(client.clone());
    let post_render = PostRenderSpec {
        origin: Some(Origin {
            name: "demo-hr".into(),
            namespace: ns.to_string(),
        }),
        ..PostRenderSpec::default()
    };

    let printed = helm
        .install(
            &rel,
            &v1,
            &json!({"data": {"greeting": "hi"}}),
            Some(&post_render),
            &install_options(),
        )
        .await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = config_maps.get("demo-demo").await?;
    let data = cm.data.clone().unwrap_or_default();
    assert_eq!(data.get("greeting").map(String::as_str), Some("hi"));
    assert_eq!(data.get("chartVersion").map(String::as_str), Some("1.0.0"));
    let labels = cm.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels
            .get("helm.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("demo-hr"),
        "post-rendered by the plugin: {labels:?}"
    );
    let latest = storage.latest(ns, "demo").await?.context("stored")?;
    assert_eq!(latest.release.version, 1);
    assert_eq!(latest.release.info.status, "deployed");
    assert_eq!(latest.release.chart_metadata().version, "1.0.0");
    // The controller records the release helm printed after an install:
    // its digest must be that of the stored release, which Flux verifies.
    let printed = printed.context("helm printed the release")?;
    assert_eq!(
        printed.digest(None),
        latest.release.digest(None),
        "helm prints the release it stores"
    );
    assert_eq!(latest.release.values(), json!({"data": {"greeting": "hi"}}));
    assert!(
        latest
            .release
            .manifest
            .contains("helm.toolkit.fluxcd.io/name: demo-hr")
    );
    let status = helm.status(&rel, None).await?;
    assert_eq!(status.version, 1);
    // `helm status` leaves the chart out, hence the storage reader.
    assert_eq!(
        status.manifest, latest.release.manifest,
        "storage and helm agree"
    );
    assert_eq!(status.values(), latest.release.values());
    let listed = helm.list(ns, &Default::default()).await?;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].chart, "demo-1.0.0");

    // Upgrade resets values to the chart's unless preserved.
    helm.upgrade(
        &rel,
        &v2,
        &json!({}),
        Some(&post_render),
        &upgrade_options(),
    )
    .await?;
    let data = config_maps.get("demo-demo").await?.data.unwrap_or_default();
    assert_eq!(data.get("greeting").map(String::as_str), Some("hello"));
    assert_eq!(data.get("chartVersion").map(String::as_str), Some("2.0.0"));
    let revisions = storage.revisions(ns, "demo").await?;
    let statuses: Vec<_> = revisions
        .iter()
        .map(|r| (r.release.version, r.release.info.status.as_str()))
        .collect();
    assert_eq!(statuses, [(1, "superseded"), (2, "deployed")]);

    helm.test(
        &rel,
        &TestOptions {
            timeout: Duration::from_secs(60),
            filters: Vec::new(),
        },
    )
    .await?;
    let tested = storage.latest(ns, "demo").await?.context("stored")?;
    let hooks = tested.release.test_hooks();
    assert_eq!(hooks["demo-test"].phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        tested.release.digest(None),
        revisions[1].release.digest(None),
        "test runs leave the digest alone"
    );

    helm.rollback(
        &rel,
        &RollbackOptions {
            revision: 1,
            timeout: Duration::from_secs(60),
            wait: Wait::Watcher,
            wait_for_jobs: true,
            disable_hooks: false,
            force: false,
            cleanup_on_fail: false,
            history_max: 5,
            server_side: ServerSide::Auto,
        },
    )
    .await?;
    let history = helm.history(&rel).await?;
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].status, "deployed");
    assert_eq!(history[2].chart, "demo-1.0.0");
    let values = helm.get_values(&rel, None, false).await?;
    assert_eq!(values, json!({"data": {"greeting": "hi"}}));
    let manifest = helm.get_manifest(&rel, None).await?;
    assert!(manifest.contains("chartVersion: 1.0.0"), "{manifest}");

    helm.uninstall(
        &rel,
        &UninstallOptions {
            timeout: Duration::from_secs(60),
            keep_history: true,
            ..UninstallOptions::default()
        },
    )
    .await?;
    assert!(config_maps.get_opt("demo-demo").await?.is_none());
    let latest = storage.latest(ns, "demo").await?.context("kept")?;
    assert_eq!(latest.release.info.status, "uninstalled");
    namespace.delete().await
}

#[tokio::test]
async fn schema_violations_and_failing_hooks_are_reported() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("helm-cli-failures").await?;
    let ns = namespace.name();
    let client = cluster.client().await?;
    let helm = helm(cluster.kubeconfig_path().to_path_buf())?;
    let storage = ReleaseStorage::new(client);
    let charts = tempfile::tempdir()?;

    let schema = r#"{"type":"object","properties":{"data":{"type":"object","properties":{"greeting":{"type":"string"}}}}}"#;
    let strict = package_chart(
        &ChartSpec::config_maps("strict", "1.0.0").values_schema(schema),
        charts.path(),
    )?;
    let err = helm
        .install(
            &release("strict", ns),
            &strict,
            &json!({"data": {"greeting": 5}}),
            None,
            &install_options(),
        )
        .await
        .expect_err("the schema refuses a number");
    let HelmError::Failed { cause, .. } = &err else {
        bail!("unexpected error {err:?}");
    };
    assert!(
        cause.contains("values don't meet the specifications of the schema"),
        "{cause}"
    );
    assert!(
        !cause.contains('\n') && !cause.starts_with("INSTALLATION FAILED"),
        "{cause}"
    );
    assert!(
        storage.latest(ns, "strict").await?.is_none(),
        "helm validates before storing anything"
    );

    // A post-install hook the API server refuses: the install fails after
    // helm stored the release, which is left as helm left it (failed).
    let hooked = package_chart(
        &ChartSpec::config_maps("hooked", "1.0.0").template(
            "hook.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-hook\n  annotations:\n    helm.sh/hook: post-install\ndata:\n  count: 1\n",
        ),
        charts.path(),
    )?;
    let err = helm
        .install(
            &release("hooked", ns),
            &hooked,
            &json!({}),
            None,
            &install_options(),
        )
        .await
        .expect_err("the hook is invalid");
    assert!(matches!(err, HelmError::Failed { .. }), "{err:?}");
    let latest = storage.latest(ns, "hooked").await?.context("stored")?;
    assert_eq!(latest.release.info.status, "failed");

    // A template error.
    let broken = package_chart(
        &ChartSpec::config_maps("broken", "1.0.0")
            .template("bad.yaml", "{{ .Values.nope.deeper }}\n"),
        charts.path(),
    )?;
    let err = helm
        .install(
            &release("broken", ns),
            &broken,
            &json!({}),
            None,
            &install_options(),
        )
        .await
        .expect_err("template error");
    assert!(err.to_string().contains("nil pointer"), "{err}");

    // A missing helm binary.
    let missing = HelmCli::new(HelmCliConfig {
        helm_path: PathBuf::from("/nonexistent/helm"),
        kubeconfig: None,
        post_renderer: None,
        niceness: 0,
        launcher: None,
    })
    .expect_err("no helm");
    assert!(
        missing.to_string().contains("helm binary not found"),
        "{missing}"
    );
    namespace.delete().await
}

#[tokio::test]
async fn killed_upgrade_stays_pending_until_unlocked() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let namespace = cluster.test_namespace("helm-cli-pending").await?;
    let ns = namespace.name();
    let client = cluster.client().await?;
    let helm = helm(cluster.kubeconfig_path().to_path_buf())?;
    let storage = ReleaseStorage::new(client);
    let charts = tempfile::tempdir()?;
    let rel = release("stuck", ns);
    let v1 = package_chart(&ChartSpec::config_maps("stuck", "1.0.0"), charts.path())?;
    // The post-upgrade Job never completes (no kubelet), so helm sits in
    // the upgrade with the release pending until it is killed.
    let v2 = package_chart(
        &ChartSpec::config_maps("stuck", "2.0.0").template(
            "hook.yaml",
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Release.Name }}-wait\n  annotations:\n    helm.sh/hook: post-upgrade\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: wait\n        image: busybox\n        command: [\"true\"]\n",
        ),
        charts.path(),
    )?;
    helm.install(&rel, &v1, &json!({}), None, &install_options())
        .await?;

    let (no_values, options) = (json!({}), upgrade_options());
    let upgrade = helm.upgrade(&rel, &v2, &no_values, None, &options);
    let pending = async {
        loop {
            if let Some(latest) = storage.latest(ns, "stuck").await?
                && latest.is_pending()
            {
                return Ok::<_, anyhow::Error>(latest);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    // Whichever finishes first wins; the upgrade losing means its helm
    // process is killed (SIGKILL) mid-action.
    tokio::select! {
        result = upgrade => bail!("the upgrade finished: {result:?}"),
        seen = tokio::time::timeout(Duration::from_secs(60), pending) => {
            seen??;
        }
    };
    // Helm refuses to act on a locked release.
    let err = helm
        .upgrade(&rel, &v1, &json!({}), None, &upgrade_options())
        .await
        .expect_err("locked");
    assert!(err.to_string().contains("another operation"), "{err}");

    // helm records its hooks' progress in the pending revision, and a write
    // it sent just before the SIGKILL may still land: an unlock from an
    // older copy is refused (409) and made again from what is stored, as
    // the controller's next reconciliation would.
    let mut attempts = 0;
    let (stuck, unlocked) = loop {
        let stuck = storage.latest(ns, "stuck").await?.context("stored")?;
        assert_eq!(stuck.release.info.status, "pending-upgrade");
        assert_eq!(stuck.release.version, 2);
        match storage
            .mark_failed(
                &stuck,
                "Release unlocked from stale 'pending-upgrade' state",
            )
            .await
        {
            Ok(unlocked) => break (stuck, unlocked),
            Err(err) if attempts < 5 => {
                attempts += 1;
                eprintln!("unlock refused, reading again: {err}");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(err) => return Err(err.into()),
        }
    };
    assert_eq!(unlocked.info.status, "failed");
    let history = helm.history(&rel).await?;
    assert_eq!(history[1].status, "failed");
    assert_eq!(
        history[1].description,
        "Release unlocked from stale 'pending-upgrade' state"
    );
    // A second unlock from the stale copy must not clobber the first.
    assert!(storage.mark_failed(&stuck, "again").await.is_err());

    helm.upgrade(&rel, &v1, &json!({}), None, &upgrade_options())
        .await?;
    let latest = storage.latest(ns, "stuck").await?.context("stored")?;
    assert_eq!(
        (latest.release.version, latest.release.info.status.as_str()),
        (3, "deployed")
    );
    namespace.delete().await
}

/// The `helm-exec` launcher the controller starts helm through: it becomes
/// the program it is given, nicer by the niceness it is given, and refuses
/// to run for a parent that is not its own.
#[test]
fn launcher_becomes_the_program_at_lower_priority() -> Result<()> {
    let binary = env!("CARGO_BIN_EXE_helm-controller");
    let niceness = |stat: &str| -> Result<i32> {
        Ok(stat
            .split_whitespace()
            .nth(18)
            .context("niceness field")?
            .parse()?)
    };
    let own = niceness(&std::fs::read_to_string("/proc/self/stat")?)?;
    let output = std::process::Command::new(binary)
        .args([
            "helm-exec",
            &std::process::id().to_string(),
            "7",
            "cat",
            "/proc/self/stat",
        ])
        .output()?;
    assert!(output.status.success(), "{output:?}");
    let stat = String::from_utf8_lossy(&output.stdout);
    assert!(stat.contains("(cat)"), "{stat}");
    assert_eq!(niceness(&stat)?, (own + 7).min(19));

    // Started for another parent (one that has died meanwhile): refused.
    let refused = std::process::Command::new(binary)
        .args(["helm-exec", "1", "0", "true"])
        .output()?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("the controller is gone"),
        "{refused:?}"
    );
    Ok(())
}
