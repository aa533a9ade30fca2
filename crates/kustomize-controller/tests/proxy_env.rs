//! kustomize-controller's artifact downloads under the `HTTP_PROXY` /
//! `NO_PROXY` environment, by Go's rules as in Flux: source-controller
//! advertises its artifacts under the machine's other name for loopback
//! (requests to 127.0.0.1 never use the environment's proxy), and a real
//! proxy (tinyproxy, with basic auth) logs what went through it.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use anyhow::{Result, ensure};
use e2e::proxy::{HttpProxy, loopback_alias};
use fixture::{Env, Setup};
use serde_json::json;

const CONFIGMAP: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  greeting: hello\n";

/// A namespace whose artifacts are advertised under `alias`, with
/// kustomize-controller's proxy environment `vars` (the test runner's own
/// proxy variables cleared) and `args`.
async fn start(test: &str, alias: &str, vars: &[(&str, &str)], args: &[&str]) -> Result<Env> {
    let cleared = ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"]
        .into_iter()
        .chain(["NO_PROXY", "no_proxy"])
        .map(|name| (name, ""));
    let setup = Setup {
        artifact_host: Some(alias.to_string()),
        kustomize_env: cleared
            .chain(vars.iter().copied())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Setup::default()
    };
    let cluster = e2e::cluster::shared().await?;
    Env::start_with(
        cluster,
        test,
        &[("deploy/configmap.yaml", CONFIGMAP)],
        args,
        setup,
    )
    .await
}

/// The artifact GET goes through `HTTP_PROXY` (credentials in its URL)
/// unless `NO_PROXY` names the host; with the proxy down the Kustomization
/// fails naming it, never its password.
#[tokio::test(flavor = "multi_thread")]
async fn artifact_downloads_follow_the_proxy_environment() -> Result<()> {
    let alias = loopback_alias()?;
    let mut proxy = tokio::task::spawn_blocking(|| HttpProxy::start(true)).await??;
    let proxy_url = proxy.url_with_credentials();
    let password = proxy.password().unwrap_or_default().to_string();
    // One attempt per download: the proxy-down case fails without the
    // retries' backoff.
    let env = start(
        "ks-proxy-env",
        &alias,
        &[("HTTP_PROXY", &proxy_url)],
        &["--http-retry=0"],
    )
    .await?;
    env.kustomization("app", json!({"path": "./deploy"}))
        .await?;
    let revision = env.head()?;
    env.ready("app", &revision).await?;
    let proxied = format!("GET http://{alias}:");
    let artifact = format!("/gitrepository/{}/repo/", env.ns());
    let log = proxy.log();
    ensure!(
        log.lines()
            .any(|l| l.contains(&proxied) && l.contains(&artifact)),
        "the artifact was not downloaded through the proxy:\n{log}"
    );

    // NO_PROXY naming the host: downloaded directly.
    let exempt = start(
        "ks-proxy-env-exempt",
        &alias,
        &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", &alias)],
        &[],
    )
    .await?;
    exempt
        .kustomization("app", json!({"path": "./deploy"}))
        .await?;
    exempt.ready("app", &exempt.head()?).await?;
    let exempt_artifact = format!("/gitrepository/{}/repo/", exempt.ns());
    let log = proxy.log();
    ensure!(
        !log.contains(&exempt_artifact),
        "NO_PROXY was not honoured:\n{log}"
    );

    // The proxy down: the download fails, naming it.
    proxy.stop();
    env.kustomization("down", json!({"path": "./deploy"}))
        .await?;
    let (_, message) = env
        .failing_with(
            "down",
            "ArtifactFailed",
            &format!("(through proxy {})", proxy.address()),
        )
        .await?;
    ensure!(!message.contains(&password), "{message}");
    Ok(())
}
