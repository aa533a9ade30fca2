//! HelmRepository: download an HTTP(S) repository's `index.yaml`, check and
//! normalise it, and store it as an artifact whose revision is its digest.
//! Repositories of `type: oci` are plain data for HelmCharts, as in Flux: they
//! are not reconciled and get no artifact or conditions.

use std::sync::Arc;
use std::time::Duration;

use api::meta::FINALIZER;
use api::source::{HelmRepository, HelmRepositoryStatus, HelmRepositoryType};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use serde_json::Value;
use tracing::info;

use crate::Error;
use crate::controller::{Context, read_secret};
use crate::source_status::{self, Outcome};
use crate::storage::{ArtifactStore, digest_hex};

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "HelmRepository";
/// Flux's default timeout for fetching an index.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Reconciles one HelmRepository.
pub async fn reconcile(obj: Arc<HelmRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let oci = obj.spec.r#type == Some(HelmRepositoryType::Oci);
    let has_finalizer = obj.finalizers().iter().any(|f| f == FINALIZER);
    if oci && !has_finalizer {
        // A data container: nothing to fetch, store or clean up.
        return Ok(Action::await_change());
    }
    // An `oci` repository that still has the finalizer (its type was changed)
    // only gets its artifacts removed on deletion.
    let idle = oci || obj.spec.suspend == Some(true);
    source_status::reconcile_source(obj, ctx, KIND, idle, |obj, ctx, status| {
        Box::pin(sync(obj, ctx, status))
    })
    .await
}

async fn sync(
    obj: &HelmRepository,
    ctx: &Context,
    status: &mut HelmRepositoryStatus,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;
    let url = spec.url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Error::InvalidUrl {
            url: spec.url.clone(),
            reason: "a HelmRepository of type 'default' needs an http or https URL".into(),
        });
    }
    let timeout = match &spec.timeout {
        Some(t) => t
            .to_std()
            .map_err(|e| Error::InvalidDuration(e.to_string()))?,
        None => DEFAULT_TIMEOUT,
    };

    // Fetch: credentials and TLS settings, then the index itself.
    let (client, basic) = repository_client(ctx, &namespace, obj, timeout).await?;
    let index_url = format!("{url}/index.yaml");
    let mut request = client.get(&index_url);
    if let Some((username, password)) = &basic {
        request = request.basic_auth(username, Some(password));
    }
    let body = crate::chart_repository::read_body(request, ctx.settings.helm_index_max_size)
        .await
        .map_err(|e| match e.status {
            Some(code)
                if code == reqwest::StatusCode::UNAUTHORIZED
                    || code == reqwest::StatusCode::FORBIDDEN =>
            {
                Error::Secret {
                    namespace: namespace.clone(),
                    name: spec
                        .secret_ref
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default(),
                    message: format!(
                        "the repository at {index_url} refused the credentials ({code})"
                    ),
                }
            }
            _ => Error::Index(format!(
                "failed to fetch Helm repository index from {index_url}: {}",
                e.message
            )),
        })?;
    let normalised = normalise_index(&body)?;
    let digest = runtime::artifact::canonical_digest().digest(&normalised);
    let hex = digest_hex(&digest).to_string();

    // Decide: same index as the one stored?
    if let Some(artifact) = status
        .artifact
        .as_ref()
        .filter(|a| ctx.store.exists(&a.path))
        && artifact.revision == digest
    {
        return Ok(Outcome::UpToDate {
            message: stored_message(&digest),
        });
    }

    // Act: store it and point the index.yaml link at it.
    let path = ArtifactStore::artifact_path(KIND, &namespace, &name, &format!("index-{hex}.yaml"));
    let stored = ctx
        .store
        .store_bytes(&path, normalised)
        .await
        .map_err(|e| Error::Archive(Box::new(e)))?;
    info!(%namespace, %name, revision = %digest, "stored Helm repository index");
    status.artifact = Some(stored.artifact(&digest, None));
    if let Some(link) = ctx.store.publish(&stored, "index.yaml") {
        status.url = Some(link);
    }
    Ok(Outcome::Stored {
        message: stored_message(&digest),
    })
}

/// An HTTP client for a HelmRepository (its CA and client certificate) and
/// its basic-auth credentials, if any.
pub async fn repository_client(
    ctx: &Context,
    namespace: &str,
    repo: &HelmRepository,
    timeout: Duration,
) -> Result<(reqwest::Client, Option<(String, String)>), Error> {
    let mut client = env_proxy::client_builder().timeout(timeout);
    let mut basic = None;
    if let Some(secret_ref) = &repo.spec.secret_ref {
        let data = read_secret(ctx, namespace, &secret_ref.name).await?;
        let text = |key: &str| {
            data.get(key)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        if let Some(username) = text("username").filter(|u| !u.is_empty()) {
            basic = Some((username, text("password").unwrap_or_default()));
        }
        client = with_tls(client, &data).map_err(|message| Error::Secret {
            namespace: namespace.to_string(),
            name: secret_ref.name.clone(),
            message,
        })?;
    }
    if let Some(cert_ref) = &repo.spec.cert_secret_ref {
        let data = read_secret(ctx, namespace, &cert_ref.name).await?;
        client = with_tls(client, &data).map_err(|message| Error::Secret {
            namespace: namespace.to_string(),
            name: cert_ref.name.clone(),
            message,
        })?;
    }
    let client = client
        .build()
        .map_err(|e| Error::Index(format!("cannot build the HTTP client: {e}")))?;
    Ok((client, basic))
}

fn stored_message(revision: &str) -> String {
    format!("stored artifact: revision '{revision}'")
}

/// `client` trusting the Secret's CA (`ca.crt`, or the legacy `caFile`) and
/// presenting its client certificate (`tls.crt` + `tls.key`, or `certFile` +
/// `keyFile`); the error says which entry is invalid.
pub(crate) fn with_tls(
    mut client: reqwest::ClientBuilder,
    data: &std::collections::BTreeMap<String, Vec<u8>>,
) -> Result<reqwest::ClientBuilder, String> {
    let invalid = |what: &str, e: reqwest::Error| format!("invalid {what}: {e}");
    if let Some(ca) = data.get("ca.crt").or_else(|| data.get("caFile")) {
        for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| invalid("ca.crt", e))? {
            client = client.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (
        data.get("tls.crt").or_else(|| data.get("certFile")),
        data.get("tls.key").or_else(|| data.get("keyFile")),
    ) {
        let mut pem = cert.clone();
        pem.push(b'\n');
        pem.extend_from_slice(key);
        client = client.identity(
            reqwest::Identity::from_pem(&pem).map_err(|e| invalid("tls.crt/tls.key", e))?,
        );
    }
    Ok(client)
}

pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let more = inner.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = inner.source();
    }
    text
}

/// Parses an index, checks it is one, and renders it canonically: keys sorted,
/// each chart's versions newest first, so the same content always has the same
/// digest.
pub fn normalise_index(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| Error::Index("index.yaml is not UTF-8".into()))?;
    let mut index: Value = serde_saphyr::from_str(text)
        .map_err(|e| Error::Index(format!("failed to parse Helm repository index: {e}")))?;
    let object = index
        .as_object_mut()
        .ok_or_else(|| Error::Index("index.yaml is not a mapping".into()))?;
    if !object.get("apiVersion").is_some_and(Value::is_string) {
        return Err(Error::Index("index.yaml has no apiVersion".into()));
    }
    let entries = object
        .entry("entries")
        .or_insert_with(|| Value::Object(Default::default()));
    let entries = entries
        .as_object_mut()
        .ok_or_else(|| Error::Index("index.yaml entries is not a mapping".into()))?;
    for (chart, versions) in entries.iter_mut() {
        let list = versions
            .as_array_mut()
            .ok_or_else(|| Error::Index(format!("index.yaml entries.{chart} is not a list")))?;
        list.sort_by(|a, b| {
            let version = |v: &Value| {
                v.get("version")
                    .and_then(Value::as_str)
                    .and_then(runtime::semver::Version::parse)
            };
            version(b).cmp(&version(a))
        });
    }
    let canonical = sort_keys(index);
    serde_json::to_vec(&canonical)
        .map_err(|e| Error::Index(format!("failed to render the index: {e}")))
}

/// `value` with the keys of every object in sorted order.
pub(crate) fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k, sort_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "apiVersion: v1\nentries:\n  podinfo:\n  - name: podinfo\n    version: 6.0.0\n    urls: [podinfo-6.0.0.tgz]\n  - name: podinfo\n    version: 6.1.0\n    urls: [podinfo-6.1.0.tgz]\ngenerated: \"2026-01-01T00:00:00Z\"\n";

    #[test]
    fn index_is_normalised_deterministically() {
        let a = normalise_index(INDEX.as_bytes()).unwrap();
        // Same content, other key order and version order.
        let reordered = "entries:\n  podinfo:\n  - version: 6.1.0\n    name: podinfo\n    urls: [podinfo-6.1.0.tgz]\n  - urls: [podinfo-6.0.0.tgz]\n    name: podinfo\n    version: 6.0.0\napiVersion: v1\ngenerated: \"2026-01-01T00:00:00Z\"\n";
        assert_eq!(a, normalise_index(reordered.as_bytes()).unwrap());
        let parsed: Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(parsed["entries"]["podinfo"][0]["version"], "6.1.0");
    }

    #[test]
    fn malformed_indexes_are_refused() {
        for bad in [
            "not: [valid",
            "- a list",
            "entries: {}\n",
            "apiVersion: v1\nentries: [1]\n",
        ] {
            assert!(
                matches!(normalise_index(bad.as_bytes()), Err(Error::Index(_))),
                "{bad}"
            );
        }
    }
}
