//! One HTTP client per Provider: proxy, CA, client certificate, timeout and
//! the Secret's extra headers; JSON posts retried on server errors and
//! transport failures with exponential backoff, as Flux's retrying client does.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};

use crate::{DEFAULT_TIMEOUT, NotifyError, Transport};

/// Attempts per request: the first and up to this many minus one retries.
const ATTEMPTS: u32 = 4;
/// The first retry's delay; each next one doubles.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// How much of an error response's body is kept in the error.
const ERROR_BODY_LIMIT: usize = 512;

/// Sends a Provider's requests.
#[derive(Debug, Clone)]
pub struct Poster {
    client: reqwest::Client,
    retry_delay: Duration,
}

impl Poster {
    /// A client built from `transport`, sending `headers` with each request.
    pub fn new(
        transport: &Transport,
        headers: &BTreeMap<String, String>,
    ) -> Result<Self, NotifyError> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            NotifyError::InvalidConfig(format!("{what}: {e}"))
        };
        let mut default_headers = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| invalid(&format!("header name '{name}'"), &e))?;
            let value = HeaderValue::from_str(value)
                .map_err(|e| invalid(&format!("header '{name}' value"), &e))?;
            default_headers.insert(name, value);
        }
        let mut builder = reqwest::Client::builder()
            .timeout(transport.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .default_headers(default_headers)
            .user_agent(concat!(
                "ferroflux-notification-controller/",
                env!("CARGO_PKG_VERSION")
            ));
        builder = match &transport.proxy {
            Some(proxy) => builder
                .proxy(reqwest::Proxy::all(proxy.as_str()).map_err(|e| invalid("proxy", &e))?),
            // Flux's notifiers use retryablehttp's transport, whose proxy
            // is ProxyFromEnvironment.
            None => builder.proxy(env_proxy::reqwest_proxy()),
        };
        if let Some(ca) = &transport.ca_pem {
            for cert in
                reqwest::Certificate::from_pem_bundle(ca).map_err(|e| invalid("ca.crt", &e))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(pem) = &transport.client_identity_pem {
            builder = builder.identity(
                reqwest::Identity::from_pem(pem).map_err(|e| invalid("tls.crt/tls.key", &e))?,
            );
        }
        let client = builder.build().map_err(|e| invalid("HTTP client", &e))?;
        Ok(Self {
            client,
            retry_delay: FIRST_RETRY_DELAY,
        })
    }

    /// The same client retrying after `delay` (tests keep it short).
    pub fn with_retry_delay(mut self, delay: Duration) -> Self {
        self.retry_delay = delay;
        self
    }

    /// A request of `method` to `url`, to be finished by the caller (auth,
    /// body) and sent with [`Poster::send`].
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.client.request(method, url)
    }

    /// POSTs `body` as JSON to `url` with [`Poster::send`]'s retries.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<reqwest::Response, NotifyError> {
        self.send(|| customize(self.request(Method::POST, url).json(body)))
            .await
    }

    /// Sends the request `build` makes, again after a server error, a 429
    /// or a transport failure (up to 4 attempts, backing off); a 2xx
    /// response is returned, anything else is an error.
    pub async fn send(
        &self,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<reqwest::Response, NotifyError> {
        let mut delay = self.retry_delay;
        let mut attempt = 1;
        loop {
            let request = build()
                .build()
                .map_err(|e| NotifyError::InvalidConfig(e.to_string()))?;
            let method = request.method().to_string();
            let url = redact(request.url());
            let outcome = self.client.execute(request).await;
            let retryable = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
                }
                Err(err) => !err.is_builder(),
            };
            if !retryable || attempt >= ATTEMPTS {
                return match outcome {
                    Ok(response) if response.status().is_success() => Ok(response),
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let body = response.text().await.unwrap_or_default();
                        Err(NotifyError::Status {
                            method,
                            url,
                            status,
                            body: truncate(&body, ERROR_BODY_LIMIT),
                        })
                    }
                    Err(err) => Err(NotifyError::Transport {
                        method,
                        url,
                        message: error_chain(&err),
                    }),
                };
            }
            tracing::debug!(%url, attempt, "provider request failed, retrying");
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
            attempt += 1;
        }
    }
}

/// `url` without its user info (tokens in webhook URLs stay out of errors).
fn redact(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
