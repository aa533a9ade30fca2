//! `source.toolkit.fluxcd.io/v1`: GitRepository, OCIRepository, HelmRepository, HelmChart,
//! Bucket and ExternalArtifact, plus the pieces they share.

mod bucket;
mod external;
mod git;
mod helm_chart;
mod helm_repository;
mod oci;

pub use bucket::*;
pub use external::*;
pub use git::*;
pub use helm_chart::*;
pub use helm_repository::*;
pub use oci::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::meta::LocalObjectReference;

/// API group of the source kinds.
pub const GROUP: &str = "source.toolkit.fluxcd.io";
/// Served and stored version of the source kinds.
pub const VERSION: &str = "v1";

/// Identity used to authenticate to a registry or object store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum CloudProvider {
    /// Credentials from `secretRef` (or anonymous).
    #[default]
    Generic,
    /// Amazon Web Services workload identity.
    Aws,
    /// Microsoft Azure workload identity.
    Azure,
    /// Google Cloud workload identity.
    Gcp,
}

/// Tool used to verify OCI artifact signatures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum VerificationProvider {
    /// Sigstore cosign (keyed or keyless).
    #[default]
    Cosign,
    /// Notary Project notation.
    Notation,
}

/// Regular expressions a keyless (Fulcio) signing certificate must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCIdentityMatch {
    /// Regular expression the OIDC issuer of the certificate must match.
    pub issuer: String,
    /// Regular expression the identity (subject) of the certificate must match.
    pub subject: String,
}

/// How to verify the signature of an OCI artifact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryVerification {
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
    /// Secret with a Sigstore trusted root, for private Sigstore deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}
