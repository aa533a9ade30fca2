//! Registry credentials: basic username/password, taken directly or out of a
//! `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`.

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::Error;

/// The key of the Docker config in a `kubernetes.io/dockerconfigjson` Secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";

/// How to authenticate to a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    #[default]
    Anonymous,
    /// HTTP basic auth (also used to obtain bearer tokens from token services).
    Basic {
        /// User name.
        username: String,
        /// Password or access token.
        password: String,
    },
}

// Passwords must not end up in logs.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
}

#[derive(Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

impl Credentials {
    /// Basic credentials.
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The credentials for `host` (`registry.example.com[:port]`) in a Docker
    /// config (`{"auths": {"<host>": {"auth": base64("user:pass")}}}`, or
    /// `username`/`password` instead of `auth`). Keys may carry a scheme or a
    /// path (`https://index.docker.io/v1/`); Docker Hub's aliases are one
    /// host. Anonymous when the config has no entry for `host`.
    pub fn from_docker_config_json(json: &[u8], host: &str) -> Result<Credentials, Error> {
        let config: DockerConfig = serde_json::from_slice(json)
            .map_err(|e| Error::InvalidCredentials(format!("invalid Docker config JSON: {e}")))?;
        let wanted = canonical_host(host);
        let Some((key, entry)) = config
            .auths
            .iter()
            .find(|(key, _)| canonical_host(key) == wanted)
        else {
            return Ok(Credentials::Anonymous);
        };
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| {
                    Error::InvalidCredentials(format!(
                        "the 'auth' of '{key}' is not valid base64: {e}"
                    ))
                })?;
            let text = String::from_utf8(decoded).map_err(|_| {
                Error::InvalidCredentials(format!("the 'auth' of '{key}' is not UTF-8"))
            })?;
            let (username, password) = text.split_once(':').ok_or_else(|| {
                Error::InvalidCredentials(format!(
                    "the 'auth' of '{key}' is not in the form 'username:password'"
                ))
            })?;
            return Ok(Credentials::basic(username, password));
        }
        match (&entry.username, &entry.password) {
            (Some(username), Some(password)) => Ok(Credentials::basic(username, password)),
            _ => Err(Error::InvalidCredentials(format!(
                "the entry for '{key}' has neither 'auth' nor 'username' and 'password'"
            ))),
        }
    }

    pub(crate) fn to_registry_auth(&self) -> oci_client::secrets::RegistryAuth {
        match self {
            Credentials::Anonymous => oci_client::secrets::RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                oci_client::secrets::RegistryAuth::Basic(username.clone(), password.clone())
            }
        }
    }
}

/// The host of a Docker config key or registry address, without scheme or
/// path, with Docker Hub's names folded into one.
fn canonical_host(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = without_scheme
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_field_is_decoded() {
        let json = br#"{"auths":{"127.0.0.1:5000":{"auth":"Zmx1eDpzM2NyZXQ="}}}"#;
        assert_eq!(
            Credentials::from_docker_config_json(json, "127.0.0.1:5000").unwrap(),
            Credentials::basic("flux", "s3cret")
        );
    }

    #[test]
    fn username_and_password_fields() {
        let json = br#"{"auths":{"https://ghcr.io/v2/":{"username":"u","password":"p:q"}}}"#;
        assert_eq!(
            Credentials::from_docker_config_json(json, "ghcr.io").unwrap(),
            Credentials::basic("u", "p:q")
        );
    }

    #[test]
    fn docker_hub_aliases_and_missing_hosts() {
        let json = br#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}}}"#;
        assert_eq!(
            Credentials::from_docker_config_json(json, "registry-1.docker.io").unwrap(),
            Credentials::basic("a", "b")
        );
        assert_eq!(
            Credentials::from_docker_config_json(json, "quay.io").unwrap(),
            Credentials::Anonymous
        );
    }

    #[test]
    fn malformed_configs_are_refused() {
        for json in [
            &b"not json"[..],
            br#"{"auths":{"h":{"auth":"%%%"}}}"#,
            br#"{"auths":{"h":{"auth":"bm9jb2xvbg=="}}}"#,
            br#"{"auths":{"h":{"username":"only"}}}"#,
        ] {
            assert!(
                matches!(
                    Credentials::from_docker_config_json(json, "h"),
                    Err(Error::InvalidCredentials(_))
                ),
                "{}",
                String::from_utf8_lossy(json)
            );
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let text = format!("{:?}", Credentials::basic("user", "hunter2"));
        assert!(text.contains("user") && !text.contains("hunter2"));
    }
}
