//! The Kubernetes OpenAPI facts a build needs, embedded at build time.
//!
//! `openapi/kubernetes-openapi.json` is derived, by the Go program in
//! `openapi/generator/`, from the schema kustomize v5.8.1 compiles in
//! (kyaml's Kubernetes v1.21.2 `swagger.pb`). It holds the list patch
//! strategies and merge keys strategic merge patches follow, which kind each
//! group/version/kind is, and whether a kind is namespaced.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

const TABLE_JSON: &str = include_str!("../openapi/kubernetes-openapi.json");

#[derive(Debug, Default, Deserialize)]
struct Node {
    /// Reference to a definition.
    #[serde(default)]
    r: Option<String>,
    /// Element schema of an array.
    #[serde(default)]
    i: Option<Box<Node>>,
    /// Value schema of a map.
    #[serde(default)]
    a: Option<Box<Node>>,
    /// Inline properties.
    #[serde(default)]
    p: Option<HashMap<String, Node>>,
    /// Whether this is an array.
    #[serde(default)]
    t: bool,
    /// `x-kubernetes-patch-strategy`.
    #[serde(default)]
    s: Option<String>,
    /// Merge keys (`x-kubernetes-list-map-keys`, else the patch merge key).
    #[serde(default)]
    k: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct RawTable {
    version: String,
    definitions: HashMap<String, HashMap<String, Node>>,
    /// Keyed `apiVersion|kind`.
    kinds: HashMap<String, String>,
    /// Keyed `apiVersion|kind`.
    namespaced: HashMap<String, bool>,
}

/// Lookups by apiVersion, then kind (no key allocation per lookup, which
/// matters: every resource id asks whether its kind is cluster-scoped).
#[derive(Debug, Default)]
struct Table {
    version: String,
    definitions: HashMap<String, HashMap<String, Node>>,
    kinds: HashMap<String, HashMap<String, String>>,
    namespaced: HashMap<String, HashMap<String, bool>>,
}

fn by_api_version<V>(flat: HashMap<String, V>) -> HashMap<String, HashMap<String, V>> {
    let mut out: HashMap<String, HashMap<String, V>> = HashMap::new();
    for (key, v) in flat {
        let (api_version, kind) = key.split_once('|').unwrap_or((key.as_str(), ""));
        out.entry(api_version.to_string())
            .or_default()
            .insert(kind.to_string(), v);
    }
    out
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is generated and checked by a unit test; an unreadable
        // table would be a build defect, so fall back to an empty one rather
        // than panic at run time.
        let raw: RawTable = serde_json::from_str(TABLE_JSON).unwrap_or_default();
        Table {
            version: raw.version,
            definitions: raw.definitions,
            kinds: by_api_version(raw.kinds),
            namespaced: by_api_version(raw.namespaced),
        }
    })
}

/// The Kubernetes version the embedded schema describes.
pub fn schema_version() -> &'static str {
    &table().version
}

/// `Some(true)` for namespaced kinds, `Some(false)` for cluster-scoped ones,
/// `None` for kinds the schema does not know (custom resources).
pub fn is_namespace_scoped(api_version: &str, kind: &str) -> Option<bool> {
    table().namespaced.get(api_version)?.get(kind).copied()
}

/// kustomize's `IsCertainlyClusterScoped`: known and not namespaced.
pub fn is_certainly_cluster_scoped(api_version: &str, kind: &str) -> bool {
    is_namespace_scoped(api_version, kind) == Some(false)
}

/// A position in the schema: a definition's properties and/or an inline node.
#[derive(Clone, Copy)]
pub struct Schema {
    props: Option<&'static HashMap<String, Node>>,
    node: Option<&'static Node>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("strategy", &self.patch_strategy())
            .field("keys", &self.merge_keys())
            .finish()
    }
}

fn resolve(node: &'static Node) -> Option<Schema> {
    match &node.r {
        Some(name) => table().definitions.get(name).map(|props| Schema {
            props: Some(props),
            node: None,
        }),
        None => Some(Schema {
            props: node.p.as_ref(),
            node: Some(node),
        }),
    }
}

impl Schema {
    /// The schema of a resource type.
    pub fn for_type(api_version: &str, kind: &str) -> Option<Schema> {
        let t = table();
        let name = t.kinds.get(api_version)?.get(kind)?;
        t.definitions.get(name).map(|props| Schema {
            props: Some(props),
            node: None,
        })
    }

    /// The schema of a field (or of a map's values).
    pub fn field(&self, name: &str) -> Option<Schema> {
        if let Some(node) = self.props.and_then(|p| p.get(name)) {
            return resolve(node);
        }
        let additional = self.node.and_then(|n| n.a.as_deref())?;
        resolve(additional)
    }

    /// The schema of an array's elements.
    pub fn elements(&self) -> Option<Schema> {
        let node = self.node?;
        if !node.t {
            return None;
        }
        resolve(node.i.as_deref()?)
    }

    /// `x-kubernetes-patch-strategy`, possibly comma-separated.
    pub fn patch_strategy(&self) -> &'static str {
        self.node.and_then(|n| n.s.as_deref()).unwrap_or("")
    }

    /// The list's merge keys.
    pub fn merge_keys(&self) -> &'static [String] {
        self.node.map(|n| n.k.as_slice()).unwrap_or(&[])
    }

    /// Whether the list merges element-wise (strategy contains `merge`).
    pub fn has_merge_strategy(&self) -> bool {
        self.patch_strategy().split(',').any(|s| s == "merge")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_table_loads() {
        assert_eq!(schema_version(), "v1.21.2");
        assert_eq!(is_namespace_scoped("v1", "Namespace"), Some(false));
        assert_eq!(is_namespace_scoped("apps/v1", "Deployment"), Some(true));
        assert_eq!(is_namespace_scoped("example.com/v1", "Thing"), None);
        let containers = Schema::for_type("apps/v1", "Deployment")
            .and_then(|s| s.field("spec"))
            .and_then(|s| s.field("template"))
            .and_then(|s| s.field("spec"))
            .and_then(|s| s.field("containers"))
            .expect("containers schema");
        assert!(containers.has_merge_strategy());
        assert_eq!(containers.merge_keys(), ["name"]);
        let ports = containers
            .elements()
            .and_then(|c| c.field("ports"))
            .expect("ports schema");
        assert_eq!(ports.merge_keys(), ["containerPort", "protocol"]);
        let labels = Schema::for_type("v1", "Pod")
            .and_then(|s| s.field("metadata"))
            .and_then(|s| s.field("labels"));
        assert!(labels.is_none());
    }
}
