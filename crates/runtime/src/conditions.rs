//! Conditions with kstatus semantics, as every Flux object reports them.
//!
//! While a reconciliation is under way an object carries `Reconciling=True`
//! and `Ready=Unknown`; a successful one ends with `Ready=True` and no
//! `Reconciling`; a configuration error that retrying cannot fix ends with
//! `Stalled=True` and `Ready=False`. Negative-polarity conditions
//! (`FetchFailed`, `BuildFailed`, …) are present only while true.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

pub use api::meta::ConditionStatus;
use api::meta::condition_type::{READY, RECONCILING, STALLED};
use api::meta::reason::PROGRESSING_WITH_RETRY;

/// The conditions of one object at one generation, edited in place.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    items: Vec<Condition>,
    generation: Option<i64>,
}

impl Conditions {
    /// Wraps the conditions read from an object's status.
    pub fn new(items: Vec<Condition>, generation: Option<i64>) -> Self {
        Self { items, generation }
    }

    /// The conditions, in the order they were first set.
    pub fn items(&self) -> &[Condition] {
        &self.items
    }

    /// Hands back the conditions for writing into a status.
    pub fn into_items(self) -> Vec<Condition> {
        self.items
    }

    /// The condition of type `type_`, if present.
    pub fn get(&self, type_: &str) -> Option<&Condition> {
        self.items.iter().find(|c| c.type_ == type_)
    }

    /// The status of the condition `type_`, if present.
    pub fn status(&self, type_: &str) -> Option<ConditionStatus> {
        self.get(type_).map(|c| ConditionStatus::of(&c.status))
    }

    /// Whether the condition `type_` is present with status `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.status(type_) == Some(ConditionStatus::True)
    }

    /// Whether the condition `type_` is present with status `False`.
    pub fn is_false(&self, type_: &str) -> bool {
        self.status(type_) == Some(ConditionStatus::False)
    }

    /// Sets a condition. `lastTransitionTime` moves only when the status changes,
    /// so re-asserting the same state causes no churn.
    pub fn set(
        &mut self,
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let status = status.as_str();
        let reason = if reason.is_empty() { status } else { reason };
        if let Some(existing) = self.items.iter_mut().find(|c| c.type_ == type_) {
            if existing.status != status {
                existing.last_transition_time = now();
            }
            existing.status = status.to_string();
            existing.reason = reason.to_string();
            existing.message = message;
            existing.observed_generation = self.generation;
        } else {
            self.items.push(Condition {
                type_: type_.to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message,
                observed_generation: self.generation,
                last_transition_time: now(),
            });
        }
    }

    /// Sets `type_=True`.
    pub fn mark_true(&mut self, type_: &str, reason: &str, message: impl Into<String>) {
        self.set(type_, ConditionStatus::True, reason, message);
    }

    /// Sets `type_=False`.
    pub fn mark_false(&mut self, type_: &str, reason: &str, message: impl Into<String>) {
        self.set(type_, ConditionStatus::False, reason, message);
    }

    /// Sets `type_=Unknown`.
    pub fn mark_unknown(&mut self, type_: &str, reason: &str, message: impl Into<String>) {
        self.set(type_, ConditionStatus::Unknown, reason, message);
    }

    /// Removes the condition `type_`.
    pub fn delete(&mut self, type_: &str) {
        self.items.retain(|c| c.type_ != type_);
    }

    /// Marks the start of a reconciliation: `Reconciling=True`, `Ready=Unknown`,
    /// and no `Stalled` (a new attempt is being made).
    pub fn mark_reconciling(&mut self, reason: &str, message: impl Into<String>) {
        let message = message.into();
        self.delete(STALLED);
        self.mark_true(RECONCILING, reason, message.clone());
        self.mark_unknown(READY, reason, message);
    }

    /// Marks a successful reconciliation: `Ready=True`, no `Reconciling` or `Stalled`.
    pub fn mark_ready(&mut self, reason: &str, message: impl Into<String>) {
        self.delete(RECONCILING);
        self.delete(STALLED);
        self.mark_true(READY, reason, message);
    }

    /// Marks a failure that will be retried: `Ready=False` and
    /// `Reconciling=True` with reason `ProgressingWithRetry`.
    pub fn mark_failed_retrying(&mut self, reason: &str, message: impl Into<String>) {
        let message = message.into();
        self.delete(STALLED);
        self.mark_true(RECONCILING, PROGRESSING_WITH_RETRY, message.clone());
        self.mark_false(READY, reason, message);
    }

    /// Marks a failure that retrying cannot fix: `Stalled=True`, `Ready=False`,
    /// no `Reconciling`.
    pub fn mark_stalled(&mut self, reason: &str, message: impl Into<String>) {
        let message = message.into();
        self.delete(RECONCILING);
        self.mark_true(STALLED, reason, message.clone());
        self.mark_false(READY, reason, message);
    }

    /// Whether the object reached a terminal state for its generation (Ready or
    /// Stalled), which is when kstatus wants `observedGeneration` updated.
    pub fn is_settled(&self) -> bool {
        !self.is_true(RECONCILING)
            && (self
                .status(READY)
                .is_some_and(|s| s != ConditionStatus::Unknown)
                || self.is_true(STALLED))
    }
}

/// Whether two condition lists say the same thing, ignoring transition times.
pub fn same_state(a: &[Condition], b: &[Condition]) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| {
            b.iter().any(|y| {
                x.type_ == y.type_
                    && x.status == y.status
                    && x.reason == y.reason
                    && x.message == y.message
                    && x.observed_generation == y.observed_generation
            })
        })
}

fn now() -> Time {
    // The API server stores whole seconds; rounding keeps re-reads equal.
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::meta::reason::{FAILED, PROGRESSING, SUCCEEDED};

    const TRUE: &str = "True";
    const FALSE: &str = "False";
    const UNKNOWN: &str = "Unknown";

    #[test]
    fn reconciling_then_ready() {
        let mut c = Conditions::new(vec![], Some(3));
        c.mark_reconciling(PROGRESSING, "building artifact");
        assert!(c.is_true(RECONCILING));
        assert_eq!(c.get(READY).map(|r| r.status.as_str()), Some(UNKNOWN));
        assert!(!c.is_settled());

        c.mark_ready(SUCCEEDED, "stored artifact for revision 'main@sha1:abc'");
        assert!(c.get(RECONCILING).is_none());
        assert!(c.is_true(READY));
        assert_eq!(c.get(READY).and_then(|r| r.observed_generation), Some(3));
        assert!(c.is_settled());
    }

    #[test]
    fn stalled_clears_reconciling_and_sets_ready_false() {
        let mut c = Conditions::new(vec![], Some(1));
        c.mark_reconciling(PROGRESSING, "x");
        c.mark_stalled("URLInvalid", "bad url");
        assert!(c.get(RECONCILING).is_none());
        assert!(c.is_true(STALLED));
        let ready = c.get(READY).expect("Ready is set");
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            (FALSE, "URLInvalid")
        );
        assert!(c.is_settled());
    }

    #[test]
    fn failure_with_retry_keeps_reconciling() {
        let mut c = Conditions::new(vec![], Some(1));
        c.mark_failed_retrying("GitOperationFailed", "connection refused");
        assert_eq!(
            c.get(RECONCILING).map(|r| r.reason.as_str()),
            Some(PROGRESSING_WITH_RETRY)
        );
        assert!(c.is_false(READY));
        assert!(!c.is_settled());
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let old = Time(Timestamp::UNIX_EPOCH);
        let mut c = Conditions::new(
            vec![Condition {
                type_: READY.into(),
                status: TRUE.into(),
                reason: SUCCEEDED.into(),
                message: "a".into(),
                observed_generation: Some(1),
                last_transition_time: old.clone(),
            }],
            Some(2),
        );
        c.mark_true(READY, SUCCEEDED, "b");
        assert_eq!(
            c.get(READY).map(|r| r.last_transition_time.clone()),
            Some(old.clone())
        );
        c.mark_false(READY, FAILED, "c");
        assert_ne!(
            c.get(READY).map(|r| r.last_transition_time.clone()),
            Some(old)
        );
    }

    #[test]
    fn same_state_ignores_times() {
        let mut a = Conditions::new(vec![], Some(1));
        a.mark_ready(SUCCEEDED, "ok");
        let mut b = a.clone().into_items();
        b[0].last_transition_time = Time(Timestamp::UNIX_EPOCH);
        assert!(same_state(a.items(), &b));
        b[0].message = "changed".into();
        assert!(!same_state(a.items(), &b));
    }
}
