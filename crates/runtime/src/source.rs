//! A source object (GitRepository, OCIRepository, Bucket, HelmChart, ...)
//! as its consumers know it: by reference, through its `.status.artifact`
//! only, read with a dynamic client so every source kind is read the same
//! way.

use std::fmt;

use api::meta::condition_type::{READY, STALLED};
use api::meta::{Artifact, ConditionStatus};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject};

/// API group of the source kinds.
pub const SOURCE_GROUP: &str = "source.toolkit.fluxcd.io";
/// Version of the source kinds.
pub const SOURCE_VERSION: &str = "v1";

/// A source object by kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceRef {
    /// Kind (`GitRepository`, `OCIRepository`, `Bucket`, `HelmChart`, ...).
    pub kind: &'static str,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl fmt::Display for SourceRef {
    /// `Kind 'namespace/name'`, as Flux's messages name a source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}/{}'", self.kind, self.namespace, self.name)
    }
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source object does not exist.
    #[error("{plural} \"{name}\" not found")]
    NotFound {
        /// The kind's plural resource name.
        plural: String,
        /// The object's name.
        name: String,
    },
    /// The API refused or failed the read.
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// The API resource of the source kind `kind`.
pub fn api_resource(kind: &str) -> ApiResource {
    let lower = kind.to_ascii_lowercase();
    // GitRepository → gitrepositories, HelmChart → helmcharts.
    let plural = match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    };
    ApiResource {
        group: SOURCE_GROUP.to_string(),
        version: SOURCE_VERSION.to_string(),
        api_version: format!("{SOURCE_GROUP}/{SOURCE_VERSION}"),
        kind: kind.to_string(),
        plural,
    }
}

/// Reads the source object.
pub async fn get(client: &Client, source: &SourceRef) -> Result<DynamicObject, SourceError> {
    let resource = api_resource(source.kind);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &source.namespace, &resource);
    api.get_opt(&source.name)
        .await?
        .ok_or_else(|| SourceError::NotFound {
            plural: resource.plural,
            name: source.name.clone(),
        })
}

/// The source's `.status.artifact`, if it has a valid one.
pub fn artifact(object: &DynamicObject) -> Option<Artifact> {
    let artifact = object.data.get("status")?.get("artifact")?.clone();
    serde_json::from_value(artifact).ok()
}

/// The source's artifact if the source is ready to be used: its generation
/// observed, not stalled, with an artifact (Flux's readiness rule for
/// chart sources); otherwise why not.
pub fn ready_artifact(object: &DynamicObject) -> Result<Artifact, String> {
    let status = object.data.get("status");
    let observed = status
        .and_then(|s| s.get("observedGeneration"))
        .and_then(serde_json::Value::as_i64);
    let conditions = status
        .and_then(|s| s.get("conditions"))
        .and_then(serde_json::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let condition = |type_: &str| {
        conditions
            .iter()
            .find(|c| c.get("type").and_then(serde_json::Value::as_str) == Some(type_))
    };
    let message = |c: &serde_json::Value| {
        c.get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    // Kinds whose status tracks no generation (ExternalArtifact: its producer
    // writes it) are judged by their conditions and artifact alone.
    if observed.is_some() && object.metadata.generation != observed {
        let ready_false = condition(READY).filter(|c| status_is(c, ConditionStatus::False));
        return Err(match ready_false {
            Some(c) => message(c),
            None => "latest generation of object has not been reconciled".into(),
        });
    }
    if let Some(stalled) = condition(STALLED).filter(|c| status_is(c, ConditionStatus::True)) {
        return Err(message(stalled));
    }
    let artifact = status
        .and_then(|s| s.get("artifact"))
        .cloned()
        .ok_or_else(|| "does not have an artifact".to_string())?;
    serde_json::from_value(artifact).map_err(|e| format!("invalid artifact: {e}"))
}

/// Whether the condition `condition` (as JSON) has status `status`.
fn status_is(condition: &serde_json::Value, status: ConditionStatus) -> bool {
    condition.get("status").and_then(serde_json::Value::as_str) == Some(status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_kinds_have_their_plurals() {
        let plural = |kind| api_resource(kind).plural;
        assert_eq!(plural("GitRepository"), "gitrepositories");
        assert_eq!(plural("OCIRepository"), "ocirepositories");
        assert_eq!(plural("HelmRepository"), "helmrepositories");
        assert_eq!(plural("HelmChart"), "helmcharts");
        assert_eq!(plural("Bucket"), "buckets");
        assert_eq!(plural("ExternalArtifact"), "externalartifacts");
        assert_eq!(
            api_resource("Bucket").api_version,
            "source.toolkit.fluxcd.io/v1"
        );
    }
}
