//! The harness's own parts, proven against the real servers: what later
//! tests rely on (clone, push, auth refusals, OCI pushes, chart repositories,
//! helm, kustomize) is exercised here with the real clients.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use e2e::git_server::GitServer;

/// `git` isolated from the machine's configuration, never prompting.
fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn output(cmd: &mut Command) -> Result<Output> {
    let program = format!("{cmd:?}");
    cmd.output().with_context(|| format!("running {program}"))
}

fn stdout(cmd: &mut Command) -> Result<String> {
    let out = e2e::process::run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn ensure_all_installs_or_finds_everything() -> Result<()> {
    let started = Instant::now();
    e2e::packages::ensure_all()?;
    eprintln!("ensure_all: {:?}", started.elapsed());
    // A second call finds everything in place and returns at once.
    let again = Instant::now();
    e2e::packages::ensure_all()?;
    ensure!(
        again.elapsed().as_millis() < 500,
        "second ensure_all took {:?}",
        again.elapsed()
    );
    Ok(())
}

#[test]
fn git_over_http_clones_with_credentials_and_refuses_a_wrong_password() -> Result<()> {
    let started = Instant::now();
    let server = GitServer::start()?;
    eprintln!("GitServer::start: {:?}", started.elapsed());
    let repo = server.create_repo(
        "app",
        [
            ("README.md", "hello\n"),
            ("deploy/cm.yaml", "kind: ConfigMap\n"),
        ],
    )?;
    let work = tempfile::tempdir()?;

    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("app"))
            .arg(&clone),
    )?;
    ensure!(read(&clone.join("README.md"))? == "hello\n");
    ensure!(read(&clone.join("deploy/cm.yaml"))? == "kind: ConfigMap\n");
    let branch = stdout(
        git()
            .arg("-C")
            .arg(&clone)
            .args(["rev-parse", "--abbrev-ref", "HEAD"]),
    )?;
    ensure!(branch.trim() == "main", "cloned branch {branch:?}");

    let wrong = server
        .http_url_with_credentials("app")
        .replace(server.password(), "not-the-password");
    let refused = output(
        git()
            .arg("clone")
            .arg(&wrong)
            .arg(work.path().join("refused")),
    )?;
    ensure!(
        !refused.status.success(),
        "clone with a wrong password succeeded"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        stderr.contains("Authentication failed") || stderr.contains("401"),
        "{stderr}"
    );

    let anonymous = output(
        git()
            .arg("clone")
            .arg(server.http_url("app"))
            .arg(work.path().join("anon")),
    )?;
    ensure!(
        !anonymous.status.success(),
        "clone without credentials succeeded on /git/"
    );

    // The anonymous path reads but never writes.
    let anon = work.path().join("anon-read");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_anonymous_url("app"))
            .arg(&anon),
    )?;
    ensure!(read(&anon.join("README.md"))? == "hello\n");
    std::fs::write(anon.join("new.txt"), "x")?;
    e2e::process::run(git().arg("-C").arg(&anon).args(["add", "new.txt"]))?;
    e2e::process::run(git().arg("-C").arg(&anon).args([
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-qm",
        "x",
    ]))?;
    let pushed = output(git().arg("-C").arg(&anon).args(["push", "origin", "main"]))?;
    ensure!(!pushed.status.success(), "anonymous push succeeded");
    ensure!(
        repo.head("main")?
            != stdout(git().arg("-C").arg(&anon).args(["rev-parse", "HEAD"]))?.trim()
    );
    Ok(())
}

#[test]
fn git_commits_pushed_over_http_are_seen_by_a_new_clone() -> Result<()> {
    let server = GitServer::start()?;
    let repo = server.create_repo("app", [("a.txt", "one\n"), ("b.txt", "gone soon\n")])?;
    let first = repo.head("main")?;
    let second = repo.commit(
        [("a.txt", "two\n"), ("dir/c.txt", "three\n")],
        &["b.txt"],
        "second",
    )?;
    ensure!(second != first);
    repo.tag("v1.0.0", &first)?;
    repo.annotated_tag("v2.0.0", &second, "release 2")?;
    repo.branch("release", &first)?;
    let feature = repo.commit_on("feature", [("f.txt", "feature\n")], &[], "feature work")?;

    let work = tempfile::tempdir()?;
    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("app"))
            .arg(&clone),
    )?;
    let in_clone = |args: &[&str]| stdout(git().arg("-C").arg(&clone).args(args));
    ensure!(in_clone(&["rev-parse", "HEAD"])?.trim() == second);
    ensure!(read(&clone.join("a.txt"))? == "two\n");
    ensure!(read(&clone.join("dir/c.txt"))? == "three\n");
    ensure!(!clone.join("b.txt").exists(), "deleted file still there");
    ensure!(in_clone(&["rev-parse", "v1.0.0^{commit}"])?.trim() == first);
    ensure!(in_clone(&["rev-parse", "v2.0.0^{commit}"])?.trim() == second);
    ensure!(in_clone(&["cat-file", "-t", "v2.0.0"])?.trim() == "tag");
    ensure!(in_clone(&["rev-parse", "origin/release"])?.trim() == first);
    ensure!(in_clone(&["rev-parse", "origin/feature^"])?.trim() == second);
    ensure!(in_clone(&["rev-parse", "origin/feature"])?.trim() == feature);

    // Someone else pushes (as a controller would); the next helper commit builds on it.
    std::fs::write(clone.join("a.txt"), "from a clone\n")?;
    in_clone(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-qam",
        "outside",
    ])?;
    in_clone(&["push", "-q", "origin", "main"])?;
    let outside = in_clone(&["rev-parse", "HEAD"])?;
    let after = repo.commit([("d.txt", "four\n")], &[], "after outside")?;
    ensure!(repo.file_at(&after, "a.txt")? == b"from a clone\n");
    in_clone(&["pull", "-q", "--ff-only"])?;
    ensure!(in_clone(&["rev-parse", "HEAD^"])? == outside);
    Ok(())
}

#[test]
fn git_over_ssh_clones_with_the_key_and_refuses_another_key() -> Result<()> {
    let server = GitServer::start()?;
    server.create_repo("app", [("README.md", "over ssh\n")])?;
    let work = tempfile::tempdir()?;
    let known_hosts = work.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", server.known_hosts()))?;
    let identity = work.path().join("id");
    std::fs::write(&identity, server.identity()?)?;
    std::fs::set_permissions(
        &identity,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    ensure!(
        server
            .known_hosts()
            .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", server.ssh_port()))
    );
    ensure!(
        server
            .identity()?
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    let ssh = |key: &Path| {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
            key.display(),
            known_hosts.display()
        )
    };

    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(&clone),
    )?;
    ensure!(read(&clone.join("README.md"))? == "over ssh\n");

    // Pushing over ssh works too (git-shell runs receive-pack as the git user).
    std::fs::write(clone.join("ssh.txt"), "pushed\n")?;
    e2e::process::run(git().arg("-C").arg(&clone).args(["add", "ssh.txt"]))?;
    e2e::process::run(git().arg("-C").arg(&clone).args([
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-qm",
        "over ssh",
    ]))?;
    e2e::process::run(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("-C")
            .arg(&clone)
            .args(["push", "-q", "origin", "main"]),
    )?;

    let other = work.path().join("other");
    e2e::process::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    )?;
    let refused = output(
        git()
            .env("GIT_SSH_COMMAND", ssh(&other))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(work.path().join("refused")),
    )?;
    ensure!(
        !refused.status.success(),
        "clone with another key succeeded"
    );
    ensure!(String::from_utf8_lossy(&refused.stderr).contains("Permission denied"));

    // A host key other than the server's is refused too.
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{} {}",
            server.ssh_port(),
            read(&other.with_extension("pub"))?
        ),
    )?;
    let spoofed = output(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(work.path().join("spoofed")),
    )?;
    ensure!(
        !spoofed.status.success(),
        "clone with a wrong known_hosts succeeded"
    );
    Ok(())
}

#[test]
fn git_repo_of_ten_thousand_files_is_created_quickly() -> Result<()> {
    let server = GitServer::start()?;
    let files: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            (
                format!("apps/app-{:03}/cm-{i:05}.yaml", i / 100),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  n: \"{i}\"\n"),
            )
        })
        .collect();
    let started = Instant::now();
    let repo = server.create_repo("big", files)?;
    let took = started.elapsed();
    eprintln!("10,000-file repository: {took:?}");
    let work = tempfile::tempdir()?;
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("big"))
            .arg(work.path().join("c")),
    )?;
    let count = stdout(
        git()
            .arg("-C")
            .arg(work.path().join("c"))
            .args(["ls-files"]),
    )?
    .lines()
    .count();
    ensure!(count == 10_000, "{count} files");
    ensure!(
        repo.file_at("main", "apps/app-099/cm-09999.yaml")?
            .starts_with(b"apiVersion: v1")
    );
    ensure!(took.as_secs() < 20, "creating 10,000 files took {took:?}");
    Ok(())
}
