//! Bitbucket Server / Data Center build statuses (`bitbucketserver`):
//! `<host><context path>/rest/api/latest/projects/<key>/repos/<slug>/commits/<sha>/builds`,
//! the address being the repository's HTTP(S) clone URL
//! (`https://host[/context]/scm/<project>/<repo>.git`). The Secret's
//! `token` is sent as a bearer token, else `username` (or `spec.username`)
//! and `password` as basic auth.

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;
use sha1::{Digest, Sha1};

use super::address::GitAddress;
use super::commit_status::StatusEvent;
use super::{escape_segment, fetch_json_if_found, invalid, trimmed};
use crate::NotifyError;
use crate::Target;
use crate::http::Poster;

#[derive(Debug)]
enum Auth {
    Bearer(String),
    Basic { username: String, password: String },
}

/// A Bitbucket Server repository and the credentials to reach it.
#[derive(Debug)]
pub(super) struct BitbucketServerRepo {
    /// `<host><context path>`.
    base: String,
    project_key: String,
    repo_slug: String,
    /// The Provider's address, the statuses' link.
    address: String,
    auth: Auth,
}

#[derive(Deserialize)]
struct BuildStatus {
    #[serde(default)]
    key: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

impl BitbucketServerRepo {
    /// The repository the clone URL `target.address` names.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let address = target.address.trim();
        let scheme = address.split(':').next().unwrap_or_default();
        if scheme != "http" && scheme != "https" {
            return Err(invalid(
                "address",
                format!(
                    "could not parse git address: unsupported scheme type in address: {scheme}. \
                     Must be http or https"
                ),
            ));
        }
        let parsed = GitAddress::parse(address)?;
        let path = format!("/{}", parsed.id);
        let Some(scm) = path.rfind("/scm/") else {
            return Err(invalid(
                "address",
                "could not parse git address: supplied provider address is not http(s) git \
                 clone url (https://<host>/scm/<project>/<repo>.git)",
            ));
        };
        let context_path = &path[..scm];
        let id = &path[scm + "/scm/".len()..];
        let parts: Vec<&str> = id.split('/').collect();
        let [project_key, repo_slug] = parts.as_slice() else {
            return Err(invalid("address", format!("invalid repository id '{id}'")));
        };
        let auth = match trimmed(&target.token) {
            Some(token) => Auth::Bearer(token),
            None => match (trimmed(&target.username), trimmed(&target.password)) {
                (Some(username), Some(password)) => Auth::Basic { username, password },
                _ => {
                    return Err(invalid(
                        "token",
                        "invalid credentials, expected to be one of username/password or API Token",
                    ));
                }
            },
        };
        Ok(Self {
            base: format!("{}{context_path}", parsed.base),
            project_key: (*project_key).to_string(),
            repo_slug: (*repo_slug).to_string(),
            address: address.to_string(),
            auth,
        })
    }

    fn request(&self, poster: &Poster, method: Method, url: &str) -> RequestBuilder {
        let builder = poster
            .request(method, url)
            .header("x-atlassian-token", "no-check")
            .header("x-requested-with", "XMLHttpRequest");
        match &self.auth {
            Auth::Bearer(token) => builder.bearer_auth(token),
            Auth::Basic { username, password } => builder.basic_auth(username, Some(password)),
        }
    }

    /// Sets the build status, unless the status of its key already has the
    /// same state, name and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = status.state.spelled(["SUCCESSFUL", "FAILED", "INPROGRESS"]);
        // Bitbucket Server shows the name only, so it carries the description.
        let name = format!("{} [{}]", status.object_name, status.description);
        let key = hex::encode(Sha1::digest(status.id.as_bytes()));
        let url = format!(
            "{}/rest/api/latest/projects/{}/repos/{}/commits/{}/builds",
            self.base, self.project_key, self.repo_slug, status.sha
        );
        let current = format!("{url}?key={}", escape_segment(&key));
        let existing: Option<BuildStatus> =
            fetch_json_if_found(poster, |m| self.request(poster, m, &current)).await?;
        if existing.is_some_and(|e| {
            e.key == key
                && e.state == state
                && e.description == status.description
                && e.name == name
        }) {
            return Ok(());
        }
        let body = json!({
            "key": key,
            "state": state,
            "url": self.address,
            "description": status.description,
            "name": name,
        });
        poster
            .send(|| self.request(poster, Method::POST, &url).json(&body))
            .await?;
        Ok(())
    }
}
