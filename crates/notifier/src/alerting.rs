//! Alerting services: chat, incident and webhook integrations.

use api::notification::ProviderType;

use crate::http::Poster;
use crate::{Event, NotifyError, Target, type_name};

/// Checks `target` for `provider_type` before any event is sent.
pub fn validate(provider_type: ProviderType, _target: &Target) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported(type_name(provider_type)))
}

/// Sends `event` to the service.
pub async fn post(
    provider_type: ProviderType,
    _target: &Target,
    _poster: &Poster,
    _event: &Event,
) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported(type_name(provider_type)))
}
