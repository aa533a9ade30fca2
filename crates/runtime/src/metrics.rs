//! Prometheus metrics, named as Flux names them so existing dashboards work:
//! `gotk_reconcile_duration_seconds{kind,name,namespace}` plus a
//! controller-runtime style `controller_runtime_reconcile_total{controller,result}`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::registry::{Metric, Registry};

/// Labels of `gotk_reconcile_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The object's namespace.
    pub namespace: String,
}

/// Labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// The controller (lower-case kind).
    pub controller: String,
    /// `success`, `error` or `requeue`.
    pub result: String,
}

/// One controller process's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    /// Metrics registered after the process's metrics are shared (by a
    /// server built once the manager runs), rendered after the others.
    late: Mutex<Registry>,
    reconcile_duration: Family<ObjectLabels, Histogram>,
    reconcile_total: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers the metrics in a fresh registry.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Flux's buckets: ExponentialBucketsRange(0.01, 1800, 10).
        let reconcile_duration = Family::<ObjectLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets_range(0.01, 1800.0, 10))
        });
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation",
            reconcile_duration.clone(),
        );
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        Self {
            registry,
            late: Mutex::default(),
            reconcile_duration,
            reconcile_total,
        }
    }

    /// Records one reconciliation of an object and its outcome.
    pub fn record_reconcile(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        took: Duration,
        result: ReconcileResult,
    ) {
        self.reconcile_duration
            .get_or_create(&ObjectLabels {
                kind: kind.to_string(),
                name: name.to_string(),
                namespace: namespace.to_string(),
            })
            .observe(took.as_secs_f64());
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: kind.to_lowercase(),
                result: result.as_str().to_string(),
            })
            .inc();
    }

    /// The registry, for adding controller-specific metrics at start-up.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Renders every metric in the Prometheus text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        encode_registry(&mut out, &self.registry)?;
        encode_registry(
            &mut out,
            &self.late.lock().unwrap_or_else(PoisonError::into_inner),
        )?;
        encode_eof(&mut out)?;
        Ok(out)
    }

    /// Registers `metric` once the metrics are shared (an `Arc` the
    /// manager and the admin endpoint hold), for components built after
    /// the manager, such as notification-controller's receiver server.
    pub fn register_shared(&self, name: &str, help: &str, metric: impl Metric) {
        self.late
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .register(name, help, metric);
    }
}

/// The outcome of one reconciliation, as counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    /// Finished, ready or stalled.
    Success,
    /// Failed and will be retried.
    Error,
    /// Waiting on something else (a dependency, a source).
    Requeue,
}

impl ReconcileResult {
    fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::Requeue => "requeue",
        }
    }
}

/// Shared handle used by reconcilers and the metrics endpoint.
pub type SharedMetrics = Arc<Metrics>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_flux_metric_names() {
        let metrics = Metrics::new();
        metrics.record_reconcile(
            "GitRepository",
            "default",
            "podinfo",
            Duration::from_millis(120),
            ReconcileResult::Success,
        );
        let text = metrics.encode().unwrap_or_default();
        assert!(text.contains(r#"gotk_reconcile_duration_seconds_count{kind="GitRepository",name="podinfo",namespace="default"} 1"#), "{text}");
        assert!(text.contains(r#"controller_runtime_reconcile_total{controller="gitrepository",result="success"} 1"#), "{text}");
        // Flux's 10 exponential buckets from 10ms to 30m.
        assert!(text.contains(r#"le="0.01""#), "{text}");
        assert_eq!(
            text.matches("gotk_reconcile_duration_seconds_bucket")
                .count(),
            11,
            "{text}"
        );
    }

    #[test]
    fn metrics_registered_once_shared_are_rendered_before_eof() {
        let metrics = Arc::new(Metrics::new());
        let requests = Counter::<u64>::default();
        metrics.register_shared("late_requests", "Requests", requests.clone());
        requests.inc();
        let text = metrics.encode().unwrap_or_default();
        assert!(text.contains("late_requests_total 1\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
    }
}
