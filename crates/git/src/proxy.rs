//! An HTTP(S) proxy for one remote, from a Flux `proxySecretRef` Secret.
//!
//! Without one, fetches and pushes use the process's `HTTPS_PROXY` /
//! `HTTP_PROXY` / `NO_PROXY` environment by Go's rules (`env_proxy`), as
//! go-git does in Flux.

use std::collections::BTreeMap;
use std::fmt;

use crate::Error;

/// The proxy a remote is reached through.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http://host:port` (or `https://`).
    pub address: String,
    /// Basic-auth user for the proxy.
    pub username: Option<String>,
    /// Basic-auth password for the proxy.
    pub password: Option<String>,
}

// The password never appears in logs or messages.
impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A proxy serves `http://` and `https://` remotes only; an `ssh://` remote
/// with one is refused rather than reached directly.
pub(crate) fn check_scheme(proxy: Option<&Proxy>, scheme: &str) -> Result<(), Error> {
    if proxy.is_some() && scheme != "http" && scheme != "https" {
        return Err(Error::InvalidProxy(format!(
            "a proxy is supported for http:// and https:// remotes only, not {scheme}://"
        )));
    }
    Ok(())
}

impl Proxy {
    /// Reads Flux's proxy Secret keys: `address` (required, an `http://` or
    /// `https://` URL), `username` and `password` (together or not at all).
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Proxy, Error> {
        let invalid = |reason: String| Error::InvalidProxy(reason);
        let text = |key: &str| -> Result<Option<String>, Error> {
            data.get(key)
                .map(|v| {
                    String::from_utf8(v.clone())
                        .map(|s| s.trim().to_string())
                        .map_err(|_| invalid(format!("key '{key}' is not UTF-8")))
                })
                .transpose()
        };
        let address = text("address")?
            .filter(|a| !a.is_empty())
            .ok_or_else(|| invalid("key 'address' not found".into()))?;
        let scheme = address
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        if !matches!(scheme.as_deref(), Some("http" | "https")) {
            return Err(invalid(format!(
                "address '{address}' must be an http:// or https:// URL"
            )));
        }
        let username = text("username")?.filter(|u| !u.is_empty());
        let password = text("password")?.filter(|p| !p.is_empty());
        if username.is_some() != password.is_some() {
            return Err(invalid(
                "keys 'username' and 'password' must be set together".into(),
            ));
        }
        Ok(Proxy {
            address,
            username,
            password,
        })
    }

    /// The address with the credentials in it, as `git`'s `http.proxy` takes them.
    pub(crate) fn url_with_credentials(&self) -> String {
        let (Some(user), Some(password)) = (&self.username, &self.password) else {
            return self.address.clone();
        };
        let Some((scheme, rest)) = self.address.split_once("://") else {
            return self.address.clone();
        };
        let encode = |s: &str| {
            s.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        };
        format!("{scheme}://{}:{}@{rest}", encode(user), encode(password))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn flux_proxy_secrets() {
        let proxy = Proxy::from_secret(&data(&[
            ("address", "http://proxy.example:3128"),
            ("username", "bot"),
            ("password", "p@ss:w/rd"),
        ]))
        .unwrap();
        assert_eq!(
            proxy.url_with_credentials(),
            "http://bot:p%40ss%3Aw%2Frd@proxy.example:3128"
        );
        assert!(!format!("{proxy:?}").contains("p@ss"));
        for bad in [
            data(&[]),
            data(&[("address", "proxy.example:3128")]),
            data(&[("address", "socks5://proxy:1080")]),
            data(&[("address", "http://proxy:3128"), ("username", "bot")]),
        ] {
            assert!(matches!(
                Proxy::from_secret(&bad),
                Err(Error::InvalidProxy(_))
            ));
        }
    }
}
