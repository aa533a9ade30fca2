use std::time::Duration;

/// Why a Git operation failed. Each variant says what a user can do about it, and
/// callers map them onto Flux's condition reasons.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository URL cannot be used.
    #[error("invalid URL '{url}': {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The credentials given are incomplete or malformed.
    #[error("invalid '{scheme}' auth option: {reason}")]
    InvalidAuth {
        /// `http`, `https` or `ssh`.
        scheme: String,
        /// What is wrong.
        reason: String,
    },
    /// The server refused the credentials (or required some and none were given).
    #[error("authentication to '{url}' failed: {message}")]
    Authentication {
        /// The repository URL.
        url: String,
        /// The underlying error.
        message: String,
    },
    /// The requested branch, tag or reference does not exist on the remote.
    #[error("couldn't find remote ref '{reference}' in '{url}'")]
    ReferenceNotFound {
        /// The full reference name.
        reference: String,
        /// The repository URL.
        url: String,
    },
    /// The operation took longer than the allowed time.
    #[error("git operation on '{url}' timed out after {timeout:?}")]
    Timeout {
        /// The repository URL.
        url: String,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// Any other failure of the Git protocol or of the checkout.
    #[error("unable to clone '{url}': {message}")]
    Operation {
        /// The repository URL.
        url: String,
        /// The underlying error chain.
        message: String,
    },
    /// A Git object does not parse.
    #[error("invalid {kind} object: {message}")]
    InvalidObject {
        /// `commit` or `tag`.
        kind: &'static str,
        /// The parse error.
        message: String,
    },
    /// The object to verify carries no signature.
    #[error("unable to verify payload as the provided signature is empty")]
    Unsigned,
    /// A trusted key ring is not an armored OpenPGP key ring.
    #[error("unable to read armored key ring: {0}")]
    KeyRing(String),
    /// No key of the trusted key rings made the signature (or the signature
    /// does not match the object). `issuers` are the key ids the signature names.
    #[error("unable to verify payload with any of the given key rings{}", signed_with(.issuers))]
    UntrustedSignature {
        /// Key ids of the signer, as the signature states them.
        issuers: Vec<String>,
    },
    /// Local file system trouble (temporary files, key files, the checkout directory).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
        let context = context.into();
        move |source| Error::Io { context, source }
    }
}

fn signed_with(issuers: &[String]) -> String {
    if issuers.is_empty() {
        String::new()
    } else {
        format!(" (signed with key '{}')", issuers.join("', '"))
    }
}
