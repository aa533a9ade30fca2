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
}

impl Context {
    /// A context over `client` and `tags`.
    pub fn new(client: Client, metrics: Arc<Metrics>, tags: TagStore, settings: Settings) -> Self {
        Self {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME),
            client,
            metrics,
            tags,
            settings,
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
