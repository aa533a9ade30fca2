//! kustomize's builtin plugins configured by `generators:`, `transformers:`
//! and `validators:` entries (`apiVersion: builtin`): the config is decoded
//! as kustomize decodes it, with kustomize's defaults (a plugin config
//! has no default field specs, unlike the kustomization field it mirrors),
//! and runs on the same transformers and generators as the fields.
//!
//! Exec and Go plugins (any other `apiVersion`) and
//! HelmChartInflationGenerator are refused, as kustomize-controller refuses
//! them; so are builtin kinds kustomize v5.8 cannot load from a config.
//!
//! kustomize decodes configs leniently (unknown fields are dropped); here an
//! unknown field is an error naming it, so that nothing written in a
//! config is silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::fieldspec::FieldSpec;
use crate::generators::iam_policy::{self, IamPolicyArgs};
use crate::generators::{self, GeneratedKind, hash};
use crate::kustomization::{GeneratorArgs, Image, Patch, PatchOptions, Replacement, Replica};
use crate::loader::Loader;
use crate::patch;
use crate::replacements;
use crate::resmap::ResMap;
use crate::resource::Resource;
use crate::selector::Selector;
use crate::transformers::{
    images, labels, namespace, prefix_suffix, replicas,
    value_add::{self, Target},
};

/// The `apiVersion` of builtin plugin configs.
pub const BUILTIN_API_VERSION: &str = "builtin";

/// A configured builtin generator.
#[derive(Clone, Debug)]
pub enum Generator {
    /// ConfigMapGenerator.
    ConfigMap(GeneratorArgs),
    /// SecretGenerator.
    Secret(GeneratorArgs),
    /// IAMPolicyGenerator.
    IamPolicy(IamPolicyArgs),
}

/// A configured builtin transformer.
#[derive(Clone, Debug)]
pub enum Transformer {
    /// AnnotationsTransformer.
    Annotations(BTreeMap<String, String>, Vec<FieldSpec>),
    /// LabelTransformer.
    Labels(BTreeMap<String, String>, Vec<FieldSpec>),
    /// NamespaceTransformer.
    Namespace(String, Vec<FieldSpec>, namespace::Options),
    /// PrefixTransformer, SuffixTransformer and PrefixSuffixTransformer
    /// (the prefix first, then the suffix, each with the same field specs).
    Affixes {
        /// The prefix to add, if a prefix transformer.
        prefix: Option<String>,
        /// The suffix to add, if a suffix transformer.
        suffix: Option<String>,
        /// Where.
        specs: Vec<FieldSpec>,
    },
    /// ImageTagTransformer.
    ImageTag(Image, Vec<FieldSpec>),
    /// ReplicaCountTransformer.
    ReplicaCount(Replica, Vec<FieldSpec>),
    /// PatchTransformer.
    Patch(Patch),
    /// PatchJson6902Transformer.
    PatchJson6902(Patch),
    /// PatchStrategicMergeTransformer: file paths or inline patches.
    PatchStrategicMerge(Vec<String>),
    /// ReplacementTransformer, with `path:` entries loaded.
    Replacements(Vec<Replacement>),
    /// HashTransformer.
    Hash,
    /// ValueAddTransformer.
    ValueAdd(String, Vec<Target>),
}

/// A configured builtin plugin.
#[derive(Clone, Debug)]
pub enum Plugin {
    /// A generator.
    Generator(Generator),
    /// A transformer.
    Transformer(Transformer),
}

/// Keeps the config's fields that `known` names (Go's `encoding/json`
/// matches names case-insensitively when `fold_case`; kyaml's decoder
/// does not), under their exact names, later keys overriding earlier ones.
/// `apiVersion`, `kind` and `metadata` select or name the plugin; any other
/// field is refused.
fn known_fields(res: &Resource, known: &[&str], fold_case: bool) -> Result<Value> {
    let mut out = Map::new();
    let mut entries: Vec<(&String, &Value)> = res.as_map().iter().collect();
    if fold_case {
        // sigs.k8s.io/yaml hands Go the keys in byte order.
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    for (key, value) in entries {
        let found = known.iter().find(|k| **k == key.as_str()).or_else(|| {
            fold_case
                .then(|| known.iter().find(|k| k.eq_ignore_ascii_case(key)))
                .flatten()
        });
        match found {
            Some(k) => {
                out.insert((*k).to_string(), value.clone());
            }
            None if ["apiVersion", "kind", "metadata"].contains(&key.as_str()) => {}
            None => {
                return Err(Error::transformer(format!(
                    "field {key:?} is not read by kustomize's {} (it reads {}): refused rather than ignored",
                    res.kind(),
                    known.join(", ")
                )));
            }
        }
    }
    Ok(Value::Object(out))
}

/// Decodes a config: with Go's `encoding/json` rules (through
/// `sigs.k8s.io/yaml`) when `go_json`, else as kyaml's case-sensitive
/// decoder does.
fn decode<T: DeserializeOwned>(res: &Resource, known: &[&str], go_json: bool) -> Result<T> {
    let v = known_fields(res, known, go_json)?;
    // Both of kustomize's decoders read a number or boolean as text where
    // the field is a string.
    let decoded = if go_json {
        crate::go_json::from_value_coercing(v)
    } else {
        crate::go_json::from_value_yaml_v3(v)
    };
    decoded.map_err(|e| Error::transformer(format!("json: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MapConfig {
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    field_specs: Option<Vec<FieldSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NamespaceConfig {
    field_specs: Option<Vec<FieldSpec>>,
    unset_only: bool,
    set_role_binding_subjects: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AffixConfig {
    prefix: String,
    suffix: String,
    field_specs: Option<Vec<FieldSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ImageTagConfig {
    image_tag: Image,
    field_specs: Option<Vec<FieldSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplicaConfig {
    replica: Replica,
    field_specs: Option<Vec<FieldSpec>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PatchConfig {
    path: String,
    patch: String,
    target: Option<Selector>,
    options: Option<PatchOptions>,
    json_op: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct PatchSmConfig {
    paths: Vec<String>,
    patches: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReplacementConfig {
    replacements: Vec<Replacement>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ValueAddTarget {
    selector: Option<Selector>,
    field_path: String,
    file_path_position: i64,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ValueAddConfig {
    value: String,
    targets: Vec<ValueAddTarget>,
    target_file_path: String,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct ValueAddTargetFile {
    targets: Vec<ValueAddTarget>,
}

/// The fields of kustomize's `ConfigMapArgs` a generator plugin reads
/// (its `Generate` ignores the deprecated `env`, so that is refused).
const GENERATOR_FIELDS: &[&str] = &[
    "namespace",
    "name",
    "behavior",
    "literals",
    "files",
    "envs",
    "options",
];

/// kustomize's ConfigMap/SecretGenerator `Config`: name and namespace
/// default to the config's own.
fn generator_args(res: &Resource, secret: bool) -> Result<GeneratorArgs> {
    let mut known = GENERATOR_FIELDS.to_vec();
    if secret {
        known.push("type");
    }
    let mut args: GeneratorArgs = decode(res, &known, true)?;
    if args.name.is_empty() {
        args.name = res.name();
    }
    if args.namespace.is_empty() {
        args.namespace = res.namespace();
    }
    Ok(args)
}

fn affixes(res: &Resource, prefix: bool, suffix: bool) -> Result<Transformer> {
    let mut known = vec!["fieldSpecs"];
    if prefix {
        known.push("prefix");
    }
    if suffix {
        // kustomize v5.8's SuffixTransformer has no `excludeLabelSelector`.
        known.push("suffix");
    }
    // Prefix and suffix configs go through kyaml's (case-sensitive) decoder.
    let c: AffixConfig = decode(res, &known, false)?;
    let Some(specs) = c.field_specs else {
        return Err(Error::transformer("fieldSpecs is not expected to be nil"));
    };
    Ok(Transformer::Affixes {
        prefix: prefix.then_some(c.prefix),
        suffix: suffix.then_some(c.suffix),
        specs,
    })
}

fn value_add(res: &Resource, ldr: &Loader) -> Result<Transformer> {
    let c: ValueAddConfig = decode(res, &["value", "targets", "targetFilePath"], true)?;
    let mut value = c.value.trim().to_string();
    if value.is_empty() {
        value = ldr
            .root()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
    }
    let mut targets = c.targets;
    if !c.target_file_path.is_empty() {
        let text = ldr.load_string(&c.target_file_path)?;
        let v =
            crate::yaml::parse_single(&text, crate::yaml::ParseOptions::CONFIG).map_err(|e| {
                Error::Yaml {
                    path: ldr.root().join(&c.target_file_path),
                    cause: e,
                }
            })?;
        let v = if v.is_null() {
            Value::Object(Map::new())
        } else {
            v
        };
        let file: ValueAddTargetFile = serde_json::from_value(v)
            .map_err(|e| Error::transformer(format!("{}: json: {e}", c.target_file_path)))?;
        targets.extend(file.targets);
    }
    if targets.is_empty() {
        return Err(Error::transformer("must specify at least one target"));
    }
    let mut out = Vec::new();
    for t in targets {
        if t.field_path.is_empty() {
            return Err(Error::transformer("fieldPath cannot be empty"));
        }
        if t.file_path_position < 0 {
            return Err(Error::transformer(format!(
                "value of FilePathPosition ({}) cannot be negative",
                t.file_path_position
            )));
        }
        out.push(Target {
            selector: t.selector,
            field_path: t.field_path,
            file_path_position: t.file_path_position,
        });
    }
    Ok(Transformer::ValueAdd(value, out))
}

/// Whether a config resource configures a builtin plugin (as opposed to an
/// exec or Go plugin): group empty, version `builtin`.
pub fn is_builtin(res: &Resource) -> bool {
    res.api_version() == BUILTIN_API_VERSION
}

/// Configures the builtin plugin `res` describes (kustomize's plugin
/// `Config`); files it names are read with `ldr`, the loader of the
/// kustomization listing it.
pub fn configure(res: &Resource, ldr: &Loader) -> Result<Plugin> {
    let kind = res.kind();
    if !is_builtin(res) {
        return Err(Error::transformer(format!(
            "{kind} (apiVersion {:?}) is an exec or Go plugin: only kustomize's builtin plugins (apiVersion: builtin) are supported",
            res.api_version()
        )));
    }
    use Transformer as T;
    let t = match kind.as_str() {
        "ConfigMapGenerator" => {
            return Ok(Plugin::Generator(Generator::ConfigMap(generator_args(
                res, false,
            )?)));
        }
        "SecretGenerator" => {
            return Ok(Plugin::Generator(Generator::Secret(generator_args(
                res, true,
            )?)));
        }
        "IAMPolicyGenerator" => {
            let args: IamPolicyArgs =
                decode(res, &["cloud", "kubernetesService", "serviceAccount"], true)?;
            return Ok(Plugin::Generator(Generator::IamPolicy(args)));
        }
        "HelmChartInflationGenerator" => {
            return Err(Error::transformer(
                "HelmChartInflationGenerator is not supported (Helm charts are not inflated)",
            ));
        }
        "AnnotationsTransformer" => {
            let c: MapConfig = decode(res, &["annotations", "fieldSpecs"], true)?;
            T::Annotations(c.annotations, c.field_specs.unwrap_or_default())
        }
        "LabelTransformer" => {
            let c: MapConfig = decode(res, &["labels", "fieldSpecs"], true)?;
            T::Labels(c.labels, c.field_specs.unwrap_or_default())
        }
        "NamespaceTransformer" => {
            let c: NamespaceConfig = decode(
                res,
                &["fieldSpecs", "unsetOnly", "setRoleBindingSubjects"],
                true,
            )?;
            let options = namespace::Options {
                unset_only: c.unset_only,
                subjects: namespace::SubjectMode::parse(&c.set_role_binding_subjects)?,
            };
            T::Namespace(res.namespace(), c.field_specs.unwrap_or_default(), options)
        }
        "PrefixTransformer" => affixes(res, true, false)?,
        "SuffixTransformer" => affixes(res, false, true)?,
        "PrefixSuffixTransformer" => affixes(res, true, true)?,
        "ImageTagTransformer" => {
            let c: ImageTagConfig = decode(res, &["imageTag", "fieldSpecs"], true)?;
            T::ImageTag(c.image_tag, c.field_specs.unwrap_or_default())
        }
        "ReplicaCountTransformer" => {
            let c: ReplicaConfig = decode(res, &["replica", "fieldSpecs"], true)?;
            T::ReplicaCount(c.replica, c.field_specs.unwrap_or_default())
        }
        "PatchTransformer" => {
            let c: PatchConfig = decode(res, &["path", "patch", "target", "options"], true)?;
            T::Patch(Patch {
                path: c.path,
                patch: c.patch,
                target: c.target,
                options: c.options,
            })
        }
        "PatchJson6902Transformer" => {
            let c: PatchConfig = decode(res, &["target", "path", "jsonOp"], true)?;
            T::PatchJson6902(Patch {
                path: c.path,
                patch: c.json_op,
                target: c.target,
                options: None,
            })
        }
        "PatchStrategicMergeTransformer" => {
            let c: PatchSmConfig = decode(res, &["paths", "patches"], true)?;
            if c.paths.is_empty() && c.patches.is_empty() {
                return Err(Error::patch("empty file path and empty patch content"));
            }
            let mut entries = c.paths;
            if !c.patches.is_empty() {
                entries.push(c.patches);
            }
            T::PatchStrategicMerge(entries)
        }
        "ReplacementTransformer" => {
            let c: ReplacementConfig = decode(res, &["replacements"], true)?;
            T::Replacements(replacements::load(ldr, &c.replacements)?)
        }
        "HashTransformer" => {
            // kustomize's HashTransformer takes no configuration at all.
            T::Hash
        }
        "ValueAddTransformer" => value_add(res, ldr)?,
        "SortOrderTransformer" | "LegacyOrderTransformer" => {
            return Err(Error::transformer(format!(
                "unable to load builtin {}: kustomize v5.8 does not configure {kind} from a plugin config (use the kustomization's sortOptions)",
                res.gvk()
            )));
        }
        _ => {
            return Err(Error::transformer(format!(
                "unable to load builtin {}: {kind} is not one of kustomize's builtin generators or transformers",
                res.gvk()
            )));
        }
    };
    Ok(Plugin::Transformer(t))
}

impl Generator {
    /// Generates the resources (kustomize's `Generate`).
    pub fn generate(&self, ldr: &Loader) -> Result<ResMap> {
        let res = match self {
            Generator::ConfigMap(args) => {
                generators::generate(GeneratedKind::ConfigMap, ldr, args, args.options.as_ref())?
            }
            Generator::Secret(args) => {
                generators::generate(GeneratedKind::Secret, ldr, args, args.options.as_ref())?
            }
            Generator::IamPolicy(args) => iam_policy::generate(args)?,
        };
        let mut m = ResMap::new();
        m.append(res)?;
        Ok(m)
    }
}

/// kustomize's HashTransformer: appends the content hash to the names of
/// generated resources that ask for one.
pub fn add_hash_suffixes(m: &mut ResMap) {
    for r in m.resources_mut() {
        if r.needs_hash_suffix() {
            let h = hash::resource_hash(r.as_map());
            r.store_previous_id();
            let name = format!("{}-{h}", r.name());
            r.set_name(&name);
        }
    }
}

impl Transformer {
    /// Transforms `m` (kustomize's `Transform`).
    pub fn transform(&self, m: &mut ResMap, ldr: &Loader) -> Result<()> {
        match self {
            Transformer::Annotations(entries, specs) | Transformer::Labels(entries, specs) => {
                labels::add_entries(m, entries, specs)
            }
            Transformer::Namespace(ns, specs, options) => {
                namespace::transform_with(m, ns, specs, *options)
            }
            Transformer::Affixes {
                prefix,
                suffix,
                specs,
            } => {
                if let Some(p) = prefix {
                    prefix_suffix::transform(m, prefix_suffix::Affix::Prefix, p, specs)?;
                }
                if let Some(s) = suffix {
                    prefix_suffix::transform(m, prefix_suffix::Affix::Suffix, s, specs)?;
                }
                Ok(())
            }
            Transformer::ImageTag(image, specs) => images::transform(m, image, specs),
            Transformer::ReplicaCount(replica, specs) => replicas::transform(m, replica, specs),
            Transformer::Patch(p) => patch::apply_patch_entry(m, ldr, p),
            Transformer::PatchJson6902(p) => patch::apply_legacy_json6902(m, ldr, p),
            Transformer::PatchStrategicMerge(entries) => {
                patch::apply_patches_strategic_merge(m, ldr, entries)
            }
            Transformer::Replacements(list) => replacements::apply(m, list),
            Transformer::Hash => {
                add_hash_suffixes(m);
                Ok(())
            }
            Transformer::ValueAdd(value, targets) => value_add::transform(m, value, targets),
        }
    }
}
