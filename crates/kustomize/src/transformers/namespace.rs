//! `namespace`: set `metadata.namespace` on namespaced resources, rename
//! `Namespace` objects, and update RoleBinding subjects named `default`.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::resmap::ResMap;
use crate::resource::{Resource, scalar_text};

/// Which RoleBinding/ClusterRoleBinding subjects get the namespace
/// (`setRoleBindingSubjects` of a NamespaceTransformer config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SubjectMode {
    /// `defaultOnly` (the default): subjects named `default`.
    #[default]
    DefaultOnly,
    /// `allServiceAccounts`: subjects of kind ServiceAccount.
    AllServiceAccounts,
    /// `none`: no subject.
    None,
}

impl SubjectMode {
    /// Parses kustomize's spelling; empty is the default.
    pub fn parse(s: &str) -> Result<SubjectMode> {
        match s {
            "" | "defaultOnly" => Ok(SubjectMode::DefaultOnly),
            "allServiceAccounts" => Ok(SubjectMode::AllServiceAccounts),
            "none" => Ok(SubjectMode::None),
            other => Err(Error::transformer(format!(
                "invalid value {other:?} for setRoleBindingSubjects: must be one of \"defaultOnly\", \"none\" or \"allServiceAccounts\""
            ))),
        }
    }
}

/// Options of a NamespaceTransformer beyond the namespace and field specs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Only set namespace fields that are empty (`unsetOnly`).
    pub unset_only: bool,
    /// Which role binding subjects to set.
    pub subjects: SubjectMode,
}

fn set_scalar(node: &mut Value, ns: &str, unset_only: bool) -> Result<()> {
    match node {
        Value::Object(_) | Value::Array(_) => Err(Error::transformer(
            "namespace field specs must target scalar nodes",
        )),
        // kyaml's SetEntryIfEmpty: a scalar with any text is kept.
        Value::String(s) if unset_only && !s.is_empty() => Ok(()),
        Value::Bool(_) | Value::Number(_) if unset_only => Ok(()),
        _ => {
            *node = Value::String(ns.to_string());
            Ok(())
        }
    }
}

/// The namespace filter on one resource, without the id bookkeeping of
/// [`transform`] (ValueAddTransformer's `metadata/namespace`).
pub fn set_namespace(
    res: &mut Resource,
    ns: &str,
    specs: &[FieldSpec],
    opts: Options,
) -> Result<()> {
    let unset_only = opts.unset_only;
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
            set_scalar(n, ns, unset_only)
        })?;
    }
    if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
        specs.retain(|fs| {
            !((fs.kind == "RoleBinding" || fs.kind == "ClusterRoleBinding")
                && fs.path == "subjects/namespace")
        });
        if opts.subjects != SubjectMode::None
            && let Some(Value::Array(subjects)) = res.as_map_mut().get_mut("subjects")
        {
            let (field, wanted) = match opts.subjects {
                SubjectMode::AllServiceAccounts => ("kind", "ServiceAccount"),
                _ => ("name", "default"),
            };
            for s in subjects.iter_mut() {
                let Value::Object(m) = s else {
                    return Err(Error::transformer(
                        "setting namespace on (cluster)role binding subjects: wrong node kind: expected MappingNode",
                    ));
                };
                if m.get(field).map(scalar_text).as_deref() == Some(wanted) {
                    let node = m.entry("namespace").or_insert(Value::String(String::new()));
                    set_scalar(node, ns, unset_only)?;
                }
            }
        }
    }
    for fs in &specs {
        fieldspec::apply(res.as_map_mut(), fs, CreateKind::Scalar, &mut |n| {
            set_scalar(n, ns, unset_only)
        })?;
    }
    Ok(())
}

/// Sets namespace `ns` on every resource (a no-op when `ns` is empty).
pub fn transform(m: &mut ResMap, ns: &str, specs: &[FieldSpec]) -> Result<()> {
    transform_with(m, ns, specs, Options::default())
}

/// [`transform`] with a NamespaceTransformer config's options.
pub fn transform_with(m: &mut ResMap, ns: &str, specs: &[FieldSpec], opts: Options) -> Result<()> {
    if ns.is_empty() {
        return Ok(());
    }
    for i in 0..m.len() {
        let Some(res) = m.get_mut(i) else { continue };
        if res.as_map().is_empty() {
            continue;
        }
        res.store_previous_id();
        set_namespace(res, ns, specs, opts)
            .map_err(|e| e.context("namespace transformation failed"))?;
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
