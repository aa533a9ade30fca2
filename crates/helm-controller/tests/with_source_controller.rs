//! A HelmRelease from an HTTP HelmRepository, the whole way through the real
//! controllers: helm-controller creates the HelmChart for `spec.chart`,
//! ferroflux's source-controller builds its artifact from the repository,
//! helm-controller installs it with helm, and upgrades when a newer chart
//! matching the version range is published.
//!
//! The source-controller binary is the workspace's own, taken from the same
//! target directory as this test (`cargo build -p source-controller`, which
//! `cargo xtask test` does with the whole workspace).

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use e2e::chart_repo::ChartSpec;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{World, ready_with};

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
    kubeconfig: &std::path::Path,
    namespace: &str,
    dir: &std::path::Path,
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

/// Asks for an immediate reconciliation of a source object.
async fn request_reconcile<K>(api: &Api<K>, name: &str, token: &str) -> Result<()>
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

#[tokio::test]
async fn helm_repository_chart_is_installed_and_upgraded() -> Result<()> {
    let world = World::new("hr-helmrepo").await?;
    let ns = world.ns().to_string();
    let dir = tempfile::tempdir()?;
    let _source_controller = start_source_controller(&world.kubeconfig, &ns, dir.path())?;
    world
        .repo
        .add_chart(&ChartSpec::config_maps("podinfo", "6.0.0"))?;
    let repositories: Api<api::source::HelmRepository> = Api::namespaced(world.client.clone(), &ns);
    repositories
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmRepository",
                "metadata": {"name": "charts"},
                "spec": {"url": world.repo.url(), "interval": "1h"}
            }))?,
        )
        .await?;
    world
        .create_release(
            "podinfo",
            json!({
                "interval": "10m",
                "chart": {"spec": {
                    "chart": "podinfo",
                    "version": "6.x",
                    "interval": "1h",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}
                }},
                "values": {"data": {"greeting": "from a HelmRepository"}}
            }),
        )
        .await?;
    let installed =
        format!("Helm install succeeded for release {ns}/podinfo.v1 with chart podinfo@6.0.0");
    let hr = world
        .wait_for("podinfo", "the install", |hr| ready_with(hr, &installed))
        .await?;
    assert_eq!(
        hr.status.and_then(|s| s.helm_chart),
        Some(format!("{ns}/{ns}-podinfo"))
    );
    let data = world
        .config_maps()
        .get("podinfo-podinfo")
        .await?
        .data
        .unwrap_or_default();
    assert_eq!(data["greeting"], "from a HelmRepository");

    // A newer chart in the range: the repository and chart are refreshed on
    // request (their interval is an hour) and the release follows.
    world
        .repo
        .add_chart(&ChartSpec::config_maps("podinfo", "6.1.0"))?;
    request_reconcile(&repositories, "charts", "new-chart").await?;
    let charts: Api<api::source::HelmChart> = Api::namespaced(world.client.clone(), &ns);
    request_reconcile(&charts, &format!("{ns}-podinfo"), "new-chart").await?;
    let upgraded =
        format!("Helm upgrade succeeded for release {ns}/podinfo.v2 with chart podinfo@6.1.0");
    world
        .wait_for("podinfo", "the upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    Ok(())
}
