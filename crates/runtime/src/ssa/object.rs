//! Identity of applied objects and the per-object annotations that steer the
//! engine.

use std::fmt;

use kube::api::{DynamicObject, GroupVersionKind};
use serde_json::Value;

use super::Error;

/// The kind of a CustomResourceDefinition.
pub const CRD_KIND: &str = "CustomResourceDefinition";
/// The API group of CustomResourceDefinitions.
pub const CRD_GROUP: &str = "apiextensions.k8s.io";

/// Identity of one object: group, version, kind, namespace and name.
///
/// Ordered and compared by every field, so it can key maps and sets.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// API group, empty for the core group.
    pub group: String,
    /// API version within the group.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The identity of a parsed object; errors when `apiVersion`, `kind` or
    /// `metadata.name` is missing (generateName is not supported by apply).
    pub fn from_object(object: &DynamicObject) -> Result<Self, Error> {
        let types = object.types.as_ref().ok_or_else(|| Error::InvalidObject {
            object: object.metadata.name.clone().unwrap_or_default(),
            reason: "apiVersion and kind are required".to_string(),
        })?;
        let gvk = GroupVersionKind::try_from(types).map_err(|err| Error::InvalidObject {
            object: object.metadata.name.clone().unwrap_or_default(),
            reason: err.to_string(),
        })?;
        if gvk.kind.is_empty() || gvk.version.is_empty() {
            return Err(Error::InvalidObject {
                object: object.metadata.name.clone().unwrap_or_default(),
                reason: "apiVersion and kind are required".to_string(),
            });
        }
        let name = object
            .metadata
            .name
            .clone()
            .filter(|name| !name.is_empty())
            .ok_or_else(|| Error::InvalidObject {
                object: gvk.kind.clone(),
                reason: "metadata.name is required".to_string(),
            })?;
        Ok(Self {
            group: gvk.group,
            version: gvk.version,
            kind: gvk.kind,
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name,
        })
    }

    /// The group/version/kind.
    pub fn gvk(&self) -> GroupVersionKind {
        GroupVersionKind::gvk(&self.group, &self.version, &self.kind)
    }

    /// `group/version`, or only `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether this is a CustomResourceDefinition.
    pub fn is_crd(&self) -> bool {
        self.kind == CRD_KIND && self.group == CRD_GROUP
    }

    /// Whether this is a core Namespace.
    pub fn is_namespace(&self) -> bool {
        self.kind == "Namespace" && self.group.is_empty()
    }
}

/// Flux's `Kind/namespace/name` (or `Kind/name` when cluster-scoped).
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// How an object is applied, from the `<group>/ssa` annotation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApplyPolicy {
    /// Apply and take over conflicting fields (the default).
    #[default]
    Override,
    /// Apply, but leave the fields other managers own alone: their
    /// managedFields entries are not taken over.
    Merge,
    /// Create the object only when it does not exist yet.
    IfNotPresent,
    /// Never apply (nor prune) the object.
    Ignore,
}

impl ApplyPolicy {
    /// Reads the policy from an annotation value; unknown values mean the
    /// default, as in Flux. Values are compared case-insensitively.
    pub fn parse(value: Option<&str>) -> Self {
        match value.map(str::to_ascii_lowercase).as_deref() {
            Some("merge") => Self::Merge,
            Some("ifnotpresent") => Self::IfNotPresent,
            Some("ignore") => Self::Ignore,
            _ => Self::Override,
        }
    }
}

/// The annotation and label keys of one owner group, e.g.
/// `kustomize.toolkit.fluxcd.io/ssa` and `kustomize.toolkit.fluxcd.io/name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerKeys {
    /// `<group>/name` label.
    pub name_label: String,
    /// `<group>/namespace` label.
    pub namespace_label: String,
    /// `<group>/ssa` annotation.
    pub ssa: String,
    /// `<group>/force` annotation.
    pub force: String,
    /// `<group>/prune` annotation.
    pub prune: String,
    /// `<group>/reconcile` annotation.
    pub reconcile: String,
    /// `<group>/driftDetection` annotation.
    pub drift_detection: String,
}

impl OwnerKeys {
    /// The keys under `group`.
    pub fn new(group: &str) -> Self {
        Self {
            name_label: format!("{group}/name"),
            namespace_label: format!("{group}/namespace"),
            ssa: format!("{group}/ssa"),
            force: format!("{group}/force"),
            prune: format!("{group}/prune"),
            reconcile: format!("{group}/reconcile"),
            drift_detection: format!("{group}/driftDetection"),
        }
    }
}

/// The annotations of `object` that the engine reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectAnnotations {
    /// `ssa`.
    pub policy: ApplyPolicy,
    /// `force: Enabled`.
    pub force: bool,
    /// `prune: disabled`.
    pub prune_disabled: bool,
    /// `reconcile: disabled`.
    pub reconcile_disabled: bool,
    /// `driftDetection: disabled`.
    pub drift_detection_disabled: bool,
}

impl ObjectAnnotations {
    /// Reads the annotations under `keys` from an object's metadata.
    pub fn read(object: &DynamicObject, keys: &OwnerKeys) -> Self {
        let get = |key: &str| {
            object
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(key))
                .map(String::as_str)
        };
        let is =
            |key: &str, expected: &str| get(key).is_some_and(|v| v.eq_ignore_ascii_case(expected));
        Self {
            policy: ApplyPolicy::parse(get(&keys.ssa)),
            force: is(&keys.force, "enabled"),
            prune_disabled: is(&keys.prune, "disabled"),
            reconcile_disabled: is(&keys.reconcile, "disabled"),
            drift_detection_disabled: is(&keys.drift_detection, "disabled"),
        }
    }

    /// Whether the engine must leave the object alone entirely
    /// (`reconcile: disabled` or `ssa: Ignore`).
    pub fn ignored(&self) -> bool {
        self.reconcile_disabled || self.policy == ApplyPolicy::Ignore
    }
}

/// A string field of a JSON object at a path of keys.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: Value) -> DynamicObject {
        serde_json::from_value(json).expect("valid object")
    }

    #[test]
    fn refs_display_like_flux() {
        let svc = object(serde_json::json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "podinfo", "namespace": "default"}
        }));
        let svc = ObjectRef::from_object(&svc).expect("ref");
        assert_eq!(svc.to_string(), "Service/default/podinfo");
        assert_eq!(svc.group, "");
        assert_eq!(svc.api_version(), "v1");
        let crd = object(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}
        }));
        let crd = ObjectRef::from_object(&crd).expect("ref");
        assert_eq!(
            crd.to_string(),
            "CustomResourceDefinition/widgets.example.com"
        );
        assert!(crd.is_crd());
    }

    #[test]
    fn objects_without_identity_are_rejected() {
        let nameless =
            object(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}));
        let err = ObjectRef::from_object(&nameless).expect_err("no name");
        assert!(err.to_string().contains("metadata.name"), "{err}");
        let kindless = object(serde_json::json!({"metadata": {"name": "x"}}));
        assert!(ObjectRef::from_object(&kindless).is_err());
    }

    #[test]
    fn annotations_are_read_case_insensitively() {
        let keys = OwnerKeys::new("kustomize.toolkit.fluxcd.io");
        let obj = object(serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "annotations": {
                "kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent",
                "kustomize.toolkit.fluxcd.io/force": "enabled",
                "kustomize.toolkit.fluxcd.io/prune": "Disabled",
            }}
        }));
        let annotations = ObjectAnnotations::read(&obj, &keys);
        assert_eq!(annotations.policy, ApplyPolicy::IfNotPresent);
        assert!(annotations.force);
        assert!(annotations.prune_disabled);
        assert!(!annotations.reconcile_disabled);
        assert!(!annotations.ignored());
        assert_eq!(ApplyPolicy::parse(Some("Ignore")), ApplyPolicy::Ignore);
        assert_eq!(ApplyPolicy::parse(Some("bogus")), ApplyPolicy::Override);
        assert_eq!(keys.name_label, "kustomize.toolkit.fluxcd.io/name");
    }
}
