//! The controller's `HTTP_PROXY` / `HTTPS_PROXY` / `NO_PROXY` environment
//! end to end, by Go's `ProxyFromEnvironment` rules as in Flux: the real
//! binary, a real chart repository and registry and a real HTTP proxy
//! (tinyproxy). The servers listen on 127.0.0.1, which Go never proxies, so
//! the proxied requests address them by the machine's other name for
//! loopback (`e2e::proxy::loopback_alias`).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::{HelmChart, HelmRepository, OCIRepository};
use e2e::chart_repo::{ChartRepo, ChartSpec};
use e2e::proxy::{HttpProxy, loopback_alias, via_alias};
use e2e::registry::Registry;
use fixture::{Env, condition, object};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

/// A controller whose environment holds `vars` and nothing else about
/// proxies (the test runner's own proxy variables are overridden).
async fn start(test: &str, vars: &[(&str, &str)]) -> Result<Env> {
    let mut env: Vec<(&str, &str)> = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"]
        .into_iter()
        .chain(["NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"])
        .map(|name| (name, ""))
        .collect();
    env.extend_from_slice(vars);
    let env = Env::start_with_env(test, &[], &env).await?;
    env.wait_served::<OCIRepository>(WAIT).await?;
    Ok(env)
}

/// Waits for the HelmRepository `name` to be Ready=True.
async fn repository_ready(env: &Env, name: &str) -> Result<()> {
    env.wait_for::<HelmRepository, _>(name, WAIT, |repo| {
        let ready = condition(repo.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "True").then_some(())
    })
    .await
}

/// Creates the HelmRepository `name` for `charts`.
async fn helm_repository(env: &Env, name: &str, charts: &ChartRepo) -> Result<()> {
    let spec = json!({"url": charts.url(), "interval": "1h"});
    env.create::<HelmRepository>(object("HelmRepository", name, spec))
        .await
        .map(drop)
}

/// Creates the OCIRepository `name` with `spec`.
async fn oci_repository(env: &Env, name: &str, spec: serde_json::Value) -> Result<()> {
    env.create::<OCIRepository>(object("OCIRepository", name, spec))
        .await
        .map(drop)
}

async fn chart_repo(alias: &str) -> Result<ChartRepo> {
    let alias = alias.to_string();
    let charts =
        tokio::task::spawn_blocking(move || ChartRepo::start_named(false, &alias)).await??;
    charts.add_chart(&ChartSpec::config_maps("proxied", "1.0.0"))?;
    Ok(charts)
}

/// Waits for `name` to be Ready=False with `reason`, its message naming
/// `text`; returns its status as JSON.
async fn failing_naming<K>(env: &Env, name: &str, reason: &str, text: &str) -> Result<String>
where
    K: fixture::NamespacedObject,
{
    let object = env
        .failing::<K>(name, reason, text)
        .await
        .with_context(|| format!("{name}:\n{}", env.controller.log_tail(30)))?;
    Ok(serde_json::to_value(&object)?["status"].to_string())
}

async fn start_proxy(auth: bool) -> Result<HttpProxy> {
    tokio::task::spawn_blocking(move || HttpProxy::start(auth)).await?
}

/// `http_proxy=http://user:password@proxy`: the HelmRepository index, the
/// HelmChart's archive and the OCIRepository's manifests and layer all go
/// through the proxy, with its credentials; a loopback registry is reached
/// directly, as Go does; with the proxy down, the objects fail naming it
/// (never its password).
#[tokio::test(flavor = "multi_thread")]
async fn helm_and_oci_fetches_follow_the_proxy_environment() -> Result<()> {
    let alias = loopback_alias()?;
    let mut proxy = start_proxy(true).await?;
    let proxy_url = proxy.url_with_credentials();
    let password = proxy.password().context("proxy password")?.to_string();
    let env = start(
        "proxy-env",
        &[("http_proxy", &proxy_url), ("https_proxy", &proxy_url)],
    )
    .await?;
    let charts = chart_repo(&alias).await?;
    let registry = Registry::shared(false, false).await?;
    let repo = format!("{}/app", env.ns());
    let digest = registry.push_flux_artifact(&repo, "v1", [("app.yaml", "a: 1\n")])?;

    helm_repository(&env, "charts", &charts).await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "chart",
        json!({"chart": "proxied", "version": "1.0.0", "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    ))
    .await?;
    let oci_url = via_alias(&registry.oci_url(&repo))?;
    oci_repository(
        &env,
        "app",
        json!({"url": oci_url, "interval": "1h", "insecure": true, "ref": {"tag": "v1"}}),
    )
    .await?;
    oci_repository(
        &env,
        "loopback",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}}),
    )
    .await?;
    repository_ready(&env, "charts").await?;
    env.ready_at::<HelmChart>("chart", "1.0.0").await?;
    let revision = format!("v1@{digest}");
    env.ready_at::<OCIRepository>("app", &revision).await?;
    env.ready_at::<OCIRepository>("loopback", &revision).await?;

    let log = proxy.log();
    let registry_host = via_alias(&registry.host())?;
    for request in [
        format!("{}/index.yaml", charts.url()),
        format!("{}/proxied-1.0.0.tgz", charts.url()),
        format!("http://{registry_host}/v2/{repo}/manifests/v1"),
        format!("http://{registry_host}/v2/{repo}/blobs/sha256:"),
    ] {
        ensure!(
            log.contains(&request),
            "no '{request}' in the proxy log:\n{log}"
        );
    }
    ensure!(
        !log.contains(&registry.host()),
        "a loopback registry was reached through the proxy:\n{log}"
    );

    // The proxy down: new fetches fail, naming it.
    proxy.stop();
    let address = proxy.address();
    helm_repository(&env, "charts-down", &charts).await?;
    oci_repository(
        &env,
        "app-down",
        json!({"url": oci_url, "interval": "1h", "insecure": true, "ref": {"tag": "v1"},
               "timeout": "10s"}),
    )
    .await?;
    let through = format!("(through proxy {address})");
    let down = [
        failing_naming::<HelmRepository>(&env, "charts-down", "IndexationFailed", &through).await?,
        failing_naming::<OCIRepository>(&env, "app-down", "OCIArtifactPullFailed", &through)
            .await?,
    ];
    for status in down {
        ensure!(
            !status.contains(&password),
            "the proxy password leaked: {status}"
        );
    }
    Ok(())
}

/// `NO_PROXY` with a port exempts only that port of the host: the chart
/// repository (exempted) is reached directly while its `HTTP_PROXY` is
/// down, the registry on another port of the same host goes through a
/// proxy without credentials.
#[tokio::test(flavor = "multi_thread")]
async fn no_proxy_exempts_a_host_and_port() -> Result<()> {
    let alias = loopback_alias()?;
    let charts = chart_repo(&alias).await?;
    let chart_host = charts.url().trim_start_matches("http://").to_string();
    let mut down = start_proxy(false).await?;
    down.stop();
    // Registries are reached by HTTPS_PROXY only for https://: this one is
    // plain HTTP, so both go by HTTP_PROXY, which is down.
    let env = start(
        "proxy-env-no-proxy",
        &[
            ("HTTP_PROXY", &down.address()),
            ("NO_PROXY", &format!("example.invalid, {chart_host}")),
        ],
    )
    .await?;
    let registry = Registry::shared(false, false).await?;
    let repo = format!("{}/app", env.ns());
    registry.push_flux_artifact(&repo, "v1", [("app.yaml", "a: 1\n")])?;
    helm_repository(&env, "exempt", &charts).await?;
    oci_repository(
        &env,
        "proxied",
        json!({"url": via_alias(&registry.oci_url(&repo))?, "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}, "timeout": "10s"}),
    )
    .await?;
    repository_ready(&env, "exempt").await?;
    env.failing::<OCIRepository>(
        "proxied",
        "OCIArtifactPullFailed",
        &format!("(through proxy {})", down.address()),
    )
    .await?;

    // The same registry through a proxy that answers, without credentials.
    let open = start_proxy(false).await?;
    let env = start("proxy-env-open", &[("HTTP_PROXY", &open.address())]).await?;
    let repo = format!("{}/app", env.ns());
    let digest = registry.push_flux_artifact(&repo, "v1", [("app.yaml", "a: 1\n")])?;
    oci_repository(
        &env,
        "proxied",
        json!({"url": via_alias(&registry.oci_url(&repo))?, "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}}),
    )
    .await?;
    env.ready_at::<OCIRepository>("proxied", &format!("v1@{digest}"))
        .await?;
    let log = open.log();
    ensure!(
        log.contains(&format!("/v2/{repo}/manifests/v1")),
        "not proxied:\n{log}"
    );
    Ok(())
}
