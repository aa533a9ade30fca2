//! The artifact store: files under `--storage-path` at
//! `<kind>/<namespace>/<name>/<file>`, served over HTTP at
//! `http://<storage-adv-addr>/<path>`.
//!
//! Every file is written to a temporary name in its final directory and renamed
//! into place once complete, so a URL never points at a partial file, not even
//! after a `kill -9` half-way; leftover temporary files are removed by the next
//! garbage collection of that object.

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::Error;
use crate::archive;
use crate::source_ignore::SourceIgnore;

/// Prefix of temporary files; the HTTP server never serves names starting with a dot.
const TEMP_PREFIX: &str = ".tmp-";

/// Where a stored file ended up and what it contains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredFile {
    /// Path relative to the storage root (`gitrepository/ns/name/<sha>.tar.gz`).
    pub path: String,
    /// HTTP address of the file.
    pub url: String,
    /// `<algorithm>:<hex>` of the file's bytes (`sha256` unless `--artifact-digest-algo`).
    pub digest: String,
    /// Size in bytes.
    pub size: i64,
}

impl StoredFile {
    /// The `status.artifact` for this file holding `revision`, updated now.
    pub fn artifact(
        &self,
        revision: &str,
        metadata: Option<std::collections::BTreeMap<String, String>>,
    ) -> api::meta::Artifact {
        api::meta::Artifact {
            url: self.url.clone(),
            path: self.path.clone(),
            revision: revision.to_string(),
            digest: self.digest.clone(),
            last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ),
            size: Some(self.size),
            metadata,
        }
    }
}

/// How long and how many superseded artifacts are kept.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Superseded artifacts older than this are removed.
    pub ttl: Duration,
    /// At most this many artifacts (the current one included) are kept.
    pub records: usize,
}

/// The artifact store on local disk.
#[derive(Clone, Debug)]
pub struct ArtifactStore {
    root: PathBuf,
    base_url: String,
    retention: Retention,
}

impl ArtifactStore {
    /// A store rooted at `root` (created if missing) whose files are served at
    /// `base_url` (`http://host:port`).
    pub fn new(root: &Path, base_url: &str, retention: Retention) -> Result<ArtifactStore, Error> {
        std::fs::create_dir_all(root).map_err(Error::io(format!(
            "creating storage root {}",
            root.display()
        )))?;
        let root = root.canonicalize().map_err(Error::io(format!(
            "resolving storage root {}",
            root.display()
        )))?;
        Ok(ArtifactStore {
            root,
            base_url: base_url.trim_end_matches('/').to_string(),
            retention,
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The relative directory of an object's artifacts: `<lower(kind)>/<namespace>/<name>`.
    pub fn object_dir(kind: &str, namespace: &str, name: &str) -> String {
        format!("{}/{namespace}/{name}", kind.to_lowercase())
    }

    /// The relative path of one of an object's artifact files.
    pub fn artifact_path(kind: &str, namespace: &str, name: &str, file: &str) -> String {
        format!("{}/{file}", Self::object_dir(kind, namespace, name))
    }

    /// The HTTP address of a stored path.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base_url, path.trim_start_matches('/'))
    }

    /// The file behind a relative path; refuses anything that would leave the root.
    pub fn local_path(&self, path: &str) -> Result<PathBuf, Error> {
        let rel = Path::new(path);
        let safe = rel.components().all(|c| matches!(c, Component::Normal(_)));
        if !safe || path.is_empty() {
            return Err(Error::InvalidPath(format!(
                "artifact path '{path}' is not a plain relative path"
            )));
        }
        Ok(self.root.join(rel))
    }

    /// Whether the file behind `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.local_path(path).is_ok_and(|p| p.is_file())
    }

    /// Whether `artifact` is of `revision` and its file is still stored.
    pub fn holds(&self, artifact: Option<&api::meta::Artifact>, revision: &str) -> bool {
        artifact.is_some_and(|a| a.revision == revision && self.exists(&a.path))
    }

    /// Archives `dir` (see [`archive::write_tar_gz`]) into `path`.
    pub async fn archive_dir(
        &self,
        path: &str,
        dir: &Path,
        ignore: SourceIgnore,
        max_size: Option<u64>,
    ) -> Result<StoredFile, Error> {
        let store = self.clone();
        let path = path.to_string();
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            store.write_atomically(&path, |out| {
                archive::write_tar_gz(&dir, &ignore, max_size, out).map(|_| ())
            })
        })
        .await
        .map_err(|e| Error::Io {
            context: "archiving".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Stores `bytes` at `path`.
    pub async fn store_bytes(&self, path: &str, bytes: Vec<u8>) -> Result<StoredFile, Error> {
        let store = self.clone();
        let path = path.to_string();
        tokio::task::spawn_blocking(move || {
            store.write_atomically(&path, |out| {
                out.write_all(&bytes).map_err(Error::io("writing artifact"))
            })
        })
        .await
        .map_err(|e| Error::Io {
            context: "storing".into(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    /// Writes a file through `write` into a temporary file beside `path`,
    /// hashing it on the way, and renames it into place when complete.
    pub fn write_atomically<F>(&self, path: &str, write: F) -> Result<StoredFile, Error>
    where
        F: FnOnce(&mut HashingWriter<std::io::BufWriter<std::fs::File>>) -> Result<(), Error>,
    {
        let target = self.local_path(path)?;
        let dir = target.parent().ok_or_else(|| {
            Error::InvalidPath(format!("artifact path '{path}' has no directory"))
        })?;
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(Error::io(format!(
                "creating a temporary file in {}",
                dir.display()
            )))?;
        let file = temp
            .reopen()
            .map_err(Error::io("opening the temporary file"))?;
        let mut out = HashingWriter::new(std::io::BufWriter::new(file));
        write(&mut out)?;
        let (digest, size, buffered) = out.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io("flushing the artifact")(e.into_error()))?;
        // Content on disk before the name: a crash after the rename must not
        // leave an empty or partial file under the final name.
        file.sync_all().map_err(Error::io("syncing the artifact"))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o600))
                .map_err(Error::io("setting artifact permissions"))?;
        }
        temp.persist(&target)
            .map_err(|e| Error::io(format!("renaming into {}", target.display()))(e.error))?;
        Ok(StoredFile {
            path: path.to_string(),
            url: self.url(path),
            digest,
            size: i64::try_from(size).unwrap_or(i64::MAX),
        })
    }

    /// Points the link `name` beside `target` (a relative path) at it, replacing
    /// any previous link atomically; returns the link's URL.
    pub fn link_latest(&self, target: &str, name: &str) -> Result<String, Error> {
        let target_path = self.local_path(target)?;
        let dir = target_path.parent().ok_or_else(|| {
            Error::InvalidPath(format!("artifact path '{target}' has no directory"))
        })?;
        let file_name = target_path.file_name().ok_or_else(|| {
            Error::InvalidPath(format!("artifact path '{target}' has no file name"))
        })?;
        let temp = dir.join(format!("{TEMP_PREFIX}link-{name}"));
        let _ = std::fs::remove_file(&temp);
        std::os::unix::fs::symlink(file_name, &temp)
            .map_err(Error::io(format!("linking {name}")))?;
        std::fs::rename(&temp, dir.join(name))
            .map_err(Error::io(format!("renaming link {name}")))?;
        let rel_dir = target.rsplit_once('/').map_or("", |(d, _)| d);
        Ok(self.url(&format!("{rel_dir}/{name}")))
    }

    /// After a new artifact was stored: points the link `name` at it and
    /// removes superseded artifacts, both on a best-effort basis (failures
    /// are logged); returns the link's URL when it was updated.
    pub fn publish(&self, stored: &StoredFile, name: &str) -> Option<String> {
        let link = match self.link_latest(&stored.path, name) {
            Ok(link) => Some(link),
            Err(err) => {
                tracing::warn!(path = %stored.path, error = %err, "failed to update the {name} link");
                None
            }
        };
        match self.garbage_collect(&stored.path) {
            Ok(removed) if !removed.is_empty() => {
                tracing::debug!(path = %stored.path, ?removed, "garbage collected old artifacts")
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(path = %stored.path, error = %err, "garbage collection of old artifacts failed")
            }
        }
        link
    }

    /// Removes superseded artifacts of the object owning `current` (a relative
    /// path): those beyond the retention count, those older than the retention
    /// TTL, and leftover temporary files. Returns the removed paths.
    pub fn garbage_collect(&self, current: &str) -> Result<Vec<String>, Error> {
        let current_path = self.local_path(current)?;
        let Some(dir) = current_path.parent() else {
            return Ok(Vec::new());
        };
        let rel_dir = current.rsplit_once('/').map_or("", |(d, _)| d);
        let now = SystemTime::now();
        let mut candidates = Vec::new();
        let mut removed = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()))(e)),
        };
        for entry in entries {
            let entry = entry.map_err(Error::io(format!("listing {}", dir.display())))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = match entry.path().symlink_metadata() {
                Ok(meta) => meta,
                Err(_) => continue,
            };
            // Links (`latest.tar.gz`) point at artifacts; they are not artifacts.
            if !meta.is_file() || entry.path() == current_path {
                continue;
            }
            if name.starts_with(TEMP_PREFIX) {
                // Objects are reconciled one at a time, so a temporary file seen
                // here was left by an interrupted write.
                std::fs::remove_file(entry.path())
                    .map_err(Error::io(format!("removing {name}")))?;
                removed.push(format!("{rel_dir}/{name}"));
                continue;
            }
            let modified = meta.modified().unwrap_or(now);
            candidates.push((modified, name));
        }
        // Newest first; the current artifact takes one of the kept records.
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let keep_others = self.retention.records.saturating_sub(1);
        for (index, (modified, name)) in candidates.into_iter().enumerate() {
            let age = now.duration_since(modified).unwrap_or_default();
            if index >= keep_others || age > self.retention.ttl {
                std::fs::remove_file(dir.join(&name))
                    .map_err(Error::io(format!("removing {name}")))?;
                removed.push(format!("{rel_dir}/{name}"));
            }
        }
        Ok(removed)
    }

    /// Removes every artifact of an object, with its directory.
    pub fn remove_object(&self, kind: &str, namespace: &str, name: &str) -> Result<bool, Error> {
        let dir = self.local_path(&Self::object_dir(kind, namespace, name))?;
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(format!("removing {}", dir.display()))(e)),
        }
    }
}

/// The hex part of an `<algorithm>:<hex>` digest, for file names.
pub fn digest_hex(digest: &str) -> &str {
    digest.split_once(':').map_or(digest, |(_, hex)| hex)
}

/// A writer that hashes (with the canonical digest, `--artifact-digest-algo`)
/// and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: runtime::artifact::DigestHasher,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: runtime::artifact::canonical_digest().hasher(),
            written: 0,
        }
    }

    fn finish(self) -> (String, u64, W) {
        (self.hasher.finish(), self.written, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The base URL artifacts are advertised at: `--storage-adv-addr` if given
/// (used as is when it has a scheme), otherwise the storage listen address with
/// an unspecified host replaced by this machine's hostname.
pub fn advertised_base_url(storage_addr: &str, adv_addr: &str) -> String {
    let addr = if adv_addr.is_empty() {
        let (host, port) = storage_addr.rsplit_once(':').unwrap_or((storage_addr, ""));
        let host = if host.is_empty() || host == "0.0.0.0" || host == "[::]" {
            hostname()
        } else {
            host.to_string()
        };
        if port.is_empty() {
            host
        } else {
            format!("{host}:{port}")
        }
    } else {
        adv_addr.to_string()
    };
    if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{}", addr.trim_end_matches('/'))
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &Path, retention: Retention) -> ArtifactStore {
        ArtifactStore::new(
            &dir.join("data"),
            "http://source-controller.flux-system",
            retention,
        )
        .expect("store")
    }

    fn default_retention() -> Retention {
        Retention {
            ttl: Duration::from_secs(60),
            records: 2,
        }
    }

    #[test]
    fn paths_and_urls() {
        assert_eq!(
            ArtifactStore::artifact_path("GitRepository", "default", "podinfo", "abc.tar.gz"),
            "gitrepository/default/podinfo/abc.tar.gz"
        );
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), default_retention());
        assert_eq!(
            s.url("gitrepository/default/podinfo/abc.tar.gz"),
            "http://source-controller.flux-system/gitrepository/default/podinfo/abc.tar.gz"
        );
        assert!(s.local_path("../etc/passwd").is_err());
        assert!(s.local_path("/etc/passwd").is_err());
        assert!(s.local_path("a/./b").is_ok());
        assert!(s.local_path("a/../../b").is_err());
    }

    #[test]
    fn advertised_address() {
        assert_eq!(
            advertised_base_url(":9090", "source-controller.flux-system.svc.cluster.local."),
            "http://source-controller.flux-system.svc.cluster.local."
        );
        assert_eq!(
            advertised_base_url("127.0.0.1:9090", ""),
            "http://127.0.0.1:9090"
        );
        assert_eq!(
            advertised_base_url(":9090", "https://cdn.example/"),
            "https://cdn.example"
        );
        let derived = advertised_base_url(":9090", "");
        assert!(
            derived.starts_with("http://") && derived.ends_with(":9090"),
            "{derived}"
        );
        assert!(!derived.contains("http://:"), "{derived}");
    }

    #[tokio::test]
    async fn stored_bytes_have_digest_and_size() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), default_retention());
        let stored = s
            .store_bytes("helmrepository/ns/repo/index-x.yaml", b"hello".to_vec())
            .await
            .expect("store");
        assert_eq!(
            stored.digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(stored.size, 5);
        assert!(s.exists(&stored.path));
        let names: Vec<_> = std::fs::read_dir(s.root().join("helmrepository/ns/repo"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["index-x.yaml"], "no temporary file is left behind");
    }

    #[test]
    fn failed_write_leaves_nothing_behind_the_name() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), default_retention());
        let result = s.write_atomically("gitrepository/ns/a/x.tar.gz", |out| {
            out.write_all(b"partial").map_err(Error::io("w"))?;
            Err(Error::SizeLimit { limit: 1 })
        });
        assert!(result.is_err());
        assert!(!s.exists("gitrepository/ns/a/x.tar.gz"));
        let leftovers = std::fs::read_dir(s.root().join("gitrepository/ns/a"))
            .unwrap()
            .count();
        assert_eq!(leftovers, 0);
    }

    #[tokio::test]
    async fn archive_digest_matches_file() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("deploy")).unwrap();
        std::fs::write(src.join("deploy/app.yaml"), "kind: ConfigMap\n").unwrap();
        let s = store(tmp.path(), default_retention());
        let stored = s
            .archive_dir(
                "gitrepository/ns/app/abc.tar.gz",
                &src,
                SourceIgnore::defaults(),
                None,
            )
            .await
            .expect("archive");
        let bytes = std::fs::read(s.local_path(&stored.path).unwrap()).unwrap();
        assert_eq!(stored.size as usize, bytes.len());
        assert_eq!(stored.digest, runtime::artifact::sha256_digest(&bytes));
    }

    #[tokio::test]
    async fn archive_round_trips_through_the_consumer_side_untar() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("apps/base")).unwrap();
        std::fs::write(src.join("apps/base/kustomization.yaml"), "resources: []\n").unwrap();
        std::fs::write(src.join("README.md"), "hello\n").unwrap();
        let s = store(tmp.path(), default_retention());
        let stored = s
            .archive_dir(
                "gitrepository/ns/app/abc.tar.gz",
                &src,
                SourceIgnore::defaults(),
                None,
            )
            .await
            .expect("archive");
        let bytes = std::fs::read(s.local_path(&stored.path).unwrap()).unwrap();
        runtime::artifact::verify_digest(&bytes, &stored.digest).expect("digest");
        let out = tmp.path().join("out");
        runtime::artifact::untar_gz(&bytes[..], &out, runtime::artifact::UntarOptions::default())
            .expect("untar");
        assert_eq!(
            std::fs::read_to_string(out.join("apps/base/kustomization.yaml")).unwrap(),
            "resources: []\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("README.md")).unwrap(),
            "hello\n"
        );
    }

    #[test]
    fn garbage_collection_keeps_current_and_recent() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), default_retention());
        let dir = s.root().join("gitrepository/ns/app");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, name) in ["a.tar.gz", "b.tar.gz", "c.tar.gz", "d.tar.gz"]
            .iter()
            .enumerate()
        {
            let path = dir.join(name);
            std::fs::write(&path, name).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(10 * (4 - i as u64)))
                .unwrap();
        }
        std::fs::write(dir.join(".tmp-abandoned"), "half").unwrap();
        std::os::unix::fs::symlink("d.tar.gz", dir.join("latest.tar.gz")).unwrap();
        let mut removed = s.garbage_collect("gitrepository/ns/app/d.tar.gz").unwrap();
        removed.sort();
        assert_eq!(
            removed,
            [
                "gitrepository/ns/app/.tmp-abandoned",
                "gitrepository/ns/app/a.tar.gz",
                "gitrepository/ns/app/b.tar.gz"
            ]
        );
        assert!(dir.join("c.tar.gz").exists() && dir.join("d.tar.gz").exists());
        assert!(dir.join("latest.tar.gz").symlink_metadata().is_ok());
    }

    #[test]
    fn garbage_collection_honours_ttl() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(
            tmp.path(),
            Retention {
                ttl: Duration::from_secs(5),
                records: 10,
            },
        );
        let dir = s.root().join("ocirepository/ns/app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("old.tar.gz"), "o").unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.join("old.tar.gz"))
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(60))
            .unwrap();
        std::fs::write(dir.join("new.tar.gz"), "n").unwrap();
        std::fs::write(dir.join("cur.tar.gz"), "c").unwrap();
        let removed = s
            .garbage_collect("ocirepository/ns/app/cur.tar.gz")
            .unwrap();
        assert_eq!(removed, ["ocirepository/ns/app/old.tar.gz"]);
    }

    #[test]
    fn remove_object_removes_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), default_retention());
        let dir = s.root().join("gitrepository/ns/app");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("x.tar.gz"), "x").unwrap();
        assert!(s.remove_object("GitRepository", "ns", "app").unwrap());
        assert!(!dir.exists());
        assert!(s.root().join("gitrepository/ns").exists());
        assert!(!s.remove_object("GitRepository", "ns", "app").unwrap());
    }
}
