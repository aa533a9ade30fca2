//! Dotted field paths as used by `replacements` and `vars`
//! (`spec.template.spec.containers.[name=app].image`,
//! `spec.ports.0.port`, `metadata.labels.[app.kubernetes.io/name]`), with
//! kyaml's lookup (`PathGetter`) and match-and-create (`PathMatcher`)
//! semantics.

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::resource::scalar_text;

/// kyaml's `SmarterPathSplitter`: split on the delimiter, but keep
/// `[...]` groups whole (they may contain the delimiter).
pub fn smarter_split(path: &str, delimiter: char) -> Vec<String> {
    let split = crate::fieldspec::split_path(path, delimiter);
    let mut out = Vec::new();
    let mut i = 0;
    while i < split.len() {
        let elem = &split[i];
        if elem.starts_with('[') && !elem.ends_with(']') {
            let mut bracketed = vec![elem.clone()];
            while i < split.len() - 1 {
                i += 1;
                bracketed.push(split[i].clone());
                if split[i].ends_with(']') {
                    break;
                }
            }
            let joined = bracketed.join(&delimiter.to_string());
            if joined.contains('=') {
                out.push(joined);
            } else {
                out.push(joined.trim_matches(|c| c == '[' || c == ']').to_string());
            }
        } else {
            out.push(elem.clone());
        }
        i += 1;
    }
    out
}

/// kyaml's `convertSliceIndex`: `a[0]` becomes `a`, `0`.
pub fn convert_slice_index(fields: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for s in fields {
        if let Some(open) = s.rfind('[')
            && s.ends_with(']')
        {
            let digits = &s[open + 1..s.len() - 1];
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                if open > 0 {
                    out.push(s[..open].to_string());
                }
                out.push(digits.to_string());
                continue;
            }
        }
        out.push(s);
    }
    out
}

fn is_list_index(p: &str) -> bool {
    p.starts_with('[') && p.ends_with(']')
}

fn idx_number(p: &str) -> Option<usize> {
    let digits = p.strip_prefix('+').unwrap_or(p);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn split_index_name_value(p: &str) -> Result<(String, String)> {
    let inner = p.strip_suffix(']').unwrap_or(p);
    let inner = inner.strip_prefix('[').unwrap_or(inner);
    match inner.split_once('=') {
        Some((k, v)) => Ok((k.to_string(), v.to_string())),
        None => Err(Error::transformer(
            "list path element must contain fieldName=fieldValue for element to match",
        )),
    }
}

fn clean(path: &[String]) -> Vec<String> {
    path.iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn wrong_kind(expected: &str, got: &Value) -> Error {
    Error::transformer(format!(
        "wrong node kind: expected {expected} but got {}",
        crate::resource::value_kind(got)
    ))
}

/// kyaml's `Lookup`: follows a path without creating anything. `None` when
/// something along the path is missing or null.
pub fn lookup<'a>(node: &'a Value, path: &[String]) -> Result<Option<&'a Value>> {
    let mut cur = node;
    for part in clean(path) {
        if cur.is_null() {
            return Ok(None);
        }
        let next = if let Some(idx) = part
            .parse::<i64>()
            .ok()
            .filter(|_| idx_number(&part).is_some() || part.starts_with('-'))
        {
            if idx < 0 {
                return Err(Error::transformer(format!(
                    "array index {idx} cannot be negative"
                )));
            }
            match cur {
                Value::Array(a) => a.get(idx as usize),
                other => return Err(wrong_kind("SequenceNode", other)),
            }
        } else if part == "-" {
            match cur {
                Value::Array(a) => a.last(),
                other => return Err(wrong_kind("SequenceNode", other)),
            }
        } else if part == "*" {
            return Err(Error::transformer(
                "wildcard is not supported in PathGetter",
            ));
        } else if is_list_index(&part) {
            let (k, v) = split_index_name_value(&part)?;
            match cur {
                Value::Array(a) => a.iter().find(|e| {
                    if k.is_empty() {
                        !e.is_object() && !e.is_array() && scalar_text(e) == v
                    } else {
                        e.as_object()
                            .and_then(|m| m.get(&k))
                            .is_some_and(|f| scalar_text(f) == v)
                    }
                }),
                other => return Err(wrong_kind("SequenceNode", other)),
            }
        } else {
            match cur {
                Value::Object(m) => m.get(&part),
                other => return Err(wrong_kind("MappingNode", other)),
            }
        };
        match next {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => cur = v,
        }
    }
    Ok(Some(cur))
}

/// The kind of node to create for a missing path element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Create {
    /// A scalar (untyped until set).
    Scalar,
    /// A mapping.
    Mapping,
    /// A sequence.
    Sequence,
}

fn part_kind(next: Option<&String>, default: Create) -> Create {
    match next {
        None => default,
        Some(n) if is_list_index(n) || idx_number(n).is_some() => Create::Sequence,
        Some(_) => Create::Mapping,
    }
}

fn fresh(kind: Create) -> Value {
    match kind {
        Create::Mapping => Value::Object(Map::new()),
        Create::Sequence => Value::Array(Vec::new()),
        // An untyped empty scalar; `Null` marks "no type yet".
        Create::Scalar => Value::Null,
    }
}

/// kyaml's `PathMatcher`: applies `f` to every node the path matches
/// (list selectors may match several), creating missing fields when
/// `create` is set. Returns the number of matches.
pub fn match_apply(
    node: &mut Value,
    path: &[String],
    create: Option<Create>,
    f: &mut dyn FnMut(&mut Value) -> Result<()>,
) -> Result<usize> {
    let Some((first, rest)) = path.split_first() else {
        f(node)?;
        return Ok(1);
    };
    if let Some(idx) = idx_number(first) {
        let Value::Array(items) = node else {
            return Err(wrong_kind("SequenceNode", node));
        };
        if items.len() == idx
            && let Some(c) = create
        {
            items.push(fresh(part_kind(rest.first(), c)));
        }
        if items.len() < idx + 1 {
            return Err(Error::transformer(format!(
                "index {idx} specified but only {} elements found",
                items.len()
            )));
        }
        return match_apply(&mut items[idx], rest, create, f);
    }
    if is_list_index(first) {
        let (field, pattern) = split_index_name_value(first)?;
        let re = Regex::new(&pattern).map_err(|e| Error::transformer(e.to_string()))?;
        let Value::Array(items) = node else {
            return Err(wrong_kind("SequenceNode", node));
        };
        let mut count = 0;
        for elem in items.iter_mut() {
            if field.is_empty() {
                if elem.is_object() || elem.is_array() {
                    continue;
                }
                if re.is_match(scalar_text(elem).trim()) {
                    f(elem)?;
                    count += 1;
                }
                continue;
            }
            let Some(v) = elem.as_object().and_then(|m| m.get(&field)) else {
                continue;
            };
            if v.is_null() || !re.is_match(scalar_text(v).trim()) {
                continue;
            }
            count += match_apply(elem, rest, create, f)?;
        }
        if count > 0 || create.is_none() {
            return Ok(count);
        }
        let value = crate::fieldspec::untagged_scalar(&pattern);
        let elem = if field.is_empty() {
            value
        } else {
            let mut m = Map::new();
            m.insert(field, value);
            Value::Object(m)
        };
        items.push(elem);
        return match_apply(node, path, create, f);
    }
    if first == "*" {
        let Value::Array(items) = node else {
            return Err(wrong_kind("SequenceNode", node));
        };
        let mut count = 0;
        for elem in items.iter_mut() {
            count += match_apply(elem, rest, create, f)?;
        }
        return Ok(count);
    }
    let map = match node {
        Value::Object(m) => m,
        Value::Null => return Ok(0),
        other => return Err(wrong_kind("MappingNode", other)),
    };
    if !map.contains_key(first.as_str()) {
        match create {
            None => return Ok(0),
            Some(c) => {
                map.insert(first.clone(), fresh(part_kind(rest.first(), c)));
            }
        }
    }
    let Some(field) = map.get_mut(first.as_str()) else {
        return Ok(0);
    };
    if let Value::String(s) = field
        && !rest.is_empty()
    {
        // kyaml descends into structured data held in a string, but on a
        // copy: matches are counted, writes are lost.
        let mut parsed = crate::yaml::parse_single(s, crate::yaml::ParseOptions::RESOURCE)
            .map_err(|e| Error::transformer(e.to_string()))?;
        return match_apply(&mut parsed, rest, create, &mut |_| Ok(()));
    }
    if field.is_null() && create.is_none() && !rest.is_empty() {
        return Ok(0);
    }
    match_apply(field, rest, create, f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn splitting() {
        assert_eq!(
            smarter_split("spec.containers.[name=a.b].image", '.'),
            s(&["spec", "containers", "[name=a.b]", "image"])
        );
        assert_eq!(
            smarter_split("metadata.labels.[app.kubernetes.io/name]", '.'),
            s(&["metadata", "labels", "app.kubernetes.io/name"])
        );
        assert_eq!(convert_slice_index(s(&["a[0]", "b"])), s(&["a", "0", "b"]));
    }

    #[test]
    fn lookup_and_match() {
        let mut v = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let got = lookup(&v, &s(&["spec", "containers", "[name=b]", "image"])).unwrap();
        assert_eq!(got, Some(&json!("y")));
        let n = match_apply(
            &mut v,
            &s(&["spec", "containers", "*", "image"]),
            None,
            &mut |n| {
                *n = json!("z");
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 2);
        let n = match_apply(
            &mut v,
            &s(&["spec", "replicas"]),
            Some(Create::Scalar),
            &mut |n| {
                *n = json!(3);
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(n, 1);
        assert_eq!(v["spec"]["replicas"], json!(3));
    }
}
