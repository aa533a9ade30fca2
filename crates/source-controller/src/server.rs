//! The HTTP server consumers download artifacts from (`--storage-addr`). It
//! serves regular files of the store and nothing else: no directory listings,
//! no paths outside the root, no hidden (temporary) files.

use std::net::SocketAddr;
use std::path::Path;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::services::ServeDir;

use crate::Error;

/// The router serving the files under `root`.
pub fn router(root: &Path) -> Router {
    let files = ServeDir::new(root).append_index_html_on_directories(false);
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(only_visible_files))
}

/// Binds `addr` and serves the store at `root` in the background.
pub async fn serve(addr: SocketAddr, root: &Path) -> Result<(), Error> {
    runtime::admin::spawn_router(addr, router(root))
        .await
        .map_err(Error::Runtime)
}

async fn only_visible_files(request: Request, next: Next) -> Response {
    let hidden = request.uri().path().split('/').any(|segment| {
        segment.starts_with('.') || segment.starts_with("%2e") || segment.starts_with("%2E")
    });
    if hidden || request.uri().path().ends_with('/') {
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn start(root: &Path) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router(root);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn serves_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("data");
        std::fs::create_dir_all(root.join("gitrepository/ns/app")).unwrap();
        std::fs::write(root.join("gitrepository/ns/app/abc.tar.gz"), b"artifact").unwrap();
        std::fs::write(root.join("gitrepository/ns/app/.tmp-123"), b"partial").unwrap();
        std::fs::write(tmp.path().join("secret"), b"outside").unwrap();
        let base = start(&root).await;
        let client = reqwest::Client::new();
        let get = |path: &str| {
            let client = client.clone();
            let url = format!("{base}{path}");
            async move { client.get(url).send().await.unwrap() }
        };
        let ok = get("/gitrepository/ns/app/abc.tar.gz").await;
        assert_eq!(ok.status(), 200);
        assert_eq!(ok.bytes().await.unwrap().as_ref(), b"artifact");
        for path in [
            "/gitrepository/ns/app/.tmp-123",
            "/gitrepository/ns/app/%2etmp-123",
            "/gitrepository/ns/app/",
            "/gitrepository/ns/app",
            "/../secret",
            "/gitrepository/..%2f..%2fsecret",
            "/missing.tar.gz",
        ] {
            let status = get(path).await.status();
            assert!(status.is_client_error(), "{path}: {status}");
        }
    }
}
