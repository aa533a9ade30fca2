//! kstatus: the readiness of an object from its status alone.
//!
//! Pure functions over the object's JSON, following the kstatus rules
//! (sigs.k8s.io/cli-utils) that Flux's health checks use: generic rules first
//! (deletion, observedGeneration, `Reconciling`/`Stalled` conditions), then a
//! rule per built-in kind, then the `Ready` condition for everything else.

use std::fmt;

use jiff::Timestamp;
use serde_json::Value;

use crate::ssa::object::str_at;

/// How long a Pod may be unschedulable before it counts as failed.
const SCHEDULE_WINDOW_SECONDS: i64 = 15;

/// The kstatus status of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Still being reconciled or rolled out.
    InProgress,
    /// Reconciliation failed; waiting longer will not help.
    Failed,
    /// Fully reconciled and ready.
    Current,
    /// Being deleted.
    Terminating,
    /// Does not exist.
    NotFound,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InProgress => "InProgress",
            Self::Failed => "Failed",
            Self::Current => "Current",
            Self::Terminating => "Terminating",
            Self::NotFound => "NotFound",
        })
    }
}

/// A status with the reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The status.
    pub status: Status,
    /// Why, in words (e.g. `Available: 0/1`).
    pub message: String,
}

impl Health {
    fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub(crate) fn in_progress(message: impl Into<String>) -> Self {
        Self::new(Status::InProgress, message)
    }

    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(Status::Failed, message)
    }

    pub(crate) fn current(message: impl Into<String>) -> Self {
        Self::new(Status::Current, message)
    }

    /// The status of an object that does not exist.
    pub fn not_found() -> Self {
        Self::new(Status::NotFound, "Resource not found")
    }
}

/// The status of `object` (live JSON, with `apiVersion` and `kind`), judged at
/// time `now` (only Pods scheduling depends on it).
pub fn compute(object: &Value, now: Timestamp) -> Health {
    if let Some(health) = generic(object) {
        return health;
    }
    let group = str_at(object, &["apiVersion"])
        .and_then(|v| v.rsplit_once('/').map(|(group, _)| group))
        .unwrap_or("");
    let kind = str_at(object, &["kind"]).unwrap_or("");
    match (group, kind) {
        ("apps", "Deployment") => deployment(object),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object),
        ("policy", "PodDisruptionBudget") => pod_disruption_budget(object),
        ("batch", "Job") => job(object),
        ("", "Pod") => pod(object, now),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(object),
        ("", "Service") => service(object),
        ("", "Namespace") => namespace(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        _ => ready_condition(object),
    }
}

/// Deletion, observedGeneration and the kstatus conditions, which decide for
/// every kind.
fn generic(object: &Value) -> Option<Health> {
    if str_at(object, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_empty()) {
        return Some(Health::new(
            Status::Terminating,
            "Resource scheduled for deletion",
        ));
    }
    if let (Some(generation), Some(observed)) = (
        int_at(object, &["metadata", "generation"]),
        int_at(object, &["status", "observedGeneration"]),
    ) && generation != observed
    {
        let kind = str_at(object, &["kind"]).unwrap_or("Resource");
        return Some(Health::in_progress(format!(
            "{kind} generation is {generation}, but latest observed generation is {observed}"
        )));
    }
    for condition in conditions(object) {
        if condition.is("Reconciling", "True") {
            return Some(Health::in_progress(condition.describe("Reconciling")));
        }
        if condition.is("Stalled", "True") {
            return Some(Health::failed(condition.describe("Stalled")));
        }
    }
    None
}

/// An integer field; kstatus accepts floats with an integral value too.
fn int_at(object: &Value, path: &[&str]) -> Option<i64> {
    let value = path.iter().try_fold(object, |value, key| value.get(key))?;
    value.as_i64().or_else(|| {
        value
            .as_f64()
            .filter(|f| f.fract() == 0.0)
            .map(|f| f as i64)
    })
}

fn int_or(object: &Value, path: &[&str], default: i64) -> i64 {
    int_at(object, path).unwrap_or(default)
}

/// One entry of `.status.conditions`.
struct ConditionView<'a> {
    type_: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl ConditionView<'_> {
    fn is(&self, type_: &str, status: &str) -> bool {
        self.type_ == type_ && self.status == status
    }

    /// The condition's message, else its reason, else `fallback`.
    fn describe(&self, fallback: &str) -> String {
        [self.message, self.reason]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(fallback)
            .to_string()
    }
}

fn conditions(object: &Value) -> impl Iterator<Item = ConditionView<'_>> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| ConditionView {
            type_: str_at(c, &["type"]).unwrap_or(""),
            status: str_at(c, &["status"]).unwrap_or(""),
            reason: str_at(c, &["reason"]).unwrap_or(""),
            message: str_at(c, &["message"]).unwrap_or(""),
        })
}

/// The workload controllers write `observedGeneration` once they have seen
/// the object; before that its status says nothing about the current spec.
fn unobserved(object: &Value) -> Option<Health> {
    if int_at(object, &["status", "observedGeneration"]).is_none() {
        let kind = str_at(object, &["kind"]).unwrap_or("Resource");
        return Some(Health::in_progress(format!(
            "{kind} generation has not been observed by its controller yet"
        )));
    }
    None
}

fn deployment(object: &Value) -> Health {
    if let Some(health) = unobserved(object) {
        return health;
    }
    let mut progressing = false;
    let mut available = false;
    for condition in conditions(object) {
        match condition.type_ {
            "Progressing" => {
                if condition.reason == "ProgressDeadlineExceeded" {
                    return Health::failed("Progress deadline exceeded");
                }
                if condition.status == "True" && condition.reason == "NewReplicaSetAvailable" {
                    progressing = true;
                }
            }
            "Available" => available |= condition.status == "True",
            _ => {}
        }
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let replicas = int_or(object, &["status", "replicas"], 0);
    let updated = int_or(object, &["status", "updatedReplicas"], 0);
    let ready = int_or(object, &["status", "readyReplicas"], 0);
    let available_replicas = int_or(object, &["status", "availableReplicas"], 0);
    if spec > replicas {
        return Health::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return Health::in_progress(format!("Updated: {updated}/{spec}"));
    }
    if replicas > spec {
        return Health::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    if updated > available_replicas {
        return Health::in_progress(format!("Available: {available_replicas}/{updated}"));
    }
    if spec > ready {
        return Health::in_progress(format!("Ready: {ready}/{spec}"));
    }
    if !progressing {
        return Health::in_progress("ReplicaSet not Available");
    }
    if !available {
        return Health::in_progress("Deployment not Available");
    }
    Health::current(format!("Deployment is available. Replicas: {replicas}"))
}

fn stateful_set(object: &Value) -> Health {
    if let Some(health) = unobserved(object) {
        return health;
    }
    if str_at(object, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return Health::current("StatefulSet is using the OnDelete update strategy");
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let ready = int_or(object, &["status", "readyReplicas"], 0);
    let current = int_or(object, &["status", "currentReplicas"], 0);
    let updated = int_or(object, &["status", "updatedReplicas"], 0);
    let replicas = int_or(object, &["status", "replicas"], 0);
    if spec > replicas {
        return Health::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return Health::in_progress(format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return Health::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    if let Some(partition) = int_at(
        object,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    ) {
        let wanted = (spec - partition).max(0);
        if updated < wanted {
            return Health::in_progress(format!("updated: {updated}/{wanted}"));
        }
        return Health::current(format!("Partition rollout complete. updated: {updated}"));
    }
    if spec > current {
        return Health::in_progress(format!("current: {current}/{spec}"));
    }
    let current_revision = str_at(object, &["status", "currentRevision"]).unwrap_or("");
    let update_revision = str_at(object, &["status", "updateRevision"]).unwrap_or("");
    if current_revision != update_revision {
        return Health::in_progress(format!(
            "Waiting for updated revision {update_revision} to replace {current_revision}"
        ));
    }
    Health::current(format!(
        "All replicas scheduled as expected. Replicas: {replicas}"
    ))
}

fn daemon_set(object: &Value) -> Health {
    if let Some(health) = unobserved(object) {
        return health;
    }
    let Some(desired) = int_at(object, &["status", "desiredNumberScheduled"]) else {
        return Health::in_progress("Missing .status.desiredNumberScheduled");
    };
    let checks = [
        (
            "Current",
            int_or(object, &["status", "currentNumberScheduled"], 0),
        ),
        (
            "Updated",
            int_or(object, &["status", "updatedNumberScheduled"], 0),
        ),
        (
            "Available",
            int_or(object, &["status", "numberAvailable"], 0),
        ),
        ("Ready", int_or(object, &["status", "numberReady"], 0)),
    ];
    for (what, count) in checks {
        if desired > count {
            return Health::in_progress(format!("{what}: {count}/{desired}"));
        }
    }
    Health::current(format!(
        "All replicas scheduled as expected. Replicas: {desired}"
    ))
}

fn replica_set(object: &Value) -> Health {
    if let Some(health) = unobserved(object) {
        return health;
    }
    if conditions(object).any(|c| c.is("ReplicaFailure", "True")) {
        return Health::in_progress("Replica Failure condition. Check Pods");
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let replicas = int_or(object, &["status", "replicas"], 0);
    let checks = [
        (
            "Labelled",
            int_or(object, &["status", "fullyLabeledReplicas"], 0),
        ),
        (
            "Available",
            int_or(object, &["status", "availableReplicas"], 0),
        ),
        ("Ready", int_or(object, &["status", "readyReplicas"], 0)),
    ];
    for (what, count) in checks {
        if spec > count {
            return Health::in_progress(format!("{what}: {count}/{spec}"));
        }
    }
    if replicas > spec {
        return Health::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    Health::current(format!("ReplicaSet is available. Replicas: {replicas}"))
}

fn pod_disruption_budget(object: &Value) -> Health {
    if let Some(health) = unobserved(object) {
        return health;
    }
    let current = int_or(object, &["status", "currentHealthy"], 0);
    let Some(desired) = int_at(object, &["status", "desiredHealthy"]) else {
        return Health::in_progress("Missing .status.desiredHealthy");
    };
    if desired > current {
        return Health::in_progress(format!(
            "Budget not met. healthy replicas: {current}/{desired}"
        ));
    }
    Health::current(format!("Budget is met. Replicas: {current}/{desired}"))
}

/// A Job is healthy once it has completed (Flux waits for Jobs to finish,
/// unlike plain kstatus, which is satisfied once a Job has started).
fn job(object: &Value) -> Health {
    let parallelism = int_or(object, &["spec", "parallelism"], 1);
    let completions = int_or(object, &["spec", "completions"], parallelism);
    let succeeded = int_or(object, &["status", "succeeded"], 0);
    let failed = int_or(object, &["status", "failed"], 0);
    for condition in conditions(object) {
        if condition.is("Complete", "True") {
            return Health::current(format!(
                "Job Completed. succeeded: {succeeded}/{completions}"
            ));
        }
        if condition.is("Failed", "True") {
            return Health::failed(format!("Job Failed. failed: {failed}/{completions}"));
        }
    }
    Health::in_progress("Job in progress")
}

fn pod(object: &Value, now: Timestamp) -> Health {
    match str_at(object, &["status", "phase"]).unwrap_or("") {
        "Succeeded" => Health::current("Pod has completed successfully"),
        "Failed" => Health::failed("Pod has completed, but not successfully"),
        "Running" => {
            if conditions(object).any(|c| c.is("Ready", "True")) {
                return Health::current("Pod is Ready");
            }
            let crash_looping: Vec<&str> = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| str_at(c, &["state", "waiting", "reason"]) == Some("CrashLoopBackOff"))
                .filter_map(|c| str_at(c, &["name"]))
                .collect();
            if !crash_looping.is_empty() {
                return Health::failed(format!(
                    "Containers in CrashLoop state: {}",
                    crash_looping.join(",")
                ));
            }
            Health::in_progress("Pod is running but is not Ready")
        }
        "Pending" => {
            let unschedulable = conditions(object)
                .any(|c| c.is("PodScheduled", "False") && c.reason == "Unschedulable");
            if unschedulable {
                let created = str_at(object, &["metadata", "creationTimestamp"])
                    .and_then(|t| t.parse::<Timestamp>().ok());
                let grace_over = created.is_none_or(|created| {
                    now.as_second() - created.as_second() > SCHEDULE_WINDOW_SECONDS
                });
                if grace_over {
                    return Health::failed("Pod could not be scheduled");
                }
                return Health::in_progress("Pod has not been scheduled");
            }
            Health::in_progress("Pod is in the Pending phase")
        }
        "" => Health::in_progress("Pod phase not available"),
        other => Health::in_progress(format!("Pod is in the {other} phase")),
    }
}

fn persistent_volume_claim(object: &Value) -> Health {
    match str_at(object, &["status", "phase"]).unwrap_or("") {
        "Bound" => Health::current("PVC is Bound"),
        phase => Health::in_progress(format!("PVC is not Bound. phase: {phase}")),
    }
}

fn service(object: &Value) -> Health {
    if str_at(object, &["spec", "type"]) == Some("LoadBalancer") {
        if str_at(object, &["spec", "clusterIP"]).is_none_or(str::is_empty) {
            return Health::in_progress("ClusterIP not set. Service type: LoadBalancer");
        }
        let ingress = object
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .is_some_and(|ingress| !ingress.is_empty());
        if !ingress {
            return Health::in_progress("No loadBalancer ingress");
        }
    }
    Health::current("Service is ready")
}

fn namespace(object: &Value) -> Health {
    match str_at(object, &["status", "phase"]).unwrap_or("") {
        "Active" => Health::current("Namespace is Active"),
        "Terminating" => Health::new(Status::Terminating, "Namespace is Terminating"),
        phase => Health::in_progress(format!("Namespace is not Active. phase: {phase}")),
    }
}

fn crd(object: &Value) -> Health {
    for condition in conditions(object) {
        if condition.is("NamesAccepted", "False") {
            return Health::failed(condition.describe("Names not accepted"));
        }
        if condition.type_ == "Established" {
            if condition.status == "False" && condition.reason != "Installing" {
                return Health::failed(condition.describe("CRD is not established"));
            }
            if condition.status == "True" {
                return Health::current("CRD is established");
            }
        }
    }
    Health::in_progress("Install in progress")
}

/// Objects of other kinds: the `Ready` condition when there is one (with the
/// generic rules already applied), else current: an object without status
/// conditions has nothing to wait for.
fn ready_condition(object: &Value) -> Health {
    match conditions(object).find(|c| c.type_ == "Ready") {
        Some(ready) if ready.status == "True" => {
            Health::current(ready.describe("Resource is Ready"))
        }
        Some(ready) => Health::in_progress(ready.describe("Resource is not Ready")),
        None => Health::current("Resource is current"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        "2026-01-01T00:01:00Z".parse().expect("timestamp")
    }

    fn status_of(object: Value) -> Health {
        compute(&object, now())
    }

    fn deployment(spec_replicas: i64, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "generation": 2},
            "spec": {"replicas": spec_replicas},
            "status": status,
        })
    }

    fn available_conditions() -> Value {
        json!([
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ])
    }

    #[test]
    fn scaled_to_zero_deployment_is_current() {
        let health = status_of(deployment(
            0,
            json!({"observedGeneration": 2, "conditions": available_conditions()}),
        ));
        assert_eq!(health.status, Status::Current, "{health:?}");
    }

    #[test]
    fn deployment_rollout_states() {
        let unobserved = status_of(deployment(0, json!({})));
        assert_eq!(unobserved.status, Status::InProgress);
        let old_generation = status_of(deployment(1, json!({"observedGeneration": 1})));
        assert_eq!(old_generation.status, Status::InProgress);
        assert!(
            old_generation.message.contains("generation is 2"),
            "{old_generation:?}"
        );
        let unavailable = status_of(deployment(
            1,
            json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                   "unavailableReplicas": 1,
                   "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}),
        ));
        assert_eq!(unavailable.status, Status::InProgress);
        assert_eq!(unavailable.message, "Available: 0/1");
        let deadline = status_of(deployment(
            1,
            json!({"observedGeneration": 2, "conditions": [
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
        ));
        assert_eq!(deadline.status, Status::Failed);
        let ready = status_of(deployment(
            2,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                   "readyReplicas": 2, "availableReplicas": 2,
                   "conditions": available_conditions()}),
        ));
        assert_eq!(ready.status, Status::Current, "{ready:?}");
        let surplus = status_of(deployment(
            1,
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                   "readyReplicas": 2, "availableReplicas": 2,
                   "conditions": available_conditions()}),
        ));
        assert_eq!(surplus.message, "Pending termination: 1");
    }

    #[test]
    fn stateful_sets_and_daemon_sets() {
        let sts = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "metadata": {"name": "db", "generation": 1},
                   "spec": {"replicas": 1}, "status": status})
        };
        let rolling = status_of(sts(json!({"observedGeneration": 1, "replicas": 1,
            "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1,
            "currentRevision": "db-1", "updateRevision": "db-2"})));
        assert_eq!(rolling.status, Status::InProgress);
        assert!(rolling.message.contains("db-2"));
        let done = status_of(sts(json!({"observedGeneration": 1, "replicas": 1,
            "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1,
            "currentRevision": "db-2", "updateRevision": "db-2"})));
        assert_eq!(done.status, Status::Current);

        let ds = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": "agent", "generation": 1}, "status": status})
        };
        let missing = status_of(ds(json!({"observedGeneration": 1})));
        assert_eq!(missing.status, Status::InProgress);
        let partial = status_of(ds(
            json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
            "numberAvailable": 2, "numberReady": 3}),
        ));
        assert_eq!(partial.message, "Available: 2/3");
        let none_needed = status_of(ds(
            json!({"observedGeneration": 1, "desiredNumberScheduled": 0}),
        ));
        assert_eq!(none_needed.status, Status::Current);
    }

    #[test]
    fn replica_sets() {
        let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "web-1", "generation": 1}, "spec": {"replicas": 1},
            "status": {"observedGeneration": 1, "replicas": 1, "fullyLabeledReplicas": 1,
                       "availableReplicas": 0, "readyReplicas": 0}});
        assert_eq!(status_of(rs).message, "Available: 0/1");
    }

    #[test]
    fn jobs_are_current_only_when_complete() {
        let job = |conditions: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
                   "spec": {"completions": 1},
                   "status": {"startTime": "2026-01-01T00:00:00Z", "succeeded": 1, "failed": 2,
                              "conditions": conditions}})
        };
        assert_eq!(status_of(job(json!([]))).status, Status::InProgress);
        let complete = status_of(job(json!([{"type": "Complete", "status": "True"}])));
        assert_eq!(complete.status, Status::Current);
        assert_eq!(complete.message, "Job Completed. succeeded: 1/1");
        let failed = status_of(job(json!([{"type": "Failed", "status": "True"}])));
        assert_eq!(failed.status, Status::Failed);
    }

    #[test]
    fn pods() {
        let pod = |status: Value, created: &str| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "p", "creationTimestamp": created}, "status": status})
        };
        let recent = "2026-01-01T00:00:55Z";
        let old = "2026-01-01T00:00:00Z";
        assert_eq!(status_of(pod(json!({}), old)).status, Status::InProgress);
        assert_eq!(
            status_of(pod(json!({"phase": "Pending"}), old)).message,
            "Pod is in the Pending phase"
        );
        let unschedulable = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]});
        assert_eq!(
            status_of(pod(unschedulable.clone(), recent)).status,
            Status::InProgress
        );
        assert_eq!(status_of(pod(unschedulable, old)).status, Status::Failed);
        let crash = json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]});
        let crash = status_of(pod(crash, old));
        assert_eq!(crash.status, Status::Failed);
        assert!(crash.message.contains("app"));
        let ready =
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        assert_eq!(status_of(pod(ready, old)).status, Status::Current);
        assert_eq!(
            status_of(pod(json!({"phase": "Succeeded"}), old)).status,
            Status::Current
        );
        assert_eq!(
            status_of(pod(json!({"phase": "Failed"}), old)).status,
            Status::Failed
        );
    }

    #[test]
    fn claims_services_namespaces_and_crds() {
        let pvc = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"},
                   "status": {"phase": phase}})
        };
        assert_eq!(status_of(pvc("Pending")).status, Status::InProgress);
        assert_eq!(status_of(pvc("Bound")).status, Status::Current);

        let svc = |spec: Value, status: Value| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                   "spec": spec, "status": status})
        };
        assert_eq!(
            status_of(svc(json!({"type": "ClusterIP"}), json!({}))).status,
            Status::Current
        );
        let lb = json!({"type": "LoadBalancer", "clusterIP": "10.0.0.1"});
        assert_eq!(
            status_of(svc(lb.clone(), json!({}))).message,
            "No loadBalancer ingress"
        );
        let with_ingress = json!({"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}});
        assert_eq!(status_of(svc(lb, with_ingress)).status, Status::Current);

        let ns = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
                   "status": {"phase": phase}})
        };
        assert_eq!(status_of(ns("Active")).status, Status::Current);
        assert_eq!(status_of(ns("Terminating")).status, Status::Terminating);

        let crd = |conditions: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"}, "status": {"conditions": conditions}})
        };
        assert_eq!(status_of(crd(json!([]))).status, Status::InProgress);
        let established = json!([{"type": "NamesAccepted", "status": "True"},
                                 {"type": "Established", "status": "True"}]);
        assert_eq!(status_of(crd(established)).status, Status::Current);
        let conflict = json!([{"type": "NamesAccepted", "status": "False",
                               "message": "plural name conflicts"}]);
        let conflict = status_of(crd(conflict));
        assert_eq!(conflict.status, Status::Failed);
        assert_eq!(conflict.message, "plural name conflicts");
    }

    #[test]
    fn generic_objects() {
        let widget = |metadata: Value, status: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata,
                   "status": status})
        };
        let plain = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(status_of(plain).status, Status::Current);
        let meta = json!({"name": "w", "generation": 3});
        let stale = status_of(widget(meta.clone(), json!({"observedGeneration": 2})));
        assert_eq!(stale.status, Status::InProgress);
        let reconciling = status_of(widget(
            meta.clone(),
            json!({"observedGeneration": 3,
            "conditions": [{"type": "Reconciling", "status": "True", "message": "building"}]}),
        ));
        assert_eq!(
            (reconciling.status, reconciling.message.as_str()),
            (Status::InProgress, "building")
        );
        let stalled = status_of(widget(
            meta.clone(),
            json!({"conditions": [
            {"type": "Stalled", "status": "True", "reason": "InvalidSpec"}]}),
        ));
        assert_eq!(
            (stalled.status, stalled.message.as_str()),
            (Status::Failed, "InvalidSpec")
        );
        let not_ready = status_of(widget(
            meta.clone(),
            json!({"conditions": [
            {"type": "Ready", "status": "False", "message": "waiting for backend"}]}),
        ));
        assert_eq!(not_ready.status, Status::InProgress);
        let ready = status_of(widget(
            meta,
            json!({"conditions": [{"type": "Ready", "status": "True"}]}),
        ));
        assert_eq!(ready.status, Status::Current);
        let deleting = status_of(widget(
            json!({"name": "w", "deletionTimestamp": "2026-01-01T00:00:00Z"}),
            json!({}),
        ));
        assert_eq!(deleting.status, Status::Terminating);
    }
}
