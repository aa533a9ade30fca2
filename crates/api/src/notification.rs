//! `notification.toolkit.fluxcd.io`: Provider and Alert forward Flux events to external
//! systems; Receiver turns incoming webhooks into reconcile requests. All three are `v1`;
//! Provider and Alert are also served as the deprecated `v1beta3` (see
//! [`crate::crds`]), stored as `v1` as in Flux.

// `#[kube(printcolumn(...))]` repeats keys such as `type_ = "string"` by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::{DURATION_PATTERN, Duration, SHORT_DURATION_PATTERN};
use crate::meta::{LocalObjectReference, ReconcileRequestStatus};

/// API group of the notification kinds.
pub const GROUP: &str = "notification.toolkit.fluxcd.io";
/// Version serving Receiver.
pub const RECEIVER_VERSION: &str = "v1";
/// Version Alert and Provider are stored and read as.
pub const ALERT_VERSION: &str = "v1";
/// The deprecated version Alert and Provider are still served as.
pub const ALERT_DEPRECATED_VERSION: &str = "v1beta3";

/// Desired state of a Provider.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Provider",
    plural = "providers",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    doc = "Provider describes an external system (chat, Git forge, alert manager, ...) that receives Flux events.",
    derive = "PartialEq",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)"
).message("spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types"))]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// Which integration receives the events.
    pub r#type: ProviderType,
    /// Channel, room or topic the events are posted to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub channel: Option<String>,
    /// Name the events are posted under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub username: Option<String>,
    /// Endpoint the events are sent to (webhook URL, API address, repository URL, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,
    /// Timeout for sending an event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = SHORT_DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Secret with the proxy settings (`address`, `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Secret with credentials: `address`, `token`, `username`, `password`, `headers`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose workload identity authenticates to cloud services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with TLS material: `ca.crt`, and `tls.crt`/`tls.key` for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Stop sending events through this provider until unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// CEL expression over `event` and `provider` returning the commit status identifier
    /// (Git commit status providers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status_expr: Option<String>,
}

/// Integrations a Provider can send events to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
#[allow(missing_docs)] // the variant names are the integrations' names
pub enum ProviderType {
    Slack,
    Discord,
    Msteams,
    Rocket,
    Generic,
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    Github,
    Gitlab,
    Gitea,
    Giteapullrequestcomment,
    Bitbucketserver,
    Bitbucket,
    Azuredevops,
    Googlechat,
    Googlepubsub,
    Webex,
    Sentry,
    Azureeventhub,
    Telegram,
    Lark,
    Matrix,
    Opsgenie,
    Alertmanager,
    Grafana,
    Githubdispatch,
    Githubpullrequestcomment,
    Gitlabmergerequestcomment,
    Pagerduty,
    Datadog,
    Nats,
    Zulip,
    Otel,
    Zoom,
    #[serde(rename = "incident.io")]
    IncidentIo,
    /// Only in `v1`.
    Mastodon,
}

/// Desired state of an Alert.
#[derive(CustomResource, JsonSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Alert",
    plural = "alerts",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    doc = "Alert selects Flux events by source object and severity and forwards them to a Provider.",
    derive = "PartialEq",
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// Provider the events are sent to, in the same namespace.
    pub provider_ref: LocalObjectReference,
    /// Lowest severity forwarded: `info` forwards everything, `error` only errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "info"))]
    pub event_severity: Option<EventSeverity>,
    /// Objects whose events are forwarded.
    pub event_sources: Vec<CrossNamespaceObjectReference>,
    /// Regular expressions; only events whose message matches one are forwarded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_list: Option<Vec<String>>,
    /// Metadata added to every forwarded event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_metadata: Option<BTreeMap<String, String>>,
    /// Regular expressions; events whose message matches one are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
    /// Stop forwarding events until unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// Severity filter of an Alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
pub enum EventSeverity {
    /// Informational and error events.
    Info,
    /// Error events only.
    Error,
}

/// Kinds of Flux objects that emit events or receive reconcile requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::meta::field_describes_enum)]
#[allow(missing_docs)] // the variant names are the Flux kinds
pub enum FluxKind {
    Bucket,
    GitRepository,
    Kustomization,
    HelmRelease,
    HelmChart,
    HelmRepository,
    ImageRepository,
    ImagePolicy,
    ImageUpdateAutomation,
    OCIRepository,
    ArtifactGenerator,
    ExternalArtifact,
}

/// Flux objects selected by kind, name (or `*`), namespace and labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the objects.
    pub kind: FluxKind,
    /// Name of the object, or `*` for every object of the kind (narrowed by `matchLabels`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the objects; the referrer's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry; requires `name: '*'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Desired state of a Receiver.
#[derive(CustomResource, KubeSchema, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    namespaced,
    status = "ReceiverStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    annotation("kustomize.toolkit.fluxcd.io/substitute", "disabled"),
    doc = "Receiver exposes a webhook that, on a valid request, asks Flux to reconcile the selected objects.",
    derive = "PartialEq",
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
    validation = Rule::new("self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)")
        .message("generic-oidc receivers must define at least one oidcProvider"),
    validation = Rule::new("self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0")
        .message("oidcProviders can only be set when type is generic-oidc"),
    validation = Rule::new("self.type != 'generic-oidc' || !has(self.secretRef)")
        .message("secretRef cannot be set when type is generic-oidc"),
    validation = Rule::new("self.type == 'generic-oidc' || has(self.secretRef)")
        .message("secretRef is required when type is not generic-oidc")
)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// Webhook sender; decides how requests are authenticated and parsed.
    pub r#type: ReceiverType,
    /// How often the Receiver re-reads its Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), extend("default" = "10m"))]
    pub interval: Option<Duration>,
    /// Event types to act on, e.g. `push` (GitHub) or `Push Hook` (GitLab); all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Objects to request a reconciliation of.
    pub resources: Vec<ReceiverResource>,
    /// CEL expression evaluated per resource (`res`) and request (`req`); only resources for
    /// which it is true are reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,
    /// Secret whose `token` authenticates requests and is part of the webhook path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// OIDC issuers whose tokens authenticate requests (`generic-oidc` only), one per issuer URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Option<Vec<OIDCProvider>>,
    /// Stop handling requests until unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// Webhook senders a Receiver understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(transform = crate::meta::field_describes_enum)]
#[allow(missing_docs)] // the variant names are the senders' names
pub enum ReceiverType {
    Generic,
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    #[serde(rename = "generic-oidc")]
    GenericOidc,
    Github,
    Gitlab,
    Bitbucket,
    Harbor,
    Dockerhub,
    Quay,
    Gcr,
    Nexus,
    Acr,
    Cdevents,
}

/// Flux objects a Receiver requests reconciliations of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the objects.
    pub kind: FluxKind,
    /// Name of the object, or `*` for every object of the kind (narrowed by `matchLabels`).
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the objects; the Receiver's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry; requires `name: '*'`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// CEL expression over `res` and `req`; the object is reconciled only when it is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// An OIDC issuer trusted by a `generic-oidc` Receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCProvider {
    /// Issuer URL; its discovery document and keys are fetched from there.
    #[serde(rename = "issuerURL")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub issuer_url: String,
    /// Audience the tokens must be issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Named CEL expressions over the token claims, usable in `validations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OIDCVariable>>,
    /// CEL checks a token must pass; at least one.
    #[schemars(length(min = 1))]
    pub validations: Vec<OIDCValidation>,
}

/// A named CEL expression over token claims.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCVariable {
    /// Name under which the value is available to validations.
    pub name: String,
    /// CEL expression computing the value.
    pub expression: String,
}

/// A CEL check of a token.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCValidation {
    /// CEL expression that must be true.
    pub expression: String,
    /// Message reported when the expression is false; required by the schema, as in Flux.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub message: Option<String>,
}

/// Observed state of a Receiver.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverStatus {
    /// Reconcile-request bookkeeping.
    #[serde(flatten)]
    pub reconcile_request: ReconcileRequestStatus,
    /// Conditions of the Receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Path of the webhook: `/hook/` followed by sha256(token + name + namespace) in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
