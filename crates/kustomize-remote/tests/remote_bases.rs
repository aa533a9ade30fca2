//! Remote bases, components and files against the e2e Git server (lighttpd
//! with git-http-backend, anonymous and basic auth) and its static files,
//! each build compared with what `kubectl kustomize` v5.8.1 prints for the
//! same kustomization and the same URLs.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::git_server::{GitServer, Repo};
use kustomize::{BuildOptions, RemoteAccess};
use kustomize_remote::Fetcher;

fn config_map(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n")
}

/// A local kustomization directory holding `files`.
fn local(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

/// ferroflux's build of `dir` with remote access, on a blocking thread as
/// the controllers run it.
async fn ours_with(dir: &Path, fetcher: Fetcher) -> Result<String, String> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let options = BuildOptions {
            remote: RemoteAccess::Fetch(Arc::new(fetcher)),
            ..BuildOptions::default()
        };
        kustomize::build(&dir, &dir, options)
            .map(|out| out.to_yaml())
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap()
}

async fn ours(dir: &Path) -> Result<String, String> {
    let fetcher = Fetcher::new(tokio::runtime::Handle::current())
        .unwrap()
        .with_deadline(Instant::now() + Duration::from_secs(60));
    ours_with(dir, fetcher).await
}

/// What `kubectl kustomize` (kustomize v5.8.1) prints for `dir`.
async fn kubectl(dir: &Path) -> Result<String, String> {
    let kubectl = tokio::task::spawn_blocking(e2e::packages::kubectl_kustomize)
        .await
        .unwrap()
        .unwrap();
    let out = tokio::process::Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .await
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Both builds succeed with the same output, which is returned.
async fn same_as_kubectl(dir: &Path) -> String {
    let expected = kubectl(dir).await.expect("kubectl kustomize builds it");
    let actual = ours(dir).await.expect("ferroflux builds it");
    assert_eq!(
        actual, expected,
        "ferroflux's build differs from kubectl kustomize's"
    );
    actual
}

/// Both builds fail; ferroflux's error is returned.
async fn both_fail(dir: &Path) -> String {
    let theirs = kubectl(dir).await;
    assert!(theirs.is_err(), "kubectl kustomize built it: {theirs:?}");
    ours(dir).await.expect_err("ferroflux refuses it too")
}

async fn server() -> &'static GitServer {
    e2e::git_server::shared().await.unwrap()
}

/// A repository with `base/` (a ConfigMap), tagged `v1` at the first commit,
/// then changed on `main`. Returns it and the first commit.
fn bases_repo(server: &GitServer, name: &str) -> (Repo, String) {
    let base_k = "resources:\n- configmap.yaml\n";
    let repo = server.create_empty_repo(name).unwrap();
    let first = repo
        .commit(
            [
                ("base/kustomization.yaml", base_k.to_string()),
                ("base/configmap.yaml", config_map("app", "one")),
            ],
            &[],
            "one",
        )
        .unwrap();
    repo.tag("v1", &first).unwrap();
    repo.commit(
        [("base/configmap.yaml", config_map("app", "two"))],
        &[],
        "two",
    )
    .unwrap();
    (repo, first)
}

#[tokio::test]
async fn remote_base_by_tag_branch_commit_and_head() {
    let server = server().await;
    let (_repo, first) = bases_repo(server, "by-ref");
    let url = server.http_anonymous_url("by-ref");
    for (query, value) in [
        ("?ref=v1", "one"),
        ("?ref=main", "two"),
        (&format!("?ref={first}") as &str, "one"),
        ("?version=v1", "one"),
        ("", "two"),
    ] {
        let kustomization = format!("resources:\n- {url}//base{query}\n");
        let dir = local(&[("kustomization.yaml", &kustomization)]);
        let out = same_as_kubectl(dir.path()).await;
        assert!(out.contains(&format!("value: {value}")), "{query}: {out}");
    }
}

#[tokio::test]
async fn remote_base_with_credentials_in_the_url() {
    let server = server().await;
    bases_repo(server, "with-credentials");
    let url = server.http_url_with_credentials("with-credentials");
    let dir = local(&[(
        "kustomization.yaml",
        &format!("namePrefix: authed-\nresources:\n- {url}/base?ref=v1\n"),
    )]);
    let out = same_as_kubectl(dir.path()).await;
    assert!(out.contains("name: authed-app"), "{out}");

    // Without them, the server refuses, and the message names the URL.
    let url = server.http_url("with-credentials");
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {url}//base\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains(&url), "{err}");
}

#[tokio::test]
async fn nested_remote_and_remote_component() {
    let server = server().await;
    bases_repo(server, "inner");
    let inner = server.http_anonymous_url("inner");
    let outer = server.create_empty_repo("outer").unwrap();
    outer
        .commit(
            [
                (
                    "overlay/kustomization.yaml",
                    format!("namePrefix: outer-\nresources:\n- {inner}//base?ref=main\n"),
                ),
                (
                    "component/kustomization.yaml",
                    "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nlabels:\n- pairs:\n    team: platform\n"
                        .to_string(),
                ),
            ],
            &[],
            "overlay and component",
        )
        .unwrap();
    let outer = server.http_anonymous_url("outer");
    let dir = local(&[
        (
            "kustomization.yaml",
            &format!(
                "resources:\n- {outer}//overlay\n- local.yaml\ncomponents:\n- {outer}//component?ref=main\n"
            ),
        ),
        ("local.yaml", &config_map("local", "here")),
    ]);
    let out = same_as_kubectl(dir.path()).await;
    assert!(out.contains("name: outer-app"), "{out}");
    assert!(out.contains("team: platform"), "{out}");
}

#[tokio::test]
async fn submodules_are_checked_out_unless_the_url_says_not() {
    let server = server().await;
    let vendored = server
        .create_repo(
            "vendored",
            [("cm.yaml", config_map("vendored", "recorded"))],
        )
        .unwrap();
    let recorded = vendored.head("main").unwrap();
    vendored
        .commit([("cm.yaml", config_map("vendored", "newer"))], &[], "newer")
        .unwrap();
    let superproject = server
        .create_repo(
            "superproject",
            [("base/kustomization.yaml", "resources:\n- vendor/cm.yaml\n")],
        )
        .unwrap();
    let vendored_url = server.http_anonymous_url("vendored");
    superproject
        .commit_submodules(&[("base/vendor", &vendored_url, &recorded)], "vendor")
        .unwrap();
    let url = server.http_anonymous_url("superproject");

    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {url}//base\n"),
    )]);
    let out = same_as_kubectl(dir.path()).await;
    assert!(out.contains("value: recorded"), "{out}");

    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {url}//base?submodules=false\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains("vendor/cm.yaml"), "{err}");
}

#[tokio::test]
async fn origin_annotations_name_the_repository_and_ref() {
    let server = server().await;
    bases_repo(server, "origins");
    let url = server.http_anonymous_url("origins");
    let dir = local(&[(
        "kustomization.yaml",
        &format!("buildMetadata: [originAnnotations]\nresources:\n- {url}//base?ref=v1\n"),
    )]);
    let out = same_as_kubectl(dir.path()).await;
    assert!(out.contains(&format!("repo: {url}")), "{out}");
    assert!(out.contains("ref: v1"), "{out}");
}

#[tokio::test]
async fn remote_files_over_http() {
    let server = server().await;
    let www = server.state_dir().join("www/manifests");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(
        www.join("remote.yaml"),
        config_map("remote-file", "fetched"),
    )
    .unwrap();
    let base = server.http_base();
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {base}/manifests/remote.yaml\n"),
    )]);
    let out = same_as_kubectl(dir.path()).await;
    assert!(out.contains("value: fetched"), "{out}");

    // A URL that cannot name a repository: the HTTP error is final.
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {base}/missing.yaml\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(
        err.contains(&format!(
            "HTTP Error: status code 404 (Not Found): {base}/missing.yaml"
        )),
        "{err}"
    );
    // One that can (host/org/repo): kustomize then tries to clone it too.
    let url = format!("{base}/manifests/missing.yaml");
    let dir = local(&[("kustomization.yaml", &format!("resources:\n- {url}\n"))]);
    let err = both_fail(dir.path()).await;
    assert!(
        err.contains("URL is a git repository") && err.contains(&url),
        "{err}"
    );
}

#[tokio::test]
async fn missing_path_missing_ref_and_cycles_fail_by_name() {
    let server = server().await;
    bases_repo(server, "failures");
    let url = server.http_anonymous_url("failures");

    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {url}//nope\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains("'nope' is not a directory"), "{err}");

    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {url}//base?ref=no-such-ref\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains("reference 'no-such-ref' not found"), "{err}");

    // A remote kustomization reads only its own directory (kustomize's
    // LoadRestrictionsRootOnly for clones), even inside its repository.
    server
        .create_repo(
            "escapes",
            [
                (
                    "base/kustomization.yaml",
                    "resources:\n- ../outside.yaml\n".to_string(),
                ),
                ("outside.yaml", config_map("outside", "read")),
            ],
        )
        .unwrap();
    let escapes = server.http_anonymous_url("escapes");
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {escapes}//base\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains("security; file"), "{err}");

    let cyclic = server.create_empty_repo("cyclic").unwrap();
    let cyclic_url = server.http_anonymous_url("cyclic");
    cyclic
        .commit(
            [(
                "a/kustomization.yaml",
                format!("resources:\n- {cyclic_url}//a\n"),
            )],
            &[],
            "refers to itself",
        )
        .unwrap();
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- {cyclic_url}//a\n"),
    )]);
    let err = both_fail(dir.path()).await;
    assert!(err.contains("cycle detected"), "{err}");
}

#[tokio::test]
async fn refused_without_remote_access() {
    let server = server().await;
    let url = format!("{}//base", server.http_anonymous_url("never-fetched"));
    let dir = local(&[("kustomization.yaml", &format!("resources:\n- {url}\n"))]);
    let path = dir.path().to_path_buf();
    let err = tokio::task::spawn_blocking(move || {
        let options = BuildOptions {
            remote: RemoteAccess::Refused("remote bases are disabled".into()),
            ..BuildOptions::default()
        };
        kustomize::build(&path, &path, options).map(|out| out.to_yaml())
    })
    .await
    .unwrap()
    .expect_err("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "accumulating resources: remote resource '{url}' is not allowed: remote bases are disabled"
        )
    );
}

#[tokio::test]
async fn a_remote_that_hangs_fails_at_the_deadline() {
    // Accepts connections (the kernel's backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = local(&[(
        "kustomization.yaml",
        &format!("resources:\n- http://127.0.0.1:{port}/org/repo.git//base\n"),
    )]);
    let started = Instant::now();
    let fetcher = Fetcher::new(tokio::runtime::Handle::current())
        .unwrap()
        .with_deadline(Instant::now() + Duration::from_secs(3));
    let err = ours_with(dir.path(), fetcher).await.expect_err("times out");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        err.contains("timed out") || err.contains("timeout"),
        "{err}"
    );
    drop(listener);
}
