//! GitHub App authentication, as Flux's `fluxcd/pkg/git/github` does it: the
//! Secret's `githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey`
//! and optional `githubAppBaseURL`; an RS256 JWT signed with the app's key
//! is exchanged for an installation access token on each post.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{fetch_json, invalid};
use crate::NotifyError;
use crate::http::Poster;

/// Secret key: the app's numeric id.
pub(super) const KEY_APP_ID: &str = "githubAppID";
/// Secret key: the installation's numeric id.
pub(super) const KEY_INSTALLATION_ID: &str = "githubAppInstallationID";
/// Secret key: the app's PEM private key.
pub(super) const KEY_PRIVATE_KEY: &str = "githubAppPrivateKey";
/// Secret key: the API the installation token is asked from.
pub(super) const KEY_BASE_URL: &str = "githubAppBaseURL";
/// Where installation tokens come from when no base URL is given.
const DEFAULT_API_URL: &str = "https://api.github.com";

/// A GitHub App installation.
#[derive(Clone)]
pub(super) struct GitHubApp {
    app_id: String,
    installation_id: u64,
    key: EncodingKey,
    api_url: String,
}

impl std::fmt::Debug for GitHubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims {
    iat: u64,
    exp: u64,
    iss: String,
}

#[derive(Deserialize)]
struct InstallationToken {
    token: String,
}

#[derive(Deserialize)]
struct App {
    slug: String,
}

impl GitHubApp {
    /// The app the Secret describes, `None` when it has no `githubAppID`.
    pub fn from_secret(secret: &BTreeMap<String, Vec<u8>>) -> Result<Option<Self>, NotifyError> {
        let text = |key: &str| -> Result<Option<String>, NotifyError> {
            secret
                .get(key)
                .map(|v| {
                    String::from_utf8(v.clone())
                        .map(|s| s.trim().to_string())
                        .map_err(|_| invalid(key, "is not UTF-8 text"))
                })
                .transpose()
        };
        let Some(app_id) = text(KEY_APP_ID)? else {
            return Ok(None);
        };
        if app_id.parse::<u64>().is_err() {
            return Err(invalid(
                KEY_APP_ID,
                format!("'{app_id}' is not a numeric app ID"),
            ));
        }
        let installation_id = text(KEY_INSTALLATION_ID)?
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                invalid(
                    KEY_INSTALLATION_ID,
                    "the app installation ID must be provided to use GitHub App authentication",
                )
            })?;
        let installation_id = installation_id.parse::<u64>().map_err(|_| {
            invalid(
                KEY_INSTALLATION_ID,
                format!("'{installation_id}' is not a numeric installation ID"),
            )
        })?;
        let pem = secret
            .get(KEY_PRIVATE_KEY)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                invalid(
                    KEY_PRIVATE_KEY,
                    "the private key must be provided to use GitHub App authentication",
                )
            })?;
        let key = EncodingKey::from_rsa_pem(pem)
            .map_err(|err| invalid(KEY_PRIVATE_KEY, format!("not an RSA private key: {err}")))?;
        let api_url = text(KEY_BASE_URL)?
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let app = Self {
            app_id,
            installation_id,
            key,
            api_url: api_url.trim_end_matches('/').to_string(),
        };
        // Signing once here reports a key that parses but cannot sign.
        app.jwt()?;
        Ok(Some(app))
    }

    /// A JWT authenticating as the app: issued 30 s in the past (clock
    /// drift), valid for 2 minutes, as ghinstallation makes them.
    pub fn jwt(&self) -> Result<String, NotifyError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();
        let iat = now.saturating_sub(30);
        let claims = Claims {
            iat,
            exp: iat + 120,
            iss: self.app_id.clone(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|err| invalid(KEY_PRIVATE_KEY, format!("cannot sign a JWT: {err}")))
    }

    /// An installation access token (`POST /app/installations/{id}/access_tokens`).
    pub async fn installation_token(&self, poster: &Poster) -> Result<String, NotifyError> {
        let path = format!("app/installations/{}/access_tokens", self.installation_id);
        let token: InstallationToken = self.call(poster, Method::POST, &path).await?;
        Ok(token.token)
    }

    /// The app's slug (`GET /app`): its comments are by `<slug>[bot]`.
    pub async fn slug(&self, poster: &Poster) -> Result<String, NotifyError> {
        let app: App = self.call(poster, Method::GET, "app").await?;
        Ok(app.slug)
    }

    /// `method <api>/<path>` as the app (a fresh JWT), its JSON answer.
    async fn call<T: DeserializeOwned>(
        &self,
        poster: &Poster,
        method: Method,
        path: &str,
    ) -> Result<T, NotifyError> {
        let jwt = self.jwt()?;
        let url = format!("{}/{path}", self.api_url);
        fetch_json(poster, method, |m| {
            poster
                .request(m, &url)
                .bearer_auth(&jwt)
                .header("Accept", "application/vnd.github.v3+json")
        })
        .await
    }
}
