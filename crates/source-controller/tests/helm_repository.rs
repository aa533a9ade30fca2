//! HelmRepository end to end: the real binary against a real chart repository
//! (lighttpd serving `helm repo index` output, with basic auth).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::HelmRepository;
use e2e::chart_repo::{ChartRepo, ChartSpec};
use fixture::{Env, condition, download};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn helm_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": name},
        "spec": spec,
    })
}

async fn ready(env: &Env, name: &str) -> Result<HelmRepository> {
    env.wait_for::<HelmRepository, _>(name, WAIT, |repo| {
        let status = repo.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "True" && status.observed_generation == repo.metadata.generation)
            .then(|| repo.clone())
    })
    .await
}

async fn failing(env: &Env, name: &str, reason: &str) -> Result<String> {
    env.wait_for::<HelmRepository, _>(name, WAIT, |repo| {
        let ready = condition(repo.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "False" && ready.reason == reason).then(|| ready.message.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn index_with_basic_auth_is_stored_and_follows_new_charts() -> Result<()> {
    let env = Env::start("helmrepo", &[]).await?;
    let charts = tokio::task::spawn_blocking(|| ChartRepo::start(true)).await??;
    charts.add_chart(&ChartSpec::config_maps("podinfo", "6.0.0"))?;
    env.secret(
        "repo-auth",
        &[
            ("username", charts.username().context("username")?),
            ("password", charts.password().context("password")?),
        ],
    )
    .await?;
    env.create::<HelmRepository>(helm_repository(
        "charts",
        json!({"url": charts.url(), "interval": "1h", "secretRef": {"name": "repo-auth"}}),
    ))
    .await?;
    let obj = ready(&env, "charts").await?;
    let status = obj.status.context("status")?;
    let artifact = status.artifact.context("artifact")?;
    ensure!(
        artifact.revision.starts_with("sha256:") && artifact.revision == artifact.digest,
        "{artifact:?}"
    );
    let ready_message = &condition(status.conditions.as_ref(), "Ready")
        .context("Ready")?
        .message;
    ensure!(*ready_message == format!("stored artifact: revision '{}'", artifact.revision));
    let bytes = download(&artifact.url).await?;
    ensure!(runtime::artifact::sha256_digest(&bytes) == artifact.digest);
    let index: serde_json::Value = serde_json::from_slice(&bytes)?;
    ensure!(
        index["entries"]["podinfo"][0]["version"] == "6.0.0",
        "{index}"
    );
    // The stable index.yaml link serves the same file.
    let link = status.url.context("status.url")?;
    ensure!(link.ends_with("/index.yaml"));
    ensure!(download(&link).await? == bytes);

    charts.add_chart(&ChartSpec::config_maps("podinfo", "6.1.0"))?;
    env.request_reconcile::<HelmRepository>("charts").await?;
    let newer = env
        .wait_for::<HelmRepository, _>("charts", WAIT, |repo| {
            let a = repo.status.as_ref()?.artifact.as_ref()?;
            (a.revision != artifact.revision).then(|| a.clone())
        })
        .await?;
    let index: serde_json::Value = serde_json::from_slice(&download(&newer.url).await?)?;
    ensure!(
        index["entries"]["podinfo"][0]["version"] == "6.1.0",
        "newest first: {index}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_credentials_malformed_index_and_oci_type() -> Result<()> {
    let env = Env::start("helmrepo-bad", &[]).await?;
    let (private, open) = tokio::task::spawn_blocking(|| {
        anyhow::Ok((ChartRepo::start(true)?, ChartRepo::start(false)?))
    })
    .await??;
    env.secret(
        "wrong",
        &[
            ("username", private.username().context("user")?),
            ("password", "nope"),
        ],
    )
    .await?;
    env.create::<HelmRepository>(helm_repository(
        "wrong-password",
        json!({"url": private.url(), "interval": "1h", "secretRef": {"name": "wrong"}}),
    ))
    .await?;
    failing(&env, "wrong-password", "AuthenticationFailed").await?;

    std::fs::write(
        open.charts_dir().join("index.yaml"),
        "this: [is not an index",
    )?;
    env.create::<HelmRepository>(helm_repository(
        "garbage",
        json!({"url": open.url(), "interval": "1h"}),
    ))
    .await?;
    let message = failing(&env, "garbage", "IndexationFailed").await?;
    ensure!(message.contains("parse"), "{message}");

    env.create::<HelmRepository>(helm_repository(
        "oci",
        json!({"url": "oci://127.0.0.1:5000/charts", "type": "oci", "interval": "1h"}),
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let obj = env.api::<HelmRepository>().get("oci").await?;
    ensure!(
        obj.status
            .as_ref()
            .is_none_or(|s| s.conditions.is_none() && s.artifact.is_none()),
        "an OCI HelmRepository is not reconciled: {:?}",
        obj.status
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_from_http_repository_follows_semver_range() -> Result<()> {
    use api::source::HelmChart;
    let env = Env::start("helmchart", &[]).await?;
    let charts = tokio::task::spawn_blocking(|| ChartRepo::start(true)).await??;
    for version in ["6.0.0", "6.1.0", "7.0.0"] {
        charts.add_chart(&ChartSpec::config_maps("podinfo", version))?;
    }
    env.secret(
        "repo-auth",
        &[
            ("username", charts.username().context("username")?),
            ("password", charts.password().context("password")?),
        ],
    )
    .await?;
    env.create::<HelmRepository>(helm_repository(
        "charts",
        json!({"url": charts.url(), "interval": "1h", "secretRef": {"name": "repo-auth"}}),
    ))
    .await?;
    let chart = |name: &str, version: &str| {
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmChart",
            "metadata": {"name": name},
            "spec": {"chart": "podinfo", "version": version, "interval": "1h",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}},
        })
    };
    env.create::<HelmChart>(chart("podinfo", "6.x")).await?;
    env.create::<HelmChart>(chart("missing", "9.x")).await?;

    let pulled = |version: &'static str| {
        move |obj: &HelmChart| {
            let status = obj.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (ready.status == "True" && status.artifact.as_ref()?.revision == version)
                .then(|| obj.clone())
        }
    };
    let obj = env
        .wait_for::<HelmChart, _>("podinfo", WAIT, pulled("6.1.0"))
        .await?;
    let status = obj.status.context("status")?;
    let artifact = status.artifact.context("artifact")?;
    ensure!(artifact.path == format!("helmchart/{}/podinfo/podinfo-6.1.0.tgz", env.ns()));
    ensure!(
        condition(status.conditions.as_ref(), "Ready").map(|c| c.message.as_str())
            == Some("pulled 'podinfo' chart with version '6.1.0'")
    );
    ensure!(status.observed_chart_name.as_deref() == Some("podinfo"));
    let unpacked = fixture::fetch_artifact(&artifact.url, &artifact.digest).await?;
    let chart_yaml = std::fs::read_to_string(unpacked.path().join("podinfo/Chart.yaml"))?;
    ensure!(chart_yaml.contains("version: 6.1.0"), "{chart_yaml}");

    let message = env
        .wait_for::<HelmChart, _>("missing", WAIT, |obj| {
            let ready = condition(obj.status.as_ref()?.conditions.as_ref(), "Ready")?;
            (ready.status == "False" && ready.reason == "ChartReferenceError")
                .then(|| ready.message.clone())
        })
        .await?;
    ensure!(message.contains("9.x"), "{message}");

    // A newer matching version in the repository reaches the chart through the repository alone.
    charts.add_chart(&ChartSpec::config_maps("podinfo", "6.2.0"))?;
    env.request_reconcile::<HelmRepository>("charts").await?;
    env.wait_for::<HelmChart, _>("podinfo", WAIT, pulled("6.2.0"))
        .await?;
    Ok(())
}
