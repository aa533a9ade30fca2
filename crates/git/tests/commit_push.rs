//! Commit and push against the e2e Git server (lighttpd + `git http-backend`
//! with basic auth, and sshd): checkout → edit → commit → push, as image
//! automation does, with real gpg keys for signed commits.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::git_server::{GitServer, Repo};
use e2e::gpg::GpgKey;
use git::{
    Auth, CheckoutOptions, CommitRequest, Error, HttpAuth, PushRequest, Reference, Remote,
    Signature, SigningKey, SshAuth,
};

async fn server() -> &'static GitServer {
    e2e::git_server::shared().await.expect("git server")
}

fn create_repo(server: &GitServer, name: &str) -> Repo {
    server
        .create_repo(
            name,
            [
                ("README.md", "hello\n"),
                ("deploy/app.yaml", "image: podinfo:6.0.0\n"),
                ("deploy/old.yaml", "kind: ConfigMap\n"),
            ],
        )
        .expect("create repo")
}

fn http_remote(server: &GitServer, repo: &Repo) -> Remote {
    Remote {
        url: repo.http_url().to_string(),
        auth: Auth::Http(HttpAuth {
            basic: Some((server.username().into(), server.password().into())),
            ..HttpAuth::default()
        }),
        timeout: Duration::from_secs(60),
        proxy: None,
    }
}

fn ssh_remote(server: &GitServer, repo: &Repo) -> Remote {
    Remote {
        url: repo.ssh_url().to_string(),
        auth: Auth::Ssh(SshAuth {
            identity: server.identity().unwrap().into_bytes(),
            passphrase: None,
            known_hosts: server.known_hosts().as_bytes().to_vec(),
        }),
        timeout: Duration::from_secs(60),
        proxy: None,
    }
}

async fn checkout(remote: &Remote, branch: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git::checkout(
        remote,
        &Reference::Branch(branch.into()),
        &dir.path().join("work"),
        &CheckoutOptions::default(),
    )
    .await
    .unwrap();
    dir
}

fn work(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("work")
}

fn request(message: &str) -> CommitRequest {
    CommitRequest {
        message: message.into(),
        author: Signature {
            name: "Flux Bot".into(),
            email: "flux@example.com".into(),
            time: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
        },
        signing_key: None,
    }
}

fn push_main() -> PushRequest {
    PushRequest {
        refspecs: vec!["HEAD:refs/heads/main".into()],
        ..PushRequest::default()
    }
}

/// `git` in `dir` without the machine's configuration; panics on failure.
fn run_git(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut command = Command::new("git");
    command
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null");
    for (key, value) in env {
        command.env(key, value);
    }
    let out = command.output().expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Edits like an image update: a changed file, a new file in a new directory,
/// a deleted file and an executable script.
fn edit(work: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(work.join("deploy/app.yaml"), "image: podinfo:6.1.0\n").unwrap();
    std::fs::create_dir_all(work.join("deploy/extra")).unwrap();
    std::fs::write(work.join("deploy/extra/new.yaml"), "kind: Secret\n").unwrap();
    std::fs::remove_file(work.join("deploy/old.yaml")).unwrap();
    std::fs::write(work.join("run.sh"), "#!/bin/sh\n").unwrap();
    std::fs::set_permissions(work.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::symlink("app.yaml", work.join("deploy/current.yaml")).unwrap();
    // Git records no empty directories.
    std::fs::create_dir_all(work.join("empty/nested")).unwrap();
}

/// The server's view of `rev` in the bare repository: `git log -1 --format`.
fn server_log(server: &GitServer, repo: &Repo, rev: &str, format: &str) -> String {
    run_git(
        &server.repo_path(repo.name()),
        &["log", "-1", &format!("--format={format}"), rev],
        &[],
    )
}

#[tokio::test]
async fn commit_and_push_over_http() {
    let server = server().await;
    let repo = create_repo(server, "commit-http");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    let before = repo.head("main").unwrap();

    // Nothing changed: no commit, HEAD stays.
    assert_eq!(git::commit(&work, &request("noop")).await.unwrap(), None);
    assert_eq!(run_git(&work, &["rev-parse", "HEAD"], &[]), before);

    // The checkout's HEAD is detached (the other tests commit so); on a
    // branch, the commit moves the branch.
    run_git(&work, &["checkout", "-q", "-b", "update"], &[]);
    edit(&work);
    let id = git::commit(&work, &request("Update image podinfo to 6.1.0\n"))
        .await
        .unwrap()
        .expect("a commit");
    // HEAD and the checked-out branch moved; the work tree is clean for git.
    assert_eq!(run_git(&work, &["rev-parse", "HEAD"], &[]), id);
    assert_eq!(run_git(&work, &["rev-parse", "HEAD~1"], &[]), before);
    assert_eq!(
        run_git(&work, &["symbolic-ref", "HEAD"], &[]),
        "refs/heads/update"
    );
    assert_eq!(run_git(&work, &["rev-parse", "refs/heads/update"], &[]), id);
    assert_eq!(run_git(&work, &["status", "--porcelain"], &[]), "");
    // Committing again without edits makes nothing.
    assert_eq!(git::commit(&work, &request("again")).await.unwrap(), None);

    git::push(&remote, &work, &push_main()).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), id);
    assert_eq!(
        server_log(server, &repo, "main", "%an <%ae> %at|%cn <%ce> %ct|%B|%P"),
        format!(
            "Flux Bot <flux@example.com> 1700000000|Flux Bot <flux@example.com> 1700000000|\
             Update image podinfo to 6.1.0\n|{before}"
        )
    );
    assert_eq!(
        repo.file_at("main", "deploy/app.yaml").unwrap(),
        b"image: podinfo:6.1.0\n"
    );
    assert_eq!(
        repo.file_at("main", "deploy/extra/new.yaml").unwrap(),
        b"kind: Secret\n"
    );
    assert!(repo.file_at("main", "deploy/old.yaml").is_err());
    let tree = run_git(
        &server.repo_path(repo.name()),
        &["ls-tree", "-r", "--format=%(objectmode) %(path)", "main"],
        &[],
    );
    assert_eq!(
        tree,
        "100644 README.md\n100644 deploy/app.yaml\n120000 deploy/current.yaml\n\
         100644 deploy/extra/new.yaml\n100755 run.sh"
    );
    // The server's repository is sound after the push from a shallow clone.
    run_git(
        &server.repo_path(repo.name()),
        &["fsck", "--no-dangling"],
        &[],
    );

    // No change, nothing to push: the branch is already there.
    assert_eq!(git::commit(&work, &request("noop")).await.unwrap(), None);
    git::push(&remote, &work, &push_main()).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), id);
}

#[tokio::test]
async fn commit_and_push_over_ssh() {
    let server = server().await;
    let repo = create_repo(server, "commit-ssh");
    let remote = ssh_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    let id = git::commit(&work, &request("over ssh"))
        .await
        .unwrap()
        .expect("a commit");
    git::push(&remote, &work, &push_main()).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), id);

    // A key the server does not know is refused.
    let mut other = ssh_remote(server, &repo);
    let stranger = tempfile::tempdir().unwrap();
    let key = stranger.path().join("id");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(status.success());
    if let Auth::Ssh(ssh) = &mut other.auth {
        ssh.identity = std::fs::read(&key).unwrap();
    }
    let err = git::push(&other, &work, &push_main()).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_credentials_are_an_authentication_error() {
    let server = server().await;
    let repo = create_repo(server, "commit-auth");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    git::commit(&work, &request("x")).await.unwrap().unwrap();
    let before = repo.head("main").unwrap();

    let wrong = Remote {
        auth: Auth::Http(HttpAuth {
            basic: Some((server.username().into(), "wrong-password".into())),
            ..HttpAuth::default()
        }),
        ..remote.clone()
    };
    let err = git::push(&wrong, &work, &push_main()).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    // The password is not in the message.
    assert!(!err.to_string().contains("wrong-password"), "{err}");
    let none = Remote {
        auth: Auth::None,
        ..remote.clone()
    };
    let err = git::push(&none, &work, &push_main()).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    assert_eq!(repo.head("main").unwrap(), before);
}

#[tokio::test]
async fn moved_branch_is_rejected_until_forced() {
    let server = server().await;
    let repo = create_repo(server, "commit-nff");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    let id = git::commit(&work, &request("ours")).await.unwrap().unwrap();
    // Someone else pushes first.
    let theirs = repo
        .commit([("README.md", "theirs\n")], &[], "theirs")
        .unwrap();

    let err = git::push(&remote, &work, &push_main()).await.unwrap_err();
    match &err {
        Error::PushRejected {
            reference,
            non_fast_forward,
            ..
        } => {
            assert_eq!(reference, "refs/heads/main");
            assert!(non_fast_forward, "{err}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(repo.head("main").unwrap(), theirs);

    // A fresh checkout has their commit, and ours goes on top of it.
    let dir = checkout(&remote, "main").await;
    let fresh = dir.path().join("work");
    edit(&fresh);
    let rebased = git::commit(&fresh, &request("ours again"))
        .await
        .unwrap()
        .unwrap();
    git::push(&remote, &fresh, &push_main()).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), rebased);
    assert_eq!(repo.file_at("main", "README.md").unwrap(), b"theirs\n");

    // Forcing replaces their history with the first checkout's commit.
    let forced = PushRequest {
        force: true,
        ..push_main()
    };
    git::push(&remote, &work, &forced).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), id);
}

#[tokio::test]
async fn push_to_a_new_branch_creates_it() {
    let server = server().await;
    let repo = create_repo(server, "commit-branch");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    let main = repo.head("main").unwrap();
    edit(&work);
    let id = git::commit(&work, &request("on a branch"))
        .await
        .unwrap()
        .unwrap();
    let request = PushRequest {
        refspecs: vec!["HEAD:refs/heads/new-branch".into()],
        ..PushRequest::default()
    };
    git::push(&remote, &work, &request).await.unwrap();
    assert_eq!(repo.head("new-branch").unwrap(), id);
    assert_eq!(repo.head("main").unwrap(), main);
}

#[tokio::test]
async fn push_options_reach_the_server_or_their_refusal_is_reported() {
    let server = server().await;
    let repo = create_repo(server, "commit-options");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    git::commit(&work, &request("with options"))
        .await
        .unwrap()
        .unwrap();
    let request = PushRequest {
        options: BTreeMap::from([
            ("ci.skip".to_string(), String::new()),
            ("merge_request.target".to_string(), "main".to_string()),
        ]),
        ..push_main()
    };

    // The repository does not accept push options yet.
    let err = git::push(&remote, &work, &request).await.unwrap_err();
    assert!(
        matches!(err, Error::PushOptionsUnsupported { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("push options"), "{err}");

    // Accept them, and record what arrives with a hook (run as the server's user).
    let bare = server.repo_path(repo.name());
    run_git(
        &bare,
        &["config", "receive.advertisePushOptions", "true"],
        &[],
    );
    let received = bare.join("push-options.txt");
    let hook = bare.join("hooks/pre-receive");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\ni=0\nwhile [ \"$i\" -lt \"${{GIT_PUSH_OPTION_COUNT:-0}}\" ]; do\n\
             eval \"echo \\\"\\$GIT_PUSH_OPTION_$i\\\"\" >> {}\ni=$((i+1))\ndone\n",
            received.display()
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&bare, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    git::push(&remote, &work, &request).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&received).unwrap(),
        "ci.skip\nmerge_request.target=main\n"
    );
}

#[tokio::test]
async fn signed_commits_verify_with_git_and_with_verify() {
    let server = server().await;
    let repo = create_repo(server, "commit-signed");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    let key = GpgKey::generate("correct horse").unwrap();

    edit(&work);
    let wrong = CommitRequest {
        signing_key: Some(SigningKey::OpenPgp {
            armored_secret_key: key.secret().unwrap(),
            passphrase: Some("battery staple".into()),
        }),
        ..request("signed")
    };
    let err = git::commit(&work, &wrong).await.unwrap_err();
    assert!(matches!(err, Error::SigningKey { .. }), "{err:?}");
    let garbage = CommitRequest {
        signing_key: Some(SigningKey::OpenPgp {
            armored_secret_key: b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nnope\n".to_vec(),
            passphrase: None,
        }),
        ..request("signed")
    };
    let err = git::commit(&work, &garbage).await.unwrap_err();
    assert!(matches!(err, Error::SigningKey { .. }), "{err:?}");

    let signed = CommitRequest {
        signing_key: Some(SigningKey::OpenPgp {
            armored_secret_key: key.secret().unwrap(),
            passphrase: Some("correct horse".into()),
        }),
        ..request("Signed update\n\nwith a body\n")
    };
    let id = git::commit(&work, &signed).await.unwrap().unwrap();
    git::push(&remote, &work, &push_main()).await.unwrap();
    assert_eq!(repo.head("main").unwrap(), id);

    // git verifies it with a key ring holding only the public key.
    let verifier = tempfile::tempdir().unwrap();
    let public = verifier.path().join("public.asc");
    std::fs::write(&public, key.public().unwrap()).unwrap();
    let status = Command::new("gpg")
        .arg("--homedir")
        .arg(verifier.path())
        .args(["--batch", "--import"])
        .arg(&public)
        .output()
        .unwrap();
    assert!(status.status.success());
    let bare = server.repo_path(repo.name());
    run_git(
        &bare,
        &["verify-commit", &id],
        &[("GNUPGHOME", verifier.path())],
    );
    let _ = Command::new("gpgconf")
        .arg("--homedir")
        .arg(verifier.path())
        .args(["--kill", "gpg-agent"])
        .status();

    // So does the crate, on a fresh checkout of the pushed commit.
    let fresh = tempfile::tempdir().unwrap();
    let commit = git::checkout(
        &remote,
        &Reference::Branch("main".into()),
        fresh.path(),
        &CheckoutOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(commit.id, id);
    assert_eq!(commit.message, "Signed update\n\nwith a body\n");
    let ring = git::KeyRing::from_armored(&key.public().unwrap()).unwrap();
    assert_eq!(git::verify(&commit.signed, &[ring]).unwrap(), key.key_id());
}

#[tokio::test]
async fn silent_server_times_out() {
    let server = server().await;
    let repo = create_repo(server, "commit-timeout");
    let remote = http_remote(server, &repo);
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    git::commit(&work, &request("x")).await.unwrap().unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accept connections and never answer.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let stuck = Remote {
        url: format!("http://{addr}/repo.git"),
        timeout: Duration::from_secs(2),
        ..remote
    };
    let started = std::time::Instant::now();
    let err = git::push(&stuck, &work, &push_main()).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    silent.abort();
}

#[tokio::test]
async fn bearer_tokens_are_sent_as_a_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = server().await;
    let repo = create_repo(server, "commit-bearer");
    let dir = checkout(&http_remote(server, &repo), "main").await;
    let work = work(&dir);

    // Records the first request's head and refuses it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let refusing = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        socket
            .write_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        String::from_utf8_lossy(&head).into_owned()
    });
    let remote = Remote {
        url: format!("http://{addr}/repo.git"),
        auth: Auth::Http(HttpAuth {
            bearer_token: Some("t0ken".into()),
            ..HttpAuth::default()
        }),
        timeout: Duration::from_secs(20),
        proxy: None,
    };
    let err = git::push(&remote, &work, &push_main()).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err:?}");
    let head = refusing.await.unwrap();
    assert!(head.contains("Authorization: Bearer t0ken\r\n"), "{head}");
}

/// The proxy environment by Go's rules (go-git's, Flux's) for both the
/// fetch (reqwest) and the push (`git`, given the decision as `http.proxy`):
/// through `HTTP_PROXY` with its credentials for the machine's other name
/// for loopback, directly for 127.0.0.1. The environment is per process, so
/// each case runs in a child: this test binary again, running only
/// [`env_proxy_child`].
#[tokio::test]
async fn fetch_and_push_follow_the_proxy_environment() {
    let server = server().await;
    let proxy = tokio::task::spawn_blocking(|| e2e::proxy::HttpProxy::start(true))
        .await
        .unwrap()
        .unwrap();
    let child = |url: String| {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command.args(["--exact", "env_proxy_child", "--ignored"]);
        for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
            command.env_remove(name);
        }
        let output = command
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env("HTTP_PROXY", proxy.url_with_credentials())
            .env("FERROFLUX_TEST_URL", url)
            .env("FERROFLUX_TEST_USER", server.username())
            .env("FERROFLUX_TEST_PASSWORD", server.password())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(text.contains("1 passed"), "{text}");
    };

    let proxied = create_repo(server, "push-env-proxy");
    let before = proxied.head("main").unwrap();
    child(e2e::proxy::via_alias(proxied.http_url()).unwrap());
    assert_ne!(proxied.head("main").unwrap(), before, "not pushed");
    let log = proxy.log();
    for path in [
        "/git/push-env-proxy.git/info/refs?service=git-upload-pack",
        "/git/push-env-proxy.git/info/refs?service=git-receive-pack",
        "/git/push-env-proxy.git/git-receive-pack",
    ] {
        assert!(log.contains(path), "no {path} in the proxy log:\n{log}");
    }

    let direct = create_repo(server, "push-env-loopback");
    let before = direct.head("main").unwrap();
    child(direct.http_url().to_string());
    assert_ne!(direct.head("main").unwrap(), before, "not pushed");
    let log = proxy.log();
    assert!(!log.contains("push-env-loopback"), "{log}");
}

/// Run by [`fetch_and_push_follow_the_proxy_environment`] with the proxy
/// environment under test: checkout, commit and push `FERROFLUX_TEST_URL`.
#[tokio::test]
#[ignore = "a child of fetch_and_push_follow_the_proxy_environment"]
async fn env_proxy_child() {
    let var = |name: &str| std::env::var(name).unwrap();
    let remote = Remote {
        url: var("FERROFLUX_TEST_URL"),
        auth: Auth::Http(HttpAuth {
            basic: Some((var("FERROFLUX_TEST_USER"), var("FERROFLUX_TEST_PASSWORD"))),
            ..HttpAuth::default()
        }),
        timeout: Duration::from_secs(60),
        proxy: None,
    };
    let dir = checkout(&remote, "main").await;
    let work = work(&dir);
    edit(&work);
    git::commit(&work, &request("Through the environment's proxy\n"))
        .await
        .unwrap()
        .expect("a commit");
    git::push(&remote, &work, &push_main()).await.unwrap();
}
