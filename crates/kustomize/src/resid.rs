//! Resource identity: group/version/kind plus name and namespace, and
//! kustomize's legacy kind ordering.

use std::cmp::Ordering;
use std::fmt;

use serde::Deserialize;

use crate::openapi;

/// Group, version and kind. Whether the kind is cluster-scoped is looked up
/// once, when the value is built from its parts (like kyaml's `NewGvk`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Gvk {
    /// The API group; empty for the core group.
    #[serde(default)]
    pub group: String,
    /// The API version.
    #[serde(default)]
    pub version: String,
    /// The kind.
    #[serde(default)]
    pub kind: String,
    #[serde(skip)]
    cluster_scoped: bool,
}

impl PartialEq for Gvk {
    fn eq(&self, o: &Self) -> bool {
        self.group == o.group && self.version == o.version && self.kind == o.kind
    }
}

impl Eq for Gvk {}

impl std::hash::Hash for Gvk {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.group.hash(state);
        self.version.hash(state);
        self.kind.hash(state);
    }
}

/// Splits an apiVersion into group and version.
pub fn parse_group_version(api_version: &str) -> (&str, &str) {
    match api_version.find('/') {
        Some(i) => (&api_version[..i], &api_version[i + 1..]),
        None => ("", api_version),
    }
}

fn type_order(kind: &str, first: &[&str], last: &[&str]) -> i64 {
    if let Some(i) = first.iter().position(|k| *k == kind) {
        return i as i64 - first.len() as i64;
    }
    if let Some(i) = last.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

impl Gvk {
    /// Builds a Gvk and records whether it is certainly cluster-scoped.
    pub fn new(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Gvk {
        let mut g = Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            cluster_scoped: false,
        };
        g.cluster_scoped = openapi::is_certainly_cluster_scoped(&g.api_version(), &g.kind);
        g
    }

    /// A Gvk without the scope lookup, like kyaml's struct literals (used for
    /// previous ids).
    pub fn unscoped(
        group: impl Into<String>,
        version: impl Into<String>,
        kind: impl Into<String>,
    ) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            cluster_scoped: false,
        }
    }

    /// The Gvk of an `apiVersion` and `kind`.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (g, v) = parse_group_version(api_version);
        Gvk::new(g, v, kind)
    }

    /// Recomputes the scope flag after deserialisation.
    pub fn with_scope(self) -> Gvk {
        Gvk::new(self.group, self.version, self.kind)
    }

    /// The `apiVersion`: `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether the kind is known to be cluster-scoped.
    pub fn is_cluster_scoped(&self) -> bool {
        self.cluster_scoped
    }

    /// Whether this Gvk matches a selector whose empty fields are wildcards.
    pub fn is_selected(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || self.group == selector.group)
            && (selector.version.is_empty() || self.version == selector.version)
            && (selector.kind.is_empty() || self.kind == selector.kind)
    }

    fn stable_sort_string(&self) -> String {
        let or = |s: &str, d: &str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}_{}_{}",
            or(&self.group, "~G"),
            or(&self.version, "~V"),
            or(&self.kind, "~K")
        )
    }

    /// kustomize's legacy order between kinds.
    pub fn legacy_cmp(&self, o: &Gvk) -> Ordering {
        self.cmp_with_order(
            o,
            crate::ordering::DEFAULT_ORDER_FIRST,
            crate::ordering::DEFAULT_ORDER_LAST,
        )
    }

    /// The legacy comparison with custom first/last kind lists.
    pub fn cmp_with_order(&self, o: &Gvk, first: &[&str], last: &[&str]) -> Ordering {
        let a = type_order(&self.kind, first, last);
        let b = type_order(&o.kind, first, last);
        if a != b {
            return a.cmp(&b);
        }
        self.stable_sort_string().cmp(&o.stable_sort_string())
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]")
        )
    }
}

/// The namespace kustomize uses for cluster-scoped ids.
pub const TOTALLY_NOT_A_NAMESPACE: &str = "_non_namespaceable_";
/// The namespace an empty namespace means.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A resource id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ResId {
    /// The group, version and kind.
    pub gvk: Gvk,
    /// The name.
    pub name: String,
    /// The namespace; empty means `default`.
    pub namespace: String,
}

impl ResId {
    /// An id from its parts.
    pub fn new(gvk: Gvk, name: impl Into<String>, namespace: impl Into<String>) -> ResId {
        ResId {
            gvk,
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// Whether the kind is known to be cluster-scoped.
    pub fn is_cluster_scoped(&self) -> bool {
        self.gvk.is_cluster_scoped()
    }

    /// The namespace used to compare ids: `default` when empty,
    /// [`TOTALLY_NOT_A_NAMESPACE`] for cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if self.is_cluster_scoped() {
            TOTALLY_NOT_A_NAMESPACE
        } else if self.namespace.is_empty() || self.namespace == DEFAULT_NAMESPACE {
            DEFAULT_NAMESPACE
        } else {
            &self.namespace
        }
    }

    /// Whether both ids have the same effective namespace.
    pub fn is_ns_equals(&self, o: &ResId) -> bool {
        self.effective_namespace() == o.effective_namespace()
    }

    /// Whether both ids have the same group, version, kind and name.
    pub fn gvkn_equals(&self, o: &ResId) -> bool {
        self.name == o.name && self.gvk == o.gvk
    }

    /// kustomize's `ResId.Equals`: same gvk, name and effective namespace.
    pub fn equals(&self, o: &ResId) -> bool {
        self.is_ns_equals(o) && self.gvkn_equals(o)
    }

    /// Whether this id matches `selector`, whose empty fields are wildcards.
    pub fn is_selected_by(&self, selector: &ResId) -> bool {
        (selector.name.is_empty() || selector.name == self.name)
            && (selector.namespace.is_empty() || selector.is_ns_equals(self))
            && self.gvk.is_selected(&selector.gvk)
    }

    /// Parses the `String()` form back (used for refBy annotations).
    pub fn from_id_string(s: &str) -> ResId {
        let (gvk_part, rest) = s.split_once('/').unwrap_or((s, ""));
        let values: Vec<&str> = gvk_part.split('.').collect();
        let gvk = if values.len() < 3 {
            Gvk::new("[noGrp]", "[noVer]", "[noKind]")
        } else {
            let k = if values[0] == "[noKind]" {
                ""
            } else {
                values[0]
            };
            let v = if values[1] == "[noVer]" {
                ""
            } else {
                values[1]
            };
            let g = values[2..].join(".");
            let g = if g == "[noGrp]" { String::new() } else { g };
            Gvk::new(g, v, k)
        };
        let parts: Vec<&str> = rest.split('.').collect();
        let last = parts.len().saturating_sub(1);
        let ns = parts.get(last).copied().unwrap_or("");
        let ns = if ns == "[noNs]" { "" } else { ns };
        let nm = parts[..last].join(".");
        let nm = if nm == "[noName]" { String::new() } else { nm };
        ResId::new(gvk, nm, ns)
    }
}

impl fmt::Display for ResId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let nm = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        write!(f, "{}/{}.{}", self.gvk, nm, ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_order() {
        let ns = Gvk::new("", "v1", "Namespace");
        let dep = Gvk::new("apps", "v1", "Deployment");
        let crd = Gvk::new("example.com", "v1", "Thing");
        let hook = Gvk::new(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
        );
        assert_eq!(ns.legacy_cmp(&dep), Ordering::Less);
        assert_eq!(dep.legacy_cmp(&crd), Ordering::Less);
        assert_eq!(crd.legacy_cmp(&hook), Ordering::Less);
        assert!(ns.is_cluster_scoped());
        assert!(!dep.is_cluster_scoped());
    }

    #[test]
    fn id_string_round_trip() {
        let id = ResId::new(Gvk::new("apps", "v1", "Deployment"), "a.b", "ns");
        assert_eq!(id.to_string(), "Deployment.v1.apps/a.b.ns");
        assert_eq!(ResId::from_id_string(&id.to_string()), id);
    }
}
