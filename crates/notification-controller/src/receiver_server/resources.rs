//! From a Receiver's `spec.resources` to reconcile requests: each entry is
//! resolved to objects (one by name, or every object of the kind carrying
//! `matchLabels` when the name is `*`), filtered by the CEL filters, and
//! each remaining object gets a fresh `reconcile.fluxcd.io/requestedAt`
//! through a JSON merge patch, as Flux's `requestReconciliation` does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api::notification::{FluxKind, ReceiverResource};
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::core::PartialObjectMeta;
use runtime::reconcile_request::REQUESTED_AT;
use serde_json::json;
use tokio::sync::Mutex;
use tracing::{debug, info};

use super::filter::ResourceFilters;

/// The API version Flux assumes for a kind when `apiVersion` is omitted;
/// other kinds must name theirs.
pub(crate) fn default_api_version(kind: FluxKind) -> Option<&'static str> {
    match kind {
        FluxKind::Bucket
        | FluxKind::HelmChart
        | FluxKind::HelmRepository
        | FluxKind::GitRepository
        | FluxKind::OCIRepository => Some("source.toolkit.fluxcd.io/v1"),
        FluxKind::ImageRepository => Some("image.toolkit.fluxcd.io/v1"),
        FluxKind::ArtifactGenerator => Some("source.extensions.fluxcd.io/v1beta1"),
        FluxKind::Kustomization
        | FluxKind::HelmRelease
        | FluxKind::ImagePolicy
        | FluxKind::ImageUpdateAutomation
        | FluxKind::ExternalArtifact => None,
    }
}

/// The kind's name as written in manifests.
pub(crate) fn kind_name(kind: FluxKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// `group/version` (or `version` for the core group) split.
fn group_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// Where one `spec.resources` entry points, resolved against the
/// Receiver's namespace and the controller's flags.
#[derive(Debug, PartialEq)]
pub(crate) struct Target {
    pub api_version: String,
    pub kind: String,
    /// `None`: every namespace (`namespace: '*'`).
    pub namespace: Option<String>,
    /// `None`: every object carrying `labels` (`name: '*'`).
    pub name: Option<String>,
    pub labels: BTreeMap<String, String>,
}

/// Resolves an entry, refusing what Flux refuses (a kind without default
/// API version and no `apiVersion`, `*` without `matchLabels`, a
/// cross-namespace reference under `--no-cross-namespace-refs`) and
/// what would otherwise be silently ignored (`namespace: '*'` with a
/// name).
pub(crate) fn resolve(
    entry: &ReceiverResource,
    receiver_namespace: &str,
    no_cross_namespace_refs: bool,
) -> Result<Target, String> {
    let kind = kind_name(entry.kind);
    let namespace = entry
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(receiver_namespace);
    if no_cross_namespace_refs && namespace != receiver_namespace {
        return Err(format!(
            "{kind} '{}' in namespace '{namespace}': cross-namespace references are not allowed (--no-cross-namespace-refs)",
            entry.name
        ));
    }
    let api_version = match entry.api_version.as_deref().filter(|v| !v.is_empty()) {
        Some(v) => v.to_string(),
        None => default_api_version(entry.kind)
            .ok_or_else(|| format!("apiVersion must be specified for kind '{kind}'"))?
            .to_string(),
    };
    let labels = entry.match_labels.clone().unwrap_or_default();
    let wildcard = entry.name == "*";
    if wildcard && labels.is_empty() {
        return Err(format!(
            "{kind} '*': matchLabels field not set when using wildcard '*' as name"
        ));
    }
    let namespace = if namespace == "*" {
        if !wildcard {
            return Err(format!(
                "{kind} '{}': namespace '*' requires name '*'",
                entry.name
            ));
        }
        None
    } else {
        Some(namespace.to_string())
    };
    Ok(Target {
        api_version,
        kind,
        namespace,
        name: (!wildcard).then(|| entry.name.clone()),
        labels,
    })
}

/// The label selector matching every pair of `labels`.
fn selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `namespace/name` of an object, for messages.
fn display(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind}/{ns}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

/// The reconcile request token: the time, written as Go's `time.Time`
/// prints it (what Flux's receiver writes, minus the monotonic clock
/// reading), e.g. `2026-05-02 10:04:05.123456789 +0000 UTC`.
pub(crate) fn request_token(now: jiff::Timestamp) -> String {
    let utc = now.to_zoned(jiff::tz::TimeZone::UTC);
    let nanos = utc.subsec_nanosecond();
    let fraction = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{}{fraction} +0000 UTC", utc.strftime("%Y-%m-%d %H:%M:%S"))
}

/// What became of one entry.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Objects annotated, as `Kind/namespace/name`.
    pub annotated: Vec<String>,
    /// Objects the CEL filters (or `matchLabels` on a named object) left
    /// alone.
    pub skipped: Vec<String>,
}

/// Reads and annotates objects of any Flux kind through the dynamic API.
#[derive(Clone)]
pub(crate) struct Annotator {
    client: Client,
    /// Discovered API resources (plural, scope) per group/version/kind.
    discovered: Arc<Mutex<HashMap<(String, String), ApiResource>>>,
}

impl Annotator {
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            discovered: Arc::default(),
        }
    }

    async fn api_resource(&self, api_version: &str, kind: &str) -> Result<ApiResource, String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(found) = self.discovered.lock().await.get(&key) {
            return Ok(found.clone());
        }
        let (group, version) = group_version(api_version);
        let (resource, _) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(group, version, kind),
        )
        .await
        .map_err(|e| format!("the API server does not serve {kind} in {api_version}: {e}"))?;
        self.discovered.lock().await.insert(key, resource.clone());
        Ok(resource)
    }

    fn api(&self, resource: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, resource),
            None => Api::all_with(self.client.clone(), resource),
        }
    }

    /// Requests a reconciliation of every object `target` selects that
    /// `filters` accept.
    pub(crate) async fn request(
        &self,
        target: &Target,
        filters: &ResourceFilters<'_>,
        token: &str,
    ) -> Result<Report, String> {
        let resource = self.api_resource(&target.api_version, &target.kind).await?;
        let api = self.api(&resource, target.namespace.as_deref());
        let objects: Vec<PartialObjectMeta<DynamicObject>> = match &target.name {
            Some(name) => {
                let object = api.get_metadata(name).await.map_err(|e| {
                    format!(
                        "unable to read {}: {e}",
                        display(&target.kind, target.namespace.as_deref(), name)
                    )
                })?;
                vec![object]
            }
            None => {
                let list = api
                    .list_metadata(&ListParams::default().labels(&selector(&target.labels)))
                    .await
                    .map_err(|e| {
                        format!(
                            "failed listing {} in namespace {:?} by matching labels {:?}: {e}",
                            target.kind,
                            target.namespace.as_deref().unwrap_or("*"),
                            target.labels
                        )
                    })?;
                if list.items.is_empty() {
                    info!(
                        kind = %target.kind,
                        namespace = target.namespace.as_deref().unwrap_or("*"),
                        labels = ?target.labels,
                        "no resources found with matching labels"
                    );
                }
                list.items
            }
        };
        let mut report = Report::default();
        for object in objects {
            let name = object.metadata.name.clone().unwrap_or_default();
            let namespace = object.metadata.namespace.clone();
            let shown = display(&target.kind, namespace.as_deref(), &name);
            let carries_labels = target.labels.iter().all(|(k, v)| {
                object
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(k))
                    .is_some_and(|value| value == v)
            });
            if !carries_labels {
                debug!(object = %shown, labels = ?target.labels, "not annotated: matchLabels not carried");
                report.skipped.push(shown);
                continue;
            }
            let res = json!({
                "apiVersion": target.api_version,
                "kind": target.kind,
                "metadata": object.metadata,
            });
            if !filters
                .accepts(&res)
                .map_err(|e| format!("filtering {shown}: {e}"))?
            {
                debug!(object = %shown, "not annotated: the CEL filter returned false");
                report.skipped.push(shown);
                continue;
            }
            let api = self.api(&resource, namespace.as_deref());
            let patch = json!({"metadata": {"annotations": {REQUESTED_AT: token}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| format!("unable to annotate {shown}: {e}"))?;
            report.annotated.push(shown);
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: FluxKind, name: &str) -> ReceiverResource {
        ReceiverResource {
            api_version: None,
            kind,
            name: name.to_string(),
            namespace: None,
            match_labels: None,
            filter: None,
        }
    }

    #[test]
    fn defaults_the_api_version_and_namespace_as_flux() {
        let target = resolve(&entry(FluxKind::GitRepository, "podinfo"), "apps", false).unwrap();
        assert_eq!(
            target,
            Target {
                api_version: "source.toolkit.fluxcd.io/v1".into(),
                kind: "GitRepository".into(),
                namespace: Some("apps".into()),
                name: Some("podinfo".into()),
                labels: BTreeMap::new(),
            }
        );
        assert_eq!(
            resolve(&entry(FluxKind::OCIRepository, "x"), "a", false)
                .unwrap()
                .api_version,
            "source.toolkit.fluxcd.io/v1"
        );
        assert_eq!(
            resolve(&entry(FluxKind::Kustomization, "x"), "a", false).unwrap_err(),
            "apiVersion must be specified for kind 'Kustomization'"
        );
        let mut ks = entry(FluxKind::Kustomization, "x");
        ks.api_version = Some("kustomize.toolkit.fluxcd.io/v1".into());
        assert_eq!(resolve(&ks, "a", false).unwrap().kind, "Kustomization");
    }

    #[test]
    fn wildcards_and_namespaces() {
        let bare = resolve(&entry(FluxKind::GitRepository, "*"), "apps", false).unwrap_err();
        assert!(bare.contains("matchLabels field not set"), "{bare}");

        let mut labelled = entry(FluxKind::GitRepository, "*");
        labelled.match_labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        let target = resolve(&labelled, "apps", false).unwrap();
        assert_eq!(target.name, None);
        assert_eq!(selector(&target.labels), "team=a");

        labelled.namespace = Some("*".into());
        assert_eq!(resolve(&labelled, "apps", false).unwrap().namespace, None);
        assert!(
            resolve(&labelled, "apps", true)
                .unwrap_err()
                .contains("cross-namespace references are not allowed")
        );

        let mut other = entry(FluxKind::GitRepository, "podinfo");
        other.namespace = Some("infra".into());
        assert_eq!(
            resolve(&other, "apps", false).unwrap().namespace.as_deref(),
            Some("infra")
        );
        assert!(resolve(&other, "apps", true).is_err());
        other.namespace = Some("apps".into());
        assert!(resolve(&other, "apps", true).is_ok());
        other.namespace = Some("*".into());
        assert!(
            resolve(&other, "apps", false)
                .unwrap_err()
                .contains("requires name '*'")
        );
    }

    #[test]
    fn token_is_gos_time_string() {
        let t: jiff::Timestamp = "2026-05-02T10:04:05.1234Z".parse().unwrap();
        assert_eq!(request_token(t), "2026-05-02 10:04:05.1234 +0000 UTC");
        let whole: jiff::Timestamp = "2026-05-02T10:04:05Z".parse().unwrap();
        assert_eq!(request_token(whole), "2026-05-02 10:04:05 +0000 UTC");
    }
}
