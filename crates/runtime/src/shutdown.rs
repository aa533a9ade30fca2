//! The signals that stop a controller process: SIGINT (a terminal) or
//! SIGTERM (the kubelet deleting the pod). [`crate::manager::Manager::run`]
//! drains the controllers when one arrives.

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
