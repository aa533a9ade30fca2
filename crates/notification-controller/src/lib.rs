//! ferroflux notification-controller: Flux events forwarded through Alerts
//! to Providers, webhooks turned into reconcile requests by Receivers.
#![warn(missing_docs)]

pub mod receiver_server;
