//! ferroflux helm-controller: reconciles `helm.toolkit.fluxcd.io/v2`
//! HelmReleases by running the real `helm` CLI (v4).
//!
//! - [`helm_cli`]: the helm driver (typed arguments, deadlines, JSON output,
//!   one-line error causes);
//! - [`storage`] and [`release`]: Helm's release storage as observed
//!   through the API, and the unlock of stale pending releases;
//!   [`go_json`]: Go's JSON encoding, for release digests equal to Flux's;
//! - [`names`], [`values`], [`strvals`], [`state`]: pure rules (release
//!   names, values composition and digest, the release state machine);
//! - [`post_render`]: kustomize post-renderers, common metadata and origin
//!   labels, run by helm through a private plugin;
//! - [`chart`]: chart acquisition through source status and artifacts;
//!   [`template`]: the HelmChart or OCIRepository of a `spec.chart` template;
//! - [`target_cluster`]: the cluster a release lives in (the controller's
//!   own, or a remote one from `spec.kubeConfig`);
//! - [`reconcile`]: the HelmRelease reconciliation and its release loop; [`event_queue`]: its events, written in the background;
//!   [`manager`] wires watches, leader election and endpoints.
#![warn(missing_docs)]

pub mod chart;
pub mod chart_digest;
pub mod crds;
pub mod event_queue;
pub mod go_json;
pub mod helm_cli;
pub mod manager;
pub mod names;
pub mod options;
pub mod post_render;
pub mod reconcile;
pub mod release;
pub mod state;
pub mod storage;
pub mod strvals;
pub mod target_cluster;
pub mod template;
pub mod values;

/// Errors of helm-controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error(transparent)]
    Kube(#[from] kube::Error),
    /// A helm call failed.
    #[error(transparent)]
    Helm(#[from] helm_cli::HelmError),
    /// Reading or writing Helm's storage failed.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// The chart could not be obtained.
    #[error(transparent)]
    Chart(#[from] chart::ChartError),
    /// The values could not be composed.
    #[error(transparent)]
    Values(#[from] values::ValuesError),
    /// Shared runtime plumbing failed (status patch, endpoints, lease).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// Server-side apply (drift detection or correction) failed.
    #[error(transparent)]
    Ssa(#[from] runtime::ssa::Error),
    /// The reconciliation waits for something else (a dependency, a source)
    /// and is retried after `--requeue-dependency`, not with backoff.
    #[error("{0}")]
    Waiting(String),
    /// A release action failed in a way the status already records; the
    /// reconciliation is retried with backoff.
    #[error("{0}")]
    Release(String),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl runtime::reconcile::ReconcileError for Error {
    fn disposition(&self) -> runtime::reconcile::Disposition {
        match self {
            Error::Waiting(_) => runtime::reconcile::Disposition::WaitForDependency,
            _ => runtime::reconcile::Disposition::Retry,
        }
    }
}
