//! Signed JWTs (OIDC ID tokens) checked against an issuer's published keys:
//! Google's for `gcr` (Pub/Sub push), the configured issuers' for
//! `generic-oidc`. Keys are fetched over HTTPS and kept for a few minutes;
//! an unknown key id triggers one refetch (issuers rotate keys).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

/// Where Google publishes the keys signing its ID tokens (JWK format), the
/// keys Flux's `idtoken` validator uses.
pub(crate) const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// How long fetched keys are used before fetching them again.
const KEYS_TTL: Duration = Duration::from_secs(300);

/// How long one fetch (discovery or keys) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// An issuer's public keys.
#[derive(Clone, Debug)]
pub(crate) struct KeySet {
    keys: JwkSet,
}

impl KeySet {
    /// Parses a JWK Set document (`{"keys": [...]}`).
    pub(crate) fn from_json(document: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(document)
            .map(|keys| Self { keys })
            .map_err(|e| format!("not a JWK Set: {e}"))
    }

    fn has_key(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.find(kid).is_some(),
            None => self.keys.keys.len() == 1,
        }
    }

    /// Verifies `token`'s signature with one of these keys (the one its
    /// header names), its expiry and, when `audience` is given, its `aud`;
    /// returns its claims. Only asymmetric algorithms are accepted: a key
    /// set is public, so an HMAC or `none` token proves nothing.
    pub(crate) fn verify(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        if matches!(
            header.alg,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            return Err(format!(
                "the {:?} algorithm is not accepted for ID tokens",
                header.alg
            ));
        }
        let jwk = match header.kid.as_deref() {
            Some(kid) => self
                .keys
                .find(kid)
                .ok_or_else(|| format!("no signing key with id '{kid}'"))?,
            None => match self.keys.keys.as_slice() {
                [only] => only,
                _ => return Err("the token names no key id and the issuer has several keys".into()),
            },
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable signing key: {e}"))?;
        let mut validation = Validation::new(header.alg);
        match audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidAudience => format!(
                    "audience is '{}', want '{}'",
                    unverified_claim(token, "aud").unwrap_or_else(|| "<none>".into()),
                    audience.unwrap_or_default()
                ),
                _ => e.to_string(),
            })
    }
}

/// A claim read without verifying the signature: only to pick the issuer
/// whose keys verify the token, or to explain a rejection.
pub(crate) fn unverified_claim(token: &str, claim: &str) -> Option<String> {
    let claims: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token).ok()?;
    match claims.get(claim)? {
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Keys per URL, fetched on demand and kept for [`KEYS_TTL`].
#[derive(Clone)]
pub(crate) struct KeyCache {
    http: reqwest::Client,
    entries: Arc<Mutex<HashMap<String, (Instant, KeySet)>>>,
}

impl KeyCache {
    pub(crate) fn new() -> Self {
        let http = env_proxy::client_builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            entries: Arc::default(),
        }
    }

    /// The keys at `jwks_url`, refetched when older than the TTL or when
    /// they lack the key `token` is signed with.
    pub(crate) async fn keys_for(&self, jwks_url: &str, token: &str) -> Result<KeySet, String> {
        let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
        {
            let entries = self.entries.lock().await;
            if let Some((fetched, keys)) = entries.get(jwks_url)
                && fetched.elapsed() < KEYS_TTL
                && keys.has_key(kid.as_deref())
            {
                return Ok(keys.clone());
            }
        }
        let document = self.get(jwks_url).await?;
        let keys = KeySet::from_json(&document).map_err(|e| format!("{jwks_url}: {e}"))?;
        self.entries
            .lock()
            .await
            .insert(jwks_url.to_string(), (Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// The `jwks_uri` of an OIDC issuer, from its discovery document, whose
    /// `issuer` must be `issuer` itself (as go-oidc checks).
    pub(crate) async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document: Value = serde_json::from_slice(&self.get(&url).await?)
            .map_err(|e| format!("{url}: not JSON: {e}"))?;
        let announced = document
            .get("issuer")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if announced != issuer {
            return Err(format!(
                "the discovery document at {url} names the issuer '{announced}', want '{issuer}'"
            ));
        }
        document
            .get("jwks_uri")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{url}: no jwks_uri"))
    }

    async fn get(&self, url: &str) -> Result<Vec<u8>, String> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| format!("fetching {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        response
            .bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| format!("reading {url}: {e}"))
    }
}

#[cfg(test)]
pub(crate) mod test_issuer {
    //! A signing key made in the test, published as a JWK Set, and ID
    //! tokens signed with it (ES256, as real issuers such as GitHub Actions
    //! and Google use asymmetric keys).

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    pub(crate) struct Issuer {
        pub key: EcdsaKeyPair,
        pub kid: String,
    }

    impl Issuer {
        pub(crate) fn new(kid: &str) -> Self {
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                &SystemRandom::new(),
            )
            .unwrap();
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
            Self {
                key,
                kid: kid.to_string(),
            }
        }

        /// The JWK Set publishing the public key.
        pub(crate) fn jwks(&self) -> Value {
            // Uncompressed point: 0x04 || x || y.
            let point = self.key.public_key().as_ref();
            json!({"keys": [{
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            }]})
        }

        /// A compact JWS of `claims` signed with the key.
        pub(crate) fn sign(&self, claims: &Value) -> String {
            let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
            let input = format!(
                "{}.{}",
                URL_SAFE_NO_PAD.encode(header.to_string()),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            );
            let signature = self
                .key
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
        }
    }

    /// Seconds since the epoch, offset by `delta`.
    pub(crate) fn epoch(delta: i64) -> i64 {
        jiff::Timestamp::now().as_second() + delta
    }
}

#[cfg(test)]
mod tests {
    use super::test_issuer::{Issuer, epoch};
    use super::*;
    use serde_json::json;

    fn keys(issuer: &Issuer) -> KeySet {
        KeySet::from_json(issuer.jwks().to_string().as_bytes()).unwrap()
    }

    #[test]
    fn verifies_signature_expiry_and_audience() {
        let issuer = Issuer::new("k1");
        let token = issuer
            .sign(&json!({"iss": "https://issuer", "aud": "flux", "exp": epoch(300), "sub": "me"}));
        let claims = keys(&issuer).verify(&token, Some("flux")).unwrap();
        assert_eq!(claims["sub"], "me");
        assert!(keys(&issuer).verify(&token, None).is_ok());

        let wrong_aud = keys(&issuer).verify(&token, Some("other")).unwrap_err();
        assert_eq!(wrong_aud, "audience is 'flux', want 'other'");

        let expired = issuer.sign(&json!({"aud": "flux", "exp": epoch(-3600)}));
        assert!(
            keys(&issuer)
                .verify(&expired, Some("flux"))
                .unwrap_err()
                .contains("xpired")
        );

        // Signed by another key under the same id.
        let impostor = Issuer::new("k1");
        let forged = impostor.sign(&json!({"aud": "flux", "exp": epoch(300)}));
        assert!(keys(&issuer).verify(&forged, Some("flux")).is_err());

        // A tampered payload.
        let mut parts: Vec<&str> = token.split('.').collect();
        let other = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"aud": "flux", "exp": epoch(300), "sub": "admin"}).to_string(),
        );
        parts[1] = &other;
        assert!(
            keys(&issuer)
                .verify(&parts.join("."), Some("flux"))
                .is_err()
        );
    }

    #[test]
    fn refuses_unknown_keys_hmac_and_garbage() {
        let issuer = Issuer::new("k1");
        let other = Issuer::new("k2");
        let token = other.sign(&json!({"exp": epoch(300)}));
        assert_eq!(
            keys(&issuer).verify(&token, None).unwrap_err(),
            "no signing key with id 'k2'"
        );
        // HS256 with the public key's bytes as the secret: the classic confusion.
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS256),
            &json!({"exp": epoch(300)}),
            &jsonwebtoken::EncodingKey::from_secret(b"public").unwrap(),
        )
        .unwrap();
        assert!(
            keys(&issuer)
                .verify(&hs, None)
                .unwrap_err()
                .contains("HS256")
        );
        assert!(keys(&issuer).verify("not.a.jwt", None).is_err());
        assert!(unverified_claim(&token, "exp").is_some());
    }
}
