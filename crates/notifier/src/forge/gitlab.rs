//! GitLab (gitlab.com and self-managed): commit statuses (`gitlab`) and
//! merge request notes (`gitlabmergerequestcomment`), over the REST API v4
//! at `<host>/api/v4`, the project addressed by its URL-encoded path
//! (`group/sub/project` → `group%2Fsub%2Fproject`).

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::address::GitAddress;
use super::change_request::CommentRequest;
use super::commit_status::{StatusEvent, StatusState};
use super::{escape_segment, invalid, read_json, trimmed};
use crate::NotifyError;
use crate::Target;
use crate::http::Poster;

/// A GitLab project and the token to reach it.
#[derive(Debug)]
pub(super) struct GitLabProject {
    api: String,
    project: String,
    token: String,
}

#[derive(Deserialize)]
struct CommitStatus {
    #[serde(default)]
    sha: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct User {
    username: String,
}

#[derive(Deserialize)]
struct Note {
    id: u64,
    #[serde(default)]
    body: String,
    author: Option<User>,
}

impl GitLabProject {
    /// The project `target.address` names; a token is required.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let token = trimmed(&target.token)
            .ok_or_else(|| invalid("token", "gitlab token cannot be empty"))?;
        let address = GitAddress::parse(&target.address)?;
        if address.id.is_empty() {
            return Err(invalid(
                "address",
                "the address must name a project: https://<host>/<group>/<project>",
            ));
        }
        Ok(Self {
            api: format!("{}/api/v4", address.base),
            project: escape_segment(&address.id),
            token,
        })
    }

    fn request(&self, poster: &Poster, method: Method, url: &str) -> RequestBuilder {
        poster
            .request(method, url)
            .header("PRIVATE-TOKEN", &self.token)
    }

    fn project_url(&self, rest: &str) -> String {
        format!("{}/projects/{}/{rest}", self.api, self.project)
    }

    /// Sets the commit status, unless one with the same name, state and
    /// description is already on the commit.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = match status.state {
            StatusState::Success => "success",
            StatusState::Failure => "failed",
            StatusState::Pending => "pending",
        };
        let list = self.project_url(&format!(
            "repository/commits/{}/statuses?name={}",
            status.sha,
            escape_segment(&status.id)
        ));
        let response = poster
            .send(|| self.request(poster, Method::GET, &list))
            .await?;
        let existing: Vec<CommitStatus> = read_json(&Method::GET, response).await?;
        let duplicate = existing.iter().any(|s| {
            s.sha == status.sha
                && s.status == state
                && s.description.as_deref().unwrap_or_default() == status.description
                && s.name == status.id
        });
        if duplicate {
            return Ok(());
        }
        let body = json!({
            "state": state,
            "name": status.id,
            "description": status.description,
        });
        let url = self.project_url(&format!("statuses/{}", status.sha));
        poster
            .send(|| self.request(poster, Method::POST, &url).json(&body))
            .await?;
        Ok(())
    }

    /// Writes the note on the merge request, editing this Provider's earlier
    /// note about the same object when there is one among the first 100.
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
        let notes_url = self.project_url(&format!("merge_requests/{}/notes", request.number));
        let list = format!("{notes_url}?order_by=created_at&per_page=100&sort=asc");
        let response = poster
            .send(|| self.request(poster, Method::GET, &list))
            .await?;
        let notes: Vec<Note> = read_json(&Method::GET, response).await?;
        let existing = notes.iter().find(|n| {
            n.author
                .as_ref()
                .is_some_and(|a| a.username == user.username)
                && n.body.contains(&request.marker)
        });
        let body = json!({"body": request.body});
        let (method, url) = match existing {
            Some(note) => (Method::PUT, format!("{notes_url}/{}", note.id)),
            None => (Method::POST, notes_url),
        };
        poster
            .send(|| self.request(poster, method.clone(), &url).json(&body))
            .await?;
        Ok(())
    }
}
