//! `nats`: not implemented yet.

use crate::{Event, NotifyError, Target};

pub(super) fn validate(_target: &Target) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported("nats".to_string()))
}

pub(super) async fn post(_target: &Target, _event: &Event) -> Result<(), NotifyError> {
    Err(NotifyError::Unsupported("nats".to_string()))
}
