//! A Provider and its Secrets turned into what the notifier needs: the
//! [`Target`] (address, channel, credentials, headers) and the
//! [`Transport`] (proxy, CA and client certificate, timeout), with Flux's
//! precedence: a Secret's `address` over `spec.address`, the proxy Secret
//! over the Secret's deprecated `proxy` key. (`v1beta3`'s `spec.proxy` is
//! not in `v1`, which objects are stored as: the API server drops it, as
//! for Flux.)

use std::collections::BTreeMap;

use api::notification::Provider;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use notifier::{ProviderIdentity, Target, Transport};

use crate::event_metadata::is_commit_status_provider;

/// The longest address Flux accepts from a Secret.
const MAX_ADDRESS_LENGTH: usize = 2048;

/// The Secrets a Provider references, as read.
#[derive(Debug, Clone, Default)]
pub struct ProviderSecrets {
    /// `spec.secretRef`.
    pub secret: Option<Secret>,
    /// `spec.proxySecretRef`.
    pub proxy: Option<Secret>,
    /// `spec.certSecretRef`.
    pub cert: Option<Secret>,
}

/// Reads the Secrets `provider` references, in its namespace.
pub async fn fetch_secrets(
    client: &kube::Client,
    provider: &Provider,
) -> Result<ProviderSecrets, String> {
    let namespace = provider.metadata.namespace.as_deref().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let get = |name: Option<String>| {
        let api = api.clone();
        async move {
            match name {
                None => Ok(None),
                Some(name) => api.get(&name).await.map(Some).map_err(|e| {
                    format!(
                        "failed to get secret '{namespace}/{name}': {}",
                        short_kube_error(&e)
                    )
                }),
            }
        }
    };
    let spec = &provider.spec;
    Ok(ProviderSecrets {
        secret: get(spec.secret_ref.as_ref().map(|r| r.name.clone())).await?,
        proxy: get(spec.proxy_secret_ref.as_ref().map(|r| r.name.clone())).await?,
        cert: get(spec.cert_secret_ref.as_ref().map(|r| r.name.clone())).await?,
    })
}

/// A Kubernetes API error in one line.
pub fn short_kube_error(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// The target and transport of `provider` with `secrets`; an error names the
/// field or Secret key at fault.
pub fn build(
    provider: &Provider,
    secrets: &ProviderSecrets,
) -> Result<(Target, Transport), String> {
    let spec = &provider.spec;
    if let Some(account) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        return Err(format!(
            "spec.serviceAccountName '{account}' is not supported by ferroflux: workload identity is not implemented; use a secretRef"
        ));
    }
    let mut target = Target {
        address: spec.address.clone().unwrap_or_default(),
        channel: spec.channel.clone().filter(|c| !c.is_empty()),
        username: spec.username.clone().filter(|u| !u.is_empty()),
        provider: ProviderIdentity {
            name: provider.metadata.name.clone().unwrap_or_default(),
            namespace: provider.metadata.namespace.clone().unwrap_or_default(),
            uid: provider.metadata.uid.clone().unwrap_or_default(),
        },
        commit_status_expr: spec.commit_status_expr.clone().filter(|e| !e.is_empty()),
        ..Target::default()
    };
    let mut transport = Transport::default();
    if let Some(timeout) = &spec.timeout {
        transport.timeout = Some(
            timeout
                .to_std()
                .map_err(|e| format!("invalid spec.timeout '{timeout}': {e}"))?,
        );
    }

    if let Some(secret) = &secrets.secret {
        let name = secret_name(secret);
        let data = secret_data(secret);
        if let Some(address) = text(&data, "address") {
            if address.len() > MAX_ADDRESS_LENGTH {
                return Err(format!(
                    "invalid address in secret '{name}': address exceeds maximum length of {MAX_ADDRESS_LENGTH} bytes"
                ));
            }
            target.address = address.trim().to_string();
        }
        if let Some(proxy) = text(&data, "proxy") {
            transport.proxy = Some(proxy.trim().to_string());
        }
        if let Some(token) = text(&data, "token") {
            target.token = Some(token.trim().to_string());
        }
        if let Some(username) = text(&data, "username") {
            target.username = Some(username);
        }
        if let Some(password) = text(&data, "password") {
            target.password = Some(password);
        }
        if let Some(headers) = data.get("headers") {
            target.headers = parse_headers(headers)
                .map_err(|e| format!("failed to read headers from secret '{name}': {e}"))?;
        }
        target.secret = data;
    }

    if let Some(proxy) = &secrets.proxy {
        transport.proxy = Some(proxy_url(proxy)?);
    }

    let tls_secret = match (&secrets.cert, &secrets.secret) {
        (Some(cert), _) => Some(cert),
        // Commit status Providers may keep their CA with their credentials.
        (None, Some(secret))
            if is_commit_status_provider(spec.r#type)
                && secret_data(secret).contains_key("ca.crt") =>
        {
            Some(secret)
        }
        _ => None,
    };
    if let Some(secret) = tls_secret {
        let (ca, identity) = tls_material(secret)?;
        transport.ca_pem = ca;
        transport.client_identity_pem = identity;
    }
    Ok((target, transport))
}

fn secret_name(secret: &Secret) -> String {
    format!(
        "{}/{}",
        secret.metadata.namespace.as_deref().unwrap_or_default(),
        secret.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The Secret's keys and values (`stringData` too, for Secrets built in tests).
fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        data.insert(k.clone(), v.clone().into_bytes());
    }
    data
}

fn text(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// The Secret's `headers`: a YAML map of header names to values.
fn parse_headers(yaml: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let text = std::str::from_utf8(yaml).map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let value: serde_json::Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("expected a map of header names to values".into());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Err(format!(
                "the value of header '{k}' is not a string: {other}"
            )),
        })
        .collect()
}

/// The proxy URL of a proxy Secret: `address`, with `username` and
/// `password` as its user info.
fn proxy_url(secret: &Secret) -> Result<String, String> {
    let name = secret_name(secret);
    let data = secret_data(secret);
    let address = text(&data, "address")
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .ok_or_else(|| format!("invalid proxy secret '{name}': key 'address' is missing"))?;
    let Some((scheme, rest)) = address.split_once("://") else {
        return Err(format!(
            "invalid proxy secret '{name}': address '{address}' is not a URL (http://host:port)"
        ));
    };
    let username = text(&data, "username");
    let password = text(&data, "password");
    match (username, password) {
        (None, None) => Ok(address),
        (Some(user), password) => {
            let mut userinfo = percent_encode(&user);
            if let Some(password) = password {
                userinfo.push(':');
                userinfo.push_str(&percent_encode(&password));
            }
            Ok(format!("{scheme}://{userinfo}@{rest}"))
        }
        (None, Some(_)) => Err(format!(
            "invalid proxy secret '{name}': key 'password' is set without 'username'"
        )),
    }
}

/// URL user-info encoding: everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

type TlsMaterial = (Option<Vec<u8>>, Option<Vec<u8>>);

/// `ca.crt` (or the legacy `caFile`), and `tls.crt` with `tls.key` as one
/// PEM identity.
fn tls_material(secret: &Secret) -> Result<TlsMaterial, String> {
    let name = secret_name(secret);
    let data = secret_data(secret);
    let ca = data.get("ca.crt").or_else(|| data.get("caFile")).cloned();
    let identity = match (data.get("tls.crt"), data.get("tls.key")) {
        (Some(cert), Some(key)) => {
            let mut pem = cert.clone();
            if !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(key);
            Some(pem)
        }
        (None, None) => None,
        _ => {
            return Err(format!(
                "invalid TLS secret '{name}': 'tls.crt' and 'tls.key' must be set together"
            ));
        }
    };
    if ca.is_none() && identity.is_none() {
        return Err(format!(
            "invalid TLS secret '{name}': it has none of 'ca.crt', 'tls.crt' and 'tls.key'"
        ));
    }
    Ok((ca, identity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn provider(spec: serde_json::Value) -> Provider {
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Provider",
            "metadata": {"name": "p", "namespace": "apps", "uid": "0c9a-11"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn secret(name: &str, data: serde_json::Value) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "apps"}, "stringData": data,
        }))
        .unwrap()
    }

    #[test]
    fn spec_only() {
        let p = provider(
            json!({"type": "slack", "address": "https://hooks/x", "channel": "ops",
                                "username": "flux", "timeout": "5s"}),
        );
        let (target, transport) = build(&p, &ProviderSecrets::default()).unwrap();
        assert_eq!(target.address, "https://hooks/x");
        assert_eq!(target.channel.as_deref(), Some("ops"));
        assert_eq!(target.username.as_deref(), Some("flux"));
        assert_eq!(target.provider.uid, "0c9a-11");
        assert_eq!(transport.timeout, Some(std::time::Duration::from_secs(5)));
        assert_eq!(transport.proxy, None);
    }

    #[test]
    fn secret_overrides_and_headers() {
        let p = provider(
            json!({"type": "generic", "address": "https://spec", "secretRef": {"name": "s"}}),
        );
        let secrets = ProviderSecrets {
            secret: Some(secret(
                "s",
                json!({
                    "address": " https://secret/hook \n", "token": "t0k\n", "username": "u",
                    "password": "pw", "headers": "X-Team: ops\nAuthorization: Bearer abc\n",
                    "proxy": "http://old-proxy:1",
                }),
            )),
            ..ProviderSecrets::default()
        };
        let (target, transport) = build(&p, &secrets).unwrap();
        assert_eq!(target.address, "https://secret/hook");
        assert_eq!(target.token.as_deref(), Some("t0k"));
        assert_eq!(target.username.as_deref(), Some("u"));
        assert_eq!(target.password.as_deref(), Some("pw"));
        assert_eq!(
            target.headers.get("X-Team").map(String::as_str),
            Some("ops")
        );
        assert_eq!(
            target.secret.get("token").map(Vec::as_slice),
            Some(&b"t0k\n"[..])
        );
        assert_eq!(transport.proxy.as_deref(), Some("http://old-proxy:1"));

        let bad = ProviderSecrets {
            secret: Some(secret("s", json!({"headers": "- a\n- b\n"}))),
            ..ProviderSecrets::default()
        };
        let err = build(&p, &bad).unwrap_err();
        assert!(
            err.contains("failed to read headers from secret 'apps/s'"),
            "{err}"
        );
        let long = ProviderSecrets {
            secret: Some(secret("s", json!({"address": "x".repeat(2049)}))),
            ..ProviderSecrets::default()
        };
        assert!(
            build(&p, &long)
                .unwrap_err()
                .contains("maximum length of 2048")
        );
    }

    #[test]
    fn proxy_secret_wins_with_credentials() {
        let p = provider(json!({"type": "generic", "secretRef": {"name": "s"},
                                "proxySecretRef": {"name": "px"}}));
        let secrets = ProviderSecrets {
            proxy: Some(secret(
                "px",
                json!({"address": "http://proxy:3128", "username": "u@x", "password": "p:w"}),
            )),
            secret: Some(secret("s", json!({"proxy": "http://old-proxy:1"}))),
            ..ProviderSecrets::default()
        };
        let (_, transport) = build(&p, &secrets).unwrap();
        assert_eq!(
            transport.proxy.as_deref(),
            Some("http://u%40x:p%3Aw@proxy:3128")
        );
        let missing = ProviderSecrets {
            proxy: Some(secret("px", json!({"username": "u"}))),
            ..ProviderSecrets::default()
        };
        assert!(
            build(&p, &missing)
                .unwrap_err()
                .contains("key 'address' is missing")
        );
    }

    #[test]
    fn tls_material_from_cert_secret_or_commit_status_secret() {
        let p = provider(json!({"type": "generic", "certSecretRef": {"name": "tls"}}));
        let secrets = ProviderSecrets {
            cert: Some(secret(
                "tls",
                json!({"ca.crt": "CA", "tls.crt": "CERT", "tls.key": "KEY"}),
            )),
            ..ProviderSecrets::default()
        };
        let (_, transport) = build(&p, &secrets).unwrap();
        assert_eq!(transport.ca_pem.as_deref(), Some(&b"CA"[..]));
        assert_eq!(
            transport.client_identity_pem.as_deref(),
            Some(&b"CERT\nKEY"[..])
        );
        let half = ProviderSecrets {
            cert: Some(secret("tls", json!({"tls.crt": "CERT"}))),
            ..ProviderSecrets::default()
        };
        assert!(
            build(&p, &half)
                .unwrap_err()
                .contains("must be set together")
        );

        let github = provider(json!({"type": "github", "secretRef": {"name": "s"}}));
        let with_ca = ProviderSecrets {
            secret: Some(secret("s", json!({"token": "t", "ca.crt": "CA"}))),
            ..ProviderSecrets::default()
        };
        assert_eq!(
            build(&github, &with_ca).unwrap().1.ca_pem.as_deref(),
            Some(&b"CA"[..])
        );
        let slack = provider(json!({"type": "slack", "secretRef": {"name": "s"}}));
        assert_eq!(build(&slack, &with_ca).unwrap().1.ca_pem, None);
    }

    #[test]
    fn workload_identity_is_refused() {
        let p = provider(json!({"type": "azureeventhub", "serviceAccountName": "sa"}));
        let err = build(&p, &ProviderSecrets::default()).unwrap_err();
        assert!(err.contains("spec.serviceAccountName"), "{err}");
    }
}
