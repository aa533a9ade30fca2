//! Azure DevOps Git commit statuses (`azuredevops`): the address is
//! `https://dev.azure.com/<org>/<project>/_git/<repo>`, the Secret's `token`
//! a personal access token (basic auth with an empty user name), the API
//! version 6.0 as Flux's client (azure-devops-go-api v6) asks for.

use base64::Engine;
use reqwest::{Method, RequestBuilder};
use serde::Deserialize;
use serde_json::json;

use super::address::GitAddress;
use super::commit_status::StatusEvent;
use super::{escape_segment, fetch_json, invalid, trimmed};
use crate::NotifyError;
use crate::Target;
use crate::http::Poster;

/// The API version of Flux's Azure DevOps client.
const API_VERSION: &str = "6.0";
/// The status genre; an Alert's `summary` is appended as `fluxcd:<summary>`.
const GENRE: &str = "fluxcd";

/// An Azure DevOps repository and the PAT to reach it.
#[derive(Debug)]
pub(super) struct AzureDevOpsRepo {
    /// `<host>/<org>/<project>/_apis/git/repositories/<repo>`.
    repository_api: String,
    authorization: String,
}

#[derive(Deserialize)]
struct Statuses {
    #[serde(default)]
    value: Vec<GitStatus>,
}

#[derive(Deserialize)]
struct GitStatus {
    context: Option<StatusContext>,
    state: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct StatusContext {
    name: Option<String>,
    genre: Option<String>,
}

impl AzureDevOpsRepo {
    /// The repository `target.address` names; a token is required (workload
    /// identity is not implemented).
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        let token = trimmed(&target.token).ok_or_else(|| {
            invalid(
                "token",
                "azure devops token cannot be empty (a personal access token in the Secret's \
                 'token'; managed identity is not supported by ferroflux)",
            )
        })?;
        let address = GitAddress::parse(&target.address)?;
        let [org, project, _git, repo] =
            address.parts::<4>("https://dev.azure.com/<org>/<project>/_git/<repo>")?;
        let authorization = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!(":{token}"))
        );
        Ok(Self {
            repository_api: format!(
                "{}/{}/{}/_apis/git/repositories/{}",
                address.base,
                escape_segment(&org),
                escape_segment(&project),
                escape_segment(&repo)
            ),
            authorization,
        })
    }

    fn request(&self, poster: &Poster, method: Method, url: &str) -> RequestBuilder {
        poster
            .request(method, url)
            .header("Authorization", &self.authorization)
            .header(
                "Accept",
                format!("application/json;api-version={API_VERSION}"),
            )
    }

    /// Sets the commit status, unless the latest status of its context
    /// (name and genre) already has the same state and description.
    pub async fn post_status(
        &self,
        poster: &Poster,
        status: &StatusEvent,
    ) -> Result<(), NotifyError> {
        let state = status.state.spelled(["succeeded", "error", "pending"]);
        let genre = match status.metadata.get("summary") {
            Some(summary) => format!("{GENRE}:{summary}"),
            None => GENRE.to_string(),
        };
        let url = format!(
            "{}/commits/{}/statuses?api-version={API_VERSION}",
            self.repository_api, status.sha
        );
        let existing: Statuses =
            fetch_json(poster, Method::GET, |m| self.request(poster, m, &url)).await?;
        let latest = existing.value.iter().find(|s| {
            let Some(context) = &s.context else {
                return false;
            };
            s.state.is_some()
                && s.description.is_some()
                && context.name.as_deref() == Some(status.id.as_str())
                && context.genre.as_deref() == Some(genre.as_str())
        });
        if latest.is_some_and(|s| {
            s.state.as_deref() == Some(state)
                && s.description.as_deref() == Some(status.description.as_str())
        }) {
            return Ok(());
        }
        let body = json!({
            "context": {"genre": genre, "name": status.id},
            "description": status.description,
            "state": state,
        });
        poster
            .send(|| self.request(poster, Method::POST, &url).json(&body))
            .await?;
        Ok(())
    }
}
