//! HelmChart: a packaged Helm chart taken from a HelmRepository, GitRepository or Bucket.

// `#[kube(printcolumn(...))]` repeats keys such as `type_ = "string"` by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{OIDCIdentityMatch, VerificationProvider};
use crate::duration::{DURATION_PATTERN, Duration};
use crate::meta::{Artifact, LocalObjectReference, ReconcileRequestStatus};

/// Desired state of a HelmChart.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmChart",
    plural = "helmcharts",
    namespaced,
    status = "HelmChartStatus",
    shortname = "hc",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    doc = "HelmChart fetches a Helm chart from a source and stores it as a packaged chart artifact.",
    derive = "PartialEq",
    printcolumn(name = "Chart", type_ = "string", json_path = ".spec.chart"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(
        name = "Source Kind",
        type_ = "string",
        json_path = ".spec.sourceRef.kind"
    ),
    printcolumn(
        name = "Source Name",
        type_ = "string",
        json_path = ".spec.sourceRef.name"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].status"#
    ),
    printcolumn(
        name = "Status",
        type_ = "string",
        json_path = r#".status.conditions[?(@.type=="Ready")].message"#
    )
)]
#[x_kube(validation = Rule::new(
    "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'"
).message("spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'"))]
#[serde(rename_all = "camelCase")]
pub struct HelmChartSpec {
    /// Chart name in a HelmRepository, or path to the chart in a GitRepository or Bucket.
    pub chart: String,
    /// Semantic version range of the chart; ignored for GitRepository and Bucket sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// Source holding the chart.
    pub source_ref: LocalHelmChartSourceReference,
    /// How often the source is checked for a new chart.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Duration,
    /// What produces a new artifact: a new chart version, or (Git/Bucket) a new source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// Values files, relative to the chart, merged in order into the packaged chart's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// Skip values files that do not exist instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,
    /// Stop reconciling this object until unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Signature verification of OCI charts (HelmRepository sources only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartVerification>,
}

/// Reference to the source of a HelmChart, in the same namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalHelmChartSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: HelmChartSourceKind,
    /// Name of the source.
    pub name: String,
}

/// Kinds a HelmChart can take its chart from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum HelmChartSourceKind {
    /// A HelmRepository (HTTP index or OCI registry).
    HelmRepository,
    /// A GitRepository artifact.
    GitRepository,
    /// A Bucket artifact.
    Bucket,
}

/// What produces a new HelmChart artifact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum ReconcileStrategy {
    /// A new chart version.
    ChartVersion,
    /// A new revision of the source (GitRepository and Bucket).
    Revision,
}

/// How to verify the signature of an OCI chart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartVerification {
    /// Verification tool.
    #[schemars(extend("default" = "cosign"))]
    pub provider: VerificationProvider,
    /// Secret with the trusted public keys (cosign) or certificates and trust policy (notation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Identities accepted for keyless signatures; any match is enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "matchOIDCIdentity")]
    pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
}

/// Observed state of a HelmChart.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartStatus {
    /// Generation of the spec last reconciled to Ready or Stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Source artifact revision the last chart was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_artifact_revision: Option<String>,
    /// Chart name the last artifact was built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_chart_name: Option<String>,
    /// Values files merged into the last artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_values_files: Option<Vec<String>>,
    /// Conditions of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Download address of the last chart (the `latest.tar.gz` link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last packaged chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Reconcile-request bookkeeping.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
