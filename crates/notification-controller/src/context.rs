//! [`Context`]: what every Receiver reconciliation shares.

use std::time::Duration;

use kube::Client;
use kube::runtime::controller::Action;
use runtime::events::EventRecorder;

/// The field manager and event reporter name.
pub const CONTROLLER_NAME: &str = "notification-controller";

/// Everything a reconciliation needs.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Kubernetes events.
    pub recorder: EventRecorder,
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
}

impl Context {
    /// A context over `client`.
    pub fn new(client: Client, jitter_percent: u8) -> Self {
        Self {
            recorder: EventRecorder::new(client.clone(), CONTROLLER_NAME),
            client,
            jitter_percent,
        }
    }

    /// Requeue after `interval`, with `--interval-jitter-percentage` applied.
    pub fn requeue_after(&self, interval: Duration) -> Action {
        Action::requeue(runtime::options::jittered(interval, self.jitter_percent))
    }
}
