//! Types shared by several Flux APIs (the `fluxcd/pkg/apis` vocabulary): artifacts,
//! object references, reconcile-request bookkeeping, kustomize patches and selectors,
//! inventories, history snapshots, condition types and reasons.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::duration::Duration;

/// Schema transform for string enums: drops the type's own description so that the
/// description of the field using the enum is what `kubectl explain` shows (kube's
/// `Option<enum>` rewrite would otherwise let the type's text win).
pub(crate) fn field_describes_enum(schema: &mut Schema) {
    schema.remove("description");
}

/// Schema transform for integer fields that are a Go `int` in Flux's API: controller-gen
/// writes no `format` for those.
pub(crate) fn without_format(schema: &mut Schema) {
    schema.remove("format");
}

/// Schema for free-form JSON that the API server must keep untouched.
pub(crate) fn preserve_unknown_fields(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// The output of a source reconciliation: a file served over HTTP by the source controller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// HTTP address where the artifact can be downloaded from the controller that owns the source.
    pub url: String,
    /// Path of the artifact file relative to the controller's storage root.
    pub path: String,
    /// Identifier of the artifact in the origin system, e.g. `main@sha1:<commit>` or a chart version.
    pub revision: String,
    /// Digest of the artifact file, written as `<algorithm>:<checksum>`.
    #[schemars(regex(pattern = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$"))]
    pub digest: String,
    /// When the artifact was last written.
    pub last_update_time: Time,
    /// Size of the artifact file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Upstream metadata of the artifact, such as OCI annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// Reference to an object in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// Reference to an object, in the referrer's namespace unless `namespace` is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; defaults to the namespace of the referring object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to an object of any kind, in the referrer's namespace unless `namespace` is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referent; when empty, any version of the kind's group matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    pub kind: String,
    /// Name of the referent.
    pub name: String,
    /// Namespace of the referent; defaults to the namespace of the referring object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Reference to one key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,
    /// Key in the Secret's data; each consumer documents its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Reference to another object of the same kind that must be ready first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the dependency.
    pub name: String,
    /// Namespace of the dependency; defaults to the namespace of the dependent object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CEL expression over `dep` (the dependency) and `self` (the dependent) that must be true
    /// for the dependency to count as ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

/// Where to find a kubeconfig for reconciling on a remote cluster: exactly one of a
/// ConfigMap (secret-less, cloud provider identity) or a Secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "has(self.configMapRef) != has(self.secretRef)",
        "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified"
    }
]))]
pub struct KubeConfigReference {
    /// ConfigMap with the keys `provider`, `cluster`, `address`, `ca.crt`, `audiences` and
    /// `serviceAccountName`, used to build a kubeconfig from a cloud identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
    /// Secret holding a kubeconfig under `key` (default `value`, or `value.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// Kind of object a values or substitution reference points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = field_describes_enum)]
pub enum ConfigKind {
    /// A core/v1 Secret.
    Secret,
    /// A core/v1 ConfigMap.
    ConfigMap,
}

/// Reference to a ConfigMap or Secret key holding Helm values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// Kind of the values source.
    pub kind: ConfigKind,
    /// Name of the values source, in the namespace of the referring object.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Data key holding the values; defaults to `values.yaml`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), regex(pattern = r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,
    /// Path (Helm `--set` syntax) at which the value is merged instead of the whole document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 250),
        regex(pattern = r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$")
    )]
    pub target_path: Option<String>,
    /// Tolerate a missing source or key instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// With `targetPath`, set the value literally (Helm `--set-literal`) instead of parsing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<bool>,
}

/// Access control list for cross-namespace references to an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespace selectors allowed to refer to the object; any match grants access.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// Selects namespaces by labels; an empty selector matches every namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must all carry to match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Labels and annotations added to every object a reconciler applies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonMetadata {
    /// Annotations to add to every applied object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels to add to every applied object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// A strategic-merge or JSON6902 patch, optionally limited to matching objects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// The patch document, as inline YAML: a partial object or a JSON6902 operation list.
    pub patch: String,
    /// Objects the patch applies to; without it the patch names its own target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// Selects objects by group, version, kind, name, namespace (regular expressions) and
/// label or annotation selectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// API group to match (regular expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version to match (regular expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind to match (regular expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace to match (regular expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name to match (regular expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Annotation selector in Kubernetes label-selector syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
    /// Label selector in Kubernetes label-selector syntax.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// A kustomize image override: new name, tag or digest for matching container images.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// Image name to match in the manifests, without tag or digest.
    pub name: String,
    /// Replacement image name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Replacement tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// Replacement digest; takes precedence over `newTag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// CEL expressions deciding the health of objects of one custom kind.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthCheck {
    /// API version of the objects; only its group is matched.
    pub api_version: String,
    /// Kind of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// CEL expression that is true when the object is healthy.
    pub current: String,
    /// CEL expression that is true while the object is still progressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
    /// CEL expression that is true when the object has failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// JSON pointers to ignore for objects matching `target` when comparing desired and live state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreRule {
    /// JSON pointers (RFC 6901) of the fields to ignore.
    pub paths: Vec<String>,
    /// Objects the rule applies to; without it the rule applies to every object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// The set of objects a reconciler applied, used for garbage collection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInventory {
    /// One entry per applied object.
    pub entries: Vec<ResourceRef>,
}

/// One object in a [`ResourceInventory`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// Object identifier `<namespace>_<name>_<group>_<kind>` (empty namespace and core group
    /// stay empty, e.g. `default_podinfo__Service`).
    pub id: String,
    /// API version of the object.
    pub v: String,
}

/// One distinct reconciled state in a Kustomization's history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Digest of the reconciled state, written as `<algorithm>:<checksum>`.
    pub digest: String,
    /// When this state was first reconciled.
    pub first_reconciled: Time,
    /// When this state was last reconciled.
    pub last_reconciled: Time,
    /// How long the last reconciliation of this state took.
    pub last_reconciled_duration: Duration,
    /// Result of the last reconciliation of this state (a Ready condition reason).
    pub last_reconciled_status: String,
    /// How many times this state was reconciled.
    pub total_reconciliations: i64,
    /// Extra information about the state, such as the source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// The `reconcile.fluxcd.io/requestedAt` token a controller last acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequestStatus {
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled, so that a new
    /// value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// The `reconcile.fluxcd.io/forceAt` token a controller last acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForceRequestStatus {
    /// Value of the `reconcile.fluxcd.io/forceAt` annotation last handled, so that a new
    /// value can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,
}

/// Annotation asking for an immediate reconciliation; its value is an opaque token.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";
/// Annotation asking a HelmRelease for a one-off forced install or upgrade.
pub const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";
/// Annotation asking a HelmRelease to reset its failure counters.
pub const RESET_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";
/// Finalizer every Flux controller puts on the objects it reconciles.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// The status of a condition, as Kubernetes spells it in `status.conditions[].status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// The status as written in a condition.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }

    /// The status of a condition as read; anything else than `True` or
    /// `False` counts as `Unknown`.
    pub fn of(text: &str) -> Self {
        match text {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }
}

impl std::fmt::Display for ConditionStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Condition types used across Flux objects.
pub mod condition_type {
    /// The object is fully reconciled (kstatus).
    pub const READY: &str = "Ready";
    /// The controller is working on the object (kstatus, abnormal-true).
    pub const RECONCILING: &str = "Reconciling";
    /// Reconciliation cannot progress without a change to the object (kstatus, abnormal-true).
    pub const STALLED: &str = "Stalled";
    /// Health checks of the applied objects passed (Kustomization).
    pub const HEALTHY: &str = "Healthy";
    /// The latest artifact is stored (sources).
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// The stored artifact no longer matches the spec (sources, abnormal-true).
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// The source's signature was verified (sources).
    pub const SOURCE_VERIFIED: &str = "SourceVerified";
    /// Fetching the source failed (sources, abnormal-true).
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// Building the artifact failed (sources, abnormal-true).
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// A storage operation failed (sources, abnormal-true).
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// An included GitRepository artifact is missing (GitRepository, abnormal-true).
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// The last Helm action succeeded (HelmRelease).
    pub const RELEASED: &str = "Released";
    /// The last Helm test run succeeded (HelmRelease).
    pub const TEST_SUCCESS: &str = "TestSuccess";
    /// The release was remediated after a failure (HelmRelease).
    pub const REMEDIATED: &str = "Remediated";
    /// The cluster drifted from the release manifest (HelmRelease).
    pub const DRIFTED: &str = "Drifted";
    /// A cross-namespace reference was refused by an access control list.
    pub const ACCESS_DENIED: &str = "AccessDenied";
}

/// Condition reasons used across Flux objects.
pub mod reason {
    /// Generic success.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Generic failure.
    pub const FAILED: &str = "Failed";
    /// Work is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// Work is in progress after a failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// Reconciliation is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// A dependency is not ready yet.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A path in the spec is invalid.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// A URL in the spec is invalid.
    pub const INVALID_URL: &str = "InvalidURL";
    /// Plain-HTTP connections are not allowed.
    pub const INSECURE_CONNECTIONS_DISALLOWED: &str = "InsecureConnectionsDisallowed";
    /// The connection type is not supported.
    pub const UNSUPPORTED_CONNECTION_TYPE: &str = "UnsupportedConnectionType";
    /// Garbage collection failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// Fetching or verifying the source artifact failed.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building manifests failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Health checks failed.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Health checks were canceled (e.g. a new revision arrived).
    pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
    /// The reconciliation succeeded.
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// The reconciliation failed.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// A CEL expression in the spec does not compile.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// The spec uses a feature whose gate is off.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// A cross-namespace reference was refused.
    pub const ACCESS_DENIED: &str = "AccessDenied";

    /// Source: the URL is invalid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// Source: authentication failed.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// Source: signature verification failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// Source: a storage directory could not be created.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// Source: a stat call failed.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// Source: reading a file failed.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// Source: the artifact lock could not be acquired.
    pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
    /// Source: writing the archive failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Source: updating the `latest` symlink failed.
    pub const SYMLINK_UPDATE_FAILED: &str = "SymlinkUpdateFailed";
    /// Source: the stored artifact is current.
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// Source: a cache operation failed.
    pub const CACHE_OPERATION_FAILED: &str = "CacheOperationFailed";
    /// Source: patching the object failed.
    pub const PATCH_OPERATION_FAILED: &str = "PatchOperationFailed";
    /// Source: the STS configuration is invalid.
    pub const INVALID_STS_CONFIGURATION: &str = "InvalidSTSConfiguration";
    /// Source: the provider configuration is invalid.
    pub const INVALID_PROVIDER_CONFIGURATION: &str = "InvalidProviderConfiguration";
    /// Source: a new revision is available upstream.
    pub const NEW_REVISION: &str = "NewRevision";
    /// GitRepository: a Git operation succeeded.
    pub const GIT_OPERATION_SUCCEEDED: &str = "GitOperationSucceeded";
    /// GitRepository: a Git operation failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// OCIRepository: pulling the artifact failed.
    pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// OCIRepository: extracting or copying the layer failed.
    pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
    /// HelmRepository: fetching or parsing the index failed.
    pub const INDEXATION_FAILED: &str = "IndexationFailed";
    /// HelmChart: the chart was pulled.
    pub const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
    /// HelmChart: the chart was packaged.
    pub const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
    /// Bucket: a bucket operation succeeded.
    pub const BUCKET_OPERATION_SUCCEEDED: &str = "BucketOperationSucceeded";
    /// Bucket: a bucket operation failed.
    pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";
}
