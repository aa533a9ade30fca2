//! Bitbucket Cloud build statuses (`bitbucket`), over the API 2.0. Flux
//! requires the Secret's `token` as `<username>:<app password or API token>`
//! (basic auth), or `x-token-auth:<access token>` /
//! `x-bitbucket-api-token-auth:<token>` (bearer). A status's key is the
//! SHA-1 of its id (Bitbucket keys are at most 40 characters).
//!
//! `https://bitbucket.org/<workspace>/<repo>` talks to
//! `https://api.bitbucket.org/2.0`, as Flux always does. Any other host
//! (a test server) is talked to at `<host>/2.0`, where Flux would still
//! call api.bitbucket.org.

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;
use sha1::{Digest, Sha1};

use super::address::GitAddress;
use super::commit_status::StatusEvent;
use super::{fetch_json_if_found, invalid, trimmed};
use crate::NotifyError;
use crate::Target;
use crate::http::Poster;

/// Usernames that mean the password part is a bearer token.
const BEARER_USERNAMES: [&str; 2] = ["x-token-auth", "x-bitbucket-api-token-auth"];

#[derive(Debug)]
enum Auth {
    Basic { username: String, password: String },
    Bearer(String),
}

/// A Bitbucket Cloud repository and the credentials to reach it.
#[derive(Debug)]
pub(super) struct BitbucketRepo {
    api: String,
    owner: String,
    repo: String,
    auth: Auth,
}

#[derive(Deserialize)]
struct BuildStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    description: String,
}

impl BitbucketRepo {
    /// The repository `target.address` names, with the `user:password`
    /// token.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let token = trimmed(&target.token)
            .ok_or_else(|| invalid("token", "bitbucket token cannot be empty"))?;
        let address = GitAddress::parse(&target.address)?;
        let parts: Vec<&str> = token.split(':').collect();
        let [username, password] = parts.as_slice() else {
            return Err(invalid(
                "token",
                "invalid token format, expected to be <user>:<password>",
            ));
        };
        let [owner, repo] = address.parts::<2>("https://bitbucket.org/<workspace>/<repo>")?;
        let auth = if BEARER_USERNAMES.contains(username) {
            Auth::Bearer((*password).to_string())
        } else {
            Auth::Basic {
                username: (*username).to_string(),
                password: (*password).to_string(),
            }
        };
        let api = match address.authority.as_str() {
            "bitbucket.org" | "www.bitbucket.org" | "api.bitbucket.org" => {
                "https://api.bitbucket.org/2.0".to_string()
            }
            _ => format!("{}/2.0", address.base),
        };
        Ok(Self {
            api,
            owner,
            repo,
            auth,
        })
    }

    fn request(&self, poster: &Poster, method: Method, url: &str) -> RequestBuilder {
        let builder = poster.request(method, url);
        match &self.auth {
            Auth::Basic { username, password } => builder.basic_auth(username, Some(password)),
            Auth::Bearer(token) => builder.bearer_auth(token),
        }
    }

    /// Sets the build status, unless the status of its key already has the
    /// same state and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = status.state.spelled(["SUCCESSFUL", "FAILED", "INPROGRESS"]);
        let key = hex::encode(Sha1::digest(status.id.as_bytes()));
        let statuses = format!(
            "{}/repositories/{}/{}/commit/{}/statuses/build",
            self.api, self.owner, self.repo, status.sha
        );
        let current = format!("{statuses}/{key}");
        let existing: Option<BuildStatus> =
            fetch_json_if_found(poster, |m| self.request(poster, m, &current)).await?;
        if existing.is_some_and(|e| e.state == state && e.description == status.description) {
            return Ok(());
        }
        let body = json!({
            "key": key,
            "url": "https://bitbucket.org",
            "state": state,
            "name": status.object_name,
            "description": status.description,
        });
        poster
            .send(|| self.request(poster, Method::POST, &statuses).json(&body))
            .await?;
        Ok(())
    }
}
