//! Reading Helm's release storage (the `secret` driver: one Secret
//! `sh.helm.release.v1.<name>.v<revision>` per revision, labelled
//! `owner=helm,name=<name>,status=<status>,version=<revision>`) to observe
//! what helm did, and unlocking a release left in a `pending-*` state.
//!
//! Observing through the API is one list call instead of several helm
//! processes per reconciliation. The only write is the unlock, which does what
//! Flux does in that situation: the stale pending revision is marked `failed`
//! (in the encoded release and in the Secret's `status` label), guarded by the
//! Secret's resourceVersion so a concurrent helm write is never overwritten.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, PostParams};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::registry::Registry;
use serde_json::Value;

use crate::release::{Release, is_pending};

/// Data key of the encoded release in a storage Secret.
const RELEASE_KEY: &str = "release";
/// Gzip's magic bytes: helm compresses the release JSON.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Limit on a decoded release, far above what a Secret can hold.
const MAX_RELEASE_BYTES: u64 = 64 * 1024 * 1024;

/// Errors reading or writing Helm's storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The API call failed.
    #[error("failed to {action} Helm storage in namespace {namespace}: {source}")]
    Api {
        /// What was being done.
        action: &'static str,
        /// The storage namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A storage Secret does not hold a release helm could have written.
    #[error("invalid Helm release in Secret {secret}: {reason}")]
    Decode {
        /// The Secret.
        secret: String,
        /// What is wrong.
        reason: String,
    },
}

/// One revision as stored: the release, its raw JSON (for rewriting it
/// without losing fields the controller does not model) and the Secret.
#[derive(Clone, Debug)]
pub struct StoredRelease {
    /// The decoded release.
    pub release: Release,
    raw: Value,
    secret: Secret,
}

/// Wall time of the storage lists (the API round trip and decoding): with
/// [`crate::helm_cli::HELM_DURATION_METRIC`], it tells where the time of a
/// reconciliation outside helm goes.
pub const LIST_DURATION_METRIC: &str = "helm_controller_storage_list_duration_seconds";

/// Registers [`LIST_DURATION_METRIC`] in `registry`.
pub fn register_list_metric(registry: &mut Registry) -> Histogram {
    let durations = Histogram::new(exponential_buckets_range(0.001, 60.0, 12));
    registry.register(
        LIST_DURATION_METRIC,
        "The duration in seconds of listing a release's revisions in Helm's storage",
        durations.clone(),
    );
    durations
}

/// Helm's storage, read through the API.
#[derive(Clone)]
pub struct ReleaseStorage {
    client: kube::Client,
    list_durations: Option<Histogram>,
}

impl ReleaseStorage {
    /// Storage access with `client` (which needs get/list/update on Secrets).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            list_durations: None,
        }
    }

    /// Records the wall time of every storage list in `durations` (see
    /// [`register_list_metric`]).
    pub fn with_list_durations(mut self, durations: Histogram) -> Self {
        self.list_durations = Some(durations);
        self
    }

    /// Every stored revision of release `name` in `namespace`, oldest first.
    pub async fn revisions(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Vec<StoredRelease>, StorageError> {
        let started = std::time::Instant::now();
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let params = ListParams::default().labels(&format!("owner=helm,name={name}"));
        let list = api.list(&params).await;
        if let Some(durations) = &self.list_durations {
            durations.observe(started.elapsed().as_secs_f64());
        }
        let list = list.map_err(|source| StorageError::Api {
            action: "list",
            namespace: namespace.to_string(),
            source,
        })?;
        let mut revisions = list
            .items
            .into_iter()
            .map(StoredRelease::decode)
            .collect::<Result<Vec<_>, _>>()?;
        // Another release's Secret may carry the label by accident.
        revisions.retain(|stored| stored.release.name == name);
        revisions.sort_by_key(|stored| stored.release.version);
        Ok(revisions)
    }

    /// The latest stored revision, if any.
    pub async fn latest(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredRelease>, StorageError> {
        Ok(self.revisions(namespace, name).await?.pop())
    }

    /// Marks a revision stuck in a `pending-*` status as `failed`, the way
    /// helm itself records a failed action, so helm accepts new actions on
    /// the release. Returns the updated release; fails with a conflict if
    /// helm wrote the revision since it was read.
    pub async fn mark_failed(
        &self,
        stored: &StoredRelease,
        description: &str,
    ) -> Result<Release, StorageError> {
        let namespace = stored.secret.metadata.namespace.clone().unwrap_or_default();
        let secret_name = stored.secret.metadata.name.clone().unwrap_or_default();
        let mut raw = stored.raw.clone();
        if let Some(info) = raw.get_mut("info").and_then(Value::as_object_mut) {
            info.insert("status".into(), Value::from("failed"));
            info.insert("description".into(), Value::from(description));
        }
        let release: Release =
            serde_json::from_value(raw.clone()).map_err(|err| StorageError::Decode {
                secret: secret_name.clone(),
                reason: err.to_string(),
            })?;
        let mut secret = stored.secret.clone();
        let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("status".into(), "failed".into());
        labels.insert(
            "modifiedAt".into(),
            k8s_openapi::jiff::Timestamp::now().as_second().to_string(),
        );
        let encoded = encode_release(&raw).map_err(|reason| StorageError::Decode {
            secret: secret_name.clone(),
            reason,
        })?;
        secret
            .data
            .get_or_insert_with(BTreeMap::new)
            .insert(RELEASE_KEY.into(), ByteString(encoded));
        // `replace` sends the resourceVersion read: a concurrent write fails
        // with 409 instead of being lost.
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &namespace);
        api.replace(&secret_name, &PostParams::default(), &secret)
            .await
            .map_err(|source| StorageError::Api {
                action: "update",
                namespace,
                source,
            })?;
        Ok(release)
    }
}

impl StoredRelease {
    fn decode(secret: Secret) -> Result<Self, StorageError> {
        let secret_name = secret.metadata.name.clone().unwrap_or_default();
        let bad = |reason: String| StorageError::Decode {
            secret: secret_name.clone(),
            reason,
        };
        let data = secret
            .data
            .as_ref()
            .and_then(|data| data.get(RELEASE_KEY))
            .ok_or_else(|| bad(format!("no '{RELEASE_KEY}' key")))?;
        let json = decode_release(&data.0).map_err(&bad)?;
        let raw: Value = serde_json::from_slice(&json).map_err(|err| bad(err.to_string()))?;
        let release: Release =
            serde_json::from_value(raw.clone()).map_err(|err| bad(err.to_string()))?;
        Ok(Self {
            release,
            raw,
            secret,
        })
    }

    /// Whether this revision is stuck in a `pending-*` status.
    pub fn is_pending(&self) -> bool {
        is_pending(&self.release.info.status)
    }
}

/// Helm's encoding: base64 of (usually gzip'd) release JSON.
pub fn decode_release(data: &[u8]) -> Result<Vec<u8>, String> {
    let decoded = STANDARD
        .decode(data)
        .map_err(|err| format!("not base64: {err}"))?;
    if !decoded.starts_with(&GZIP_MAGIC) {
        return Ok(decoded);
    }
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(decoded.as_slice())
        .take(MAX_RELEASE_BYTES)
        .read_to_end(&mut json)
        .map_err(|err| format!("not gzip: {err}"))?;
    Ok(json)
}

/// Encodes release JSON the way helm does.
pub fn encode_release(release: &Value) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(release).map_err(|err| err.to_string())?;
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gzip.write_all(&json).map_err(|err| err.to_string())?;
    let compressed = gzip.finish().map_err(|err| err.to_string())?;
    Ok(STANDARD.encode(compressed).into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let release = serde_json::json!({
            "name": "r1", "version": 2, "namespace": "apps",
            "info": {"status": "pending-upgrade", "description": "Preparing upgrade"},
            "apply_method": "ssa"
        });
        let encoded = encode_release(&release).expect("encodes");
        let decoded = decode_release(&encoded).expect("decodes");
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).expect("json"),
            release
        );
        // Uncompressed payloads (old helm versions) are read too.
        let plain = STANDARD.encode(br#"{"name":"x","version":1}"#);
        assert_eq!(
            decode_release(plain.as_bytes()).expect("plain"),
            br#"{"name":"x","version":1}"#
        );
        assert!(decode_release(b"%%%").is_err());
    }
}
