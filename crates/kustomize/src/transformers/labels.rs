//! `labels`, `commonLabels` and `commonAnnotations`: set map entries at
//! every field a spec designates, creating the maps.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::Result;
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::resmap::ResMap;

/// Sets each `key: value` (as strings) at the spec'd map fields.
pub fn add_entries(
    m: &mut ResMap,
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<()> {
    if entries.is_empty() {
        return Ok(());
    }
    for res in m.resources_mut() {
        for (k, v) in entries {
            for fs in specs {
                fieldspec::apply(res.as_map_mut(), fs, CreateKind::Mapping, &mut |node| {
                    fieldspec::set_entry(node, k, Value::String(v.clone()))
                })?;
            }
        }
    }
    m.retain(|r| !r.as_map().is_empty());
    Ok(())
}
