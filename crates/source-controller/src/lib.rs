//! ferroflux source-controller: reconciles `source.toolkit.fluxcd.io/v1` objects
//! into artifacts (normalised tarballs, Helm indexes and charts) kept in an
//! [`storage::ArtifactStore`] and served over HTTP by [`server`], with the
//! status, conditions, events and metrics Flux's source-controller reports.

pub mod archive;
pub mod server;
pub mod source_ignore;
pub mod storage;

/// Errors of the source-controller.
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
    /// An ignore pattern does not parse.
    #[error("invalid ignore pattern in {0}")]
    InvalidIgnore(String),
    /// The content is larger than allowed.
    #[error("size exceeds the limit of {limit} bytes")]
    SizeLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// Shared runtime failure (status patching, listeners, leader election).
    #[error(transparent)]
    Runtime(#[from] runtime::Error),
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}
