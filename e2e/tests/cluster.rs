//! The control plane itself: it starts, serves the API, runs its controllers
//! (namespace finalisation, garbage collection), has every CRD Established, and
//! its kubeconfig works with kubectl. Also `cargo xtask cluster`'s detached mode.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::cluster::detached::DetachedCluster;
use e2e::cluster::{self, TEST_NAMESPACE_LABEL};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};

/// Polls `check` every 200 ms until it returns true or `timeout` passes.
async fn eventually(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{what}: not true after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn config_map(name: &str, owner: Option<OwnerReference>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            owner_references: owner.map(|owner| vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([("key".to_string(), "value".to_string())])),
        ..ConfigMap::default()
    }
}

#[tokio::test]
async fn apiserver_serves_the_built_release() -> Result<()> {
    let cluster = cluster::shared().await?;
    let client = cluster.client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(version.major, "1");
    assert!(
        version.git_version.starts_with("v1.37."),
        "{}",
        version.git_version
    );
    assert!(cluster.url().starts_with("https://127.0.0.1:"));
    Ok(())
}

#[tokio::test]
async fn deleted_namespace_finalises() -> Result<()> {
    let cluster = cluster::shared().await?;
    let client = cluster.client().await?;
    let namespace = cluster.test_namespace("finalise").await?;
    let name = namespace.name().to_string();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &name);
    config_maps
        .create(&PostParams::default(), &config_map("content", None))
        .await?;
    // kube-controller-manager's root-ca-cert-publisher fills every namespace.
    eventually(
        "kube-root-ca.crt published",
        Duration::from_secs(60),
        async || Ok(config_maps.get_opt("kube-root-ca.crt").await?.is_some()),
    )
    .await?;

    namespace.delete().await?;
    let namespaces: Api<Namespace> = Api::all(client);
    eventually(
        "namespace finalised and gone",
        Duration::from_secs(90),
        async || Ok(namespaces.get_opt(&name).await?.is_none()),
    )
    .await
}

#[tokio::test]
async fn garbage_collector_removes_dependents() -> Result<()> {
    let cluster = cluster::shared().await?;
    let client = cluster.client().await?;
    let namespace = cluster.test_namespace("gc").await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client, namespace.name());
    let owner = config_maps
        .create(&PostParams::default(), &config_map("owner", None))
        .await?;
    let owner_ref = OwnerReference {
        api_version: "v1".to_string(),
        kind: "ConfigMap".to_string(),
        name: "owner".to_string(),
        uid: owner.metadata.uid.context("owner has no uid")?,
        ..OwnerReference::default()
    };
    config_maps
        .create(
            &PostParams::default(),
            &config_map("dependent", Some(owner_ref)),
        )
        .await?;
    config_maps
        .delete("owner", &DeleteParams::background())
        .await?;
    eventually(
        "dependent garbage-collected",
        Duration::from_secs(60),
        async || Ok(config_maps.get_opt("dependent").await?.is_none()),
    )
    .await
}

#[tokio::test]
async fn every_workspace_crd_is_established() -> Result<()> {
    let cluster = cluster::shared().await?;
    let api: Api<CustomResourceDefinition> = Api::all(cluster.client().await?);
    let wanted = cluster::read_crds(&cluster::workspace_crds_dir())?;
    for crd in &wanted {
        let name = crd
            .pointer("/metadata/name")
            .and_then(|name| name.as_str())
            .context("CRD without a name")?;
        let served = api.get(name).await.with_context(|| format!("CRD {name}"))?;
        assert!(
            cluster::is_established(&served),
            "{name} is not Established"
        );
    }
    // Whatever crds/ holds, the installed set is at least that.
    let installed = api.list(&Default::default()).await?.items.len();
    assert!(installed >= wanted.len());
    Ok(())
}

/// A CRD the apiserver rejects fails the install with the apiserver's own words.
#[tokio::test]
async fn rejected_crd_is_reported_by_name_and_reason() -> Result<()> {
    let cluster = cluster::shared().await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("widgets.yaml"),
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.ferroflux.dev
spec:
  group: e2e.ferroflux.dev
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            metadata: {type: object, properties: {labels: {type: object}}}
",
    )?;
    let err = cluster::install_crds(&cluster.client().await?, dir.path())
        .await
        .expect_err("the apiserver accepted an invalid CRD");
    let message = format!("{err:#}");
    assert!(
        message.starts_with("applying CRD widgets.e2e.ferroflux.dev: "),
        "{message}"
    );
    assert!(message.contains("must not specify anything other than name and generateName"));
    assert!(!message.contains("Status {"), "{message}");
    Ok(())
}

#[tokio::test]
async fn test_namespaces_are_unique_labelled_and_deleted_on_drop() -> Result<()> {
    let cluster = cluster::shared().await?;
    let namespaces: Api<Namespace> = Api::all(cluster.client().await?);
    let first = cluster.test_namespace("Helper_Test").await?;
    let second = cluster.test_namespace("Helper_Test").await?;
    assert_ne!(first.name(), second.name());
    assert!(first.name().starts_with("helper-test-"), "{}", first.name());

    let created = namespaces.get(first.name()).await?;
    let labels = created.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels.get(TEST_NAMESPACE_LABEL).map(String::as_str),
        Some("helper-test")
    );

    let name = first.name().to_string();
    drop(first);
    // Dropping deletes without waiting: the namespace is terminating or gone.
    let after = namespaces.get_opt(&name).await?;
    assert!(
        after
            .as_ref()
            .is_none_or(|ns| ns.metadata.deletion_timestamp.is_some()),
        "{name} was not deleted on drop"
    );
    second.delete().await?;
    Ok(())
}

/// The image's kubectl (1.32) understands the generated kubeconfig.
#[tokio::test]
async fn kubectl_works_with_the_kubeconfig() -> Result<()> {
    let cluster = cluster::shared().await?;
    let kubectl = ["/usr/bin/kubectl", "/usr/local/bin/kubectl"]
        .into_iter()
        .find(|path| Path::new(path).is_file())
        .context("kubectl is not installed at /usr/bin/kubectl (apt-get install kubectl)")?;
    let output = tokio::process::Command::new(kubectl)
        .arg("--kubeconfig")
        .arg(cluster.kubeconfig_path())
        .args(["get", "namespaces", "-o", "name"])
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.lines().any(|line| line == "namespace/default"),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|line| line == "namespace/kube-system"),
        "{stdout}"
    );
    Ok(())
}

/// `cargo xtask cluster`'s mode, in a scratch state directory: up, up again
/// (idempotent), env, status, crash recovery (a stale run directory), down.
#[tokio::test]
async fn detached_control_plane_lifecycle() -> Result<()> {
    let root = tempfile::tempdir()?;
    let detached = DetachedCluster::at(root.path());
    // Stops everything even when an assertion fails half-way.
    struct Down<'a>(&'a DetachedCluster);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = self.0.down();
        }
    }
    let _guard = Down(&detached);

    tokio::task::spawn_blocking({
        let detached = detached.clone();
        move || lifecycle(&detached)
    })
    .await?
}

#[allow(unsafe_code)]
fn lifecycle(detached: &DetachedCluster) -> Result<()> {
    assert!(detached.status()?.stopped());
    assert!(detached.env().is_err());

    let first = detached.up()?;
    assert!(!first.already_running);
    let status = detached.status()?;
    assert!(status.running(), "{}", status.describe());
    assert_eq!(status.url.as_deref(), Some(first.url.as_str()));

    let again = detached.up()?;
    assert!(again.already_running);
    assert_eq!(again.url, first.url);
    assert!(
        detached
            .env()?
            .contains(&format!("KUBECONFIG={}", first.kubeconfig.display()))
    );

    // A crash: the processes die without `down`; the next `up` cleans up and
    // comes back on the remembered ports.
    for state in &status.components {
        let pid = state.pid.context("component without pid")?;
        // SAFETY: kill has no memory effects; the pid runs our binary (status checked it).
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    std::thread::sleep(Duration::from_millis(500));
    let crashed = detached.status()?;
    assert!(crashed.stopped(), "{}", crashed.describe());
    assert!(crashed.run_dir.is_some());
    let recovered = detached.up()?;
    assert!(recovered.removed_stale.is_some());
    assert_eq!(recovered.url, first.url);

    let status = detached.status()?;
    let down = detached.down()?;
    assert_eq!(down.stopped.len(), 3, "{:?}", down.stopped);
    assert!(down.removed.is_some());
    for state in &status.components {
        let pid = state.pid.context("component without pid")?;
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))?.contains(") Z "),
            "{} (pid {pid}) still runs",
            state.component.name()
        );
    }
    assert!(detached.status()?.stopped());
    assert!(!detached.kubeconfig_path().exists());
    Ok(())
}
