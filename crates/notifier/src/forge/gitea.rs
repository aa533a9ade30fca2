//! Gitea and Forgejo: commit statuses (`gitea`) and pull request comments
//! (`giteapullrequestcomment`), over the API at `<host>/api/v1`, with
//! `Authorization: token <token>` (the Secret's `token`, else its
//! `password`, as Flux falls back).

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::address::GitAddress;
use super::change_request::{Author, CommentRequest, CommentThread};
use super::commit_status::StatusEvent;
use super::{fetch_json, invalid, trimmed};
use crate::NotifyError;
use crate::Target;
use crate::http::Poster;

/// A Gitea repository and the token to reach it.
#[derive(Debug)]
pub(super) struct GiteaRepo {
    api: String,
    owner: String,
    repo: String,
    token: String,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    context: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    description: String,
}

impl Status {
    /// Gitea answers `status`; older versions and Forgejo also `state`.
    fn state(&self) -> &str {
        if self.status.is_empty() {
            &self.state
        } else {
            &self.status
        }
    }
}

impl GiteaRepo {
    /// The repository `target.address` names; a token is required.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let token = trimmed(&target.token)
            .or_else(|| trimmed(&target.password))
            .ok_or_else(|| invalid("token", "gitea token cannot be empty"))?;
        let address = GitAddress::parse(&target.address)?;
        let [owner, repo] = address.parts::<2>("https://<host>/<owner>/<repo>")?;
        Ok(Self {
            api: format!("{}/api/v1", address.base),
            owner,
            repo,
            token,
        })
    }

    fn request(&self, poster: &Poster, method: Method, url: &str) -> RequestBuilder {
        poster
            .request(method, url)
            .header("Authorization", format!("token {}", self.token))
    }

    /// `<api>/repos/<owner>/<repo>`.
    fn repo_url(&self) -> String {
        format!("{}/repos/{}/{}", self.api, self.owner, self.repo)
    }

    /// Sets the commit status, unless the latest status of its context (of
    /// the first 50) already has the same state and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = status.state.spelled(["success", "failure", "pending"]);
        let statuses_url = format!("{}/statuses/{}", self.repo_url(), status.sha);
        let list = format!("{statuses_url}?limit=50&page=1");
        let statuses: Vec<Status> =
            fetch_json(poster, Method::GET, |m| self.request(poster, m, &list)).await?;
        let latest = statuses.iter().find(|s| {
            !s.context.is_empty()
                && !s.state().is_empty()
                && !s.description.is_empty()
                && s.context == status.id
        });
        if latest.is_some_and(|s| s.state() == state && s.description == status.description) {
            return Ok(());
        }
        let body = json!({
            "state": state,
            "target_url": "",
            "description": status.description,
            "context": status.id,
        });
        poster
            .send(|| {
                self.request(poster, Method::POST, &statuses_url)
                    .json(&body)
            })
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
        let author = Author::TokenUser { api: &self.api };
        CommentThread::issue(&self.repo_url(), comment.number, "limit=100&page=1")
            .write(poster, comment, author, |m, url| {
                self.request(poster, m, url)
            })
            .await
    }
}
