//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica of
//! a controller reconciles at a time. Losing the lease must stop the process:
//! carrying on would let two replicas write the same objects.

use std::future::Future;
use std::pin::Pin;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tracing::info;

use crate::Error;

/// Flux's lease duration; the holder renews well before it ends.
const LEASE_SECONDS: u64 = 35;
/// How long before expiry the holder renews.
const GRACE_SECONDS: u64 = 5;

/// Waits until this process holds the lease `name` in `namespace`, then
/// returns a future that completes when the lease is lost.
pub async fn acquire(
    client: Client,
    namespace: &str,
    name: &str,
) -> Result<impl Future<Output = ()> + Send + 'static, Error> {
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
    let lease = name.to_string();
    Ok(async move {
        loop {
            if leading.changed().await.is_err() || !*leading.borrow_and_update() {
                break;
            }
        }
        task.abort();
        tracing::error!(%lease, "lost leadership");
    })
}

/// A future that completes when this process must stop reconciling because
/// it lost the lease. With election disabled the process leads alone, so the
/// future never completes; with it enabled this first waits for the lease.
pub async fn leadership(
    client: Client,
    enabled: bool,
    namespace: &str,
    name: &str,
) -> Result<Pin<Box<dyn Future<Output = ()> + Send>>, Error> {
    if enabled {
        Ok(Box::pin(acquire(client, namespace, name).await?))
    } else {
        Ok(Box::pin(std::future::pending()))
    }
}
