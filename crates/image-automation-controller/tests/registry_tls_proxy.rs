//! ImageRepository `spec.certSecretRef` and `spec.proxySecretRef` end to
//! end: the real controller binary against the real control plane, a real
//! registry serving HTTPS with a certificate from a CA of its own (Debian's
//! docker-registry) and a real HTTP proxy (Debian's tinyproxy), with and
//! without basic auth; also the `HTTPS_PROXY`/`NO_PROXY` environment.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use anyhow::{Context, Result, ensure};
use api::image::{ImagePolicy, ImageRepository};
use e2e::proxy::HttpProxy;
use e2e::registry::Registry;
use fixture::{Env, NamespacedObject, condition};
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;

/// The HTTPS registry the tests of this binary share.
async fn tls_registry() -> Result<&'static Registry> {
    Registry::shared(false, true).await
}

async fn start_proxy(auth: bool) -> Result<HttpProxy> {
    tokio::task::spawn_blocking(move || HttpProxy::start(auth)).await?
}

fn image_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
           "metadata": {"name": name}, "spec": spec})
}

async fn secret(env: &Env, name: &str, data: serde_json::Value) -> Result<()> {
    env.apply::<Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "type": "Opaque", "stringData": data,
    }))
    .await
    .map(|_| ())
}

/// Waits for `type`=`status` with `reason` and a message containing `message`.
async fn condition_is<K>(
    env: &Env,
    name: &str,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<String>
where
    K: NamespacedObject + runtime::status::StatusObject,
{
    let (type_, status, reason, message) = (
        type_.to_string(),
        status.to_string(),
        reason.to_string(),
        message.to_string(),
    );
    env.wait_for::<K, _>(name, move |obj| {
        let mut current = obj.status()?.clone();
        let conditions = K::conditions(&mut current).clone();
        let found = condition(conditions.as_ref(), &type_)?;
        (found.status == status && found.reason == reason && found.message.contains(&message))
            .then(|| found.message.clone())
    })
    .await
}

async fn ready_is(
    env: &Env,
    name: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<String> {
    condition_is::<ImageRepository>(env, name, "Ready", status, reason, message).await
}

#[tokio::test(flavor = "multi_thread")]
async fn cert_secret_ref_trusts_the_registry_ca() -> Result<()> {
    let env = Env::start("img-tls", &[]).await?;
    let registry = tls_registry().await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    let digest = registry.push_image(&repo, "1.1.0")?;
    let image = format!("{}/{repo}", registry.host());
    let ca = registry.ca_pem().context("the registry has no CA")?;

    // Without the CA: the handshake fails on the unknown issuer.
    env.apply::<ImageRepository>(image_repository(
        "untrusted",
        json!({"image": image, "interval": "1h"}),
    ))
    .await?;
    let message = ready_is(&env, "untrusted", "False", "ReadOperationFailed", "").await?;
    ensure!(
        message.contains("scan failed") && message.contains("UnknownIssuer"),
        "{message}"
    );

    // With it (`ca.crt`): scanned, and the ImagePolicy's digest reflection
    // goes through the same client.
    secret(&env, "registry-ca", json!({"ca.crt": ca})).await?;
    env.apply::<ImageRepository>(image_repository(
        "trusted",
        json!({"image": image, "interval": "1h", "certSecretRef": {"name": "registry-ca"}}),
    ))
    .await?;
    ready_is(
        &env,
        "trusted",
        "True",
        "Succeeded",
        "successful scan: found 2 tags",
    )
    .await?;
    env.apply::<ImagePolicy>(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
        "metadata": {"name": "semver"},
        "spec": {"imageRepositoryRef": {"name": "trusted"},
                 "policy": {"semver": {"range": "1.x"}},
                 "digestReflectionPolicy": "IfNotPresent"}}))
        .await?;
    condition_is::<ImagePolicy>(
        &env,
        "semver",
        "Ready",
        "True",
        "Succeeded",
        &format!("resolved to 1.1.0 with digest {digest}"),
    )
    .await?;

    // Flux still reads the legacy `caFile`.
    secret(&env, "legacy-ca", json!({"caFile": ca})).await?;
    env.apply::<ImageRepository>(image_repository(
        "legacy",
        json!({"image": image, "interval": "1h", "certSecretRef": {"name": "legacy-ca"}}),
    ))
    .await?;
    ready_is(&env, "legacy", "True", "Succeeded", "found 2 tags").await?;

    // A missing Secret, a certificate without its key, nothing usable: Flux's
    // AuthenticationFailed, naming the Secret and the key.
    let ns = env.ns().to_string();
    let cases = [
        ("missing", None, format!("secret '{ns}/nope' not found")),
        (
            "half-pair",
            Some(json!({"tls.crt": ca})),
            format!("secret '{ns}/half-pair' contains 'tls.crt' but missing 'tls.key'"),
        ),
        (
            "empty",
            Some(json!({"other": "x"})),
            format!(
                "secret '{ns}/empty' must contain either 'ca.crt' or both 'tls.crt' and 'tls.key'"
            ),
        ),
        (
            "garbage",
            Some(json!({"ca.crt": "not a certificate"})),
            format!("secret '{ns}/garbage': failed to parse CA certificate"),
        ),
    ];
    for (name, data, expected) in &cases {
        let secret_name = if data.is_some() { *name } else { "nope" };
        if let Some(data) = data {
            secret(&env, name, data.clone()).await?;
        }
        env.apply::<ImageRepository>(image_repository(
            name,
            json!({"image": image, "interval": "1h", "certSecretRef": {"name": secret_name}}),
        ))
        .await?;
        let message = ready_is(&env, name, "False", "AuthenticationFailed", expected).await?;
        ensure!(
            message.starts_with("failed to configure authentication options: "),
            "{message}"
        );
    }

    // A client certificate: ferroflux cannot present one, so it stalls
    // rather than fail every handshake.
    secret(
        &env,
        "client-cert",
        json!({"ca.crt": ca, "tls.crt": ca, "tls.key": "key"}),
    )
    .await?;
    env.apply::<ImageRepository>(image_repository(
        "mtls",
        json!({"image": image, "interval": "1h", "certSecretRef": {"name": "client-cert"}}),
    ))
    .await?;
    condition_is::<ImageRepository>(
        &env,
        "mtls",
        "Stalled",
        "True",
        "AuthenticationFailed",
        "cannot present to registries",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_secret_ref_routes_scans_through_the_proxy() -> Result<()> {
    let env = Env::start("img-proxy", &[]).await?;
    let registry = tls_registry().await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    let image = format!("{}/{repo}", registry.host());
    secret(
        &env,
        "registry-ca",
        json!({"ca.crt": registry.ca_pem().context("no CA")?}),
    )
    .await?;
    let spec = |proxy_secret: &str| {
        json!({"image": image, "interval": "1h",
               "certSecretRef": {"name": "registry-ca"},
               "proxySecretRef": {"name": proxy_secret}})
    };
    let mut proxy = start_proxy(true).await?;
    let (user, password) = (
        proxy.username().context("no user")?.to_string(),
        proxy.password().context("no password")?.to_string(),
    );

    // With the proxy's credentials: scanned, tunnelled through it.
    secret(
        &env,
        "proxy",
        json!({"address": proxy.address(), "username": user, "password": password}),
    )
    .await?;
    env.apply::<ImageRepository>(image_repository("via-proxy", spec("proxy")))
        .await?;
    ready_is(&env, "via-proxy", "True", "Succeeded", "found 1 tags").await?;
    ensure!(
        proxy.connect_requested(&registry.host()),
        "no CONNECT {} in the proxy log:\n{}",
        registry.host(),
        proxy.log()
    );

    // Wrong credentials: refused by the proxy, which the message names;
    // the password given never shows.
    secret(
        &env,
        "wrong-proxy",
        json!({"address": proxy.address(), "username": user, "password": "not-the-password"}),
    )
    .await?;
    env.apply::<ImageRepository>(image_repository("wrong-credentials", spec("wrong-proxy")))
        .await?;
    let message = ready_is(
        &env,
        "wrong-credentials",
        "False",
        "ReadOperationFailed",
        &format!("through proxy {}", proxy.address()),
    )
    .await?;
    ensure!(!message.contains("not-the-password"), "{message}");

    // A proxy Secret without `address`.
    secret(&env, "no-address", json!({"username": user})).await?;
    env.apply::<ImageRepository>(image_repository("no-address", spec("no-address")))
        .await?;
    ready_is(
        &env,
        "no-address",
        "False",
        "AuthenticationFailed",
        &format!("secret '{}/no-address': key 'address' not found", env.ns()),
    )
    .await?;

    // The proxy down: the scan fails naming it, never its password.
    proxy.stop();
    env.request_reconcile::<ImageRepository>("via-proxy")
        .await?;
    let message = ready_is(
        &env,
        "via-proxy",
        "False",
        "ReadOperationFailed",
        &format!("through proxy {}", proxy.address()),
    )
    .await?;
    ensure!(message.contains("Connection refused"), "{message}");
    ensure!(!message.contains(&password), "{message}");
    let events_and_log = env.log_tail(200);
    ensure!(!events_and_log.contains(&password), "{events_and_log}");
    Ok(())
}

/// The proxy environment reaches the registry client when no
/// proxySecretRef is set, by Go's rules as in Flux: `HTTPS_PROXY` for an
/// HTTPS registry, which is addressed by the machine's other name for
/// loopback (requests to 127.0.0.1, like the API server's, never use the
/// environment's proxy).
#[tokio::test(flavor = "multi_thread")]
async fn environment_proxy_applies_without_a_proxy_secret_ref() -> Result<()> {
    let registry = tls_registry().await?;
    let registry_host = e2e::proxy::via_alias(&registry.host())?;
    let proxy = start_proxy(false).await?;
    let env = Env::start_with_env(
        "img-env-proxy",
        &[],
        &[("HTTPS_PROXY", proxy.address().as_str())],
    )
    .await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    secret(
        &env,
        "registry-ca",
        json!({"ca.crt": registry.ca_pem().context("no CA")?}),
    )
    .await?;
    env.apply::<ImageRepository>(image_repository(
        "env-proxy",
        json!({"image": format!("{registry_host}/{repo}"), "interval": "1h",
               "certSecretRef": {"name": "registry-ca"}}),
    ))
    .await?;
    ready_is(&env, "env-proxy", "True", "Succeeded", "found 1 tags").await?;
    ensure!(
        proxy.connect_requested(&registry_host),
        "HTTPS_PROXY was not used:\n{}",
        proxy.log()
    );

    // NO_PROXY exempts the registry: a proxy that is down does not matter.
    let mut down = start_proxy(false).await?;
    down.stop();
    let alias = e2e::proxy::loopback_alias()?;
    let bypass = Env::start_with_env(
        "img-no-proxy",
        &[],
        &[
            ("HTTPS_PROXY", down.address().as_str()),
            ("NO_PROXY", alias.as_str()),
        ],
    )
    .await?;
    let repo = format!("{}/app", bypass.ns());
    registry.push_image(&repo, "1.0.0")?;
    secret(
        &bypass,
        "registry-ca",
        json!({"ca.crt": registry.ca_pem().context("no CA")?}),
    )
    .await?;
    bypass
        .apply::<ImageRepository>(image_repository(
            "no-proxy",
            json!({"image": format!("{registry_host}/{repo}"), "interval": "1h",
                   "certSecretRef": {"name": "registry-ca"}}),
        ))
        .await?;
    ready_is(&bypass, "no-proxy", "True", "Succeeded", "found 1 tags").await?;
    Ok(())
}
