//! GitLab (gitlab.com and self-managed): commit statuses (`gitlab`) and
//! merge request notes (`gitlabmergerequestcomment`), over the REST API v4
//! at `<host>/api/v4`, the project addressed by its URL-encoded path
//! (`group/sub/project` → `group%2Fsub%2Fproject`).

use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::address::GitAddress;
use super::change_request::{Author, CommentRequest, CommentThread};
use super::commit_status::StatusEvent;
use super::{escape_segment, fetch_json, invalid, trimmed};
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
        let state = status.state.spelled(["success", "failed", "pending"]);
        let list = self.project_url(&format!(
            "repository/commits/{}/statuses?name={}",
            status.sha,
            escape_segment(&status.id)
        ));
        let existing: Vec<CommitStatus> =
            fetch_json(poster, Method::GET, |m| self.request(poster, m, &list)).await?;
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
        comment: &CommentRequest,
    ) -> Result<(), NotifyError> {
        let notes = self.project_url(&format!("merge_requests/{}/notes", comment.number));
        CommentThread {
            list: format!("{notes}?order_by=created_at&per_page=100&sort=asc"),
            create: notes.clone(),
            edit: notes,
            edit_method: Method::PUT,
        }
        .write(
            poster,
            comment,
            Author::TokenUser { api: &self.api },
            |m, url| self.request(poster, m, url),
        )
        .await
    }
}
