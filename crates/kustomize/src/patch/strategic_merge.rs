//! Strategic merge patches as kustomize applies them (kyaml's `merge2`
//! walker, not apimachinery's): lists whose schema says `merge` are merged
//! element-wise by their merge keys with the patch's elements first, other
//! lists are replaced, `null` deletes a field, and `$patch: delete|replace|
//! merge` directives apply to maps and lists. Merge keys and strategies
//! come from the embedded Kubernetes OpenAPI schema; kinds the schema does
//! not know (custom resources) get their lists replaced.
//!
//! The quirks of kyaml's walker are kept on purpose (for instance, a patch
//! element that lacks one of several merge keys does not match), because
//! the goal is kustomize's output, not the API server's.

use std::collections::HashSet;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::untagged_scalar;
use crate::openapi::{Schema, Table};

const DIRECTIVE: &str = "$patch";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Directive {
    Unknown,
    Replace,
    Delete,
    Merge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    None,
    Mapping,
    Sequence,
    Scalar,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Object(_) => Kind::Mapping,
        Value::Array(_) => Kind::Sequence,
        _ => Kind::Scalar,
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::Mapping => "MappingNode",
        Kind::Sequence => "SequenceNode",
        Kind::Scalar => "ScalarNode",
        Kind::None => "0",
    }
}

fn missing_or_null(v: &Option<Value>) -> bool {
    matches!(v, None | Some(Value::Null))
}

/// The text kyaml compares list keys by.
fn text(v: &Value) -> String {
    crate::resource::scalar_text(v)
}

/// kyaml's `IsNilOrEmpty` on a field value.
fn nil_or_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn is_empty_map(v: &Value) -> bool {
    matches!(v, Value::Object(m) if m.is_empty())
}

/// Reads and removes a `$patch` directive (kyaml's `determineSmpDirective`).
fn directive(patch: &mut Option<Value>) -> Result<Directive> {
    let Some(p) = patch else {
        return Ok(Directive::Merge);
    };
    match p {
        Value::Array(items) => {
            let found = items.iter().find_map(|e| match e {
                Value::Object(m) if m.contains_key(DIRECTIVE) => Some(m),
                _ => None,
            });
            let Some(elem) = found else {
                return Ok(Directive::Merge);
            };
            if elem.len() > 1 {
                return Ok(Directive::Merge);
            }
            let v = elem.get(DIRECTIVE).map(text).unwrap_or_default();
            let d = match v.as_str() {
                "delete" => Directive::Delete,
                "replace" => Directive::Replace,
                "merge" => Directive::Merge,
                _ => return Err(Error::patch(format!("unknown patch strategy '{v}'"))),
            };
            let keys = [DIRECTIVE.to_string()];
            let values = [v];
            element_setter(items, None, &keys, &values)?;
            Ok(d)
        }
        Value::Object(m) => {
            let Some(v) = m.get(DIRECTIVE) else {
                return Ok(Directive::Merge);
            };
            let v = text(v);
            let d = match v.as_str() {
                "delete" => Directive::Delete,
                "replace" => Directive::Replace,
                "merge" => Directive::Merge,
                _ => return Err(Error::patch(format!("unknown patch strategy '{v}'"))),
            };
            m.shift_remove(DIRECTIVE);
            Ok(d)
        }
        other => Err(Error::patch(format!(
            "no implemented strategic merge patch strategy for '{}' ('{}')",
            match other {
                Value::Null => "!!null",
                Value::Bool(_) => "!!bool",
                Value::Number(_) => "!!int",
                _ => "!!str",
            },
            text(other)
        ))),
    }
}

/// What a walk produced: the node and whether it is the destination node
/// itself (kyaml mutates destination elements in place, which matters when
/// list elements are put back).
struct Walked {
    value: Option<Value>,
    is_dest: bool,
}

impl Walked {
    fn clear() -> Walked {
        Walked {
            value: None,
            is_dest: false,
        }
    }
}

fn schema_for<'t>(
    table: &'t Table,
    schema: Option<Schema<'t>>,
    sources: [&Option<Value>; 2],
) -> Option<Schema<'t>> {
    if schema.is_some() {
        return schema;
    }
    for s in sources {
        if let Some(Value::Object(m)) = s {
            let kind = m.get("kind").map(text).unwrap_or_default();
            let api = m.get("apiVersion").map(text).unwrap_or_default();
            if kind.is_empty() || api.is_empty() {
                continue;
            }
            if let Some(found) = Schema::for_type(table, &api, &kind) {
                return Some(found);
            }
        }
    }
    None
}

fn check_kinds(kind: Kind, dest: &Option<Value>, origin: &Option<Value>) -> Result<()> {
    for s in [dest, origin].into_iter().flatten() {
        if s.is_null() {
            continue;
        }
        let k = kind_of(s);
        if k != kind {
            return Err(Error::patch(format!(
                "wrong node kind: expected {} but got {}",
                kind_name(kind),
                kind_name(k)
            )));
        }
    }
    Ok(())
}

fn walk<'t>(
    table: &'t Table,
    dest: Option<Value>,
    origin: Option<Value>,
    schema: Option<Schema<'t>>,
    depth: usize,
) -> Result<Walked> {
    if depth > 512 {
        return Err(Error::patch("strategic merge patch nests too deeply"));
    }
    let schema = schema_for(table, schema, [&dest, &origin]);
    let kind = [&dest, &origin]
        .into_iter()
        .find_map(|s| match s {
            Some(v) if !v.is_null() => Some(kind_of(v)),
            _ => None,
        })
        .unwrap_or(Kind::None);
    match kind {
        Kind::Mapping | Kind::None => {
            if kind == Kind::Mapping {
                check_kinds(Kind::Mapping, &dest, &origin)?;
            }
            walk_map(table, dest, origin, schema, depth)
        }
        Kind::Sequence => {
            check_kinds(Kind::Sequence, &dest, &origin)?;
            if schema.is_some_and(|s| s.has_merge_strategy()) {
                walk_associative_sequence(table, dest, origin, schema, depth)
            } else {
                // Non-associative lists: the patch wins.
                Ok(match origin {
                    Some(Value::Null) => Walked::clear(),
                    Some(o) => Walked {
                        value: Some(o),
                        is_dest: false,
                    },
                    None => Walked {
                        value: dest,
                        is_dest: true,
                    },
                })
            }
        }
        Kind::Scalar => {
            check_kinds(Kind::Scalar, &dest, &origin)?;
            Ok(match origin {
                Some(Value::Null) => Walked::clear(),
                Some(o) => Walked {
                    value: Some(o),
                    is_dest: false,
                },
                None => Walked {
                    value: dest,
                    is_dest: true,
                },
            })
        }
    }
}

/// kyaml's `Merger.VisitMap`.
fn visit_map(dest: Option<Value>, origin: &mut Option<Value>) -> Result<Walked> {
    if missing_or_null(&dest) {
        let d = directive(origin).unwrap_or(Directive::Unknown);
        if d == Directive::Delete {
            return Ok(Walked::clear());
        }
        if origin.is_none() && dest.is_some() {
            // A null the patch does not mention stays.
            return Ok(Walked {
                value: Some(Value::Null),
                is_dest: true,
            });
        }
        return Ok(Walked {
            value: origin.clone(),
            is_dest: false,
        });
    }
    if matches!(origin, Some(Value::Null)) {
        return Ok(Walked::clear());
    }
    match directive(origin)? {
        Directive::Delete => Ok(Walked::clear()),
        Directive::Replace => Ok(Walked {
            value: origin.clone(),
            is_dest: false,
        }),
        _ => Ok(Walked {
            value: dest,
            is_dest: true,
        }),
    }
}

fn walk_map<'t>(
    table: &'t Table,
    dest: Option<Value>,
    mut origin: Option<Value>,
    schema: Option<Schema<'t>>,
    depth: usize,
) -> Result<Walked> {
    let visited = visit_map(dest, &mut origin)?;
    let Some(mut result) = visited.value else {
        return Ok(Walked::clear());
    };
    let Value::Object(result_map) = &mut result else {
        return Ok(Walked {
            value: Some(result),
            is_dest: visited.is_dest,
        });
    };
    // Field names of both sources, sorted.
    let mut names: Vec<String> = result_map.keys().cloned().collect();
    if let Some(Value::Object(o)) = &origin {
        names.extend(o.keys().cloned());
    }
    names.sort();
    names.dedup();
    for name in names {
        let field_schema = schema.and_then(|s| s.field(&name));
        let d = result_map.get(&name).cloned();
        let o = match &origin {
            Some(Value::Object(o)) => o.get(&name).cloned(),
            _ => None,
        };
        let w = walk(table, d, o, field_schema, depth + 1)?;
        match w.value {
            None => {
                result_map.shift_remove(&name);
            }
            Some(v) => {
                result_map.insert(name, v);
            }
        }
    }
    Ok(Walked {
        value: Some(result),
        is_dest: visited.is_dest,
    })
}

/// kyaml's `Merger.VisitList` for associative lists.
fn visit_associative_list(
    dest: Option<Value>,
    origin: &mut Option<Value>,
) -> Result<Option<Value>> {
    if missing_or_null(&dest) {
        return Ok(origin.clone());
    }
    if matches!(origin, Some(Value::Null)) {
        return Ok(None);
    }
    match directive(origin)? {
        Directive::Delete => Ok(None),
        Directive::Replace => Ok(origin.clone()),
        _ => Ok(dest),
    }
}

fn walk_associative_sequence<'t>(
    table: &'t Table,
    dest: Option<Value>,
    mut origin: Option<Value>,
    schema: Option<Schema<'t>>,
    depth: usize,
) -> Result<Walked> {
    let Some(dest) = visit_associative_list(dest, &mut origin)? else {
        return Ok(Walked::clear());
    };
    let keys: Vec<String> = schema.map(|s| s.merge_keys().to_vec()).unwrap_or_default();
    // The patch's elements come first (kustomize merges with "prepend").
    let sources = [&origin, &Some(dest.clone())];
    let values = element_values(&keys, sources);
    let elem_schema = schema.and_then(|s| s.elements());
    let out = if !values.is_empty() || !keys.is_empty() {
        set_associative_elements(table, values, &keys, dest, &origin, elem_schema, depth)?
    } else {
        let primitives = primitive_values(sources);
        set_associative_elements(
            table,
            primitives,
            &[String::new()],
            dest,
            &origin,
            elem_schema,
            depth,
        )?
    };
    Ok(Walked {
        value: out,
        is_dest: false,
    })
}

fn element_values(keys: &[String], sources: [&Option<Value>; 2]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = Vec::new();
    let mut seen: HashSet<Vec<String>> = HashSet::new();
    for src in sources {
        let Some(Value::Array(items)) = src else {
            continue;
        };
        for item in items {
            let vals: Vec<String> = keys
                .iter()
                .map(|k| {
                    let f = item.as_object().and_then(|m| m.get(k));
                    if nil_or_empty(f) {
                        String::new()
                    } else {
                        f.map(text).unwrap_or_default()
                    }
                })
                .collect();
            if vals.is_empty() || seen.contains(&vals) {
                continue;
            }
            seen.insert(vals.clone());
            out.push(vals);
        }
    }
    out
}

fn primitive_values(sources: [&Option<Value>; 2]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for src in sources {
        let Some(Value::Array(items)) = src else {
            continue;
        };
        for item in items {
            let t = text(item);
            if seen.insert(t.clone()) {
                out.push(vec![t]);
            }
        }
    }
    out
}

fn validate_keys(
    values_list: &[Vec<String>],
    values: &[String],
    keys: &[String],
) -> (Vec<String>, Vec<String>) {
    let mut valid: HashSet<&str> = HashSet::new();
    for vals in values_list {
        for (i, v) in vals.iter().enumerate() {
            if !v.is_empty()
                && let Some(k) = keys.get(i)
            {
                valid.insert(k.as_str());
            }
        }
    }
    if valid.is_empty() {
        return (keys.to_vec(), values.to_vec());
    }
    let valid_keys: Vec<String> = keys
        .iter()
        .filter(|k| valid.contains(k.as_str()))
        .cloned()
        .collect();
    let valid_values: Vec<String> = values
        .iter()
        .enumerate()
        .filter(|(i, v)| !v.is_empty() || keys.get(*i).is_some_and(|k| valid.contains(k.as_str())))
        .map(|(_, v)| v.clone())
        .collect();
    (valid_keys, valid_values)
}

fn match_values(a: &[String], b: &[String]) -> Option<Vec<String>> {
    if a.len() != b.len() {
        return None;
    }
    let mut common = false;
    let mut res = Vec::with_capacity(a.len());
    for (x, y) in a.iter().zip(b) {
        if x == y {
            common = true;
            res.push(x.clone());
            continue;
        }
        if !x.is_empty() && !y.is_empty() {
            return None;
        }
        res.push(if x.is_empty() { y.clone() } else { x.clone() });
    }
    common.then_some(res)
}

fn merge_values(list: &mut [Vec<String>]) {
    for i in 0..list.len() {
        let v1 = list[i].clone();
        for j in 0..list.len() {
            let v2 = list[j].clone();
            if let Some(m) = match_values(&v1, &v2) {
                list[i] = m.clone();
                list[j] = m;
            }
        }
    }
}

/// kyaml's `ElementMatcher` with keys and values: the first mapping element
/// whose key fields have exactly these texts (or, for primitive lists, the
/// first element with this text).
fn find_element(items: &[Value], keys: &[String], values: &[String]) -> Option<usize> {
    if keys.is_empty() || keys[0].is_empty() {
        let want = values.first().cloned().unwrap_or_default();
        return items.iter().position(|e| text(e) == want);
    }
    if keys.len() != values.len() {
        return None;
    }
    items.iter().position(|e| {
        let Value::Object(m) = e else {
            return false;
        };
        keys.iter()
            .zip(values)
            .all(|(k, v)| m.get(k).is_some_and(|f| text(f) == *v))
    })
}

/// kyaml's `FieldMatcher` on a list element for `ElementSetter`.
fn element_matches(elem: &Value, keys: &[String], values: &[String]) -> Result<bool> {
    let mut found = false;
    for (j, key) in keys.iter().enumerate() {
        if j < values.len() {
            let value = &values[j];
            if key.is_empty() {
                // Scalar comparison.
                if kind_of(elem) != Kind::Scalar {
                    return Err(Error::patch(format!(
                        "wrong node kind: expected ScalarNode but got {}",
                        kind_name(kind_of(elem))
                    )));
                }
                found = text(elem) == *value;
            } else {
                let Value::Object(m) = elem else {
                    return Err(Error::patch(format!(
                        "wrong node kind: expected MappingNode but got {}",
                        kind_name(kind_of(elem))
                    )));
                };
                // An empty wanted value only requires the field to exist.
                found = match m.get(key) {
                    Some(f) => value.is_empty() || text(f) == *value,
                    None => false,
                };
            }
        }
        if !found {
            return Ok(false);
        }
    }
    Ok(found || keys.is_empty())
}

/// kyaml's `ElementSetter`: drops null and empty-map elements, replaces
/// elements matching keys/values with `element` (or removes them when it is
/// `None`), and appends `element` when nothing matched.
fn element_setter(
    items: &mut Vec<Value>,
    element: Option<Value>,
    keys: &[String],
    values: &[String],
) -> Result<()> {
    let keys: Vec<String> = if keys.is_empty() {
        vec![String::new()]
    } else {
        keys.to_vec()
    };
    let mapping_setter = !keys[0].is_empty() && values.first().is_some_and(|v| !v.is_empty());
    let mut out = Vec::with_capacity(items.len() + 1);
    let mut matched = false;
    for elem in items.drain(..) {
        if elem.is_null() || is_empty_map(&elem) {
            continue;
        }
        if !elem.is_object() && mapping_setter {
            out.push(elem);
            continue;
        }
        if !element_matches(&elem, &keys, values)? {
            if !values.is_empty() {
                out.push(elem);
            }
            continue;
        }
        matched = true;
        if let Some(e) = &element {
            out.push(e.clone());
        }
    }
    *items = out;
    if let Some(e) = element
        && !e.is_null()
        && !matched
    {
        items.push(e);
    }
    Ok(())
}

fn set_associative_elements<'t>(
    table: &'t Table,
    mut values_list: Vec<Vec<String>>,
    keys: &[String],
    dest: Value,
    origin: &Option<Value>,
    elem_schema: Option<Schema<'t>>,
    depth: usize,
) -> Result<Option<Value>> {
    let mut dest_items = match dest {
        Value::Array(a) => a,
        other => return Ok(Some(other)),
    };
    let origin_items: &[Value] = match origin {
        Some(Value::Array(a)) => a,
        _ => &[],
    };
    if keys.len() > 1 {
        merge_values(&mut values_list);
    }
    let mut added: Vec<Value> = Vec::new();
    let mut valid_keys: Vec<String> = Vec::new();
    for values in &values_list {
        if values.is_empty() {
            continue;
        }
        let (vk, vv) = validate_keys(&values_list, values, keys);
        valid_keys = vk.clone();
        let (lk, lv) = validate_keys(std::slice::from_ref(&vv), &vv, &vk);
        let d_idx = find_element(&dest_items, &lk, &lv);
        let d = d_idx.map(|i| dest_items[i].clone());
        let o = find_element(origin_items, &lk, &lv).map(|i| origin_items[i].clone());
        let w = walk(table, d, o, elem_schema, depth + 1)?;
        let mut val = w.value;
        let mut exit = false;
        for (i, key) in vk.iter().enumerate() {
            match &mut val {
                None => {
                    element_setter(&mut dest_items, None, &vk, &vv)?;
                    exit = true;
                }
                Some(v) if v.is_null() || is_empty_map(v) => {
                    element_setter(&mut dest_items, None, &vk, &vv)?;
                    exit = true;
                }
                Some(Value::Object(m)) => {
                    if !m.contains_key(key)
                        && let Some(value) = vv.get(i)
                        && !value.is_empty()
                    {
                        m.insert(key.clone(), untagged_scalar(value));
                    }
                }
                Some(_) => {}
            }
        }
        if exit {
            continue;
        }
        // kyaml merged into the destination element itself.
        if w.is_dest
            && let (Some(i), Some(v)) = (d_idx, &val)
            && i < dest_items.len()
        {
            dest_items[i] = v.clone();
        }
        element_setter(&mut added, val, &vk, &vv)?;
    }
    if values_list.is_empty() {
        return Ok(Some(Value::Array(dest_items)));
    }
    append_list_node(&mut added, &dest_items, &valid_keys)?;
    Ok(Some(Value::Array(added)))
}

/// kyaml's `appendListNode`: puts the destination's elements into `dst`.
fn append_list_node(dst: &mut Vec<Value>, src: &[Value], keys: &[String]) -> Result<()> {
    for elem in src {
        if keys.first().is_none_or(|k| k.is_empty()) {
            element_setter(dst, Some(elem.clone()), &[String::new()], &[text(elem)])?;
            continue;
        }
        let Value::Object(m) = elem else {
            return Err(Error::patch(format!(
                "wrong node kind: expected MappingNode but got {}",
                kind_name(kind_of(elem))
            )));
        };
        let mut v = Vec::new();
        for key in keys {
            match m.get(key) {
                None => dst.push(elem.clone()),
                Some(f) => v.push(text(f)),
            }
        }
        if keys.len() > 1 {
            element_setter(dst, None, keys, &v)?;
        }
        element_setter(dst, Some(elem.clone()), keys, &v)?;
    }
    Ok(())
}

/// Merges `patch` into `target` with the schema the build chose (see
/// [`crate::openapi::active_table`]). `None` means the patch deleted the
/// object.
pub fn merge(target: Value, patch: Value) -> Result<Option<Value>> {
    merge_with(&crate::openapi::active_table(), target, patch)
}

/// Merges `patch` into `target` with list strategies and merge keys from
/// `table`.
pub fn merge_with(table: &Table, target: Value, patch: Value) -> Result<Option<Value>> {
    let w = walk(table, Some(target), Some(patch), None, 0)?;
    Ok(match w.value {
        Some(Value::Null) | None => None,
        Some(v) => Some(v),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(containers: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": containers}}}})
    }

    #[test]
    fn merges_containers_patch_first() {
        let target = deployment(
            json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}, {"name": "d", "image": "d"}]),
        );
        let patch = deployment(json!([{"name": "b", "image": "new"}, {"name": "c", "image": "c"}]));
        let out = merge(target, patch).unwrap().unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "new"}, {"name": "c", "image": "c"}, {"name": "a", "image": "a"}, {"name": "d", "image": "d"}])
        );
    }

    #[test]
    fn multi_key_quirk_is_kept() {
        let target = deployment(
            json!([{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 81}]}]),
        );
        let patch = deployment(
            json!([{"name": "a", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 90, "name": "other"}]}]),
        );
        let out = merge(target, patch).unwrap().unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 90, "name": "other"}, {"containerPort": 80, "protocol": "TCP", "name": "http"}, {"containerPort": 81}])
        );
    }

    #[test]
    fn directives_and_nulls() {
        let target = deployment(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let patch = deployment(json!([{"name": "a", "$patch": "delete"}]));
        let out = merge(target.clone(), patch).unwrap().unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "b"}])
        );
        let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": null});
        let out = merge(target.clone(), patch).unwrap().unwrap();
        assert!(out.get("spec").is_none());
        let patch = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "$patch": "delete"});
        assert!(merge(target.clone(), patch).unwrap().is_none());
        let patch = json!({"kind": "Deployment", "metadata": {"name": "d"}, "spec": {"$patch": "replace", "replicas": 2}});
        let out = merge(target, patch).unwrap().unwrap();
        assert_eq!(out["spec"], json!({"replicas": 2}));
    }

    #[test]
    fn unknown_kinds_replace_lists() {
        let target = json!({"apiVersion": "x/v1", "kind": "Y", "metadata": {"name": "n"}, "items": [{"name": "a"}], "m": {"k": 1}});
        let patch = json!({"apiVersion": "x/v1", "kind": "Y", "metadata": {"name": "n"}, "items": [{"name": "b"}], "m": {"j": 2}});
        let out = merge(target, patch).unwrap().unwrap();
        assert_eq!(out["items"], json!([{"name": "b"}]));
        assert_eq!(out["m"], json!({"j": 2, "k": 1}));
    }

    #[test]
    fn finalizers_union() {
        let target = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "finalizers": ["a", "b"]}});
        let patch = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "n", "finalizers": ["c", "a"]}});
        let out = merge(target, patch).unwrap().unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }
}
