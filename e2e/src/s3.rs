//! A real S3 server: versitygw (built from its Go module by
//! [`crate::gobuild::versitygw_binary`]) with its POSIX backend, on a free
//! loopback port, over plain HTTP or HTTPS with a CA of its own. Buckets and
//! objects are made with SigV4-presigned requests (`rusty-s3`), as any S3
//! client makes them.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};

use crate::gobuild;
use crate::process::{self, Service};
use crate::registry::TestPki;

/// How long a presigned request stays valid.
const SIGNED_FOR: Duration = Duration::from_secs(300);
/// The region the servers serve unless told otherwise; signatures must name
/// the server's region.
pub const REGION: &str = "us-east-1";

/// A running versitygw. Stopped, and its directory deleted, on drop.
#[derive(Debug)]
pub struct S3Server {
    _service: Service,
    port: u16,
    region: String,
    credentials: Credentials,
    /// The PEM CA that signed the serving certificate, when serving HTTPS.
    ca_pem: Option<String>,
    client: reqwest::Client,
    _state: tempfile::TempDir,
}

impl S3Server {
    /// Builds versitygw if missing and starts it on 127.0.0.1 with a fresh
    /// root access key and secret, serving HTTPS when `tls` (a certificate
    /// for `127.0.0.1`/`localhost` signed by [`ca_pem`](Self::ca_pem)).
    pub fn start(tls: bool) -> Result<Self> {
        Self::start_in(tls, REGION)
    }

    /// [`start`](Self::start), serving `region`.
    pub fn start_in(tls: bool, region: &str) -> Result<Self> {
        let binary = gobuild::versitygw_binary()?;
        let state = tempfile::Builder::new()
            .prefix("ferroflux-s3-")
            .tempdir()
            .context("creating the S3 server's directory")?;
        let root = state.path().join("buckets");
        std::fs::create_dir_all(&root)?;
        let credentials = Credentials::new(
            format!("flux{}", hex::encode(rand::random::<[u8; 6]>())),
            hex::encode(rand::random::<[u8; 20]>()),
        );
        let mut tls_args = Vec::new();
        let mut ca_pem = None;
        let mut client = reqwest::Client::builder().timeout(Duration::from_secs(30));
        if tls {
            let pki = TestPki::generate()?;
            let cert = state.path().join("server.crt");
            let key = state.path().join("server.key");
            std::fs::write(&cert, &pki.server_cert_pem)?;
            std::fs::write(&key, &pki.server_key_pem)?;
            tls_args = vec![
                "--cert".to_string(),
                cert.display().to_string(),
                "--key".to_string(),
                key.display().to_string(),
            ];
            client =
                client.add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes())?);
            ca_pem = Some(pki.ca_pem);
        }
        let log = state.path().join("versitygw.log");
        let (service, port) =
            process::start_on_free_port("versitygw", &log, Duration::from_secs(20), |port| {
                let mut cmd = Command::new(&binary);
                cmd.env("ROOT_ACCESS_KEY_ID", credentials.key())
                    .env("ROOT_SECRET_ACCESS_KEY", credentials.secret())
                    .args(["--port", &format!("127.0.0.1:{port}"), "--region", region])
                    .args(&tls_args)
                    .arg("posix")
                    .arg(&root);
                Ok(cmd)
            })?;
        Ok(Self {
            _service: service,
            port,
            region: region.to_string(),
            credentials,
            ca_pem,
            client: client.build()?,
            _state: state,
        })
    }

    /// The server the tests of one test binary share (plain HTTP or TLS),
    /// started on first use; each test uses buckets named after its namespace.
    pub async fn shared(tls: bool) -> Result<&'static S3Server> {
        type Slot = std::sync::OnceLock<std::result::Result<S3Server, String>>;
        static SLOTS: [Slot; 2] = [Slot::new(), Slot::new()];
        let slot = &SLOTS[usize::from(tls)];
        if slot.get().is_none() {
            let started = tokio::task::spawn_blocking(move || {
                S3Server::start(tls).map_err(|e| format!("{e:#}"))
            })
            .await?;
            // A parallel test may have won the race; its server is as good as ours.
            let _ = slot.set(started);
        }
        slot.get()
            .context("S3 server slot is empty")?
            .as_ref()
            .map_err(|e| anyhow::anyhow!("the S3 server did not start: {e}"))
    }

    /// `127.0.0.1:PORT`: a Bucket's `spec.endpoint`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The root access key (a Secret's `accesskey`).
    pub fn access_key(&self) -> &str {
        self.credentials.key()
    }

    /// The root secret key (a Secret's `secretkey`).
    pub fn secret_key(&self) -> &str {
        self.credentials.secret()
    }

    /// The PEM certificate of the CA that signed the serving certificate (a
    /// `ca.crt` for a certSecretRef), when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    fn bucket(&self, name: &str) -> Result<Bucket> {
        let scheme = if self.ca_pem.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{scheme}://{}", self.endpoint()).parse()?;
        Ok(Bucket::new(
            endpoint,
            UrlStyle::Path,
            name.to_string(),
            self.region.clone(),
        )?)
    }

    /// Creates the bucket `name`.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        let bucket = self.bucket(name)?;
        let url = bucket.create_bucket(&self.credentials).sign(SIGNED_FOR);
        self.send(self.client.put(url), &format!("creating bucket {name}"))
            .await
    }

    /// Writes `content` to `key` in `bucket`; returns the ETag the server
    /// gave it, without quotes.
    pub async fn put_object(&self, bucket: &str, key: &str, content: &[u8]) -> Result<String> {
        let target = self.bucket(bucket)?;
        let url = target
            .put_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        let response = self
            .client
            .put(url)
            .body(content.to_vec())
            .send()
            .await
            .with_context(|| format!("PUT {bucket}/{key}"))?;
        let status = response.status();
        let etag = response
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_string());
        if !status.is_success() {
            bail!(
                "PUT {bucket}/{key}: {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        etag.with_context(|| format!("PUT {bucket}/{key}: no ETag in the answer"))
    }

    /// Removes `key` from `bucket`.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let target = self.bucket(bucket)?;
        let url = target
            .delete_object(Some(&self.credentials), key)
            .sign(SIGNED_FOR);
        self.send(self.client.delete(url), &format!("deleting {bucket}/{key}"))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder, what: &str) -> Result<()> {
        let response = request.send().await.with_context(|| what.to_string())?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "{what}: {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }
}
