//! Which fields each built-in transformer touches: kustomize's defaults
//! (`builtin_config/defaults.yaml`) merged with `configurations:` files.

use std::sync::OnceLock;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fieldspec::{FieldSpec, merge_all};
use crate::resid::Gvk;
use crate::yaml::{ParseOptions, parse_single};

const DEFAULTS: &str = include_str!("builtin_config/defaults.yaml");

/// A kind whose name other resources refer to, and where.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NameBackReferences {
    /// The referred kind's API group; empty matches any.
    #[serde(default)]
    pub group: String,
    /// The referred kind's API version; empty matches any.
    #[serde(default)]
    pub version: String,
    /// The referred kind.
    #[serde(default)]
    pub kind: String,
    /// The fields that hold its name (`fieldSpecs`).
    #[serde(default, rename = "fieldSpecs")]
    pub referrers: Vec<FieldSpec>,
}

impl NameBackReferences {
    /// The referred group, version and kind (without a scope lookup).
    pub fn gvk(&self) -> Gvk {
        Gvk::unscoped(&self.group, &self.version, &self.kind)
    }
}

/// Field specs per transformer.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransformerConfig {
    /// Fields `namePrefix` prefixes.
    #[serde(default)]
    pub name_prefix: Vec<FieldSpec>,
    /// Fields `nameSuffix` suffixes.
    #[serde(default)]
    pub name_suffix: Vec<FieldSpec>,
    /// Fields `namespace` sets.
    #[serde(default)]
    pub namespace: Vec<FieldSpec>,
    /// Fields `commonLabels` (and `labels` with `includeSelectors`) add to.
    #[serde(default)]
    pub common_labels: Vec<FieldSpec>,
    /// Fields `labels` add to.
    #[serde(default)]
    pub labels: Vec<FieldSpec>,
    /// Pod template label fields (`labels` with `includeTemplates`).
    #[serde(default)]
    pub template_labels: Vec<FieldSpec>,
    /// Fields `commonAnnotations` add to.
    #[serde(default)]
    pub common_annotations: Vec<FieldSpec>,
    /// Where each kind's name is referred to, for renames.
    #[serde(default)]
    pub name_reference: Vec<NameBackReferences>,
    /// Fields where `vars` are substituted.
    #[serde(default)]
    pub var_reference: Vec<FieldSpec>,
    /// Image fields `images` rewrites.
    #[serde(default)]
    pub images: Vec<FieldSpec>,
    /// Replica count fields `replicas` sets.
    #[serde(default)]
    pub replicas: Vec<FieldSpec>,
}

fn sort_specs(list: &mut [FieldSpec]) {
    list.sort_by(|a, b| a.gvk().legacy_cmp(&b.gvk()));
}

impl TransformerConfig {
    /// Parses a configuration file.
    pub fn parse(text: &str) -> Result<TransformerConfig> {
        let value = parse_single(text, ParseOptions::CONFIG)
            .map_err(|e| Error::transformer(e.to_string()))?;
        if value.is_null() {
            return Ok(TransformerConfig::default());
        }
        serde_json::from_value(value).map_err(|e| Error::transformer(format!("json: {e}")))
    }

    /// kustomize's built-in configuration.
    pub fn defaults() -> &'static TransformerConfig {
        static DEFAULT: OnceLock<TransformerConfig> = OnceLock::new();
        DEFAULT.get_or_init(|| {
            // The embedded file is checked by a unit test.
            TransformerConfig::parse(DEFAULTS).unwrap_or_default()
        })
    }

    /// kustomize's `TransformerConfig.Merge`: union of specs, sorted.
    pub fn merge(&self, other: &TransformerConfig) -> Result<TransformerConfig> {
        let mut m = self.clone();
        let pairs: [(&mut Vec<FieldSpec>, &Vec<FieldSpec>, &str); 10] = [
            (&mut m.name_prefix, &other.name_prefix, "NamePrefix"),
            (&mut m.name_suffix, &other.name_suffix, "NameSuffix"),
            (&mut m.namespace, &other.namespace, "NameSpace"),
            (
                &mut m.common_annotations,
                &other.common_annotations,
                "CommonAnnotations",
            ),
            (&mut m.common_labels, &other.common_labels, "CommonLabels"),
            (&mut m.labels, &other.labels, "Labels"),
            (
                &mut m.template_labels,
                &other.template_labels,
                "TemplateLabels",
            ),
            (&mut m.var_reference, &other.var_reference, "VarReference"),
            (&mut m.images, &other.images, "Images"),
            (&mut m.replicas, &other.replicas, "Replicas"),
        ];
        for (mine, theirs, name) in pairs {
            merge_all(mine, theirs)
                .map_err(|e| e.context(format!("failed to merge {name} fieldSpec")))?;
            sort_specs(mine);
        }
        for nbr in &other.name_reference {
            match m.name_reference.iter_mut().find(|x| x.gvk() == nbr.gvk()) {
                Some(existing) => merge_all(&mut existing.referrers, &nbr.referrers)
                    .map_err(|e| e.context("failed to merge NameReference fieldSpec"))?,
                None => m.name_reference.push(nbr.clone()),
            }
        }
        m.name_reference
            .sort_by(|a, b| a.gvk().legacy_cmp(&b.gvk()));
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let parsed = TransformerConfig::parse(DEFAULTS).expect("defaults parse");
        assert_eq!(
            parsed.name_prefix,
            vec![FieldSpec::new("", "metadata/name", false)]
        );
        assert!(parsed.common_labels.len() > 20);
        assert!(parsed.name_reference.iter().any(|n| n.kind == "ConfigMap"));
        assert_eq!(&parsed, TransformerConfig::defaults());
    }
}
