//! The name suffix kustomize appends to generated ConfigMaps and Secrets:
//! the first ten hex digits of the SHA-256 of a canonical JSON encoding,
//! with some letters swapped to avoid offensive words (kubectl's scheme).

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::yaml::go_format::go_json;

/// kubectl's hash encoding: 10 hex digits with `0 1 3 a e` replaced.
pub fn encode(data: &str) -> String {
    let digest = Sha256::digest(data.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            other => other,
        })
        .collect()
}

/// Reads a field for hashing: scalars as their text, absent as "".
fn node_value(obj: &Map<String, Value>, path: &[&str]) -> Value {
    let mut cur: Option<&Value> = None;
    let mut map = Some(obj);
    for p in path {
        cur = map.and_then(|m| m.get(*p));
        map = cur.and_then(Value::as_object);
    }
    match cur {
        None => Value::String(String::new()),
        Some(v @ (Value::Object(_) | Value::Array(_))) => v.clone(),
        Some(Value::Null) => Value::String(String::new()),
        Some(v) => Value::String(crate::resource::scalar_text(v)),
    }
}

/// The hash suffix of a resource (kustomize's `Hasher.Hash`).
pub fn resource_hash(obj: &Map<String, Value>) -> String {
    let kind = obj
        .get("kind")
        .map(crate::resource::scalar_text)
        .unwrap_or_default();
    let encoded = match kind.as_str() {
        "ConfigMap" => {
            let mut m = Map::new();
            m.insert("kind".into(), Value::String("ConfigMap".into()));
            // kustomize looks up the name with the single path element
            // "metadata/name", which never matches: the name hashes as "".
            m.insert("name".into(), node_value(obj, &["metadata/name"]));
            m.insert("data".into(), node_value(obj, &["data"]));
            let bin = node_value(obj, &["binaryData"]);
            if bin.is_object() {
                m.insert("binaryData".into(), bin);
            }
            go_json(&Value::Object(m))
        }
        "Secret" => {
            let mut m = Map::new();
            m.insert("kind".into(), Value::String("Secret".into()));
            m.insert("type".into(), node_value(obj, &["type"]));
            m.insert("name".into(), node_value(obj, &["metadata/name"]));
            m.insert("data".into(), node_value(obj, &["data"]));
            let sd = node_value(obj, &["stringData"]);
            if sd.is_object() {
                m.insert("stringData".into(), sd);
            }
            go_json(&Value::Object(m))
        }
        _ => go_json(&Value::Object(obj.clone())),
    };
    encode(&encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_escaping() {
        assert_eq!(
            go_json(&json!({"b": "<&>", "a": [1, 1.5]})),
            r#"{"a":[1,1.5],"b":"\u003c\u0026\u003e"}"#
        );
    }

    #[test]
    fn encodes_like_kubectl() {
        assert_eq!(encode("").len(), 10);
        // sha256("") = e3b0c44298...
        assert_eq!(encode(""), "tkbgc44298");
    }
}
