//! A loopback HTTP(S) server standing in for a service these machines cannot
//! reach (Slack, GitHub's API, PagerDuty, ...): it records every request
//! (method, path and query, headers, body, arrival time) so that a test can
//! check each one against the real service's format, and answers as the
//! test says (a fixed status, queued answers, or a function of the request).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};

/// The largest request body recorded whole.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as sent (percent-encoding kept).
    pub uri: String,
    /// Header names in lower case; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    /// The body as received.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
}

impl Recorded {
    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }

    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// Whether this is a `method` request to `uri` (path and query).
    pub fn is(&self, method: &str, uri: &str) -> bool {
        self.method == method && self.uri == uri
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// What the server answers.
#[derive(Clone, Debug)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
    /// Headers beside the body.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// `status` with `body` as plain text.
    pub fn text(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: Vec::new(),
        }
    }

    /// `status` with `body` as `application/json`.
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            headers: vec![("content-type".to_string(), "application/json".to_string())],
        }
    }

    /// The same answer with header `name: value` too.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

type Respond = Box<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Recording {
    requests: Mutex<Vec<Recorded>>,
    /// Answers for the next requests, in order, before any other.
    queued: Mutex<VecDeque<Reply>>,
    /// The answer to everything else, when `respond` is not set.
    default: Mutex<Reply>,
    respond: Option<Respond>,
}

/// The recording server; it stops when dropped.
pub struct HttpRecorder {
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    recording: Arc<Recording>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for HttpRecorder {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl HttpRecorder {
    /// A server answering 200 `ok`.
    pub async fn start() -> Result<Self> {
        Self::start_replying(200, "ok").await
    }

    /// A server answering `status` and `body` (text).
    pub async fn start_replying(status: u16, body: &str) -> Result<Self> {
        let recorder = Self::serve(None, None).await?;
        *lock(&recorder.recording.default) = Reply::text(status, body);
        Ok(recorder)
    }

    /// A server answering each request with what `respond` makes of it.
    pub async fn start_with(
        respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> Result<Self> {
        Self::serve(None, Some(Box::new(respond))).await
    }

    /// An HTTPS server with `tls` (its certificate, and client
    /// certificates if it asks for them), answering 200 `ok`; a client that
    /// fails the handshake is dropped and not recorded.
    pub async fn start_tls(tls: rustls::ServerConfig) -> Result<Self> {
        Self::serve(Some(tokio_rustls::TlsAcceptor::from(Arc::new(tls))), None).await
    }

    async fn serve(
        tls: Option<tokio_rustls::TlsAcceptor>,
        respond: Option<Respond>,
    ) -> Result<Self> {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port for the recorder")?;
        let addr = tcp.local_addr()?;
        let recording = Arc::new(Recording {
            requests: Mutex::new(Vec::new()),
            queued: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::text(200, "ok")),
            respond,
        });
        let router = axum::Router::new()
            .fallback(record)
            .with_state(recording.clone());
        let (scheme, server) = match tls {
            None => (
                "http",
                tokio::spawn(async move {
                    let _ = axum::serve(tcp, router).await;
                }),
            ),
            Some(acceptor) => (
                "https",
                tokio::spawn(async move {
                    let _ = axum::serve(TlsListener { tcp, acceptor }, router).await;
                }),
            ),
        };
        Ok(Self {
            url: format!("{scheme}://{addr}"),
            addr,
            recording,
            server,
        })
    }

    /// Answers every later request with `status` (the body unchanged).
    pub fn set_status(&self, status: u16) {
        lock(&self.recording.default).status = status;
    }

    /// The next request gets `status` and `body` (text); later ones what
    /// they would have got.
    pub fn reply_next(&self, status: u16, body: &str) {
        lock(&self.recording.queued).push_back(Reply::text(status, body));
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.recording.requests).clone()
    }

    /// The one request received; an error when there are none or more.
    pub fn only_request(&self) -> Result<Recorded> {
        match <[Recorded; 1]>::try_from(self.requests()) {
            Ok([request]) => Ok(request),
            Err(requests) => anyhow::bail!("expected one request, got {requests:#?}"),
        }
    }

    /// The requests whose body contains `text`.
    pub fn containing(&self, text: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.text().contains(text))
            .collect()
    }

    /// Waits up to `timeout` for a request passing `check`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        check: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.requests().into_iter().find(|r| check(r)) {
                return Some(found);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A test's lock: a panicking test thread leaves the data as it was.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn record(State(recording): State<Arc<Recording>>, request: Request) -> Response {
    let method = request.method().to_string();
    let uri = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_default();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    let recorded = Recorded {
        method,
        uri,
        headers,
        body,
        at: Instant::now(),
    };
    lock(&recording.requests).push(recorded.clone());
    let queued = lock(&recording.queued).pop_front();
    let reply = match (queued, &recording.respond) {
        (Some(reply), _) => reply,
        (None, Some(respond)) => respond(&recorded),
        (None, None) => lock(&recording.default).clone(),
    };
    let status = axum::http::StatusCode::from_u16(reply.status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, reply.body).into_response();
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// axum served over rustls: each accepted connection's handshake first.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that does not trust the CA fails its handshake: next one.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
