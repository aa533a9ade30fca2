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

/// The `apiVersion` of a Kustomization.
pub const KUSTOMIZATION_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
/// The `kind` of a Kustomization.
pub const KUSTOMIZATION_KIND: &str = "Kustomization";
/// The `apiVersion` of a Component.
pub const COMPONENT_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";
/// The `kind` of a Component.
pub const COMPONENT_KIND: &str = "Component";

/// The file names kustomize recognises, in its order.
pub const FILE_NAMES: &[&str] = &["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A kustomization's `metadata`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// A `labels` entry: labels to add and where.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    /// The labels to add.
    pub pairs: BTreeMap<String, String>,
    /// Whether to add them to selectors too (which implies templates).
    pub include_selectors: bool,
    /// Whether to add them to pod templates too.
    pub include_templates: bool,
    /// Extra fields to add them to.
    pub fields: Vec<FieldSpec>,
}

/// A patch's `options`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PatchOptions {
    /// The patch may change the target's name.
    #[serde(default)]
    pub allow_name_change: bool,
    /// The patch may change the target's kind.
    #[serde(default)]
    pub allow_kind_change: bool,
}

/// A `patches` (or `patchesJson6902`) entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Patch {
    /// A file holding the patch.
    pub path: String,
    /// The patch, inline.
    pub patch: String,
    /// Which resources the patch applies to.
    pub target: Option<Selector>,
    /// Options that let the patch rename or re-kind its target.
    pub options: Option<PatchOptions>,
}

/// An `images` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Image {
    /// The image name to match.
    pub name: String,
    /// The name to replace it with.
    pub new_name: String,
    /// A suffix appended to the current tag.
    pub tag_suffix: String,
    /// The new tag.
    pub new_tag: String,
    /// The new digest.
    pub digest: String,
}

/// A `replicas` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Replica {
    /// The name of the workload(s) to change.
    #[serde(default)]
    pub name: String,
    /// The replica count to set.
    #[serde(default)]
    pub count: i64,
}

/// A var's `objref`: the object the value comes from.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct VarTarget {
    /// The object's apiVersion.
    pub api_version: String,
    /// The object's API group.
    pub group: String,
    /// The object's API version.
    pub version: String,
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The object's namespace.
    pub namespace: String,
}

/// A var's `fieldref`.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldSelector {
    /// The field, a dotted path; kustomize defaults to `metadata.name`.
    #[serde(default)]
    pub field_path: String,
}

/// A `vars` entry: a `$(NAME)` value read from an object's field.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Var {
    /// The variable's name.
    pub name: String,
    /// The object holding the value.
    pub objref: VarTarget,
    /// The field holding the value.
    pub fieldref: FieldSelector,
}

/// `generatorOptions`, global or per generator.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorOptions {
    /// Labels added to generated objects.
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations added to generated objects.
    pub annotations: Option<BTreeMap<String, String>>,
    /// Do not append the content hash to generated names.
    pub disable_name_suffix_hash: bool,
    /// Mark generated objects immutable.
    pub immutable: bool,
}

/// A `configMapGenerator` or `secretGenerator` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct GeneratorArgs {
    /// The generated object's namespace.
    pub namespace: String,
    /// The generated object's name.
    pub name: String,
    /// `create`, `replace` or `merge` (with an object of the same id from a base).
    pub behavior: String,
    /// `KEY=VALUE` literals.
    pub literals: Vec<String>,
    /// Files to include, each `[KEY=]PATH`.
    pub files: Vec<String>,
    /// env files (`KEY=VALUE` lines).
    pub envs: Vec<String>,
    /// A single env file (deprecated; moved into `envs`).
    pub env: String,
    /// Options for this generator.
    pub options: Option<GeneratorOptions>,
    /// Secrets only.
    #[serde(rename = "type")]
    pub secret_type: String,
}

/// `sortOptions.legacySortOptions`: kind orders for `legacy` sorting.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LegacySortOptions {
    /// Kinds put first, in this order.
    #[serde(default)]
    pub order_first: Vec<String>,
    /// Kinds put last, in this order.
    #[serde(default)]
    pub order_last: Vec<String>,
}

/// `sortOptions`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SortOptions {
    /// `legacy` or `fifo`.
    #[serde(default)]
    pub order: String,
    /// The kind orders for `legacy`.
    #[serde(default)]
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// A replacement's `options` for part of a scalar value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct FieldOptions {
    /// Splits the value on this delimiter.
    pub delimiter: String,
    /// The part of the split value to read or replace.
    pub index: i64,
    /// Accepted for compatibility; not used.
    pub encoding: String,
    /// Create the target field when it is missing.
    pub create: bool,
}

/// A replacement's `source`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceSelector {
    /// The source object's API group.
    pub group: String,
    /// The source object's API version.
    pub version: String,
    /// The source object's kind.
    pub kind: String,
    /// The source object's name.
    pub name: String,
    /// The source object's namespace.
    pub namespace: String,
    /// The field to read, dotted; defaults to `metadata.name`.
    pub field_path: String,
    /// Options to read part of the value.
    pub options: Option<FieldOptions>,
}

/// A replacement's `targets` entry.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetSelector {
    /// The resources to write to.
    pub select: Option<Selector>,
    /// Resources excluded from `select`.
    pub reject: Vec<Selector>,
    /// The fields to write, dotted.
    pub field_paths: Vec<String>,
    /// Options to write part of the value.
    pub options: Option<FieldOptions>,
}

/// A `replacements` entry: a value copied from a source into targets.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Replacement {
    /// Where the value comes from.
    pub source: Option<SourceSelector>,
    /// Where the value goes.
    pub targets: Vec<TargetSelector>,
    /// A literal value, instead of `source`.
    pub source_value: Option<String>,
    /// A file holding replacements (kustomization entries only).
    pub path: String,
}

/// A kustomization (or component).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct Kustomization {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`: `Kustomization` or `Component`.
    pub kind: String,
    /// `metadata`.
    pub metadata: Option<ObjectMeta>,
    /// `openapi`: the built-in schema `version` or a custom schema `path`
    /// strategic merges use (see `target::choose_openapi`).
    pub openapi: Option<BTreeMap<String, String>>,
    /// Prefix added to resource names.
    pub name_prefix: String,
    /// Suffix added to resource names.
    pub name_suffix: String,
    /// Namespace set on resources.
    pub namespace: String,
    /// Labels added to resources and selectors (deprecated for `labels`).
    pub common_labels: Option<BTreeMap<String, String>>,
    /// Labels added to resources, with where to add them.
    pub labels: Vec<Label>,
    /// Annotations added to resources.
    pub common_annotations: Option<BTreeMap<String, String>>,
    /// Strategic merge patch files (deprecated for `patches`).
    pub patches_strategic_merge: Option<Vec<String>>,
    /// JSON 6902 patches (deprecated for `patches`).
    #[serde(rename = "patchesJson6902")]
    pub patches_json6902: Option<Vec<Patch>>,
    /// Patches, strategic merge or JSON 6902.
    pub patches: Vec<Patch>,
    /// Image rewrites.
    pub images: Vec<Image>,
    /// Image rewrites (deprecated for `images`).
    pub image_tags: Option<Vec<Image>>,
    /// Replacements.
    pub replacements: Vec<Replacement>,
    /// Replica counts.
    pub replicas: Vec<Replica>,
    /// Variables substituted as `$(NAME)` (deprecated for `replacements`).
    pub vars: Option<Vec<Var>>,
    /// How to order the output.
    pub sort_options: Option<SortOptions>,
    /// Resource files and directories (bases).
    pub resources: Vec<String>,
    /// Component directories.
    pub components: Vec<String>,
    /// CRD files whose schemas configure name references and other transformers.
    pub crds: Vec<String>,
    /// Bases (deprecated for `resources`).
    pub bases: Option<Vec<String>>,
    /// ConfigMap generators.
    pub config_map_generator: Vec<GeneratorArgs>,
    /// Secret generators.
    pub secret_generator: Vec<GeneratorArgs>,
    /// `helmGlobals`: refused (Helm is not supported).
    pub helm_globals: Option<serde_json::Value>,
    /// `helmCharts`: refused (Helm is not supported).
    pub helm_charts: Vec<serde_json::Value>,
    /// `helmChartInflationGenerator`: refused (Helm is not supported).
    pub helm_chart_inflation_generator: Vec<serde_json::Value>,
    /// Options for every generator.
    pub generator_options: Option<GeneratorOptions>,
    /// Transformer configuration files.
    pub configurations: Vec<String>,
    /// Generator plugins: refused.
    pub generators: Vec<String>,
    /// Transformer plugins: refused.
    pub transformers: Vec<String>,
    /// Validator plugins: refused.
    pub validators: Vec<String>,
    /// `buildMetadata` options (`originAnnotations`, `transformerAnnotations`, `managedByLabel`).
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
        for field in ["generators", "transformers", "validators"] {
            if let Some(serde_json::Value::Array(items)) = value.get(field)
                && let Some(i) = items.iter().position(|v| !v.is_string())
            {
                return Err(invalid(format!(
                    "{field}[{i}] must be a string: a file, a directory or a plugin config as YAML text (a block scalar such as `- |-`)"
                )));
            }
        }
        let mut k: Kustomization =
            crate::go_json::from_value(value).map_err(|e| invalid(format!("json: {e}")))?;
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

    /// Whether this is a Component.
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
