//! The crate's error type. Messages follow kustomize's wording where a
//! kustomize user would recognise it, and always name the file or resource
//! involved.

use std::path::PathBuf;

use crate::yaml::YamlError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {cause}", path.display())]
    Yaml { path: PathBuf, cause: YamlError },

    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },

    #[error("security; file '{}' is not in or below '{}'", path.display(), root.display())]
    OutsideRoot { path: PathBuf, root: PathBuf },

    #[error("security; path '{}' is outside the source root '{}'", path.display(), root.display())]
    OutsideSourceRoot { path: PathBuf, root: PathBuf },

    #[error("'{}' must resolve to a file", path.display())]
    NotAFile { path: PathBuf },

    #[error("must build at directory: not a valid directory: '{}'", path.display())]
    NotADirectory { path: PathBuf },

    #[error(
        "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
        dir.display()
    )]
    MissingKustomization { dir: PathBuf },

    #[error("Found multiple kustomization files under: {}", dir.display())]
    MultipleKustomizations { dir: PathBuf },

    #[error("invalid Kustomization {}: {message}", path.display())]
    InvalidKustomization { path: PathBuf, message: String },

    #[error("cycle detected: candidate root '{}' contains visited root '{}'", candidate.display(), visited.display())]
    Cycle {
        candidate: PathBuf,
        visited: PathBuf,
    },

    #[error("{message}")]
    InvalidResource { message: String },

    #[error("may not add resource with an already registered id: {id}")]
    DuplicateId { id: String },

    #[error("{message}")]
    Patch { message: String },

    #[error("{message}")]
    Generator { message: String },

    #[error("{message}")]
    Transformer { message: String },

    /// Display already includes the cause, kustomize-style, so the cause
    /// is not also exposed as `source()` (printers would repeat it).
    #[error("{context}: {inner}")]
    Context { context: String, inner: Box<Error> },
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
        match self {
            Error::Yaml { .. } => true,
            Error::Context { inner, .. } => inner.is_yaml(),
            _ => false,
        }
    }
}

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
