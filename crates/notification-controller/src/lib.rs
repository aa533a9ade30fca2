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

/// What goes back to the harness from a Receiver reconciliation, and what
/// stops the process at start-up.
pub use runtime::reconcile::ControllerError as Error;
