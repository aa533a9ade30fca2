//! Bucket: the objects of an S3-compatible bucket (`provider: generic`)
//! stored as an artifact, as Flux does: the revision is the digest of the
//! index of object keys and ETags, so an unchanged bucket is listed but
//! nothing is downloaded and nothing written.
//!
//! The reconciliation reads top to bottom: the S3 client (credentials, CA,
//! client certificate, proxy), the index (bucket exists, the root
//! `.sourceignore` object and `spec.ignore` applied to the keys under
//! `prefix`), decide (the stored artifact has that revision), act (download
//! every indexed object, archive, record).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use api::source::{Bucket, BucketSpec, BucketStatus, CloudProvider};
use futures::{StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use reqwest::{StatusCode, Url};
use rusty_s3::{Credentials, S3Action, UrlStyle};
use tokio::io::AsyncWriteExt;
use tracing::{debug, info};

use crate::Error;
use crate::controller::{Context, SecretData};
use crate::helm_repository::{error_chain, with_tls};
use crate::source_ignore::{IGNORE_FILE, SourceIgnore};
use crate::source_status::{self, Outcome};
use crate::storage::ArtifactStore;

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "Bucket";
/// Flux's default timeout for listing and downloading.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The link beside the artifacts that `status.url` points at.
const LATEST_LINK: &str = "latest.tar.gz";
/// The region signatures name when the spec gives none.
const DEFAULT_REGION: &str = "us-east-1";
/// Objects downloaded at once: enough to hide request latency while keeping
/// the controller's footprint small.
const CONCURRENT_FETCHES: usize = 16;

/// Reconciles one Bucket.
pub async fn reconcile(obj: Arc<Bucket>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.suspend == Some(true);
    source_status::reconcile_source(obj, ctx, KIND, suspended, |obj, ctx, status| {
        Box::pin(sync(obj, ctx, status))
    })
    .await
}

/// Fetch, decide, act. Updates `status` (artifact and observations) only when
/// a new artifact was stored.
async fn sync(obj: &Bucket, ctx: &Context, status: &mut BucketStatus) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;

    // Fetch: the client, the ignore rules, the index of keys and ETags.
    check_supported(spec)?;
    let client = S3Client::new(ctx, &namespace, spec).await?;
    let work = tempfile::Builder::new()
        .prefix("bucket-")
        .tempdir()
        .map_err(Error::io("creating a working directory"))?;
    // As Flux: `timeout` bounds the whole indexation, and then the whole download.
    let bucket = &spec.bucket_name;
    let mut index = client
        .bounded(
            &format!("indexation of objects from bucket '{bucket}' failed"),
            client.index(spec, work.path()),
        )
        .await?;
    let revision = index.revision();

    // Decide: is the stored artifact that revision?
    if ctx.store.holds(status.artifact.as_ref(), &revision) {
        debug!(%namespace, %name, %revision, "artifact up-to-date");
        return Ok(Outcome::UpToDate {
            message: stored_message(&revision),
        });
    }

    // Act: download, archive, record.
    client
        .bounded(
            &format!("fetch from bucket '{bucket}' failed"),
            client.download(&mut index, work.path(), ctx.settings.artifact_max_size),
        )
        .await?;
    // An object that changed or went away since the listing changed the index.
    let revision = index.revision();
    info!(%namespace, %name, bucket = %spec.bucket_name, %revision, files = index.len(), "fetched bucket objects");
    let hex = crate::storage::digest_hex(&revision);
    let path = ArtifactStore::artifact_path(KIND, &namespace, &name, &format!("{hex}.tar.gz"));
    // As Flux: everything fetched goes in; the ignore rules applied to the keys.
    let stored = ctx
        .store
        .archive_dir(
            &path,
            work.path(),
            SourceIgnore::none(),
            ctx.settings.artifact_max_size,
        )
        .await
        .map_err(|e| Error::Archive(Box::new(e)))?;
    status.artifact = Some(stored.artifact(&revision, None));
    status.observed_ignore = spec.ignore.clone();
    if let Some(link) = ctx.store.publish(&stored, LATEST_LINK) {
        status.url = Some(link);
    }
    Ok(Outcome::StoredWithNote {
        message: stored_message(&revision),
        note: format!(
            "stored artifact with {} fetched files from '{}' bucket",
            index.len(),
            spec.bucket_name
        ),
    })
}

/// Flux's `ArtifactInStorage` (and `Ready`) message for a Bucket.
pub fn stored_message(revision: &str) -> String {
    format!("stored artifact: revision '{revision}'")
}

/// Refuses what this controller does not implement, rather than ignoring it.
fn check_supported(spec: &BucketSpec) -> Result<(), Error> {
    // No cloud credentials or SDKs here: aws, gcp and azure are refused by name.
    crate::controller::only_generic_provider(spec.provider, CloudProvider::Generic)?;
    if spec.sts.is_some() {
        return Err(Error::Unsupported(
            "sts (temporary credentials from a Security Token Service) is not supported by this \
             source-controller: use a secretRef with 'accesskey' and 'secretkey'"
                .into(),
        ));
    }
    if spec.service_account_name.is_some() {
        return Err(Error::Unsupported(
            "serviceAccountName is not supported for the 'generic' Bucket provider".into(),
        ));
    }
    if spec.insecure == Some(true) && spec.cert_secret_ref.is_some() {
        return Err(Error::Unsupported(
            "certSecretRef has no effect with insecure: true (plain HTTP): remove one of them"
                .into(),
        ));
    }
    Ok(())
}

/// The index of a bucket: object keys and their ETags, in key order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EtagIndex(BTreeMap<String, String>);

impl EtagIndex {
    /// Adds or replaces `key`.
    pub fn add(&mut self, key: impl Into<String>, etag: impl Into<String>) {
        self.0.insert(key.into(), etag.into());
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the index has no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Flux's revision: the canonical digest (`--artifact-digest-algo`,
    /// `sha256:<hex>` by default) of `"<key> <etag>\n"` for every key in byte
    /// order (source-controller's `internal/index` Digester).
    pub fn revision(&self) -> String {
        let mut hasher = runtime::artifact::canonical_digest().hasher();
        for (key, etag) in &self.0 {
            hasher.update(key.as_bytes());
            hasher.update(b" ");
            hasher.update(etag.as_bytes());
            hasher.update(b"\n");
        }
        hasher.finish()
    }
}

/// One Bucket's view of its S3 endpoint: the HTTP client (timeout, CA,
/// client certificate, proxy), the bucket's addresses and the credentials.
struct S3Client {
    http: reqwest::Client,
    bucket: rusty_s3::Bucket,
    credentials: Option<Credentials>,
    timeout: Duration,
    /// The proxySecretRef's proxy (`scheme://host:port`), which failures
    /// name; without one, the environment's proxy is named when used.
    secret_proxy: Option<String>,
}

impl S3Client {
    async fn new(ctx: &Context, namespace: &str, spec: &BucketSpec) -> Result<S3Client, Error> {
        let timeout = match &spec.timeout {
            Some(t) => t
                .to_std()
                .map_err(|e| Error::InvalidDuration(e.to_string()))?,
            None => DEFAULT_TIMEOUT,
        };
        let secure = spec.insecure != Some(true);
        let endpoint = endpoint_url(&spec.endpoint, secure)?;
        let credentials = match &spec.secret_ref {
            Some(secret_ref) => static_credentials(ctx, namespace, &secret_ref.name).await?,
            None => None,
        };
        let mut http = reqwest::Client::builder().timeout(timeout);
        if let Some(cert_ref) = &spec.cert_secret_ref {
            let secret = SecretData::read(ctx, namespace, &cert_ref.name).await?;
            if !["ca.crt", "tls.crt", "tls.key"]
                .iter()
                .any(|key| secret.data.contains_key(*key))
            {
                return Err(
                    secret.error("certificate secret does not contain any TLS configuration")
                );
            }
            http = with_tls(http, &secret.data)
                .map_err(|e| secret.error(format!("failed to create TLS config: {e}")))?;
        }
        // proxySecretRef replaces the environment's proxy, as in Flux.
        let mut secret_proxy = None;
        http = match &spec.proxy_secret_ref {
            Some(proxy_ref) => {
                let (proxy, address) = proxy_from_secret(ctx, namespace, &proxy_ref.name).await?;
                secret_proxy = Some(address);
                http.proxy(proxy)
            }
            None => http.proxy(env_proxy::reqwest_proxy()),
        };
        let http = http
            .build()
            .map_err(|e| Error::Bucket(format!("cannot build the HTTP client: {e}")))?;
        let address = |region: String| {
            let style = url_style(&endpoint, &spec.bucket_name);
            rusty_s3::Bucket::new(endpoint.clone(), style, spec.bucket_name.clone(), region)
                .map_err(|e| Error::InvalidUrl {
                    url: spec.endpoint.clone(),
                    reason: format!("cannot address bucket '{}': {e}", spec.bucket_name),
                })
        };
        let region = spec.region.clone().filter(|r| !r.is_empty());
        let mut client = S3Client {
            http,
            bucket: address(region.clone().unwrap_or_else(|| DEFAULT_REGION.to_string()))?,
            credentials,
            timeout,
            secret_proxy,
        };
        if region.is_none() {
            let found = client.bucket_location().await;
            if found != DEFAULT_REGION {
                client.bucket = address(found)?;
            }
        }
        Ok(client)
    }

    /// The bucket's region when the spec names none, found as minio-go finds
    /// it: GetBucketLocation signed for `us-east-1`, or the region a server
    /// names when it refuses that signature; `us-east-1` otherwise (the
    /// requests that follow report any other trouble).
    async fn bucket_location(&self) -> String {
        let mut action = self.bucket.get_object(self.credentials.as_ref(), "");
        action.query_mut().insert("location", "");
        let url = action.sign(self.signed_for());
        let Ok(response) = self.http.get(url).send().await else {
            return DEFAULT_REGION.to_string();
        };
        let ok = response.status().is_success();
        let header = response
            .headers()
            .get("x-amz-bucket-region")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.unwrap_or_default();
        let region = if ok {
            xml_text(&body, "LocationConstraint")
        } else {
            header
                .or_else(|| xml_text(&body, "Region"))
                .or_else(|| xml_text(&body, "Message").and_then(|m| expected_region(&m)))
        };
        match region.as_deref() {
            None | Some("") => DEFAULT_REGION.to_string(),
            // The legacy name of eu-west-1.
            Some("EU") => "eu-west-1".to_string(),
            Some(region) => region.to_string(),
        }
    }

    /// `work`, failing with `what` when it takes longer than the timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        work: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Bucket(format!("{what}: timeout of {:?} exceeded", self.timeout)))?
    }

    /// How long a presigned request stays valid: past the client's own
    /// timeout, as it is sent at once.
    fn signed_for(&self) -> Duration {
        self.timeout + Duration::from_secs(60)
    }

    /// Lists the bucket into Flux's index: keys under `prefix` that are not
    /// directory markers, not `.sourceignore` and not ignored by the root
    /// `.sourceignore` object (fetched into `dir`, so it is archived too) or
    /// `spec.ignore`.
    async fn index(&self, spec: &BucketSpec, dir: &Path) -> Result<EtagIndex, Error> {
        let name = &spec.bucket_name;
        let head = self
            .bucket
            .head_bucket(self.credentials.as_ref())
            .sign(self.signed_for());
        let response = self.http.head(head.clone()).send().await.map_err(|e| {
            Error::Bucket(format!(
                "failed to confirm existence of '{name}' bucket: {}",
                self.request_error("HEAD", &head, e)
            ))
        })?;
        match response.status() {
            status if status.is_success() => {}
            StatusCode::NOT_FOUND => {
                return Err(Error::Bucket(format!("bucket '{name}' not found")));
            }
            status => {
                return Err(Error::Bucket(format!(
                    "failed to confirm existence of '{name}' bucket: {}",
                    s3_error(status, "")
                )));
            }
        }

        let ignore_file = dir.join(IGNORE_FILE);
        let rules = match self.get_object(IGNORE_FILE, &ignore_file, None).await {
            Ok(_) => std::fs::read_to_string(&ignore_file)
                .map_err(Error::io(format!("reading {IGNORE_FILE}")))
                .map(Some)?,
            Err(Fetch::NotFound) => None,
            Err(Fetch::Failed(message)) => {
                return Err(Error::Bucket(format!(
                    "failed to get Etag for '{IGNORE_FILE}' object: {message}"
                )));
            }
            Err(Fetch::Local(err)) => return Err(err),
        };
        let ignore = SourceIgnore::for_keys(rules.as_deref(), spec.ignore.as_deref())?;

        let listing_failed = |message: String| {
            Error::Bucket(format!(
                "indexation of objects from bucket '{name}' failed: listing objects from bucket '{name}' failed: {message}"
            ))
        };
        let mut index = EtagIndex::default();
        let mut token: Option<String> = None;
        loop {
            let mut list = self.bucket.list_objects_v2(self.credentials.as_ref());
            if let Some(prefix) = spec.prefix.as_deref().filter(|p| !p.is_empty()) {
                list.with_prefix(prefix);
            }
            if let Some(token) = &token {
                list.with_continuation_token(token.as_str());
            }
            let url = list.sign(self.signed_for());
            let response = self
                .http
                .get(url.clone())
                .send()
                .await
                .map_err(|e| listing_failed(self.request_error("GET", &url, e)))?;
            let status = response.status();
            let body = response
                .text()
                .await
                .map_err(|e| listing_failed(self.request_error("GET", &url, e)))?;
            if !status.is_success() {
                return Err(listing_failed(s3_error(status, &body)));
            }
            let page = rusty_s3::actions::ListObjectsV2::parse_response(&body)
                .map_err(|e| listing_failed(format!("unreadable listing: {e}")))?;
            for object in page.contents {
                let key = object.key;
                if key.ends_with('/') || key == IGNORE_FILE || ignore.is_ignored_key(&key) {
                    continue;
                }
                index.add(key, trim_etag(object.etag.as_deref().unwrap_or_default()));
            }
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(index)
    }

    /// Downloads every object of `index` under `dir`, a few at a time. An
    /// object that changed since the listing gets its new ETag in the index,
    /// one that went away leaves it, as in Flux.
    async fn download(
        &self,
        index: &mut EtagIndex,
        dir: &Path,
        max_size: Option<u64>,
    ) -> Result<(), Error> {
        let budget = Budget {
            used: AtomicU64::new(0),
            max: max_size,
        };
        let keys: Vec<(String, String)> = index
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let fetched: Vec<(String, String, Result<String, Fetch>)> =
            futures::stream::iter(keys.into_iter().map(|(key, listed)| {
                let budget = &budget;
                async move {
                    let target = local_path(dir, &key)?;
                    let result = self.get_object(&key, &target, Some(budget)).await;
                    Ok::<_, Error>((key, listed, result))
                }
            }))
            .buffer_unordered(CONCURRENT_FETCHES)
            .try_collect()
            .await?;
        let bucket = self.bucket.name();
        for (key, listed, result) in fetched {
            match result {
                Ok(etag) if etag != listed && !etag.is_empty() => index.add(key, etag),
                Ok(_) => {}
                Err(Fetch::NotFound) => {
                    info!(%bucket, %key, "indexed object disappeared from the bucket");
                    index.0.remove(&key);
                }
                Err(Fetch::Failed(message)) => {
                    return Err(Error::Bucket(format!(
                        "fetch from bucket '{bucket}' failed: failed to get '{key}' object: {message}"
                    )));
                }
                Err(Fetch::Local(err)) => return Err(err),
            }
        }
        Ok(())
    }

    /// Streams object `key` into `target`; returns its ETag.
    async fn get_object(
        &self,
        key: &str,
        target: &Path,
        budget: Option<&Budget>,
    ) -> Result<String, Fetch> {
        let url = self
            .bucket
            .get_object(self.credentials.as_ref(), key)
            .sign(self.signed_for());
        let mut response = self
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| Fetch::Failed(self.request_error("GET", &url, e)))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Err(Fetch::NotFound);
        }
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            if body.contains("<Code>NoSuchKey</Code>") {
                return Err(Fetch::NotFound);
            }
            return Err(Fetch::Failed(s3_error(status, &body)));
        }
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(trim_etag)
            .unwrap_or_default();
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await.map_err(|e| {
                Fetch::Local(Error::io(format!("creating {}", parent.display()))(e))
            })?;
        }
        let mut file = tokio::fs::File::create(target)
            .await
            .map_err(|e| Fetch::Local(Error::io(format!("creating {}", target.display()))(e)))?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Fetch::Failed(self.request_error("GET", &url, e)))?
        {
            if let Some(budget) = budget {
                budget.take(chunk.len() as u64).map_err(Fetch::Local)?;
            }
            file.write_all(&chunk)
                .await
                .map_err(|e| Fetch::Local(Error::io(format!("writing {}", target.display()))(e)))?;
        }
        file.flush()
            .await
            .map_err(|e| Fetch::Local(Error::io(format!("writing {}", target.display()))(e)))?;
        Ok(etag)
    }
}

/// Why an object was not fetched.
enum Fetch {
    /// The bucket has no such key.
    NotFound,
    /// The request failed; Flux's wording of why.
    Failed(String),
    /// Local trouble (disk, size limit).
    Local(Error),
}

/// The bytes all downloads of one artifact may take together.
struct Budget {
    used: AtomicU64,
    max: Option<u64>,
}

impl Budget {
    fn take(&self, bytes: u64) -> Result<(), Error> {
        let used = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        match self.max {
            Some(limit) if used > limit => Err(Error::SizeLimit { limit }),
            _ => Ok(()),
        }
    }
}

/// `http(s)://<endpoint>`; the endpoint is a host with an optional port, as
/// Flux (minio-go) takes it: the scheme comes from `insecure`.
fn endpoint_url(endpoint: &str, secure: bool) -> Result<Url, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if endpoint.is_empty() {
        return Err(invalid("the endpoint is empty"));
    }
    if endpoint.contains("://") {
        return Err(invalid(
            "the endpoint is a host with an optional port, without scheme (set insecure: true for plain HTTP)",
        ));
    }
    if endpoint.contains(['/', '?', '#', '@']) {
        return Err(invalid(
            "the endpoint is a host with an optional port, without path, query or credentials",
        ));
    }
    let scheme = if secure { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{endpoint}")).map_err(|e| invalid(&e.to_string()))
}

/// minio-go's automatic lookup: virtual-host addressing on the cloud
/// endpoints that support it (and for a name valid in a host over TLS),
/// path-style everywhere else.
fn url_style(endpoint: &Url, bucket: &str) -> UrlStyle {
    let host = endpoint.host_str().unwrap_or_default();
    let cloud = host == "s3.amazonaws.com"
        || (host.starts_with("s3") && host.ends_with(".amazonaws.com"))
        || host == "storage.googleapis.com"
        || host.ends_with(".aliyuncs.com");
    if cloud && !(endpoint.scheme() == "https" && bucket.contains('.')) {
        UrlStyle::VirtualHost
    } else {
        UrlStyle::Path
    }
}

/// Static credentials from the Secret: Flux requires both keys to be present
/// and signs only when both are non-empty (anonymous requests otherwise).
async fn static_credentials(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<Credentials>, Error> {
    let secret = SecretData::read(ctx, namespace, name).await?;
    let (Some(access), Some(key)) = (secret.text("accesskey"), secret.text("secretkey")) else {
        return Err(secret.error(format!(
            "invalid '{name}' secret data: required fields 'accesskey' and 'secretkey'"
        )));
    };
    Ok((!access.is_empty() && !key.is_empty()).then(|| Credentials::new(access, key)))
}

/// The proxy of the proxySecretRef: `address` (required), optional
/// `username` and `password`; and its address without credentials.
async fn proxy_from_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<(reqwest::Proxy, String), Error> {
    let secret = SecretData::read(ctx, namespace, name).await?;
    let address = secret.text("address").ok_or_else(|| {
        secret.error(format!(
            "invalid proxy secret '{namespace}/{name}': key 'address' is missing"
        ))
    })?;
    let mut proxy = reqwest::Proxy::all(&address)
        .map_err(|e| secret.error(format!("failed to parse proxy address '{address}': {e}")))?;
    let (username, password) = (secret.text("username"), secret.text("password"));
    if username.is_some() || password.is_some() {
        proxy = proxy.basic_auth(
            username.as_deref().unwrap_or_default(),
            password.as_deref().unwrap_or_default(),
        );
    }
    let named = reqwest::Url::parse(&address)
        .map(|url| env_proxy::address_of(&url))
        .unwrap_or_default();
    Ok((proxy, named))
}

/// Where object `key` goes under `dir`; a key that would leave it is refused.
fn local_path(dir: &Path, key: &str) -> Result<PathBuf, Error> {
    let mut path = dir.to_path_buf();
    let mut parts = 0;
    for component in Path::new(key).components() {
        match component {
            Component::Normal(part) => {
                path.push(part);
                parts += 1;
            }
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Bucket(format!(
                    "object key '{key}' is not a path inside the bucket: '..' is not allowed"
                )));
            }
        }
    }
    if parts == 0 {
        return Err(Error::Bucket(format!(
            "object key '{key}' does not name a file"
        )));
    }
    Ok(path)
}

/// An ETag without the quotes S3 puts around it (minio-go's `trimEtag`).
fn trim_etag(etag: &str) -> String {
    etag.trim_start_matches('"')
        .trim_end_matches('"')
        .to_string()
}

impl S3Client {
    /// A failed request's error chain, without the presigned URL (its query
    /// carries the access key and signature), naming the address instead,
    /// and the proxy it went through: a refused connection may be the
    /// proxy's.
    fn request_error(&self, method: &str, url: &Url, err: reqwest::Error) -> String {
        let mut address = url.clone();
        address.set_query(None);
        let message = format!(
            "{method} \"{address}\": {}",
            error_chain(&err.without_url())
        );
        match &self.secret_proxy {
            Some(proxy) => format!("{message} (through proxy {proxy})"),
            None => env_proxy::name_proxy(message, address.as_str()),
        }
    }
}

/// S3's answer to a failed request as minio-go words it: the error's
/// `Message` when the body has one, else what the status says.
fn s3_error(status: StatusCode, body: &str) -> String {
    let field = |name: &str| xml_text(body, name).filter(|m| !m.is_empty());
    if let Some(message) = field("Message") {
        return message;
    }
    match status {
        StatusCode::FORBIDDEN => "Access Denied.".to_string(),
        StatusCode::NOT_FOUND => "The specified bucket does not exist.".to_string(),
        StatusCode::MOVED_PERMANENTLY => "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.".to_string(),
        other => match field("Code") {
            Some(code) => format!("Error response code {code}."),
            None => other.to_string(),
        },
    }
}

/// The region a refusal of the signature's region asks for: `… the region
/// 'us-east-1' is wrong; expecting 'eu-west-3'` (AWS and versitygw word it
/// so; with query signatures it is the only place that names it).
fn expected_region(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("expecting ")?;
    let region: String = rest
        .trim_start_matches(['\'', '"'])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!region.is_empty()).then_some(region)
}

/// The text of the first element `name` in an S3 answer (attributes
/// allowed), its entities decoded.
fn xml_text(body: &str, name: &str) -> Option<String> {
    let open = format!("<{name}");
    let mut from = 0;
    let start = loop {
        let at = body[from..].find(&open)? + from + open.len();
        match body[at..].chars().next()? {
            '>' => break at + 1,
            ' ' | '\t' | '\n' | '\r' => break body[at..].find('>')? + at + 1,
            // `/>`: an empty element; anything else: a longer name.
            '/' => return Some(String::new()),
            _ => from = at,
        }
    };
    let end = body[start..].find(&format!("</{name}>"))? + start;
    let text = &body[start..end];
    Some(
        text.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&apos;", "'")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_fields_with_attributes_and_entities() {
        let body = "<?xml version=\"1.0\"?><LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">eu-west-3</LocationConstraint>";
        assert_eq!(
            xml_text(body, "LocationConstraint").as_deref(),
            Some("eu-west-3")
        );
        assert_eq!(
            xml_text("<LocationConstraint/>", "LocationConstraint").as_deref(),
            Some("")
        );
        let error = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region &#34;us-east-1&#34; is wrong</Message><Region>eu-west-3</Region></Error>";
        assert_eq!(xml_text(error, "Region").as_deref(), Some("eu-west-3"));
        assert_eq!(
            s3_error(StatusCode::BAD_REQUEST, error),
            "the region \"us-east-1\" is wrong"
        );
        assert_eq!(xml_text("<RegionName>x</RegionName>", "Region"), None);
        let query = "Error parsing the X-Amz-Credential parameter; the region \"us-east-1\" is wrong; expecting \"eu-west-3\"";
        assert_eq!(expected_region(query).as_deref(), Some("eu-west-3"));
        assert_eq!(
            expected_region("the region 'us-east-1' is wrong; expecting 'ap-south-1'").as_deref(),
            Some("ap-south-1")
        );
        assert_eq!(expected_region("Access Denied."), None);
    }

    #[test]
    fn revision_is_fluxs_digest_of_the_sorted_index() {
        let mut index = EtagIndex::default();
        index.add("zoo.yaml", "e2");
        index.add("apps/app.yaml", "e1");
        // printf 'apps/app.yaml e1\nzoo.yaml e2\n' | sha256sum
        assert_eq!(
            index.revision(),
            runtime::artifact::sha256_digest(b"apps/app.yaml e1\nzoo.yaml e2\n")
        );
        // The empty index is the digest of nothing, as Flux's.
        assert_eq!(
            EtagIndex::default().revision(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn endpoints_are_hosts_with_a_scheme_from_insecure() {
        assert_eq!(
            endpoint_url("127.0.0.1:9000", false).unwrap().as_str(),
            "http://127.0.0.1:9000/"
        );
        assert_eq!(
            endpoint_url("minio.example.com", true).unwrap().as_str(),
            "https://minio.example.com/"
        );
        for bad in ["", "http://minio:9000", "minio/path", "user@minio"] {
            let err = endpoint_url(bad, true).unwrap_err();
            assert_eq!(err.failure().reason, "URLInvalid", "{bad}");
            assert!(err.failure().is_stalled());
        }
    }

    #[test]
    fn cloud_endpoints_use_virtual_hosts() {
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(matches!(
            url_style(&url("https://s3.amazonaws.com"), "b"),
            UrlStyle::VirtualHost
        ));
        assert!(matches!(
            url_style(&url("https://s3.amazonaws.com"), "a.b"),
            UrlStyle::Path
        ));
        assert!(matches!(
            url_style(&url("http://127.0.0.1:9000"), "b"),
            UrlStyle::Path
        ));
    }

    #[test]
    fn keys_stay_inside_the_directory() {
        let dir = Path::new("/work");
        assert_eq!(
            local_path(dir, "apps/app.yaml").unwrap(),
            Path::new("/work/apps/app.yaml")
        );
        assert_eq!(local_path(dir, "/a//b").unwrap(), Path::new("/work/a/b"));
        assert!(local_path(dir, "../etc/passwd").is_err());
        assert!(local_path(dir, "a/../../b").is_err());
        assert!(local_path(dir, "/").is_err());
    }

    #[test]
    fn s3_errors_are_worded_as_minio_go_does() {
        let body = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error>";
        assert_eq!(
            s3_error(StatusCode::FORBIDDEN, body),
            "The request signature we calculated does not match the signature you provided."
        );
        assert_eq!(s3_error(StatusCode::FORBIDDEN, ""), "Access Denied.");
        assert_eq!(trim_etag("\"abc\""), "abc");
    }

    #[tokio::test]
    async fn the_timeout_bounds_the_whole_operation() {
        let endpoint = Url::parse("http://127.0.0.1:1").unwrap();
        let client = S3Client {
            http: reqwest::Client::new(),
            bucket: rusty_s3::Bucket::new(endpoint, UrlStyle::Path, "b", DEFAULT_REGION).unwrap(),
            credentials: None,
            timeout: Duration::from_millis(50),
            secret_proxy: None,
        };
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        };
        let err = client
            .bounded("indexation of objects from bucket 'b' failed", slow)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "indexation of objects from bucket 'b' failed: timeout of 50ms exceeded"
        );
        assert_eq!(err.failure().reason, "BucketOperationFailed");
        assert!(!err.failure().is_stalled());
    }

    #[test]
    fn other_providers_and_sts_stall() {
        let spec: BucketSpec = serde_json::from_value(serde_json::json!({
            "bucketName": "b", "endpoint": "s3.amazonaws.com", "interval": "1m", "provider": "aws"
        }))
        .unwrap();
        let err = check_supported(&spec).unwrap_err();
        assert!(err.failure().is_stalled());
        assert_eq!(err.failure().reason, "InvalidProviderConfiguration");
        assert!(err.to_string().contains("'aws'"), "{err}");
        let mut generic = spec.clone();
        generic.provider = Some(CloudProvider::Generic);
        assert!(check_supported(&generic).is_ok());
        generic.insecure = Some(true);
        generic.cert_secret_ref = Some(api::meta::LocalObjectReference { name: "ca".into() });
        assert!(check_supported(&generic).is_err());
    }
}
