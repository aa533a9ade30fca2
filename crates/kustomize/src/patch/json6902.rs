//! JSON patches (RFC 6902) with the semantics of the Go library kustomize
//! uses (`gopkg.in/evanphx/json-patch.v4`): negative array indices count
//! from the end, `replace` of a missing object key adds it, a missing
//! `value` means `null`, and `copy` is size-limited.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::yaml::{ParseOptions, parse_single};

/// Limit on bytes duplicated by `copy` operations in one patch (the Go
/// library's `AccumulatedCopySizeLimit` is unlimited by default; a bound
/// protects against exponential growth).
const COPY_SIZE_LIMIT: usize = 64 << 20;

/// One decoded operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    raw: Map<String, Value>,
}

/// A decoded JSON patch.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct JsonPatch {
    ops: Vec<Operation>,
}

fn err(message: impl Into<String>) -> Error {
    Error::patch(message)
}

impl JsonPatch {
    /// Decodes a patch written as JSON (text starting with `[`) or YAML.
    pub fn decode(text: &str) -> Result<JsonPatch> {
        let value: Value = if text.starts_with('[') {
            serde_json::from_str(text).map_err(|e| err(format!("decoding json patch: {e}")))?
        } else {
            parse_single(text, ParseOptions::CONFIG)
                .map_err(|e| err(format!("decoding json patch: {e}")))?
        };
        let Value::Array(items) = value else {
            return Err(err(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                json_kind(&value)
            )));
        };
        let mut ops = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Value::Object(raw) => ops.push(Operation { raw }),
                Value::Null => ops.push(Operation { raw: Map::new() }),
                other => {
                    return Err(err(format!(
                        "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                        json_kind(&other)
                    )));
                }
            }
        }
        Ok(JsonPatch { ops })
    }

    /// Whether the patch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Applies the patch to a document.
    pub fn apply(&self, doc: &mut Value) -> Result<()> {
        let mut copied = 0usize;
        for op in &self.ops {
            match op.kind().as_str() {
                "add" => add(doc, op)?,
                "remove" => remove(doc, op)?,
                "replace" => replace(doc, op)?,
                "move" => move_op(doc, op)?,
                "test" => test(doc, op)?,
                "copy" => copy(doc, op, &mut copied)?,
                other => return Err(err(format!("Unexpected kind: {other}"))),
            }
        }
        Ok(())
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Operation {
    fn kind(&self) -> String {
        match self.raw.get("op") {
            Some(Value::String(s)) => s.clone(),
            _ => "unknown".into(),
        }
    }

    fn string_field(&self, name: &str) -> Result<String> {
        match self.raw.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(Value::Null) | None => Err(err(format!("operation missing {name} field"))),
            Some(other) => Err(err(format!(
                "json: cannot unmarshal {} into Go value of type string",
                json_kind(other)
            ))),
        }
    }

    fn path(&self) -> Result<String> {
        self.string_field("path")
    }

    fn from(&self) -> Result<String> {
        self.string_field("from")
    }

    fn value(&self) -> Value {
        self.raw.get("value").cloned().unwrap_or(Value::Null)
    }
}

fn decode_key(k: &str) -> String {
    k.replace("~1", "/").replace("~0", "~")
}

/// Go's `strconv.Atoi` (optional sign, decimal digits).
fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Finds the container of the last path element (the library's
/// `findObject`). Returns `None` when the path does not apply.
fn find_container<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let key = decode_key(split[split.len() - 1]);
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let part = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&part)?,
            Value::Array(a) => {
                let idx = resolve_index(atoi(&part)?, a.len(), false)?;
                a.get_mut(idx)?
            }
            _ => return None,
        };
        if !matches!(next, Value::Object(_) | Value::Array(_)) {
            return None;
        }
        cur = next;
    }
    Some((cur, key))
}

/// Applies negative-index support; `insert` allows `len`.
fn resolve_index(idx: i64, len: usize, insert: bool) -> Option<usize> {
    let size = if insert { len + 1 } else { len } as i64;
    let idx = if idx < 0 {
        if idx < -size {
            return None;
        }
        idx + size
    } else {
        idx
    };
    if idx >= size {
        return None;
    }
    usize::try_from(idx).ok()
}

fn container_add(con: &mut Value, key: &str, val: Value, path: &str) -> Result<()> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), val);
            Ok(())
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(val);
                return Ok(());
            }
            let idx = atoi(key).ok_or_else(|| {
                err(format!(
                    "error in add for path: '{path}': value was not a proper array index: '{key}'"
                ))
            })?;
            let i = resolve_index(idx, a.len(), true).ok_or_else(|| {
                err(format!(
                    "error in add for path: '{path}': Unable to access invalid index: {idx}"
                ))
            })?;
            a.insert(i, val);
            Ok(())
        }
        _ => Err(err(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        ))),
    }
}

fn container_get(con: &Value, key: &str) -> Result<Option<Value>> {
    match con {
        Value::Object(m) => Ok(m.get(key).cloned()),
        Value::Array(a) => {
            let idx = atoi(key)
                .ok_or_else(|| err(format!("strconv.Atoi: parsing {key:?}: invalid syntax")))?;
            let i = resolve_index(idx, a.len(), false)
                .ok_or_else(|| err(format!("Unable to access invalid index: {idx}")))?;
            Ok(a.get(i).cloned())
        }
        _ => Ok(None),
    }
}

fn container_remove(con: &mut Value, key: &str) -> Result<()> {
    match con {
        Value::Object(m) => {
            if m.shift_remove(key).is_none() {
                return Err(err(format!(
                    "Unable to remove nonexistent key: {key}: missing value"
                )));
            }
            Ok(())
        }
        Value::Array(a) => {
            let idx = atoi(key)
                .ok_or_else(|| err(format!("strconv.Atoi: parsing {key:?}: invalid syntax")))?;
            let i = resolve_index(idx, a.len(), false)
                .ok_or_else(|| err(format!("Unable to access invalid index: {idx}")))?;
            a.remove(i);
            Ok(())
        }
        _ => Err(err(format!("Unable to remove nonexistent key: {key}"))),
    }
}

fn add(doc: &mut Value, op: &Operation) -> Result<()> {
    let path = op
        .path()
        .map_err(|_| err("add operation failed to decode path: missing value"))?;
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "add operation does not apply: doc is missing path: \"{path}\""
        ))
    })?;
    container_add(con, &key, op.value(), &path)
}

fn remove(doc: &mut Value, op: &Operation) -> Result<()> {
    let path = op
        .path()
        .map_err(|_| err("remove operation failed to decode path: missing value"))?;
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\""
        ))
    })?;
    container_remove(con, &key)
        .map_err(|e| e.context(format!("error in remove for path: '{path}'")))
}

fn replace(doc: &mut Value, op: &Operation) -> Result<()> {
    let path = op
        .path()
        .map_err(|e| e.context("replace operation failed to decode path"))?;
    if path.is_empty() {
        let val = op.value();
        if !matches!(val, Value::Object(_) | Value::Array(_)) {
            return Err(err("replace operation value must be object or array"));
        }
        *doc = val;
        return Ok(());
    }
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "replace operation does not apply: doc is missing path: {path}"
        ))
    })?;
    if container_get(con, &key).is_err() {
        return Err(err(format!(
            "replace operation does not apply: doc is missing key: {path}"
        )));
    }
    match con {
        Value::Object(m) => {
            m.insert(key, op.value());
        }
        Value::Array(a) => {
            let idx = atoi(&key).unwrap_or(0);
            if let Some(i) = resolve_index(idx, a.len(), false) {
                a[i] = op.value();
            }
        }
        _ => {}
    }
    Ok(())
}

fn move_op(doc: &mut Value, op: &Operation) -> Result<()> {
    let from = op
        .from()
        .map_err(|e| e.context("move operation failed to decode from"))?;
    let (con, key) = find_container(doc, &from).ok_or_else(|| {
        err(format!(
            "move operation does not apply: doc is missing from path: {from}"
        ))
    })?;
    let val = container_get(con, &key)
        .map_err(|e| e.context(format!("error in move for path: '{key}'")))?
        .unwrap_or(Value::Null);
    container_remove(con, &key)
        .map_err(|e| e.context(format!("error in move for path: '{key}'")))?;
    let path = op
        .path()
        .map_err(|e| e.context("move operation failed to decode path"))?;
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "move operation does not apply: doc is missing destination path: {path}"
        ))
    })?;
    container_add(con, &key, val, &path)
}

/// JSON equality as the Go library decides it (numbers compared as floats).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn test(doc: &mut Value, op: &Operation) -> Result<()> {
    let path = op
        .path()
        .map_err(|e| e.context("test operation failed to decode path"))?;
    let expected = op.value();
    if path.is_empty() {
        if json_equal(doc, &expected) {
            return Ok(());
        }
        return Err(err(format!("testing value {path} failed: test failed")));
    }
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "test operation does not apply: is missing path: {path}"
        ))
    })?;
    let val = container_get(con, &key)
        .map_err(|e| e.context(format!("error in test for path: '{path}'")))?;
    let ok = match val {
        None | Some(Value::Null) => expected.is_null(),
        Some(v) => json_equal(&v, &expected),
    };
    if ok {
        Ok(())
    } else {
        Err(err(format!("testing value {path} failed: test failed")))
    }
}

fn copy(doc: &mut Value, op: &Operation, copied: &mut usize) -> Result<()> {
    let from = op
        .from()
        .map_err(|e| e.context("copy operation failed to decode from"))?;
    let (con, key) = find_container(doc, &from).ok_or_else(|| {
        err(format!(
            "copy operation does not apply: doc is missing from path: {from}"
        ))
    })?;
    let val = container_get(con, &key)
        .map_err(|e| e.context(format!("error in copy for from: '{from}'")))?
        .unwrap_or(Value::Null);
    *copied += serde_json::to_string(&val).map(|s| s.len()).unwrap_or(0);
    if *copied > COPY_SIZE_LIMIT {
        return Err(err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {copied}, exceeding the limit {COPY_SIZE_LIMIT}"
        )));
    }
    let path = op
        .path()
        .map_err(|_| err("copy operation failed to decode path: missing value"))?;
    let (con, key) = find_container(doc, &path).ok_or_else(|| {
        err(format!(
            "copy operation does not apply: doc is missing destination path: {path}"
        ))
    })?;
    container_add(con, &key, val, &path)
        .map_err(|e| e.context("error while adding value during copy"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: &str) -> Result<Value> {
        let mut doc = doc;
        JsonPatch::decode(patch)?.apply(&mut doc)?;
        Ok(doc)
    }

    #[test]
    fn operations() {
        let doc = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        assert_eq!(
            run(doc.clone(), "- op: add\n  path: /a/b/-\n  value: 4\n").unwrap(),
            json!({"a": {"b": [1, 2, 3, 4]}, "c": "x"})
        );
        assert_eq!(
            run(doc.clone(), "- op: remove\n  path: /a/b/-1\n").unwrap(),
            json!({"a": {"b": [1, 2]}, "c": "x"})
        );
        assert_eq!(
            run(doc.clone(), r#"[{"op":"replace","path":"/d","value":1}]"#).unwrap(),
            json!({"a": {"b": [1, 2, 3]}, "c": "x", "d": 1})
        );
        assert_eq!(
            run(doc.clone(), "- {op: move, from: /c, path: /a/c}\n").unwrap(),
            json!({"a": {"b": [1, 2, 3], "c": "x"}})
        );
        assert_eq!(
            run(doc.clone(), "- {op: copy, from: /c, path: /a/b/0}\n").unwrap(),
            json!({"a": {"b": ["x", 1, 2, 3]}, "c": "x"})
        );
        assert!(run(doc.clone(), "- {op: test, path: /c, value: x}\n").is_ok());
        assert!(run(doc.clone(), "- {op: test, path: /c, value: y}\n").is_err());
        assert!(run(doc.clone(), "- {op: remove, path: /zz}\n").is_err());
        assert!(run(doc.clone(), "- {op: add, path: /x/y, value: 1}\n").is_err());
        assert!(run(doc.clone(), "- {op: frob, path: /c}\n").is_err());
        assert!(run(doc.clone(), "- {op: add, path: /a/b/9, value: 1}\n").is_err());
        assert!(run(doc, "op: add\n").is_err());
    }
}
