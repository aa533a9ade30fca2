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
//!
//! Most reconciliations only need the latest revision of a release that has
//! not changed since the controller last saw it. [`StorageIndex`] keeps the
//! metadata of every storage Secret from a watch (labels carry name, version
//! and status), and [`ReleaseStorage`] keeps the decoded latest revision of
//! each release with its resourceVersion: when the index shows the same
//! resourceVersion, the latest release is known without an API call. An index
//! behind what the HelmRelease's history already records (a revision helm
//! just wrote) is never trusted: the storage is then read directly.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use futures::future::BoxFuture;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::registry::Registry;
use serde_json::Value;

use api::helm::Snapshot;

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

/// Label selector of Helm's storage Secrets.
const STORAGE_SELECTOR: &str = "owner=helm";
/// Helm's status of a release uninstalled with its history kept.
const STATUS_UNINSTALLED: &str = "uninstalled";

/// The metadata of Helm's storage Secrets, kept current by a watch, in one
/// namespace or in all.
#[derive(Clone)]
pub struct StorageIndex {
    namespace: Option<String>,
    secrets: Store<PartialObjectMeta<Secret>>,
}

/// What the index knows of the newest revision of a release.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IndexedRevision {
    secret: String,
    resource_version: Option<String>,
    version: i64,
    status: String,
}

impl StorageIndex {
    /// An index of the storage Secrets in `namespace` (all namespaces when
    /// `None`), and the watch that fills it, to be driven until shutdown.
    pub fn watch(client: kube::Client, namespace: Option<&str>) -> (Self, BoxFuture<'static, ()>) {
        // An Api of PartialObjectMeta asks the server for metadata only.
        let api: Api<PartialObjectMeta<Secret>> = match namespace {
            Some(namespace) => Api::namespaced(client, namespace),
            None => Api::all(client),
        };
        let (secrets, writer) = reflector::store::<PartialObjectMeta<Secret>>();
        let stream = watcher(api, watcher::Config::default().labels(STORAGE_SELECTOR))
            .backoff(runtime::watch_backoff::WatchBackoff::default())
            // Only the labels and the resourceVersion are read: managed fields
            // and annotations would only take memory.
            .modify(|secret| {
                secret.metadata.managed_fields = None;
                secret.metadata.annotations = None;
            })
            .reflect(writer)
            .for_each(|event| {
                if let Err(err) = event {
                    tracing::warn!(error = %err, "watching Helm storage Secrets failed");
                }
                futures::future::ready(())
            });
        let index = Self {
            namespace: namespace.map(str::to_string),
            secrets,
        };
        (index, Box::pin(stream))
    }

    /// Whether the index covers `namespace` and has listed it once.
    fn serves(&self, namespace: &str) -> bool {
        self.namespace.as_deref().is_none_or(|own| own == namespace)
            && futures::FutureExt::now_or_never(self.secrets.wait_until_ready())
                .is_some_and(|ready| ready.is_ok())
    }

    /// The newest indexed revision of release `name` in `namespace`.
    fn newest(&self, namespace: &str, name: &str) -> Option<IndexedRevision> {
        self.secrets
            .state()
            .iter()
            .filter(|secret| secret.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|secret| {
                let labels = secret.metadata.labels.as_ref()?;
                if labels.get("name").map(String::as_str) != Some(name) {
                    return None;
                }
                Some(IndexedRevision {
                    secret: secret.metadata.name.clone()?,
                    resource_version: secret.metadata.resource_version.clone(),
                    version: labels.get("version")?.parse().ok()?,
                    status: labels.get("status").cloned().unwrap_or_default(),
                })
            })
            .max_by_key(|revision| revision.version)
    }
}

/// Whether the index's newest revision is older than what `history` (the
/// HelmRelease's record of what it observed in the storage) already knows:
/// then the watch has not delivered helm's last write yet.
fn index_is_behind(newest: Option<&IndexedRevision>, history: &[Snapshot]) -> bool {
    let Some(known) = crate::state::latest(history) else {
        return false;
    };
    match newest {
        // A purged release is recorded as uninstalled.
        None => known.status != STATUS_UNINSTALLED,
        Some(newest) => {
            newest.version < known.version
                || (newest.version == known.version && newest.status != known.status)
        }
    }
}

/// The latest revision of a release as last decoded.
#[derive(Clone, Debug)]
struct KnownLatest {
    secret: String,
    /// `None` for a release taken from helm's output: the index's version
    /// of the Secret is adopted once it shows the same revision and status.
    resource_version: Option<String>,
    release: Release,
}

/// How a known latest revision stands against the index's newest.
#[derive(Debug, PartialEq, Eq)]
enum Standing {
    /// The very Secret version it was decoded from.
    Current,
    /// The revision helm printed, as helm's last write of it left it.
    Printed,
    /// Changed since, or another revision: read again.
    Stale,
}

impl KnownLatest {
    fn standing(&self, newest: &IndexedRevision) -> Standing {
        if self.secret != newest.secret || newest.resource_version.is_none() {
            return Standing::Stale;
        }
        match &self.resource_version {
            Some(version) if newest.resource_version.as_ref() == Some(version) => Standing::Current,
            // helm's last write of the revision it printed carries the
            // status it printed; from then on the Secret's resourceVersion
            // tells any later change.
            None if newest.version == self.release.version
                && newest.status == self.release.info.status =>
            {
                Standing::Printed
            }
            _ => Standing::Stale,
        }
    }
}

/// Helm's storage, read through the API.
#[derive(Clone)]
pub struct ReleaseStorage {
    client: kube::Client,
    list_durations: Option<Histogram>,
    index: Option<StorageIndex>,
    /// The latest decoded revision of each release, by (namespace, name).
    known: Arc<Mutex<HashMap<(String, String), KnownLatest>>>,
}

impl ReleaseStorage {
    /// Storage access with `client` (which needs get/list/update on Secrets).
    pub fn new(client: kube::Client) -> Self {
        Self {
            client,
            list_durations: None,
            index: None,
            known: Arc::default(),
        }
    }

    /// Answers [`Self::latest_release`] from `index` where it can.
    pub fn with_index(mut self, index: StorageIndex) -> Self {
        self.index = Some(index);
        self
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
        match revisions.last() {
            Some(latest) => self.remember(namespace, name, latest),
            None => self.forget(namespace, name),
        }
        Ok(revisions)
    }

    /// The latest revision of release `name` in `namespace`, from the index
    /// and the last decoded revision when both agree and are not behind
    /// `history`; else with one GET of the latest revision's Secret, or a
    /// direct list when the index cannot answer.
    pub async fn latest_release(
        &self,
        namespace: &str,
        name: &str,
        history: &[Snapshot],
    ) -> Result<Option<Release>, StorageError> {
        let Some(index) = self.index.as_ref().filter(|index| index.serves(namespace)) else {
            return Ok(self.latest(namespace, name).await?.map(|s| s.release));
        };
        let newest = index.newest(namespace, name);
        if index_is_behind(newest.as_ref(), history) {
            return Ok(self.latest(namespace, name).await?.map(|s| s.release));
        }
        let Some(newest) = newest else {
            self.forget(namespace, name);
            return Ok(None);
        };
        if let Some(known) = self.known_latest(namespace, name) {
            match known.standing(&newest) {
                Standing::Current => return Ok(Some(known.release)),
                Standing::Printed => {
                    self.adopt_version(namespace, name, &newest);
                    return Ok(Some(known.release));
                }
                Standing::Stale => {}
            }
        }
        let secret = self.get_secret(namespace, &newest.secret).await?;
        match secret.map(StoredRelease::decode).transpose()? {
            Some(stored) if stored.release.name == name => {
                self.remember(namespace, name, &stored);
                Ok(Some(stored.release))
            }
            // Deleted since the index saw it, or not this release's: the
            // storage as it is now decides.
            _ => Ok(self.latest(namespace, name).await?.map(|s| s.release)),
        }
    }

    /// One storage Secret by name, read directly.
    async fn get_secret(
        &self,
        namespace: &str,
        secret: &str,
    ) -> Result<Option<Secret>, StorageError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(secret)
            .await
            .map_err(|source| StorageError::Api {
                action: "get",
                namespace: namespace.to_string(),
                source,
            })
    }

    /// Revision 1 of release `name` in `namespace`, read directly with one
    /// GET, and remembered as the latest: for right after an install into
    /// an absent release, which writes revision 1 or nothing.
    pub async fn first_revision(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<StoredRelease>, StorageError> {
        let secret = self
            .get_secret(namespace, &format!("sh.helm.release.v1.{name}.v1"))
            .await?;
        let stored = secret
            .map(StoredRelease::decode)
            .transpose()?
            .filter(|stored| stored.release.name == name);
        match &stored {
            Some(stored) => self.remember(namespace, name, stored),
            None => self.forget(namespace, name),
        }
        Ok(stored)
    }

    /// Revision `version` of release `name` in `namespace`, read with one
    /// GET. Not remembered: it need not be the latest (a rollback's target).
    pub async fn revision(
        &self,
        namespace: &str,
        name: &str,
        version: i64,
    ) -> Result<Option<Release>, StorageError> {
        let secret = self
            .get_secret(namespace, &format!("sh.helm.release.v1.{name}.v{version}"))
            .await?;
        Ok(secret
            .map(StoredRelease::decode)
            .transpose()?
            .map(|stored| stored.release)
            .filter(|release| release.name == name && release.version == version))
    }

    /// Remembers `release`, as the helm process that wrote it printed it, as
    /// the latest revision of its release in `namespace`: helm prints the
    /// JSON it stores, so no read is needed to know it.
    pub fn remember_printed(&self, namespace: &str, release: &Release) {
        if self.index.is_none() {
            return;
        }
        let known = KnownLatest {
            secret: format!("sh.helm.release.v1.{}.v{}", release.name, release.version),
            resource_version: None,
            release: release.clone(),
        };
        self.insert_known(namespace, &release.name, known);
    }

    fn adopt_version(&self, namespace: &str, name: &str, indexed: &IndexedRevision) {
        let mut known = self
            .known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = known.get_mut(&(namespace.to_string(), name.to_string()))
            && known.secret == indexed.secret
            && known.resource_version.is_none()
        {
            known.resource_version = indexed.resource_version.clone();
        }
    }

    /// Drops what is known of release `name` in `namespace` (after it is
    /// gone for good).
    pub fn forget(&self, namespace: &str, name: &str) {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&(namespace.to_string(), name.to_string()));
    }

    fn known_latest(&self, namespace: &str, name: &str) -> Option<KnownLatest> {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    fn remember(&self, namespace: &str, name: &str, stored: &StoredRelease) {
        // Without an index nothing would ever read it back.
        if self.index.is_none() {
            return;
        }
        let known = KnownLatest {
            secret: stored.secret.metadata.name.clone().unwrap_or_default(),
            resource_version: stored.secret.metadata.resource_version.clone(),
            release: stored.release.clone(),
        };
        self.insert_known(namespace, name, known);
    }

    fn insert_known(&self, namespace: &str, name: &str, known: KnownLatest) {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert((namespace.to_string(), name.to_string()), known);
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
        self.set_status(stored, "failed", description).await
    }

    /// Sets the status and description of a stored revision (its `info`
    /// and its Secret's `status` label), as helm records them. Returns the
    /// updated release; fails with a conflict if the revision was written
    /// since it was read.
    pub async fn set_status(
        &self,
        stored: &StoredRelease,
        status: &str,
        description: &str,
    ) -> Result<Release, StorageError> {
        let namespace = stored.secret.metadata.namespace.clone().unwrap_or_default();
        let secret_name = stored.secret.metadata.name.clone().unwrap_or_default();
        let mut raw = stored.raw.clone();
        if let Some(info) = raw.get_mut("info").and_then(Value::as_object_mut) {
            info.insert("status".into(), Value::from(status));
            info.insert("description".into(), Value::from(description));
        }
        let release: Release =
            serde_json::from_value(raw.clone()).map_err(|err| StorageError::Decode {
                secret: secret_name.clone(),
                reason: err.to_string(),
            })?;
        let mut secret = stored.secret.clone();
        let labels = secret.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert("status".into(), status.into());
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

    fn snapshot(version: i64, status: &str) -> Snapshot {
        serde_json::from_value(serde_json::json!({
            "digest": "sha256:x", "name": "r", "namespace": "ns", "version": version,
            "status": status, "chartName": "c", "chartVersion": "1.0.0",
            "configDigest": "sha256:y", "firstDeployed": "2026-01-01T00:00:00Z",
            "lastDeployed": "2026-01-01T00:00:00Z"
        }))
        .expect("snapshot")
    }

    fn indexed(version: i64, status: &str) -> IndexedRevision {
        IndexedRevision {
            secret: format!("sh.helm.release.v1.r.v{version}"),
            resource_version: Some("1".into()),
            version,
            status: status.into(),
        }
    }

    #[test]
    fn an_index_behind_the_history_is_not_trusted() {
        // Nothing recorded: whatever the index shows is news.
        assert!(!index_is_behind(None, &[]));
        assert!(!index_is_behind(Some(&indexed(1, "deployed")), &[]));
        let history = [snapshot(2, "deployed"), snapshot(1, "superseded")];
        // The same revision in the same state: current.
        assert!(!index_is_behind(Some(&indexed(2, "deployed")), &history));
        // A newer revision than recorded (written by someone else): current.
        assert!(!index_is_behind(Some(&indexed(3, "deployed")), &history));
        // helm's last write not seen yet: an older revision, the recorded
        // one in an earlier state, or none at all.
        assert!(index_is_behind(Some(&indexed(1, "deployed")), &history));
        assert!(index_is_behind(
            Some(&indexed(2, "pending-upgrade")),
            &history
        ));
        assert!(index_is_behind(None, &history));
        // A release purged by an uninstall is recorded as uninstalled.
        assert!(!index_is_behind(None, &[snapshot(1, "uninstalled")]));
        assert!(index_is_behind(
            Some(&indexed(1, "failed")),
            &[snapshot(1, "uninstalled")]
        ));
    }

    #[test]
    fn a_printed_release_stands_once_the_index_shows_its_last_write() {
        let printed = |status: &str| KnownLatest {
            secret: "sh.helm.release.v1.r.v1".into(),
            resource_version: None,
            release: serde_json::from_value(serde_json::json!({
                "name": "r", "version": 1, "info": {"status": status}
            }))
            .expect("release"),
        };
        // helm's first write (pending) is not what it printed.
        assert_eq!(
            printed("deployed").standing(&indexed(1, "pending-install")),
            Standing::Stale
        );
        assert_eq!(
            printed("deployed").standing(&indexed(1, "deployed")),
            Standing::Printed
        );
        // Another revision since.
        assert_eq!(
            printed("deployed").standing(&indexed(2, "deployed")),
            Standing::Stale
        );
        // Once adopted, only that Secret version stands.
        let adopted = KnownLatest {
            resource_version: Some("1".into()),
            ..printed("deployed")
        };
        assert_eq!(adopted.standing(&indexed(1, "deployed")), Standing::Current);
        let mut changed = indexed(1, "deployed");
        changed.resource_version = Some("2".into());
        assert_eq!(adopted.standing(&changed), Standing::Stale);
    }

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
