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
