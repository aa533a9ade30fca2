//! The Provider integrations of notification-controller: a Flux [`Event`]
//! rendered in each service's own format and sent over HTTP.
//!
//! The controller resolves a Provider and its Secrets into a [`Target`]
//! (where and as whom to post) and a [`Transport`] (proxy, CA, client
//! certificate, timeout); [`Notifier::new`] checks them once and
//! [`Notifier::post`] sends one event. Alerting services (Slack, Teams, a
//! generic webhook, ...) live in [`alerting`]; Git forges (commit statuses,
//! repository dispatches) in [`forge`]. A type this crate does not
//! implement is [`NotifyError::Unsupported`], never a silent drop.
#![warn(missing_docs)]

pub mod alerting;
pub mod forge;
pub mod http;
mod markdown;

use std::collections::BTreeMap;
use std::time::Duration;

pub use api::event::Event;
pub use api::notification::ProviderType;

use crate::http::Poster;

/// Where, and as whom, a Provider posts: its spec merged with its Secret
/// (the Secret's `address` wins over `spec.address`, as in Flux).
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// `spec.address`, or the Secret's `address`.
    pub address: String,
    /// `spec.channel`.
    pub channel: Option<String>,
    /// `spec.username`, or the Secret's `username`.
    pub username: Option<String>,
    /// The Secret's `token`.
    pub token: Option<String>,
    /// The Secret's `password`.
    pub password: Option<String>,
    /// The Secret's `headers` (a YAML map), added to every request.
    pub headers: BTreeMap<String, String>,
    /// Every key of the Secret, for provider-specific ones (GitHub App keys).
    pub secret: BTreeMap<String, Vec<u8>>,
    /// The Provider's name, namespace and UID (commit status ids, `commitStatusExpr`).
    pub provider: ProviderIdentity,
    /// `spec.commitStatusExpr`.
    pub commit_status_expr: Option<String>,
}

/// Which Provider object a [`Target`] came from.
#[derive(Clone, Debug, Default)]
pub struct ProviderIdentity {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
}

/// How requests travel: `spec.proxy` (or the proxy Secret), `certSecretRef`
/// and `spec.timeout`.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    /// Proxy URL, `http://` or `https://`, credentials included.
    pub proxy: Option<String>,
    /// PEM bundle of CAs trusted beside the system roots (`ca.crt`).
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key (`tls.crt` + `tls.key`).
    pub client_identity_pem: Option<Vec<u8>>,
    /// The whole exchange's timeout; Flux's default is 15 s.
    pub timeout: Option<Duration>,
}

/// Flux's default for `spec.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why an event could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The Provider names a type this build does not implement.
    #[error("provider type '{0}' is not supported by ferroflux")]
    Unsupported(String),
    /// The Provider's settings cannot work (a bad address, a missing token):
    /// retrying cannot help until the Provider or its Secret changes.
    #[error("invalid provider configuration: {0}")]
    InvalidConfig(String),
    /// The event lacks what this provider needs (a commit status without a
    /// revision); nothing is sent and nothing is wrong.
    #[error("event skipped: {0}")]
    Skipped(String),
    /// The service answered with an error status (after retries if it was
    /// a server error).
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// Request method.
        method: String,
        /// Request URL, without credentials.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The start of the response body.
        body: String,
    },
    /// The request did not complete (connection refused, timeout, TLS).
    #[error("{method} {url}: {message}")]
    Transport {
        /// Request method.
        method: String,
        /// Request URL, without credentials.
        url: String,
        /// What went wrong.
        message: String,
    },
}

impl NotifyError {
    /// Whether the failure comes from the Provider's settings or type, so
    /// that re-sending the same event cannot succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            NotifyError::Unsupported(_) | NotifyError::InvalidConfig(_)
        )
    }
}

/// One Provider, ready to post events.
#[derive(Debug)]
pub struct Notifier {
    kind: Kind,
    target: Target,
    transport: Transport,
    poster: Poster,
}

/// The family a provider type belongs to.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Alerting(ProviderType),
    Forge(ProviderType),
}

impl Notifier {
    /// A notifier of `provider_type` posting to `target` over `transport`;
    /// fails when the type is unsupported or the settings cannot work.
    pub fn new(
        provider_type: ProviderType,
        target: Target,
        transport: &Transport,
    ) -> Result<Self, NotifyError> {
        let kind = if forge::handles(provider_type) {
            forge::validate(provider_type, &target)?;
            Kind::Forge(provider_type)
        } else {
            alerting::validate(provider_type, &target, transport)?;
            Kind::Alerting(provider_type)
        };
        let poster = Poster::new(transport, &target.headers)?;
        Ok(Self {
            kind,
            target,
            transport: transport.clone(),
            poster,
        })
    }

    /// Sends `event`; server errors and timeouts are retried a few times
    /// with backoff before giving up.
    pub async fn post(&self, event: &Event) -> Result<(), NotifyError> {
        match self.kind {
            Kind::Alerting(t) => {
                alerting::post(t, &self.target, &self.transport, &self.poster, event).await
            }
            Kind::Forge(t) => forge::post(t, &self.target, &self.poster, event).await,
        }
    }
}

/// The name of a provider type as written in a Provider's `spec.type`.
pub fn type_name(provider_type: ProviderType) -> String {
    serde_json::to_value(provider_type)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{provider_type:?}").to_lowercase())
}
