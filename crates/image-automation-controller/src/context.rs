//! [`Context`]: what every reconciliation shares.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use runtime::events::EventRecorder;
use runtime::metrics::Metrics;

use crate::tag_store::TagStore;

/// The field manager and event reporter name.
pub const CONTROLLER_NAME: &str = "image-automation-controller";

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// Feature gate `GitForcePushBranch`.
    pub force_push_branch: bool,
    /// Feature gate `GitShallowClone`.
    pub shallow_clone: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            jitter_percent: 5,
            no_cross_namespace_refs: false,
            force_push_branch: true,
            shallow_clone: true,
        }
    }
}

/// Everything a reconciliation needs.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Kubernetes events.
    pub recorder: EventRecorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The scanned tags.
    pub tags: TagStore,
    /// Command-line settings.
    pub settings: Settings,
    /// Build times of images by manifest digest (immutable, so kept), for
    /// build-time policies.
    pub build_times: BuildTimes,
}

/// Image build times by manifest digest, bounded.
#[derive(Default)]
pub struct BuildTimes(std::sync::Mutex<std::collections::HashMap<String, Option<String>>>);

/// How many build times are kept before the cache starts over.
const BUILD_TIMES_KEPT: usize = 10_000;

impl BuildTimes {
    /// The build time of `digest`, if known.
    pub fn get(&self, digest: &str) -> Option<Option<String>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .cloned()
    }

    /// Records the build time of `digest`.
    pub fn insert(&self, digest: String, created: Option<String>) {
        let mut times = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if times.len() >= BUILD_TIMES_KEPT {
            times.clear();
        }
        times.insert(digest, created);
    }
}

impl Context {
    /// A context over `client` and `tags`.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        recorder: EventRecorder,
        tags: TagStore,
        settings: Settings,
    ) -> Self {
        Self {
            recorder,
            client,
            metrics,
            tags,
            settings,
            build_times: BuildTimes::default(),
        }
    }

    /// Requeue after `interval`, with `--interval-jitter-percentage` applied.
    pub fn requeue_after(&self, interval: Duration) -> Action {
        Action::requeue(runtime::options::jittered(
            interval,
            self.settings.jitter_percent,
        ))
    }
}
