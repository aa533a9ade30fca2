//! The event server's metrics, under Flux's names: go-http-metrics'
//! `gotk_event_http_request_duration_seconds`,
//! `gotk_event_http_response_size_bytes` and
//! `gotk_event_http_requests_inflight` (labels `service`, `handler`,
//! `method`, `code`; a rate-limited duplicate counts under `code="429"`),
//! plus ferroflux's `gotk_event_dispatch_total` of what became of each
//! notification (Flux only logs it).

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

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

/// The event server's metric families.
#[derive(Clone)]
pub struct EventMetrics {
    duration: Family<RequestLabels, Histogram>,
    size: Family<RequestLabels, Histogram>,
    inflight: Family<InflightLabels, Gauge<i64, AtomicI64>>,
    dispatch: Family<DispatchLabels, Counter>,
}

impl EventMetrics {
    /// Registers the families in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
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
        let dispatch = Family::<DispatchLabels, Counter>::default();
        registry.register(
            "gotk_event_http_request_duration_seconds",
            "The latency of the HTTP requests.",
            duration.clone(),
        );
        registry.register(
            "gotk_event_http_response_size_bytes",
            "The size of the HTTP responses.",
            size.clone(),
        );
        registry.register(
            "gotk_event_http_requests_inflight",
            "The number of inflight requests being handled at the same time.",
            inflight.clone(),
        );
        registry.register(
            "gotk_event_dispatch",
            "Notifications of events to Providers, by Alert, Provider type and result.",
            dispatch.clone(),
        );
        Self {
            duration,
            size,
            inflight,
            dispatch,
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
