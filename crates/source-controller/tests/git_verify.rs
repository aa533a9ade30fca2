//! GitRepository `spec.verify` end to end: keys made and commits and tags
//! signed by the real `gpg`, pushed to the harness Git server, verified by the
//! real source-controller binary against the real control plane.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use api::source::{GitRepository, GitVerificationMode};
use fixture::{Env, condition, download, git_server};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

/// A private gpg home with generated keys; its agent is stopped on drop.
struct Gpg {
    home: tempfile::TempDir,
}

/// One generated key pair.
struct Key {
    fingerprint: String,
    /// The 16-hex-digit primary key id, as Flux names keys.
    id: String,
    /// `gpg --export --armor` of the public key.
    armored: String,
}

impl Gpg {
    fn new() -> Result<Gpg> {
        e2e::packages::ensure_debian_packages()?;
        // Short path: gpg-agent's socket lives in the home directory.
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .context("creating a gpg home")?;
        std::fs::set_permissions(
            home.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        Ok(Gpg { home })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("gpg");
        cmd.env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty", "--quiet"]);
        cmd
    }

    /// An ed25519 signing key without passphrase for `uid`.
    fn generate(&self, uid: &str) -> Result<Key> {
        run(self.command().args([
            "--passphrase",
            "",
            "--pinentry-mode",
            "loopback",
            "--quick-generate-key",
            uid,
            "ed25519",
            "sign",
            "never",
        ]))?;
        let listing = run(self.command().args(["--with-colons", "--list-keys", uid]))?;
        let mut id = None;
        let mut fingerprint = None;
        for line in listing.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            match fields.first() {
                Some(&"pub") if id.is_none() => id = fields.get(4).map(|s| s.to_string()),
                Some(&"fpr") if fingerprint.is_none() => {
                    fingerprint = fields.get(9).map(|s| s.to_string())
                }
                _ => {}
            }
        }
        let (Some(id), Some(fingerprint)) = (id, fingerprint) else {
            bail!("no key listed for {uid}:\n{listing}");
        };
        let armored = run(self.command().args(["--armor", "--export", &fingerprint]))?;
        Ok(Key {
            fingerprint,
            id,
            armored,
        })
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

/// A working clone of a harness repository that signs with the gpg home.
struct Work {
    dir: tempfile::TempDir,
    gnupg_home: PathBuf,
}

impl Work {
    fn clone(url: &str, gpg: &Gpg) -> Result<Work> {
        let dir = tempfile::tempdir().context("creating a working clone")?;
        let work = Work {
            dir,
            gnupg_home: gpg.home.path().to_path_buf(),
        };
        work.git(&["clone", "--quiet", url, "."])?;
        Ok(work)
    }

    fn git(&self, args: &[&str]) -> Result<String> {
        run(Command::new("git")
            .args(args)
            .current_dir(self.dir.path())
            .env("HOME", self.dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GNUPGHOME", &self.gnupg_home)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com"))
    }

    /// Commits `file` on main, signed by `key` (or not), pushes it, and
    /// returns the commit id.
    fn commit(&self, file: &str, content: &str, key: Option<&Key>) -> Result<String> {
        let path = self.dir.path().join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content)?;
        self.git(&["add", file])?;
        let sign = key.map(|k| format!("--gpg-sign={}", k.fingerprint));
        let mut args = vec!["commit", "--quiet", "--message", file];
        match &sign {
            Some(sign) => args.push(sign),
            None => args.push("--no-gpg-sign"),
        }
        self.git(&args)?;
        self.git(&["push", "--quiet", "origin", "HEAD:refs/heads/main"])?;
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// Commits `file` on main signed with the SSH key at `key` (Git's
    /// `gpg.format=ssh`), pushes it, and returns the commit id.
    fn commit_ssh(&self, file: &str, content: &str, key: &Path) -> Result<String> {
        std::fs::write(self.dir.path().join(file), content)?;
        self.git(&["add", file])?;
        let signing_key = format!("user.signingkey={}", key.display());
        self.git(&[
            "-c",
            "gpg.format=ssh",
            "-c",
            &signing_key,
            "commit",
            "--quiet",
            "-S",
            "--message",
            file,
        ])?;
        self.git(&["push", "--quiet", "origin", "HEAD:refs/heads/main"])?;
        Ok(self.git(&["rev-parse", "HEAD"])?.trim().to_string())
    }

    /// Creates the annotated tag `name` at HEAD, signed by `key` (or not),
    /// pushes it, and returns the id of the tag object.
    fn tag(&self, name: &str, key: Option<&Key>) -> Result<String> {
        let mut args = vec!["tag", "--message", name];
        match key {
            Some(key) => args.extend(["--local-user", &key.fingerprint, "--sign"]),
            None => args.push("--annotate"),
        }
        args.push(name);
        self.git(&args)?;
        self.git(&["push", "--quiet", "origin", &format!("refs/tags/{name}")])?;
        Ok(self.git(&["rev-parse", name])?.trim().to_string())
    }
}

fn run(cmd: &mut Command) -> Result<String> {
    let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !output.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn git_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A repository on the harness server with a working clone that signs;
/// returns its URL for the GitRepository and the clone.
async fn repository(env: &Env, gpg: &Gpg, suffix: &str) -> Result<(String, Work)> {
    let git = git_server().await?;
    let name = format!("{}-{suffix}", env.ns());
    git.create_empty_repo(&name)?;
    let work = Work::clone(&git.http_url_with_credentials(&name), gpg)?;
    Ok((git.http_url(&name), work))
}

/// Waits until `SourceVerified` has exactly `status`, `reason` and `message`,
/// and `Ready` agrees: True at the current generation after a verification,
/// False with the same reason and message after a failure. Returns the object.
async fn verified_state(
    env: &Env,
    name: &str,
    status: &str,
    reason: &str,
    message: &str,
) -> Result<GitRepository> {
    env.wait_for::<GitRepository, _>(name, WAIT, |repo| {
        let observed = repo.status.as_ref()?;
        let verified = condition(observed.conditions.as_ref(), "SourceVerified")?;
        let ready = condition(observed.conditions.as_ref(), "Ready")?;
        let verified_matches =
            verified.status == status && verified.reason == reason && verified.message == message;
        let ready_matches = if status == "True" {
            ready.status == "True" && observed.observed_generation == repo.metadata.generation
        } else {
            ready.status == "False" && ready.reason == reason && ready.message == message
        };
        (verified_matches && ready_matches).then(|| repo.clone())
    })
    .await
}

fn head_message(commit: &str, key: &Key) -> String {
    format!(
        "verified signature of\n\t- commit '{commit}' with key '{}'",
        key.id
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn head_mode_verifies_signed_commits_and_keeps_the_last_good_artifact() -> Result<()> {
    let env = Env::start("git-verify-head", &[]).await?;
    let git = git_server().await?;
    let gpg = Gpg::new()?;
    let trusted = gpg.generate("Trusted <trusted@example.com>")?;
    let stranger = gpg.generate("Stranger <stranger@example.com>")?;
    ensure!(trusted.id.len() == 16 && trusted.id != stranger.id);
    env.secret(
        "git-auth",
        &[("username", git.username()), ("password", git.password())],
    )
    .await?;
    env.secret("pgp-keys", &[("author.asc", &trusted.armored)])
        .await?;
    let (url, work) = repository(&env, &gpg, "head").await?;
    let signed = work.commit("deploy/app.yaml", "kind: ConfigMap\n", Some(&trusted))?;

    let spec = |mode: &str, secret: &str| {
        json!({
            "url": url, "interval": "1h", "ref": {"branch": "main"},
            "secretRef": {"name": "git-auth"},
            "verify": {"mode": mode, "secretRef": {"name": secret}},
        })
    };
    env.create::<GitRepository>(git_repository("signed", spec("HEAD", "pgp-keys")))
        .await?;
    env.create::<GitRepository>(git_repository("legacy", spec("head", "pgp-keys")))
        .await?;
    env.create::<GitRepository>(git_repository("no-keys", spec("HEAD", "missing")))
        .await?;

    // A commit signed by a trusted key: verified, named by its key, stored.
    let obj = verified_state(
        &env,
        "signed",
        "True",
        "Succeeded",
        &head_message(&signed, &trusted),
    )
    .await?;
    let status = obj.status.context("status")?;
    ensure!(status.source_verification_mode == Some(GitVerificationMode::Head));
    let good = status.artifact.context("artifact")?;
    ensure!(good.revision == format!("main@sha1:{signed}"), "{good:?}");
    // `head` is the old spelling of HEAD, and recorded as HEAD.
    let legacy = verified_state(
        &env,
        "legacy",
        "True",
        "Succeeded",
        &head_message(&signed, &trusted),
    )
    .await?;
    ensure!(
        legacy.status.and_then(|s| s.source_verification_mode) == Some(GitVerificationMode::Head)
    );

    // No Secret with the keys: nothing is stored.
    let obj = verified_state(
        &env,
        "no-keys",
        "False",
        "VerificationError",
        "public keys secret error: secrets \"missing\" not found",
    )
    .await?;
    ensure!(obj.status.and_then(|s| s.artifact).is_none());

    // An unsigned commit: refused, the verified artifact stays.
    let unsigned = work.commit("deploy/unsigned.yaml", "kind: Namespace\n", None)?;
    env.request_reconcile::<GitRepository>("signed").await?;
    let obj = verified_state(
        &env,
        "signed",
        "False",
        "InvalidCommitSignature",
        &format!(
            "signature verification of commit '{unsigned}' failed: unsupported signature type: empty"
        ),
    )
    .await?;
    let kept = obj
        .status
        .and_then(|s| s.artifact)
        .context("artifact kept")?;
    ensure!(kept == good, "artifact changed: {kept:?}");
    ensure!(
        runtime::artifact::sha256_digest(&download(&kept.url).await?) == kept.digest,
        "the last good artifact is no longer served"
    );

    // Signed, but by a key that is not trusted: refused, naming the key.
    let foreign = work.commit("deploy/foreign.yaml", "kind: Secret\n", Some(&stranger))?;
    env.request_reconcile::<GitRepository>("signed").await?;
    let obj = verified_state(
        &env,
        "signed",
        "False",
        "InvalidCommitSignature",
        &format!(
            "signature verification of commit '{foreign}' failed: unable to verify Git commit: \
             unable to verify payload with any of the given key rings (signed with key '{}')",
            stranger.id
        ),
    )
    .await?;
    ensure!(obj.status.and_then(|s| s.artifact) == Some(good));

    // Trusting the stranger's key too lets the same commit through.
    env.secret(
        "pgp-keys",
        &[
            ("author.asc", &trusted.armored),
            ("stranger.asc", &stranger.armored),
        ],
    )
    .await?;
    env.request_reconcile::<GitRepository>("signed").await?;
    let obj = verified_state(
        &env,
        "signed",
        "True",
        "Succeeded",
        &head_message(&foreign, &stranger),
    )
    .await?;
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    ensure!(
        artifact.revision == format!("main@sha1:{foreign}"),
        "{artifact:?}"
    );
    Ok(())
}

/// SSH-signed commits (`gpg.format=ssh`): verified with the `*.sshpub` keys
/// of the Secret, naming the key by its SHA-256 fingerprint; refused when the
/// Secret holds only PGP keys or another SSH key.
#[tokio::test(flavor = "multi_thread")]
async fn ssh_signed_commits_verify_against_sshpub_keys() -> Result<()> {
    let env = Env::start("git-verify-ssh", &[]).await?;
    let git = git_server().await?;
    let gpg = Gpg::new()?;
    let pgp = gpg.generate("Release <release@example.com>")?;
    let keys = tempfile::tempdir()?;
    let mut fingerprints = Vec::new();
    for name in ["trusted", "stranger"] {
        let path = keys.path().join(name);
        run(Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
            .arg(&path))?;
        let listed = run(Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(path.with_extension("pub")))?;
        let fingerprint = listed.split_whitespace().nth(1).context("fingerprint")?;
        fingerprints.push(fingerprint.to_string());
    }
    let public = |name: &str| std::fs::read_to_string(keys.path().join(format!("{name}.pub")));
    env.secret(
        "git-auth",
        &[("username", git.username()), ("password", git.password())],
    )
    .await?;
    let trusted_pub = public("trusted")?;
    let stranger_pub = public("stranger")?;
    env.secret("ssh-keys", &[("author.sshpub", &trusted_pub)])
        .await?;
    env.secret("stranger-keys", &[("other.sshpub", &stranger_pub)])
        .await?;
    env.secret("pgp-only", &[("release.asc", &pgp.armored)])
        .await?;
    let (url, work) = repository(&env, &gpg, "ssh").await?;
    let commit = work.commit_ssh(
        "app.yaml",
        "kind: ConfigMap\n",
        &keys.path().join("trusted"),
    )?;
    let spec = |keys: &str| {
        json!({
            "url": url, "interval": "1h", "ref": {"branch": "main"},
            "secretRef": {"name": "git-auth"},
            "verify": {"mode": "HEAD", "secretRef": {"name": keys}},
        })
    };
    for (name, keys) in [
        ("trusted", "ssh-keys"),
        ("stranger", "stranger-keys"),
        ("pgp", "pgp-only"),
    ] {
        env.create::<GitRepository>(git_repository(name, spec(keys)))
            .await?;
    }
    let trusted = verified_state(
        &env,
        "trusted",
        "True",
        "Succeeded",
        &format!(
            "verified signature of\n\t- commit '{commit}' with key '{}'",
            fingerprints[0]
        ),
    )
    .await?;
    let fingerprint = trusted
        .status
        .and_then(|s| s.source_verification_fingerprint)
        .context("sourceVerificationFingerprint")?;
    ensure!(fingerprint.starts_with("sha256:"), "{fingerprint}");
    verified_state(
        &env,
        "stranger",
        "False",
        "InvalidCommitSignature",
        &format!(
            "signature verification of commit '{commit}' failed: unable to verify Git commit SSH \
             signature: unable to verify payload with any of the given authorized keys: no matching key"
        ),
    )
    .await?;
    verified_state(
        &env,
        "pgp",
        "False",
        "InvalidCommitSignature",
        &format!(
            "signature verification of commit '{commit}' failed: SSH signature detected but no SSH \
             public keys found in secret (keys with .sshpub suffix)"
        ),
    )
    .await?;

    // A key rotation: the same revision is verified again, and now refused.
    env.secret("ssh-keys", &[("author.sshpub", &stranger_pub)])
        .await?;
    env.request_reconcile::<GitRepository>("trusted").await?;
    verified_state(
        &env,
        "trusted",
        "False",
        "InvalidCommitSignature",
        &format!(
            "signature verification of commit '{commit}' failed: unable to verify Git commit SSH \
             signature: unable to verify payload with any of the given authorized keys: no matching key"
        ),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_modes_verify_the_annotated_tag() -> Result<()> {
    let env = Env::start("git-verify-tag", &[]).await?;
    let git = git_server().await?;
    let gpg = Gpg::new()?;
    let key = gpg.generate("Release <release@example.com>")?;
    env.secret(
        "git-auth",
        &[("username", git.username()), ("password", git.password())],
    )
    .await?;
    env.secret("pgp-keys", &[("release.asc", &key.armored)])
        .await?;
    let (url, work) = repository(&env, &gpg, "tag").await?;
    let commit = work.commit("deploy/app.yaml", "kind: ConfigMap\n", Some(&key))?;
    let signed_tag = work.tag("v1.0.0", Some(&key))?;
    let unsigned_tag = work.tag("v0.9.0", None)?;
    ensure!(signed_tag != commit && unsigned_tag != commit);

    let spec = |mode: &str, reference: serde_json::Value| {
        json!({
            "url": url, "interval": "1h", "ref": reference,
            "secretRef": {"name": "git-auth"},
            "verify": {"mode": mode, "secretRef": {"name": "pgp-keys"}},
        })
    };
    env.create::<GitRepository>(git_repository("tag", spec("Tag", json!({"tag": "v1.0.0"}))))
        .await?;
    env.create::<GitRepository>(git_repository(
        "both",
        spec("TagAndHEAD", json!({"semver": ">=1.0.0"})),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "branch",
        spec("Tag", json!({"branch": "main"})),
    ))
    .await?;
    env.create::<GitRepository>(git_repository(
        "unsigned-tag",
        spec("Tag", json!({"tag": "v0.9.0"})),
    ))
    .await?;

    let tag_line = format!("tag 'v1.0.0@{signed_tag}' with key '{}'", key.id);
    let obj = verified_state(
        &env,
        "tag",
        "True",
        "Succeeded",
        &format!("verified signature of\n\t- {tag_line}"),
    )
    .await?;
    let status = obj.status.context("status")?;
    ensure!(status.source_verification_mode == Some(GitVerificationMode::Tag));
    ensure!(
        status.artifact.map(|a| a.revision) == Some(format!("v1.0.0@sha1:{commit}")),
        "artifact of the tag"
    );

    let obj = verified_state(
        &env,
        "both",
        "True",
        "Succeeded",
        &format!(
            "verified signature of\n\t- {tag_line}\n\t- commit '{commit}' with key '{}'",
            key.id
        ),
    )
    .await?;
    ensure!(
        obj.status.and_then(|s| s.source_verification_mode)
            == Some(GitVerificationMode::TagAndHEAD)
    );

    // A branch has no tag object to verify: stalled until the spec changes.
    let obj = verified_state(
        &env,
        "branch",
        "False",
        "InvalidVerificationMode",
        "cannot verify tag object's signature if a tag reference is not specified",
    )
    .await?;
    let status = obj.status.context("status")?;
    ensure!(
        condition(status.conditions.as_ref(), "Stalled").is_some_and(|c| c.status == "True"),
        "{:?}",
        status.conditions
    );
    ensure!(status.artifact.is_none());

    verified_state(
        &env,
        "unsigned-tag",
        "False",
        "InvalidGitObject",
        &format!("cannot verify signature of tag 'v0.9.0@{unsigned_tag}' since it is not signed"),
    )
    .await?;
    Ok(())
}
