//! The Kubernetes OpenAPI facts a build needs, embedded at build time.
//!
//! `openapi/kubernetes-openapi.json` is derived, by the Go program in
//! `openapi/generator/`, from the schema kustomize v5.8.1 compiles in
//! (kyaml's Kubernetes v1.21.2 `swagger.pb`). It holds the list patch
//! strategies and merge keys strategic merge patches follow, which kind each
//! group/version/kind is, and whether a kind is namespaced.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde_json::Value;

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

/// A schema strategic merges consult: the embedded Kubernetes one or a
/// custom one from a kustomization's `openapi: {path: ...}`. Lookups go by
/// apiVersion, then kind (no key allocation per lookup, which matters: every
/// resource id asks whether its kind is cluster-scoped).
#[derive(Debug, Default)]
pub struct Table {
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

fn builtin() -> &'static Arc<Table> {
    static TABLE: OnceLock<Arc<Table>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is generated and checked by a unit test; an unreadable
        // table would be a build defect, so fall back to an empty one rather
        // than panic at run time.
        let raw: RawTable = serde_json::from_str(TABLE_JSON).unwrap_or_default();
        Arc::new(Table {
            version: raw.version,
            definitions: raw.definitions,
            kinds: by_api_version(raw.kinds),
            namespaced: by_api_version(raw.namespaced),
        })
    })
}

fn table() -> &'static Table {
    builtin()
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

impl Table {
    /// Reads a custom schema as kustomize does (`openapi: {path: ...}`): a
    /// Swagger 2 document, JSON when it starts with `{`, else YAML. Only what
    /// strategic merge uses is kept: definitions' properties, `$ref`s into
    /// `#/definitions/`, items, additionalProperties, the patch strategy and
    /// merge keys, and the kinds `x-kubernetes-group-version-kind` names.
    pub fn from_custom_schema(bytes: &[u8]) -> std::result::Result<Table, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
        let doc: Value = if bytes.first() == Some(&b'{') {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            crate::yaml::parse_single(text, crate::yaml::ParseOptions::CONFIG)
                .map_err(|e| e.to_string())?
        };
        let mut out = Table::default();
        let Some(defs) = doc.get("definitions").and_then(Value::as_object) else {
            return Ok(out);
        };
        for (name, def) in defs {
            let props = def
                .get("properties")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), custom_node(v, 0)))
                        .collect()
                })
                .unwrap_or_default();
            out.definitions.insert(name.clone(), props);
            let gvks = def
                .get("x-kubernetes-group-version-kind")
                .and_then(Value::as_array);
            for gvk in gvks.into_iter().flatten() {
                let field = |k: &str| gvk.get(k).and_then(Value::as_str).unwrap_or("");
                let api_version = match field("group") {
                    "" => field("version").to_string(),
                    g => format!("{g}/{}", field("version")),
                };
                out.kinds
                    .entry(api_version)
                    .or_default()
                    .insert(field("kind").to_string(), name.clone());
            }
        }
        Ok(out)
    }
}

/// One custom schema node in the embedded table's shape. Depth is bounded:
/// inline schemas nested this deep are not a real document.
fn custom_node(v: &Value, depth: usize) -> Node {
    let mut node = Node::default();
    if depth > 64 {
        return node;
    }
    let str_of = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    node.r = str_of("$ref").map(|r| {
        r.strip_prefix("#/definitions/")
            .map(str::to_string)
            .unwrap_or(r)
    });
    let sub = |k: &str| {
        v.get(k)
            .filter(|x| x.is_object())
            .map(|x| Box::new(custom_node(x, depth + 1)))
    };
    node.i = sub("items");
    node.a = sub("additionalProperties");
    node.p = v.get("properties").and_then(Value::as_object).map(|m| {
        m.iter()
            .map(|(k, x)| (k.clone(), custom_node(x, depth + 1)))
            .collect()
    });
    // kyaml: an array only when `type` is exactly ["array"].
    node.t = match v.get("type") {
        Some(Value::String(t)) => t == "array",
        Some(Value::Array(ts)) => ts.len() == 1 && ts[0] == "array",
        _ => false,
    };
    node.s = str_of("x-kubernetes-patch-strategy");
    // kyaml's PatchStrategyAndKeyList: no keys without a strategy; the
    // list-map keys win over the patch merge key.
    if node.s.is_some() {
        if let Some(keys) = v
            .get("x-kubernetes-list-map-keys")
            .and_then(Value::as_array)
        {
            node.k = keys
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect();
        } else if let Some(k) = str_of("x-kubernetes-patch-merge-key") {
            node.k = vec![k];
        }
    }
    node
}

thread_local! {
    /// The schema a build chose (kustomize's process-wide `SetSchema`):
    /// `None` until a kustomization's `openapi` field picks one.
    static SELECTED: RefCell<Option<Arc<Table>>> = const { RefCell::new(None) };
}

/// Scope of one build's schema choice: starts unset, restored when dropped
/// so a build never sees another's choice.
#[derive(Debug)]
pub struct SelectionScope {
    previous: Option<Arc<Table>>,
}

impl SelectionScope {
    /// Starts a build with no schema chosen (the embedded one applies).
    pub fn begin() -> SelectionScope {
        SelectionScope {
            previous: SELECTED.with(|s| s.borrow_mut().take()),
        }
    }
}

impl Drop for SelectionScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        SELECTED.with(|s| *s.borrow_mut() = previous);
    }
}

/// Whether a kustomization's `openapi` field already chose the schema.
pub fn is_selected() -> bool {
    SELECTED.with(|s| s.borrow().is_some())
}

/// Chooses the schema for the rest of the build (the first choice stays).
pub fn select(table: Arc<Table>) {
    SELECTED.with(|s| {
        let mut s = s.borrow_mut();
        if s.is_none() {
            *s = Some(table);
        }
    });
}

/// The embedded Kubernetes schema.
pub fn builtin_table() -> Arc<Table> {
    builtin().clone()
}

/// The schema strategic merges use now: the chosen one, else the embedded.
pub fn active_table() -> Arc<Table> {
    SELECTED
        .with(|s| s.borrow().clone())
        .unwrap_or_else(builtin_table)
}

/// A position in a schema: a definition's properties and/or an inline node.
#[derive(Clone, Copy)]
pub struct Schema<'t> {
    table: &'t Table,
    props: Option<&'t HashMap<String, Node>>,
    node: Option<&'t Node>,
}

impl std::fmt::Debug for Schema<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema")
            .field("strategy", &self.patch_strategy())
            .field("keys", &self.merge_keys())
            .finish()
    }
}

fn resolve<'t>(table: &'t Table, node: &'t Node) -> Option<Schema<'t>> {
    match &node.r {
        Some(name) => table.definitions.get(name).map(|props| Schema {
            table,
            props: Some(props),
            node: None,
        }),
        None => Some(Schema {
            table,
            props: node.p.as_ref(),
            node: Some(node),
        }),
    }
}

impl<'t> Schema<'t> {
    /// The schema of a resource type in `table`.
    pub fn for_type(table: &'t Table, api_version: &str, kind: &str) -> Option<Schema<'t>> {
        let name = table.kinds.get(api_version)?.get(kind)?;
        table.definitions.get(name).map(|props| Schema {
            table,
            props: Some(props),
            node: None,
        })
    }

    /// The schema of a field (or of a map's values).
    pub fn field(&self, name: &str) -> Option<Schema<'t>> {
        if let Some(node) = self.props.and_then(|p| p.get(name)) {
            return resolve(self.table, node);
        }
        let additional = self.node.and_then(|n| n.a.as_deref())?;
        resolve(self.table, additional)
    }

    /// The schema of an array's elements.
    pub fn elements(&self) -> Option<Schema<'t>> {
        let node = self.node?;
        if !node.t {
            return None;
        }
        resolve(self.table, node.i.as_deref()?)
    }

    /// `x-kubernetes-patch-strategy`, possibly comma-separated.
    pub fn patch_strategy(&self) -> &'t str {
        self.node.and_then(|n| n.s.as_deref()).unwrap_or("")
    }

    /// The list's merge keys.
    pub fn merge_keys(&self) -> &'t [String] {
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
        let t = builtin_table();
        let containers = Schema::for_type(&t, "apps/v1", "Deployment")
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
        let labels = Schema::for_type(&t, "v1", "Pod")
            .and_then(|s| s.field("metadata"))
            .and_then(|s| s.field("labels"));
        assert!(labels.is_none());
    }
}
