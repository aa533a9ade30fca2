//! ferroflux image-automation-controller: Flux's image-reflector-controller
//! and image-automation-controller in one binary, on the shared harness.
//!
//! - [`image_repository`]: list a registry repository's tags (the OCI
//!   distribution API through `oci`), drop the excluded ones, keep them in the
//!   [`tag_store::TagStore`] and report the scan in status.
//! - [`image_policy`]: pick the latest tag of the referenced repository by
//!   the policy ([`policy::ImagePolicySelector`]), reflect its digest if asked,
//!   and publish it as `status.latestRef`.
//! - [`automation`]: clone the GitRepository, rewrite the setter markers to
//!   the policies' latest images (`image_update`), commit and push.
//!
//! Each kind's reconciler reads top to bottom (fetch, decide, act) and ends
//! in [`reconcile::finish`], which turns the outcome into Flux's conditions,
//! status, events and requeue.
#![warn(missing_docs)]

pub mod automation;
pub mod context;
pub mod image_name;
pub mod image_policy;
pub mod image_repository;
pub mod manager;
pub mod options;
pub mod policy;
pub mod reconcile;
pub mod registry;
pub mod tag_store;

use runtime::reconcile::{Disposition, ReconcileError};

/// What goes back to the harness: failures that did not end in an object's
/// status (status writes, the finalizer, local storage), and a failed
/// attempt that is to be retried or to wait, after its status was written.
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
    /// Local storage trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line flag cannot be used.
    #[error("invalid flag: {0}")]
    Flag(String),
    /// The attempt failed as its status says; retried or waiting.
    #[error("{message}")]
    Halted {
        /// Retry or wait.
        disposition: Disposition,
        /// The `Ready` message.
        message: String,
    },
}

impl Error {
    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

impl ReconcileError for Error {
    fn disposition(&self) -> Disposition {
        match self {
            Error::Halted { disposition, .. } => *disposition,
            _ => Disposition::Retry,
        }
    }
}
