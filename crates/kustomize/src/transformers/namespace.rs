//! `namespace`: set `metadata.namespace` on namespaced resources, rename
//! `Namespace` objects, and update RoleBinding subjects named `default`.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::resmap::ResMap;
use crate::resource::{Resource, scalar_text};

fn set_scalar(node: &mut Value, ns: &str) -> Result<()> {
    match node {
        Value::Object(_) | Value::Array(_) => Err(Error::transformer(
            "namespace field specs must target scalar nodes",
        )),
        _ => {
            *node = Value::String(ns.to_string());
            Ok(())
        }
    }
}

fn set_namespace(res: &mut Resource, ns: &str, specs: &[FieldSpec]) -> Result<()> {
    let api_version = res.api_version();
    let gvk = res.gvk();
    let mut specs: Vec<FieldSpec> = specs
        .iter()
        .filter(|fs| {
            fs.path != "metadata/namespace" && !(api_version != "v1" && fs.path == "metadata/name")
        })
        .cloned()
        .collect();
    if !gvk.is_cluster_scoped() {
        let meta = FieldSpec::new("", "metadata/namespace", true);
        fieldspec::apply(res.as_map_mut(), &meta, CreateKind::Scalar, &mut |n| {
            set_scalar(n, ns)
        })?;
    }
    if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
        specs.retain(|fs| {
            !((fs.kind == "RoleBinding" || fs.kind == "ClusterRoleBinding")
                && fs.path == "subjects/namespace")
        });
        if let Some(Value::Array(subjects)) = res.as_map_mut().get_mut("subjects") {
            for s in subjects.iter_mut() {
                let Value::Object(m) = s else {
                    return Err(Error::transformer(
                        "setting namespace on (cluster)role binding subjects: wrong node kind: expected MappingNode",
                    ));
                };
                if m.get("name").map(scalar_text).as_deref() == Some("default") {
                    m.insert("namespace".into(), Value::String(ns.to_string()));
                }
            }
        }
    }
    for fs in &specs {
        fieldspec::apply(res.as_map_mut(), fs, CreateKind::Scalar, &mut |n| {
            set_scalar(n, ns)
        })?;
    }
    Ok(())
}

/// Sets namespace `ns` on every resource (a no-op when `ns` is empty).
pub fn transform(m: &mut ResMap, ns: &str, specs: &[FieldSpec]) -> Result<()> {
    if ns.is_empty() {
        return Ok(());
    }
    for i in 0..m.len() {
        let Some(res) = m.get_mut(i) else { continue };
        if res.as_map().is_empty() {
            continue;
        }
        res.store_previous_id();
        set_namespace(res, ns, specs).map_err(|e| e.context("namespace transformation failed"))?;
    }
    // kustomize checks after each resource; a conflict then is a conflict
    // at the end too (the other resource ends up in the same namespace).
    if let Some(id) = m.first_duplicate_id() {
        return Err(Error::transformer(format!(
            "namespace transformation produces ID conflict: {id}"
        )));
    }
    Ok(())
}
