//! What the reconcilers share ([`Context`]) and how they are run: watches
//! filtered to spec changes and reconcile requests, per-object exponential
//! backoff on failure, metrics per reconciliation.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use runtime::events::EventRecorder;
use runtime::metrics::{Metrics, ReconcileResult};

use crate::Error;
use crate::storage::ArtifactStore;

/// Settings the reconcilers read from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// `--requeue-dependency`.
    pub requeue_dependency: Duration,
    /// `--min-retry-delay`.
    pub min_retry_delay: Duration,
    /// `--max-retry-delay`.
    pub max_retry_delay: Duration,
    /// `--artifact-max-size` (None: unlimited).
    pub artifact_max_size: Option<u64>,
    /// `--helm-index-max-size`.
    pub helm_index_max_size: u64,
    /// `--helm-chart-max-size`.
    pub helm_chart_max_size: u64,
    /// `--helm-chart-file-max-size`.
    pub helm_chart_file_max_size: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jitter_percent: 5,
            requeue_dependency: Duration::from_secs(30),
            min_retry_delay: Duration::from_millis(750),
            max_retry_delay: Duration::from_secs(15 * 60),
            artifact_max_size: None,
            helm_index_max_size: 50 * 1024 * 1024,
            helm_chart_max_size: 10 * 1024 * 1024,
            helm_chart_file_max_size: 5 * 1024 * 1024,
        }
    }
}

/// Everything a reconciliation needs, shared by all of them.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Where artifacts go.
    pub store: ArtifactStore,
    /// Kubernetes events.
    pub recorder: EventRecorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Command-line settings.
    pub settings: Settings,
    /// Consecutive failures per object, for the retry backoff.
    failures: Mutex<HashMap<String, u32>>,
}

/// The field manager (and event reporter) name.
pub const CONTROLLER_NAME: &str = "source-controller";

impl Context {
    /// A context for the reconcilers.
    pub fn new(
        client: Client,
        store: ArtifactStore,
        metrics: Arc<Metrics>,
        settings: Settings,
    ) -> Context {
        Context {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME),
            client,
            store,
            metrics,
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// The next retry delay for `key` after one more failure: doubling from
    /// `--min-retry-delay` up to `--max-retry-delay`.
    pub fn next_retry_delay(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = failures.entry(key.to_string()).or_insert(0);
        *count = count.saturating_add(1);
        let factor = 1u32 << (*count - 1).min(20);
        self.settings
            .min_retry_delay
            .saturating_mul(factor)
            .min(self.settings.max_retry_delay)
    }

    /// Forgets the failures of `key` after a success.
    pub fn reset_retry_delay(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }

    /// The interval with `--interval-jitter-percentage` applied.
    pub fn requeue_after(&self, interval: Duration) -> Action {
        Action::requeue(runtime::options::jittered(
            interval,
            self.settings.jitter_percent,
        ))
    }
}

/// The key identifying an object in the backoff table and logs.
pub fn object_key<K: Resource<DynamicType = ()>>(obj: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Watch-event filter: only changes that call for a reconciliation pass (a new
/// generation, a new `requestedAt` token, the finalizer appearing, deletion
/// starting), never the controller's own status writes.
pub fn needs_reconcile<K: Resource>(obj: &K) -> Option<u64> {
    let meta = obj.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    runtime::reconcile_request::requested_at(meta).hash(&mut hasher);
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == api::meta::FINALIZER))
        .hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Runs one reconciliation and records its duration and outcome.
pub async fn instrumented<K, F>(obj: &K, ctx: &Context, reconcile: F) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
    F: std::future::Future<Output = Result<Action, Error>>,
{
    let started = Instant::now();
    let result = reconcile.await;
    let outcome = match &result {
        Ok(_) => ReconcileResult::Success,
        Err(err) if err.failure().waiting => ReconcileResult::Requeue,
        Err(_) => ReconcileResult::Error,
    };
    ctx.metrics.record_reconcile(
        &K::kind(&()),
        &obj.namespace().unwrap_or_default(),
        &obj.name_any(),
        started.elapsed(),
        outcome,
    );
    let key = object_key(obj);
    if result.is_ok() {
        ctx.reset_retry_delay(&key);
    }
    result
}

/// What to do after a failed reconciliation: wait for the dependency, or
/// back off exponentially.
pub fn error_policy<K: Resource<DynamicType = ()>>(
    obj: Arc<K>,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = object_key(obj.as_ref());
    if err.failure().waiting {
        return Action::requeue(ctx.settings.requeue_dependency);
    }
    let delay = ctx.next_retry_delay(&key);
    tracing::warn!(object = %key, error = %err, retry_in = ?delay, "reconciliation failed");
    Action::requeue(delay)
}

/// The data of the Secret `namespace/name`, for credentials.
pub async fn read_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets.get(name).await.map_err(|e| Error::Secret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        message: match &e {
            kube::Error::Api(status) if status.code == 404 => {
                format!("secrets \"{name}\" not found")
            }
            other => other.to_string(),
        },
    })?;
    let mut data: BTreeMap<String, Vec<u8>> = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    // stringData is write-only on the server, but tolerate objects built in memory.
    for (k, v) in secret.string_data.unwrap_or_default() {
        data.entry(k).or_insert_with(|| v.into_bytes());
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicate_ignores_status_and_sees_requests() {
        use api::source::GitRepository;
        let base: GitRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "a", "namespace": "ns", "generation": 1},
            "spec": {"url": "https://example.com/repo", "interval": "1m"}
        }))
        .expect("object");
        let mut with_status = base.clone();
        with_status.status = Some(Default::default());
        assert_eq!(needs_reconcile(&base), needs_reconcile(&with_status));

        let mut requested = base.clone();
        requested.metadata.annotations = Some(
            [(
                runtime::reconcile_request::REQUESTED_AT.to_string(),
                "now".to_string(),
            )]
            .into(),
        );
        assert_ne!(needs_reconcile(&base), needs_reconcile(&requested));

        let mut finalized = base.clone();
        finalized.metadata.finalizers = Some(vec![api::meta::FINALIZER.to_string()]);
        assert_ne!(needs_reconcile(&base), needs_reconcile(&finalized));

        let mut newer = base.clone();
        newer.metadata.generation = Some(2);
        assert_ne!(needs_reconcile(&base), needs_reconcile(&newer));
    }
}
