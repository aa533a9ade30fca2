//! The admin endpoints every controller serves: `/metrics` on `--metrics-addr`
//! and `/healthz`, `/readyz` on `--health-addr`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Error;
use crate::metrics::SharedMetrics;

/// Readiness as reported on `/readyz`: false until the controller's caches are
/// synced (and, with leader election, it leads).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the controller ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }

    /// Whether the controller is ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Binds both listeners now (so a port in use fails start-up at once) and
/// serves them in the background.
pub async fn serve(
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
    metrics: SharedMetrics,
    readiness: Readiness,
) -> Result<(), Error> {
    let metrics_router = Router::new()
        .route("/metrics", get(render_metrics))
        .with_state(metrics);
    let health_router = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    if metrics_addr == health_addr {
        spawn_router(metrics_addr, metrics_router.merge(health_router)).await
    } else {
        spawn_router(metrics_addr, metrics_router).await?;
        spawn_router(health_addr, health_router).await
    }
}

/// Binds `addr` and serves `router` on it in the background.
pub async fn spawn_router(addr: SocketAddr, router: Router) -> Result<(), Error> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(%addr, error = %err, "admin server stopped");
        }
    });
    Ok(())
}

async fn render_metrics(State(metrics): State<SharedMetrics>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(body) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.get() {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}
