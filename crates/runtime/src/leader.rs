//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica of
//! a controller reconciles at a time. Losing the lease must stop the process:
//! carrying on would let two replicas write the same objects. A process that
//! stops on purpose hands the lease back (Flux's
//! `--leader-election-release-on-cancel`), so the next leader need not wait
//! for it to expire.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::Error;

/// Flux's lease duration; the holder renews well before it ends.
const LEASE_SECONDS: u64 = 35;
/// How long before expiry the holder renews.
const GRACE_SECONDS: u64 = 5;
/// How long handing the lease back may take before the process exits anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's leadership: held alone (election disabled) or through a
/// Lease it acquired.
pub struct Leadership {
    lease: Option<HeldLease>,
}

struct HeldLease {
    name: String,
    leading: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// Leadership without election: the process leads alone.
    pub fn alone() -> Self {
        Self { lease: None }
    }

    /// Waits until this process holds the lease `name` in `namespace`.
    pub async fn acquire(client: Client, namespace: &str, name: &str) -> Result<Self, Error> {
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("{name}-{}", std::process::id()));
        let manager = LeaseManagerBuilder::new(client, name)
            .with_namespace(namespace)
            .with_identity(identity.clone())
            .with_duration(LEASE_SECONDS)
            .with_grace(GRACE_SECONDS)
            .build()
            .await
            .map_err(|e| Error::LeaderElection(e.to_string()))?;
        let (mut leading, task) = manager.watch().await;
        info!(lease = name, %identity, "waiting for leadership");
        while !*leading.borrow_and_update() {
            leading.changed().await.map_err(|_| {
                Error::LeaderElection("lease task ended before leadership was acquired".into())
            })?;
        }
        info!(lease = name, %identity, "acquired leadership");
        Ok(Self {
            lease: Some(HeldLease {
                name: name.to_string(),
                leading,
                task,
            }),
        })
    }

    /// Acquires the lease when `enabled`, else leads alone.
    pub async fn new(
        client: Client,
        enabled: bool,
        namespace: &str,
        name: &str,
    ) -> Result<Self, Error> {
        if enabled {
            Self::acquire(client, namespace, name).await
        } else {
            Ok(Self::alone())
        }
    }

    /// Completes when the lease is lost; never without election.
    pub async fn lost(&mut self) {
        let Some(lease) = self.lease.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            if lease.leading.changed().await.is_err() || !*lease.leading.borrow_and_update() {
                break;
            }
        }
        tracing::error!(lease = %lease.name, "lost leadership");
    }

    /// Hands the lease back, waiting a few seconds at most.
    pub async fn release(self) {
        let Some(HeldLease {
            name,
            leading,
            task,
        }) = self.lease
        else {
            return;
        };
        // Closing the channel makes the lease task release the lease and end.
        drop(leading);
        match tokio::time::timeout(RELEASE_TIMEOUT, task).await {
            Ok(Ok(Ok(_))) => info!(lease = %name, "released leadership"),
            Ok(Ok(Err(err))) => {
                tracing::warn!(lease = %name, error = %err, "cannot release the lease")
            }
            Ok(Err(err)) => tracing::warn!(lease = %name, error = %err, "lease task failed"),
            Err(_) => tracing::warn!(lease = %name, "timed out releasing the lease"),
        }
    }
}
