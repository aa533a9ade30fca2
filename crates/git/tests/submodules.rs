//! Submodules against the e2e Git server (lighttpd + `git http-backend`, with
//! basic auth under `/git/` and anonymous reads under `/anon/`): gitlinks are
//! recorded with the git CLI in a scratch clone and pushed, then
//! `checkout_submodules` must check out exactly the recorded commits.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::git_server::{GitServer, Repo};
use git::{Auth, CheckoutOptions, Error, HttpAuth, Reference, Remote, SubmoduleCheckout};

async fn server() -> &'static GitServer {
    e2e::git_server::shared().await.expect("git server")
}

/// `git` in `dir` without the machine's configuration; panics on failure.
fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A clone of a server repository in which gitlinks are recorded.
struct Scratch {
    _dir: tempfile::TempDir,
    work: PathBuf,
}

impl Scratch {
    fn clone(server: &GitServer, repo: &Repo) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let url = server.http_url_with_credentials(repo.name());
        run_git(dir.path(), &["clone", "-q", &url, "work"]);
        let work = dir.path().join("work");
        Scratch { _dir: dir, work }
    }

    /// Commits gitlinks `(path, url, commit)` with their `.gitmodules`
    /// entries (named by path), as `git submodule add` leaves them; returns
    /// the commit.
    fn record(&self, modules: &[(&str, &str, &str)]) -> String {
        for (path, url, commit) in modules {
            let cacheinfo = format!("160000,{commit},{path}");
            run_git(
                &self.work,
                &["update-index", "--add", "--cacheinfo", &cacheinfo],
            );
            self.module_config(path, "path", path);
            self.module_config(path, "url", url);
        }
        run_git(&self.work, &["add", ".gitmodules"]);
        run_git(&self.work, &["commit", "-q", "-m", "record submodules"]);
        run_git(&self.work, &["rev-parse", "HEAD"])
    }

    fn module_config(&self, name: &str, key: &str, value: &str) {
        let key = format!("submodule.{name}.{key}");
        run_git(&self.work, &["config", "-f", ".gitmodules", &key, value]);
    }

    fn push(&self) {
        run_git(
            &self.work,
            &["push", "-q", "origin", "HEAD:refs/heads/main"],
        );
    }
}

/// A repository `<t>-sub` (`sub.txt`) and its commit, and a superproject
/// `<t>-top` with a scratch clone to record gitlinks in.
fn sub_and_top(server: &GitServer, t: &str) -> (Repo, String, Repo, Scratch) {
    let sub = server
        .create_repo(&format!("{t}-sub"), [("sub.txt", "sub\n")])
        .unwrap();
    let sub_v1 = sub.head("main").unwrap();
    let top = server
        .create_repo(&format!("{t}-top"), [("README.md", "top\n")])
        .unwrap();
    let scratch = Scratch::clone(server, &top);
    (sub, sub_v1, top, scratch)
}

fn basic_auth(server: &GitServer, url: &str) -> Remote {
    Remote {
        url: url.to_string(),
        auth: Auth::Http(HttpAuth {
            basic: Some((server.username().into(), server.password().into())),
            ..HttpAuth::default()
        }),
        timeout: Duration::from_secs(60),
        proxy: None,
    }
}

fn anonymous(url: &str) -> Remote {
    Remote {
        url: url.to_string(),
        auth: Auth::None,
        timeout: Duration::from_secs(60),
        proxy: None,
    }
}

/// Checks out `reference` of `remote` into `<tmp>/work`, without submodules.
async fn checkout(remote: &Remote, reference: Reference) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    git::checkout(remote, &reference, &work, &CheckoutOptions::default())
        .await
        .expect("checkout");
    (dir, work)
}

fn main_branch() -> Reference {
    Reference::Branch("main".into())
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Absent or an empty directory: nothing of the submodule was checked out.
fn holds_nothing(path: PathBuf) -> bool {
    match std::fs::read_dir(&path) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

#[tokio::test]
async fn submodules_are_checked_out_at_the_recorded_commits_recursively() {
    let server = server().await;
    let t = "sm-recorded";
    let leaf = server
        .create_repo(&format!("{t}-leaf"), [("leaf.txt", "leaf v1\n")])
        .unwrap();
    let leaf_v1 = leaf.head("main").unwrap();
    let sub = server
        .create_repo(&format!("{t}-sub"), [("sub.txt", "sub v1\n")])
        .unwrap();
    // The nested submodule's URL is relative to its own superproject `sub`.
    let scratch = Scratch::clone(server, &sub);
    let sub_v1 = scratch.record(&[("nested", &format!("../{t}-leaf.git"), &leaf_v1)]);
    scratch.push();
    let other = server
        .create_repo(&format!("{t}-other"), [("other.txt", "other v1\n")])
        .unwrap();
    let other_v1 = other.head("main").unwrap();
    let top = server
        .create_repo(&format!("{t}-top"), [("README.md", "top\n")])
        .unwrap();
    let scratch = Scratch::clone(server, &top);
    scratch.record(&[
        ("libs/sub", sub.http_url(), &sub_v1),
        ("vendor/other", &format!("../{t}-other.git"), &other_v1),
    ]);
    scratch.push();
    // The submodules' branches move on after they were recorded.
    leaf.commit([("leaf.txt", "leaf v2\n")], &[], "leaf v2")
        .unwrap();
    sub.commit([("sub.txt", "sub v2\n")], &[], "sub v2")
        .unwrap();
    other
        .commit([("other.txt", "other v2\n")], &[], "other v2")
        .unwrap();

    let remote = basic_auth(server, top.http_url());
    let (_dir, work) = checkout(&remote, main_branch()).await;
    // A checkout alone leaves the submodules out.
    assert_eq!(read(work.join("README.md")), "top\n");
    assert!(holds_nothing(work.join("libs/sub")));
    assert!(holds_nothing(work.join("vendor/other")));

    let checked_out = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .expect("submodules");
    let expected = [
        ("libs/sub", "libs/sub", sub.http_url().to_string(), &sub_v1),
        (
            "nested",
            "libs/sub/nested",
            server.http_url(&format!("{t}-leaf")),
            &leaf_v1,
        ),
        (
            "vendor/other",
            "vendor/other",
            server.http_url(&format!("{t}-other")),
            &other_v1,
        ),
    ]
    .map(|(name, path, url, commit)| SubmoduleCheckout {
        name: name.into(),
        path: path.into(),
        url,
        commit: commit.clone(),
    });
    assert_eq!(checked_out, expected);
    // The recorded (older) contents, not the branch tips.
    assert_eq!(read(work.join("libs/sub/sub.txt")), "sub v1\n");
    assert_eq!(read(work.join("libs/sub/nested/leaf.txt")), "leaf v1\n");
    assert_eq!(read(work.join("vendor/other/other.txt")), "other v1\n");
    // Each submodule is a repository of its own at the recorded commit.
    let head = |path: &str| run_git(&work.join(path), &["rev-parse", "HEAD"]);
    assert_eq!(head("libs/sub"), sub_v1);
    assert_eq!(head("libs/sub/nested"), leaf_v1);
    assert_eq!(head("vendor/other"), other_v1);
}

#[tokio::test]
async fn anonymous_superproject_resolves_relative_urls_on_its_own_path() {
    let server = server().await;
    let t = "sm-anonymous";
    let sub = server
        .create_repo(&format!("{t}-sub"), [("sub.txt", "sub v1\n")])
        .unwrap();
    let sub_v1 = sub.head("main").unwrap();
    let top = server
        .create_repo(&format!("{t}-top"), [("README.md", "top\n")])
        .unwrap();
    let scratch = Scratch::clone(server, &top);
    scratch.record(&[("sub", &format!("../{t}-sub.git"), &sub_v1)]);
    scratch.push();
    sub.commit([("sub.txt", "sub v2\n")], &[], "sub v2")
        .unwrap();

    // Read anonymously, `../x.git` is the anonymous `/anon/x.git`.
    let remote = anonymous(&server.http_anonymous_url(&format!("{t}-top")));
    let (_dir, work) = checkout(&remote, main_branch()).await;
    let checked_out = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .expect("submodules");
    assert_eq!(checked_out.len(), 1);
    assert_eq!(
        checked_out[0].url,
        server.http_anonymous_url(&format!("{t}-sub"))
    );
    assert_eq!(checked_out[0].commit, sub_v1);
    assert_eq!(read(work.join("sub/sub.txt")), "sub v1\n");
}

#[tokio::test]
async fn credentials_stay_on_the_superprojects_host() {
    let server = server().await;
    let t = "sm-hosts";
    let sub = server
        .create_repo(&format!("{t}-sub"), [("sub.txt", "sub\n")])
        .unwrap();
    let sub_v1 = sub.head("main").unwrap();
    // The same server under another host name is another host: no credentials.
    let port = server.http_base().rsplit(':').next().unwrap().to_string();
    let elsewhere_auth = format!("http://localhost:{port}/git/{t}-sub.git");
    let elsewhere_anon = format!("http://localhost:{port}/anon/{t}-sub.git");

    let needs_auth = server
        .create_repo(&format!("{t}-auth"), [("README.md", "top\n")])
        .unwrap();
    let scratch = Scratch::clone(server, &needs_auth);
    scratch.record(&[("elsewhere", &elsewhere_auth, &sub_v1)]);
    scratch.push();
    let remote = basic_auth(server, needs_auth.http_url());
    let (_dir, work) = checkout(&remote, main_branch()).await;
    let err = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .unwrap_err();
    match &err {
        Error::Submodule { path, url, source } => {
            assert_eq!(path, "elsewhere");
            assert_eq!(url, &elsewhere_auth);
            assert!(
                matches!(**source, Error::Authentication { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected Error::Submodule, got {other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "unable to check out submodule 'elsewhere' from '{elsewhere_auth}': authentication"
        )),
        "{message}"
    );

    // Readable without credentials: fine from anywhere.
    let anonymous_sub = server
        .create_repo(&format!("{t}-anon"), [("README.md", "top\n")])
        .unwrap();
    let scratch = Scratch::clone(server, &anonymous_sub);
    scratch.record(&[("elsewhere", &elsewhere_anon, &sub_v1)]);
    scratch.push();
    let remote = basic_auth(server, anonymous_sub.http_url());
    let (_dir, work) = checkout(&remote, main_branch()).await;
    git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .expect("anonymous submodule on another host");
    assert_eq!(read(work.join("elsewhere/sub.txt")), "sub\n");
}

#[tokio::test]
async fn missing_repositories_commits_and_entries_name_the_submodule() {
    let server = server().await;
    let t = "sm-missing";
    let (sub, sub_v1, top, scratch) = sub_and_top(server, t);
    let remote = basic_auth(server, top.http_url());

    // A repository that does not exist.
    let gone = scratch.record(&[("gone", &format!("../{t}-nowhere.git"), &sub_v1)]);
    // A commit the submodule's repository does not have.
    let absent = "0123456789abcdef0123456789abcdef01234567";
    let unknown = scratch.record(&[("gone", &format!("../{t}-sub.git"), absent)]);
    // A gitlink without a `.gitmodules` entry.
    run_git(&scratch.work, &["rm", "-q", "--cached", "gone"]);
    run_git(&scratch.work, &["rm", "-q", ".gitmodules"]);
    let cacheinfo = format!("160000,{sub_v1},orphan");
    run_git(
        &scratch.work,
        &["update-index", "--add", "--cacheinfo", &cacheinfo],
    );
    run_git(&scratch.work, &["commit", "-q", "-m", "orphan gitlink"]);
    let orphan = run_git(&scratch.work, &["rev-parse", "HEAD"]);
    scratch.push();

    let at = |id: &str| Reference::Commit {
        id: id.to_string(),
        branch: None,
    };
    let submodules_of = |id: String| {
        let remote = remote.clone();
        async move {
            let (dir, work) = checkout(&remote, at(&id)).await;
            let result =
                git::checkout_submodules(&work, &remote, &CheckoutOptions::default()).await;
            drop(dir);
            result.unwrap_err()
        }
    };

    let err = submodules_of(gone).await;
    let nowhere = server.http_url(&format!("{t}-nowhere"));
    assert!(
        matches!(&err, Error::Submodule { path, url, .. } if path == "gone" && *url == nowhere),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "unable to check out submodule 'gone' from '{nowhere}': "
        )),
        "{err}"
    );

    let err = submodules_of(unknown).await;
    match &err {
        Error::Submodule { path, url, source } => {
            assert_eq!(path, "gone");
            assert_eq!(url, sub.http_url());
            assert!(
                matches!(&**source, Error::ReferenceNotFound { reference, .. } if reference.contains(absent)),
                "{source:?}"
            );
        }
        other => panic!("expected Error::Submodule, got {other:?}"),
    }

    let err = submodules_of(orphan).await;
    assert!(
        matches!(&err, Error::InvalidSubmodule { path, .. } if path == "orphan"),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("no URL found for the submodule path in '.gitmodules'"),
        "{err}"
    );
}

#[tokio::test]
async fn unsafe_paths_and_local_urls_are_refused() {
    let server = server().await;
    let t = "sm-refused";
    let (sub, sub_v1, top, scratch) = sub_and_top(server, t);
    let remote = basic_auth(server, top.http_url());
    // A repository on the controller's own disk.
    let local = format!("file://{}", server.repo_path(&format!("{t}-sub")).display());
    let file_url = scratch.record(&[("local", &local, &sub_v1)]);
    // `.gitmodules` maps the gitlink's name to a path outside the work tree.
    run_git(&scratch.work, &["rm", "-q", "--cached", "local"]);
    run_git(&scratch.work, &["rm", "-q", ".gitmodules"]);
    scratch.record(&[("inside", sub.http_url(), &sub_v1)]);
    scratch.module_config("inside", "path", "../outside");
    run_git(&scratch.work, &["add", ".gitmodules"]);
    run_git(&scratch.work, &["commit", "-q", "-m", "escape"]);
    let escaping = run_git(&scratch.work, &["rev-parse", "HEAD"]);
    scratch.push();

    for (commit, path, reason) in [
        (file_url, "local", "file:// URLs are not fetched"),
        (escaping, "../outside", "is refused"),
    ] {
        let reference = Reference::Commit {
            id: commit,
            branch: None,
        };
        let (_dir, work) = checkout(&remote, reference).await;
        let err = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
            .await
            .unwrap_err();
        match &err {
            Error::InvalidSubmodule { path: p, .. } => assert_eq!(p, path, "{err}"),
            other => panic!("expected Error::InvalidSubmodule, got {other:?}"),
        }
        assert!(err.to_string().contains(reason), "{err}");
        assert!(!work.join("local/sub.txt").exists());
        assert!(!work.parent().unwrap().join("outside").exists());
    }
}

#[tokio::test]
async fn a_repository_nested_in_itself_stops_at_the_depth_limit() {
    let server = server().await;
    let t = "sm-self";
    let repo = server
        .create_repo(&format!("{t}-repo"), [("level.txt", "bottom\n")])
        .unwrap();
    let mut commits = vec![repo.head("main").unwrap()];
    let scratch = Scratch::clone(server, &repo);
    // Each commit holds the repository itself at the previous commit.
    for _ in 0..=git::MAX_SUBMODULE_DEPTH {
        let previous = commits.last().unwrap().clone();
        commits.push(scratch.record(&[("self", &format!("../{t}-repo.git"), &previous)]));
    }
    scratch.push();
    let remote = basic_auth(server, repo.http_url());

    // Three levels are fine: self, self/self, self/self/self (the bottom).
    let (_dir, work) = checkout(
        &remote,
        Reference::Commit {
            id: commits[3].clone(),
            branch: None,
        },
    )
    .await;
    let checked_out = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .expect("three levels");
    let paths: Vec<&Path> = checked_out.iter().map(|s| s.path.as_path()).collect();
    assert_eq!(
        paths,
        [
            Path::new("self"),
            Path::new("self/self"),
            Path::new("self/self/self")
        ]
    );
    assert_eq!(read(work.join("self/self/self/level.txt")), "bottom\n");

    // Eleven levels are one too many.
    let (_dir, work) = checkout(&remote, main_branch()).await;
    let err = git::checkout_submodules(&work, &remote, &CheckoutOptions::default())
        .await
        .unwrap_err();
    let deepest = ["self"; git::MAX_SUBMODULE_DEPTH + 1].join("/");
    assert!(
        matches!(&err, Error::InvalidSubmodule { path, .. } if *path == deepest),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("nest more than 10 levels deep"),
        "{message}"
    );
    assert!(
        message.contains("the repository contains itself (it is also the submodule at 'self')"),
        "{message}"
    );
}
