//! The Receiver webhook server (`--receiverAddr`): a request to a
//! Receiver's `/hook/<digest>` path, verified the way its type says, asks
//! for a reconciliation of each resource the Receiver names.
//!
//! The flow of one request (see the crate README's "Receivers" section):
//! find the Receiver whose `status.webhookPath` is the request path (404
//! if none; 503 while it is suspended or not Ready), read the body (413
//! over [`MAX_BODY_BYTES`]), read the token from `spec.secretRef` and
//! verify the request per type (`verify`; `generic-oidc` through
//! `oidc`): 401 for a wrong or missing token/signature, 400 for a
//! payload the sender's format cannot read or an event `spec.events` does
//! not list. Then each `spec.resources` entry is resolved
//! (`resources`), filtered by the CEL `resourceFilter` and the entry's
//! `filter` (`filter`) and annotated with `reconcile.fluxcd.io/requestedAt`:
//! 200 when every entry was handled, 500 when one failed (the others are
//! still annotated). Requests are measured as `gotk_receiver_http_*`,
//! all under the `handler` label `/hook/`, as Flux labels them without
//! `--export-http-path-metrics`.

mod filter;
mod jwt;
mod oidc;
mod resources;
mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use api::notification::{Receiver, ReceiverType};
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::Store;
use runtime::metrics::SharedMetrics;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::HttpMetrics;
use filter::{Expression, FilterInput, ResourceFilters};
use jwt::KeyCache;
use resources::Annotator;
use verify::{ReceiverSecret, Rejection, Verified};

/// The `handler` label of every receiver request, unless
/// `--export-http-path-metrics` asks for the request path.
const HANDLER: &str = "/hook/";

/// The largest request body accepted (Flux's `maxRequestSizeBytes`,
/// 3 MiB); a larger one is answered 413 without being read further.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How long reading a request body may take (Flux's server `ReadTimeout`).
const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a request waits for the Receiver informer's first list before
/// being answered 503 (only right after start-up).
const STORE_WAIT: Duration = Duration::from_secs(5);

/// The path a Receiver listens on: `/hook/` and the hex SHA-256 of its
/// token, name and namespace, as Flux computes it (so a Receiver keeps its
/// URL when moved between Flux and ferroflux).
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!("/hook/{}", hex::encode(digest))
}

/// The HTTP server turning verified webhook requests into reconcile
/// requests.
pub struct ReceiverServer {
    shared: Shared,
}

struct Shared {
    client: kube::Client,
    receivers: Store<Receiver>,
    metrics: HttpMetrics,
    annotator: Annotator,
    keys: KeyCache,
    no_cross_namespace_refs: bool,
    export_path_metrics: bool,
}

/// The status and text of an answer.
struct Answer {
    status: StatusCode,
    message: String,
}

impl Answer {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl ReceiverServer {
    /// A server finding Receivers in `receivers` (an informer's store the
    /// caller keeps running), reading Secrets and annotating objects with
    /// `client`, and recording its request metrics in `metrics`.
    /// `no_cross_namespace_refs` refuses resources outside a Receiver's
    /// namespace (`--no-cross-namespace-refs`).
    pub fn new(
        client: kube::Client,
        receivers: Store<Receiver>,
        metrics: SharedMetrics,
        no_cross_namespace_refs: bool,
    ) -> Self {
        Self {
            shared: Shared {
                annotator: Annotator::new(client.clone()),
                client,
                receivers,
                metrics: HttpMetrics::register("gotk_receiver", &metrics),
                keys: KeyCache::new(),
                no_cross_namespace_refs,
                export_path_metrics: false,
            },
        }
    }

    /// The same server labelling its request metrics with the request path
    /// rather than `/hook/` (`--export-http-path-metrics`).
    pub fn with_path_metrics(mut self, export_path_metrics: bool) -> Self {
        self.shared.export_path_metrics = export_path_metrics;
        self
    }

    /// Serves on `listener` until `shutdown` is cancelled, then finishes the
    /// requests in progress.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), std::io::Error> {
        if let Ok(address) = listener.local_addr() {
            info!(%address, "receiver server listening");
        }
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::new(self.shared));
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
    }
}

/// Every request, whatever its path or method: Flux's handler answers any
/// method on `/hook/`.
async fn handle(State(shared): State<Arc<Shared>>, request: http::Request<Body>) -> Response {
    let handler = if shared.export_path_metrics {
        request.uri().path().to_string()
    } else {
        HANDLER.to_string()
    };
    let _inflight = shared.metrics.start(&handler);
    let started = Instant::now();
    let method = request.method().to_string();
    let answer = shared.answer(request).await;
    let mut body = answer.message;
    if !body.is_empty() {
        body.push('\n');
    }
    shared.metrics.record(
        &handler,
        &method,
        answer.status.as_u16(),
        started.elapsed().as_secs_f64(),
        body.len(),
    );
    (answer.status, body).into_response()
}

fn is_ready(receiver: &Receiver) -> bool {
    receiver
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

impl Shared {
    async fn answer(&self, request: http::Request<Body>) -> Answer {
        let path = request.uri().path().to_string();
        if !path.starts_with("/hook/") {
            return Answer::new(StatusCode::NOT_FOUND, "not found");
        }
        if !matches!(
            tokio::time::timeout(STORE_WAIT, self.receivers.wait_until_ready()).await,
            Ok(Ok(()))
        ) {
            return Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the Receivers are not loaded yet",
            );
        }
        let Some(receiver) = self.receivers.state().into_iter().find(|r| {
            r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path.as_str())
        }) else {
            info!(%path, "no Receiver serves this path");
            return Answer::new(StatusCode::NOT_FOUND, "no Receiver serves this path");
        };
        let namespace = receiver.metadata.namespace.clone().unwrap_or_default();
        let name = receiver.metadata.name.clone().unwrap_or_default();
        let id = format!("{namespace}/{name}");
        if receiver.spec.suspend == Some(true) {
            warn!(receiver = %id, "request refused: the Receiver is suspended");
            return Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Receiver {id} is suspended"),
            );
        }
        if !is_ready(&receiver) {
            warn!(receiver = %id, "request refused: the Receiver is not ready");
            return Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("Receiver {id} is not ready"),
            );
        }

        let (parts, body) = request.into_parts();
        let body = match read_body(body).await {
            Ok(body) => body,
            Err(answer) => {
                warn!(receiver = %id, status = answer.status.as_u16(), reason = %answer.message, "request refused");
                return answer;
            }
        };
        let answer = self
            .handle_verified(&receiver, &id, &namespace, &parts.headers, &body)
            .await;
        if answer.status.is_success() {
            info!(receiver = %id, reason = %answer.message, "request handled");
        } else {
            warn!(receiver = %id, status = answer.status.as_u16(), reason = %answer.message, "request refused");
        }
        answer
    }

    async fn handle_verified(
        &self,
        receiver: &Receiver,
        id: &str,
        namespace: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Answer {
        let request = verify::Request { headers, body };
        let mut claims = Map::new();
        let verified = if receiver.spec.r#type == ReceiverType::GenericOidc {
            let providers = receiver.spec.oidc_providers.as_deref().unwrap_or_default();
            match oidc::verify(&self.keys, providers, headers).await {
                Ok(verified_claims) => {
                    claims = verified_claims;
                    Verified::Reconcile {
                        event: claims
                            .get("sub")
                            .and_then(Value::as_str)
                            .map(|s| format!("token of {s}")),
                        payload: None,
                    }
                }
                Err(oidc::OidcFailure::Unauthorized(m)) => {
                    return Answer::new(StatusCode::UNAUTHORIZED, m);
                }
                Err(oidc::OidcFailure::IssuerUnavailable(m)) => {
                    return Answer::new(StatusCode::SERVICE_UNAVAILABLE, m);
                }
                Err(oidc::OidcFailure::Misconfigured(m)) => {
                    return Answer::new(StatusCode::INTERNAL_SERVER_ERROR, m);
                }
            }
        } else {
            let secret = match self.secret(receiver, namespace).await {
                Ok(secret) => secret,
                Err(m) => return Answer::new(StatusCode::INTERNAL_SERVER_ERROR, m),
            };
            let google_keys = match (receiver.spec.r#type, bearer(headers)) {
                (ReceiverType::Gcr, Some(token)) => {
                    match self.keys.keys_for(jwt::GOOGLE_CERTS_URL, token).await {
                        Ok(keys) => Some(keys),
                        Err(e) => {
                            return Answer::new(
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!(
                                    "cannot fetch Google's signing keys to verify the GCR request: {e}"
                                ),
                            );
                        }
                    }
                }
                _ => None,
            };
            let events = receiver.spec.events.as_deref().unwrap_or_default();
            match verify::verify(
                receiver.spec.r#type,
                &request,
                &secret,
                events,
                google_keys.as_ref(),
            ) {
                Ok(verified) => verified,
                Err(rejection) => {
                    let status = match rejection {
                        Rejection::Unauthorized(_) => StatusCode::UNAUTHORIZED,
                        Rejection::Malformed(_) | Rejection::EventNotAccepted(_) => {
                            StatusCode::BAD_REQUEST
                        }
                    };
                    return Answer::new(status, rejection.message());
                }
            }
        };
        let payload = match verified {
            Verified::Ping => return Answer::new(StatusCode::OK, "ping received"),
            Verified::Reconcile { event, payload } => {
                if let Some(event) = event {
                    info!(receiver = %id, %event, "handling event");
                }
                payload
            }
        };
        self.request_reconciliations(receiver, namespace, &request, payload, claims)
            .await
    }

    /// The Receiver's Secret with its `token`.
    async fn secret(&self, receiver: &Receiver, namespace: &str) -> Result<ReceiverSecret, String> {
        let secret_name = receiver
            .spec
            .secret_ref
            .as_ref()
            .map(|r| r.name.clone())
            .ok_or_else(|| "the Receiver has no spec.secretRef".to_string())?;
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get(&secret_name)
            .await
            .map_err(|e| format!("unable to read secret '{namespace}/{secret_name}': {e}"))?;
        let data: std::collections::BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let token = data
            .get("token")
            .map(|t| String::from_utf8_lossy(t).into_owned())
            .ok_or_else(|| {
                format!("invalid '{namespace}/{secret_name}' secret data: required field 'token'")
            })?;
        Ok(ReceiverSecret { token, data })
    }

    async fn request_reconciliations(
        &self,
        receiver: &Receiver,
        namespace: &str,
        request: &verify::Request<'_>,
        payload: Option<Value>,
        claims: Map<String, Value>,
    ) -> Answer {
        // Compile every filter first: a broken one annotates nothing.
        let global = match receiver
            .spec
            .resource_filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(Expression::compile)
            .transpose()
        {
            Ok(global) => global,
            Err(e) => {
                return Answer::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("spec.resourceFilter: {e}"),
                );
            }
        };
        let mut own = Vec::with_capacity(receiver.spec.resources.len());
        for (index, entry) in receiver.spec.resources.iter().enumerate() {
            match entry
                .filter
                .as_deref()
                .filter(|f| !f.trim().is_empty())
                .map(Expression::compile)
                .transpose()
            {
                Ok(filter) => own.push(filter),
                Err(e) => {
                    return Answer::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("spec.resources[{index}].filter: {e}"),
                    );
                }
            }
        }
        let any_filter = global.is_some() || own.iter().any(Option::is_some);
        let mut input = FilterInput::empty();
        input.claims = Value::Object(claims);
        if any_filter {
            input.req = match payload {
                Some(payload) => payload,
                None if request.is_json() => match serde_json::from_slice(request.body) {
                    Ok(value) => value,
                    Err(e) => {
                        return Answer::new(
                            StatusCode::BAD_REQUEST,
                            format!("failed to parse request body as JSON: {e}"),
                        );
                    }
                },
                None => Value::Object(Map::new()),
            };
        }

        let token = resources::request_token(jiff::Timestamp::now());
        let mut annotated = 0usize;
        let mut errors = Vec::new();
        for (entry, own_filter) in receiver.spec.resources.iter().zip(&own) {
            let target = match resources::resolve(entry, namespace, self.no_cross_namespace_refs) {
                Ok(target) => target,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let filters = ResourceFilters {
                filters: global.iter().chain(own_filter.iter()).collect(),
                input: &input,
            };
            match self.annotator.request(&target, &filters, &token).await {
                Ok(report) => {
                    for object in &report.annotated {
                        info!(receiver = %format!("{namespace}/{}", receiver.metadata.name.as_deref().unwrap_or_default()), %object, "reconciliation requested");
                    }
                    annotated += report.annotated.len();
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Answer::new(
                StatusCode::OK,
                format!("reconciliation requested for {annotated} object(s)"),
            )
        } else {
            Answer::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!(
                    "reconciliation requested for {annotated} object(s); failed: {}",
                    errors.join("; ")
                ),
            )
        }
    }
}

/// The request body, up to [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Vec<u8>, Answer> {
    let collected =
        tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY_BYTES).collect())
            .await
            .map_err(|_| {
                Answer::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "the request body took longer than {}s to arrive",
                        BODY_TIMEOUT.as_secs()
                    ),
                )
            })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(Answer::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body exceeds the maximum size of {MAX_BODY_BYTES} bytes"),
        )),
        Err(e) => Err(Answer::new(
            StatusCode::BAD_REQUEST,
            format!("reading the request body failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_the_digest_of_token_name_and_namespace() {
        // sha256("tokenreceiverflux-system")
        let expected = hex::encode(Sha256::digest(b"tokenreceiverflux-system"));
        assert_eq!(
            webhook_path("token", "receiver", "flux-system"),
            format!("/hook/{expected}")
        );
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused() {
        let small = read_body(Body::from(vec![b'x'; 10])).await.ok().unwrap();
        assert_eq!(small.len(), 10);
        let exact = read_body(Body::from(vec![b'x'; MAX_BODY_BYTES]))
            .await
            .ok()
            .unwrap();
        assert_eq!(exact.len(), MAX_BODY_BYTES);
        let over = read_body(Body::from(vec![b'x'; MAX_BODY_BYTES + 1]))
            .await
            .err()
            .unwrap();
        assert_eq!(over.status, StatusCode::PAYLOAD_TOO_LARGE);
    }
}
