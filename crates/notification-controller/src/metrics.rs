//! The servers' metrics, under Flux's names: go-http-metrics'
//! `<prefix>_http_request_duration_seconds`,
//! `<prefix>_http_response_size_bytes` (labels `service`, `handler`,
//! `method`, `code`) and `<prefix>_http_requests_inflight` (`service`,
//! `handler`) for the event server (`gotk_event`; a rate-limited duplicate
//! counts under `code="429"`) and the receiver server (`gotk_receiver`),
//! plus ferroflux's `gotk_event_dispatch_total` of what became of each
//! notification (Flux only logs it).

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use runtime::metrics::Metrics;

/// Labels of the request histograms (go-http-metrics' label set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Always empty (Flux sets no service name).
    pub service: String,
    /// `/`, or the request path with `--export-http-path-metrics`.
    pub handler: String,
    /// The request method.
    pub method: String,
    /// The response status code.
    pub code: String,
}

/// Labels of the in-flight gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InflightLabels {
    /// Always empty.
    pub service: String,
    /// As [`RequestLabels::handler`].
    pub handler: String,
}

/// Labels of `gotk_event_dispatch_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DispatchLabels {
    /// The Alert's name.
    pub name: String,
    /// The Alert's namespace.
    pub namespace: String,
    /// The Provider's type (empty when the Provider could not be read).
    pub provider_type: String,
    /// `sent`, `failed` (the Provider refused or was unreachable after
    /// retries, or its settings are wrong), or `skipped` (not for this
    /// Provider).
    pub result: String,
}

/// What became of one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DispatchResult {
    /// The Provider accepted it.
    Sent,
    /// It could not be delivered.
    Failed,
    /// It was not for this Provider.
    Skipped,
}

impl DispatchResult {
    fn as_str(self) -> &'static str {
        match self {
            DispatchResult::Sent => "sent",
            DispatchResult::Failed => "failed",
            DispatchResult::Skipped => "skipped",
        }
    }
}

/// go-http-metrics' families of one HTTP server:
/// `<prefix>_http_request_duration_seconds`,
/// `<prefix>_http_response_size_bytes` and `<prefix>_http_requests_inflight`.
#[derive(Clone)]
pub struct HttpMetrics {
    duration: Family<RequestLabels, Histogram>,
    size: Family<RequestLabels, Histogram>,
    inflight: Family<InflightLabels, Gauge<i64, AtomicI64>>,
}

impl HttpMetrics {
    /// Registers the families named after `prefix` (`gotk_event`,
    /// `gotk_receiver`) with the process's metrics.
    pub fn register(prefix: &str, metrics: &Metrics) -> Self {
        // Prometheus' default buckets, as go-http-metrics uses.
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        let size = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(100.0, 10.0, 8))
        });
        let inflight = Family::<InflightLabels, Gauge<i64, AtomicI64>>::default();
        metrics.register_shared(
            &format!("{prefix}_http_request_duration_seconds"),
            "The latency of the HTTP requests.",
            duration.clone(),
        );
        metrics.register_shared(
            &format!("{prefix}_http_response_size_bytes"),
            "The size of the HTTP responses.",
            size.clone(),
        );
        metrics.register_shared(
            &format!("{prefix}_http_requests_inflight"),
            "The number of inflight requests being handled at the same time.",
            inflight.clone(),
        );
        Self {
            duration,
            size,
            inflight,
        }
    }

    /// A request on `handler` started; the returned guard ends it.
    pub fn start(&self, handler: &str) -> Inflight {
        let labels = InflightLabels {
            service: String::new(),
            handler: handler.to_string(),
        };
        let gauge = self.inflight.get_or_create(&labels).clone();
        gauge.inc();
        Inflight(gauge)
    }

    /// Records a finished request.
    pub fn record(&self, handler: &str, method: &str, code: u16, seconds: f64, size: usize) {
        let labels = RequestLabels {
            service: String::new(),
            handler: handler.to_string(),
            method: method.to_string(),
            code: code.to_string(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
        self.size.get_or_create(&labels).observe(size as f64);
    }
}

/// The event server's metric families.
#[derive(Clone)]
pub struct EventMetrics {
    /// The requests to the event server (`gotk_event_http_*`).
    pub http: HttpMetrics,
    dispatch: Family<DispatchLabels, Counter>,
}

impl EventMetrics {
    /// Registers the families with the process's metrics.
    pub fn register(metrics: &Metrics) -> Self {
        let dispatch = Family::<DispatchLabels, Counter>::default();
        metrics.register_shared(
            "gotk_event_dispatch",
            "Notifications of events to Providers, by Alert, Provider type and result.",
            dispatch.clone(),
        );
        Self {
            http: HttpMetrics::register("gotk_event", metrics),
            dispatch,
        }
    }

    /// Counts one notification of an event through the Alert
    /// `namespace/name` to a Provider of `provider_type`.
    pub fn dispatched(
        &self,
        namespace: &str,
        name: &str,
        provider_type: &str,
        result: DispatchResult,
    ) {
        self.dispatch
            .get_or_create(&DispatchLabels {
                name: name.to_string(),
                namespace: namespace.to_string(),
                provider_type: provider_type.to_string(),
                result: result.as_str().to_string(),
            })
            .inc();
    }
}

/// A request in flight; counted down when dropped.
pub struct Inflight(Gauge<i64, AtomicI64>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
