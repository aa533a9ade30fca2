//! ferroflux kustomize-controller: reconciles Flux `Kustomization` objects
//! (kustomize.toolkit.fluxcd.io/v1) by building a kustomize overlay from a
//! source artifact and applying it with server-side apply.
//!
//! The build steps are pure modules: [`generator`] (kustomization.yaml
//! generation and the spec's build settings), [`decrypt`] (SOPS),
//! [`postbuild`] (variable substitution with the [`envsubst`] dialect),
//! put together by [`build`]. [`reconcile`] is the reconciler, [`manager`]
//! starts it with its watches.
#![warn(missing_docs)]

pub mod build;
pub mod context;
pub mod decrypt;
pub mod dependencies;
pub mod envsubst;
pub mod generator;
pub mod history;
pub mod manager;
pub mod options;
pub mod postbuild;
pub mod reconcile;
pub mod source;

/// Errors a reconciliation returns to the controller (everything else ends
/// in the Kustomization's status) and start-up errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(#[from] kube::config::InferConfigError),
    /// Shared runtime failure (status patching, listeners, leader election).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// Local file system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking task did not complete.
    #[error("build task failed: {0}")]
    Task(String),
    /// A command-line flag has an invalid value.
    #[error("invalid flag: {0}")]
    Flag(String),
    /// The cluster of `spec.kubeConfig` cannot be reached (garbage
    /// collection on deletion).
    #[error("failed to build kube client: {0}")]
    Cluster(#[from] runtime::remote_cluster::KubeConfigError),
}

impl runtime::reconcile::ReconcileError for Error {
    /// Everything a Kustomization can be told about ends in its status;
    /// what comes back to the harness (status writes, the finalizer, local
    /// I/O) is retried with backoff.
    fn disposition(&self) -> runtime::reconcile::Disposition {
        runtime::reconcile::Disposition::Retry
    }
}
