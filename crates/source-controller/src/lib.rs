//! ferroflux source-controller: reconciles `source.toolkit.fluxcd.io/v1` objects
//! into artifacts (normalised tarballs, Helm indexes and charts) kept in an
//! [`storage::ArtifactStore`] and served over HTTP by [`server`], with the
//! status, conditions, events and metrics Flux's source-controller reports.
#![warn(missing_docs)]

pub mod archive;
pub mod bucket;
pub mod chart_dependencies;
pub mod chart_package;
pub mod chart_repository;
pub mod controller;
pub mod git_repository;
pub mod helm_chart;
pub mod helm_repository;
pub mod index_cache;
pub mod manager;
pub mod oci_chart;
pub mod oci_repository;
pub mod options;
pub mod server;
pub mod source_ignore;
pub mod source_status;
pub mod storage;

use api::meta::{condition_type, reason};
use runtime::reconcile::{Disposition, Failure, ReconcileError};

/// Errors of the source-controller. Each one that a reconciliation can end
/// with maps onto a Flux condition ([`Error::failure`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Local file system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A path is not acceptable.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A `sparseCheckout` directory is not in the checked-out commit.
    #[error(
        "failed to sparse checkout directories : sparse checkout dir '{0}' does not exist in repository"
    )]
    SparseCheckoutMissing(String),
    /// An ignore pattern does not parse.
    #[error("invalid ignore pattern in {0}")]
    InvalidIgnore(String),
    /// The content is larger than allowed.
    #[error("artifact size exceeds the limit of {limit} bytes")]
    SizeLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// Shared runtime failure (status patching, listeners, leader election).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
    /// A Kubernetes API call failed.
    #[error("kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// The source URL is invalid.
    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A duration in the spec does not parse.
    #[error("invalid duration: {0}")]
    InvalidDuration(String),
    /// The referenced Secret could not be read.
    #[error("failed to get secret '{namespace}/{name}': {message}")]
    Secret {
        /// Namespace of the Secret.
        namespace: String,
        /// Name of the Secret.
        name: String,
        /// Why it could not be read.
        message: String,
    },
    /// The spec asks for something this controller does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// A Git operation failed.
    #[error("failed to checkout and determine revision: {0}")]
    Git(#[from] git::Error),
    /// The semver range in the spec does not parse.
    #[error("invalid semver range '{range}': {message}")]
    InvalidSemver {
        /// The range as written.
        range: String,
        /// The parse error.
        message: String,
    },
    /// No tag satisfies the semver range.
    #[error("no match found for semver: {0}")]
    NoMatchingTag(String),
    /// An included GitRepository cannot be used (yet).
    #[error("{message}")]
    Include {
        /// Flux's reason: `NotFound`, `NoArtifact`, `IllegalPath`, `CopyFailure`, `CircularInclude`.
        reason: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A Helm repository index could not be fetched or is not valid.
    #[error("{0}")]
    Index(String),
    /// The source of a HelmChart is missing or has no artifact yet.
    #[error("{0}")]
    SourceUnavailable(String),
    /// A chart could not be resolved, fetched or built.
    #[error("{}: {message}", reason.summary())]
    Chart {
        /// Flux's build error reason.
        reason: chart_package::BuildReason,
        /// What went wrong.
        message: String,
    },
    /// An OCI registry operation failed.
    #[error("{context}: {source}")]
    Oci {
        /// What was being done (Flux's message prefix).
        context: String,
        /// The registry error.
        #[source]
        source: oci::Error,
    },
    /// The selected layer of an OCI artifact is missing or cannot be unpacked.
    #[error("{0}")]
    OciLayer(String),
    /// A GitRepository's commit or tag signature could not be verified
    /// (`spec.verify`); the reason also goes on `SourceVerified=False`.
    #[error("{message}")]
    Verification {
        /// Flux's reason: `VerificationError`, `InvalidVerificationMode`,
        /// `InvalidGitObject`, `InvalidTagSignature`, `InvalidCommitSignature`.
        reason: &'static str,
        /// What failed.
        message: String,
        /// Retrying cannot help until the spec changes.
        stalled: bool,
    },
    /// A bucket could not be checked, listed or downloaded.
    #[error("{0}")]
    Bucket(String),
    /// Storing the artifact failed.
    #[error("unable to archive artifact to storage: {0}")]
    Archive(#[source] Box<Error>),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }

    /// The condition, reason and retry behaviour Flux reports for this error.
    pub fn failure(&self) -> Failure {
        let fetch = |reason, stalled: bool| {
            let failure = if stalled {
                Failure::stall(reason)
            } else {
                Failure::retry(reason)
            };
            failure.on(condition_type::FETCH_FAILED)
        };
        let storage = |stalled: bool| {
            let failure = if stalled {
                Failure::stall(reason::ARCHIVE_OPERATION_FAILED)
            } else {
                Failure::retry(reason::ARCHIVE_OPERATION_FAILED)
            };
            failure.on(condition_type::STORAGE_OPERATION_FAILED)
        };
        match self {
            Error::InvalidUrl { .. } => fetch(reason::URL_INVALID, true),
            Error::Secret { .. } => fetch(reason::AUTHENTICATION_FAILED, false),
            Error::Unsupported(_) => fetch(reason::INVALID_PROVIDER_CONFIGURATION, true),
            Error::InvalidDuration(_) => fetch(reason::FAILED, true),
            // The directory may appear in a later commit: retried, not stalled.
            Error::SparseCheckoutMissing(_) => fetch(reason::GIT_OPERATION_FAILED, false),
            Error::Git(git) => match git {
                git::Error::InvalidUrl { .. } => fetch(reason::URL_INVALID, true),
                git::Error::InvalidAuth { .. }
                | git::Error::Authentication { .. }
                | git::Error::InvalidProxy(_) => fetch(reason::AUTHENTICATION_FAILED, false),
                _ => fetch(reason::GIT_OPERATION_FAILED, false),
            },
            Error::InvalidSemver { .. } => fetch(reason::GIT_OPERATION_FAILED, true),
            Error::NoMatchingTag(_) => fetch(reason::GIT_OPERATION_FAILED, false),
            Error::Index(_) => fetch(reason::INDEXATION_FAILED, false),
            Error::Bucket(_) => fetch(reason::BUCKET_OPERATION_FAILED, false),
            Error::Oci { source, .. } => match source {
                oci::Error::InvalidUrl { .. } => fetch(reason::URL_INVALID, true),
                // Flux reports a registry's refusal as a failed pull; only
                // credentials it cannot even read are AuthenticationFailed.
                oci::Error::InvalidCredentials(_) => fetch(reason::AUTHENTICATION_FAILED, false),
                oci::Error::InvalidSemver { .. } | oci::Error::InvalidFilter { .. } => {
                    fetch(reason::READ_OPERATION_FAILED, true)
                }
                oci::Error::NoMatchingTag(_) => fetch(reason::READ_OPERATION_FAILED, false),
                oci::Error::InvalidDigest(_) => fetch(reason::OCI_ARTIFACT_PULL_FAILED, true),
                oci::Error::Io { .. } => storage(false),
                _ => fetch(reason::OCI_ARTIFACT_PULL_FAILED, false),
            },
            Error::OciLayer(_) => fetch(reason::OCI_ARTIFACT_LAYER_OPERATION_FAILED, false),
            Error::SourceUnavailable(_) => {
                Failure::wait("SourceUnavailable").on(condition_type::FETCH_FAILED)
            }
            Error::Chart { reason, .. } => {
                let failure = if reason.is_persistent() {
                    Failure::stall(reason.as_str())
                } else {
                    Failure::retry(reason.as_str())
                };
                failure.on(reason.condition())
            }
            Error::Include { reason, .. } => {
                let failure = match *reason {
                    "IllegalPath" | "CircularInclude" => Failure::stall(reason),
                    "NotFound" | "NoArtifact" => Failure::wait(reason),
                    _ => Failure::retry(reason),
                };
                failure.on(condition_type::INCLUDE_UNAVAILABLE)
            }
            Error::Verification {
                reason, stalled, ..
            } => {
                if *stalled {
                    Failure::stall(reason)
                } else {
                    Failure::retry(reason)
                }
            }
            Error::Archive(inner) => storage(matches!(
                **inner,
                Error::SizeLimit { .. } | Error::InvalidIgnore(_)
            )),
            Error::SizeLimit { .. }
            | Error::InvalidIgnore(_)
            | Error::InvalidPath(_)
            | Error::Io { .. } => storage(false),
            Error::Runtime(_) | Error::Kube(_) => Failure::retry(reason::FAILED),
        }
    }

    /// A short label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        self.failure().reason
    }
}

impl ReconcileError for Error {
    fn disposition(&self) -> Disposition {
        self.failure().disposition
    }
}
