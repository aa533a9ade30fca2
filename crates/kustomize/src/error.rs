//! The crate's error type. Messages follow kustomize's wording where a
//! kustomize user would recognise it, and always name the file or resource
//! involved.

use std::path::PathBuf;

use crate::yaml::YamlError;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file is not valid YAML.
    #[error("{}: {cause}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parse error.
        cause: YamlError,
    },

    /// Reading a file or directory failed.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },

    /// The load restrictor refused a file outside the kustomization's directory.
    #[error("security; file '{}' is not in or below '{}'", path.display(), root.display())]
    OutsideRoot {
        /// The file asked for.
        path: PathBuf,
        /// The kustomization's directory.
        root: PathBuf,
    },

    /// A path resolves (symlinks included) outside the build's source root.
    #[error("security; path '{}' is outside the source root '{}'", path.display(), root.display())]
    OutsideSourceRoot {
        /// The path asked for.
        path: PathBuf,
        /// The source root.
        root: PathBuf,
    },

    /// A file was expected but the path is a directory.
    #[error("'{}' must resolve to a file", path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },

    /// A directory was expected but the path is not one.
    #[error("must build at directory: not a valid directory: '{}'", path.display())]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },

    /// A directory holds no kustomization file.
    #[error(
        "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
        dir.display()
    )]
    MissingKustomization {
        /// The directory.
        dir: PathBuf,
    },

    /// A directory holds more than one kustomization file.
    #[error("Found multiple kustomization files under: {}", dir.display())]
    MultipleKustomizations {
        /// The directory.
        dir: PathBuf,
    },

    /// A kustomization file is malformed or uses an unsupported feature.
    #[error("invalid Kustomization {}: {message}", path.display())]
    InvalidKustomization {
        /// The kustomization file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A base or component directory contains a kustomization that led to it.
    #[error("cycle detected: candidate root '{}' contains visited root '{}'", candidate.display(), visited.display())]
    Cycle {
        /// The directory asked for.
        candidate: PathBuf,
        /// The directory of the kustomization that asked for it.
        visited: PathBuf,
    },

    /// A resource (or a path to one) is invalid.
    #[error("{message}")]
    InvalidResource {
        /// What is wrong.
        message: String,
    },

    /// Two resources have the same id.
    #[error("may not add resource with an already registered id: {id}")]
    DuplicateId {
        /// The id.
        id: String,
    },

    /// A patch is invalid or failed to apply.
    #[error("{message}")]
    Patch {
        /// What went wrong.
        message: String,
    },

    /// A ConfigMap or Secret generator failed.
    #[error("{message}")]
    Generator {
        /// What went wrong.
        message: String,
    },

    /// A transformer (names, labels, images, replacements, ...) failed.
    #[error("{message}")]
    Transformer {
        /// What went wrong.
        message: String,
    },

    /// A remote base, component or file in a build that does not fetch them.
    #[error("remote resource '{target}' is not allowed: {why}")]
    RemoteRefused {
        /// The URL as written.
        target: String,
        /// Why the build does not fetch it.
        why: String,
    },

    /// Fetching a remote base, component or file failed.
    #[error("fetching '{target}': {message}")]
    Remote {
        /// The URL as written.
        target: String,
        /// What failed.
        message: String,
    },

    /// A remote file answered with a status outside 2xx (kustomize's `ErrHTTP`).
    #[error("HTTP Error: status code {status}{}: {url}", status_text(*status))]
    Http {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },

    /// An error with context prefixed (see [`Error::context`]).
    ///
    /// Display already includes the cause, kustomize-style, so the cause
    /// is not also exposed as `source()` (printers would repeat it).
    #[error("{context}: {inner}")]
    Context {
        /// What was being done.
        context: String,
        /// The error.
        inner: Box<Error>,
    },
}

impl Error {
    /// Prefixes the error with context, like kustomize's `WrapPrefixf`.
    pub fn context(self, context: impl Into<String>) -> Error {
        Error::Context {
            context: context.into(),
            inner: Box::new(self),
        }
    }

    pub(crate) fn patch(message: impl Into<String>) -> Error {
        Error::Patch {
            message: message.into(),
        }
    }

    pub(crate) fn generator(message: impl Into<String>) -> Error {
        Error::Generator {
            message: message.into(),
        }
    }

    pub(crate) fn transformer(message: impl Into<String>) -> Error {
        Error::Transformer {
            message: message.into(),
        }
    }

    pub(crate) fn resource(message: impl Into<String>) -> Error {
        Error::InvalidResource {
            message: message.into(),
        }
    }

    /// True when the innermost cause is malformed YAML.
    pub fn is_yaml(&self) -> bool {
        matches!(self.innermost(), Error::Yaml { .. })
    }

    /// True when a remote file answered with an HTTP error or remote targets
    /// are refused: a resource path that fails so is not tried as a base.
    pub fn is_final_for_resource(&self) -> bool {
        matches!(
            self.innermost(),
            Error::Http { .. } | Error::RemoteRefused { .. }
        )
    }

    fn innermost(&self) -> &Error {
        match self {
            Error::Context { inner, .. } => inner.innermost(),
            other => other,
        }
    }
}

/// ` (Not Found)`: Go's `http.StatusText` of the common codes, in brackets.
fn status_text(status: u16) -> String {
    let text = match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => return String::new(),
    };
    format!(" ({text})")
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Adds kustomize-style context to results.
pub(crate) trait ResultExt<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> ResultExt<T> for Result<T> {
    fn context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| e.context(context()))
    }
}
