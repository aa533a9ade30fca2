//! `namePrefix` and `nameSuffix`.

use crate::error::Result;
use crate::fieldspec::{self, CreateKind, FieldSpec, untagged_scalar};
use crate::resid::Gvk;
use crate::resmap::ResMap;
use crate::resource::scalar_text;

/// Which end of the name to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affix {
    /// `namePrefix`.
    Prefix,
    /// `nameSuffix`.
    Suffix,
}

/// Kinds whose names kustomize never prefixes or suffixes.
fn skipped(gvk: &Gvk) -> bool {
    let skip = [
        Gvk::unscoped("", "", "CustomResourceDefinition"),
        Gvk::unscoped("apiregistration.k8s.io", "", "APIService"),
        Gvk::unscoped("", "", "Namespace"),
    ];
    skip.iter().any(|s| gvk.is_selected(s))
}

/// Adds `text` at the `affix` end of the name fields `specs` designate.
pub fn transform(m: &mut ResMap, affix: Affix, text: &str, specs: &[FieldSpec]) -> Result<()> {
    for res in m.resources_mut() {
        let id = res.org_id();
        if skipped(&id.gvk) {
            continue;
        }
        for fs in specs {
            if !id.gvk.is_selected(&fs.gvk()) {
                continue;
            }
            if fs.path == "metadata/name" {
                match affix {
                    Affix::Prefix => res.add_name_prefix(text),
                    Affix::Suffix => res.add_name_suffix(text),
                }
                if !text.is_empty() {
                    res.store_previous_id();
                }
            }
            fieldspec::apply(res.as_map_mut(), fs, CreateKind::Scalar, &mut |node| {
                let current = scalar_text(node);
                let renamed = match affix {
                    Affix::Prefix => format!("{text}{current}"),
                    Affix::Suffix => format!("{current}{text}"),
                };
                *node = untagged_scalar(&renamed);
                Ok(())
            })?;
        }
    }
    Ok(())
}
