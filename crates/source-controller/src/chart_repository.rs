//! An HTTP(S) Helm chart repository as a client: its index, the version of a
//! chart that satisfies a range, and the chart archive itself (credentials
//! only to the repository's own host unless `passCredentials`, index digest
//! checked, size capped). Used for a HelmChart's own chart and for the remote
//! dependencies of charts built from a source.

use std::time::Duration;

use api::source::HelmRepository;
use futures::StreamExt;
use serde_json::Value;

use crate::Error;
use crate::chart_package::BuildReason;
use crate::controller::Context;
use crate::helm_repository::{error_chain, repository_client};

/// A body that could not be had: the HTTP status when the server answered.
#[derive(Debug)]
pub struct BodyError {
    /// The response status, when there was one.
    pub status: Option<reqwest::StatusCode>,
    /// What went wrong.
    pub message: String,
}

/// Sends `request` and reads a successful response's body, refusing more
/// than `limit` bytes.
pub async fn read_body(request: reqwest::RequestBuilder, limit: u64) -> Result<Vec<u8>, BodyError> {
    // Through the environment's proxy, a transport error or a 407 is the
    // proxy's doing: the message names it.
    let transport_error = |e: reqwest::Error| BodyError {
        status: None,
        message: env_proxy::name_proxy(
            error_chain(&e),
            e.url().map(reqwest::Url::as_str).unwrap_or_default(),
        ),
    };
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    if !status.is_success() {
        let mut message = format!("HTTP status {status}");
        if status == reqwest::StatusCode::PROXY_AUTHENTICATION_REQUIRED {
            message = env_proxy::name_proxy(message, response.url().as_str());
        }
        return Err(BodyError {
            status: Some(status),
            message,
        });
    }
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large(limit));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport_error)?;
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limit {
            return Err(too_large(limit));
        }
    }
    Ok(body)
}

fn too_large(limit: u64) -> BodyError {
    BodyError {
        status: None,
        message: format!("the size limit of {limit} bytes is exceeded"),
    }
}

/// A chart repository and how to talk to it.
pub struct ChartRepositoryClient {
    url: String,
    client: reqwest::Client,
    basic: Option<(String, String)>,
    pass_credentials: bool,
}

impl ChartRepositoryClient {
    /// The client for a HelmRepository object (its credentials and TLS).
    pub async fn for_repository(
        ctx: &Context,
        namespace: &str,
        repo: &HelmRepository,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let (client, basic) = repository_client(ctx, namespace, repo, timeout).await?;
        Ok(ChartRepositoryClient {
            url: repo.spec.url.trim_end_matches('/').to_string(),
            client,
            basic,
            pass_credentials: repo.spec.pass_credentials == Some(true),
        })
    }

    /// A client without credentials, for a repository no object describes.
    pub fn anonymous(url: &str, timeout: Duration) -> Result<Self, Error> {
        let client = env_proxy::client_builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Index(format!("cannot build the HTTP client: {e}")))?;
        Ok(ChartRepositoryClient {
            url: url.trim_end_matches('/').to_string(),
            client,
            basic: None,
            pass_credentials: false,
        })
    }

    /// The repository URL without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Downloads and normalises `index.yaml` (at most `limit` bytes).
    pub async fn index(&self, limit: u64) -> Result<Value, String> {
        let index_url = format!("{}/index.yaml", self.url);
        let bytes = read_body(self.authorised(self.client.get(&index_url), true), limit)
            .await
            .map_err(|e| format!("failed to fetch {index_url}: {}", e.message))?;
        let normalised =
            crate::helm_repository::normalise_index(&bytes).map_err(|e| e.to_string())?;
        serde_json::from_slice(&normalised).map_err(|e| e.to_string())
    }

    /// Downloads the chart of an index `entry` (at most `limit` bytes) and
    /// checks it against the entry's digest.
    pub async fn download(&self, entry: &IndexEntry, limit: u64) -> Result<Vec<u8>, String> {
        let url = entry
            .value
            .get("urls")
            .and_then(|urls| urls.get(0))
            .and_then(Value::as_str)
            .ok_or_else(|| format!("chart version '{}' has no URL", entry.version))?;
        let url = absolute_url(&self.url, url)?;
        let same_host = same_host(&self.url, &url);
        let request = self.authorised(self.client.get(&url), self.pass_credentials || same_host);
        let bytes = read_body(request, limit)
            .await
            .map_err(|e| format!("failed to download chart from {url}: {}", e.message))?;
        if let Some(expected) = entry
            .value
            .get("digest")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
        {
            runtime::artifact::verify_digest(&bytes, &format!("sha256:{expected}"))
                .map_err(|e| format!("chart does not match the index: {e}"))?;
        }
        Ok(bytes)
    }

    fn authorised(&self, request: reqwest::RequestBuilder, send: bool) -> reqwest::RequestBuilder {
        match &self.basic {
            Some((username, password)) if send => request.basic_auth(username, Some(password)),
            _ => request,
        }
    }
}

/// One chart version of an index.
#[derive(Clone, Debug)]
pub struct IndexEntry {
    /// The version as the index writes it.
    pub version: String,
    /// The whole entry (urls, digest, ...).
    pub value: Value,
}

/// The version of `chart` in `index` that `version` asks for: an exact match
/// first, else the highest one satisfying it as a semver range (`*` or empty:
/// the newest release). Errors are Flux's chart reference errors.
pub fn select_version(index: &Value, chart: &str, version: &str) -> Result<IndexEntry, Error> {
    let reference = |message: String| {
        BuildReason::ChartReference.error(format!(
            "failed to get chart version for remote reference: {message}"
        ))
    };
    let Some(entries) = index
        .get("entries")
        .and_then(|e| e.get(chart))
        .and_then(Value::as_array)
    else {
        return Err(reference("no chart name found".into()));
    };
    if entries.is_empty() {
        return Err(reference("no chart version found".into()));
    }
    let version_of = |e: &Value| e.get("version").and_then(Value::as_str).map(str::to_string);
    let entry = |found: &str| IndexEntry {
        version: found.to_string(),
        value: entries
            .iter()
            .find(|e| version_of(e).as_deref() == Some(found))
            .cloned()
            .unwrap_or(Value::Null),
    };
    if !version.is_empty()
        && entries
            .iter()
            .any(|e| version_of(e).as_deref() == Some(version))
    {
        return Ok(entry(version));
    }
    let range_text = if version.is_empty() { "*" } else { version };
    let range = runtime::semver::Range::parse(range_text).map_err(|e| reference(e.to_string()))?;
    let versions: Vec<String> = entries.iter().filter_map(version_of).collect();
    match range.highest(versions.iter().map(String::as_str)) {
        Some((found, _)) => Ok(entry(found)),
        None => Err(reference(format!(
            "no '{chart}' chart with version matching '{range_text}' found"
        ))),
    }
}

/// A chart URL from an index, made absolute against the repository URL.
fn absolute_url(repo_url: &str, chart_url: &str) -> Result<String, String> {
    if chart_url.contains("://") {
        return Ok(chart_url.to_string());
    }
    let base = reqwest::Url::parse(&format!("{}/", repo_url.trim_end_matches('/')))
        .map_err(|e| format!("invalid repository URL '{repo_url}': {e}"))?;
    base.join(chart_url)
        .map(|u| u.to_string())
        .map_err(|e| format!("invalid chart URL '{chart_url}': {e}"))
}

fn same_host(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.host_str() == b.host_str() && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_urls() {
        assert_eq!(
            absolute_url("http://127.0.0.1:8080", "podinfo-6.0.0.tgz").unwrap(),
            "http://127.0.0.1:8080/podinfo-6.0.0.tgz"
        );
        assert_eq!(
            absolute_url("https://charts.example/sub/", "pkg/a-1.0.0.tgz").unwrap(),
            "https://charts.example/sub/pkg/a-1.0.0.tgz"
        );
        assert_eq!(
            absolute_url("https://charts.example", "https://cdn.example/a-1.tgz").unwrap(),
            "https://cdn.example/a-1.tgz"
        );
        assert!(same_host("http://h:1/x", "http://h:1/y/z.tgz"));
        assert!(!same_host("http://h:1/x", "http://other:1/z.tgz"));
    }

    #[test]
    fn versions_are_selected_as_flux_does() {
        let index = serde_json::json!({"entries": {"app": [
            {"version": "1.1.0"}, {"version": "1.0.0"}, {"version": "2.0.0-rc.1"}
        ]}});
        assert_eq!(select_version(&index, "app", "").unwrap().version, "1.1.0");
        assert_eq!(
            select_version(&index, "app", "1.0.x").unwrap().version,
            "1.0.0"
        );
        assert_eq!(
            select_version(&index, "app", "2.0.0-rc.1").unwrap().version,
            "2.0.0-rc.1"
        );
        let missing = select_version(&index, "app", "3.x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            missing,
            "chart reference error: failed to get chart version for remote reference: no 'app' chart with version matching '3.x' found"
        );
        assert!(select_version(&index, "other", "*").is_err());
    }
}
