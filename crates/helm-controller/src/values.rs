//! The values of a release: `valuesFrom` ConfigMaps and Secrets merged in
//! order, then the inline `values` over them, then every `targetPath` entry
//! over everything (Flux's precedence); and the digest of the result, which
//! decides whether the release is in sync.

use api::meta::{ConfigKind, ValuesReference};
use serde_json::{Map, Value};

use crate::strvals::{self, Mode};

/// Default data key of a values reference.
pub const DEFAULT_VALUES_KEY: &str = "values.yaml";

/// What the lookup of one values reference found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The referenced key's content.
    Found(String),
    /// The ConfigMap or Secret does not exist.
    MissingObject,
    /// The object exists without the key.
    MissingKey,
}

/// Why the values could not be composed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "could not resolve {kind} chart values reference '{namespace}/{name}' with key '{key}': {reason}"
)]
pub struct ValuesError {
    /// `ConfigMap` or `Secret`.
    pub kind: &'static str,
    /// Namespace of the reference.
    pub namespace: String,
    /// Name of the object.
    pub name: String,
    /// Data key.
    pub key: String,
    /// What went wrong.
    pub reason: String,
}

/// The data key a reference reads.
pub fn values_key(reference: &ValuesReference) -> &str {
    reference
        .values_key
        .as_deref()
        .filter(|key| !key.is_empty())
        .unwrap_or(DEFAULT_VALUES_KEY)
}

/// `ConfigMap` or `Secret`.
pub fn kind_name(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::ConfigMap => "ConfigMap",
        ConfigKind::Secret => "Secret",
    }
}

/// Composes the values of a release in `namespace` from its references (read
/// through `lookup`) and its inline values.
pub fn compose(
    namespace: &str,
    references: &[ValuesReference],
    inline: Option<&Value>,
    mut lookup: impl FnMut(&ValuesReference) -> Lookup,
) -> Result<Value, ValuesError> {
    let mut result = Map::new();
    let mut targeted: Vec<(&ValuesReference, String)> = Vec::new();
    for reference in references {
        let error = |reason: String| ValuesError {
            kind: kind_name(reference.kind),
            namespace: namespace.to_string(),
            name: reference.name.clone(),
            key: values_key(reference).to_string(),
            reason,
        };
        let optional = reference.optional.unwrap_or(false);
        let data = match lookup(reference) {
            Lookup::Found(data) => data,
            Lookup::MissingObject if optional => continue,
            Lookup::MissingKey if optional => continue,
            Lookup::MissingObject => return Err(error("resource not found".into())),
            Lookup::MissingKey => return Err(error("key not found".into())),
        };
        if reference
            .target_path
            .as_deref()
            .is_some_and(|path| !path.is_empty())
        {
            targeted.push((reference, data));
            continue;
        }
        let document = parse_values_document(&data).map_err(&error)?;
        merge_maps(&mut result, document);
    }
    if let Some(Value::Object(inline)) = inline {
        merge_maps(&mut result, inline.clone());
    }
    for (reference, data) in targeted {
        let path = reference.target_path.as_deref().unwrap_or_default();
        set_path(&mut result, path, &data, reference.literal.unwrap_or(false)).map_err(|err| {
            ValuesError {
                kind: kind_name(reference.kind),
                namespace: namespace.to_string(),
                name: reference.name.clone(),
                key: values_key(reference).to_string(),
                reason: format!("failed to merge value: {err}"),
            }
        })?;
    }
    Ok(Value::Object(result))
}

/// Sets one value at a `--set` path. A value wrapped in single or double
/// quotes is set as a string without its quotes (Flux's behaviour).
pub fn set_path(
    values: &mut Map<String, Value>,
    path: &str,
    value: &str,
    literal: bool,
) -> Result<(), strvals::ParseError> {
    if literal {
        return strvals::parse_into(&format!("{path}={value}"), values, Mode::Literal);
    }
    let quoted = |q: char| value.len() >= 2 && value.starts_with(q) && value.ends_with(q);
    if quoted('\'') || quoted('"') {
        let inner = value.trim_matches(|c| c == '\'' || c == '"');
        return strvals::parse_into(&format!("{path}={inner}"), values, Mode::String);
    }
    strvals::parse_into(&format!("{path}={value}"), values, Mode::Typed)
}

/// A values document: YAML (JSON included) whose top level is a map; an
/// empty document is an empty map.
pub fn parse_values_document(text: &str) -> Result<Map<String, Value>, String> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 200,
        },
    };
    let value: Value = serde_saphyr::from_str_with_options(text, options)
        .map_err(|err| format!("failed to read values data: {err}"))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err("failed to read values data: the document is not a map".into()),
    }
}

/// Deep merge like Helm's `MergeMaps`: maps merge key by key, anything else
/// in `overlay` (lists included) replaces what is in `base`.
pub fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_maps(existing, incoming);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `sha256:<hex>` of the values as Flux digests them: encoded as YAML the
/// way go-yaml v2 writes a JSON object (keys sorted at every level), so the
/// digests equal Flux's `configDigest`. Empty values digest to the hash of
/// nothing.
pub fn config_digest(values: &Value) -> String {
    let empty = match values {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    };
    if empty {
        return runtime::artifact::sha256_digest(b"");
    }
    let sorted = sorted_keys(values);
    runtime::artifact::sha256_digest(kustomize::yaml::to_yaml_document(&sorted).as_bytes())
}

/// A copy of `value` with object keys in byte order at every level.
fn sorted_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted_keys(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted_keys).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    fn reference(kind: ConfigKind, name: &str) -> ValuesReference {
        ValuesReference {
            kind,
            name: name.to_string(),
            values_key: None,
            target_path: None,
            optional: None,
            literal: None,
        }
    }

    fn lookup_in(
        objects: HashMap<(&'static str, &'static str), HashMap<&'static str, &'static str>>,
    ) -> impl FnMut(&ValuesReference) -> Lookup {
        move |r: &ValuesReference| match objects.get(&(kind_name(r.kind), r.name.as_str())) {
            None => Lookup::MissingObject,
            Some(data) => match data.get(values_key(r)) {
                Some(text) => Lookup::Found(text.to_string()),
                None => Lookup::MissingKey,
            },
        }
    }

    #[test]
    fn references_merge_in_order_then_inline_values() {
        let objects = HashMap::from([
            (
                ("ConfigMap", "values"),
                HashMap::from([(
                    "values.yaml",
                    "flat: value\nnested:\n  configuration: value\n",
                )]),
            ),
            (
                ("Secret", "values"),
                HashMap::from([("values.yaml", "flat:\n  nested: value\nnested: value\n")]),
            ),
        ]);
        let refs = [
            reference(ConfigKind::ConfigMap, "values"),
            reference(ConfigKind::Secret, "values"),
        ];
        let values = compose(
            "default",
            &refs,
            Some(&json!({"other": "values"})),
            lookup_in(objects),
        );
        assert_eq!(
            values,
            Ok(json!({"flat": {"nested": "value"}, "nested": "value", "other": "values"}))
        );
    }

    #[test]
    fn target_paths_take_precedence_over_everything() {
        let objects = HashMap::from([
            (
                ("ConfigMap", "values"),
                HashMap::from([(
                    "values.yaml",
                    "flat: value\nnested:\n  configuration:\n  - one\n  - two\n  - three\n",
                )]),
            ),
            (("Secret", "values"), HashMap::from([("key", "value")])),
        ]);
        let mut targeted = reference(ConfigKind::Secret, "values");
        targeted.values_key = Some("key".into());
        targeted.target_path = Some("nested.configuration[0]".into());
        let refs = [targeted, reference(ConfigKind::ConfigMap, "values")];
        let inline = json!({"nested": {"configuration": ["list", "item", "option"]}});
        assert_eq!(
            compose("default", &refs, Some(&inline), lookup_in(objects)),
            Ok(json!({"flat": "value", "nested": {"configuration": ["value", "item", "option"]}}))
        );
    }

    #[test]
    fn quoted_and_literal_target_values() {
        let mut values = Map::new();
        set_path(&mut values, "merge.at.path", "\"true\"", false).expect("quoted");
        set_path(&mut values, "typed", "true", false).expect("typed");
        set_path(&mut values, "lit", "a,b=c", true).expect("literal");
        assert_eq!(
            Value::Object(values),
            json!({"merge": {"at": {"path": "true"}}, "typed": true, "lit": "a,b=c"})
        );
    }

    #[test]
    fn missing_references_fail_unless_optional() {
        let refs = [reference(ConfigKind::ConfigMap, "absent")];
        let err = compose("apps", &refs, None, lookup_in(HashMap::new())).expect_err("missing");
        assert_eq!(
            err.to_string(),
            "could not resolve ConfigMap chart values reference 'apps/absent' with key 'values.yaml': resource not found"
        );
        let mut optional = reference(ConfigKind::ConfigMap, "absent");
        optional.optional = Some(true);
        assert_eq!(
            compose("apps", &[optional], None, lookup_in(HashMap::new())),
            Ok(json!({}))
        );
        let objects = HashMap::from([(("Secret", "s"), HashMap::from([("other", "x: 1")]))]);
        let err = compose(
            "apps",
            &[reference(ConfigKind::Secret, "s")],
            None,
            lookup_in(objects),
        )
        .expect_err("no key");
        assert!(err.to_string().ends_with("key not found"), "{err}");
    }

    #[test]
    fn invalid_documents_fail() {
        let objects = HashMap::from([(
            ("ConfigMap", "bad"),
            HashMap::from([("values.yaml", "- a\n- b\n")]),
        )]);
        let err = compose(
            "apps",
            &[reference(ConfigKind::ConfigMap, "bad")],
            None,
            lookup_in(objects),
        )
        .expect_err("list document");
        assert!(err.reason.contains("not a map"), "{err}");
    }

    #[test]
    fn merge_replaces_lists_and_merges_maps() {
        let mut base = json!({"a": {"b": 1, "c": [1, 2]}, "d": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let overlay = json!({"a": {"c": [3], "e": 2}, "d": {"x": 1}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        merge_maps(&mut base, overlay);
        assert_eq!(
            Value::Object(base),
            json!({"a": {"b": 1, "c": [3], "e": 2}, "d": {"x": 1}})
        );
    }

    #[test]
    fn digest_depends_on_content_only() {
        let a = json!({"replicas": 3, "image": {"tag": "latest", "repository": "nginx"}});
        let b = json!({"image": {"repository": "nginx", "tag": "latest"}, "replicas": 3});
        assert_eq!(config_digest(&a), config_digest(&b));
        assert_ne!(config_digest(&a), config_digest(&json!({"replicas": 4})));
        assert_eq!(
            config_digest(&json!({})),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(config_digest(&Value::Null), config_digest(&json!({})));
        assert!(config_digest(&a).starts_with("sha256:"));
    }

    #[test]
    fn digests_equal_fluxs() {
        // Vectors of fluxcd/pkg chartutil's DigestValues tests.
        let values = json!({
            "replicas": 3,
            "image": {"tag": "latest", "repository": "nginx"},
            "ports": [{"protocol": "TCP", "port": 8080}, {"port": 9090, "protocol": "UDP"}]
        });
        assert_eq!(
            config_digest(&values),
            "sha256:fcdc2b0de1581a3633ada4afee3f918f6eaa5b5ab38c3fef03d5b48d3f85d9f6"
        );
        let numeric_keys = json!({"replicas": 3, "test": {
            "632bd82398e71231a98004b6": "value4",
            "632bd817c559818a52307da2": "value3",
            "632bd80ddf416cf32fd50679": "value2",
            "632bd80235a05f4192aefade": "value1"
        }});
        assert_eq!(
            config_digest(&numeric_keys),
            "sha256:8a980fcbeadd6f05818f07e8aec14070c22250ca3d96af1fcd5f93b3e85b4d70"
        );
    }
}
