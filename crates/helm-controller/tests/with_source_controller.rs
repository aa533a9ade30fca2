//! HelmReleases the whole way through the real controllers: charts from an
//! HTTP HelmRepository and from a GitRepository path (helm-controller creates
//! the HelmChart for `spec.chart`, ferroflux's source-controller builds its
//! artifact) and from an OCIRepository holding a chart pushed with
//! `helm push` (`spec.chartRef`, or generated from a `kind: OCIRepository`
//! chart template); helm-controller installs them with helm and upgrades when
//! a newer chart appears or the template changes kind. Charts the source
//! cannot provide are reported on the HelmRelease.
//!
//! The source-controller binary is the workspace's own, taken from the same
//! target directory as this test (`cargo build -p source-controller`, which
//! `cargo xtask test` does with the whole workspace).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use anyhow::Result;
use e2e::chart_repo::ChartSpec;
use kube::api::Api;
use serde_json::json;
use support::sources::{
    WithSources, chart_oci_spec, create_source, podinfo_repository, push_chart, request_reconcile,
    tracked,
};
use support::{condition, has, ready_with};

#[tokio::test]
async fn helm_repository_chart_is_installed_and_upgraded() -> Result<()> {
    let sources = WithSources::new("hr-helmrepo").await?;
    let world = &sources.world;
    let ns = world.ns().to_string();
    let repositories = podinfo_repository(world).await?;
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
    let installed = world.succeeded("install", "podinfo", 1, "podinfo@6.0.0");
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
    let upgraded = world.succeeded("upgrade", "podinfo", 2, "podinfo@6.1.0");
    world
        .wait_for("podinfo", "the upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    Ok(())
}

/// Packages podinfo `version` and pushes it to `registry` as
/// `charts/podinfo` with `helm push`; returns the manifest digest.
fn push_podinfo(registry: &e2e::registry::Registry, version: &str) -> Result<String> {
    push_chart(registry, &ChartSpec::config_maps("podinfo", version))
}

/// [`chart_oci_spec`] of podinfo.
fn podinfo_oci_spec(registry: &e2e::registry::Registry) -> serde_json::Value {
    chart_oci_spec(registry, "podinfo")
}

#[tokio::test]
async fn oci_repository_chart_ref_is_installed_and_upgraded() -> Result<()> {
    let sources = WithSources::new("hr-oci").await?;
    let world = &sources.world;
    let registry = e2e::registry::Registry::start(false)?;
    let first = push_podinfo(&registry, "6.0.0")?;
    let mut spec = podinfo_oci_spec(&registry);
    spec["interval"] = json!("1h");
    let repositories: Api<api::source::OCIRepository> =
        create_source(world, "OCIRepository", "podinfo", spec).await?;
    world
        .create_release(
            "podinfo",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "podinfo"},
                "values": {"data": {"greeting": "from an OCIRepository"}}
            }),
        )
        .await?;
    let installed = world.succeeded(
        "install",
        "podinfo",
        1,
        &format!("podinfo@{}", tracked("6.0.0", &first)),
    );
    let hr = world
        .wait_for("podinfo", "the install", |hr| ready_with(hr, &installed))
        .await?;
    let status = hr.status.unwrap_or_default();
    assert_eq!(
        status.last_attempted_revision,
        Some(tracked("6.0.0", &first))
    );
    let history = status.history.unwrap_or_default();
    assert_eq!(
        history.first().and_then(|s| s.oci_digest.clone()),
        Some(first),
        "the release records the manifest digest it came from"
    );
    assert_eq!(
        world.config_value("podinfo-podinfo", "greeting").await?,
        "from an OCIRepository"
    );

    // A newer chart version in the registry: the OCIRepository follows it
    // (on request, its interval is an hour) and the release is upgraded.
    let second = push_podinfo(&registry, "6.1.0")?;
    request_reconcile(&repositories, "podinfo", "new-chart").await?;
    let upgraded = world.succeeded(
        "upgrade",
        "podinfo",
        2,
        &format!("podinfo@{}", tracked("6.1.0", &second)),
    );
    let hr = world
        .wait_for("podinfo", "the upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    let history = hr.status.and_then(|s| s.history).unwrap_or_default();
    assert_eq!(
        history.first().map(|s| s.chart_version.clone()),
        Some(tracked("6.1.0", &second))
    );
    assert_eq!(
        history.first().and_then(|s| s.oci_digest.clone()),
        Some(second.clone())
    );
    assert_eq!(
        world
            .config_value("podinfo-podinfo", "chartVersion")
            .await?,
        tracked("6.1.0", &second)
    );
    Ok(())
}

#[tokio::test]
async fn oci_repository_chart_template_is_installed_replaced_and_deleted() -> Result<()> {
    let sources = WithSources::new("hr-ocitpl").await?;
    let world = &sources.world;
    let ns = world.ns().to_string();
    let name = format!("{ns}-podinfo");
    let registry = e2e::registry::Registry::start(false)?;
    let digest = push_podinfo(&registry, "6.0.0")?;
    // No interval in the template: the OCIRepository takes the HelmRelease's.
    world
        .create_release(
            "podinfo",
            json!({
                "interval": "10m",
                "chart": {
                    "kind": "OCIRepository",
                    "metadata": {"labels": {"team": "apps"}, "annotations": {"owner": "platform"}},
                    "spec": podinfo_oci_spec(&registry)
                }
            }),
        )
        .await?;
    let installed = world.succeeded(
        "install",
        "podinfo",
        1,
        &format!("podinfo@{}", tracked("6.0.0", &digest)),
    );
    let hr = world
        .wait_for("podinfo", "the install", |hr| ready_with(hr, &installed))
        .await?;
    let status = hr.status.unwrap_or_default();
    assert_eq!(
        status.helm_chart,
        Some(format!("OCIRepository/{ns}/{name}"))
    );
    assert_eq!(
        status.last_attempted_revision,
        Some(tracked("6.0.0", &digest))
    );
    assert_eq!(status.last_attempted_revision_digest, Some(digest.clone()));
    assert_eq!(
        status
            .history
            .unwrap_or_default()
            .first()
            .and_then(|s| s.oci_digest.clone()),
        Some(digest)
    );
    let repositories: Api<api::source::OCIRepository> = Api::namespaced(world.client.clone(), &ns);
    let repository = repositories.get(&name).await?;
    assert_eq!(repository.spec.url, registry.oci_url("charts/podinfo"));
    assert_eq!(repository.spec.interval.as_str(), "10m");
    let labels = repository.metadata.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("apps"));
    assert_eq!(
        labels
            .get("helm.toolkit.fluxcd.io/name")
            .map(String::as_str),
        Some("podinfo")
    );
    assert_eq!(labels.get("helm.toolkit.fluxcd.io/namespace"), Some(&ns));
    let annotations = repository.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations.get("owner").map(String::as_str),
        Some("platform")
    );

    // The same release from a HelmChart template of a HelmRepository: the
    // HelmChart takes over and the OCIRepository is deleted.
    world
        .repo
        .add_chart(&ChartSpec::config_maps("podinfo", "6.1.0"))?;
    podinfo_repository(world).await?;
    world
        .patch_spec(
            "podinfo",
            json!({"chart": {
                "kind": "HelmChart",
                "spec": {
                    "url": null, "insecure": null, "ref": null, "layerSelector": null,
                    "chart": "podinfo",
                    "version": "6.1.x",
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"}
                }
            }}),
        )
        .await?;
    let upgraded = world.succeeded("upgrade", "podinfo", 2, "podinfo@6.1.0");
    let hr = world
        .wait_for("podinfo", "the upgrade from the HelmChart", |hr| {
            ready_with(hr, &upgraded)
        })
        .await?;
    let status = hr.status.unwrap_or_default();
    assert_eq!(status.helm_chart, Some(format!("{ns}/{name}")));
    assert_eq!(status.last_attempted_revision_digest, None);
    world
        .wait_until_gone(&repositories, &name, Duration::from_secs(60))
        .await?;

    // Deleting the HelmRelease deletes the HelmChart.
    let charts: Api<api::source::HelmChart> = Api::namespaced(world.client.clone(), &ns);
    assert!(charts.get_opt(&name).await?.is_some());
    world.delete_and_wait("podinfo").await?;
    world
        .wait_until_gone(&charts, &name, Duration::from_secs(60))
        .await?;
    Ok(())
}

/// A chart kept as a directory in a Git repository.
fn git_chart(version: &str) -> Vec<(String, String)> {
    vec![
        (
            "charts/app/Chart.yaml".into(),
            format!("apiVersion: v2\nname: app\nversion: {version}\n"),
        ),
        (
            "charts/app/values.yaml".into(),
            "greeting: from git\n".into(),
        ),
        (
            "charts/app/templates/configmap.yaml".into(),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-app\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  chartVersion: {{ .Chart.Version | quote }}\n".into(),
        ),
    ]
}

#[tokio::test]
async fn git_repository_chart_path_is_installed_and_upgraded() -> Result<()> {
    let sources = WithSources::new("hr-git").await?;
    let world = &sources.world;
    let ns = world.ns().to_string();
    let git = e2e::git_server::GitServer::start()?;
    let repo = git.create_repo(&format!("{ns}-charts"), git_chart("1.0.0"))?;
    let repositories: Api<api::source::GitRepository> = create_source(
        world,
        "GitRepository",
        "charts",
        json!({
            "url": git.http_anonymous_url(repo.name()),
            "interval": "1h",
            "ref": {"branch": "main"}
        }),
    )
    .await?;
    world
        .create_release(
            "app",
            json!({
                "interval": "10m",
                "chart": {"spec": {
                    "chart": "./charts/app",
                    "interval": "1h",
                    "sourceRef": {"kind": "GitRepository", "name": "charts"}
                }}
            }),
        )
        .await?;
    let installed = world.succeeded("install", "app", 1, "app@1.0.0");
    let hr = world
        .wait_for("app", "the install", |hr| ready_with(hr, &installed))
        .await?;
    assert_eq!(
        hr.status.and_then(|s| s.helm_chart),
        Some(format!("{ns}/{ns}-app"))
    );
    assert_eq!(world.config_value("app-app", "greeting").await?, "from git");

    // A new commit bumps the chart version: the GitRepository follows the
    // branch (on request), the HelmChart is rebuilt, the release upgraded.
    repo.commit(git_chart("1.1.0"), &[], "app 1.1.0")?;
    request_reconcile(&repositories, "charts", "new-commit").await?;
    let upgraded = world.succeeded("upgrade", "app", 2, "app@1.1.0");
    world
        .wait_for("app", "the upgrade", |hr| ready_with(hr, &upgraded))
        .await?;
    assert_eq!(
        world.config_value("app-app", "chartVersion").await?,
        "1.1.0"
    );
    Ok(())
}

#[tokio::test]
async fn missing_charts_and_versions_are_reported() -> Result<()> {
    let sources = WithSources::new("hr-nochart").await?;
    let world = &sources.world;
    let ns = world.ns().to_string();
    let repositories = podinfo_repository(world).await?;
    // A chart the repository does not have, and a version range none of its
    // versions satisfies: source-controller stalls the HelmChart, the
    // HelmRelease waits for its source and says why (in helm's wording for
    // a chart missing from the index).
    for (release, chart, range, cause) in [
        ("absent", "absent", "*", "no chart name found"),
        (
            "toonew",
            "podinfo",
            "7.x",
            "no 'podinfo' chart with version matching '7.x' found",
        ),
    ] {
        world
            .create_release(
                release,
                json!({
                    "interval": "10m",
                    "chart": {"spec": {
                        "chart": chart,
                        "version": range,
                        "interval": "1h",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts"}
                    }}
                }),
            )
            .await?;
        let expected = format!(
            "HelmChart '{ns}/{ns}-{release}' is not ready: chart reference error: failed to get chart version for remote reference: {cause}"
        );
        world
            .wait_for(release, "the missing chart", |hr| {
                has(hr, "Ready", "False", "SourceNotReady")
                    && condition(hr, "Ready").is_some_and(|c| c.message == expected)
            })
            .await?;
    }
    // Publishing the version makes the waiting release install.
    world
        .repo
        .add_chart(&ChartSpec::config_maps("podinfo", "7.0.0"))?;
    request_reconcile(&repositories, "charts", "new-chart").await?;
    let charts: Api<api::source::HelmChart> = Api::namespaced(world.client.clone(), &ns);
    request_reconcile(&charts, &format!("{ns}-toonew"), "new-chart").await?;
    let installed = world.succeeded("install", "toonew", 1, "podinfo@7.0.0");
    world
        .wait_for("toonew", "the install", |hr| ready_with(hr, &installed))
        .await?;
    Ok(())
}
