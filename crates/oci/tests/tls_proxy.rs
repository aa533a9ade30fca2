//! The registry client's transport against real parts: a registry serving
//! HTTPS with a certificate from its own CA, and tinyproxy (with and
//! without basic auth) in front of it.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{Result, ensure};
use e2e::proxy::HttpProxy;
use e2e::registry::Registry;
use oci::{Credentials, Error, Options, Proxy, Repository};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await?
}

fn options(ca_pem: Option<&str>, proxy: Option<Proxy>) -> Options {
    Options {
        timeout: Duration::from_secs(20),
        ca_pem: ca_pem.map(|c| c.as_bytes().to_vec()),
        proxy,
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_registry_needs_its_ca_and_is_reachable_through_a_proxy() -> Result<()> {
    let registry = blocking(|| Registry::start_with(false, true)).await?;
    registry.push_image("team/app", "1.0.0")?;
    let url = registry.oci_url("team/app");
    let ca = registry.ca_pem().unwrap().to_string();

    // Not trusted by the system roots.
    let untrusted = Repository::new(&url, &Credentials::Anonymous, &options(None, None))?;
    let err = untrusted.list_tags().await.unwrap_err();
    ensure!(
        matches!(&err, Error::Registry { message, .. } if message.contains("certificate")),
        "{err}"
    );

    // Trusted with the CA (a bundle: the CA plus an unrelated certificate).
    let other = blocking(|| Registry::start_with(false, true)).await?;
    let bundle = format!("{}{ca}", other.ca_pem().unwrap());
    let trusted = Repository::new(&url, &Credentials::Anonymous, &options(Some(&bundle), None))?;
    ensure!(trusted.list_tags().await? == ["1.0.0"]);

    // Through a proxy with basic auth: the CONNECT shows in its log.
    let mut proxy = blocking(|| HttpProxy::start(true)).await?;
    let with_auth = Proxy {
        address: proxy.address(),
        username: proxy.username().map(str::to_string),
        password: proxy.password().map(str::to_string),
    };
    let proxied = Repository::new(
        &url,
        &Credentials::Anonymous,
        &options(Some(&ca), Some(with_auth.clone())),
    )?;
    ensure!(proxied.list_tags().await? == ["1.0.0"]);
    ensure!(proxy.connect_requested(&registry.host()), "{}", proxy.log());

    // Wrong password: refused by the proxy, which the error names; the
    // password never shows.
    let wrong = Proxy {
        password: Some("not-the-password".into()),
        ..with_auth.clone()
    };
    let refused = Repository::new(
        &url,
        &Credentials::Anonymous,
        &options(Some(&ca), Some(wrong)),
    )?;
    let err = refused.list_tags().await.unwrap_err().to_string();
    ensure!(err.contains(&proxy.address()), "{err}");
    ensure!(!err.contains("not-the-password"), "{err}");

    // The proxy down: a refused connection, naming the proxy.
    proxy.stop();
    let err = proxied.list_tags().await.unwrap_err().to_string();
    ensure!(err.contains(&proxy.address()), "{err}");
    ensure!(!err.contains(proxy.password().unwrap()), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_registry_through_a_proxy_without_auth() -> Result<()> {
    let registry = blocking(|| Registry::start(false)).await?;
    registry.push_image("team/app", "2.0.0")?;
    let proxy = blocking(|| HttpProxy::start(false)).await?;
    let repository = Repository::new(
        &registry.oci_url("team/app"),
        &Credentials::Anonymous,
        &Options {
            insecure: true,
            ..options(None, Some(Proxy::new(proxy.address())))
        },
    )?;
    ensure!(repository.list_tags().await? == ["2.0.0"]);
    // Plain HTTP is forwarded, not tunnelled.
    ensure!(
        proxy
            .log()
            .contains(&format!("GET http://{}/v2/", registry.host())),
        "{}",
        proxy.log()
    );
    Ok(())
}

/// The child half of [`https_proxy_environment_is_honoured`]: a scan with
/// no proxy configured, in a process whose environment that test sets.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "run by https_proxy_environment_is_honoured in a child process"]
async fn env_proxy_child() -> Result<()> {
    let url = std::env::var("FERROFLUX_TEST_URL")?;
    let ca = std::env::var("FERROFLUX_TEST_CA")?;
    let repository = Repository::new(&url, &Credentials::Anonymous, &options(Some(&ca), None))?;
    let tags = repository.list_tags().await?;
    ensure!(tags == ["1.0.0"], "{tags:?}");
    Ok(())
}

/// `HTTPS_PROXY` and `NO_PROXY` apply when no proxy is configured, by Go's
/// rules: the registry is addressed by the machine's other name for
/// loopback, as requests to 127.0.0.1 never use the environment's proxy,
/// and `ALL_PROXY` is not read. The
/// environment is per process, so the scan runs in a child: this test binary
/// again, running only [`env_proxy_child`].
#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_environment_is_honoured() -> Result<()> {
    let registry = blocking(|| Registry::start_with(false, true)).await?;
    registry.push_image("team/app", "1.0.0")?;
    let mut proxy = blocking(|| HttpProxy::start(false)).await?;
    let aliased = e2e::proxy::via_alias(&registry.oci_url("team/app"))?;
    let child_at = |url: &str, vars: Vec<(&'static str, String)>| {
        let mut cmd = std::process::Command::new(std::env::current_exe()?);
        cmd.args(["--exact", "env_proxy_child", "--ignored"])
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env("FERROFLUX_TEST_URL", url)
            .env("FERROFLUX_TEST_CA", registry.ca_pem().unwrap_or_default())
            .envs(vars);
        let output = cmd.output()?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::Ok((output.status.success() && text.contains("1 passed"), text))
    };
    let child = |vars| child_at(&aliased, vars);

    let registry_host = e2e::proxy::via_alias(&registry.host())?;
    let (passed, text) = child(vec![("HTTPS_PROXY", proxy.address())])?;
    ensure!(passed, "{text}");
    ensure!(
        proxy.connect_requested(&registry_host),
        "HTTPS_PROXY was not used:\n{}",
        proxy.log()
    );

    // The proxy down: the scan fails through it, unless NO_PROXY exempts
    // the registry.
    proxy.stop();
    let (passed, text) = child(vec![("HTTPS_PROXY", proxy.address())])?;
    ensure!(!passed, "{text}");
    let (passed, text) = child(vec![
        ("HTTPS_PROXY", proxy.address()),
        ("NO_PROXY", e2e::proxy::loopback_alias()?),
    ])?;
    ensure!(passed, "{text}");
    // Go has no ALL_PROXY: the proxy that is down is not used.
    let (passed, text) = child(vec![("ALL_PROXY", proxy.address())])?;
    ensure!(passed, "{text}");
    // Requests to 127.0.0.1 never go through the environment's proxy.
    let (passed, text) = child_at(
        &registry.oci_url("team/app"),
        vec![("HTTPS_PROXY", proxy.address())],
    )?;
    ensure!(passed, "{text}");
    Ok(())
}
