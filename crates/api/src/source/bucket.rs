//! Bucket: the content of an S3-compatible, GCS or Azure Blob storage bucket.

// `#[kube(printcolumn(...))]` repeats keys such as `type_ = "string"` by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::CloudProvider;
use crate::duration::{DURATION_PATTERN, Duration, SHORT_DURATION_PATTERN};
use crate::meta::{Artifact, LocalObjectReference, ReconcileRequestStatus};

/// Desired state of a Bucket.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "Bucket",
    plural = "buckets",
    namespaced,
    status = "BucketStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    doc = "Bucket downloads the objects of an object storage bucket and stores them as an artifact.",
    derive = "PartialEq",
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".spec.endpoint"),
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
#[x_kube(
    validation = Rule::new("self.provider == 'aws' || self.provider == 'generic' || !has(self.sts)")
        .message("STS configuration is only supported for the 'aws' and 'generic' Bucket providers"),
    validation = Rule::new("self.provider != 'aws' || !has(self.sts) || self.sts.provider == 'aws'")
        .message("'aws' is the only supported STS provider for the 'aws' Bucket provider"),
    validation = Rule::new("self.provider != 'generic' || !has(self.sts) || self.sts.provider == 'ldap'")
        .message("'ldap' is the only supported STS provider for the 'generic' Bucket provider"),
    validation = Rule::new("!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.secretRef)")
        .message("spec.sts.secretRef is not required for the 'aws' STS provider"),
    validation = Rule::new("!has(self.sts) || self.sts.provider != 'aws' || !has(self.sts.certSecretRef)")
        .message("spec.sts.certSecretRef is not required for the 'aws' STS provider"),
    validation = Rule::new("self.provider != 'generic' || !has(self.serviceAccountName)")
        .message("ServiceAccountName is not supported for the 'generic' Bucket provider"),
    validation = Rule::new("!has(self.secretRef) || !has(self.serviceAccountName)")
        .message("cannot set both .spec.secretRef and .spec.serviceAccountName")
)]
#[serde(rename_all = "camelCase")]
pub struct BucketSpec {
    /// Object storage API: S3-compatible (`generic`, `aws`), Google Cloud Storage or Azure Blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<CloudProvider>,
    /// Name of the bucket.
    pub bucket_name: String,
    /// Address of the object storage service, without scheme.
    pub endpoint: String,
    /// Security Token Service to get temporary credentials from (`aws` and `generic` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<BucketSTSSpec>,
    /// Talk to the endpoint over plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Only objects whose key starts with this prefix are fetched (server-side filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Secret with credentials: `accesskey`/`secretkey`, `serviceaccount` (GCP) or Azure keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose workload identity authenticates to the provider (not for `generic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with a client certificate (`tls.crt`, `tls.key`) and/or CA (`ca.crt`) for TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Secret with the proxy settings (`address`, `username`, `password`) for reaching the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// How often the bucket is checked for changes.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub interval: Duration,
    /// Timeout for listing and downloading objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SHORT_DURATION_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<Duration>,
    /// Files to leave out of the artifact, in `.gitignore` syntax; replaces the default exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Stop reconciling this object until unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// Security Token Service settings for a Bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketSTSSpec {
    /// STS flavour: `aws` (AWS STS) or `ldap` (MinIO LDAP identity).
    pub provider: BucketSTSProvider,
    /// Address of the STS endpoint.
    #[schemars(regex(pattern = r"^(http|https)://.*$"))]
    pub endpoint: String,
    /// Secret with LDAP credentials (`username`, `password`); `ldap` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with a client certificate and/or CA for the STS endpoint; `ldap` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
}

/// Kind of Security Token Service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum BucketSTSProvider {
    /// AWS Security Token Service.
    Aws,
    /// MinIO's LDAP identity STS.
    Ldap,
}

/// Observed state of a Bucket.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BucketStatus {
    /// Generation of the spec last reconciled to Ready or Stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the Bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Download address of the last artifact (the `latest.tar.gz` link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last artifact produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// `spec.ignore` used for the last artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// Reconcile-request bookkeeping.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
}
