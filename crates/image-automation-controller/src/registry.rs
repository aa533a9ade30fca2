//! The registry side of an ImageRepository: its credentials (a
//! dockerconfigjson Secret, or the image pull secrets of a service
//! account), its transport (`spec.certSecretRef`: a CA to trust;
//! `spec.proxySecretRef`: a proxy) and a client for its repository, shared
//! by the scan and by the digest reflection of ImagePolicies.
//!
//! Secrets are read as Flux's `runtime/secrets` reads them: `ca.crt`,
//! `tls.crt`, `tls.key` (else the legacy `caFile`, `certFile`, `keyFile`);
//! `address`, `username`, `password`. A missing Secret or key is
//! `AuthenticationFailed` ("failed to configure authentication options"),
//! retried. A client certificate is refused (Stalled): oci-client 0.18 cannot
//! present one. Without a proxySecretRef the `HTTPS_PROXY`/`HTTP_PROXY`/
//! `NO_PROXY` environment applies, as in Flux.

use std::collections::BTreeMap;
use std::time::Duration;

use api::image::ImageRepository;
use api::meta::reason;
use api::source::CloudProvider;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::Api;

use crate::context::Context;
use crate::image_name::ImageName;
use crate::reconcile::Halt;

/// Reason for a malformed image reference (Flux's `ImageURLInvalid`).
pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
/// Reason for a failed registry read (Flux's `ReadOperationFailed`).
pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";

/// The repository `spec.image` names, checked; `Stalled` when it cannot be used.
pub fn image_name(repo: &ImageRepository) -> Result<ImageName, Halt> {
    ImageName::parse(&repo.spec.image).map_err(|message| Halt::stall(IMAGE_URL_INVALID, message))
}

/// Refuses what ferroflux does not implement, rather than scanning without it.
pub fn check_supported(repo: &ImageRepository) -> Result<(), Halt> {
    if let Some(provider) = repo.spec.provider
        && provider != CloudProvider::Generic
    {
        let name = serde_json::to_value(provider)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(Halt::stall(
            reason::INVALID_PROVIDER_CONFIGURATION,
            format!(
                "provider '{name}' is not supported by ferroflux: use provider 'generic' with a dockerconfigjson spec.secretRef"
            ),
        ));
    }
    Ok(())
}

/// A client for `image` with `repo`'s credentials, each remote operation
/// bounded by `timeout`.
pub async fn client(
    ctx: &Context,
    repo: &ImageRepository,
    image: &ImageName,
    timeout: Duration,
) -> Result<oci::Repository, Halt> {
    let credentials = credentials(ctx, repo, &image.registry).await?;
    let namespace = repo.namespace().unwrap_or_default();
    let ca_pem = match &repo.spec.cert_secret_ref {
        Some(r) => Some(ca_from_secret(ctx, &namespace, &r.name).await?),
        None => None,
    };
    let proxy = match &repo.spec.proxy_secret_ref {
        Some(r) => Some(proxy_from_secret(ctx, &namespace, &r.name).await?),
        None => None,
    };
    let options = oci::Options {
        insecure: repo.spec.insecure.unwrap_or(false),
        timeout,
        ca_pem,
        proxy,
    };
    oci::Repository::new(&image.oci_url(), &credentials, &options).map_err(|e| match e {
        oci::Error::InvalidTls(message) => auth_failed(format!(
            "secret '{namespace}/{}': {message}",
            repo.spec
                .cert_secret_ref
                .as_ref()
                .map(|r| r.name.as_str())
                .unwrap_or_default()
        )),
        oci::Error::InvalidProxy(message) => auth_failed(format!(
            "secret '{namespace}/{}': {message}",
            repo.spec
                .proxy_secret_ref
                .as_ref()
                .map(|r| r.name.as_str())
                .unwrap_or_default()
        )),
        other => Halt::stall(IMAGE_URL_INVALID, other.to_string()),
    })
}

/// Flux's reason and wording for anything wrong with the Secrets an
/// ImageRepository names; retried, since the Secret may yet be fixed.
fn auth_failed(message: String) -> Halt {
    Halt::retry(
        reason::AUTHENTICATION_FAILED,
        format!("failed to configure authentication options: {message}"),
    )
}

/// The Secret `namespace/name`, or Flux's "not found" failure.
async fn secret_data(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, ByteString>, Halt> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| auth_failed(format!("failed to get secret '{namespace}/{name}': {e}")))?
        .ok_or_else(|| auth_failed(format!("secret '{namespace}/{name}' not found")))?;
    Ok(secret.data.unwrap_or_default())
}

/// `key`, else the legacy `fallback` (with a warning, as Flux logs one).
fn tls_value<'a>(
    data: &'a BTreeMap<String, ByteString>,
    key: &str,
    fallback: &str,
    secret: &str,
) -> Option<&'a [u8]> {
    if let Some(value) = data.get(key) {
        return Some(&value.0);
    }
    let value = data.get(fallback)?;
    tracing::warn!(%secret, key = fallback, preferred = key, "using legacy key in secret data");
    Some(&value.0)
}

/// The `ca.crt` of the certSecretRef, validated as Flux validates the
/// Secret; a client certificate pair stalls, since ferroflux cannot use it.
async fn ca_from_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Vec<u8>, Halt> {
    let data = secret_data(ctx, namespace, name).await?;
    let secret = format!("{namespace}/{name}");
    let cert = tls_value(&data, "tls.crt", "certFile", &secret).filter(|v| !v.is_empty());
    let key = tls_value(&data, "tls.key", "keyFile", &secret).filter(|v| !v.is_empty());
    let ca = tls_value(&data, "ca.crt", "caFile", &secret).filter(|v| !v.is_empty());
    match (cert, key) {
        (Some(_), None) => {
            return Err(auth_failed(format!(
                "secret '{secret}' contains 'tls.crt' but missing 'tls.key'"
            )));
        }
        (None, Some(_)) => {
            return Err(auth_failed(format!(
                "secret '{secret}' contains 'tls.key' but missing 'tls.crt'"
            )));
        }
        // Scanning without the certificate would only trade this message
        // for the registry's handshake failure.
        (Some(_), Some(_)) => {
            return Err(Halt::stall(
                reason::AUTHENTICATION_FAILED,
                format!(
                    "secret '{secret}' holds a TLS client certificate ('tls.crt'/'tls.key'), which ferroflux cannot present to registries: its OCI client (oci-client 0.18) has no client certificate support; remove 'tls.crt' and 'tls.key' from the Secret (keeping 'ca.crt') or use token or basic auth through spec.secretRef"
                ),
            ));
        }
        (None, None) => {}
    }
    ca.map(<[u8]>::to_vec).ok_or_else(|| {
        auth_failed(format!(
            "secret '{secret}' must contain either 'ca.crt' or both 'tls.crt' and 'tls.key'"
        ))
    })
}

/// The proxy of the proxySecretRef: `address` (required; http or https),
/// `username` and `password` (optional), as Flux reads them.
async fn proxy_from_secret(ctx: &Context, namespace: &str, name: &str) -> Result<oci::Proxy, Halt> {
    let data = secret_data(ctx, namespace, name).await?;
    let secret = format!("{namespace}/{name}");
    let text = |key: &str| {
        data.get(key)
            .map(|v| String::from_utf8_lossy(&v.0).into_owned())
    };
    // A trailing newline from `--from-file` is no part of an address.
    let address = text("address")
        .map(|a| a.trim().to_string())
        .ok_or_else(|| auth_failed(format!("secret '{secret}': key 'address' not found")))?;
    if address.is_empty() {
        return Err(auth_failed(format!(
            "secret '{secret}': proxy address is empty"
        )));
    }
    let scheme = address.split_once("://").map(|(scheme, _)| scheme);
    if scheme == Some("socks5") {
        // Flux accepts socks5; ferroflux's HTTP client is built without it.
        return Err(Halt::stall(
            reason::AUTHENTICATION_FAILED,
            format!(
                "secret '{secret}': socks5 proxies are not supported by ferroflux: use an http or https proxy"
            ),
        ));
    }
    if !matches!(scheme, Some("http" | "https")) {
        return Err(auth_failed(format!(
            "secret '{secret}': proxy URL must use one of the supported schemes (http, https, socks5), got '{}'",
            scheme.unwrap_or_default()
        )));
    }
    // Flux: a username alone is sent without a password.
    let username = text("username");
    let password = username.as_ref().and(text("password"));
    Ok(oci::Proxy {
        address,
        username,
        password,
    })
}

/// The credentials for `host`: `spec.secretRef`, else the image pull
/// secrets of `spec.serviceAccountName`, else none.
async fn credentials(
    ctx: &Context,
    repo: &ImageRepository,
    host: &str,
) -> Result<oci::Credentials, Halt> {
    let namespace = repo.namespace().unwrap_or_default();
    let secret_names: Vec<String> = if let Some(secret_ref) = &repo.spec.secret_ref {
        vec![secret_ref.name.clone()]
    } else if let Some(account) = &repo.spec.service_account_name {
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
        let account = accounts
            .get_opt(account)
            .await
            .map_err(|e| auth_failed(e.to_string()))?
            .ok_or_else(|| auth_failed(format!("serviceaccounts \"{account}\" not found")))?;
        account
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect()
    } else {
        Vec::new()
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in secret_names {
        let secret = secrets
            .get_opt(&name)
            .await
            .map_err(|e| auth_failed(e.to_string()))?
            .ok_or_else(|| auth_failed(format!("secrets \"{name}\" not found")))?;
        let data = secret.data.unwrap_or_default();
        let Some(json) = data.get(oci::DOCKER_CONFIG_JSON_KEY) else {
            return Err(auth_failed(format!(
                "secret '{namespace}/{name}' has no '{}' key: create it with `kubectl create secret docker-registry`",
                oci::DOCKER_CONFIG_JSON_KEY
            )));
        };
        let credentials = oci::Credentials::from_docker_config_json(&json.0, host)
            .map_err(|e| auth_failed(format!("secret '{namespace}/{name}': {e}")))?;
        if !matches!(credentials, oci::Credentials::Anonymous) {
            return Ok(credentials);
        }
    }
    Ok(oci::Credentials::Anonymous)
}

/// The reason and message for a failed registry operation.
pub fn registry_failure(context: &str, err: oci::Error) -> Halt {
    match err {
        oci::Error::Authentication { .. } | oci::Error::InvalidCredentials(_) => {
            Halt::retry(reason::AUTHENTICATION_FAILED, format!("{context}: {err}"))
        }
        other => Halt::retry(READ_OPERATION_FAILED, format!("{context}: {other}")),
    }
}
