//! The `kustomization.yaml` file model.
//!
//! kustomize decodes this file with `sigs.k8s.io/yaml` (YAML 1.1 scalars)
//! and Go's JSON decoder with `DisallowUnknownFields`, so an unknown or
//! mistyped field is an error here too.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::fieldspec::FieldSpec;
use crate::selector::Selector;
use crate::yaml::{ParseOptions, parse_single};

pub const KUSTOMIZATION_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
pub const KUSTOMIZATION_KIND: &str = "Kustomization";
pub const COMPONENT_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";
pub const COMPONENT_KIND: &str = "Component";

/// The file names kustomize recognises, in its order.
pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    pub pairs: BTreeMap<String, String>,
    pub include_selectors: bool,
    pub include_templates: bool,
    pub fields: Vec<FieldSpec>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchOptions {
    #[serde(default)]
    pub allow_name_change: bool,
    #[serde(default)]
    pub allow_kind_change: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Patch {
    pub path: String,
    pub patch: String,
    pub target: Option<Selector>,
    pub options: Option<PatchOptions>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    pub new_name: String,
    pub tag_suffix: String,
    pub new_tag: String,
    pub digest: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replica {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub count: i64,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct VarTarget {
    pub api_version: String,
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSelector {
    #[serde(default)]
    pub field_path: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Var {
    pub name: String,
    pub objref: VarTarget,
    pub fieldref: FieldSelector,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorOptions {
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub disable_name_suffix_hash: bool,
    pub immutable: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorArgs {
    pub namespace: String,
    pub name: String,
    pub behavior: String,
    pub literals: Vec<String>,
    pub files: Vec<String>,
    pub envs: Vec<String>,
    pub env: String,
    pub options: Option<GeneratorOptions>,
    /// Secrets only.
    #[serde(rename = "type")]
    pub secret_type: String,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SortOptions {
    #[serde(default)]
    pub order: String,
    #[serde(default)]
    pub legacy_sort_options: Option<LegacySortOptions>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldOptions {
    pub delimiter: String,
    pub index: i64,
    pub encoding: String,
    pub create: bool,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceSelector {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    pub field_path: String,
    pub options: Option<FieldOptions>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSelector {
    pub select: Option<Selector>,
    pub reject: Vec<Selector>,
    pub field_paths: Vec<String>,
    pub options: Option<FieldOptions>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Replacement {
    pub source: Option<SourceSelector>,
    pub targets: Vec<TargetSelector>,
    pub source_value: Option<String>,
    /// A file holding replacements (kustomization entries only).
    pub path: String,
}

/// A kustomization (or component).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    pub api_version: String,
    pub kind: String,
    pub metadata: Option<ObjectMeta>,
    pub openapi: Option<BTreeMap<String, String>>,
    pub name_prefix: String,
    pub name_suffix: String,
    pub namespace: String,
    pub common_labels: Option<BTreeMap<String, String>>,
    pub labels: Vec<Label>,
    pub common_annotations: Option<BTreeMap<String, String>>,
    pub patches_strategic_merge: Option<Vec<String>>,
    #[serde(rename = "patchesJson6902")]
    pub patches_json6902: Option<Vec<Patch>>,
    pub patches: Vec<Patch>,
    pub images: Vec<Image>,
    pub image_tags: Option<Vec<Image>>,
    pub replacements: Vec<Replacement>,
    pub replicas: Vec<Replica>,
    pub vars: Option<Vec<Var>>,
    pub sort_options: Option<SortOptions>,
    pub resources: Vec<String>,
    pub components: Vec<String>,
    pub crds: Vec<String>,
    pub bases: Option<Vec<String>>,
    pub config_map_generator: Vec<GeneratorArgs>,
    pub secret_generator: Vec<GeneratorArgs>,
    pub helm_globals: Option<serde_json::Value>,
    pub helm_charts: Vec<serde_json::Value>,
    pub helm_chart_inflation_generator: Vec<serde_json::Value>,
    pub generator_options: Option<GeneratorOptions>,
    pub configurations: Vec<String>,
    pub generators: Vec<String>,
    pub transformers: Vec<String>,
    pub validators: Vec<String>,
    pub build_metadata: Vec<String>,
}

impl Kustomization {
    /// Decodes a kustomization file, applying kustomize's fix-ups and
    /// checks. Returns the kustomization and deprecation warnings.
    pub fn parse(content: &str, path: &Path) -> Result<(Kustomization, Vec<String>)> {
        let invalid = |message: String| Error::InvalidKustomization {
            path: path.to_path_buf(),
            message,
        };
        let value = parse_single(content, ParseOptions::CONFIG).map_err(|e| Error::Yaml {
            path: path.to_path_buf(),
            cause: e,
        })?;
        let value = if value.is_null() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            value
        };
        let mut k: Kustomization =
            serde_json::from_value(value).map_err(|e| invalid(format!("json: {e}")))?;
        let warnings = k.deprecation_warnings();
        let is_empty = k.is_empty();
        k.fix();
        if is_empty {
            return Err(invalid("kustomization.yaml is empty".into()));
        }
        let mut errs = Vec::new();
        if k.kind != KUSTOMIZATION_KIND && k.kind != COMPONENT_KIND {
            errs.push(format!(
                "kind should be {KUSTOMIZATION_KIND} or {COMPONENT_KIND}"
            ));
        }
        let required = if k.kind == COMPONENT_KIND {
            COMPONENT_VERSION
        } else {
            KUSTOMIZATION_VERSION
        };
        if k.api_version != required {
            errs.push(format!("apiVersion for {} should be {required}", k.kind));
        }
        if !errs.is_empty() {
            return Err(invalid(errs.join("; ")));
        }
        Ok((k, warnings))
    }

    fn deprecation_warnings(&self) -> Vec<String> {
        const FIX: &str = "Run 'kustomize edit fix' to update your Kustomization automatically.";
        let deprecated = [
            (
                self.bases.is_some(),
                "'bases' is deprecated. Please use 'resources' instead.",
                "",
            ),
            (
                self.common_labels.is_some(),
                "'commonLabels' is deprecated. Please use 'labels' instead.",
                "",
            ),
            (
                self.image_tags.is_some(),
                "'imageTags' is deprecated. Please use 'images' instead.",
                "",
            ),
            (
                self.patches_json6902.is_some(),
                "'patchesJson6902' is deprecated. Please use 'patches' instead.",
                "",
            ),
            (
                self.patches_strategic_merge.is_some(),
                "'patchesStrategicMerge' is deprecated. Please use 'patches' instead.",
                "",
            ),
            (
                self.vars.is_some(),
                "'vars' is deprecated. Please use 'replacements' instead.",
                "[EXPERIMENTAL] ",
            ),
        ];
        deprecated
            .iter()
            .filter(|(used, _, _)| *used)
            .map(|(_, what, tag)| format!("# Warning: {what} {tag}{FIX}"))
            .collect()
    }

    /// True when nothing but apiVersion/kind is set (kustomize's `CheckEmpty`).
    fn is_empty(&self) -> bool {
        let mut probe = self.clone();
        probe.api_version.clear();
        probe.kind.clear();
        format!("{probe:?}") == format!("{:?}", Kustomization::default())
    }

    /// kustomize's `FixKustomization`.
    fn fix(&mut self) {
        if self.kind.is_empty() {
            self.kind = KUSTOMIZATION_KIND.into();
        }
        if self.api_version.is_empty() {
            self.api_version = if self.kind == COMPONENT_KIND {
                COMPONENT_VERSION.into()
            } else {
                KUSTOMIZATION_VERSION.into()
            };
        }
        if let Some(bases) = self.bases.take() {
            self.resources.extend(bases);
        }
        if let Some(tags) = self.image_tags.take() {
            self.images.extend(tags);
        }
        for g in self
            .config_map_generator
            .iter_mut()
            .chain(self.secret_generator.iter_mut())
        {
            if !g.env.is_empty() {
                let env = std::mem::take(&mut g.env);
                g.envs.push(env);
            }
        }
    }

    pub fn is_component(&self) -> bool {
        self.kind == COMPONENT_KIND
    }
}

/// kustomize's `MergeGlobalOptionsIntoLocal`.
pub fn merge_generator_options(
    local: Option<&GeneratorOptions>,
    global: Option<&GeneratorOptions>,
) -> Option<GeneratorOptions> {
    let Some(global) = global else {
        return local.cloned();
    };
    let mut out = local.cloned().unwrap_or_default();
    let merge = |local: &mut Option<BTreeMap<String, String>>,
                 global: &Option<BTreeMap<String, String>>| {
        match (local.as_mut(), global) {
            (None, Some(g)) => *local = Some(g.clone()),
            (Some(l), Some(g)) => {
                for (k, v) in g {
                    l.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            _ => {}
        }
    };
    merge(&mut out.labels, &global.labels);
    merge(&mut out.annotations, &global.annotations);
    if global.disable_name_suffix_hash {
        out.disable_name_suffix_hash = true;
    }
    if global.immutable {
        out.immutable = true;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_fixes() {
        let (k, w) = Kustomization::parse(
            "bases: [../base]\nresources: [a.yaml]\nnamePrefix: p-\n",
            Path::new("kustomization.yaml"),
        )
        .unwrap();
        assert_eq!(k.resources, vec!["a.yaml", "../base"]);
        assert_eq!(k.kind, "Kustomization");
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn rejects_bad_input() {
        let p = Path::new("kustomization.yaml");
        assert!(Kustomization::parse("resourcez: [a]\n", p).is_err());
        assert!(Kustomization::parse("", p).is_err());
        assert!(Kustomization::parse("kind: Kustomization\n", p).is_err());
        assert!(Kustomization::parse("kind: Foo\nresources: [a]\n", p).is_err());
        assert!(Kustomization::parse("resources: a\n", p).is_err());
        assert!(Kustomization::parse("- a\n", p).is_err());
    }
}
