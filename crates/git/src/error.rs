use std::path::PathBuf;
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
    /// A submodule of a checkout could not be fetched or checked out; `source`
    /// says why (rejected credentials, a commit the remote does not have, ...).
    #[error("unable to check out submodule '{path}' from '{url}': {source}")]
    Submodule {
        /// Its path from the top of the checkout (a nested submodule's path
        /// includes its parents').
        path: String,
        /// The URL it was fetched from, relative URLs resolved.
        url: String,
        /// What failed.
        source: Box<Error>,
    },
    /// A submodule cannot be checked out as the superproject describes it: no
    /// `.gitmodules` entry for a recorded submodule, a path outside the work
    /// tree, an unusable URL, or submodules nested too deep.
    #[error("invalid submodule '{path}'{}: {reason}", from_url(.url))]
    InvalidSubmodule {
        /// Its path from the top of the checkout, as recorded or configured.
        path: String,
        /// Its URL, when known (empty otherwise).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An SSH signature that does not verify (the message says why).
    #[error("{0}")]
    SshSignature(String),
    /// A proxy Secret (`proxySecretRef`) that cannot be used.
    #[error("invalid proxy secret: {0}")]
    InvalidProxy(String),
    /// `--ssh-hostkey-algos` / `--ssh-kex-algos` values that cannot be used.
    #[error("invalid SSH algorithms: {0}")]
    InvalidSshAlgorithms(String),
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
    /// The work tree could not be committed (reading files, writing objects,
    /// moving `HEAD`).
    #[error("unable to commit in '{}': {message}", .dir.display())]
    Commit {
        /// The checkout directory.
        dir: PathBuf,
        /// What failed.
        message: String,
    },
    /// The key to sign commits with cannot be used: it is not an OpenPGP secret
    /// key, or the passphrase is wrong or missing.
    #[error("invalid signing key: {reason}")]
    SigningKey {
        /// What is wrong.
        reason: String,
    },
    /// The remote refused to update a reference.
    #[error("push of '{reference}' to '{url}' was rejected: {reason}")]
    PushRejected {
        /// The repository URL.
        url: String,
        /// The remote reference that was not updated (`refs/heads/main`).
        reference: String,
        /// Why, as the remote or `git push` said it (`fetch first`, `non-fast-forward`,
        /// `pre-receive hook declined`).
        reason: String,
        /// The remote branch moved: it has commits the pushed one does not
        /// contain, or another push updated it meanwhile. Fetch, redo the
        /// change on top of it and push again.
        non_fast_forward: bool,
    },
    /// Push options were given, and the server does not accept any.
    #[error("the server at '{url}' does not support push options (receive.advertisePushOptions)")]
    PushOptionsUnsupported {
        /// The repository URL.
        url: String,
    },
    /// A push failed for another reason than credentials, rejected references,
    /// push options or time.
    #[error("unable to push to '{url}': {message}")]
    Push {
        /// The repository URL.
        url: String,
        /// What `git push` reported.
        message: String,
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

fn from_url(url: &str) -> String {
    if url.is_empty() {
        String::new()
    } else {
        format!(" from '{url}'")
    }
}
