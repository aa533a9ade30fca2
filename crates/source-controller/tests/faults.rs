//! Faults end to end: `kill -9` of the real source-controller binary while it
//! writes a large artifact. Whatever the moment, every file a URL can point
//! at is complete (its sha256 is the announced digest), temporary files are
//! never served, and after a restart the object converges to Ready with a
//! valid artifact.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use api::source::GitRepository;
use fixture::{Env, condition, download, git_server};
use serde_json::json;

/// Generous: a debug build archives several MiB on a loaded CI machine.
const WAIT: Duration = Duration::from_secs(120);
/// Kill rounds; each kills at a different point of the write.
const ROUNDS: u64 = 5;

/// `len` bytes gzip cannot shrink (xorshift64), so the archive is as large as
/// the tree and takes a while to write.
fn incompressible(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Waits until Ready=True with the artifact of `revision`; returns the object.
async fn ready_at(env: &Env, name: &str, revision: &str) -> Result<GitRepository> {
    env.wait_for::<GitRepository, _>(name, WAIT, |repo| {
        let status = repo.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "True" && status.artifact.as_ref()?.revision == revision)
            .then(|| repo.clone())
    })
    .await
}

/// Regular files under `dir` whose name marks them temporary (`.tmp-…`).
fn temp_files(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(".tmp-"))
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
        .map(|entry| entry.path())
        .collect()
}

/// Polls until a temporary file not in `before` appears under `dir`, or the
/// object already shows `revision` (the write finished between two polls).
async fn new_temp_file(
    env: &Env,
    name: &str,
    revision: &str,
    dir: &Path,
    before: &BTreeSet<PathBuf>,
) -> Result<Option<PathBuf>> {
    let deadline = Instant::now() + WAIT;
    let mut polls = 0u32;
    while Instant::now() < deadline {
        if let Some(path) = temp_files(dir).into_iter().find(|p| !before.contains(p)) {
            return Ok(Some(path));
        }
        polls += 1;
        if polls.is_multiple_of(50) {
            let obj = env.api::<GitRepository>().get(name).await?;
            let current = obj.status.and_then(|s| s.artifact).map(|a| a.revision);
            if current.as_deref() == Some(revision) {
                return Ok(None);
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(None)
}

fn sha256_of(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(runtime::artifact::sha256_digest(&bytes))
}

/// Reads a gzipped tar to its end: fails on a truncated or corrupt archive.
fn complete_tar_gz(path: &Path) -> Result<()> {
    let file = std::fs::File::open(path)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        std::io::copy(&mut entry, &mut std::io::sink())?;
    }
    // Anything after the tar's end-of-archive blocks must still decompress.
    let mut rest = Vec::new();
    archive.into_inner().read_to_end(&mut rest)?;
    Ok(())
}

/// With the controller dead: the artifact in the object's status is on disk
/// whole (digest and size as announced), the `latest.tar.gz` link resolves to
/// a complete archive, and every servable file of the object is a complete
/// archive. Returns the temporary files left behind.
async fn check_store(env: &Env, name: &str, dir: &Path) -> Result<BTreeSet<PathBuf>> {
    let obj = env.api::<GitRepository>().get(name).await?;
    if let Some(artifact) = obj.status.as_ref().and_then(|s| s.artifact.as_ref()) {
        let file = env.controller.storage_root().join(&artifact.path);
        ensure!(
            sha256_of(&file)? == artifact.digest,
            "{} does not match the digest in the status",
            artifact.path
        );
        ensure!(Some(std::fs::metadata(&file)?.len() as i64) == artifact.size);
    }
    let latest = dir.join("latest.tar.gz");
    if latest.symlink_metadata().is_ok() {
        complete_tar_gz(&latest).context("latest.tar.gz")?;
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with('.') && entry.file_type()?.is_file() {
            complete_tar_gz(&entry.path()).with_context(|| format!("{file_name} is incomplete"))?;
        }
    }
    Ok(temp_files(dir))
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_during_artifact_write_never_exposes_a_partial_file() -> Result<()> {
    let mut env = Env::start("faults-kill", &[]).await?;
    let git = git_server().await?;
    // 8 MiB that compression cannot shrink.
    let files: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| (format!("blobs/{i:02}.bin"), incompressible(i, 128 * 1024)))
        .collect();
    let repo = git.create_repo(&format!("{}-big", env.ns()), files)?;
    let head = repo.head("main")?;
    env.create::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "big"},
        "spec": {"url": git.http_anonymous_url(repo.name()), "interval": "1h", "ref": {"branch": "main"}},
    }))
    .await?;
    ready_at(&env, "big", &format!("main@sha1:{head}")).await?;
    let dir = env
        .controller
        .storage_root()
        .join(format!("gitrepository/{}/big", env.ns()));

    let mut interrupted = 0;
    for round in 0..ROUNDS {
        // New content, so the next reconcile writes a new archive.
        let sha = repo.commit(
            [("blobs/round.bin", incompressible(1000 + round, 512 * 1024))],
            &[],
            &format!("round {round}"),
        )?;
        let before = temp_files(&dir);
        env.request_reconcile::<GitRepository>("big").await?;
        // Kill once the write has begun, at a different point each round.
        let revision = format!("main@sha1:{sha}");
        if new_temp_file(&env, "big", &revision, &dir, &before)
            .await?
            .is_some()
        {
            tokio::time::sleep(Duration::from_millis(round * 30)).await;
        }
        env.controller.kill();
        let left = check_store(&env, "big", &dir).await?;
        if !left.is_empty() {
            interrupted += 1;
        }

        env.controller.restart()?;
        // A leftover temporary file is never served, even while it exists.
        for temp in &left {
            let file_name = temp.file_name().context("file name")?.to_string_lossy();
            let url = format!(
                "http://127.0.0.1:{}/gitrepository/{}/big/{file_name}",
                env.controller.storage_port,
                env.ns()
            );
            let response = reqwest::get(&url).await?;
            ensure!(
                response.status() == reqwest::StatusCode::NOT_FOUND,
                "{url} answered {}",
                response.status()
            );
        }
        // The restarted controller finishes the job: Ready, artifact whole over HTTP.
        let obj = ready_at(&env, "big", &revision).await?;
        let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
        let bytes = download(&artifact.url).await?;
        ensure!(
            runtime::artifact::sha256_digest(&bytes) == artifact.digest,
            "round {round}: served artifact does not match its digest"
        );
        ensure!(
            temp_files(&dir).is_empty(),
            "round {round}: leftover temporary files were not collected: {:?}",
            temp_files(&dir)
        );
    }
    if interrupted < 2 {
        bail!(
            "only {interrupted} of {ROUNDS} kills landed inside an artifact write; the test did not exercise the fault"
        );
    }
    Ok(())
}
