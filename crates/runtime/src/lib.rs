//! Shared controller plumbing used by every ferroflux controller, once:
//! the controller harness ([`manager`]: watches, scope, leader election,
//! graceful shutdown) with its one failure model ([`reconcile`]) and
//! start-up path ([`process`]), the paced [`api_client`],
//! kstatus [`conditions`], [`status`] patching, Kubernetes [`events`],
//! [`finalizer`]s added alongside the first reconciliation,
//! Prometheus [`metrics`] and the [`admin`] endpoints, [`leader`] election,
//! the `requestedAt` [`reconcile_request`] handling, common controller
//! [`options`], logging ([`telemetry`]), downloading and safely unpacking
//! source [`artifact`]s, the [`remote_cluster`]s of `spec.kubeConfig`, and
//! the server-side apply, prune and health-check engine ([`ssa`]).
#![warn(missing_docs)]

pub mod admin;
pub mod api_client;
pub mod artifact;
pub mod conditions;
pub mod config_data;
mod delayed_triggers;
pub mod dependencies;
pub mod events;
pub mod finalizer;
pub mod leader;
pub mod manager;
pub mod metrics;
pub mod options;
pub mod process;
pub mod reconcile;
pub mod reconcile_request;
pub mod remote_cluster;
pub mod semver;
pub mod shutdown;
pub mod source;
pub mod ssa;
pub mod status;
pub mod telemetry;
pub mod watch_backoff;

/// Errors of the shared runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing an object's status failed.
    #[error("failed to patch status of {name}: {source}")]
    PatchStatus {
        /// The object's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A status could not be serialised.
    #[error("failed to serialise status: {0}")]
    SerializeStatus(#[source] serde_json::Error),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Applying, pruning or health-checking objects failed.
    #[error(transparent)]
    Ssa(#[from] ssa::Error),
    /// Downloading or unpacking a source artifact failed.
    #[error(transparent)]
    Artifact(#[from] artifact::Error),
    /// The Kubernetes client could not be configured.
    #[error("cannot configure the Kubernetes client: {0}")]
    Client(String),
    /// An object lacks a structural field (`metadata.namespace`, say).
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// Leader election failed.
    #[error("leader election failed: {0}")]
    LeaderElection(String),
    /// A command-line flag has an invalid value.
    #[error("invalid {flag} {value:?}: {reason}")]
    InvalidFlag {
        /// Which flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: String,
    },
}
