//! Flux's event wire format (`event.toolkit.fluxcd.io/v1beta1`): what every
//! controller POSTs to `--events-addr` and what notification-controller
//! accepts there. Flux's own controllers post the same JSON, so one of them
//! pointed at ferroflux's notification-controller works unchanged.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// The longest message Flux accepts in an event.
pub const MAX_MESSAGE_LENGTH: usize = 39_000;

/// Metadata key: the source revision an event is about.
pub const METADATA_REVISION: &str = "revision";
/// Metadata key: the revision of the source the artifact was built from
/// (an OCI artifact's `org.opencontainers.image.revision`).
pub const METADATA_ORIGIN_REVISION: &str = "originRevision";
/// Metadata key: an artifact's checksum.
pub const METADATA_CHECKSUM: &str = "checksum";
/// Metadata key: an artifact's digest.
pub const METADATA_DIGEST: &str = "digest";
/// Metadata key: a token that makes an event distinct for rate limiting.
pub const METADATA_TOKEN: &str = "token";
/// Metadata key: the commit an event is about.
pub const METADATA_COMMIT: &str = "commit";
/// Metadata key: `update` marks an event that should update a commit status.
pub const METADATA_COMMIT_STATUS: &str = "commit_status";
/// The value of [`METADATA_COMMIT_STATUS`] that asks for a status update.
pub const COMMIT_STATUS_UPDATE: &str = "update";
/// Metadata key: the change request (pull/merge request) an event is about.
pub const METADATA_CHANGE_REQUEST: &str = "change_request";
/// Annotations with this prefix on an object are added to its events' metadata.
pub const ANNOTATION_PREFIX: &str = "event.toolkit.fluxcd.io/";

/// How severe an event is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Sent to notification-controller only, never recorded as a Kubernetes event.
    Trace,
    /// Progress (a Kubernetes `Normal` event).
    Info,
    /// A failure (a Kubernetes `Warning` event).
    Error,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
}

/// One event, as posted to notification-controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The object the event is about.
    pub involved_object: ObjectReference,
    /// `trace`, `info` or `error`.
    pub severity: Severity,
    /// When the event happened.
    pub timestamp: Time,
    /// What happened, for people (at most [`MAX_MESSAGE_LENGTH`] bytes).
    pub message: String,
    /// Why, for machines: a Flux reason such as `ReconciliationSucceeded`.
    pub reason: String,
    /// Revision, checksum, token and the like; keys from a controller carry
    /// its API group as a prefix (`kustomize.toolkit.fluxcd.io/revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The controller that reported it (`kustomize-controller`).
    pub reporting_controller: String,
    /// The instance (pod) that reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporting_instance: Option<String>,
    /// What was done (newer Flux controllers send it, often empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// A second object the event is about (newer Flux controllers send it,
    /// often empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub related_object: Option<ObjectReference>,
}

impl Event {
    /// The metadata value of `key`, if any.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key).map(String::as_str)
    }

    /// The metadata value of `key` as the involved object's controller sets
    /// it: `<group>/<key>` (e.g. `kustomize.toolkit.fluxcd.io/revision`).
    pub fn controller_metadata(&self, key: &str) -> Option<&str> {
        let group = self
            .involved_object
            .api_version
            .as_deref()?
            .split('/')
            .next()?;
        self.metadata_value(&format!("{group}/{key}"))
    }

    /// Whether the event has metadata asking for a commit status update.
    pub fn has_commit_status_update(&self) -> bool {
        self.controller_metadata(METADATA_COMMIT_STATUS) == Some(COMMIT_STATUS_UPDATE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_flux_json() {
        let wire = r#"{
          "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps",
                             "uid": "5f2c", "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceVersion": "42"},
          "severity": "info",
          "timestamp": "2026-12-04T10:00:00Z",
          "message": "Reconciliation finished",
          "reason": "ReconciliationSucceeded",
          "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                       "kustomize.toolkit.fluxcd.io/commit_status": "update"},
          "reportingController": "kustomize-controller",
          "reportingInstance": "kustomize-controller-7d9f",
          "action": "",
          "relatedObject": {}
        }"#;
        let event: Event = serde_json::from_str(wire).unwrap();
        assert_eq!(event.severity, Severity::Info);
        assert_eq!(event.controller_metadata("revision"), Some("main@sha1:abc"));
        assert!(event.has_commit_status_update());
        let back = serde_json::to_value(&event).unwrap();
        assert_eq!(back["reportingController"], "kustomize-controller");
        assert_eq!(back["timestamp"], "2026-12-04T10:00:00Z");
        assert_eq!(back["involvedObject"]["kind"], "Kustomization");
    }

    #[test]
    fn refuses_unknown_severity() {
        let wire = r#"{"involvedObject": {}, "severity": "debug", "timestamp": "2026-12-04T10:00:00Z",
                       "message": "m", "reason": "r", "reportingController": "c"}"#;
        assert!(serde_json::from_str::<Event>(wire).is_err());
    }
}
