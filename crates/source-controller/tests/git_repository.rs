//! GitRepository end to end: the real source-controller binary against the
//! real control plane and Git server (HTTP with basic auth, ssh).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::GitRepository;
use fixture::{Env, condition, download, fetch_artifact, files_under, git_server};
use kube::api::DeleteParams;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn git_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// Waits until Ready=True at the current generation; returns the object.
async fn ready(env: &Env, name: &str) -> Result<GitRepository> {
    env.wait_for::<GitRepository, _>(name, WAIT, |repo| {
        let status = repo.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "True" && status.observed_generation == repo.metadata.generation)
            .then(|| repo.clone())
    })
    .await
}

/// Waits until Ready=False with `reason`; returns the Ready message.
async fn failing(env: &Env, name: &str, reason: &str) -> Result<(GitRepository, String)> {
    env.wait_for::<GitRepository, _>(name, WAIT, |repo| {
        let status = repo.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "False" && ready.reason == reason)
            .then(|| (repo.clone(), ready.message.clone()))
    })
    .await
}

async fn basic_auth_secret(env: &Env, name: &str) -> Result<()> {
    let git = git_server().await?;
    env.secret(
        name,
        &[("username", git.username()), ("password", git.password())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn http_basic_auth_artifact_matches_digest_and_follows_branch() -> Result<()> {
    let env = Env::start("git-http", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(
        &format!("{}-app", env.ns()),
        [
            (
                "deploy/app.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
            ),
            ("README.md", "hello\n"),
        ],
    )?;
    let first = repo.head("main")?;
    basic_auth_secret(&env, "git-auth").await?;
    env.create::<GitRepository>(git_repository(
        "app",
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "git-auth"}}),
    ))
    .await?;

    let obj = ready(&env, "app").await?;
    let status = obj.status.clone().context("status")?;
    let artifact = status.artifact.clone().context("artifact")?;
    ensure!(
        artifact.revision == format!("main@sha1:{first}"),
        "{artifact:?}"
    );
    let ready_condition = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(ready_condition.reason == "Succeeded");
    ensure!(ready_condition.message == format!("stored artifact for revision 'main@sha1:{first}'"));
    ensure!(
        condition(status.conditions.as_ref(), "ArtifactInStorage")
            .is_some_and(|c| c.status == "True")
    );
    ensure!(condition(status.conditions.as_ref(), "Reconciling").is_none());
    ensure!(artifact.path == format!("gitrepository/{}/app/{first}.tar.gz", env.ns()));
    ensure!(
        artifact.url
            == format!(
                "http://127.0.0.1:{}/{}",
                env.controller.storage_port, artifact.path
            )
    );

    // What consumers see: the served file hashes to the announced digest.
    let bytes = download(&artifact.url).await?;
    ensure!(
        runtime::artifact::sha256_digest(&bytes) == artifact.digest,
        "digest mismatch"
    );
    ensure!(artifact.size == Some(bytes.len() as i64));
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path()) == ["README.md", "deploy/app.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );

    // The branch moves on; a reconcile request picks it up long before the interval.
    let second = repo.commit([("deploy/extra.yaml", "kind: Namespace\n")], &[], "second")?;
    let token = env.request_reconcile::<GitRepository>("app").await?;
    let obj = env
        .wait_for::<GitRepository, _>("app", WAIT, |repo| {
            let status = repo.status.as_ref()?;
            (status.artifact.as_ref()?.revision == format!("main@sha1:{second}"))
                .then(|| repo.clone())
        })
        .await?;
    let status = obj.status.context("status")?;
    ensure!(
        status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str())
    );
    let artifact = status.artifact.context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()).contains(&"deploy/extra.yaml".to_string()));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_remote_writes_nothing() -> Result<()> {
    let env = Env::start("git-idle", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-idle", env.ns()), [("a.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "idle",
        json!({"url": repo.http_url(), "interval": "1s", "ref": {"branch": "main"}, "secretRef": {"name": "auth"}}),
    ))
    .await?;
    let before = ready(&env, "idle").await?;
    // Several intervals pass: the remote is checked, but the object is not rewritten.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = env.api::<GitRepository>().get("idle").await?;
    ensure!(
        before.metadata.resource_version == after.metadata.resource_version,
        "status was rewritten without a change:\n{}",
        env.controller.log_tail(30)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_with_identity_and_known_hosts() -> Result<()> {
    let env = Env::start("git-ssh", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(
        &format!("{}-ssh", env.ns()),
        [("cluster/ns.yaml", "kind: Namespace\n")],
    )?;
    let head = repo.head("main")?;
    env.secret(
        "ssh-auth",
        &[
            ("identity", &git.identity()?),
            ("known_hosts", git.known_hosts()),
        ],
    )
    .await?;
    env.create::<GitRepository>(git_repository(
        "over-ssh",
        json!({"url": repo.ssh_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "ssh-auth"}}),
    ))
    .await?;
    let obj = ready(&env, "over-ssh").await?;
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    ensure!(artifact.revision == format!("main@sha1:{head}"));
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["cluster/ns.yaml"]);

    // A known_hosts that does not list the server's key is refused.
    env.secret(
        "ssh-wrong-host",
        &[
            ("identity", &git.identity()?),
            (
                "known_hosts",
                "[127.0.0.1]:1 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
            ),
        ],
    )
    .await?;
    env.create::<GitRepository>(git_repository(
        "unknown-host",
        json!({"url": repo.ssh_url(), "interval": "1h", "secretRef": {"name": "ssh-wrong-host"}, "ref": {"branch": "main"}}),
    ))
    .await?;
    failing(&env, "unknown-host", "AuthenticationFailed").await?;
    Ok(())
}

/// `--artifact-digest-algo=blake3`: artifacts carry BLAKE3 digests, which
/// consumers verify (the download below checks it).
#[tokio::test(flavor = "multi_thread")]
async fn artifact_digest_algorithm_is_the_flags() -> Result<()> {
    let env = Env::start("git-blake3", &["--artifact-digest-algo=blake3"]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-b3", env.ns()), [("a.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "b3",
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"},
               "secretRef": {"name": "auth"}}),
    ))
    .await?;
    let artifact = ready(&env, "b3")
        .await?
        .status
        .and_then(|s| s.artifact)
        .context("artifact")?;
    ensure!(
        artifact.digest.starts_with("blake3:") && artifact.digest.len() == 7 + 64,
        "{artifact:?}"
    );
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["a.yaml"]);
    Ok(())
}

/// `sparseCheckout` naming a directory the commit lacks fails the fetch
/// with Flux's reason and message; the listed directories that exist are
/// what the artifact holds.
#[tokio::test(flavor = "multi_thread")]
async fn sparse_checkout_of_a_missing_directory_fails() -> Result<()> {
    let env = Env::start("git-sparse", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(
        &format!("{}-sparse", env.ns()),
        [("apps/a.yaml", "a: 1\n"), ("infra/b.yaml", "b: 1\n")],
    )?;
    basic_auth_secret(&env, "auth").await?;
    let spec = |dirs: serde_json::Value| {
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"},
               "secretRef": {"name": "auth"}, "sparseCheckout": dirs})
    };
    env.create::<GitRepository>(git_repository("sparse", spec(json!(["apps"]))))
        .await?;
    let obj = ready(&env, "sparse").await?;
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["apps/a.yaml"]);

    env.create::<GitRepository>(git_repository("missing", spec(json!(["apps", "nope"]))))
        .await?;
    let (_, message) = failing(&env, "missing", "GitOperationFailed").await?;
    ensure!(
        message
            == "failed to sparse checkout directories : sparse checkout dir 'nope' does not exist in repository",
        "{message}"
    );
    Ok(())
}

/// `proxySecretRef`: the fetch goes through the proxy with its credentials;
/// a proxy Secret without `address` fails with Flux's reason, and a proxy
/// that is down fails the fetch with a message naming the proxy. Without
/// one, the controller's `HTTP_PROXY` environment is used.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_secret_ref_routes_the_fetch_through_the_proxy() -> Result<()> {
    let env = Env::start("git-proxy", &[]).await?;
    let git = git_server().await?;
    let name = format!("{}-proxied", env.ns());
    let repo = git.create_repo(&name, [("a.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    let mut proxy = tokio::task::spawn_blocking(|| e2e::proxy::HttpProxy::start(true)).await??;
    let address = proxy.address();
    env.secret(
        "proxy",
        &[
            ("address", address.as_str()),
            ("username", proxy.username().context("proxy user")?),
            ("password", proxy.password().context("proxy password")?),
        ],
    )
    .await?;
    env.secret("no-address", &[("username", "u"), ("password", "p")])
        .await?;
    let spec = |proxy_secret: &str| {
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"},
               "secretRef": {"name": "auth"}, "proxySecretRef": {"name": proxy_secret}})
    };
    env.create::<GitRepository>(git_repository("proxied", spec("proxy")))
        .await?;
    ready(&env, "proxied").await?;
    let log = proxy.log();
    ensure!(
        log.contains(&format!("/git/{name}.git")),
        "not proxied:\n{log}"
    );

    env.create::<GitRepository>(git_repository("no-address", spec("no-address")))
        .await?;
    let (_, message) = failing(&env, "no-address", "AuthenticationFailed").await?;
    ensure!(message.contains("'address'"), "{message}");

    proxy.stop();
    env.create::<GitRepository>(git_repository("proxy-down", spec("proxy")))
        .await?;
    let (_, message) = failing(&env, "proxy-down", "GitOperationFailed").await?;
    ensure!(message.contains(&address), "{message}");

    // Without proxySecretRef, the controller's HTTP_PROXY environment is
    // used, by Go's rules: for a host other than localhost and loopback
    // addresses (the machine's other name for 127.0.0.1).
    let open_proxy = tokio::task::spawn_blocking(|| e2e::proxy::HttpProxy::start(false)).await??;
    let env = Env::start_with_env(
        "git-env-proxy",
        &[],
        &[("HTTP_PROXY", open_proxy.address().as_str())],
    )
    .await?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "from-env",
        json!({"url": e2e::proxy::via_alias(repo.http_url())?, "interval": "1h",
               "ref": {"branch": "main"}, "secretRef": {"name": "auth"}}),
    ))
    .await?;
    ready(&env, "from-env").await?;
    let log = open_proxy.log();
    ensure!(
        log.contains(&format!("/git/{name}.git")),
        "not proxied:\n{log}"
    );
    Ok(())
}

/// `--ssh-hostkey-algos` / `--ssh-kex-algos` restrict what ssh negotiates:
/// the server's ed25519 key is refused when only ECDSA host keys are
/// allowed, and accepted when ed25519 is (with one key exchange allowed).
#[tokio::test(flavor = "multi_thread")]
async fn ssh_algorithm_flags_restrict_the_connection() -> Result<()> {
    let git = git_server().await?;
    let secret = [
        ("identity", git.identity()?),
        ("known_hosts", git.known_hosts().to_string()),
    ];
    let secret: Vec<(&str, &str)> = secret.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (test, flags, ready_expected) in [
        (
            "git-ssh-hostkey-ecdsa",
            &["--ssh-hostkey-algos=ecdsa-sha2-nistp256"][..],
            false,
        ),
        (
            "git-ssh-hostkey-ed25519",
            &[
                "--ssh-hostkey-algos=ssh-ed25519",
                "--ssh-kex-algos=curve25519-sha256",
            ][..],
            true,
        ),
    ] {
        let env = Env::start(test, flags).await?;
        let repo = git.create_repo(&format!("{}-ssh", env.ns()), [("a.yaml", "a: 1\n")])?;
        env.secret("ssh-auth", &secret).await?;
        env.create::<GitRepository>(git_repository(
            "over-ssh",
            json!({"url": repo.ssh_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "ssh-auth"}}),
        ))
        .await?;
        if ready_expected {
            ready(&env, "over-ssh").await?;
        } else {
            let (_, message) = failing(&env, "over-ssh", "GitOperationFailed").await?;
            ensure!(message.contains("no matching host key type"), "{message}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_or_missing_credentials_fail_then_recover() -> Result<()> {
    let env = Env::start("git-auth", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-private", env.ns()), [("x.yaml", "x: 1\n")])?;
    env.secret(
        "bad",
        &[("username", git.username()), ("password", "wrong-password")],
    )
    .await?;
    env.create::<GitRepository>(git_repository(
        "wrong",
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "bad"}}),
    ))
    .await?;
    let (obj, message) = failing(&env, "wrong", "AuthenticationFailed").await?;
    let status = obj.status.context("status")?;
    ensure!(
        condition(status.conditions.as_ref(), "FetchFailed").is_some_and(|c| c.status == "True")
    );
    ensure!(
        condition(status.conditions.as_ref(), "Reconciling")
            .is_some_and(|c| c.reason == "ProgressingWithRetry")
    );
    ensure!(
        !message.contains("wrong-password"),
        "the password leaked into: {message}"
    );

    env.create::<GitRepository>(git_repository(
        "missing",
        json!({"url": repo.http_url(), "interval": "1h", "secretRef": {"name": "does-not-exist"}}),
    ))
    .await?;
    let (_, message) = failing(&env, "missing", "AuthenticationFailed").await?;
    ensure!(message.contains("does-not-exist"), "{message}");

    // Fixing the Secret and asking again recovers.
    basic_auth_secret(&env, "bad").await?;
    env.request_reconcile::<GitRepository>("wrong").await?;
    let obj = ready(&env, "wrong").await?;
    ensure!(
        condition(
            obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
            "FetchFailed"
        )
        .is_none()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_and_semver_ranges_select_revisions() -> Result<()> {
    let env = Env::start("git-tags", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-tags", env.ns()), [("v.txt", "1.0.0\n")])?;
    let c1 = repo.head("main")?;
    repo.tag("v1.0.0", &c1)?;
    let c2 = repo.commit([("v.txt", "1.2.0\n")], &[], "1.2.0")?;
    repo.annotated_tag("v1.2.0", &c2, "release 1.2.0")?;
    let c3 = repo.commit([("v.txt", "2.0.0-rc.1\n")], &[], "rc")?;
    repo.tag("v2.0.0-rc.1", &c3)?;
    basic_auth_secret(&env, "auth").await?;
    let with = |reference: serde_json::Value| json!({"url": repo.http_url(), "interval": "1h", "secretRef": {"name": "auth"}, "ref": reference});
    env.create::<GitRepository>(git_repository("by-tag", with(json!({"tag": "v1.0.0"}))))
        .await?;
    env.create::<GitRepository>(git_repository(
        "by-semver",
        with(json!({"semver": ">=1.0.0 <3.0.0"})),
    ))
    .await?;
    env.create::<GitRepository>(git_repository("by-commit", with(json!({"commit": c2}))))
        .await?;
    env.create::<GitRepository>(git_repository("no-match", with(json!({"semver": "5.x"}))))
        .await?;
    env.create::<GitRepository>(git_repository(
        "bad-range",
        with(json!({"semver": ">= not-a-version"})),
    ))
    .await?;
    env.create::<GitRepository>(git_repository("no-branch", with(json!({"branch": "nope"}))))
        .await?;

    let revision = |obj: GitRepository| obj.status.and_then(|s| s.artifact).map(|a| a.revision);
    ensure!(revision(ready(&env, "by-tag").await?) == Some(format!("v1.0.0@sha1:{c1}")));
    // Pre-releases are left out of a range without a pre-release; annotated tags peel to the commit.
    ensure!(revision(ready(&env, "by-semver").await?) == Some(format!("v1.2.0@sha1:{c2}")));
    ensure!(revision(ready(&env, "by-commit").await?) == Some(format!("sha1:{c2}")));
    let (_, message) = failing(&env, "no-match", "GitOperationFailed").await?;
    ensure!(
        message.contains("no match found for semver: 5.x"),
        "{message}"
    );
    let (obj, _) = failing(&env, "bad-range", "GitOperationFailed").await?;
    ensure!(
        condition(
            obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
            "Stalled"
        )
        .is_some_and(|c| c.status == "True")
    );
    let (_, message) = failing(&env, "no-branch", "GitOperationFailed").await?;
    ensure!(message.contains("refs/heads/nope"), "{message}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_rules_shape_the_artifact() -> Result<()> {
    let env = Env::start("git-ignore", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(
        &format!("{}-ignore", env.ns()),
        [
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("deploy/logo.png", "png"),
            (".github/workflows/ci.yaml", "on: push\n"),
            ("apps/.sourceignore", "*.txt\n"),
            ("apps/notes.txt", "notes\n"),
            ("apps/svc.yaml", "kind: Service\n"),
            ("docs/guide.md", "guide\n"),
        ],
    )?;
    basic_auth_secret(&env, "auth").await?;
    // Defaults plus the repository's .sourceignore.
    env.create::<GitRepository>(git_repository(
        "defaults",
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "auth"}}),
    ))
    .await?;
    // spec.ignore replaces the defaults.
    env.create::<GitRepository>(git_repository(
        "custom",
        json!({"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "auth"},
               "ignore": "/docs/\n"}),
    ))
    .await?;
    let files = |obj: GitRepository| async move {
        let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
        let dir = fetch_artifact(&artifact.url, &artifact.digest).await?;
        anyhow::Ok(files_under(dir.path()))
    };
    let defaults = files(ready(&env, "defaults").await?).await?;
    // A .sourceignore replaces the media/CI defaults too, as in Flux.
    ensure!(
        defaults
            == [
                "apps/.sourceignore",
                "apps/svc.yaml",
                "deploy/app.yaml",
                "deploy/logo.png",
                ".github/workflows/ci.yaml",
                "docs/guide.md"
            ]
            .iter()
            .map(|s| s.to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>(),
        "{defaults:?}"
    );
    let obj = ready(&env, "custom").await?;
    ensure!(
        obj.status
            .as_ref()
            .and_then(|s| s.observed_ignore.as_deref())
            == Some("/docs/\n")
    );
    let custom = files(obj).await?;
    ensure!(!custom.iter().any(|f| f.starts_with("docs/")), "{custom:?}");
    ensure!(
        custom.contains(&"apps/svc.yaml".to_string())
            && !custom.contains(&"apps/notes.txt".to_string())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_objects_are_untouched() -> Result<()> {
    let env = Env::start("git-suspend", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-suspend", env.ns()), [("a.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "paused",
        json!({"url": repo.http_url(), "interval": "1s", "suspend": true, "secretRef": {"name": "auth"}, "ref": {"branch": "main"}}),
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let obj = env.api::<GitRepository>().get("paused").await?;
    ensure!(
        obj.status.is_none()
            || obj
                .status
                .as_ref()
                .is_some_and(|s| s.artifact.is_none() && s.conditions.is_none()),
        "{:?}",
        obj.status
    );
    ensure!(
        !env.controller
            .storage_root()
            .join("gitrepository")
            .join(env.ns())
            .join("paused")
            .exists()
    );
    // Resuming reconciles it.
    env.api::<GitRepository>()
        .patch(
            "paused",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    ready(&env, "paused").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deletion_removes_artifacts() -> Result<()> {
    let env = Env::start("git-delete", &[]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-delete", env.ns()), [("a.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "doomed",
        json!({"url": repo.http_url(), "interval": "1h", "secretRef": {"name": "auth"}, "ref": {"branch": "main"}}),
    ))
    .await?;
    let obj = ready(&env, "doomed").await?;
    ensure!(obj.metadata.finalizers.as_deref() == Some(&["finalizers.fluxcd.io".to_string()][..]));
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let dir = env
        .controller
        .storage_root()
        .join(format!("gitrepository/{}/doomed", env.ns()));
    ensure!(dir.is_dir());
    env.api::<GitRepository>()
        .delete("doomed", &DeleteParams::default())
        .await?;
    let deadline = std::time::Instant::now() + WAIT;
    while env
        .api::<GitRepository>()
        .get_opt("doomed")
        .await?
        .is_some()
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "object not deleted:\n{}",
            env.controller.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(!dir.exists(), "artifacts left behind");
    ensure!(
        download(&artifact.url).await.is_err(),
        "artifact still served"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn include_copies_other_artifacts_and_refuses_cycles() -> Result<()> {
    let env = Env::start("git-include", &[]).await?;
    let git = git_server().await?;
    let base = git.create_repo(
        &format!("{}-base", env.ns()),
        [
            ("manifests/cm.yaml", "kind: ConfigMap\n"),
            ("other.txt", "x"),
        ],
    )?;
    let app = git.create_repo(
        &format!("{}-app", env.ns()),
        [("app.yaml", "kind: Deployment\n")],
    )?;
    basic_auth_secret(&env, "auth").await?;
    let spec = |url: &str, include: serde_json::Value| json!({"url": url, "interval": "1h", "secretRef": {"name": "auth"}, "ref": {"branch": "main"}, "include": include});
    // The includer first: it waits for the included artifact.
    env.create::<GitRepository>(git_repository(
        "app",
        spec(app.http_url(), json!([{"repository": {"name": "base"}, "fromPath": "manifests", "toPath": "vendor/base"}])),
    ))
    .await?;
    failing(&env, "app", "NotFound").await?;
    env.create::<GitRepository>(git_repository("base", spec(base.http_url(), json!([]))))
        .await?;
    let obj = ready(&env, "app").await?;
    let status = obj.status.context("status")?;
    ensure!(status.included_artifacts.as_ref().map(Vec::len) == Some(1));
    let artifact = status.artifact.context("artifact")?;
    let dir = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(dir.path()) == ["app.yaml", "vendor/base/cm.yaml"],
        "{:?}",
        files_under(dir.path())
    );

    // A path escaping the root is refused for good.
    env.create::<GitRepository>(git_repository(
        "escape",
        spec(
            app.http_url(),
            json!([{"repository": {"name": "base"}, "toPath": "../../etc"}]),
        ),
    ))
    .await?;
    let (obj, _) = failing(&env, "escape", "IllegalPath").await?;
    ensure!(
        condition(
            obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
            "Stalled"
        )
        .is_some_and(|c| c.status == "True")
    );

    // a includes b includes a.
    env.create::<GitRepository>(git_repository(
        "cycle-a",
        spec(
            base.http_url(),
            json!([{"repository": {"name": "cycle-b"}}]),
        ),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "cycle-b",
        spec(app.http_url(), json!([{"repository": {"name": "cycle-a"}}])),
    ))
    .await?;
    let (_, message) = failing(&env, "cycle-a", "CircularInclude").await?;
    ensure!(
        message.contains("cycle-a -> cycle-b -> cycle-a"),
        "{message}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_urls_and_unreachable_hosts() -> Result<()> {
    let env = Env::start("git-bad-url", &[]).await?;
    let closed_port = e2e::paths::free_port()?;
    env.create::<GitRepository>(git_repository(
        "unreachable",
        json!({"url": format!("http://127.0.0.1:{closed_port}/repo.git"), "interval": "1h", "timeout": "5s"}),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "malformed",
        json!({"url": "http://exa mple.com/repo.git", "interval": "1h"}),
    ))
    .await?;
    let (_, message) = failing(&env, "unreachable", "GitOperationFailed").await?;
    ensure!(message.contains(&closed_port.to_string()), "{message}");
    let (obj, _) = failing(&env, "malformed", "URLInvalid").await?;
    ensure!(
        condition(
            obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
            "Stalled"
        )
        .is_some_and(|c| c.status == "True")
    );
    ensure!(obj.status.as_ref().and_then(|s| s.observed_generation) == obj.metadata.generation);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_repository_is_refused_and_last_artifact_kept() -> Result<()> {
    let env = Env::start("git-size", &["--artifact-max-size=2048"]).await?;
    let git = git_server().await?;
    let repo = git.create_repo(&format!("{}-size", env.ns()), [("small.yaml", "a: 1\n")])?;
    basic_auth_secret(&env, "auth").await?;
    env.create::<GitRepository>(git_repository(
        "sized",
        json!({"url": repo.http_url(), "interval": "1h", "secretRef": {"name": "auth"}, "ref": {"branch": "main"}}),
    ))
    .await?;
    let obj = ready(&env, "sized").await?;
    let good = obj.status.and_then(|s| s.artifact).context("artifact")?;
    repo.commit([("big.txt", "x".repeat(4096))], &[], "too big")?;
    env.request_reconcile::<GitRepository>("sized").await?;
    let (obj, message) = failing(&env, "sized", "ArchiveOperationFailed").await?;
    ensure!(message.contains("2048"), "{message}");
    // The last good artifact stays in the status and keeps being served.
    let kept = obj
        .status
        .and_then(|s| s.artifact)
        .context("artifact kept")?;
    ensure!(kept == good);
    ensure!(runtime::artifact::sha256_digest(&download(&kept.url).await?) == kept.digest);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn recurse_submodules_puts_the_recorded_commits_in_the_artifact() -> Result<()> {
    let env = Env::start("git-submodules", &[]).await?;
    let git = git_server().await?;
    let ns = env.ns().to_string();
    let leaf = git.create_repo(&format!("{ns}-leaf"), [("leaf.yaml", "kind: Secret\n")])?;
    let sub = git.create_repo(
        &format!("{ns}-sub"),
        [("deploy/sub.yaml", "kind: ConfigMap # v1\n")],
    )?;
    // A submodule of the submodule, by a URL relative to `sub`.
    sub.commit_submodules(
        &[("nested", &format!("../{ns}-leaf.git"), &leaf.head("main")?)],
        "record the leaf",
    )?;
    let recorded = sub.head("main")?;
    let top = git.create_repo(&format!("{ns}-top"), [("app.yaml", "kind: Deployment\n")])?;
    top.commit_submodules(
        &[("vendor/sub", &format!("../{ns}-sub.git"), &recorded)],
        "record sub",
    )?;
    // The submodule's branch moves on after it was recorded.
    sub.commit([("deploy/sub.yaml", "kind: ConfigMap # v2\n")], &[], "v2")?;
    let missing = git.create_repo(&format!("{ns}-missing"), [("app.yaml", "kind: Pod\n")])?;
    missing.commit_submodules(
        &[("gone", &format!("../{ns}-nowhere.git"), &recorded)],
        "record a submodule that does not exist",
    )?;
    basic_auth_secret(&env, "auth").await?;
    let spec = |url: &str, recurse: Option<bool>| {
        let mut spec = json!({"url": url, "interval": "1h", "secretRef": {"name": "auth"}, "ref": {"branch": "main"}});
        if let Some(recurse) = recurse {
            spec["recurseSubmodules"] = json!(recurse);
        }
        spec
    };
    env.create::<GitRepository>(git_repository("with", spec(top.http_url(), Some(true))))
        .await?;
    env.create::<GitRepository>(git_repository("without", spec(top.http_url(), None)))
        .await?;
    env.create::<GitRepository>(git_repository(
        "broken",
        spec(missing.http_url(), Some(true)),
    ))
    .await?;

    let obj = ready(&env, "with").await?;
    let status = obj.status.context("status")?;
    ensure!(
        status.observed_recurse_submodules == Some(true),
        "{status:?}"
    );
    let artifact = status.artifact.context("artifact")?;
    let dir = fetch_artifact(&artifact.url, &artifact.digest).await?;
    // The submodules' files at the recorded commits; no `.git` of any of them.
    ensure!(
        files_under(dir.path())
            == [
                "app.yaml",
                "vendor/sub/deploy/sub.yaml",
                "vendor/sub/nested/leaf.yaml"
            ],
        "{:?}",
        files_under(dir.path())
    );
    let sub_yaml = std::fs::read_to_string(dir.path().join("vendor/sub/deploy/sub.yaml"))?;
    ensure!(sub_yaml == "kind: ConfigMap # v1\n", "{sub_yaml:?}");

    let obj = ready(&env, "without").await?;
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let dir = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(dir.path()) == ["app.yaml"],
        "{:?}",
        files_under(dir.path())
    );

    let (_, message) = failing(&env, "broken", "GitOperationFailed").await?;
    let nowhere = git.http_url(&format!("{ns}-nowhere"));
    ensure!(
        message.contains(&format!(
            "unable to check out submodule 'gone' from '{nowhere}'"
        )),
        "{message}"
    );
    Ok(())
}
