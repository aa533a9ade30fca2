//! Git forges: commit statuses (github, gitlab, gitea, bitbucket,
//! bitbucketserver, azuredevops), repository dispatches (githubdispatch) and
//! change request comments (githubpullrequestcomment,
//! giteapullrequestcomment, gitlabmergerequestcomment), each as Flux's
//! notification-controller sends them.
//!
//! [`validate`] builds the forge client from the [`Target`] once and reports
//! what Flux would refuse (no token, an address that names no repository, a
//! `commitStatusExpr` that does not compile); [`post`] builds it again (it is
//! cheap) and sends one event. An event a forge has nothing to do with (no
//! `commit_status: update` metadata, no revision, a `Progressing` reason
//! where Flux skips it) is [`NotifyError::Skipped`].

mod address;
mod azure_devops;
mod bitbucket;
mod bitbucket_server;
mod change_request;
mod commit_status;
mod gitea;
mod github;
mod github_app;
mod gitlab;

use api::notification::ProviderType;
use reqwest::{Method, RequestBuilder};
use serde::de::DeserializeOwned;

use crate::http::Poster;
use crate::{Event, NotifyError, Target, type_name};

pub use commit_status::{commit_sha, default_status_id, describe_reason, flux_metadata};

/// Whether `provider_type` is a forge integration (handled here).
pub fn handles(provider_type: ProviderType) -> bool {
    matches!(
        provider_type,
        ProviderType::Github
            | ProviderType::Gitlab
            | ProviderType::Gitea
            | ProviderType::Bitbucket
            | ProviderType::Bitbucketserver
            | ProviderType::Azuredevops
            | ProviderType::Githubdispatch
            | ProviderType::Githubpullrequestcomment
            | ProviderType::Giteapullrequestcomment
            | ProviderType::Gitlabmergerequestcomment
    )
}

/// Whether `provider_type` posts commit statuses (the types Flux allows a
/// `commitStatusExpr` on).
pub fn is_commit_status_type(provider_type: ProviderType) -> bool {
    matches!(
        provider_type,
        ProviderType::Github
            | ProviderType::Gitlab
            | ProviderType::Gitea
            | ProviderType::Bitbucket
            | ProviderType::Bitbucketserver
            | ProviderType::Azuredevops
    )
}

/// Checks `target` for `provider_type` before any event is sent.
pub fn validate(provider_type: ProviderType, target: &Target) -> Result<(), NotifyError> {
    Forge::new(provider_type, target).map(|_| ())
}

/// Sends `event` to the forge.
pub async fn post(
    provider_type: ProviderType,
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let forge = Forge::new(provider_type, target)?;
    match &forge {
        Forge::CommitStatus(status_forge, id) => {
            let status = commit_status::StatusEvent::from_event(
                provider_type,
                target,
                id,
                event,
                status_forge.pending_on_progressing(),
            )?;
            status_forge.post_status(poster, &status).await
        }
        Forge::Dispatch(repo) => {
            skip_commit_status_update(event)?;
            repo.dispatch(poster, event).await
        }
        Forge::Comment(comment_forge) => {
            skip_commit_status_update(event)?;
            let request = change_request::CommentRequest::from_event(
                target,
                event,
                comment_forge.marker_prefix(),
            )?;
            comment_forge.post_comment(poster, &request).await
        }
    }
}

/// A provider ready to post: its repository, credentials and API base.
enum Forge {
    /// A commit status provider and how it names its statuses.
    CommitStatus(StatusForge, commit_status::StatusId),
    /// GitHub repository dispatch.
    Dispatch(github::GitHubRepo),
    /// A change request comment provider.
    Comment(CommentForge),
}

/// The commit status providers.
enum StatusForge {
    GitHub(github::GitHubRepo),
    GitLab(gitlab::GitLabProject),
    Gitea(gitea::GiteaRepo),
    Bitbucket(bitbucket::BitbucketRepo),
    BitbucketServer(bitbucket_server::BitbucketServerRepo),
    AzureDevOps(azure_devops::AzureDevOpsRepo),
}

/// The change request comment providers.
enum CommentForge {
    GitHub(github::GitHubRepo),
    GitLab(gitlab::GitLabProject),
    Gitea(gitea::GiteaRepo),
}

impl Forge {
    fn new(provider_type: ProviderType, target: &Target) -> Result<Self, NotifyError> {
        if !is_commit_status_type(provider_type) && has_text(&target.commit_status_expr) {
            return Err(invalid(
                "spec.commitStatusExpr",
                format!(
                    "only allowed for the commit status provider types (github, gitlab, gitea, \
                     bitbucket, bitbucketserver, azuredevops), not '{}'",
                    type_name(provider_type)
                ),
            ));
        }
        let status = |forge: StatusForge| -> Result<Self, NotifyError> {
            Ok(Forge::CommitStatus(
                forge,
                commit_status::StatusId::new(target)?,
            ))
        };
        match provider_type {
            ProviderType::Github => status(StatusForge::GitHub(github::GitHubRepo::new(target)?)),
            ProviderType::Gitlab => {
                status(StatusForge::GitLab(gitlab::GitLabProject::new(target)?))
            }
            ProviderType::Gitea => status(StatusForge::Gitea(gitea::GiteaRepo::new(target)?)),
            ProviderType::Bitbucket => status(StatusForge::Bitbucket(
                bitbucket::BitbucketRepo::new(target)?,
            )),
            ProviderType::Bitbucketserver => status(StatusForge::BitbucketServer(
                bitbucket_server::BitbucketServerRepo::new(target)?,
            )),
            ProviderType::Azuredevops => status(StatusForge::AzureDevOps(
                azure_devops::AzureDevOpsRepo::new(target)?,
            )),
            ProviderType::Githubdispatch => Ok(Forge::Dispatch(github::GitHubRepo::new(target)?)),
            ProviderType::Githubpullrequestcomment => {
                change_request::require_provider_uid(target)?;
                Ok(Forge::Comment(CommentForge::GitHub(
                    github::GitHubRepo::new(target)?,
                )))
            }
            ProviderType::Gitlabmergerequestcomment => {
                change_request::require_provider_uid(target)?;
                Ok(Forge::Comment(CommentForge::GitLab(
                    gitlab::GitLabProject::new(target)?,
                )))
            }
            ProviderType::Giteapullrequestcomment => {
                change_request::require_provider_uid(target)?;
                Ok(Forge::Comment(CommentForge::Gitea(gitea::GiteaRepo::new(
                    target,
                )?)))
            }
            other => Err(NotifyError::Unsupported(type_name(other))),
        }
    }
}

impl StatusForge {
    /// Gitea posts `Progressing` events as `pending`; the others skip them.
    fn pending_on_progressing(&self) -> bool {
        matches!(self, StatusForge::Gitea(_))
    }

    async fn post_status(
        &self,
        poster: &Poster,
        status: &commit_status::StatusEvent,
    ) -> Result<(), NotifyError> {
        match self {
            StatusForge::GitHub(repo) => repo.post_status(poster, status).await,
            StatusForge::GitLab(project) => project.post_status(poster, status).await,
            StatusForge::Gitea(repo) => repo.post_status(poster, status).await,
            StatusForge::Bitbucket(repo) => repo.post_status(poster, status).await,
            StatusForge::BitbucketServer(repo) => repo.post_status(poster, status).await,
            StatusForge::AzureDevOps(repo) => repo.post_status(poster, status).await,
        }
    }
}

impl CommentForge {
    /// GitLab has merge requests; GitHub and Gitea pull requests.
    fn marker_prefix(&self) -> &'static str {
        match self {
            CommentForge::GitLab(_) => "flux-mr-comment-key",
            CommentForge::GitHub(_) | CommentForge::Gitea(_) => "flux-pr-comment-key",
        }
    }

    async fn post_comment(
        &self,
        poster: &Poster,
        request: &change_request::CommentRequest,
    ) -> Result<(), NotifyError> {
        match self {
            CommentForge::GitHub(repo) => repo.post_comment(poster, request).await,
            CommentForge::GitLab(project) => project.post_comment(poster, request).await,
            CommentForge::Gitea(repo) => repo.post_comment(poster, request).await,
        }
    }
}

/// Flux sends commit status update events to commit status providers only.
fn skip_commit_status_update(event: &Event) -> Result<(), NotifyError> {
    let metadata = flux_metadata(event);
    if metadata
        .get(api::event::METADATA_COMMIT_STATUS)
        .map(String::as_str)
        == Some(api::event::COMMIT_STATUS_UPDATE)
    {
        return Err(NotifyError::Skipped(
            "commit status update events go to commit status providers only".to_string(),
        ));
    }
    Ok(())
}

/// An [`NotifyError::InvalidConfig`] naming `field`.
fn invalid(field: &str, message: impl std::fmt::Display) -> NotifyError {
    NotifyError::InvalidConfig(format!("{field}: {message}"))
}

fn has_text(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.trim().is_empty())
}

/// A Secret value as Flux reads it: trimmed, absent when empty.
fn trimmed(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// Sends the `method` request `build` makes and reads the JSON answer as `T`.
async fn fetch_json<T: DeserializeOwned>(
    poster: &Poster,
    method: Method,
    build: impl Fn(Method) -> RequestBuilder,
) -> Result<T, NotifyError> {
    let response = poster.send(|| build(method.clone())).await?;
    read_json(&method, response).await
}

/// Reads a JSON response body as `T`.
async fn read_json<T: DeserializeOwned>(
    method: &Method,
    response: reqwest::Response,
) -> Result<T, NotifyError> {
    let url = response.url().to_string();
    response
        .json::<T>()
        .await
        .map_err(|err| NotifyError::Transport {
            method: method.to_string(),
            url,
            message: format!("unreadable response: {err}"),
        })
}

/// [`fetch_json`] of a `GET`, where a 404 answer is `None` (a status not
/// set yet).
async fn fetch_json_if_found<T: DeserializeOwned>(
    poster: &Poster,
    build: impl Fn(Method) -> RequestBuilder,
) -> Result<Option<T>, NotifyError> {
    match fetch_json(poster, Method::GET, build).await {
        Ok(found) => Ok(Some(found)),
        Err(NotifyError::Status { status: 404, .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// `s` escaped for one URL path segment (or query value), as Go's
/// `url.PathEscape` does for the characters Git hosts allow in names:
/// everything but `A-Z a-z 0-9 - . _ ~` is percent-encoded.
fn escape_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for byte in s.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_path_escape() {
        assert_eq!(escape_segment("group/sub/project"), "group%2Fsub%2Fproject");
        assert_eq!(escape_segment("a b~c.d-e_f"), "a%20b~c.d-e_f");
    }
}
