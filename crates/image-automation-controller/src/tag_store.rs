//! [`TagStore`]: the scanned tags of each ImageRepository, kept on disk in
//! the layout of Flux's filesystem tag storage, so they survive restarts
//! and a controller never rescans just because it restarted:
//! `<root>/imagerepository/<namespace>/<name>/tags.txt`, one tag per line
//! (gzip-compressed as `tags.txt.gz` from a size threshold on). Each list is
//! written to a temporary file, synced and renamed over the old one: a
//! reader sees the old list or the new one, never a part.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

const PLAIN: &str = "tags.txt";
const GZIP: &str = "tags.txt.gz";
const VERSION_FILE: &str = ".storage-version";
/// Flux's version of the filesystem storage layout.
const LAYOUT_VERSION: &str = "2";

/// The on-disk tag lists.
#[derive(Clone, Debug)]
pub struct TagStore {
    root: PathBuf,
    compression_threshold: usize,
}

impl TagStore {
    /// Opens (creating) the store at `root`; lists of `compression_threshold`
    /// bytes or more are compressed.
    pub fn open(root: &Path, compression_threshold: usize) -> std::io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let version = root.join(VERSION_FILE);
        if std::fs::read_to_string(&version)
            .map(|v| v.trim().to_string())
            .ok()
            .as_deref()
            != Some(LAYOUT_VERSION)
        {
            write_atomic(root, VERSION_FILE, format!("{LAYOUT_VERSION}\n").as_bytes())?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            compression_threshold,
        })
    }

    fn dir(&self, namespace: &str, name: &str) -> std::io::Result<PathBuf> {
        // Object names never hold these; a path must never leave the store.
        for part in [namespace, name] {
            if part.is_empty() || part.contains(['/', '\\']) || part == "." || part == ".." {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("invalid object name '{part}' for the tag store"),
                ));
            }
        }
        Ok(self.root.join("imagerepository").join(namespace).join(name))
    }

    /// Replaces the tags of `namespace/name`; returns the list's revision,
    /// `sha256:<hex>` of the stored lines.
    pub fn set_tags(
        &self,
        namespace: &str,
        name: &str,
        tags: &[String],
    ) -> std::io::Result<String> {
        let dir = self.dir(namespace, name)?;
        std::fs::create_dir_all(&dir)?;
        let mut lines = Vec::with_capacity(tags.iter().map(|t| t.len() + 1).sum());
        for tag in tags {
            lines.extend_from_slice(tag.as_bytes());
            lines.push(b'\n');
        }
        let revision = format!("sha256:{}", hex::encode(Sha256::digest(&lines)));
        let (file, stale) = if lines.len() >= self.compression_threshold {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
            encoder.write_all(&lines)?;
            write_atomic(&dir, GZIP, &encoder.finish()?)?;
            (GZIP, PLAIN)
        } else {
            write_atomic(&dir, PLAIN, &lines)?;
            (PLAIN, GZIP)
        };
        remove_if_present(&dir.join(stale))?;
        tracing::debug!(namespace, name, file, count = tags.len(), "stored tags");
        Ok(revision)
    }

    /// The stored tags of `namespace/name`; empty when none were stored.
    pub fn tags(&self, namespace: &str, name: &str) -> std::io::Result<Vec<String>> {
        let dir = self.dir(namespace, name)?;
        let text = match std::fs::read(dir.join(PLAIN)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match std::fs::File::open(dir.join(GZIP)) {
                    Ok(file) => {
                        let mut bytes = Vec::new();
                        GzDecoder::new(file).read_to_end(&mut bytes)?;
                        bytes
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => return Err(e),
        };
        let text = String::from_utf8(text)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Forgets the tags of `namespace/name`.
    pub fn delete(&self, namespace: &str, name: &str) -> std::io::Result<()> {
        let dir = self.dir(namespace, name)?;
        match std::fs::remove_dir_all(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Writes `content` to `dir/file` through a synced temporary file renamed
/// over it, then syncs the directory so the rename survives a crash.
fn write_atomic(dir: &Path, file: &str, content: &[u8]) -> std::io::Result<()> {
    let mut temporary = tempfile::Builder::new()
        .prefix(&format!(".{file}-"))
        .tempfile_in(dir)?;
    temporary.write_all(content)?;
    temporary.as_file().sync_all()?;
    temporary.persist(dir.join(file)).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("1.0.{i}")).collect()
    }

    #[test]
    fn lists_survive_a_reopen_with_flux_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path(), 64 * 1024).unwrap();
        assert!(store.tags("default", "app").unwrap().is_empty());
        let revision = store
            .set_tags("default", "app", &["b".into(), "a".into()])
            .unwrap();
        // sha256 of "b\na\n".
        assert_eq!(
            revision,
            format!("sha256:{}", hex::encode(Sha256::digest(b"b\na\n")))
        );
        let reopened = TagStore::open(dir.path(), 64 * 1024).unwrap();
        assert_eq!(reopened.tags("default", "app").unwrap(), ["b", "a"]);
        assert!(
            dir.path()
                .join("imagerepository/default/app/tags.txt")
                .is_file()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".storage-version")).unwrap(),
            "2\n"
        );
    }

    #[test]
    fn large_lists_are_compressed_and_the_other_variant_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path(), 1024).unwrap();
        let many = tags(10_000);
        let revision = store.set_tags("ns", "big", &many).unwrap();
        let base = dir.path().join("imagerepository/ns/big");
        assert!(base.join(GZIP).is_file());
        assert!(!base.join(PLAIN).exists());
        assert_eq!(store.tags("ns", "big").unwrap(), many);
        // Shrinking goes back to plain text; the revision depends on the tags only.
        let small = store.set_tags("ns", "big", &tags(3)).unwrap();
        assert!(base.join(PLAIN).is_file() && !base.join(GZIP).exists());
        assert_ne!(small, revision);
        assert_eq!(store.set_tags("ns", "big", &many).unwrap(), revision);
        store.delete("ns", "big").unwrap();
        assert!(store.tags("ns", "big").unwrap().is_empty());
    }

    #[test]
    fn names_cannot_leave_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = TagStore::open(dir.path(), 1024).unwrap();
        assert!(store.set_tags("..", "x", &[]).is_err());
        assert!(store.tags("a/b", "x").is_err());
    }
}
