//! Change request comments: the pull/merge request an event is about (its
//! `change_request` metadata), and the comment Flux writes there. Each
//! comment carries a hidden marker with the Provider UID and the object, so
//! that the next event about the same object edits it instead of adding one.

use api::event::METADATA_CHANGE_REQUEST;
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::{fetch_json, flux_metadata, invalid};
use crate::http::Poster;
use crate::markdown::status_post;
use crate::{Event, NotifyError, Target};

/// What to write on which change request.
#[derive(Clone, Debug)]
pub(super) struct CommentRequest {
    /// The pull request number or merge request IID.
    pub number: u64,
    /// The hidden marker identifying this Provider's comment on the object.
    pub marker: String,
    /// The whole comment: marker, then the event in Markdown.
    pub body: String,
}

/// Comment markers start with the Provider UID, so one is required.
pub(super) fn require_provider_uid(target: &Target) -> Result<(), NotifyError> {
    if target.provider.uid.trim().is_empty() {
        return Err(invalid(
            "metadata.uid",
            "the Provider UID is required to recognise its own comments",
        ));
    }
    Ok(())
}

impl CommentRequest {
    /// The comment `event` asks for, its marker starting with
    /// `marker_prefix`; `Skipped` without a usable `change_request`.
    pub fn from_event(
        target: &Target,
        event: &Event,
        marker_prefix: &str,
    ) -> Result<Self, NotifyError> {
        let metadata = flux_metadata(event);
        let Some(value) = metadata.get(METADATA_CHANGE_REQUEST) else {
            return Err(NotifyError::Skipped(format!(
                "event has no '{METADATA_CHANGE_REQUEST}' metadata naming a change request"
            )));
        };
        let number = value.trim().parse::<u64>().map_err(|_| {
            NotifyError::Skipped(format!(
                "invalid '{METADATA_CHANGE_REQUEST}' metadata value '{value}': not a change request number"
            ))
        })?;
        let object = &event.involved_object;
        let key = format!(
            "{}/{}/{}/{}",
            target.provider.uid,
            object.kind.as_deref().unwrap_or_default(),
            object.namespace.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default()
        );
        let marker = format!("<!-- {marker_prefix}:{key} -->");
        let metadata = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let body = format!("{marker}\n\n{}", status_post(event, metadata));
        Ok(Self {
            number,
            marker,
            body,
        })
    }
}

/// Where a forge keeps a change request's comments (GitHub's and Gitea's
/// issue comments, GitLab's merge request notes).
pub(super) struct CommentThread {
    /// Lists the first 100 comments, oldest first.
    pub list: String,
    /// Creates a comment (`POST`).
    pub create: String,
    /// Edits one: this URL with `/<comment id>` appended.
    pub edit: String,
    /// `PATCH` (GitHub, Gitea) or `PUT` (GitLab).
    pub edit_method: Method,
}

/// A comment as the forges list it: GitHub and Gitea name its author
/// `user`, GitLab `author`.
#[derive(Deserialize)]
struct Comment {
    id: u64,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    user: Option<Account>,
    #[serde(default)]
    author: Option<Account>,
}

/// A forge account: GitHub and Gitea call its name `login`, GitLab
/// `username`.
#[derive(Deserialize)]
struct Account {
    #[serde(default)]
    login: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

impl Account {
    fn name(&self) -> Option<&str> {
        self.login.as_deref().or(self.username.as_deref())
    }
}

/// Whose earlier comment is edited rather than a new one added.
pub(super) enum Author<'a> {
    /// The account the token is: `GET <api>/user` answers it.
    TokenUser {
        /// The forge's API root.
        api: &'a str,
    },
    /// A login known already (a GitHub App's `<slug>[bot]`).
    Login(String),
}

/// The name of the account `GET url` (the forge's `/user`) answers with:
/// who the token is.
async fn token_user(
    poster: &Poster,
    url: &str,
    request: impl Fn(Method, &str) -> RequestBuilder,
) -> Result<String, NotifyError> {
    let account: Account = fetch_json(poster, Method::GET, |m| request(m, url)).await?;
    account
        .name()
        .map(str::to_string)
        .ok_or_else(|| NotifyError::Transport {
            method: Method::GET.to_string(),
            url: url.to_string(),
            message: "unreadable response: the user has no login or username".to_string(),
        })
}

impl CommentThread {
    /// The comments of issue or pull request `number` of the repository
    /// whose API is `repo_api` (GitHub's and Gitea's `/repos/<owner>/<repo>`),
    /// listed with `list_query`.
    pub fn issue(repo_api: &str, number: u64, list_query: &str) -> Self {
        Self {
            list: format!("{repo_api}/issues/{number}/comments?{list_query}"),
            create: format!("{repo_api}/issues/{number}/comments"),
            edit: format!("{repo_api}/issues/comments"),
            edit_method: Method::PATCH,
        }
    }

    /// Writes `comment` in the thread, editing `author`'s earlier comment
    /// carrying the same marker when there is one among the first 100.
    pub async fn write(
        &self,
        poster: &Poster,
        comment: &CommentRequest,
        author: Author<'_>,
        request: impl Fn(Method, &str) -> RequestBuilder,
    ) -> Result<(), NotifyError> {
        let login = match author {
            Author::TokenUser { api } => {
                token_user(poster, &format!("{api}/user"), &request).await?
            }
            Author::Login(login) => login,
        };
        let comments: Vec<Comment> =
            fetch_json(poster, Method::GET, |m| request(m, &self.list)).await?;
        let existing = comments.iter().find(|c| {
            c.user
                .as_ref()
                .or(c.author.as_ref())
                .and_then(Account::name)
                == Some(login.as_str())
                && c.body
                    .as_deref()
                    .is_some_and(|b| b.contains(&comment.marker))
        });
        let (method, url) = match existing {
            Some(earlier) => (
                self.edit_method.clone(),
                format!("{}/{}", self.edit, earlier.id),
            ),
            None => (Method::POST, self.create.clone()),
        };
        let body = json!({"body": comment.body});
        poster
            .send(|| request(method.clone(), &url).json(&body))
            .await?;
        Ok(())
    }
}
