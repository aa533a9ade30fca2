//! Field specs: which field of which kinds a transformer touches, and the
//! traversal kustomize's `fieldspec.Filter` performs to reach it.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::resid::{Gvk, parse_group_version};
use crate::yaml::resolve::{Dialect, Resolved, resolve_plain};

/// A field path on resources of some group/version/kind.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The API group; empty matches any.
    #[serde(default)]
    pub group: String,
    /// The API version; empty matches any.
    #[serde(default)]
    pub version: String,
    /// The kind; empty matches any.
    #[serde(default)]
    pub kind: String,
    /// The field path, elements separated by `/`.
    #[serde(default)]
    pub path: String,
    /// Whether to create the field when it is missing (`create` in YAML).
    #[serde(default, rename = "create")]
    pub create_if_not_present: bool,
}

impl FieldSpec {
    /// A spec for `path` on `kind` (any group and version).
    pub fn new(kind: &str, path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            kind: kind.into(),
            path: path.into(),
            create_if_not_present: create,
            ..FieldSpec::default()
        }
    }

    /// The spec's group, version and kind (without a scope lookup).
    pub fn gvk(&self) -> Gvk {
        Gvk::unscoped(&self.group, &self.version, &self.kind)
    }

    /// Whether the spec applies to an object with this apiVersion and kind.
    pub fn matches(&self, api_version: &str, kind: &str) -> bool {
        let (group, version) = parse_group_version(api_version);
        (self.kind.is_empty() || self.kind == kind)
            && (self.group.is_empty() || self.group == group)
            && (self.version.is_empty() || self.version == version)
    }

    fn effectively_equals(&self, other: &FieldSpec) -> bool {
        self.gvk().is_selected(&other.gvk()) && self.path == other.path
    }

    /// The path split on unescaped `/`.
    pub fn path_elements(&self) -> Vec<String> {
        split_path(&self.path, '/')
    }
}

/// kyaml's `PathSplitter`: split on a delimiter, honouring `\` escapes and
/// an optional leading delimiter.
pub fn split_path(path: &str, delimiter: char) -> Vec<String> {
    let mut parts: Vec<&str> = path.split(delimiter).collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push(delimiter);
                last.push_str(p);
            }
            _ => out.push(p.to_string()),
        }
    }
    out
}

/// kustomize's `FsSlice.MergeOne`: add unless an equivalent spec exists;
/// equivalent specs must agree on `create`.
pub fn merge_one(list: &mut Vec<FieldSpec>, fs: FieldSpec) -> Result<()> {
    if let Some(existing) = list.iter().find(|x| x.effectively_equals(&fs)) {
        if existing.create_if_not_present != fs.create_if_not_present {
            return Err(Error::transformer("conflicting fieldspecs"));
        }
        return Ok(());
    }
    list.push(fs);
    Ok(())
}

/// Merges every spec of `incoming` into `list` with [`merge_one`].
pub fn merge_all(list: &mut Vec<FieldSpec>, incoming: &[FieldSpec]) -> Result<()> {
    for fs in incoming {
        merge_one(list, fs.clone())?;
    }
    Ok(())
}

/// What to create at the end of the path when it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateKind {
    /// Never create.
    Nothing,
    /// Create a scalar.
    Scalar,
    /// Create a mapping.
    Mapping,
}

/// A scalar written without a tag: kyaml leaves it untyped, so it is read
/// back with YAML's implicit typing (`"123"` becomes a number).
pub fn untagged_scalar(s: &str) -> Value {
    match resolve_plain(s, Dialect::V3) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Number(i.into()),
        Resolved::Uint(u) => Value::Number(u.into()),
        Resolved::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(s.to_string())),
        Resolved::Timestamp(t) => Value::String(t),
        Resolved::Merge | Resolved::Str => Value::String(s.to_string()),
    }
}

/// Applies `set` to the field(s) a spec designates in `obj`, creating them
/// when the spec and `create` allow (kustomize's `fieldspec.Filter`).
pub fn apply(
    obj: &mut Map<String, Value>,
    fs: &FieldSpec,
    create: CreateKind,
    set: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let str_field = |obj: &Map<String, Value>, k: &str| -> String {
        obj.get(k).and_then(Value::as_str).unwrap_or("").to_string()
    };
    {
        let field = |k: &str| obj.get(k).and_then(Value::as_str).unwrap_or("");
        if !fs.matches(field("apiVersion"), field("kind")) {
            return Ok(());
        }
    }
    let (api_version, kind) = (str_field(obj, "apiVersion"), str_field(obj, "kind"));
    let path = fs.path_elements();
    let mut root = Value::Object(std::mem::take(obj));
    let result = walk(&mut root, &path, fs.create_if_not_present, create, set);
    if let Value::Object(m) = root {
        *obj = m;
    }
    result.map_err(|e| {
        e.context(format!(
            "considering field '{}' of object {}/{}",
            fs.path, kind, api_version
        ))
    })
}

fn walk(
    node: &mut Value,
    path: &[String],
    create_if_missing: bool,
    create: CreateKind,
    set: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<()> {
    let Some((first, rest)) = path.split_first() else {
        return set(node);
    };
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => {
            for item in items {
                walk(item, path, create_if_missing, create, set)?;
            }
            Ok(())
        }
        Value::Object(map) => {
            let (name, is_seq) = match first.strip_suffix("[]") {
                Some(n) => (n, true),
                None => (first.as_str(), false),
            };
            if name.is_empty() {
                return Err(Error::transformer(
                    "cannot set or create an empty field name",
                ));
            }
            let (lookup_only, kind) =
                if !create_if_missing || create == CreateKind::Nothing || is_seq {
                    (
                        true,
                        if is_seq {
                            Some(NodeKind::Sequence)
                        } else {
                            None
                        },
                    )
                } else if rest.is_empty() {
                    (
                        false,
                        Some(match create {
                            CreateKind::Mapping => NodeKind::Mapping,
                            _ => NodeKind::Scalar,
                        }),
                    )
                } else {
                    (false, Some(NodeKind::Mapping))
                };
            if !map.contains_key(name) {
                if lookup_only {
                    return Ok(());
                }
                let fresh = match kind {
                    Some(NodeKind::Mapping) => Value::Object(Map::new()),
                    Some(NodeKind::Sequence) => Value::Array(Vec::new()),
                    _ => Value::String(String::new()),
                };
                map.insert(name.to_string(), fresh);
            }
            let Some(field) = map.get_mut(name) else {
                return Ok(());
            };
            if field.is_null()
                && let Some(kind) = kind
            {
                *field = match kind {
                    NodeKind::Mapping => Value::Object(Map::new()),
                    NodeKind::Sequence => Value::Array(Vec::new()),
                    NodeKind::Scalar => Value::String(String::new()),
                };
            }
            walk(field, rest, create_if_missing, create, set)
        }
        _ => Err(Error::transformer("expected sequence or mapping node")),
    }
}

#[derive(Clone, Copy)]
enum NodeKind {
    Scalar,
    Mapping,
    Sequence,
}

/// Sets `key: value` on a mapping node (kyaml's `FieldSetter`).
pub fn set_entry(node: &mut Value, key: &str, value: Value) -> Result<()> {
    match node {
        Value::Object(m) => {
            m.insert(key.to_string(), value);
            Ok(())
        }
        Value::Null => {
            let mut m = Map::new();
            m.insert(key.to_string(), value);
            *node = Value::Object(m);
            Ok(())
        }
        other => Err(Error::transformer(format!(
            "wrong node kind: expected MappingNode but got {}",
            crate::resource::value_kind(other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn path_splitting() {
        assert_eq!(split_path("a/b\\/c/d", '/'), vec!["a", "b/c", "d"]);
        assert_eq!(split_path("/a/b", '/'), vec!["a", "b"]);
    }

    #[test]
    fn traversal_and_creation() {
        let mut obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "spec": {"template": {"spec": {"containers": [{"image": "a"}, {"image": "b"}]}}}})
        .as_object()
        .cloned()
        .unwrap();
        let fs = FieldSpec::new("", "spec/template/spec/containers[]/image", true);
        apply(&mut obj, &fs, CreateKind::Scalar, &mut |v| {
            *v = Value::String(format!("x-{}", v.as_str().unwrap_or("")));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            obj["spec"]["template"]["spec"]["containers"][1]["image"],
            "x-b"
        );
        let fs = FieldSpec::new("Deployment", "spec/template/metadata/labels", true);
        apply(&mut obj, &fs, CreateKind::Mapping, &mut |v| {
            set_entry(v, "a", json!("b"))
        })
        .unwrap();
        assert_eq!(
            obj["spec"]["template"]["metadata"]["labels"],
            json!({"a": "b"})
        );
        let other = FieldSpec::new("Service", "spec/selector", true);
        apply(&mut obj, &other, CreateKind::Mapping, &mut |v| {
            set_entry(v, "a", json!("b"))
        })
        .unwrap();
        assert!(obj["spec"].get("selector").is_none());
    }

    #[test]
    fn merging_specs() {
        let mut list = vec![FieldSpec::new("Deployment", "a", true)];
        merge_one(&mut list, FieldSpec::new("Deployment", "a", true)).unwrap();
        assert_eq!(list.len(), 1);
        assert!(merge_one(&mut list, FieldSpec::new("Deployment", "a", false)).is_err());
    }
}
