//! `crds:` — OpenAPI definitions of custom types whose `x-kubernetes-*`
//! extensions tell transformers where custom resources keep annotations,
//! label selectors, names and references to other objects.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldspec::FieldSpec;
use crate::loader::Loader;
use crate::transformer_config::{NameBackReferences, TransformerConfig};
use crate::yaml::{ParseOptions, parse_single};

fn properties(def: &Value) -> Option<&Map<String, Value>> {
    def.get("Schema")?.get("properties")?.as_object()
}

fn extension<'a>(prop: &'a Value, name: &str) -> Option<&'a str> {
    prop.get(name).and_then(Value::as_str)
}

fn spec(kind: &str, path: &[String]) -> FieldSpec {
    FieldSpec::new(kind, &path.join("/"), false)
}

fn load_type(
    config: &mut TransformerConfig,
    kind: &str,
    defs: &Map<String, Value>,
    type_name: &str,
    path: &[String],
    depth: usize,
) -> Result<()> {
    if depth > 64 {
        return Err(Error::transformer("CRD definitions nest too deeply"));
    }
    let Some(props) = defs.get(type_name).and_then(properties) else {
        return Ok(());
    };
    for (name, prop) in props {
        let mut here = path.to_vec();
        here.push(name.clone());
        if extension(prop, "x-kubernetes-annotation").is_some() {
            crate::fieldspec::merge_one(&mut config.common_annotations, spec(kind, &here))?;
        }
        if extension(prop, "x-kubernetes-label-selector").is_some() {
            crate::fieldspec::merge_one(&mut config.common_labels, spec(kind, &here))?;
        }
        if extension(prop, "x-kubernetes-identity").is_some() {
            crate::fieldspec::merge_one(&mut config.name_prefix, spec(kind, &here))?;
        }
        if let (Some(version), Some(ref_kind)) = (
            extension(prop, "x-kubernetes-object-ref-api-version"),
            extension(prop, "x-kubernetes-object-ref-kind"),
        ) {
            let key = extension(prop, "x-kubernetes-object-ref-name-key").unwrap_or("name");
            let mut p = here.clone();
            p.push(key.to_string());
            let nbr = NameBackReferences {
                version: version.to_string(),
                kind: ref_kind.to_string(),
                referrers: vec![spec(kind, &p)],
                ..NameBackReferences::default()
            };
            let one = TransformerConfig {
                name_reference: vec![nbr],
                ..TransformerConfig::default()
            };
            *config = config.merge(&one)?;
        }
        if let Some(r) = prop.get("$ref").and_then(Value::as_str) {
            load_type(config, kind, defs, r, &here, depth + 1)?;
        }
    }
    Ok(())
}

/// Builds transformer configuration from the `crds:` files.
pub fn config_from_crds(ldr: &Loader, paths: &[String]) -> Result<TransformerConfig> {
    let mut config = TransformerConfig::default();
    for path in paths {
        let text = ldr.load_string(path)?;
        let parse_err = |message: String| {
            Error::transformer(format!(
                "unable to parse open API definition from '{path}': {message}"
            ))
        };
        let value =
            parse_single(&text, ParseOptions::CONFIG).map_err(|e| parse_err(e.to_string()))?;
        let Value::Object(defs) = value else {
            return Err(parse_err(
                "expected a map of type names to definitions".into(),
            ));
        };
        for (name, def) in &defs {
            if !def.is_object() {
                return Err(parse_err(format!("definition {name:?} is not an object")));
            }
            let Some(props) = properties(def) else {
                continue;
            };
            if !(props.contains_key("kind")
                && props.contains_key("apiVersion")
                && props.contains_key("metadata"))
            {
                continue;
            }
            let kind = name.rsplit('.').next().unwrap_or(name);
            let mut one = TransformerConfig::default();
            load_type(&mut one, kind, &defs, name, &[], 0)?;
            config = config.merge(&one)?;
        }
    }
    Ok(config)
}
