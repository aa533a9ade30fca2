//! What ferroflux's controllers need from an OCI registry, on top of
//! `oci-client`: credentials ([`Credentials`], also from a
//! `kubernetes.io/dockerconfigjson` Secret), plain HTTP for `insecure`
//! registries, listing every tag of a repository, resolving a tag, semver
//! range or digest ([`Selector`]) to a manifest digest, and pulling a manifest
//! and one of its layers into a file, digest-checked and size-capped.
//!
//! Every remote operation is bounded by the [`Options::timeout`] and fails with
//! an [`Error`] whose variant says what went wrong (authentication, not found,
//! no matching tag, ...), so that callers can map it onto their conditions.
//!
//! Transport: extra trusted CA certificates ([`Options::ca_pem`]) on top of
//! the system roots, and a proxy ([`Options::proxy`], with basic auth) that
//! replaces the `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment, which is
//! honoured otherwise. TLS client certificates are not possible: oci-client
//! 0.18's `ClientConfig` has no client identity and takes no prebuilt HTTP
//! client.
#![warn(missing_docs)]

mod credentials;
mod transport;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

pub use credentials::{Credentials, DOCKER_CONFIG_JSON_KEY};
pub use transport::Proxy;

/// OCI image manifest media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker v2 image manifest media type.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Config media type of Flux artifacts (`flux push artifact`).
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Content layer media type of Flux artifacts: a tar.gz of the files.
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Content layer media type of Helm charts pushed with `helm push`.
pub const HELM_CHART_CONTENT_MEDIA_TYPE: &str =
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Annotation with the creation time of an artifact.
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// Annotation with the source revision of an artifact (e.g. `main@sha1:<commit>`).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// Annotation with the source address of an artifact.
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";

/// Tags asked for per page when listing; registries may return fewer.
/// Media type of an OCI image index.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Media type of a Docker manifest list.
pub const DOCKER_MANIFEST_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// The most an image config may weigh when only its `created` time is read.
const MAX_CONFIG_SIZE: u64 = 1024 * 1024;

const TAGS_PAGE_SIZE: usize = 1000;
/// Upper bound on listing pages, against registries that never stop paging.
const MAX_TAG_PAGES: usize = 10_000;

/// Errors of registry operations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The repository address is not `oci://<host>/<path>`.
    #[error("invalid OCI URL '{url}': {reason}")]
    InvalidUrl {
        /// The address as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The credentials given are malformed.
    #[error("invalid registry credentials: {0}")]
    InvalidCredentials(String),
    /// The registry refused the credentials (or their absence).
    #[error("authentication to '{host}' failed: {message}")]
    Authentication {
        /// The registry host.
        host: String,
        /// What the registry said.
        message: String,
    },
    /// The tag, digest or repository does not exist.
    #[error("'{reference}' not found: {message}")]
    NotFound {
        /// The reference looked up.
        reference: String,
        /// What the registry said.
        message: String,
    },
    /// The semver range does not parse.
    #[error("semver '{range}' parse error: {message}")]
    InvalidSemver {
        /// The range as written.
        range: String,
        /// The parse error.
        message: String,
    },
    /// The tag filter is not a valid regular expression.
    #[error("failed to compile regex '{pattern}': {message}")]
    InvalidFilter {
        /// The expression as written.
        pattern: String,
        /// The compile error.
        message: String,
    },
    /// The digest is not `<algorithm>:<hex>`.
    #[error("invalid digest '{0}'")]
    InvalidDigest(String),
    /// No tag satisfies the semver range (and filter).
    #[error("no match found for semver: {0}")]
    NoMatchingTag(String),
    /// The manifest is of a kind that cannot be pulled as an artifact.
    #[error("unsupported manifest media type '{0}'")]
    UnsupportedManifest(String),
    /// Downloaded content does not hash to its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was downloaded.
        what: String,
        /// The digest it should have.
        expected: String,
        /// The digest it has.
        actual: String,
    },
    /// A blob is larger than allowed.
    #[error("layer {digest} exceeds the size limit of {limit} bytes")]
    SizeLimit {
        /// The blob.
        digest: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// An operation took longer than [`Options::timeout`].
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What was being done.
        operation: String,
        /// The timeout.
        after: Duration,
    },
    /// Any other failure talking to the registry.
    #[error("{operation} failed: {message}")]
    Registry {
        /// What was being done.
        operation: String,
        /// The underlying error.
        message: String,
    },
    /// The extra CA certificates do not parse.
    #[error("invalid TLS configuration: {0}")]
    InvalidTls(String),
    /// The proxy address is unusable (never carries the credentials).
    #[error("invalid proxy configuration: {0}")]
    InvalidProxy(String),
    /// Local file trouble while storing a blob.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// How to talk to a registry.
#[derive(Clone, Debug)]
pub struct Options {
    /// Plain HTTP instead of HTTPS.
    pub insecure: bool,
    /// Bound on each remote operation (listing all tags counts as one).
    pub timeout: Duration,
    /// PEM CA certificates (one or more) trusted in addition to the system
    /// roots, for registries with a private or self-signed CA.
    pub ca_pem: Option<Vec<u8>>,
    /// The proxy every request goes through. `None` leaves the decision to
    /// the `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` environment, by Go's rules
    /// (`env_proxy`: loopback registries are reached directly, `ALL_PROXY`
    /// is not read).
    pub proxy: Option<Proxy>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: false,
            timeout: Duration::from_secs(60),
            ca_pem: None,
            proxy: None,
        }
    }
}

/// What to pull from a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selector {
    /// A tag.
    Tag(String),
    /// The highest tag satisfying a semver range, among the tags matching
    /// `filter` (a regular expression) when given.
    Semver {
        /// The range (`>=1.0.0 <2.0.0`, `1.x`, ...).
        range: String,
        /// Regular expression the tags must match first.
        filter: Option<String>,
    },
    /// A manifest digest (`sha256:<hex>`).
    Digest(String),
}

/// A selector resolved to a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The tag, unless a digest was asked for.
    pub tag: Option<String>,
    /// The manifest digest, `sha256:<hex>`.
    pub digest: String,
}

impl Resolved {
    /// Flux's revision string: `<tag>@<digest>`, or the digest alone.
    pub fn revision(&self) -> String {
        match &self.tag {
            Some(tag) => format!("{tag}@{}", self.digest),
            None => self.digest.clone(),
        }
    }
}

/// A content descriptor (config or layer) of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Media type of the content.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// Size in bytes, as the manifest declares it.
    pub size: i64,
    /// Annotations of the descriptor.
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Digest of the manifest's bytes, `sha256:<hex>`.
    pub digest: String,
    /// The manifest's media type, when it declares one.
    pub media_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations (`org.opencontainers.image.*`).
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// The first layer of `media_type`, or the first layer when `None`.
    pub fn layer(&self, media_type: Option<&str>) -> Option<&Descriptor> {
        match media_type {
            Some(wanted) => self.layers.iter().find(|l| l.media_type == wanted),
            None => self.layers.first(),
        }
    }
}

/// A blob pulled into a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PulledBlob {
    /// Its verified digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

/// One repository of one registry, with the credentials and options to reach it.
pub struct Repository {
    client: oci_client::Client,
    auth: oci_client::secrets::RegistryAuth,
    host: String,
    path: String,
    timeout: Duration,
    /// The proxy's address without credentials, named in transport errors.
    proxy: Option<String>,
    /// The proxy password, scrubbed from every error message.
    proxy_secret: Option<String>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Splits `oci://<host>/<path>` into host and repository path, checking that
/// the result is a valid image reference.
pub fn parse_url(url: &str) -> Result<(String, String), Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let rest = url
        .strip_prefix("oci://")
        .ok_or_else(|| invalid("URL must be in format 'oci://<domain>/<org>/<repo>'"))?;
    let (host, path) = rest
        .split_once('/')
        .ok_or_else(|| invalid("URL must be in format 'oci://<domain>/<org>/<repo>'"))?;
    let path = path.trim_end_matches('/');
    if host.is_empty() || path.is_empty() {
        return Err(invalid(
            "URL must be in format 'oci://<domain>/<org>/<repo>'",
        ));
    }
    if path.contains(['@', ':']) {
        return Err(invalid("URL must not contain a tag or digest; use the ref"));
    }
    if !valid_registry_host(host) {
        return Err(invalid(&format!("invalid registry host '{host}'")));
    }
    if !valid_repository_path(path) {
        return Err(invalid(&format!(
            "repository name must be lowercase path components of [a-z0-9] separated by '.', '_', '__' or '-', joined by '/': '{path}'"
        )));
    }
    Ok((host.to_string(), path.to_string()))
}

/// Whether `host` is a registry host: a domain or IPv4 address, or a
/// bracketed IPv6 address, with an optional port.
///
/// Checked by hand rather than by parsing an `oci_client::Reference`: that
/// parse compiles the whole reference grammar as a regular expression,
/// which costs a controller about 12 MiB of resident memory for good.
pub fn valid_registry_host(host: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        let address_ok =
            !address.is_empty() && address.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        return address_ok && (after.is_empty() || after.strip_prefix(':').is_some_and(digits));
    }
    let (name, port_ok) = match host.rsplit_once(':') {
        Some((name, port)) => (name, digits(port)),
        None => (host, true),
    };
    port_ok
        && !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Whether `path` is a repository name of the distribution spec: path
/// components of lowercase letters and digits, separated within a component
/// by `.`, `_`, `__` or dashes, joined by `/`, at most 255 characters.
pub fn valid_repository_path(path: &str) -> bool {
    !path.is_empty() && path.len() <= 255 && path.split('/').all(valid_path_component)
}

fn valid_path_component(component: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alphanumeric(first) || !alphanumeric(last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-'.
    let mut i = 0;
    while i < bytes.len() {
        if alphanumeric(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alphanumeric(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let allowed = separator == "."
            || separator == "_"
            || separator == "__"
            || separator.bytes().all(|b| b == b'-');
        if !allowed {
            return false;
        }
    }
    true
}

impl Repository {
    /// A handle on the repository at `url` (`oci://<host>/<path>`).
    pub fn new(url: &str, credentials: &Credentials, options: &Options) -> Result<Self, Error> {
        let (host, path) = parse_url(url)?;
        let config = ClientConfig {
            protocol: if options.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(options.timeout),
            read_timeout: Some(options.timeout),
            // An index is never resolved to a platform behind the caller's back.
            platform_resolver: None,
            extra_root_certificates: options
                .ca_pem
                .as_deref()
                .map(transport::ca_certificates)
                .transpose()?
                .unwrap_or_default(),
            ..ClientConfig::default()
        };
        // The registry's requests as Go's ProxyFromEnvironment routes them
        // when no proxy is given; oci-client would otherwise let reqwest read
        // the environment by curl's rules.
        let registry = env_proxy::Url::parse(&format!(
            "{}://{host}/",
            if options.insecure { "http" } else { "https" }
        ))
        .ok();
        let env_proxy = match (&options.proxy, &registry) {
            (None, Some(registry)) => env_proxy::environment().proxy_for(registry).ok().flatten(),
            _ => None,
        };
        let config = match (&options.proxy, &registry) {
            // Both schemes: `insecure` registries are reached over plain HTTP.
            (Some(proxy), _) => {
                let url = proxy.url()?;
                ClientConfig {
                    https_proxy: Some(url.clone()),
                    http_proxy: Some(url),
                    ..config
                }
            }
            (None, Some(registry)) => {
                let proxies = env_proxy::environment().string_proxies_for(registry);
                ClientConfig {
                    https_proxy: proxies.https,
                    http_proxy: proxies.http,
                    no_proxy: proxies.no_proxy,
                    ..config
                }
            }
            (None, None) => config,
        };
        // `Client::new` would silently fall back to a default client on error.
        let proxy_secret = match &options.proxy {
            Some(proxy) => proxy.secret(),
            None => env_proxy
                .as_ref()
                .and_then(|p| p.password().map(str::to_string)),
        };
        let proxy_address = match &options.proxy {
            Some(proxy) => Some(proxy.address()),
            None => env_proxy.as_ref().map(env_proxy::address_of),
        };
        let client = oci_client::Client::try_from(config).map_err(|e| {
            let message = transport::scrub(error_chain(&e), proxy_secret.as_deref());
            // The only inputs that can fail the build are ours.
            if options.ca_pem.is_some() {
                Error::InvalidTls(message)
            } else if options.proxy.is_some() {
                Error::InvalidProxy(message)
            } else {
                Error::Registry {
                    operation: "creating the registry client".into(),
                    message,
                }
            }
        })?;
        Ok(Repository {
            client,
            auth: credentials.to_registry_auth(),
            host,
            path,
            timeout: options.timeout,
            proxy: proxy_address,
            proxy_secret,
        })
    }

    /// The registry host (`host[:port]`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `<host>/<path>`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.host, self.path)
    }

    fn tag_reference(&self, tag: &str) -> Reference {
        Reference::with_tag(self.host.clone(), self.path.clone(), tag.to_string())
    }

    fn digest_reference(&self, digest: &str) -> Reference {
        Reference::with_digest(self.host.clone(), self.path.clone(), digest.to_string())
    }

    async fn bounded<T, F>(&self, operation: &str, reference: &str, fut: F) -> Result<T, Error>
    where
        F: std::future::Future<Output = Result<T, Error>>,
    {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::Timeout {
                operation: format!("{operation} '{reference}'"),
                after: self.timeout,
            })?
    }

    fn map_err(&self, operation: &str, reference: &str, err: OciDistributionError) -> Error {
        let err = classify(&self.host, operation, reference, err);
        match (err, &self.proxy) {
            // Name the proxy: a refused connection or a 407 is its doing,
            // not the registry's.
            (Error::Registry { operation, message }, Some(proxy)) => Error::Registry {
                operation,
                message: format!(
                    "{} (through proxy {proxy})",
                    transport::scrub(message, self.proxy_secret.as_deref())
                ),
            },
            (err, _) => err,
        }
    }

    /// Every tag of the repository, following the registry's pages.
    pub async fn list_tags(&self) -> Result<Vec<String>, Error> {
        self.list_tags_paged(TAGS_PAGE_SIZE).await
    }

    /// [`list_tags`](Self::list_tags), asking for `page_size` tags per request.
    pub async fn list_tags_paged(&self, page_size: usize) -> Result<Vec<String>, Error> {
        let page_size = page_size.max(1);
        let name = self.name();
        self.bounded("listing tags of", &name, async {
            let reference = self.tag_reference("latest");
            let mut tags: Vec<String> = Vec::new();
            let mut last: Option<String> = None;
            for _ in 0..MAX_TAG_PAGES {
                let page = self
                    .client
                    .list_tags(&reference, &self.auth, Some(page_size), last.as_deref())
                    .await
                    .map_err(|e| self.map_err("listing tags of", &name, e))?;
                let full = page.tags.len() >= page_size;
                let next = page.tags.last().cloned();
                // A registry ignoring `last` would repeat the first page forever.
                if next.is_some() && next == last {
                    break;
                }
                tags.extend(page.tags);
                if !full {
                    break;
                }
                last = next;
            }
            tags.sort();
            tags.dedup();
            Ok(tags)
        })
        .await
    }

    /// The manifest digest `selector` points at now (a HEAD request for tags
    /// and digests; a tag listing first for semver ranges).
    pub async fn resolve(&self, selector: &Selector) -> Result<Resolved, Error> {
        let tag = match selector {
            Selector::Digest(digest) => {
                check_digest(digest)?;
                let digest = self.manifest_digest(&self.digest_reference(digest)).await?;
                return Ok(Resolved { tag: None, digest });
            }
            Selector::Tag(tag) => tag.clone(),
            Selector::Semver { range, filter } => {
                let tags = self.list_tags().await?;
                highest_matching(&tags, range, filter.as_deref())?
            }
        };
        let digest = self.manifest_digest(&self.tag_reference(&tag)).await?;
        Ok(Resolved {
            tag: Some(tag),
            digest,
        })
    }

    async fn manifest_digest(&self, reference: &Reference) -> Result<String, Error> {
        let whole = reference.whole();
        self.bounded("resolving", &whole, async {
            self.client
                .fetch_manifest_digest(reference, &self.auth)
                .await
                .map_err(|e| self.map_err("resolving", &whole, e))
        })
        .await
    }

    /// The image manifest with `digest`, checked against it.
    pub async fn pull_manifest(&self, digest: &str) -> Result<Manifest, Error> {
        check_digest(digest)?;
        let reference = self.digest_reference(digest);
        let whole = reference.whole();
        let (bytes, actual) = self
            .bounded("pulling manifest", &whole, async {
                self.client
                    .pull_manifest_raw(
                        &reference,
                        &self.auth,
                        &[OCI_MANIFEST_MEDIA_TYPE, DOCKER_MANIFEST_MEDIA_TYPE],
                    )
                    .await
                    .map_err(|e| self.map_err("pulling manifest", &whole, e))
            })
            .await?;
        let computed = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        if computed != digest || actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {whole}"),
                expected: digest.to_string(),
                actual: computed,
            });
        }
        parse_manifest(&bytes, digest)
    }

    /// When the image behind the manifest `digest` was built: its config's
    /// `created` time (RFC 3339), if it states one. For a multi-platform
    /// index, the linux/amd64 image's (else the first one's).
    pub async fn image_created(&self, digest: &str) -> Result<Option<String>, Error> {
        let mut digest = digest.to_string();
        // An index points at images; one step down is as deep as it goes.
        for _ in 0..2 {
            check_digest(&digest)?;
            let reference = self.digest_reference(&digest);
            let whole = reference.whole();
            let (bytes, _) = self
                .bounded("pulling manifest", &whole, async {
                    self.client
                        .pull_manifest_raw(
                            &reference,
                            &self.auth,
                            &[
                                OCI_MANIFEST_MEDIA_TYPE,
                                DOCKER_MANIFEST_MEDIA_TYPE,
                                OCI_INDEX_MEDIA_TYPE,
                                DOCKER_MANIFEST_LIST_MEDIA_TYPE,
                            ],
                        )
                        .await
                        .map_err(|e| self.map_err("pulling manifest", &whole, e))
                })
                .await?;
            let computed = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
            if computed != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {whole}"),
                    expected: digest,
                    actual: computed,
                });
            }
            if let Some(image) = platform_image(&bytes) {
                digest = image;
                continue;
            }
            let manifest = parse_manifest(&bytes, &digest)?;
            let config = self
                .pull_small_blob(&manifest.config, MAX_CONFIG_SIZE)
                .await?;
            #[derive(serde::Deserialize)]
            struct Config {
                created: Option<String>,
            }
            let config: Config = serde_json::from_slice(&config).map_err(|e| Error::Registry {
                operation: format!("reading the config of {whole}"),
                message: e.to_string(),
            })?;
            return Ok(config.created);
        }
        Err(Error::UnsupportedManifest(
            "an index of indexes".to_string(),
        ))
    }

    /// A small blob (an image config) in memory, checked against its digest.
    async fn pull_small_blob(&self, blob: &Descriptor, max_size: u64) -> Result<Vec<u8>, Error> {
        let mut bytes = Vec::new();
        self.copy_blob(blob, max_size, &mut bytes, "memory").await?;
        Ok(bytes)
    }

    /// Streams the blob `layer` into `file` (created or truncated), at most
    /// `max_size` bytes and never more than the descriptor declares, and
    /// checks its digest. On error the file holds
    /// partial content; callers write to a temporary path.
    pub async fn pull_blob_to(
        &self,
        layer: &Descriptor,
        file: &Path,
        max_size: u64,
    ) -> Result<PulledBlob, Error> {
        let io = |context: &str| {
            let context = format!("{context} {}", file.display());
            move |source| Error::Io { context, source }
        };
        let mut out = tokio::io::BufWriter::new(
            tokio::fs::File::create(file)
                .await
                .map_err(io("creating"))?,
        );
        let size = self
            .copy_blob(layer, max_size, &mut out, &file.display().to_string())
            .await?;
        out.flush().await.map_err(io("flushing"))?;
        out.into_inner().sync_all().await.map_err(io("syncing"))?;
        Ok(PulledBlob {
            digest: layer.digest.clone(),
            size,
        })
    }

    /// Streams the blob `blob` into `out` (named `target` in errors), at
    /// most `max_size` bytes and never more than the descriptor declares,
    /// and checks its digest; returns its size.
    async fn copy_blob(
        &self,
        blob: &Descriptor,
        max_size: u64,
        out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send),
        target: &str,
    ) -> Result<u64, Error> {
        check_digest(&blob.digest)?;
        let declared = u64::try_from(blob.size).ok();
        let too_large = || Error::SizeLimit {
            digest: blob.digest.clone(),
            limit: max_size,
        };
        if declared.is_none_or(|size| size > max_size) {
            return Err(too_large());
        }
        let reference = self.digest_reference(&blob.digest);
        let whole = reference.whole();
        let descriptor = OciDescriptor {
            media_type: blob.media_type.clone(),
            digest: blob.digest.clone(),
            size: blob.size,
            ..OciDescriptor::default()
        };
        self.bounded("pulling blob", &whole, async {
            let mut stream = self
                .client
                .pull_blob_stream(&reference, &descriptor)
                .await
                .map_err(|e| self.map_err("pulling blob", &whole, e))?;
            if stream.content_length.is_some_and(|len| len > max_size) {
                return Err(too_large());
            }
            let mut hasher = Sha256::new();
            let mut size: u64 = 0;
            while let Some(chunk) = stream.stream.next().await {
                let chunk = chunk.map_err(|e| Error::Registry {
                    operation: format!("pulling blob '{whole}'"),
                    message: e.to_string(),
                })?;
                size = size.saturating_add(chunk.len() as u64);
                if size > max_size {
                    return Err(too_large());
                }
                // More than the manifest promised can only be wrong; stop
                // before a hostile registry fills the disk.
                if declared.is_some_and(|declared| size > declared) {
                    return Err(Error::Registry {
                        operation: format!("pulling blob '{whole}'"),
                        message: format!(
                            "the blob is larger than the {} bytes its descriptor declares",
                            blob.size
                        ),
                    });
                }
                hasher.update(&chunk);
                out.write_all(&chunk).await.map_err(|source| Error::Io {
                    context: format!("writing {target}"),
                    source,
                })?;
            }
            let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
            if actual != blob.digest {
                return Err(Error::DigestMismatch {
                    what: format!("blob {whole}"),
                    expected: blob.digest.clone(),
                    actual,
                });
            }
            Ok(size)
        })
        .await
    }
}

/// The highest tag satisfying `range` among `tags` matching `filter`.
pub fn highest_matching(
    tags: &[String],
    range: &str,
    filter: Option<&str>,
) -> Result<String, Error> {
    let parsed = runtime::semver::Range::parse(range).map_err(|e| Error::InvalidSemver {
        range: range.to_string(),
        message: e.to_string(),
    })?;
    let filter = filter
        .filter(|f| !f.is_empty())
        .map(|pattern| {
            regex::Regex::new(pattern).map_err(|e| Error::InvalidFilter {
                pattern: pattern.to_string(),
                message: e.to_string(),
            })
        })
        .transpose()?;
    let candidates = tags
        .iter()
        .map(String::as_str)
        .filter(|tag| filter.as_ref().is_none_or(|f| f.is_match(tag)));
    parsed
        .highest(candidates)
        .map(|(tag, _)| tag.to_string())
        .ok_or_else(|| Error::NoMatchingTag(range.to_string()))
}

/// Only sha256 digests: the registries Flux supports address content that way.
fn check_digest(digest: &str) -> Result<(), Error> {
    let valid = digest
        .strip_prefix("sha256:")
        .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidDigest(digest.to_string()))
    }
}

fn parse_manifest(bytes: &[u8], digest: &str) -> Result<Manifest, Error> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawDescriptor {
        media_type: String,
        digest: String,
        size: i64,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RawManifest {
        #[serde(default)]
        media_type: Option<String>,
        config: Option<RawDescriptor>,
        #[serde(default)]
        layers: Vec<RawDescriptor>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| Error::Registry {
        operation: format!("parsing manifest {digest}"),
        message: e.to_string(),
    })?;
    if let Some(media_type) = raw
        .media_type
        .as_deref()
        .filter(|m| *m != OCI_MANIFEST_MEDIA_TYPE && *m != DOCKER_MANIFEST_MEDIA_TYPE)
    {
        return Err(Error::UnsupportedManifest(media_type.to_string()));
    }
    let Some(config) = raw.config else {
        return Err(Error::UnsupportedManifest(
            "a manifest without config (an index?)".to_string(),
        ));
    };
    let convert = |d: RawDescriptor| Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations,
    };
    Ok(Manifest {
        digest: digest.to_string(),
        media_type: raw.media_type,
        config: convert(config),
        layers: raw.layers.into_iter().map(convert).collect(),
        annotations: raw.annotations,
    })
}

/// The image an index or manifest list picks for linux/amd64 (else its
/// first image); `None` when `bytes` is not an index.
fn platform_image(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Option<Vec<Entry>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
        platform: Option<Platform>,
    }
    #[derive(serde::Deserialize)]
    struct Platform {
        os: Option<String>,
        architecture: Option<String>,
    }
    let index: Index = serde_json::from_slice(bytes).ok()?;
    let manifests = index.manifests?;
    let linux_amd64 = manifests.iter().find(|m| {
        m.platform.as_ref().is_some_and(|p| {
            p.os.as_deref() == Some("linux") && p.architecture.as_deref() == Some("amd64")
        })
    });
    linux_amd64.or(manifests.first()).map(|m| m.digest.clone())
}

/// Sorts oci-client's errors into ours.
fn classify(host: &str, operation: &str, reference: &str, err: OciDistributionError) -> Error {
    let auth = |message: String| Error::Authentication {
        host: host.to_string(),
        message,
    };
    let not_found = |message: String| Error::NotFound {
        reference: reference.to_string(),
        message,
    };
    match err {
        OciDistributionError::AuthenticationFailure(message) => auth(message),
        OciDistributionError::UnauthorizedError { url } => {
            auth(format!("401 Unauthorized from {url}"))
        }
        OciDistributionError::ImageManifestNotFoundError(message) => not_found(message),
        OciDistributionError::RegistryError { envelope, url } => {
            let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
            let message = format!("{envelope} ({url})");
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
            {
                auth(message)
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::NotFound
                        | OciErrorCode::BlobUnknown
                )
            }) {
                not_found(message)
            } else {
                Error::Registry {
                    operation: format!("{operation} '{reference}'"),
                    message,
                }
            }
        }
        OciDistributionError::ServerError {
            code: 401 | 403,
            url,
            message,
        } => auth(format!("{message} ({url})")),
        OciDistributionError::ServerError { code: 404, url, .. } => {
            not_found(format!("404 Not Found from {url}"))
        }
        OciDistributionError::DigestError(e) => Error::Registry {
            operation: format!("{operation} '{reference}'"),
            message: format!("digest verification failed: {e}"),
        },
        other => Error::Registry {
            operation: format!("{operation} '{reference}'"),
            message: error_chain(&other),
        },
    }
}

/// `err` and its sources, `: `-joined: reqwest's own message ("error
/// sending request") says nothing of the refused connection or the
/// untrusted certificate underneath.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("oci://ghcr.io/stefanprodan/manifests/podinfo").unwrap(),
            (
                "ghcr.io".to_string(),
                "stefanprodan/manifests/podinfo".to_string()
            )
        );
        assert_eq!(
            parse_url("oci://127.0.0.1:5000/app/").unwrap(),
            ("127.0.0.1:5000".to_string(), "app".to_string())
        );
        for bad in [
            "https://ghcr.io/x",
            "oci://ghcr.io",
            "oci:///x",
            "oci://ghcr.io/x:v1",
            "oci://ghcr.io/UPPER",
            "oci://ghcr.io/a..b",
            "oci://ghcr.io/a___b",
            "oci://ghcr.io/-a",
            "oci://bad host/x",
            "oci://host:port/x",
        ] {
            assert!(
                matches!(parse_url(bad), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn registry_hosts_and_repository_paths() {
        for good in [
            "ghcr.io",
            "127.0.0.1:5000",
            "localhost",
            "[::1]:5000",
            "my-registry.example.com:443",
        ] {
            assert!(valid_registry_host(good), "{good}");
        }
        for bad in ["", "a b", "-x.io", "x.io:", "x.io:abc", "[::1", "[zz]:1"] {
            assert!(!valid_registry_host(bad), "{bad}");
        }
        for good in ["app", "org/app", "a.b/c_d/e__f/g-h/i---j", "x9/0y"] {
            assert!(valid_repository_path(good), "{good}");
        }
        for bad in [
            "", "App", "a/", "/a", "a//b", "a..b", "a___b", "a.-b", "_a", "a_",
        ] {
            assert!(!valid_repository_path(bad), "{bad}");
        }
    }

    #[test]
    fn revisions() {
        let d = format!("sha256:{}", "a".repeat(64));
        let tagged = Resolved {
            tag: Some("6.1.0".into()),
            digest: d.clone(),
        };
        assert_eq!(tagged.revision(), format!("6.1.0@{d}"));
        let pinned = Resolved {
            tag: None,
            digest: d.clone(),
        };
        assert_eq!(pinned.revision(), d);
    }

    #[test]
    fn semver_selection_with_filter() {
        let tags: Vec<String> = [
            "1.0.0",
            "1.2.0",
            "1.10.0-rc.1",
            "2.0.0",
            "v1.3.0",
            "latest",
            "1.4.0-dev",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        assert_eq!(highest_matching(&tags, "1.x", None).unwrap(), "v1.3.0");
        assert_eq!(highest_matching(&tags, ">=1.0.0", None).unwrap(), "2.0.0");
        assert_eq!(
            highest_matching(&tags, "*", Some("^1\\.[0-2]")).unwrap(),
            "1.2.0"
        );
        assert!(matches!(
            highest_matching(&tags, ">=3.0.0", None),
            Err(Error::NoMatchingTag(r)) if r == ">=3.0.0"
        ));
        assert!(matches!(
            highest_matching(&tags, "not a range", None),
            Err(Error::InvalidSemver { .. })
        ));
        assert!(matches!(
            highest_matching(&tags, "*", Some("(")),
            Err(Error::InvalidFilter { .. })
        ));
    }

    #[test]
    fn digests() {
        assert!(check_digest(&format!("sha256:{}", "0f".repeat(32))).is_ok());
        assert!(check_digest("sha256:abc").is_err());
        assert!(check_digest(&format!("sha512:{}", "0".repeat(128))).is_err());
    }

    #[test]
    fn registry_errors_are_sorted() {
        use oci_client::errors::{OciEnvelope, OciError};
        let envelope = |code| OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError {
                    code,
                    message: "m".into(),
                    detail: serde_json::Value::Null,
                }],
            },
            url: "http://h/v2/r/manifests/t".into(),
        };
        let sort = |err| classify("h", "resolving", "h/r:t", err);
        assert!(matches!(
            sort(OciDistributionError::UnauthorizedError { url: "u".into() }),
            Error::Authentication { host, .. } if host == "h"
        ));
        assert!(matches!(
            sort(envelope(OciErrorCode::Denied)),
            Error::Authentication { .. }
        ));
        assert!(matches!(
            sort(envelope(OciErrorCode::ManifestUnknown)),
            Error::NotFound { reference, .. } if reference == "h/r:t"
        ));
        assert!(matches!(
            sort(OciDistributionError::ServerError {
                code: 404,
                url: "u".into(),
                message: String::new()
            }),
            Error::NotFound { .. }
        ));
        assert!(matches!(
            sort(OciDistributionError::ServerError {
                code: 500,
                url: "u".into(),
                message: "boom".into()
            }),
            Error::Registry { .. }
        ));
        assert!(matches!(
            sort(envelope(OciErrorCode::Toomanyrequests)),
            Error::Registry { .. }
        ));
    }

    #[test]
    fn manifests() {
        let json = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": FLUX_CONFIG_MEDIA_TYPE, "digest": "sha256:c", "size": 2},
            "layers": [
                {"mediaType": "application/x-other", "digest": "sha256:o", "size": 1},
                {"mediaType": FLUX_CONTENT_MEDIA_TYPE, "digest": "sha256:l", "size": 3}
            ],
            "annotations": {ANNOTATION_REVISION: "main@sha1:abc"}
        });
        let m = parse_manifest(json.to_string().as_bytes(), "sha256:m").unwrap();
        assert_eq!(m.layer(None).unwrap().digest, "sha256:o");
        assert_eq!(
            m.layer(Some(FLUX_CONTENT_MEDIA_TYPE)).unwrap().digest,
            "sha256:l"
        );
        assert!(m.layer(Some("application/x-missing")).is_none());
        assert_eq!(m.annotations[ANNOTATION_REVISION], "main@sha1:abc");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": []
        });
        assert!(matches!(
            parse_manifest(index.to_string().as_bytes(), "sha256:i"),
            Err(Error::UnsupportedManifest(_))
        ));
    }
}
