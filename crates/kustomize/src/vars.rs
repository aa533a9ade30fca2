//! `vars`: `$(NAME)` references in selected fields replaced by a field of a
//! named resource, resolved after every other transformation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath;
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::kustomization::Var;
use crate::resid::{Gvk, ResId};
use crate::resmap::ResMap;
use crate::yaml::go_format;

const DEFAULT_FIELD_PATH: &str = "metadata.name";

/// Vars by name, with kustomize's defaulting applied.
#[derive(Clone, Debug, Default)]
pub struct VarSet {
    vars: BTreeMap<String, Var>,
}

fn defaulted(mut v: Var) -> Var {
    if v.fieldref.field_path.is_empty() {
        v.fieldref.field_path = DEFAULT_FIELD_PATH.into();
    }
    if !v.objref.api_version.is_empty() {
        let parts: Vec<&str> = v.objref.api_version.split('/').collect();
        match parts.as_slice() {
            [g, ver] => {
                v.objref.group = g.to_string();
                v.objref.version = ver.to_string();
            }
            [ver] => v.objref.version = ver.to_string(),
            _ => {}
        }
    }
    v
}

fn describe(v: &Var) -> String {
    format!(
        "{{{} {{{} {{{} {} {}}} {} {}}} {{{}}}}}",
        v.name,
        v.objref.api_version,
        v.objref.group,
        v.objref.version,
        v.objref.kind,
        v.objref.name,
        v.objref.namespace,
        v.fieldref.field_path
    )
}

impl VarSet {
    /// Adds a var; a name may only be defined once.
    pub fn merge(&mut self, v: Var) -> Result<()> {
        if self.vars.contains_key(&v.name) {
            return Err(Error::transformer(format!(
                "var '{}' already encountered",
                v.name
            )));
        }
        let v = defaulted(v);
        self.vars.insert(v.name.clone(), v);
        Ok(())
    }

    /// Adds every var of `other`; a name may only be defined once.
    pub fn merge_set(&mut self, other: &VarSet) -> Result<()> {
        for v in other.vars.values() {
            self.merge(v.clone())?;
        }
        Ok(())
    }

    /// Whether no var is defined.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }
}

/// Records on the matching resource that it provides each var (kustomize's
/// `ResAccumulator.MergeVars`), then adds the vars to the set.
pub fn merge_vars(m: &mut ResMap, set: &mut VarSet, incoming: &[Var]) -> Result<()> {
    for v in incoming {
        let d = defaulted(v.clone());
        let target = ResId::new(
            Gvk::unscoped(&d.objref.group, &d.objref.version, &d.objref.kind),
            &d.objref.name,
            &d.objref.namespace,
        );
        let matched = if target.namespace.is_empty() {
            m.matching_by_any_id(|id| target.gvkn_equals(id))
        } else {
            m.matching_by_any_id(|id| target.equals(id))
        };
        if matched.len() > 1 {
            return Err(Error::transformer(format!(
                "found {} resId matches for var {} (unable to disambiguate)",
                matched.len(),
                describe(&d)
            )));
        }
        if let Some(&i) = matched.first()
            && let Some(r) = m.get_mut(i)
        {
            r.append_ref_var_name(&v.name);
        }
    }
    for v in incoming {
        set.merge(v.clone())?;
    }
    Ok(())
}

/// A var's value as kustomize decodes it (string, integer, float or bool).
fn var_value(m: &ResMap, v: &Var) -> Result<Value> {
    for r in m.resources() {
        if !r.ref_var_names().contains(&v.name) {
            continue;
        }
        let path =
            fieldpath::convert_slice_index(fieldpath::smarter_split(&v.fieldref.field_path, '.'));
        let obj = r.to_value();
        let found = fieldpath::lookup(&obj, &path).ok().flatten();
        return match found {
            Some(value) => Ok(value.clone()),
            None => Err(Error::transformer(format!(
                "field specified in var '{}' not found in corresponding resource",
                describe(v)
            ))),
        };
    }
    Err(Error::transformer(format!(
        "var '{}' cannot be mapped to a field in the set of known resources",
        describe(v)
    )))
}

/// Replaces `$(VAR)` references; returns the names never used.
pub fn resolve(m: &mut ResMap, set: &VarSet, specs: &[FieldSpec]) -> Result<Vec<String>> {
    let mut values: BTreeMap<String, Value> = BTreeMap::new();
    for v in set.vars.values() {
        values.insert(v.name.clone(), var_value(m, v)?);
    }
    if values.is_empty() {
        return Ok(Vec::new());
    }
    let mut used: BTreeSet<String> = BTreeSet::new();
    for res in m.resources_mut() {
        for fs in specs {
            fieldspec::apply(res.as_map_mut(), fs, CreateKind::Nothing, &mut |node| {
                substitute_node(node, &values, &mut used)
            })?;
        }
    }
    Ok(values
        .keys()
        .filter(|k| !used.contains(*k))
        .cloned()
        .collect())
}

fn substitute_node(
    node: &mut Value,
    values: &BTreeMap<String, Value>,
    used: &mut BTreeSet<String>,
) -> Result<()> {
    match node {
        Value::Null => Ok(()),
        Value::String(s) => {
            *node = expand(s, values, used);
            Ok(())
        }
        Value::Object(map) => {
            for v in map.values_mut() {
                if let Value::String(s) = v {
                    *v = expand(s, values, used);
                }
            }
            Ok(())
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                let Value::String(s) = item else {
                    return Err(Error::transformer("invalid value type expect a string"));
                };
                *item = expand(s, values, used);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `fmt.Sprintf("%v", x)` of a var value.
fn sprint(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => go_format::go_sprint_number(n),
        Value::Bool(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// kustomize's `DoReplacements`: `$(NAME)` expands, `$$` escapes a `$`.
/// A string that is exactly one reference takes the var's type.
fn expand(input: &str, values: &BTreeMap<String, Value>, used: &mut BTreeSet<String>) -> Value {
    let primitive = |name: &str, used: &mut BTreeSet<String>| -> Option<Value> {
        match values.get(name) {
            Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                used.insert(name.to_string());
                Some(v.clone())
            }
            _ => None,
        }
    };
    let bytes = input.as_bytes();
    let mut out = String::new();
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance;
            match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    advance = 1;
                }
                b'(' => match rest[1..].find(')') {
                    Some(close) => {
                        let name = &rest[1..1 + close];
                        let mapped = primitive(name, used);
                        if input.len() == name.len() + 3 && cursor == 0 {
                            return mapped.unwrap_or_else(|| Value::String(input.to_string()));
                        }
                        match mapped {
                            Some(v) => out.push_str(&sprint(&v)),
                            None => out.push_str(&format!("$({name})")),
                        }
                        advance = close + 2;
                    }
                    None => {
                        out.push_str("$(");
                        advance = 1;
                    }
                },
                _ => {
                    out.push('$');
                    // The next character is copied by the checkpoint logic.
                    let ch_len = rest.chars().next().map_or(1, char::len_utf8);
                    out.push_str(&rest[..ch_len]);
                    advance = ch_len;
                }
            }
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    if checkpoint < input.len() {
        out.push_str(&input[checkpoint..]);
    }
    Value::String(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expansion() {
        let mut values = BTreeMap::new();
        values.insert("A".to_string(), json!("svc"));
        values.insert("N".to_string(), json!(3));
        let mut used = BTreeSet::new();
        assert_eq!(
            expand("http://$(A):80", &values, &mut used),
            json!("http://svc:80")
        );
        assert_eq!(expand("$(N)", &values, &mut used), json!(3));
        assert_eq!(expand("$$(A)", &values, &mut used), json!("$(A)"));
        assert_eq!(expand("$(B) x", &values, &mut used), json!("$(B) x"));
        assert_eq!(expand("a$b$(", &values, &mut used), json!("a$b$("));
        assert!(used.contains("A") && used.contains("N"));
    }
}
