//! Git forges: commit statuses, repository dispatches, change request comments.

use api::notification::ProviderType;

use crate::http::Poster;
use crate::{Event, NotifyError, Target, type_name};

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

/// Checks `target` for `provider_type` before any event is sent.
pub fn validate(provider_type: ProviderType, _target: &Target) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported(type_name(provider_type)))
}

/// Sends `event` to the forge.
pub async fn post(
    provider_type: ProviderType,
    _target: &Target,
    _poster: &Poster,
    _event: &Event,
) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported(type_name(provider_type)))
}
