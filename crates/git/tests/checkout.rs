//! Fetch and checkout against local repositories made with the git CLI
//! (`file://` URLs), plus tiny loopback servers for timeouts and auth failures.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::num::NonZeroU32;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use git::{Auth, CheckoutOptions, Error, HttpAuth, Reference, Remote};

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with two commits on `main`, a lightweight tag on the first, an
/// annotated tag on the second, a `dev` branch and a pull-request style ref.
struct Fixture {
    dir: tempfile::TempDir,
    first: String,
    second: String,
    dev: String,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("repo");
        std::fs::create_dir(&repo).expect("mkdir");
        run_git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("README.md"), "one\n").expect("write");
        std::fs::create_dir(repo.join("deploy")).expect("mkdir");
        std::fs::write(repo.join("deploy/app.yaml"), "kind: ConfigMap\n").expect("write");
        run_git(&repo, &["add", "-A"]);
        run_git(&repo, &["commit", "-q", "-m", "first"]);
        let first = run_git(&repo, &["rev-parse", "HEAD"]);
        run_git(&repo, &["tag", "v1.0.0"]);
        std::fs::write(repo.join("README.md"), "two\n").expect("write");
        run_git(&repo, &["commit", "-q", "-am", "second"]);
        let second = run_git(&repo, &["rev-parse", "HEAD"]);
        run_git(&repo, &["tag", "-a", "v2.0.0", "-m", "release 2"]);
        run_git(&repo, &["checkout", "-q", "-b", "dev", &first]);
        std::fs::write(repo.join("dev.txt"), "dev\n").expect("write");
        run_git(&repo, &["add", "dev.txt"]);
        run_git(&repo, &["commit", "-q", "-m", "dev work"]);
        let dev = run_git(&repo, &["rev-parse", "HEAD"]);
        run_git(&repo, &["update-ref", "refs/pull/7/head", &dev]);
        run_git(&repo, &["checkout", "-q", "main"]);
        Fixture {
            dir,
            first,
            second,
            dev,
        }
    }

    fn remote(&self) -> Remote {
        Remote {
            url: format!("file://{}", self.dir.path().join("repo").display()),
            auth: Auth::None,
            timeout: Duration::from_secs(30),
            proxy: None,
        }
    }
}

async fn checkout(
    fixture: &Fixture,
    reference: Reference,
) -> (tempfile::TempDir, Result<git::Commit, Error>) {
    let out = tempfile::tempdir().expect("tempdir");
    let target = out.path().join("checkout");
    let result = git::checkout(
        &fixture.remote(),
        &reference,
        &target,
        &CheckoutOptions::default(),
    )
    .await;
    (out, result)
}

#[tokio::test]
async fn branch_checkout_gives_flux_revision_and_files() {
    let fixture = Fixture::new();
    let (out, commit) = checkout(&fixture, Reference::Branch("main".into())).await;
    let commit = commit.expect("checkout main");
    assert_eq!(commit.id, fixture.second);
    assert_eq!(commit.revision, format!("main@sha1:{}", fixture.second));
    assert_eq!(commit.message.trim(), "second");
    let dir = out.path().join("checkout");
    assert_eq!(
        std::fs::read_to_string(dir.join("README.md")).unwrap(),
        "two\n"
    );
    assert!(dir.join("deploy/app.yaml").is_file());
    // Shallow by default: only the tip commit was fetched.
    let shallow = std::fs::read_to_string(dir.join(".git/shallow")).expect("shallow file");
    assert_eq!(shallow.trim(), fixture.second);
}

#[tokio::test]
async fn other_branch_and_pull_request_ref() {
    let fixture = Fixture::new();
    let (_out, dev) = checkout(&fixture, Reference::Branch("dev".into())).await;
    assert_eq!(
        dev.expect("dev").revision,
        format!("dev@sha1:{}", fixture.dev)
    );
    let (out, pr) = checkout(&fixture, Reference::Name("refs/pull/7/head".into())).await;
    assert_eq!(
        pr.expect("pull ref").revision,
        format!("refs/pull/7/head@sha1:{}", fixture.dev)
    );
    assert!(out.path().join("checkout/dev.txt").is_file());
}

#[tokio::test]
async fn tags_lightweight_and_annotated_resolve_to_commits() {
    let fixture = Fixture::new();
    let (out, v1) = checkout(&fixture, Reference::Tag("v1.0.0".into())).await;
    assert_eq!(
        v1.expect("v1").revision,
        format!("v1.0.0@sha1:{}", fixture.first)
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("checkout/README.md")).unwrap(),
        "one\n"
    );
    let (_out, v2) = checkout(&fixture, Reference::Tag("v2.0.0".into())).await;
    let v2 = v2.expect("v2");
    assert_eq!(v2.id, fixture.second);
    assert_eq!(v2.revision, format!("v2.0.0@sha1:{}", fixture.second));
}

#[tokio::test]
async fn commit_that_is_not_a_tip() {
    let fixture = Fixture::new();
    let (out, commit) = checkout(
        &fixture,
        Reference::Commit {
            id: fixture.first.clone(),
            branch: None,
        },
    )
    .await;
    let commit = commit.expect("commit checkout");
    assert_eq!(commit.revision, format!("sha1:{}", fixture.first));
    assert_eq!(
        std::fs::read_to_string(out.path().join("checkout/README.md")).unwrap(),
        "one\n"
    );
    let (_out, on_branch) = checkout(
        &fixture,
        Reference::Commit {
            id: fixture.first.clone(),
            branch: Some("main".into()),
        },
    )
    .await;
    assert_eq!(
        on_branch.expect("commit on branch").revision,
        format!("main@sha1:{}", fixture.first)
    );
}

#[tokio::test]
async fn full_history_when_asked() {
    let fixture = Fixture::new();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("full");
    git::checkout(
        &fixture.remote(),
        &Reference::Branch("main".into()),
        &dir,
        &CheckoutOptions { depth: None },
    )
    .await
    .expect("full clone");
    assert!(!dir.join(".git/shallow").exists());
    let two = NonZeroU32::new(2);
    let dir2 = out.path().join("two");
    git::checkout(
        &fixture.remote(),
        &Reference::Branch("main".into()),
        &dir2,
        &CheckoutOptions { depth: two },
    )
    .await
    .expect("depth 2 clone");
    let log = run_git(&dir2, &["log", "--format=%H"]);
    assert_eq!(log.lines().count(), 2, "{log}");
}

#[tokio::test]
async fn unknown_branch_is_reference_not_found() {
    let fixture = Fixture::new();
    let (out, result) = checkout(&fixture, Reference::Branch("nope".into())).await;
    match result {
        Err(Error::ReferenceNotFound { reference, .. }) => {
            assert_eq!(reference, "refs/heads/nope")
        }
        other => panic!("expected ReferenceNotFound, got {other:?}"),
    }
    // A failed clone leaves nothing behind.
    assert!(!out.path().join("checkout").exists());
}

#[tokio::test]
async fn list_refs_peels_annotated_tags() {
    let fixture = Fixture::new();
    let tags = git::list_refs(&fixture.remote(), &["refs/tags/*"])
        .await
        .expect("ls-remote");
    let names: Vec<_> = tags.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["refs/tags/v1.0.0", "refs/tags/v2.0.0"]);
    assert_eq!(tags[0].commit, fixture.first);
    assert_eq!(tags[1].commit, fixture.second);

    let main = git::list_refs(&fixture.remote(), &["refs/heads/main"])
        .await
        .expect("ls-remote main");
    assert_eq!(main.len(), 1);
    assert_eq!(main[0].commit, fixture.second);
}

#[tokio::test]
async fn missing_repository_is_an_operation_error() {
    let remote = Remote {
        url: "file:///nonexistent/repo".into(),
        auth: Auth::None,
        timeout: Duration::from_secs(10),
        proxy: None,
    };
    let err = git::list_refs(&remote, &["refs/heads/*"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Operation { .. }), "{err:?}");
}

#[tokio::test]
async fn silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept connections and never answer.
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let remote = Remote {
        url: format!("http://{addr}/repo.git"),
        auth: Auth::None,
        timeout: Duration::from_millis(800),
        proxy: None,
    };
    let started = std::time::Instant::now();
    let err = git::list_refs(&remote, &["refs/heads/*"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.abort();
}

#[tokio::test]
async fn rejected_credentials_are_an_authentication_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Answers every request with 401, like a git server given a wrong password.
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    let remote = Remote {
        url: format!("http://{addr}/repo.git"),
        auth: Auth::Http(HttpAuth {
            basic: Some(("git".into(), "wrong".into())),
            ..HttpAuth::default()
        }),
        timeout: Duration::from_secs(10),
        proxy: None,
    };
    let err = git::list_refs(&remote, &["refs/heads/*"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    let anonymous = Remote {
        auth: Auth::None,
        ..remote
    };
    let err = git::list_refs(&anonymous, &["refs/heads/*"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    server.abort();
}

#[tokio::test]
async fn checkouts_carry_the_commit_and_annotated_tag_objects_for_verification() {
    let fixture = Fixture::new();
    let repo = fixture.dir.path().join("repo");
    let (_out, main) = checkout(&fixture, Reference::Branch("main".into())).await;
    let main = main.expect("main");
    assert_eq!(main.referencing_tag, None);
    assert_eq!(main.signed.signature, None);
    // An unsigned commit is signed data in full (run_git trims the last newline).
    assert_eq!(
        String::from_utf8_lossy(&main.signed.payload).trim_end(),
        run_git(&repo, &["cat-file", "commit", &fixture.second])
    );

    let (_out, v2) = checkout(&fixture, Reference::Tag("v2.0.0".into())).await;
    let tag = v2
        .expect("v2")
        .referencing_tag
        .expect("annotated tag object");
    assert_eq!(tag.name, "v2.0.0");
    assert_eq!(tag.id, run_git(&repo, &["rev-parse", "v2.0.0"]));
    assert_eq!(tag.signed.signature, None);
    assert!(
        String::from_utf8_lossy(&tag.signed.payload).contains("tag v2.0.0\n"),
        "{:?}",
        String::from_utf8_lossy(&tag.signed.payload)
    );

    // A lightweight tag names the commit itself: there is no tag object.
    let (_out, v1) = checkout(&fixture, Reference::Tag("v1.0.0".into())).await;
    assert_eq!(v1.expect("v1").referencing_tag, None);
}
