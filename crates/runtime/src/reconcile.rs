//! The one failure model of every reconciler, and what the harness does
//! with it.
//!
//! A failed reconciliation is a [`Failure`]: Flux's reason, the
//! negative-polarity condition it sets (if any) and a [`Disposition`] that
//! says what happens next. Retryable errors go back to the harness, which
//! retries them with the per-object [`RetryPolicy`] (Flux's
//! `--min-retry-delay`/`--max-retry-delay`); an object waiting for another
//! one comes back after `--requeue-dependency`; a stalled one waits for its
//! spec to change.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use kube::Resource;

/// What happens after a failed reconciliation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Retry with the per-object exponential backoff.
    Retry,
    /// Another object is not ready yet: come back after `--requeue-dependency`.
    WaitForDependency,
    /// Retrying cannot help until the spec changes: `Stalled=True`, no requeue.
    Stall,
}

/// How a failed reconciliation shows in an object's conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The negative-polarity condition set to True (`FetchFailed`, ...), if any.
    pub condition: Option<&'static str>,
    /// The reason on that condition and on `Ready=False`.
    pub reason: &'static str,
    /// What happens next.
    pub disposition: Disposition,
}

impl Failure {
    /// A failure retried with backoff.
    pub const fn retry(reason: &'static str) -> Self {
        Self {
            condition: None,
            reason,
            disposition: Disposition::Retry,
        }
    }

    /// A failure waiting for another object.
    pub const fn wait(reason: &'static str) -> Self {
        Self {
            condition: None,
            reason,
            disposition: Disposition::WaitForDependency,
        }
    }

    /// A failure retrying cannot fix.
    pub const fn stall(reason: &'static str) -> Self {
        Self {
            condition: None,
            reason,
            disposition: Disposition::Stall,
        }
    }

    /// The same failure, also setting `condition` to True.
    pub const fn on(self, condition: &'static str) -> Self {
        Self {
            condition: Some(condition),
            ..self
        }
    }

    /// Whether retrying cannot help.
    pub fn is_stalled(&self) -> bool {
        self.disposition == Disposition::Stall
    }

    /// Whether the object waits for another one.
    pub fn is_waiting(&self) -> bool {
        self.disposition == Disposition::WaitForDependency
    }
}

/// An error a reconciler returns to the harness: the harness needs to know
/// only whether it waits for another object or is retried with backoff.
pub trait ReconcileError: std::error::Error + Send + Sync + 'static {
    /// What the harness does next.
    fn disposition(&self) -> Disposition;
}

/// The error of a controller whose reconciliations end in the object's
/// status: what comes back to the harness is a failure that did not reach
/// a status (API calls, status writes, the finalizer, local storage), a
/// start-up error, or [`ControllerError::Halted`], an attempt that failed
/// as its status already says and is retried or waits.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// A Kubernetes API call failed.
    #[error("kubernetes API request failed: {0}")]
    Kube(#[from] kube::Error),
    /// Shared runtime failure (status patching, listeners, leader election).
    #[error(transparent)]
    Runtime(#[from] crate::Error),
    /// Local storage trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A command-line flag cannot be used.
    #[error("invalid flag: {0}")]
    Flag(String),
    /// The attempt failed as its status says; retried, waiting or stalled.
    #[error("{message}")]
    Halted {
        /// What the harness does next.
        disposition: Disposition,
        /// The `Ready` message.
        message: String,
    },
}

impl ControllerError {
    /// An I/O error while doing `context`.
    pub fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ControllerError {
        let context = context.into();
        move |source| ControllerError::Io { context, source }
    }
}

impl ReconcileError for ControllerError {
    fn disposition(&self) -> Disposition {
        match self {
            ControllerError::Halted { disposition, .. } => *disposition,
            _ => Disposition::Retry,
        }
    }
}

/// Flux's per-object retry backoff: the delay doubles with each consecutive
/// failure of an object, from `min` up to `max`, and starts over after a
/// success.
#[derive(Debug)]
pub struct RetryPolicy {
    min: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl RetryPolicy {
    /// A policy between `min` and `max` (`--min-retry-delay`, `--max-retry-delay`).
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max: max.max(min),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The delay before retrying `key` after one more failure.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        let factor = 1u32 << (*count - 1).min(20);
        self.min.saturating_mul(factor).min(self.max)
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

/// `Kind/namespace/name`: an object's key in logs and the retry table.
pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    let meta = obj.meta();
    format!(
        "{}/{}/{}",
        K::kind(&()),
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// Which changes of an object call for a reconciliation: a new generation,
/// a new token in `reconcile.fluxcd.io/requestedAt` (or in the kind's own
/// request annotations, such as a HelmRelease's `forceAt`), and the start of
/// its deletion. Never the controller's own status writes, nor the
/// finalizer it adds while reconciling.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReconcileTrigger {
    annotations: &'static [&'static str],
}

impl ReconcileTrigger {
    /// Also reconcile on a new token in any of `annotations`.
    pub const fn with_annotations(annotations: &'static [&'static str]) -> Self {
        Self { annotations }
    }

    /// A value that changes exactly when a reconciliation is called for
    /// (a watch predicate).
    pub fn fingerprint<K: Resource>(&self, obj: &K) -> Option<u64> {
        let meta = obj.meta();
        let mut hasher = DefaultHasher::new();
        meta.generation.hash(&mut hasher);
        crate::reconcile_request::requested_at(meta).hash(&mut hasher);
        for key in self.annotations {
            meta.annotations
                .as_ref()
                .and_then(|a| a.get(*key))
                .hash(&mut hasher);
        }
        meta.deletion_timestamp.is_some().hash(&mut hasher);
        Some(hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn retry_delays_double_to_the_maximum_and_reset() {
        let policy = RetryPolicy::new(Duration::from_millis(750), Duration::from_secs(5));
        let delays: Vec<u128> = (0..5).map(|_| policy.next_delay("a").as_millis()).collect();
        assert_eq!(delays, [750, 1500, 3000, 5000, 5000]);
        // Objects back off independently.
        assert_eq!(policy.next_delay("b"), Duration::from_millis(750));
        policy.reset("a");
        assert_eq!(policy.next_delay("a"), Duration::from_millis(750));
        // Many failures never overflow.
        for _ in 0..100 {
            policy.next_delay("c");
        }
        assert_eq!(policy.next_delay("c"), Duration::from_secs(5));
    }

    fn object() -> ConfigMap {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("a".into());
        cm.metadata.generation = Some(1);
        cm
    }

    #[test]
    fn trigger_sees_generation_requests_and_deletion_only() {
        const FORCE: &str = "reconcile.fluxcd.io/forceAt";
        let trigger = ReconcileTrigger::with_annotations(&[FORCE]);
        let base = object();
        let print = |cm: &ConfigMap| trigger.fingerprint(cm);

        let mut data = base.clone();
        data.data = Some([("k".to_string(), "v".to_string())].into());
        assert_eq!(print(&base), print(&data), "not a spec change");
        let mut finalized = base.clone();
        finalized.metadata.finalizers = Some(vec!["finalizers.fluxcd.io".into()]);
        assert_eq!(
            print(&base),
            print(&finalized),
            "the controller's own finalizer"
        );
        let mut other = base.clone();
        other.metadata.annotations = Some([("x".to_string(), "1".to_string())].into());
        assert_eq!(print(&base), print(&other), "an unrelated annotation");

        let mut newer = base.clone();
        newer.metadata.generation = Some(2);
        assert_ne!(print(&base), print(&newer));
        for key in [crate::reconcile_request::REQUESTED_AT, FORCE] {
            let mut requested = base.clone();
            requested.metadata.annotations = Some([(key.to_string(), "t".to_string())].into());
            assert_ne!(print(&base), print(&requested), "{key}");
        }
        let mut deleting = base.clone();
        deleting.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_ne!(print(&base), print(&deleting));
        // The kind's own annotations matter only where declared.
        let mut forced = base.clone();
        forced.metadata.annotations = Some([(FORCE.to_string(), "t".to_string())].into());
        assert_eq!(
            ReconcileTrigger::default().fingerprint(&base),
            ReconcileTrigger::default().fingerprint(&forced)
        );
    }
}
