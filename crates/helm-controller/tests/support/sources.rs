//! The real source-controller (the workspace's own) serving the sources of
//! a test's namespace, and helpers to create and poke source objects.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::chart_repo::ChartSpec;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{Controller, World};

/// The workspace's source-controller binary, next to this test's binary.
fn source_controller_binary() -> Result<PathBuf> {
    let test = std::env::current_exe()?;
    let target = test
        .parent()
        .and_then(|deps| deps.parent())
        .context("test binary outside a cargo target directory")?;
    let binary = target.join("source-controller");
    if !binary.exists() {
        bail!(
            "{} is missing: build it first with `cargo build -p source-controller`",
            binary.display()
        );
    }
    Ok(binary)
}

/// source-controller watching only `namespace`, storing under a temporary
/// directory and serving artifacts on a free loopback port.
fn start_source_controller(
    kubeconfig: &Path,
    namespace: &str,
    dir: &Path,
) -> Result<e2e::process::Service> {
    let (storage, health) = (e2e::paths::free_port()?, e2e::paths::free_port()?);
    let mut cmd = Command::new(source_controller_binary()?);
    cmd.env("KUBECONFIG", kubeconfig)
        .env("RUNTIME_NAMESPACE", namespace)
        .env("RUST_LOG", "info,kube=warn")
        .arg("--watch-all-namespaces=false")
        .arg(format!("--storage-path={}", dir.join("data").display()))
        .arg(format!("--storage-addr=127.0.0.1:{storage}"))
        .arg("--metrics-addr=127.0.0.1:0")
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--log-encoding=console")
        .arg("--requeue-dependency=2s");
    let mut service =
        e2e::process::start("source-controller", cmd, &dir.join("source-controller.log"))?;
    service.wait_for_port(health, Duration::from_secs(60))?;
    Ok(service)
}

/// Asks for an immediate reconciliation of an object (any kind).
pub async fn request_reconcile<K>(api: &Api<K>, name: &str, token: &str) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(
            &json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        ),
    )
    .await?;
    Ok(())
}

/// A test world with the real source-controller watching its namespace.
pub struct WithSources {
    pub world: World,
    _source_controller: e2e::process::Service,
    _dir: tempfile::TempDir,
}

impl WithSources {
    /// ferroflux's helm-controller with chart digest tracking on, as in Flux.
    pub async fn new(name: &str) -> Result<Self> {
        Self::with_controller(name, |kubeconfig, namespace| {
            Controller::start_with(
                kubeconfig,
                namespace,
                &["--feature-gates=DisableChartDigestTracking=false"],
            )
        })
        .await
    }

    /// The helm-controller `start` starts (see [`World::with_controller`]).
    pub async fn with_controller(
        name: &str,
        start: impl FnOnce(&Path, &str) -> Result<Controller>,
    ) -> Result<Self> {
        let world = World::with_controller(name, start).await?;
        let dir = tempfile::tempdir()?;
        let source_controller = start_source_controller(&world.kubeconfig, world.ns(), dir.path())?;
        Ok(Self {
            world,
            _source_controller: source_controller,
            _dir: dir,
        })
    }
}

/// Creates the source object `kind` `name` with `spec` in the world's
/// namespace; returns the API of its kind.
pub async fn create_source<K>(
    world: &World,
    kind: &str,
    name: &str,
    spec: serde_json::Value,
) -> Result<Api<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::Serialize
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(world.client.clone(), world.ns());
    let object: K = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec
    }))?;
    api.create(&PostParams::default(), &object).await?;
    Ok(api)
}

/// The world's chart repository with podinfo 6.0.0, as the HelmRepository
/// `charts`.
pub async fn podinfo_repository(world: &World) -> Result<Api<api::source::HelmRepository>> {
    world
        .repo
        .add_chart(&ChartSpec::config_maps("podinfo", "6.0.0"))?;
    charts_repository(world).await
}

/// The world's chart repository as the HelmRepository `charts`.
pub async fn charts_repository(world: &World) -> Result<Api<api::source::HelmRepository>> {
    create_source(
        world,
        "HelmRepository",
        "charts",
        json!({"url": world.repo.url(), "interval": "1h"}),
    )
    .await
}

/// The layer of a Helm chart in an OCI artifact (`helm push`).
pub const HELM_CHART_LAYER: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// Packages `chart` and pushes it to `registry` as `charts/<name>` with
/// `helm push`; returns the manifest digest.
pub fn push_chart(registry: &e2e::registry::Registry, chart: &ChartSpec) -> Result<String> {
    let packaged = tempfile::tempdir()?;
    let tgz = e2e::chart_repo::package_chart(chart, packaged.path())?;
    registry.push_chart(&tgz)
}

/// The chart version helm-controller installs a chart pushed as `version`
/// with manifest `digest` under, as Flux does: the digest's first 12 hex
/// characters as build metadata.
pub fn tracked(version: &str, digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    format!("{version}+{}", &hex[..12])
}

/// The OCIRepository spec (but `interval`) of the charts [`push_chart`]
/// pushes as `charts/<name>`, as Flux documents it for Helm charts: the
/// newest version, the chart layer copied as is.
pub fn chart_oci_spec(registry: &e2e::registry::Registry, name: &str) -> serde_json::Value {
    json!({
        "url": registry.oci_url(&format!("charts/{name}")),
        "insecure": true,
        "ref": {"semver": ">=6.0.0"},
        "layerSelector": {"mediaType": HELM_CHART_LAYER, "operation": "copy"}
    })
}
