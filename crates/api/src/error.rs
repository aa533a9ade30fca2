//! The crate's error type.

/// Errors from the API crate: rendering CRDs and parsing API values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A CRD could not be rendered as YAML.
    #[error("rendering CRD {name} as YAML")]
    RenderYaml {
        /// Name of the CRD (`<plural>.<group>`).
        name: String,
        /// What serde-saphyr reported.
        #[source]
        source: serde_saphyr::SerializeError,
    },
    /// A duration string is not in Go's `time.ParseDuration` format.
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration {
        /// The text that failed to parse.
        value: String,
        /// Why it failed.
        reason: String,
    },
    /// A negative duration was given where only non-negative ones make sense.
    #[error("negative duration {0:?}")]
    NegativeDuration(String),
}
