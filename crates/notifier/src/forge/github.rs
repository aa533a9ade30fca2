//! GitHub and GitHub Enterprise: commit statuses (`github`), repository
//! dispatches (`githubdispatch`) and pull request comments
//! (`githubpullrequestcomment`), over the REST API v3.
//!
//! `https://github.com/owner/repo` talks to `https://api.github.com`; any
//! other host is GitHub Enterprise Server, whose API is `<host>/api/v3`.

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::{Value, json};

use super::address::GitAddress;
use super::change_request::{Author, CommentRequest, CommentThread};
use super::commit_status::StatusEvent;
use super::github_app::GitHubApp;
use super::{flux_metadata, invalid, read_json, trimmed};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// go-github's media type and API version.
const ACCEPT: &str = "application/vnd.github.v3+json";
const API_VERSION: &str = "2022-11-28";
/// Enough pages of the combined status for any real commit.
const MAX_STATUS_PAGES: usize = 50;

/// How requests authenticate.
#[derive(Debug)]
enum Auth {
    /// A personal access token (the Secret's `token`).
    Token(String),
    /// A GitHub App installation (the Secret's `githubApp*` keys).
    App(GitHubApp),
}

/// A GitHub repository and the credentials to reach it.
#[derive(Debug)]
pub(super) struct GitHubRepo {
    api: String,
    owner: String,
    repo: String,
    auth: Auth,
}

#[derive(Deserialize)]
struct CombinedStatus {
    #[serde(default)]
    statuses: Vec<RepoStatus>,
}

#[derive(Deserialize)]
struct RepoStatus {
    context: Option<String>,
    state: Option<String>,
    description: Option<String>,
}

impl GitHubRepo {
    /// The repository `target.address` names; a token or a GitHub App is
    /// required.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let auth = match trimmed(&target.token) {
            Some(token) => Auth::Token(token),
            None => match GitHubApp::from_secret(&target.secret)? {
                Some(app) => Auth::App(app),
                None => {
                    return Err(invalid(
                        "token",
                        "a GitHub token or the GitHub App keys (githubAppID, \
                         githubAppInstallationID, githubAppPrivateKey) must be in the Secret",
                    ));
                }
            },
        };
        let address = GitAddress::parse(&target.address)?;
        let [owner, repo] = address.parts::<2>("https://github.com/<owner>/<repo>")?;
        let api = if address.authority == "github.com" {
            "https://api.github.com".to_string()
        } else {
            format!("{}/api/v3", address.base)
        };
        Ok(Self {
            api,
            owner,
            repo,
            auth,
        })
    }

    /// The token requests carry: the Secret's, or a fresh installation token.
    async fn token(&self, poster: &Poster) -> Result<String, NotifyError> {
        match &self.auth {
            Auth::Token(token) => Ok(token.clone()),
            Auth::App(app) => app.installation_token(poster).await,
        }
    }

    fn request(&self, poster: &Poster, method: Method, url: &str, token: &str) -> RequestBuilder {
        poster
            .request(method, url)
            .bearer_auth(token)
            .header("Accept", ACCEPT)
            .header("X-GitHub-Api-Version", API_VERSION)
    }

    /// `<api>/repos/<owner>/<repo>`.
    fn repo_url(&self) -> String {
        format!("{}/repos/{}/{}", self.api, self.owner, self.repo)
    }

    /// Sets the commit status, unless the latest status of its context
    /// already has the same state and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = status.state.spelled(["success", "failure", "pending"]);
        let token = self.token(poster).await?;
        if self
            .latest_status_matches(poster, &token, status, state)
            .await?
        {
            return Ok(());
        }
        let body = json!({
            "state": state,
            "context": status.id,
            "description": status.description,
        });
        let url = format!("{}/statuses/{}", self.repo_url(), status.sha);
        poster
            .send(|| self.request(poster, Method::POST, &url, &token).json(&body))
            .await?;
        Ok(())
    }

    /// Reads the combined status (the latest status of each context, all
    /// pages), as Flux does: the plain list of statuses grows with every
    /// post and would push this context off its first page.
    async fn latest_status_matches(
        &self,
        poster: &Poster,
        token: &str,
        status: &StatusEvent,
        state: &str,
    ) -> Result<bool, NotifyError> {
        let mut url = format!(
            "{}/commits/{}/status?per_page=100",
            self.repo_url(),
            status.sha
        );
        for _ in 0..MAX_STATUS_PAGES {
            let response = poster
                .send(|| self.request(poster, Method::GET, &url, token))
                .await?;
            let next = next_page(response.headers());
            let combined: CombinedStatus = read_json(&Method::GET, response).await?;
            if let Some(latest) = combined
                .statuses
                .iter()
                .find(|s| s.context.as_deref() == Some(status.id.as_str()))
            {
                return Ok(latest.state.as_deref() == Some(state)
                    && latest.description.as_deref() == Some(status.description.as_str()));
            }
            match next {
                Some(next) => url = next,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// `POST /repos/{owner}/{repo}/dispatches`: `event_type`
    /// `<Kind>/<name>.<namespace>`, `client_payload` the event.
    pub async fn dispatch(&self, poster: &Poster, event: &Event) -> Result<(), NotifyError> {
        let object = &event.involved_object;
        let event_type = format!(
            "{}/{}.{}",
            object.kind.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default(),
            object.namespace.as_deref().unwrap_or_default()
        );
        let mut payload = serde_json::to_value(event).unwrap_or(Value::Null);
        let metadata = flux_metadata(event);
        if let Some(object) = payload.as_object_mut() {
            if metadata.is_empty() {
                object.remove("metadata");
            } else {
                object.insert("metadata".to_string(), json!(metadata));
            }
        }
        let body = json!({"event_type": event_type, "client_payload": payload});
        let token = self.token(poster).await?;
        let url = format!("{}/dispatches", self.repo_url());
        poster
            .send(|| self.request(poster, Method::POST, &url, &token).json(&body))
            .await?;
        Ok(())
    }

    /// Comments on the pull request, editing this Provider's earlier comment
    /// about the same object when there is one among the first 100.
    pub async fn post_comment(
        &self,
        poster: &Poster,
        comment: &CommentRequest,
    ) -> Result<(), NotifyError> {
        let token = self.token(poster).await?;
        // Who the comments are by: the app's bot, or the token's user.
        let author = match &self.auth {
            Auth::App(app) => Author::Login(format!("{}[bot]", app.slug(poster).await?)),
            Auth::Token(_) => Author::TokenUser { api: &self.api },
        };
        CommentThread::issue(
            &self.repo_url(),
            comment.number,
            "direction=asc&per_page=100&sort=created",
        )
        .write(poster, comment, author, |m, url| {
            self.request(poster, m, url, &token)
        })
        .await
    }
}

/// The `rel="next"` URL of a `Link` header, as GitHub paginates.
fn next_page(headers: &reqwest::header::HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_next_link() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::LINK,
            "<https://api.github.com/x?page=2>; rel=\"next\", <https://api.github.com/x?page=5>; rel=\"last\""
                .parse()
                .unwrap(),
        );
        assert_eq!(
            next_page(&headers).as_deref(),
            Some("https://api.github.com/x?page=2")
        );
    }

    #[test]
    fn enterprise_hosts_use_api_v3() {
        let target = Target {
            address: "https://github.example.com/org/repo".into(),
            token: Some("t".into()),
            ..Default::default()
        };
        assert_eq!(
            GitHubRepo::new(&target).unwrap().api,
            "https://github.example.com/api/v3"
        );
        let target = Target {
            address: "https://github.com/org/repo".into(),
            ..target
        };
        assert_eq!(
            GitHubRepo::new(&target).unwrap().api,
            "https://api.github.com"
        );
    }
}
