//! Gitea and Forgejo: commit statuses (`gitea`) and pull request comments
//! (`giteapullrequestcomment`), over the API at `<host>/api/v1`, with
//! `Authorization: token <token>` (the Secret's `token`, else its
//! `password`, as Flux falls back).

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::address::GitAddress;
use super::change_request::CommentRequest;
use super::commit_status::{StatusEvent, StatusState};
use super::{invalid, read_json, trimmed};
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

#[derive(Deserialize)]
struct User {
    login: String,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: String,
    user: Option<User>,
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

    fn repo_url(&self, rest: &str) -> String {
        format!("{}/repos/{}/{}/{rest}", self.api, self.owner, self.repo)
    }

    /// Sets the commit status, unless the latest status of its context (of
    /// the first 50) already has the same state and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = match status.state {
            StatusState::Success => "success",
            StatusState::Failure => "failure",
            StatusState::Pending => "pending",
        };
        let list = self.repo_url(&format!("statuses/{}?limit=50&page=1", status.sha));
        let response = poster
            .send(|| self.request(poster, Method::GET, &list))
            .await?;
        let statuses: Vec<Status> = read_json(&Method::GET, response).await?;
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
        let url = self.repo_url(&format!("statuses/{}", status.sha));
        poster
            .send(|| self.request(poster, Method::POST, &url).json(&body))
            .await?;
        Ok(())
    }

    /// Comments on the pull request, editing this Provider's earlier comment
    /// about the same object when there is one among the first 100.
    pub async fn post_comment(
        &self,
        poster: &Poster,
        request: &CommentRequest,
    ) -> Result<(), NotifyError> {
        let user_url = format!("{}/user", self.api);
        let response = poster
            .send(|| self.request(poster, Method::GET, &user_url))
            .await?;
        let user: User = read_json(&Method::GET, response).await?;
        let list = self.repo_url(&format!(
            "issues/{}/comments?limit=100&page=1",
            request.number
        ));
        let response = poster
            .send(|| self.request(poster, Method::GET, &list))
            .await?;
        let comments: Vec<Comment> = read_json(&Method::GET, response).await?;
        let existing = comments.iter().find(|c| {
            c.user.as_ref().is_some_and(|u| u.login == user.login)
                && c.body.contains(&request.marker)
        });
        let body = json!({"body": request.body});
        let (method, url) = match existing {
            Some(comment) => (
                Method::PATCH,
                self.repo_url(&format!("issues/comments/{}", comment.id)),
            ),
            None => (
                Method::POST,
                self.repo_url(&format!("issues/{}/comments", request.number)),
            ),
        };
        poster
            .send(|| self.request(poster, method.clone(), &url).json(&body))
            .await?;
        Ok(())
    }
}
