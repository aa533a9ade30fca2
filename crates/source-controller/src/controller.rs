//! What the reconcilers share ([`Context`]): the client, the artifact store,
//! events, metrics and the command-line settings. The harness in
//! `runtime::manager` runs them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::controller::Action;
use runtime::events::EventRecorder;
use runtime::metrics::Metrics;

use crate::Error;
use crate::index_cache::IndexCache;
use crate::storage::ArtifactStore;

/// Settings the reconcilers read from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// `--requeue-dependency`.
    pub requeue_dependency: Duration,
    /// `--artifact-max-size` (None: unlimited).
    pub artifact_max_size: Option<u64>,
    /// `--helm-index-max-size`.
    pub helm_index_max_size: u64,
    /// `--helm-chart-max-size`.
    pub helm_chart_max_size: u64,
    /// `--helm-chart-file-max-size`.
    pub helm_chart_file_max_size: u64,
    /// `--helm-cache-max-size` (0: no index cache).
    pub helm_cache_max_size: usize,
    /// `--helm-cache-ttl`.
    pub helm_cache_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jitter_percent: 5,
            requeue_dependency: Duration::from_secs(30),
            artifact_max_size: None,
            helm_index_max_size: 50 * 1024 * 1024,
            helm_chart_max_size: 10 * 1024 * 1024,
            helm_chart_file_max_size: 5 * 1024 * 1024,
            helm_cache_max_size: 0,
            helm_cache_ttl: Duration::from_secs(15 * 60),
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
    /// Parsed Helm repository indexes (`--helm-cache-*`).
    pub index_cache: IndexCache,
}

/// The field manager (and event reporter) name.
pub const CONTROLLER_NAME: &str = "source-controller";

impl Context {
    /// A context for the reconcilers.
    pub fn new(
        client: Client,
        store: ArtifactStore,
        metrics: Arc<Metrics>,
        recorder: EventRecorder,
        settings: Settings,
    ) -> Context {
        let index_cache = IndexCache::new(settings.helm_cache_max_size, settings.helm_cache_ttl);
        metrics.register_shared(
            "gotk_cache_events",
            "Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.",
            index_cache.events(),
        );
        Context {
            recorder,
            client,
            store,
            metrics,
            settings,
            index_cache,
        }
    }

    /// The interval with `--interval-jitter-percentage` applied.
    pub fn requeue_after(&self, interval: Duration) -> Action {
        Action::requeue(runtime::options::jittered(
            interval,
            self.settings.jitter_percent,
        ))
    }
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

/// A Secret's data, with errors that name the Secret.
pub struct SecretData {
    namespace: String,
    name: String,
    /// The data, `stringData` merged in.
    pub data: BTreeMap<String, Vec<u8>>,
}

impl SecretData {
    /// Reads the Secret `namespace/name`.
    pub async fn read(ctx: &Context, namespace: &str, name: &str) -> Result<SecretData, Error> {
        Ok(SecretData {
            namespace: namespace.to_string(),
            name: name.to_string(),
            data: read_secret(ctx, namespace, name).await?,
        })
    }

    /// An error about this Secret (`AuthenticationFailed`), saying `message`.
    pub fn error(&self, message: impl Into<String>) -> Error {
        Error::Secret {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// The value of `key` as text, trimmed.
    pub fn text(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .map(|v| String::from_utf8_lossy(v).trim().to_string())
    }
}

/// Refuses a `provider` other than `generic` (cloud workload identity, which
/// ferroflux does not have) rather than pulling anonymously.
pub fn only_generic_provider<P: serde::Serialize + PartialEq>(
    provider: Option<P>,
    generic: P,
) -> Result<(), Error> {
    match provider {
        Some(provider) if provider != generic => Err(Error::Unsupported(format!(
            "provider '{}' is not supported; use 'generic' with a secretRef",
            serde_json::to_value(&provider)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        ))),
        _ => Ok(()),
    }
}
