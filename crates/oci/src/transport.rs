//! How requests reach a registry: extra trusted CA certificates and a proxy.

use oci_client::client::{Certificate, CertificateEncoding};

use crate::Error;

/// An HTTP(S) proxy with optional basic-auth credentials.
///
/// `Debug` and every error leave the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `http://host:port` or `https://host:port`.
    pub address: String,
    /// User for the proxy's basic auth; replaces one written in `address`.
    pub username: Option<String>,
    /// Password for the proxy's basic auth (only with a `username`).
    pub password: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("address", &self.address())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Proxy {
    /// A proxy at `address` without credentials.
    pub fn new(address: impl Into<String>) -> Self {
        Proxy {
            address: address.into(),
            username: None,
            password: None,
        }
    }

    /// `scheme://host[:port]`, without any credentials, for messages.
    pub fn address(&self) -> String {
        match split(&self.address) {
            Some((scheme, _, host)) => format!("{scheme}://{host}"),
            None => "<unparsable proxy address>".to_string(),
        }
    }

    /// The proxy URL as oci-client takes it: credentials percent-encoded
    /// into the user info (reqwest decodes them into a
    /// `Proxy-Authorization` header).
    pub(crate) fn url(&self) -> Result<String, Error> {
        let (scheme, userinfo, host) = split(&self.address).ok_or_else(|| {
            Error::InvalidProxy(format!(
                "proxy address '{}' is not a URL (scheme://host:port)",
                self.address()
            ))
        })?;
        if scheme != "http" && scheme != "https" {
            return Err(Error::InvalidProxy(format!(
                "proxy scheme '{scheme}' is not supported: use http or https"
            )));
        }
        if host.is_empty() {
            return Err(Error::InvalidProxy(format!(
                "proxy address '{}' has no host",
                self.address()
            )));
        }
        let userinfo = match &self.username {
            Some(user) => {
                let mut info = encode(user);
                if let Some(password) = &self.password {
                    info.push(':');
                    info.push_str(&encode(password));
                }
                Some(info)
            }
            None => userinfo.map(str::to_string),
        };
        Ok(match userinfo {
            Some(info) => format!("{scheme}://{info}@{host}"),
            None => format!("{scheme}://{host}"),
        })
    }

    /// What must never appear in a message: the password, or the user info
    /// written in the address.
    pub(crate) fn secret(&self) -> Option<String> {
        self.password.clone().filter(|p| !p.is_empty()).or_else(|| {
            split(&self.address)
                .and_then(|(_, info, _)| info.map(str::to_string))
                .filter(|i| !i.is_empty())
        })
    }
}

/// `scheme://[userinfo@]host[:port][/...]` → (scheme, userinfo, host[:port]).
fn split(address: &str) -> Option<(&str, Option<&str>, &str)> {
    let (scheme, rest) = address.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    Some(match authority.rsplit_once('@') {
        Some((info, host)) => (scheme, Some(info), host),
        None => (scheme, None, authority),
    })
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
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

/// Replaces `secret` in `message`, should a lower layer ever echo it.
pub(crate) fn scrub(message: String, secret: Option<&str>) -> String {
    match secret {
        Some(secret) if !secret.is_empty() && message.contains(secret) => {
            message.replace(secret, "<redacted>")
        }
        _ => message,
    }
}

/// Each `CERTIFICATE` block of a PEM bundle, checked to be DER inside.
///
/// One oci-client certificate per block: a bundle handed over whole would be
/// parsed late, when the client is built, with a vaguer error.
pub(crate) fn ca_certificates(pem: &[u8]) -> Result<Vec<Certificate>, Error> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem)
        .map_err(|_| Error::InvalidTls("failed to parse CA certificate: not PEM text".into()))?;
    let mut certificates = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let body = &rest[start + BEGIN.len()..];
        let end = body.find(END).ok_or_else(|| {
            Error::InvalidTls("failed to parse CA certificate: unterminated PEM block".into())
        })?;
        let base64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(base64.as_bytes())
            .map_err(|e| Error::InvalidTls(format!("failed to parse CA certificate: {e}")))?;
        let block = &rest[start..start + BEGIN.len() + end + END.len()];
        certificates.push(Certificate {
            encoding: CertificateEncoding::Pem,
            data: format!("{block}\n").into_bytes(),
        });
        rest = &body[end + END.len()..];
    }
    if certificates.is_empty() {
        return Err(Error::InvalidTls(
            "failed to parse CA certificate: no PEM CERTIFICATE block".into(),
        ));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_carry_encoded_credentials() {
        let mut proxy = Proxy::new("http://127.0.0.1:3128");
        assert_eq!(proxy.url().unwrap(), "http://127.0.0.1:3128");
        proxy.username = Some("al ice".into());
        proxy.password = Some("p@ss:w/rd".into());
        assert_eq!(
            proxy.url().unwrap(),
            "http://al%20ice:p%40ss%3Aw%2Frd@127.0.0.1:3128"
        );
        assert_eq!(proxy.address(), "http://127.0.0.1:3128");
        let debug = format!("{proxy:?}");
        assert!(!debug.contains("p@ss"), "{debug}");
        assert_eq!(proxy.secret().as_deref(), Some("p@ss:w/rd"));

        let inline = Proxy::new("https://u:pw@proxy.example:8443/");
        assert_eq!(inline.url().unwrap(), "https://u:pw@proxy.example:8443");
        assert_eq!(inline.address(), "https://proxy.example:8443");
        assert_eq!(inline.secret().as_deref(), Some("u:pw"));

        let user_only = Proxy {
            username: Some("u".into()),
            ..Proxy::new("http://p:1")
        };
        assert_eq!(user_only.url().unwrap(), "http://u@p:1");
    }

    #[test]
    fn bad_proxies() {
        for bad in ["127.0.0.1:3128", "socks5://h:1080", "http://"] {
            assert!(
                matches!(Proxy::new(bad).url(), Err(Error::InvalidProxy(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn scrubbing() {
        assert_eq!(
            scrub("a hunter2 b".into(), Some("hunter2")),
            "a <redacted> b"
        );
        assert_eq!(scrub("a b".into(), None), "a b");
    }

    #[test]
    fn pem_bundles() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let two = format!("# comment\n{one}{one}");
        assert_eq!(ca_certificates(one.as_bytes()).unwrap().len(), 1);
        assert_eq!(ca_certificates(two.as_bytes()).unwrap().len(), 2);
        for bad in [
            "nothing here",
            "-----BEGIN CERTIFICATE-----\nAAAA\n",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ] {
            assert!(
                matches!(ca_certificates(bad.as_bytes()), Err(Error::InvalidTls(_))),
                "{bad}"
            );
        }
    }
}
