//! An OCI registry on loopback: Debian's `docker-registry` (distribution
//! 2.8), optionally behind htpasswd basic auth and optionally serving HTTPS
//! with a certificate from a CA of its own, with helpers that push images,
//! Flux OCI artifacts and Helm charts the way real clients do.
//!
//! Images and artifacts are pushed over the plain distribution HTTP API
//! (`POST …/blobs/uploads/`, `PUT ?digest=`, `PUT …/manifests/TAG`); charts go
//! through the real `helm push`.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use reqwest::blocking::{Client, RequestBuilder};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest, Sha256};

use crate::lighttpd::Credentials;
use crate::packages::{self, Helm};
use crate::process::{self, Service};

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer media type.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Flux artifact config media type.
pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
/// Flux artifact content (tar.gz) layer media type.
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// The repository [`Registry::push_chart`] pushes charts under.
pub const CHARTS_REPOSITORY: &str = "charts";

/// The manifest types a pull accepts (OCI first, Docker v2 for completeness).
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// The manifest annotations `flux push artifact` writes.
#[derive(Clone, Debug)]
pub struct ArtifactAnnotations {
    /// `org.opencontainers.image.source`: where the content came from.
    pub source: String,
    /// `org.opencontainers.image.revision`: e.g. `main@sha1:<commit>`.
    pub revision: String,
}

/// A running registry. Stopped, and its storage deleted, on drop.
///
/// Its pushes and pulls are those of its [`RegistryClient`] (through `Deref`).
#[derive(Debug)]
pub struct Registry {
    _service: Service,
    client: RegistryClient,
    state: tempfile::TempDir,
}

impl std::ops::Deref for Registry {
    type Target = RegistryClient;

    fn deref(&self) -> &RegistryClient {
        &self.client
    }
}

/// A client of a registry's distribution API by address: the pushes and
/// pulls the tests make, also usable for a registry this process did not
/// start (`cargo xtask image --push`).
#[derive(Clone, Debug)]
pub struct RegistryClient {
    host: String,
    credentials: Option<Credentials>,
    /// The PEM CA that signed the serving certificate, when serving HTTPS.
    ca_pem: Option<String>,
}

impl Registry {
    /// Installs what is missing and starts `docker-registry serve` on a free
    /// loopback port, with htpasswd basic auth when `auth`.
    pub fn start(auth: bool) -> Result<Self> {
        Self::start_with(auth, false)
    }

    /// The registry the tests of one test binary share, one per kind (with or
    /// without basic auth, plain HTTP or TLS), started on first use; each
    /// test uses repositories named after its namespace.
    pub async fn shared(auth: bool, tls: bool) -> Result<&'static Registry> {
        type Slot = std::sync::OnceLock<std::result::Result<Registry, String>>;
        static SLOTS: [Slot; 4] = [Slot::new(), Slot::new(), Slot::new(), Slot::new()];
        let slot = &SLOTS[usize::from(auth) + 2 * usize::from(tls)];
        if slot.get().is_none() {
            let started = tokio::task::spawn_blocking(move || {
                Registry::start_with(auth, tls).map_err(|e| format!("{e:#}"))
            })
            .await?;
            // A parallel test may have won the race; its registry is as good as ours.
            let _ = slot.set(started);
        }
        slot.get()
            .context("registry slot is empty")?
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the registry did not start: {e}"))
    }

    /// [`start`](Self::start), serving HTTPS when `tls`: a fresh CA (see
    /// [`ca_pem`](RegistryClient::ca_pem)) signs a certificate for `127.0.0.1`,
    /// `localhost` and the machine's loopback alias, trusted by nothing else
    /// on the machine.
    pub fn start_with(auth: bool, tls: bool) -> Result<Self> {
        packages::ensure_debian_packages()?;
        let state = tempfile::Builder::new()
            .prefix("ferroflux-registry-")
            .tempdir()
            .context("creating the registry's directory")?;
        let storage = state.path().join("storage");
        std::fs::create_dir_all(&storage)?;
        let credentials = if auth {
            let credentials = Credentials::generate("flux");
            credentials.write_htpasswd(&state.path().join("htpasswd"))?;
            Some(credentials)
        } else {
            None
        };
        let auth_section = if auth {
            format!(
                "auth:\n  htpasswd:\n    realm: ferroflux-e2e\n    path: {}\n",
                state.path().join("htpasswd").display()
            )
        } else {
            String::new()
        };
        let (tls_section, ca_pem) = if tls {
            let pki = TestPki::generate()?;
            let cert = state.path().join("server.crt");
            let key = state.path().join("server.key");
            std::fs::write(&cert, &pki.server_cert_pem)?;
            std::fs::write(&key, &pki.server_key_pem)?;
            std::fs::write(state.path().join("ca.crt"), &pki.ca_pem)?;
            (
                format!(
                    "  tls:\n    certificate: {}\n    key: {}\n",
                    cert.display(),
                    key.display()
                ),
                Some(pki.ca_pem),
            )
        } else {
            (String::new(), None)
        };
        let config = state.path().join("config.yml");
        let log = state.path().join("registry.log");
        let (service, port) = process::start_on_free_port(
            "docker-registry",
            &log,
            Duration::from_secs(15),
            |port| {
                std::fs::write(
                    &config,
                    format!(
                        "version: 0.1\n\
                         log:\n  level: info\n\
                         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
                         http:\n  addr: 127.0.0.1:{port}\n\
                         {tls_section}\
                         {auth_section}",
                        storage = storage.display(),
                    ),
                )?;
                let mut cmd = Command::new("docker-registry");
                cmd.arg("serve").arg(&config);
                Ok(cmd)
            },
        )?;
        Ok(Self {
            _service: service,
            client: RegistryClient::new(format!("127.0.0.1:{port}"), credentials, ca_pem),
            state,
        })
    }

    /// The registry's working directory (config, log, storage).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Pushes a packaged chart with the real `helm push` to
    /// `oci://127.0.0.1:PORT/charts` (logging in first when auth is on);
    /// returns the manifest digest helm reports.
    pub fn push_chart(&self, tgz: &Path) -> Result<String> {
        let helm = Helm::new()?;
        self.helm_login(&helm)?;
        let output = process::run(
            helm.command()
                .arg("push")
                .arg(tgz)
                .arg(self.oci_url(CHARTS_REPOSITORY))
                .args(self.helm_transport_args()),
        )?;
        // helm prints `Digest: sha256:…` on stderr (v3) or stdout.
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        text.lines()
            .find_map(|line| line.trim().strip_prefix("Digest: "))
            .map(|digest| digest.trim().to_string())
            .with_context(|| format!("no digest in the output of helm push:\n{text}"))
    }

    /// Runs `helm registry login` for `helm` when the registry requires auth.
    pub fn helm_login(&self, helm: &Helm) -> Result<()> {
        if let Some(c) = &self.credentials {
            process::run(
                helm.command()
                    .args(["registry", "login", &self.host()])
                    .args(self.helm_transport_args())
                    .args(["--username", &c.username, "--password", &c.password]),
            )
            .context("helm registry login")?;
        }
        Ok(())
    }

    /// `--plain-http`, or `--ca-file` with the registry's CA over HTTPS.
    fn helm_transport_args(&self) -> Vec<String> {
        match &self.ca_pem {
            Some(_) => vec![
                "--ca-file".to_string(),
                self.state.path().join("ca.crt").display().to_string(),
            ],
            None => vec!["--plain-http".to_string()],
        }
    }
}

impl RegistryClient {
    /// A client of the registry at `host` (`HOST:PORT`), with basic-auth
    /// `credentials`, over HTTPS trusting `ca_pem` when given, else plain HTTP.
    pub fn new(
        host: impl Into<String>,
        credentials: Option<Credentials>,
        ca_pem: Option<String>,
    ) -> Self {
        Self {
            host: host.into(),
            credentials,
            ca_pem,
        }
    }

    /// The PEM certificate of the CA that signed the registry's serving
    /// certificate (a `ca.crt` for a certSecretRef), when it serves HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// `127.0.0.1:PORT`, the registry host as image references spell it.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// `oci://127.0.0.1:PORT/<repo>`, as an OCIRepository or HelmRepository URL.
    pub fn oci_url(&self, repo: &str) -> String {
        format!("oci://{}/{repo}", self.host())
    }

    /// The basic-auth user name, when the registry requires auth.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The basic-auth password, when the registry requires auth.
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    /// A `.dockerconfigjson` for this registry, as in a
    /// `kubernetes.io/dockerconfigjson` Secret (`{"auths": {}}` without auth).
    pub fn docker_config_json(&self) -> String {
        let auths = match &self.credentials {
            Some(c) => {
                use base64::Engine;
                let auth = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password));
                let mut auths = serde_json::Map::new();
                auths.insert(
                    self.host(),
                    serde_json::json!({
                        "username": c.username, "password": c.password, "auth": auth,
                    }),
                );
                serde_json::Value::Object(auths)
            }
            None => serde_json::json!({}),
        };
        serde_json::json!({ "auths": auths }).to_string()
    }

    /// Pushes a minimal valid OCI image (a config and one layer holding a file
    /// that names `repo:tag`, so every tag has its own digest) as `repo:tag`,
    /// returning the manifest digest.
    pub fn push_image(&self, repo: &str, tag: &str) -> Result<String> {
        self.push_image_built(repo, tag, None)
    }

    /// [`push_image`](Self::push_image) with the config's `created` time
    /// (RFC 3339) set to `created`.
    pub fn push_image_built(&self, repo: &str, tag: &str, created: Option<&str>) -> Result<String> {
        let layer_tar = tar_of([("etc/ferroflux-e2e-image", format!("{repo}:{tag}\n"))])?;
        let layer = gzip(&layer_tar)?;
        let mut config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&layer_tar)] },
        });
        if let Some(created) = created {
            config["created"] = created.into();
        }
        let config = config.to_string();
        self.push_manifest_of(
            repo,
            tag,
            (OCI_CONFIG, config.as_bytes()),
            &[(OCI_LAYER_GZIP, &layer)],
            None,
        )
    }

    /// Pushes a Flux OCI artifact holding `files` (path, content) as
    /// `repo:tag`, like `flux push artifact` does, with source
    /// `https://example.invalid/ferroflux-e2e` and revision `tag`.
    /// Returns the manifest digest.
    pub fn push_flux_artifact<I, P, C>(&self, repo: &str, tag: &str, files: I) -> Result<String>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        let annotations = ArtifactAnnotations {
            source: "https://example.invalid/ferroflux-e2e".to_string(),
            revision: tag.to_string(),
        };
        self.push_flux_artifact_with(repo, tag, files, &annotations)
    }

    /// [`push_flux_artifact`](Self::push_flux_artifact) with given annotations.
    pub fn push_flux_artifact_with<I, P, C>(
        &self,
        repo: &str,
        tag: &str,
        files: I,
        annotations: &ArtifactAnnotations,
    ) -> Result<String>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        let content = gzip(&tar_of(files)?)?;
        let created = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let annotations = serde_json::json!({
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.source": annotations.source,
            "org.opencontainers.image.revision": annotations.revision,
        });
        self.push_manifest_of(
            repo,
            tag,
            (FLUX_CONFIG, b"{}"),
            &[(FLUX_CONTENT, &content)],
            Some(annotations),
        )
    }

    /// Pushes `config` and `layers` (media type, bytes) as blobs and an OCI
    /// manifest naming them as `repo:tag`; returns the manifest digest.
    pub fn push_manifest_of(
        &self,
        repo: &str,
        tag: &str,
        config: (&str, &[u8]),
        layers: &[(&str, &[u8])],
        annotations: Option<serde_json::Value>,
    ) -> Result<String> {
        let descriptor = |media_type: &str, bytes: &[u8]| {
            serde_json::json!({
                "mediaType": media_type,
                "digest": sha256_digest(bytes),
                "size": bytes.len(),
            })
        };
        for blob in std::iter::once(config.1).chain(layers.iter().map(|(_, bytes)| *bytes)) {
            self.push_blob(repo, blob)?;
        }
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(config.0, config.1),
            "layers": layers.iter().map(|(media_type, bytes)| descriptor(media_type, bytes)).collect::<Vec<_>>(),
        });
        if let Some(annotations) = annotations {
            manifest["annotations"] = annotations;
        }
        self.push_manifest(repo, tag, OCI_MANIFEST, manifest.to_string().as_bytes())
    }

    /// Uploads `bytes` as a blob of `repo` (monolithic upload); returns its digest.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        self.http(|client| {
            let exists = self
                .request(client, Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"))?
                .send()?;
            if exists.status().is_success() {
                return Ok(digest.clone());
            }
            let started = self
                .request(client, Method::POST, &format!("/v2/{repo}/blobs/uploads/"))?
                .send()?;
            let started = expect_status(started, StatusCode::ACCEPTED, "starting a blob upload")?;
            let location = started
                .headers()
                .get(reqwest::header::LOCATION)
                .context("blob upload without a Location")?
                .to_str()
                .context("blob upload Location is not text")?;
            // Location may be relative and may already carry a query.
            let mut url = self.base_url()?.join(location)?;
            url.query_pairs_mut().append_pair("digest", &digest);
            let put = self
                .authorize(client.put(url))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(bytes.to_vec())
                .send()?;
            expect_status(put, StatusCode::CREATED, "uploading a blob")?;
            Ok(digest.clone())
        })
    }

    /// Puts `manifest` (of `media_type`) as `repo:reference`; returns its digest.
    pub fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<String> {
        let digest = sha256_digest(manifest);
        self.http(|client| {
            let response = self
                .request(
                    client,
                    Method::PUT,
                    &format!("/v2/{repo}/manifests/{reference}"),
                )?
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(manifest.to_vec())
                .send()?;
            let response = expect_status(response, StatusCode::CREATED, "putting a manifest")?;
            if let Some(stored) = response.headers().get("Docker-Content-Digest") {
                ensure!(
                    stored.as_bytes() == digest.as_bytes(),
                    "registry stored the manifest as {stored:?}, expected {digest}"
                );
            }
            Ok(digest.clone())
        })
    }

    /// Adds tag `new_tag` to the manifest `repo:reference` (as `flux tag artifact`).
    pub fn tag(&self, repo: &str, reference: &str, new_tag: &str) -> Result<String> {
        let (media_type, bytes) = self.manifest_bytes(repo, reference)?;
        self.push_manifest(repo, new_tag, &media_type, &bytes)
    }

    /// The tags of `repo`, as the registry lists them.
    pub fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let listing: serde_json::Value = self.http(|client| {
            let response = self
                .request(client, Method::GET, &format!("/v2/{repo}/tags/list"))?
                .send()?;
            Ok(expect_status(response, StatusCode::OK, "listing tags")?.json()?)
        })?;
        Ok(listing["tags"]
            .as_array()
            .map(|tags| {
                tags.iter()
                    .filter_map(|tag| tag.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The manifest `repo:reference` (a tag or digest): its digest and its JSON.
    pub fn manifest(&self, repo: &str, reference: &str) -> Result<(String, serde_json::Value)> {
        let (_, bytes) = self.manifest_bytes(repo, reference)?;
        let manifest = serde_json::from_slice(&bytes).context("parsing the manifest")?;
        Ok((sha256_digest(&bytes), manifest))
    }

    /// The manifest `repo:reference` as stored: its media type and bytes.
    pub fn manifest_bytes(&self, repo: &str, reference: &str) -> Result<(String, Vec<u8>)> {
        self.http(|client| {
            let response = self
                .request(
                    client,
                    Method::GET,
                    &format!("/v2/{repo}/manifests/{reference}"),
                )?
                .header(reqwest::header::ACCEPT, MANIFEST_ACCEPT)
                .send()?;
            let response = expect_status(response, StatusCode::OK, "getting a manifest")?;
            let media_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or(OCI_MANIFEST)
                .to_string();
            Ok((media_type, response.bytes()?.to_vec()))
        })
    }

    /// The blob `digest` of `repo`.
    pub fn blob(&self, repo: &str, digest: &str) -> Result<Vec<u8>> {
        self.http(|client| {
            let response = self
                .request(client, Method::GET, &format!("/v2/{repo}/blobs/{digest}"))?
                .send()?;
            Ok(expect_status(response, StatusCode::OK, "getting a blob")?
                .bytes()?
                .to_vec())
        })
    }

    fn base_url(&self) -> Result<Url> {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        Ok(Url::parse(&format!("{scheme}://{}/", self.host()))?)
    }

    fn request(&self, client: &Client, method: Method, path: &str) -> Result<RequestBuilder> {
        let url = self.base_url()?.join(path)?;
        Ok(self.authorize(client.request(method, url)))
    }

    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        match &self.credentials {
            Some(c) => request.basic_auth(&c.username, Some(&c.password)),
            None => request,
        }
    }

    /// Runs `f` with a blocking HTTP client on a thread of its own: reqwest's
    /// blocking client panics when used on a tokio runtime thread, and tests
    /// calling these helpers are often async.
    fn http<T: Send>(&self, f: impl FnOnce(&Client) -> Result<T> + Send) -> Result<T> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let mut builder = Client::builder().timeout(Duration::from_secs(60));
                    if let Some(ca) = &self.ca_pem {
                        builder = builder
                            .tls_certs_merge([reqwest::Certificate::from_pem(ca.as_bytes())
                                .context("reading the registry's CA")?]);
                    }
                    let client = builder.build().context("building an HTTP client")?;
                    f(&client)
                })
                .join()
                .unwrap_or_else(|_| bail!("the registry request thread panicked"))
        })
    }
}

/// Fails with the response body unless `response` has `status`.
fn expect_status(
    response: reqwest::blocking::Response,
    status: StatusCode,
    what: &str,
) -> Result<reqwest::blocking::Response> {
    if response.status() == status {
        return Ok(response);
    }
    let got = response.status();
    let body = response.text().unwrap_or_default();
    bail!("{what}: expected {status}, got {got}: {body}")
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A tar of `files` (path, content) with fixed metadata (mode 0644, owner 0,
/// mtime 0), so equal content gives equal digests.
pub fn tar_of<I, P, C>(files: I) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = (P, C)>,
    P: AsRef<str>,
    C: AsRef<[u8]>,
{
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let content = content.as_ref();
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path.as_ref(), content)
            .with_context(|| format!("adding {} to a tar", path.as_ref()))?;
    }
    Ok(builder.into_inner()?)
}

/// gzip of `bytes` (the header's mtime stays 0, so output is reproducible).
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes)?;
    Ok(encoder.finish()?)
}

/// A CA and a serving certificate for `127.0.0.1`/`localhost` (and the
/// machine's [`loopback_alias`](crate::proxy::loopback_alias)) signed by it.
pub(crate) struct TestPki {
    pub(crate) ca_pem: String,
    pub(crate) server_cert_pem: String,
    pub(crate) server_key_pem: String,
}

impl TestPki {
    pub(crate) fn generate() -> Result<Self> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate()?;
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.distinguished_name
            .push(DnType::CommonName, "ferroflux-e2e-registry-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, &ca_key);
        let server_key = KeyPair::generate()?;
        // Also the machine's name for loopback, by which the proxy
        // environment tests reach the servers (see `proxy::loopback_alias`).
        let mut names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        names.extend(crate::proxy::loopback_alias().ok());
        let mut server = CertificateParams::new(names)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "ferroflux-e2e-registry");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer)?;
        Ok(Self {
            ca_pem: ca_cert.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }
}
