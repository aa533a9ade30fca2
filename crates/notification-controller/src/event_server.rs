//! The event server on `--events-addr`: what every Flux controller posts
//! its events to.
//!
//! A request is answered at once: `413` for a body over Flux's 3 MiB cap,
//! `400` with the cause for a body that is not an event, `429` for a
//! duplicate within `--rate-limit-interval` (Flux's key: the object, the
//! message, the revisions and token; go-limiter's `X-RateLimit-*` and
//! `Retry-After` headers), `503` when the dispatch queue is full, else
//! `202`. Accepted events are matched and sent in the background
//! ([`crate::dispatch`]), a bounded number at a time, so that a flood of
//! events or a slow Provider never makes the server slow to answer. Every
//! request is counted in `gotk_event_http_request_duration_seconds`.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use api::event::Event;

use crate::dispatch::Dispatcher;
use crate::event_metadata;
use crate::metrics::EventMetrics;
use crate::rate_limit::{RateLimiter, Verdict};

/// The largest request body accepted, as Flux's.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// Events accepted but not yet being dispatched.
pub const QUEUE_CAPACITY: usize = 1024;
/// Events being matched and prepared at once (posting happens in tasks of
/// their own and is not bounded by this).
const CONCURRENT_DISPATCHES: usize = 32;

/// The event server.
pub struct EventServer {
    limiter: RateLimiter,
    dispatcher: Arc<Dispatcher>,
    metrics: EventMetrics,
    export_path_metrics: bool,
}

struct Shared {
    limiter: RateLimiter,
    metrics: EventMetrics,
    export_path_metrics: bool,
    queue: mpsc::Sender<Event>,
}

impl EventServer {
    /// A server limiting duplicates per `rate_limit_interval` and handing
    /// events to `dispatcher`; with `export_path_metrics` the metrics'
    /// `handler` label is the request path.
    pub fn new(
        dispatcher: Arc<Dispatcher>,
        metrics: EventMetrics,
        rate_limit_interval: Duration,
        export_path_metrics: bool,
    ) -> Self {
        Self {
            limiter: RateLimiter::new(rate_limit_interval),
            dispatcher,
            metrics,
            export_path_metrics,
        }
    }

    /// Serves on `listener` until `shutdown`, then stops accepting requests
    /// (events already accepted are still sent while the process lives).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let (queue, events) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(dispatch_queued(events, self.dispatcher));
        let shared = Arc::new(Shared {
            limiter: self.limiter,
            metrics: self.metrics,
            export_path_metrics: self.export_path_metrics,
            queue,
        });
        let router = Router::new().fallback(handle).with_state(shared);
        if let Ok(addr) = listener.local_addr() {
            info!(%addr, "event server listening");
        }
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
    }
}

/// Takes events off the queue, a bounded number being prepared at a time.
async fn dispatch_queued(mut events: mpsc::Receiver<Event>, dispatcher: Arc<Dispatcher>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_DISPATCHES));
    while let Some(event) = events.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let dispatcher = dispatcher.clone();
        tokio::spawn(async move {
            dispatcher.dispatch(event).await;
            drop(slot);
        });
    }
}

/// One request, measured.
async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let handler = if shared.export_path_metrics {
        request.uri().path().to_string()
    } else {
        "/".to_string()
    };
    let method = request.method().to_string();
    let inflight = shared.metrics.http.start(&handler);
    let answer = accept(&shared, request).await;
    drop(inflight);
    shared.metrics.http.record(
        &handler,
        &method,
        answer.status.as_u16(),
        started.elapsed().as_secs_f64(),
        answer.body.len(),
    );
    answer.into_response()
}

/// A response: status, headers and a one-line body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn new(status: StatusCode, body: impl Into<String>) -> Self {
        let mut body = body.into();
        if !body.is_empty() && !body.ends_with('\n') {
            body.push('\n');
        }
        Self {
            status,
            headers: HeaderMap::new(),
            body,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

async fn accept(shared: &Shared, request: Request) -> Answer {
    if request.method() != Method::POST {
        return Answer::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {} is not allowed: events are POSTed",
                request.method()
            ),
        );
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES as u64) {
        return too_large();
    }
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::Read(err)) => {
            warn!(error = %err, "reading the request body failed");
            return Answer::new(
                StatusCode::BAD_REQUEST,
                format!("reading the request body failed: {err}"),
            );
        }
    };
    let mut event: Event = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            warn!(error = %err, "decoding the request body failed");
            return Answer::new(
                StatusCode::BAD_REQUEST,
                format!("decoding the request body failed: {err}"),
            );
        }
    };
    event_metadata::clean(&mut event);
    let key = event_metadata::rate_limit_key(&event);
    let now = Instant::now();
    let verdict = shared.limiter.take(&key, now);
    let (allowed, reset) = match verdict {
        Verdict::Allowed { reset } => (true, reset),
        Verdict::Limited { reset } => (false, reset),
    };
    let reset_text = http_date(SystemTime::now() + reset.saturating_duration_since(now));
    let mut headers = HeaderMap::new();
    headers.insert("X-RateLimit-Limit", HeaderValue::from_static("1"));
    headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
    if let Ok(value) = HeaderValue::from_str(&reset_text) {
        headers.insert("X-RateLimit-Reset", value.clone());
        if !allowed {
            headers.insert(header::RETRY_AFTER, value);
        }
    }
    if !allowed {
        let o = &event.involved_object;
        debug!(
            kind = o.kind.as_deref().unwrap_or_default(),
            name = o.name.as_deref().unwrap_or_default(),
            namespace = o.namespace.as_deref().unwrap_or_default(),
            key = %key,
            "Discarding event, rate limiting duplicate events"
        );
        let mut answer = Answer::new(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        answer.headers = headers;
        return answer;
    }
    match shared.queue.try_send(event) {
        Ok(()) => {
            let mut answer = Answer::new(StatusCode::ACCEPTED, "");
            answer.headers = headers;
            answer
        }
        Err(mpsc::error::TrySendError::Full(_)) => {
            warn!(
                capacity = QUEUE_CAPACITY,
                "event queue full, refusing event"
            );
            let mut answer = Answer::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{QUEUE_CAPACITY} events are waiting to be dispatched; retry later"),
            );
            answer
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            answer
        }
        Err(mpsc::error::TrySendError::Closed(_)) => Answer::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the controller is shutting down",
        ),
    }
}

fn too_large() -> Answer {
    Answer::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the maximum size of {MAX_BODY_BYTES} bytes"),
    )
}

enum BodyError {
    TooLarge,
    Read(String),
}

/// The body, refused as soon as it grows past [`MAX_BODY_BYTES`].
async fn read_body(body: Body) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `time` as go-limiter writes its reset time (Go's RFC 1123, in UTC).
fn http_date(time: SystemTime) -> String {
    k8s_openapi::jiff::Timestamp::try_from(time)
        .map(|t| t.strftime("%a, %d %b %Y %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_time_format() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_378_400);
        assert_eq!(http_date(time), "Fri, 04 Dec 2026 10:00:00 UTC");
    }
}
