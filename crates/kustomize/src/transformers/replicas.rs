//! `replicas`: set the replica count of named workloads.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::kustomization::Replica;
use crate::resmap::ResMap;

/// Sets the replica count of the workloads `replica` names, at the fields `specs` designate.
pub fn transform(m: &mut ResMap, replica: &Replica, specs: &[FieldSpec]) -> Result<()> {
    let mut found = false;
    for fs in specs {
        let selector = fs.gvk();
        let matches =
            m.matching_by_any_id(|id| id.name == replica.name && id.gvk.is_selected(&selector));
        if matches.is_empty() {
            continue;
        }
        found = true;
        for i in matches {
            if let Some(res) = m.get_mut(i) {
                fieldspec::apply(res.as_map_mut(), fs, CreateKind::Scalar, &mut |node| {
                    *node = Value::Number(replica.count.into());
                    Ok(())
                })?;
            }
        }
    }
    if !found {
        let gvks: Vec<String> = specs.iter().map(|fs| fs.gvk().to_string()).collect();
        return Err(Error::transformer(format!(
            "resource with name {} does not match a config with the following GVK [{}]",
            replica.name,
            gvks.join(" ")
        )));
    }
    Ok(())
}
