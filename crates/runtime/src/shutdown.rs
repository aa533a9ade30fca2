//! How a controller process ends: on SIGINT (a terminal) or SIGTERM (the
//! kubelet deleting the pod), or with an error when it loses leadership.

use std::future::Future;

use crate::Error;
use crate::admin::Readiness;

/// Completes on the first SIGINT or SIGTERM.
pub async fn signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            // Without a SIGTERM handler, Ctrl-C still stops the process.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
}

/// Runs `controllers` until they end, a shutdown signal arrives, or
/// `lost_leadership` completes; the last is an error, so the process exits
/// non-zero and is restarted as a follower rather than writing alongside
/// the new leader.
pub async fn run_until_stopped(
    controllers: impl Future,
    lost_leadership: impl Future<Output = ()>,
    readiness: &Readiness,
) -> Result<(), Error> {
    tokio::select! {
        _ = controllers => Ok(()),
        _ = signal() => {
            tracing::info!("shutting down");
            Ok(())
        }
        _ = lost_leadership => {
            readiness.set(false);
            tracing::error!("leadership lost, exiting");
            Err(Error::LeaderElection("leadership lost".into()))
        }
    }
}
