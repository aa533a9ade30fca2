//! Leader election on a `coordination.k8s.io/v1` Lease, so only one replica of
//! a controller reconciles at a time, with Flux's flags: the lease duration,
//! renew deadline, retry period and release-on-cancel, and a lease name of
//! its own for each `--watch-label-selector` shard.
//!
//! kube-lease-manager takes and renews the Lease. Losing it must stop the
//! process: carrying on would let two replicas write the same objects. It is
//! lost when another replica holds it, and — as client-go's leader elector
//! decides — when this one has not been able to confirm it for the renew
//! deadline (an apiserver it cannot reach): the leader checks the Lease every
//! retry period.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use crate::Error;

/// How long handing the lease back may take before the process exits anyway.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// The lease name for a controller's base name and its
/// `--watch-label-selector`: shards (different selectors) each lead their
/// own lease. Flux's `leaderelection.GenerateID`: the base, then `-` and the
/// first 8 hex digits of the selector's SHA-256.
pub fn lease_name(base: &str, watch_label_selector: &str) -> String {
    if base.is_empty() || watch_label_selector.is_empty() {
        return base.to_string();
    }
    let digest = hex::encode(Sha256::digest(watch_label_selector.as_bytes()));
    format!("{base}-{}", &digest[..8])
}

/// The timing of leader election (Flux's `--leader-election-*` flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long candidates wait before taking a lease that was not renewed.
    pub lease_duration: Duration,
    /// How long the leader may fail to confirm its lease before it stops leading.
    pub renew_deadline: Duration,
    /// How often the leader renews and checks its lease.
    pub retry_period: Duration,
    /// Whether the lease is handed back on shutdown.
    pub release_on_cancel: bool,
}

impl Default for LeaseTiming {
    /// Flux's defaults: 35s, 30s, 5s, release on cancel.
    fn default() -> Self {
        LeaseTiming {
            lease_duration: Duration::from_secs(35),
            renew_deadline: Duration::from_secs(30),
            retry_period: Duration::from_secs(5),
            release_on_cancel: true,
        }
    }
}

impl LeaseTiming {
    /// Checks the settings as client-go's leader elector does (lease
    /// duration > renew deadline > 1.2 × retry period > 0), plus what the
    /// Lease can express: whole seconds, at least 2 for the duration.
    pub fn new(
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
        release_on_cancel: bool,
    ) -> Result<Self, Error> {
        let invalid = |flag: &'static str, value: Duration, reason: String| Error::InvalidFlag {
            flag,
            value: format!("{value:?}"),
            reason,
        };
        if retry_period.is_zero() {
            return Err(invalid(
                "--leader-election-retry-period",
                retry_period,
                "must be positive".into(),
            ));
        }
        if renew_deadline <= retry_period.mul_f64(1.2) {
            return Err(invalid(
                "--leader-election-renew-deadline",
                renew_deadline,
                format!(
                    "must be greater than 1.2 × --leader-election-retry-period ({retry_period:?})"
                ),
            ));
        }
        if lease_duration <= renew_deadline {
            return Err(invalid(
                "--leader-election-lease-duration",
                lease_duration,
                format!(
                    "must be greater than --leader-election-renew-deadline ({renew_deadline:?})"
                ),
            ));
        }
        if lease_duration < Duration::from_secs(2) || lease_duration.subsec_nanos() != 0 {
            return Err(invalid(
                "--leader-election-lease-duration",
                lease_duration,
                "must be a whole number of seconds, at least 2 (a Lease counts whole seconds)"
                    .into(),
            ));
        }
        Ok(LeaseTiming {
            lease_duration,
            renew_deadline,
            retry_period,
            release_on_cancel,
        })
    }

    /// kube-lease-manager's (duration, grace) in seconds: the holder renews
    /// `grace` seconds before expiry, so once every retry period.
    fn manager_seconds(&self) -> (u64, u64) {
        let duration = self.lease_duration.as_secs();
        let renew_every = self.retry_period.as_secs().clamp(1, duration - 1);
        (duration, duration - renew_every)
    }
}

/// This process's leadership: held alone (election disabled) or through a
/// Lease it acquired.
pub struct Leadership {
    lease: Option<HeldLease>,
}

struct HeldLease {
    name: String,
    identity: String,
    api: Api<Lease>,
    timing: LeaseTiming,
    leading: watch::Receiver<bool>,
    task: JoinHandle<kube_lease_manager::Result<LeaseManager>>,
}

impl Leadership {
    /// Leadership without election: the process leads alone.
    pub fn alone() -> Self {
        Self { lease: None }
    }

    /// Waits until this process holds the lease `name` in `namespace`.
    pub async fn acquire(
        client: Client,
        namespace: &str,
        name: &str,
        timing: LeaseTiming,
    ) -> Result<Self, Error> {
        let identity = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| format!("{name}-{}", std::process::id()));
        let (duration, grace) = timing.manager_seconds();
        let manager = LeaseManagerBuilder::new(client.clone(), name)
            .with_namespace(namespace)
            .with_identity(identity.clone())
            .with_duration(duration)
            .with_grace(grace)
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
                identity,
                api: Api::namespaced(client, namespace),
                timing,
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
        timing: LeaseTiming,
    ) -> Result<Self, Error> {
        if enabled {
            Self::acquire(client, namespace, name, timing).await
        } else {
            Ok(Self::alone())
        }
    }

    /// Completes when the lease is lost — taken by another replica, or not
    /// confirmed for the renew deadline; never without election.
    pub async fn lost(&mut self) {
        let Some(lease) = self.lease.as_mut() else {
            return std::future::pending().await;
        };
        let mut confirmed = Instant::now();
        let mut check = tokio::time::interval(lease.timing.retry_period);
        loop {
            tokio::select! {
                changed = lease.leading.changed() => {
                    if changed.is_err() || !*lease.leading.borrow_and_update() {
                        tracing::error!(lease = %lease.name, "lost leadership: another replica holds the lease");
                        return;
                    }
                }
                _ = check.tick() => {
                    match lease.api.get(&lease.name).await {
                        Ok(current) if holder(&current) == Some(lease.identity.as_str()) => {
                            confirmed = Instant::now();
                        }
                        Ok(_) => {
                            tracing::error!(lease = %lease.name, "lost leadership: another replica holds the lease");
                            return;
                        }
                        Err(err) => tracing::warn!(lease = %lease.name, error = %err, "cannot read the lease"),
                    }
                    if confirmed.elapsed() > lease.timing.renew_deadline {
                        tracing::error!(
                            lease = %lease.name,
                            renew_deadline = ?lease.timing.renew_deadline,
                            "lost leadership: the lease could not be confirmed within the renew deadline"
                        );
                        return;
                    }
                }
            }
        }
    }

    /// Hands the lease back (`--leader-election-release-on-cancel`, the
    /// default), waiting a few seconds at most; otherwise just stops renewing.
    pub async fn release(self) {
        let Some(HeldLease {
            name,
            timing,
            leading,
            task,
            ..
        }) = self.lease
        else {
            return;
        };
        if !timing.release_on_cancel {
            task.abort();
            info!(lease = %name, "stopped renewing the lease (release on cancel is off)");
            return;
        }
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

/// The Lease's holder, if any.
fn holder(lease: &Lease) -> Option<&str> {
    lease.spec.as_ref()?.holder_identity.as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_lead_leases_of_their_own() {
        let base = "kustomize-controller-leader-election";
        assert_eq!(lease_name(base, ""), base);
        let one = lease_name(base, "sharding.fluxcd.io/key=shard1");
        let two = lease_name(base, "sharding.fluxcd.io/key=shard2");
        assert_ne!(one, two);
        // The first 8 hex digits of sha256("sharding.fluxcd.io/key=shard1").
        let digest = hex::encode(Sha256::digest(b"sharding.fluxcd.io/key=shard1"));
        assert_eq!(one, format!("{base}-{}", &digest[..8]));
    }

    #[test]
    fn timing_is_checked_as_client_go_checks_it() {
        let s = Duration::from_secs;
        assert_eq!(
            LeaseTiming::new(s(35), s(30), s(5), true).unwrap(),
            LeaseTiming::default()
        );
        assert_eq!(LeaseTiming::default().manager_seconds(), (35, 30));
        assert_eq!(
            LeaseTiming::new(s(20), s(15), s(2), false)
                .unwrap()
                .manager_seconds(),
            (20, 18)
        );
        for (lease, renew, retry, flag) in [
            (s(35), s(40), s(5), "--leader-election-lease-duration"),
            (s(35), s(6), s(5), "--leader-election-renew-deadline"),
            (s(35), s(30), s(0), "--leader-election-retry-period"),
            (
                Duration::from_millis(35_500),
                s(30),
                s(5),
                "--leader-election-lease-duration",
            ),
        ] {
            let err = LeaseTiming::new(lease, renew, retry, true)
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{err}");
        }
    }
}
