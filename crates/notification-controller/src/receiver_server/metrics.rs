//! The receiver server's metrics, under Flux's names (go-http-metrics with
//! the `gotk_receiver` prefix): `gotk_receiver_http_request_duration_seconds`,
//! `gotk_receiver_http_response_size_bytes` (labels `service`, `handler`,
//! `method`, `code`) and `gotk_receiver_http_requests_inflight` (`service`,
//! `handler`). `handler` is `/hook/`, as Flux labels it without
//! `--export-http-path-metrics`.

use std::sync::atomic::AtomicI64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use runtime::metrics::Metrics;

/// The `handler` label of every receiver request.
pub(crate) const HANDLER: &str = "/hook/";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    service: String,
    handler: String,
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct InflightLabels {
    service: String,
    handler: String,
}

/// The receiver server's metric families.
#[derive(Clone)]
pub(crate) struct ReceiverMetrics {
    duration: Family<RequestLabels, Histogram>,
    size: Family<RequestLabels, Histogram>,
    inflight: Family<InflightLabels, Gauge<i64, AtomicI64>>,
}

impl ReceiverMetrics {
    /// Registers the families with the process's shared metrics.
    pub(crate) fn register(metrics: &Metrics) -> Self {
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
            "gotk_receiver_http_request_duration_seconds",
            "The latency of the HTTP requests.",
            duration.clone(),
        );
        metrics.register_shared(
            "gotk_receiver_http_response_size_bytes",
            "The size of the HTTP responses.",
            size.clone(),
        );
        metrics.register_shared(
            "gotk_receiver_http_requests_inflight",
            "The number of inflight requests being handled at the same time.",
            inflight.clone(),
        );
        Self {
            duration,
            size,
            inflight,
        }
    }

    /// A request started; the guard counts it down when dropped.
    pub(crate) fn start(&self) -> Inflight {
        let gauge = self
            .inflight
            .get_or_create(&InflightLabels {
                service: String::new(),
                handler: HANDLER.to_string(),
            })
            .clone();
        gauge.inc();
        Inflight(gauge)
    }

    /// Records a finished request.
    pub(crate) fn record(&self, method: &str, code: u16, seconds: f64, size: usize) {
        let labels = RequestLabels {
            service: String::new(),
            handler: HANDLER.to_string(),
            method: method.to_string(),
            code: code.to_string(),
        };
        self.duration.get_or_create(&labels).observe(seconds);
        self.size.get_or_create(&labels).observe(size as f64);
    }
}

/// A request in flight.
pub(crate) struct Inflight(Gauge<i64, AtomicI64>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
