//! Downloading a source artifact and unpacking it safely: what every consumer
//! of `status.artifact` (kustomize-controller, helm-controller, ...) does.
//!
//! The download streams to a temporary file with a size cap and is accepted
//! only when its digest equals the `status.artifact.digest` it was announced
//! with. Unpacking follows Flux's hardening rules: gzip'd tar only; names that
//! are empty, absolute, contain `\` or a `..` component are refused; links,
//! devices and other special entries are refused (symlinks may be skipped
//! instead); and the unpacked size is capped.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use sha2::Digest;

/// Default cap on a downloaded artifact (the compressed file).
pub const DEFAULT_MAX_DOWNLOAD_SIZE: u64 = 512 * 1024 * 1024;
/// Default cap on the unpacked size of an artifact (Flux's `DefaultMaxUntarSize`).
pub const DEFAULT_MAX_UNTAR_SIZE: u64 = 100 * 1024 * 1024;

/// Why an artifact could not be fetched or unpacked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP request failed or returned an error status.
    #[error("failed to download artifact from {url}: {message}")]
    Download {
        /// The artifact URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The server answered with a status that retrying will not change (404 for
    /// an artifact that was garbage-collected, 403, ...).
    #[error("failed to download artifact from {url}: HTTP status {status}")]
    Status {
        /// The artifact URL.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The digest announced for the artifact is malformed or uses an unknown algorithm.
    #[error("unsupported artifact digest '{0}'")]
    UnsupportedDigest(String),
    /// The downloaded bytes do not match the announced digest.
    #[error(
        "failed to verify artifact: computed digest {actual} doesn't match expected {expected}"
    )]
    DigestMismatch {
        /// The digest from the source's status.
        expected: String,
        /// The digest of what was downloaded.
        actual: String,
    },
    /// The artifact or its content exceeds a size limit.
    #[error("artifact {what} exceeds the limit of {limit} bytes")]
    TooLarge {
        /// `download` or `content`.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
    /// The archive holds an entry that must not be unpacked.
    #[error("refusing to unpack '{name}': {reason}")]
    UnsafeEntry {
        /// The entry's name as stored.
        name: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The archive is not a valid gzip'd tar stream.
    #[error("invalid artifact archive: {0}")]
    Archive(String),
    /// Local file system trouble.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Limits applied when unpacking.
#[derive(Clone, Copy, Debug)]
pub struct UntarOptions {
    /// Cap on the total size of the unpacked files; `None` for no cap.
    pub max_size: Option<u64>,
    /// Skip symbolic links instead of refusing the archive.
    pub skip_symlinks: bool,
}

impl Default for UntarOptions {
    fn default() -> Self {
        UntarOptions {
            max_size: Some(DEFAULT_MAX_UNTAR_SIZE),
            skip_symlinks: false,
        }
    }
}

/// Downloads artifacts from source-controller (or any HTTP server).
#[derive(Clone, Debug)]
pub struct ArtifactFetcher {
    client: reqwest::Client,
    max_download_size: u64,
    retries: u32,
}

impl ArtifactFetcher {
    /// A fetcher with `timeout` per attempt, `retries` extra attempts on
    /// transient failures (connection errors, 5xx) and a download size cap.
    pub fn new(timeout: Duration, retries: u32, max_download_size: u64) -> Result<Self, Error> {
        let client = env_proxy::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Download {
                url: String::new(),
                message: format!("cannot build HTTP client: {e}"),
            })?;
        Ok(ArtifactFetcher {
            client,
            max_download_size,
            retries,
        })
    }

    /// Downloads `url` into an anonymous temporary file and checks it against
    /// `digest` (`<algorithm>:<hex>`). Returns the file, rewound.
    pub async fn fetch(&self, url: &str, digest: &str) -> Result<std::fs::File, Error> {
        let expected = ExpectedDigest::parse(digest)?;
        let mut attempt = 0;
        loop {
            match self.fetch_once(url, &expected).await {
                Err(err @ Error::Download { .. }) if attempt < self.retries => {
                    attempt += 1;
                    let delay = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(6)));
                    tracing::debug!(%url, attempt, error = %err, "retrying artifact download");
                    tokio::time::sleep(delay).await;
                }
                other => return other,
            }
        }
    }

    /// Downloads, verifies and unpacks the artifact at `url` into `dir`.
    pub async fn fetch_and_unpack(
        &self,
        url: &str,
        digest: &str,
        dir: &Path,
        options: UntarOptions,
    ) -> Result<(), Error> {
        let file = self.fetch(url, digest).await?;
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || untar_gz(file, &dir, options))
            .await
            .map_err(|e| Error::Archive(format!("unpacking task failed: {e}")))?
    }

    async fn fetch_once(
        &self,
        url: &str,
        expected: &ExpectedDigest,
    ) -> Result<std::fs::File, Error> {
        // A transport error through the environment's proxy names it: the
        // refused connection or the failed tunnel is the proxy's.
        let download_error = |message: String| Error::Download {
            url: url.to_string(),
            message: env_proxy::name_proxy(message, url),
        };
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| download_error(error_chain(&e)))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(download_error(format!("HTTP status {status}")));
        }
        if !status.is_success() {
            return Err(Error::Status {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        if response
            .content_length()
            .is_some_and(|len| len > self.max_download_size)
        {
            return Err(Error::TooLarge {
                what: "download",
                limit: self.max_download_size,
            });
        }
        let mut file = tempfile::tempfile().map_err(io_error("creating a temporary file"))?;
        let mut hasher = expected.hasher();
        let mut received: u64 = 0;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| download_error(error_chain(&e)))?;
            received += chunk.len() as u64;
            if received > self.max_download_size {
                return Err(Error::TooLarge {
                    what: "download",
                    limit: self.max_download_size,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk)
                .map_err(io_error("writing the downloaded artifact"))?;
        }
        let actual = hasher.finish();
        if actual != expected.text {
            return Err(Error::DigestMismatch {
                expected: expected.text.clone(),
                actual,
            });
        }
        file.seek(SeekFrom::Start(0))
            .map_err(io_error("rewinding the downloaded artifact"))?;
        Ok(file)
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = inner.source();
    }
    text
}

struct ExpectedDigest {
    algorithm: DigestAlgorithm,
    text: String,
}

impl ExpectedDigest {
    fn parse(digest: &str) -> Result<Self, Error> {
        let unsupported = || Error::UnsupportedDigest(digest.to_string());
        let (algorithm, hex) = digest.split_once(':').ok_or_else(unsupported)?;
        let algorithm = DigestAlgorithm::parse(algorithm).ok_or_else(unsupported)?;
        if hex.len() != algorithm.hex_len() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unsupported());
        }
        Ok(ExpectedDigest {
            algorithm,
            text: digest.to_ascii_lowercase(),
        })
    }

    fn hasher(&self) -> DigestHasher {
        self.algorithm.hasher()
    }
}

/// An artifact digest algorithm: Flux's `--artifact-digest-algo` values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `sha256` (Flux's default).
    #[default]
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
    /// `blake3` (256-bit output).
    Blake3,
}

impl DigestAlgorithm {
    /// The algorithm named `name` (`sha256`, `sha384`, `sha512`, `blake3`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(DigestAlgorithm::Sha256),
            "sha384" => Some(DigestAlgorithm::Sha384),
            "sha512" => Some(DigestAlgorithm::Sha512),
            "blake3" => Some(DigestAlgorithm::Blake3),
            _ => None,
        }
    }

    /// Its name, the prefix of its digests.
    pub fn name(self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha256",
            DigestAlgorithm::Sha384 => "sha384",
            DigestAlgorithm::Sha512 => "sha512",
            DigestAlgorithm::Blake3 => "blake3",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            DigestAlgorithm::Sha256 | DigestAlgorithm::Blake3 => 64,
            DigestAlgorithm::Sha384 => 96,
            DigestAlgorithm::Sha512 => 128,
        }
    }

    /// A streaming hasher.
    pub fn hasher(self) -> DigestHasher {
        DigestHasher(match self {
            DigestAlgorithm::Sha256 => HasherState::Sha256(sha2::Sha256::new()),
            DigestAlgorithm::Sha384 => HasherState::Sha384(sha2::Sha384::new()),
            DigestAlgorithm::Sha512 => HasherState::Sha512(sha2::Sha512::new()),
            DigestAlgorithm::Blake3 => HasherState::Blake3(Box::new(blake3::Hasher::new())),
        })
    }

    /// The `<algorithm>:<hex>` digest of `bytes`.
    pub fn digest(self, bytes: &[u8]) -> String {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// Hashes bytes as they pass, into an `<algorithm>:<hex>` digest.
pub struct DigestHasher(HasherState);

enum HasherState {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
    Blake3(Box<blake3::Hasher>),
}

impl DigestHasher {
    /// Adds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            HasherState::Sha256(h) => h.update(bytes),
            HasherState::Sha384(h) => h.update(bytes),
            HasherState::Sha512(h) => h.update(bytes),
            HasherState::Blake3(h) => {
                h.update(bytes);
            }
        }
    }

    /// The digest of everything added.
    pub fn finish(self) -> String {
        match self.0 {
            HasherState::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            HasherState::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            HasherState::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
            HasherState::Blake3(h) => format!("blake3:{}", h.finalize().to_hex()),
        }
    }
}

static CANONICAL: std::sync::OnceLock<DigestAlgorithm> = std::sync::OnceLock::new();

/// Sets the algorithm of the artifacts and revisions this process produces
/// (source-controller's `--artifact-digest-algo`), once, at start-up; as
/// Flux's process-wide canonical digest.
pub fn set_canonical_digest(algorithm: DigestAlgorithm) -> Result<(), Error> {
    if CANONICAL.set(algorithm).is_err() && canonical_digest() != algorithm {
        return Err(Error::UnsupportedDigest(format!(
            "{}: the digest algorithm was already set to {}",
            algorithm.name(),
            canonical_digest().name()
        )));
    }
    Ok(())
}

/// The algorithm of the artifacts and revisions this process produces.
pub fn canonical_digest() -> DigestAlgorithm {
    CANONICAL.get().copied().unwrap_or_default()
}

/// The `<algorithm>:<hex>` sha256 digest of `bytes`, as artifacts announce it.
pub fn sha256_digest(bytes: &[u8]) -> String {
    DigestAlgorithm::Sha256.digest(bytes)
}

/// Checks `bytes` against `digest` (`<algorithm>:<hex>`).
pub fn verify_digest(bytes: &[u8], digest: &str) -> Result<(), Error> {
    let expected = ExpectedDigest::parse(digest)?;
    let mut hasher = expected.hasher();
    hasher.update(bytes);
    let actual = hasher.finish();
    if actual == expected.text {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            expected: expected.text,
            actual,
        })
    }
}

/// Unpacks a gzip'd tar stream into `dir` (created if missing) under Flux's
/// hardening rules; see the module documentation.
pub fn untar_gz<R: Read>(reader: R, dir: &Path, options: UntarOptions) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = archive
        .entries()
        .map_err(|e| Error::Archive(e.to_string()))?;
    let mut total: u64 = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Archive(e.to_string()))?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type.is_symlink() && options.skip_symlinks {
            continue;
        }
        let rel = safe_relative_path(&raw_name)?;
        let target = dir.join(&rel);
        let mode = entry.header().mode().unwrap_or(0o600) & 0o777;
        match entry_type {
            tar::EntryType::Directory => {
                create_dirs(&target)?;
                set_mode(&target, mode | 0o700)?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = entry.header().size().unwrap_or(0);
                total = total.saturating_add(size);
                if let Some(max) = options.max_size
                    && total > max
                {
                    return Err(Error::TooLarge {
                        what: "content",
                        limit: max,
                    });
                }
                if let Some(parent) = target.parent() {
                    create_dirs(parent)?;
                }
                let mut file = std::fs::File::create(&target)
                    .map_err(io_error(format!("creating {}", target.display())))?;
                // Copy no more than the header announced.
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut file)
                    .map_err(io_error(format!("writing {}", target.display())))?;
                if copied != size {
                    return Err(Error::Archive(format!("'{raw_name}' is truncated")));
                }
                set_mode(&target, mode | 0o600)?;
            }
            tar::EntryType::Symlink => {
                return Err(Error::UnsafeEntry {
                    name: raw_name,
                    reason: "symbolic links are not allowed",
                });
            }
            tar::EntryType::Link => {
                return Err(Error::UnsafeEntry {
                    name: raw_name,
                    reason: "hard links are not allowed",
                });
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                return Err(Error::UnsafeEntry {
                    name: raw_name,
                    reason: "only regular files and directories are allowed",
                });
            }
        }
    }
    Ok(())
}

/// The entry name as a plain relative path, or why it is refused.
fn safe_relative_path(name: &str) -> Result<PathBuf, Error> {
    let refuse = |reason| Error::UnsafeEntry {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("empty name"));
    }
    if name.contains('\\') {
        return Err(refuse("backslashes are not allowed"));
    }
    if name.starts_with('/') {
        return Err(refuse("absolute paths are not allowed"));
    }
    let mut path = PathBuf::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => path.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("'..' is not allowed")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("absolute paths are not allowed"));
            }
        }
    }
    if path.as_os_str().is_empty() {
        return Err(refuse("empty name"));
    }
    Ok(path)
}

fn create_dirs(path: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
        .map_err(io_error(format!("creating {}", path.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_error(
        format!("setting permissions of {}", path.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tar.gz built entry by entry, including entries a normal builder refuses.
    fn archive(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut builder = tar::Builder::new(gz);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            // Write the raw name so that unsafe names reach the archive unchanged.
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            header.set_size(data.len() as u64);
            if kind.is_symlink() || *kind == tar::EntryType::Link {
                header.set_link_name("target").expect("link name");
            }
            header.set_cksum();
            builder.append(&header, *data).expect("append");
        }
        builder.into_inner().expect("tar").finish().expect("gzip")
    }

    #[test]
    fn unpacks_files_and_directories() {
        let bytes = archive(&[
            ("deploy", tar::EntryType::Directory, b""),
            (
                "deploy/app.yaml",
                tar::EntryType::Regular,
                b"kind: ConfigMap\n",
            ),
            ("./nested/deep/file.txt", tar::EntryType::Regular, b"x"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        untar_gz(&bytes[..], dir.path(), UntarOptions::default()).expect("untar");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("deploy/app.yaml")).unwrap(),
            "kind: ConfigMap\n"
        );
        assert!(dir.path().join("nested/deep/file.txt").is_file());
    }

    #[test]
    fn refuses_escaping_and_special_entries() {
        let cases: &[(&str, tar::EntryType)] = &[
            ("../evil", tar::EntryType::Regular),
            ("a/../../evil", tar::EntryType::Regular),
            ("/etc/evil", tar::EntryType::Regular),
            ("a\\b", tar::EntryType::Regular),
            ("link", tar::EntryType::Symlink),
            ("hard", tar::EntryType::Link),
            ("dev", tar::EntryType::Char),
            ("fifo", tar::EntryType::Fifo),
        ];
        for (name, kind) in cases {
            let bytes = archive(&[(name, *kind, b"")]);
            let dir = tempfile::tempdir().unwrap();
            let err = untar_gz(&bytes[..], &dir.path().join("out"), UntarOptions::default())
                .expect_err(name);
            assert!(matches!(err, Error::UnsafeEntry { .. }), "{name}: {err:?}");
            assert!(!dir.path().join("evil").exists());
        }
    }

    #[test]
    fn symlinks_can_be_skipped() {
        let bytes = archive(&[
            ("link", tar::EntryType::Symlink, b""),
            ("file", tar::EntryType::Regular, b"f"),
        ]);
        let dir = tempfile::tempdir().unwrap();
        untar_gz(
            &bytes[..],
            dir.path(),
            UntarOptions {
                skip_symlinks: true,
                ..UntarOptions::default()
            },
        )
        .expect("untar");
        assert!(dir.path().join("file").is_file());
        assert!(dir.path().join("link").symlink_metadata().is_err());
    }

    #[test]
    fn content_size_is_capped() {
        let bytes = archive(&[
            ("a", tar::EntryType::Regular, &[0u8; 600]),
            ("b", tar::EntryType::Regular, &[0u8; 600]),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let err = untar_gz(
            &bytes[..],
            dir.path(),
            UntarOptions {
                max_size: Some(1000),
                skip_symlinks: false,
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "content",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_is_an_archive_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = untar_gz(
            &b"not a gzip stream"[..],
            dir.path(),
            UntarOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Archive(_)), "{err:?}");
    }

    #[test]
    fn digests() {
        let digest = sha256_digest(b"hello");
        assert_eq!(
            digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(verify_digest(b"hello", &digest).is_ok());
        assert!(matches!(
            verify_digest(b"hellO", &digest),
            Err(Error::DigestMismatch { .. })
        ));
        assert!(matches!(
            verify_digest(b"x", "md5:abc"),
            Err(Error::UnsupportedDigest(_))
        ));
        assert!(matches!(
            verify_digest(b"x", "sha256:zz"),
            Err(Error::UnsupportedDigest(_))
        ));
    }

    #[test]
    fn every_flux_digest_algorithm() {
        // BLAKE3's digest of nothing (its reference test vector).
        assert_eq!(
            DigestAlgorithm::Blake3.digest(b""),
            "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        for name in ["sha256", "sha384", "sha512", "blake3"] {
            let algorithm = DigestAlgorithm::parse(name).expect("known");
            assert_eq!(algorithm.name(), name);
            let digest = algorithm.digest(b"artifact");
            assert!(digest.starts_with(&format!("{name}:")), "{digest}");
            assert!(verify_digest(b"artifact", &digest).is_ok(), "{digest}");
            assert!(verify_digest(b"other", &digest).is_err(), "{digest}");
        }
        assert_eq!(DigestAlgorithm::parse("md5"), None);
        assert_eq!(canonical_digest(), DigestAlgorithm::Sha256);
    }

    async fn serve_once(body: Vec<u8>, status: u16) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/gitrepository/ns/app/abc.tar.gz")
    }

    #[tokio::test]
    async fn fetch_verifies_digest_and_unpacks() {
        let bytes = archive(&[("app.yaml", tar::EntryType::Regular, b"kind: Namespace\n")]);
        let digest = sha256_digest(&bytes);
        let url = serve_once(bytes, 200).await;
        let fetcher = ArtifactFetcher::new(Duration::from_secs(5), 0, 1 << 20).unwrap();
        let dir = tempfile::tempdir().unwrap();
        fetcher
            .fetch_and_unpack(&url, &digest, dir.path(), UntarOptions::default())
            .await
            .expect("fetch");
        assert!(dir.path().join("app.yaml").is_file());

        let wrong = sha256_digest(b"something else");
        let err = fetcher.fetch(&url, &wrong).await.unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err:?}");

        let small = ArtifactFetcher::new(Duration::from_secs(5), 0, 10).unwrap();
        let err = small.fetch(&url, &digest).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::TooLarge {
                    what: "download",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn missing_artifact_is_not_retried() {
        let url = serve_once(Vec::new(), 404).await;
        let fetcher = ArtifactFetcher::new(Duration::from_secs(5), 5, 1 << 20).unwrap();
        let started = std::time::Instant::now();
        let err = fetcher.fetch(&url, &sha256_digest(b"")).await.unwrap_err();
        assert!(matches!(err, Error::Status { status: 404, .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
