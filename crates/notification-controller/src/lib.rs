//! ferroflux notification-controller: Flux events forwarded through Alerts
//! to Providers, webhooks turned into reconcile requests by Receivers.
//!
//! - [`event_server`]: the event endpoint (`--events-addr`): size cap,
//!   parsing, Flux's duplicate limiter ([`rate_limit`]), then
//!   [`dispatch`]: the Alerts an event matches ([`alert_matching`]), its
//!   metadata combined ([`event_metadata`]), the Provider's settings
//!   ([`provider_config`]) and the post, in a task per notification.
//! - [`receiver`]: the Receiver controller (token Secret to
//!   `status.webhookPath`); [`receiver_server`]: the webhook endpoint
//!   (`--receiverAddr`).
//! - [`manager`]: the process: the Receiver controller on the shared
//!   harness, the stores of Alerts and Providers, both servers.
#![warn(missing_docs)]

pub mod alert_matching;
pub mod context;
pub mod dispatch;
pub mod event_metadata;
pub mod event_server;
pub mod manager;
pub mod metrics;
pub mod options;
pub mod provider_config;
pub mod rate_limit;
pub mod receiver;
pub mod receiver_server;

use runtime::reconcile::{Disposition, ReconcileError};

/// What goes back to the harness from a Receiver reconciliation, and what
/// stops the process at start-up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Shared runtime failure (status patching, listeners, leader election).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// The object lacks a structural field.
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// A command-line flag cannot be used.
    #[error("invalid flag: {0}")]
    Flag(String),
    /// The attempt failed as its status says; retried or stalled.
    #[error("{message}")]
    Halted {
        /// Retry or stall.
        disposition: Disposition,
        /// The `Ready` message.
        message: String,
    },
}

impl ReconcileError for Error {
    fn disposition(&self) -> Disposition {
        match self {
            Error::Halted { disposition, .. } => *disposition,
            _ => Disposition::Retry,
        }
    }
}
