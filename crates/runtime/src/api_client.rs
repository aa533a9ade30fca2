//! The controller's Kubernetes client: paced by `--kube-api-qps` and
//! `--kube-api-burst` as client-go paces Flux's controllers (a token bucket:
//! up to `burst` requests at once, then `qps` a second on average), and
//! counted in `rest_client_requests_total{code,host,method}`, the metric
//! controller-runtime exports. As in client-go, a negative
//! `--kube-api-qps` turns pacing off.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::Error;

/// Labels of `rest_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The HTTP status code, or `<error>` when no response came.
    pub code: String,
    /// The API server's host.
    pub host: String,
    /// The HTTP method.
    pub method: String,
}

/// Requests sent, by code, host and method.
pub type RequestCounter = Family<RequestLabels, Counter>;

/// Registers `rest_client_requests_total` in `registry`.
pub fn register_request_counter(registry: &mut Registry) -> RequestCounter {
    let counter = RequestCounter::default();
    registry.register(
        "rest_client_requests",
        "Number of HTTP requests to the Kubernetes API, partitioned by status code, method, and host",
        counter.clone(),
    );
    counter
}

/// Builds the controller's client from `config`, paced and counted.
pub fn build_client(
    config: kube::Config,
    qps: f32,
    burst: u32,
    requests: RequestCounter,
) -> Result<kube::Client, Error> {
    let host = config
        .cluster_url
        .authority()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let layer = PacedLayer {
        bucket: TokenBucket::new(qps, burst).map(|b| Arc::new(Mutex::new(b))),
        requests,
        host,
    };
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|e| Error::Client(e.to_string()))?;
    Ok(builder.with_layer(&layer).build())
}

/// Routes `config`'s API server connection as client-go does: through the
/// kubeconfig's `proxy-url` when its current cluster names one, else by the
/// proxy environment under Go's rules ([`env_proxy`]). kube on its own
/// takes `HTTPS_PROXY` whatever the server's scheme, proxies a loopback
/// API server and checks `NO_PROXY` against the proxy's address rather than
/// the server's, so a controller given `HTTPS_PROXY` for its sources would
/// send its API traffic where Flux's would not.
pub fn route_by_environment(
    config: &mut kube::Config,
    kubeconfig: Option<&kube::config::Kubeconfig>,
) {
    // client-go uses a kubeconfig's proxy-url for every request, whatever
    // NO_PROXY says.
    if let Some(explicit) = kubeconfig.and_then(kubeconfig_proxy) {
        config.proxy_url = explicit.parse::<http::Uri>().ok();
        return;
    }
    let server = env_proxy::Url::parse(&config.cluster_url.to_string()).ok();
    config.proxy_url = server
        .and_then(|server| env_proxy::environment().proxy_for(&server).ok().flatten())
        .and_then(|proxy| proxy.as_str().parse::<http::Uri>().ok());
}

/// The `proxy-url` of the kubeconfig's current context's cluster.
fn kubeconfig_proxy(kubeconfig: &kube::config::Kubeconfig) -> Option<String> {
    let current = kubeconfig.current_context.as_ref()?;
    let cluster = kubeconfig
        .contexts
        .iter()
        .find(|c| &c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.as_str());
    kubeconfig
        .clusters
        .iter()
        .find(|c| Some(c.name.as_str()) == cluster)
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.proxy_url.clone())
        .filter(|url| !url.is_empty())
}

/// client-go's `DefaultQPS`, used when `--kube-api-qps=0`.
const CLIENT_GO_DEFAULT_QPS: f64 = 5.0;
/// client-go's `DefaultBurst`, used when the burst is 0.
const CLIENT_GO_DEFAULT_BURST: f64 = 10.0;

/// A token bucket that hands out delays rather than refusals: a request
/// over the budget reserves the next free slot and waits for it.
#[derive(Debug)]
struct TokenBucket {
    per_second: f64,
    capacity: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// client-go's rules: a negative `qps` turns pacing off (`None`), zero
    /// means its defaults (5 per second, bursts of 10).
    fn new(qps: f32, burst: u32) -> Option<Self> {
        if qps < 0.0 {
            return None;
        }
        let (per_second, burst) = if qps == 0.0 {
            (CLIENT_GO_DEFAULT_QPS, CLIENT_GO_DEFAULT_BURST)
        } else {
            (
                f64::from(qps),
                if burst == 0 {
                    CLIENT_GO_DEFAULT_BURST
                } else {
                    f64::from(burst)
                },
            )
        };
        Some(Self {
            per_second,
            capacity: burst,
            tokens: burst,
            updated: Instant::now(),
        })
    }

    /// How long the next request waits.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.updated = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity) - 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }
}

#[derive(Clone)]
struct PacedLayer {
    bucket: Option<Arc<Mutex<TokenBucket>>>,
    requests: RequestCounter,
    host: String,
}

impl<S> Layer<S> for PacedLayer {
    type Service = Paced<S>;

    fn layer(&self, inner: S) -> Paced<S> {
        Paced {
            inner,
            layer: self.clone(),
        }
    }
}

/// The pacing and counting service around kube's HTTP stack.
#[derive(Clone)]
pub struct Paced<S> {
    inner: S,
    layer: PacedLayer,
}

impl<S, B, R> Service<Request<B>> for Paced<S>
where
    S: Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let delay = self.layer.bucket.as_ref().map_or(Duration::ZERO, |bucket| {
            bucket
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .reserve(Instant::now())
        });
        let method = request.method().to_string();
        // The HTTP stack sends the request when its future is first polled,
        // so waiting before that paces the request itself.
        let response = self.inner.call(request);
        let requests = self.layer.requests.clone();
        let host = self.layer.host.clone();
        Box::pin(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = response.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "<error>".to_string(),
            };
            requests
                .get_or_create(&RequestLabels { code, host, method })
                .inc();
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kubeconfig's `proxy-url` is used as client-go uses it, whatever the
    /// environment; without one, a loopback API server is reached directly
    /// (Go never proxies loopback, whatever this process's environment).
    #[test]
    fn api_server_route_follows_client_go() {
        let kubeconfig = |proxy: &str| {
            kube::config::Kubeconfig::from_yaml(&format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
                 clusters:\n- name: k\n  cluster:\n    server: https://127.0.0.1:6443\n{proxy}\
                 contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n\
                 users:\n- name: u\n  user: {{}}\n"
            ))
            .expect("kubeconfig")
        };
        let mut config = kube::Config::new("https://127.0.0.1:6443".parse().expect("uri"));
        config.proxy_url = Some("http://stale:1".parse().expect("uri"));
        route_by_environment(&mut config, Some(&kubeconfig("")));
        assert_eq!(config.proxy_url, None);
        route_by_environment(
            &mut config,
            Some(&kubeconfig("    proxy-url: http://proxy.example:3128\n")),
        );
        assert_eq!(
            config.proxy_url.map(|u| u.to_string()),
            Some("http://proxy.example:3128/".to_string())
        );
    }

    #[test]
    fn bucket_allows_a_burst_then_paces() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3).expect("paced");
        for _ in 0..3 {
            assert_eq!(bucket.reserve(start), Duration::ZERO);
        }
        // The fourth and fifth wait for the next tokens, a tenth of a second apart.
        let fourth = bucket.reserve(start);
        let fifth = bucket.reserve(start);
        assert!((fourth.as_secs_f64() - 0.1).abs() < 1e-6, "{fourth:?}");
        assert!((fifth.as_secs_f64() - 0.2).abs() < 1e-6, "{fifth:?}");
        // After a quiet second the bucket is full again (never more than the burst).
        let later = start + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(later), Duration::ZERO);
        }
        assert!(bucket.reserve(later) > Duration::ZERO);
    }

    #[test]
    fn negative_rates_turn_pacing_off_and_zero_means_client_go_defaults() {
        assert!(TokenBucket::new(-1.0, 10).is_none());
        let defaults = TokenBucket::new(0.0, 0).expect("paced");
        assert_eq!((defaults.per_second, defaults.capacity), (5.0, 10.0));
        let no_burst = TokenBucket::new(50.0, 0).expect("paced");
        assert_eq!(no_burst.capacity, 10.0);
    }
}
