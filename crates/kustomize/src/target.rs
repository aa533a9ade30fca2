//! The build: load a kustomization, accumulate its resources, bases,
//! generators and components, run its transformers, then (at the top
//! level) add hash suffixes, fix name references, resolve vars, sort and
//! strip bookkeeping. Mirrors kustomize's `KustTarget`.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result, ResultExt};
use crate::fieldspec::{self, FieldSpec};
use crate::generators::{self, GeneratedKind};
use crate::kustomization::{FILE_NAMES, Kustomization, merge_generator_options};
use crate::loader::{LoadRestrictor, Loader, RemoteAccess, SourceRoot};
use crate::ordering;
use crate::origin::{self, Origin};
use crate::patch;
use crate::plugins::{self, Plugin};
use crate::replacements;
use crate::resmap::ResMap;
use crate::resource::{ORIGIN_ANNOTATION, Resource, TRANSFORMATIONS_ANNOTATION, scalar_text};
use crate::transformer_config::TransformerConfig;
use crate::transformers::{images, labels, name_references, namespace, prefix_suffix, replicas};
use crate::vars::{self, VarSet};
use crate::yaml::{ParseOptions, parse_stream};

/// kustomize's `--reorder`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reorder {
    /// Not given: legacy order unless the kustomization has `sortOptions`.
    #[default]
    Unspecified,
    /// kustomize's legacy kind order.
    Legacy,
    /// Keep the order in which resources were read (`fifo`).
    None,
}

/// Options of a build.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    /// Which files kustomizations may read.
    pub load_restrictor: LoadRestrictor,
    /// How to order the output.
    pub reorder: Reorder,
    /// Whether remote bases, components and files are fetched (and how).
    pub remote: RemoteAccess,
}

/// The result of a build.
#[derive(Clone, Debug)]
pub struct Output {
    /// The built resources, in output order.
    pub resources: ResMap,
    /// Deprecation and similar notices kustomize prints on stderr.
    pub warnings: Vec<String>,
}

impl Output {
    /// The YAML stream `kustomize build` prints.
    pub fn to_yaml(&self) -> String {
        let values: Vec<Value> = self
            .resources
            .resources()
            .iter()
            .map(Resource::to_value)
            .collect();
        crate::yaml::to_yaml_stream(values.iter())
    }
}

/// Builds the kustomization in `dir`, reading nothing outside `source_root`.
pub fn build(source_root: &Path, dir: &Path, options: BuildOptions) -> Result<Output> {
    let source = Arc::new(SourceRoot::new(source_root)?);
    let ldr = Loader::with_remote_access(source, dir, options.load_restrictor, options.remote)?;
    let mut warnings = Vec::new();
    // The schema choice lives for this build only.
    let _schema_scope = crate::openapi::SelectionScope::begin();
    let mut kt = KustTarget::load(ldr, &mut warnings)?;
    choose_openapi(&kt)?;
    if !kt.kustomization.build_metadata.is_empty() {
        kt.origin = Some(Origin::default());
    }
    let mut resources = kt.make_customized_resmap(&mut warnings)?;
    match (&kt.kustomization.sort_options, options.reorder) {
        (Some(opts), _) => {
            if options.reorder != Reorder::Unspecified {
                warnings.push(
                    "Warning: Sorting order is set both in 'kustomization.yaml' ('sortOptions') and in a CLI flag ('--reorder'). Using the kustomization file over the CLI flag."
                        .into(),
                );
            }
            ordering::apply_sort_options(&mut resources, opts)?;
        }
        (None, Reorder::Legacy | Reorder::Unspecified) => {
            let (first, last) = ordering::default_orders();
            ordering::sort_legacy(&mut resources, &first, &last)?;
        }
        (None, Reorder::None) => {}
    }
    let meta = &kt.kustomization.build_metadata;
    if meta.iter().any(|m| m == "managedByLabel") {
        let mut l = std::collections::BTreeMap::new();
        l.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "kustomize-v5.8.1".to_string(),
        );
        labels::add_entries(
            &mut resources,
            &l,
            &[FieldSpec::new("", "metadata/labels", true)],
        )?;
    }
    resources.remove_build_annotations();
    let keep_origin = meta.iter().any(|m| m == "originAnnotations");
    let keep_transformations = meta.iter().any(|m| m == "transformerAnnotations");
    for r in resources.resources_mut() {
        if !keep_origin {
            r.remove_annotation_rewriting(ORIGIN_ANNOTATION);
        }
        if !keep_transformations {
            r.remove_annotation_rewriting(TRANSFORMATIONS_ANNOTATION);
        }
    }
    Ok(Output {
        resources,
        warnings,
    })
}

/// Parses a YAML stream into resources, expanding `*List` kinds (kustomize's
/// `SliceFromBytes`).
pub fn resources_from_text(text: &str) -> Result<Vec<Resource>> {
    let docs = parse_stream(text, ParseOptions::RESOURCE).map_err(|e| Error::Yaml {
        path: Default::default(),
        cause: e,
    })?;
    let mut queue: std::collections::VecDeque<Value> =
        docs.into_iter().filter(|d| !is_nil_or_empty(d)).collect();
    let mut out = Vec::new();
    while let Some(doc) = queue.pop_front() {
        let kind = doc.get("kind").map(scalar_text).unwrap_or_default();
        if kind.ends_with("List")
            && let Some(items) = doc.get("items")
        {
            match items {
                Value::Null => continue,
                Value::Array(items) => {
                    for item in items {
                        if is_nil_or_empty(item) {
                            continue;
                        }
                        // Validated when it comes off the queue.
                        queue.push_back(item.clone());
                    }
                    continue;
                }
                other => {
                    return Err(Error::resource(format!(
                        "expected array in {kind}/items, but found {}",
                        crate::resource::value_kind(other)
                    )));
                }
            }
        }
        out.push(Resource::from_value(doc)?);
    }
    Ok(out)
}

fn is_nil_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Resources, transformer configuration and vars gathered so far.
#[derive(Default)]
struct Accumulator {
    resources: ResMap,
    config: TransformerConfig,
    vars: VarSet,
}

impl Accumulator {
    fn merge(&mut self, other: Accumulator) -> Result<()> {
        self.resources.append_all(other.resources)?;
        self.config = self.config.merge(&other.config)?;
        self.vars.merge_set(&other.vars)
    }
}

struct KustTarget {
    ldr: Loader,
    kustomization: Kustomization,
    file_name: &'static str,
    /// Set when `buildMetadata` asks for origin tracking.
    origin: Option<Origin>,
}

impl KustTarget {
    fn load(ldr: Loader, warnings: &mut Vec<String>) -> Result<KustTarget> {
        let mut found: Vec<&str> = Vec::new();
        for name in FILE_NAMES {
            if ldr.has_file(name) {
                found.push(name);
            }
        }
        let name = match found.as_slice() {
            [] => {
                return Err(Error::MissingKustomization {
                    dir: ldr.root().to_path_buf(),
                });
            }
            [one] => *one,
            _ => {
                return Err(Error::MultipleKustomizations {
                    dir: ldr.root().to_path_buf(),
                });
            }
        };
        let content = ldr.load_string(name)?;
        let path = ldr.root().join(name);
        let (kustomization, w) = Kustomization::parse(&content, &path)?;
        warnings.extend(w);
        unsupported(&kustomization, &path)?;
        Ok(KustTarget {
            ldr,
            kustomization,
            file_name: name,
            origin: None,
        })
    }

    fn make_customized_resmap(&self, warnings: &mut Vec<String>) -> Result<ResMap> {
        let mut ra = self.accumulate_target(Accumulator::default(), warnings)?;
        // Hash suffixes come last, once contents are final.
        plugins::add_hash_suffixes(&mut ra.resources);
        if !ra.config.name_reference.is_empty() {
            name_references::fix(&mut ra.resources, &ra.config.name_reference)?;
        }
        let unused = vars::resolve(&mut ra.resources, &ra.vars, &ra.config.var_reference)?;
        if !unused.is_empty() {
            warnings.push(format!(
                "well-defined vars that were never replaced: {}",
                unused.join(",")
            ));
        }
        for r in ra.resources.resources() {
            if !r.as_map().is_empty() {
                Resource::from_value(r.to_value())?;
            }
        }
        ra.resources
            .retain(|r| !r.as_map().is_empty() && !r.is_local_config());
        Ok(ra.resources)
    }

    fn accumulate_target(
        &self,
        mut ra: Accumulator,
        warnings: &mut Vec<String>,
    ) -> Result<Accumulator> {
        let k = &self.kustomization;
        self.accumulate_resources(&mut ra, &k.resources, warnings)
            .map_err(|e| e.context("accumulating resources"))?;
        let mut config = TransformerConfig::default().merge(TransformerConfig::defaults())?;
        for path in &k.configurations {
            let text = self.ldr.load_string(path)?;
            let c = TransformerConfig::parse(&text).map_err(|e| e.context(path.clone()))?;
            config = config.merge(&c)?;
        }
        ra.config = ra
            .config
            .merge(&config)
            .map_err(|e| e.context("merging config"))?;
        if !k.crds.is_empty() {
            let crd_config = crate::crds::config_from_crds(&self.ldr, &k.crds)
                .map_err(|e| e.context(format!("loading CRDs {:?}", k.crds)))?;
            ra.config = ra
                .config
                .merge(&crd_config)
                .map_err(|e| e.context("merging CRDs"))?;
        }
        self.run_generators(&mut ra, warnings)?;
        for path in &k.components {
            let child = self
                .ldr
                .child(path)
                .map_err(|e| e.context(format!("accumulating components: loader.New {path:?}")))?;
            ra = self
                .accumulate_directory(ra, child, path, true, warnings)
                .map_err(|e| e.context("accumulating components"))?;
        }
        self.run_transformers(&mut ra, warnings)?;
        self.run_validators(&mut ra, warnings)?;
        vars::merge_vars(
            &mut ra.resources,
            &mut ra.vars,
            k.vars.as_deref().unwrap_or_default(),
        )
        .map_err(|e| e.context("merging vars"))?;
        Ok(ra)
    }

    fn accumulate_resources(
        &self,
        ra: &mut Accumulator,
        paths: &[String],
        warnings: &mut Vec<String>,
    ) -> Result<()> {
        for path in paths {
            match self.accumulate_file(ra, path) {
                Ok(()) => continue,
                // kustomize's order: a file (local or over HTTP) first, then
                // a directory or repository; an HTTP error is final.
                Err(file_err) if file_err.is_final_for_resource() => return Err(file_err),
                Err(file_err) => {
                    let child = match self.ldr.child(path) {
                        Ok(c) => c,
                        Err(dir_err) => {
                            if file_err.is_yaml() {
                                return Err(file_err);
                            }
                            if dir_err.is_final_for_resource() {
                                return Err(dir_err);
                            }
                            return Err(dir_err.context(format!("accumulation err='{file_err}'")));
                        }
                    };
                    let acc = std::mem::take(ra);
                    *ra = self
                        .accumulate_directory(acc, child, path, false, warnings)
                        .map_err(|e| e.context(format!("accumulation err='{file_err}'")))?;
                }
            }
        }
        Ok(())
    }

    fn accumulate_file(&self, ra: &mut Accumulator, path: &str) -> Result<()> {
        let text = self.ldr.load_string(path)?;
        let resources = resources_from_text(&text)
            .map_err(|e| match e {
                Error::Yaml { cause, .. } => Error::Yaml {
                    path: self.ldr.root().join(path),
                    cause,
                },
                other => other,
            })
            .context(|| format!("accumulating resources from '{path}'"))?;
        for mut r in resources {
            if let Some(o) = &self.origin {
                r.set_annotation(ORIGIN_ANNOTATION, &o.append(path).to_yaml());
            }
            ra.resources
                .append(r)
                .map_err(|e| e.context(format!("merging resources from '{path}'")))?;
        }
        Ok(())
    }

    fn accumulate_directory(
        &self,
        ra: Accumulator,
        ldr: Loader,
        path: &str,
        is_component: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Accumulator> {
        let root = ldr.root().to_path_buf();
        let mut sub = KustTarget::load(ldr, warnings).map_err(|e| {
            e.context(format!(
                "couldn't make target for path '{}'",
                root.display()
            ))
        })?;
        sub.kustomization.build_metadata = self.kustomization.build_metadata.clone();
        choose_openapi(&sub)?;
        sub.origin = self.origin.as_ref().map(|o| o.append(path));
        if is_component && !sub.kustomization.is_component() {
            return Err(Error::InvalidKustomization {
                path: root.clone(),
                message: format!(
                    "expected kind 'Component' for path '{}' but got '{}'",
                    root.display(),
                    sub.kustomization.kind
                ),
            });
        }
        if !is_component && sub.kustomization.is_component() {
            return Err(Error::InvalidKustomization {
                path: root.clone(),
                message: format!("expected kind != 'Component' for path '{}'", root.display()),
            });
        }
        let recursed = |e: Error| {
            e.context(format!(
                "recursed accumulation of path '{}'",
                root.display()
            ))
        };
        if is_component {
            let sub_ra = sub.accumulate_target(ra, warnings).map_err(recursed)?;
            let mut fresh = Accumulator::default();
            fresh.merge(sub_ra)?;
            Ok(fresh)
        } else {
            let sub_ra = sub
                .accumulate_target(Accumulator::default(), warnings)
                .map_err(recursed)?;
            let mut ra = ra;
            ra.merge(sub_ra).map_err(|e| {
                e.context(format!("recursed merging from path '{}'", root.display()))
            })?;
            Ok(ra)
        }
    }

    fn run_generators(&self, ra: &mut Accumulator, warnings: &mut Vec<String>) -> Result<()> {
        let k = &self.kustomization;
        let global = k.generator_options.as_ref();
        for (kind, list) in [
            (GeneratedKind::ConfigMap, &k.config_map_generator),
            (GeneratedKind::Secret, &k.secret_generator),
        ] {
            for args in list {
                let opts = merge_generator_options(args.options.as_ref(), global);
                let res = generators::generate(kind, &self.ldr, args, opts.as_ref())?;
                let mut m = ResMap::new();
                m.append(res)?;
                if let Some(o) = &self.origin {
                    let by = match kind {
                        GeneratedKind::ConfigMap => "ConfigMapGenerator",
                        GeneratedKind::Secret => "SecretGenerator",
                    };
                    origin::add_origin(&mut m, &o.builtin(self.file_name, by));
                }
                ra.resources
                    .absorb_all(m)
                    .map_err(|e| e.context(format!("merging from generator {}", args.name)))?;
            }
        }
        for p in self.configure_plugins(PluginList::Generators, warnings)? {
            let Plugin::Generator(g) = &p.plugin else {
                continue;
            };
            let mut m = g.generate(&self.ldr).map_err(|e| p.context(e))?;
            if let Some(o) = &p.origin {
                origin::add_origin(&mut m, o);
            }
            ra.resources
                .absorb_all(m)
                .map_err(|e| p.context(e.context("merging from generator")))?;
        }
        Ok(())
    }

    /// Loads the plugin configs of `generators:`, `transformers:` or
    /// `validators:` (kustomize's `configureExternal*`): inline YAML entries
    /// first, then the files and directories the other entries name, each
    /// config configuring one builtin plugin.
    fn configure_plugins(
        &self,
        list: PluginList,
        warnings: &mut Vec<String>,
    ) -> Result<Vec<ConfiguredPlugin>> {
        let k = &self.kustomization;
        let entries = match list {
            PluginList::Generators => &k.generators,
            PluginList::Transformers => &k.transformers,
            PluginList::Validators => &k.validators,
        };
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let kust_path = self.ldr.root().join(self.file_name);
        let field = list.field();
        let mut configs: Vec<(Resource, String)> = Vec::new();
        let mut ids = ResMap::new();
        let mut paths: Vec<(usize, &String)> = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            let Ok(list) = resources_from_text(entry) else {
                paths.push((i, entry));
                continue;
            };
            for mut r in list {
                if let Some(o) = &self.origin {
                    r.set_annotation(ORIGIN_ANNOTATION, &o.append(self.file_name).to_yaml());
                }
                ids.append(r.clone()).map_err(|e| {
                    e.context(format!(
                        "{}: {field}[{i}] (inline): configuring external plugin",
                        kust_path.display()
                    ))
                })?;
                configs.push((r, format!("{field}[{i}] (inline)")));
            }
        }
        for (i, path) in paths {
            let mut acc = Accumulator {
                resources: ids,
                ..Accumulator::default()
            };
            let before = acc.resources.len();
            self.accumulate_resources(&mut acc, std::slice::from_ref(path), warnings)
                .map_err(|e| e.context(format!("{}: {field}[{i}]", kust_path.display())))?;
            ids = acc.resources;
            for r in ids.resources().iter().skip(before) {
                configs.push((r.clone(), format!("{field}[{i}] '{path}'")));
            }
        }
        let mut out = Vec::new();
        for (res, source) in configs {
            let id = res.org_id().to_string();
            let whence = format!("{}: {source}", kust_path.display());
            let plugin = plugins::configure(&res, &self.ldr).map_err(|e| {
                e.context(format!("plugin {id} fails configuration"))
                    .context(whence.clone())
            })?;
            let wanted = matches!(
                (&plugin, list),
                (Plugin::Generator(_), PluginList::Generators)
                    | (
                        Plugin::Transformer(_),
                        PluginList::Transformers | PluginList::Validators
                    )
            );
            if !wanted {
                let what = match list {
                    PluginList::Generators => "generator",
                    _ => "transformer",
                };
                return Err(Error::transformer(format!("plugin {id} not a {what}")).context(whence));
            }
            let origin = res.annotations().get(ORIGIN_ANNOTATION).map(|text| {
                Origin::from_annotation(text).plugin(&res.kind(), &res.name(), &res.namespace())
            });
            out.push(ConfiguredPlugin {
                plugin,
                origin,
                whence: format!("{whence}: plugin {id}"),
            });
        }
        Ok(out)
    }

    /// Bookkeeping after each configured transformer: kustomize drops
    /// emptied resources and, when tracking origins, records the transformer.
    fn transformer_done(&self, m: &mut ResMap, kind: &str) {
        let origin = self
            .origin
            .as_ref()
            .map(|o| o.builtin(self.file_name, kind));
        transformer_done_with(m, origin.as_ref());
    }

    /// Runs kustomize's validators: each must leave the resources as they
    /// were, but for the `validated-by` label it may add.
    fn run_validators(&self, ra: &mut Accumulator, warnings: &mut Vec<String>) -> Result<()> {
        for p in self.configure_plugins(PluginList::Validators, warnings)? {
            let Plugin::Transformer(t) = &p.plugin else {
                continue;
            };
            let before: Vec<Value> = ra
                .resources
                .resources()
                .iter()
                .map(Resource::to_value)
                .collect();
            t.transform(&mut ra.resources, &self.ldr)
                .map_err(|e| p.context(e))?;
            // kustomize takes the label out again and compares the YAML
            // nodes: taking it out of a resource that has other labels
            // rebuilds its labels node, which counts as a change there.
            let mut relabelled = None;
            let after: Vec<Value> = ra
                .resources
                .resources()
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    let mut labels = r.labels();
                    if labels.remove(VALIDATED_BY_LABEL).is_some() {
                        if !labels.is_empty() && relabelled.is_none() {
                            relabelled = Some(r.cur_id().to_string());
                        }
                        r.set_labels(&labels);
                    }
                    r.to_value()
                })
                .collect();
            if before != after || relabelled.is_some() {
                let changed = ra
                    .resources
                    .resources()
                    .iter()
                    .zip(before.iter().zip(after.iter()))
                    .find(|(_, (b, a))| b != a)
                    .map(|(r, _)| r.cur_id().to_string())
                    .or_else(|| {
                        relabelled.map(|id| {
                            format!("the labels of {id} (kustomize allows the {VALIDATED_BY_LABEL} label only on resources without other labels)")
                        })
                    })
                    .unwrap_or_else(|| "the resource list".into());
                return Err(p.context(Error::transformer(format!(
                    "validator shouldn't modify the resource map: it changed {changed}"
                ))));
            }
        }
        Ok(())
    }

    fn run_transformers(&self, ra: &mut Accumulator, warnings: &mut Vec<String>) -> Result<()> {
        let plugin_transformers = self.configure_plugins(PluginList::Transformers, warnings)?;
        let k = &self.kustomization;
        let tc = ra.config.clone();
        let m = &mut ra.resources;
        if let Some(entries) = &k.patches_strategic_merge
            && !entries.is_empty()
        {
            patch::apply_patches_strategic_merge(m, &self.ldr, entries)?;
            self.transformer_done(m, "PatchStrategicMergeTransformer");
        }
        for p in &k.patches {
            patch::apply_patch_entry(m, &self.ldr, p)?;
            self.transformer_done(m, "PatchTransformer");
        }
        if !k.namespace.is_empty() {
            namespace::transform(m, &k.namespace, &tc.namespace)?;
            self.transformer_done(m, "NamespaceTransformer");
        }
        if !k.name_prefix.is_empty() {
            prefix_suffix::transform(
                m,
                prefix_suffix::Affix::Prefix,
                &k.name_prefix,
                &tc.name_prefix,
            )?;
            self.transformer_done(m, "PrefixTransformer");
        }
        if !k.name_suffix.is_empty() {
            prefix_suffix::transform(
                m,
                prefix_suffix::Affix::Suffix,
                &k.name_suffix,
                &tc.name_suffix,
            )?;
            self.transformer_done(m, "SuffixTransformer");
        }
        let common_labels = k.common_labels.clone().unwrap_or_default();
        if !k.labels.is_empty() || !common_labels.is_empty() {
            for label in &k.labels {
                let mut specs = label.fields.clone();
                fieldspec::merge_all(&mut specs, &tc.labels)
                    .map_err(|e| e.context("failed to merge labels"))?;
                if label.include_selectors {
                    fieldspec::merge_all(&mut specs, &tc.common_labels)
                        .map_err(|e| e.context("failed to merge labels"))?;
                } else {
                    if label.include_templates {
                        fieldspec::merge_all(&mut specs, &tc.template_labels)
                            .map_err(|e| e.context("failed to merge template fieldSpec"))?;
                    }
                    fieldspec::merge_one(&mut specs, FieldSpec::new("", "metadata/labels", true))
                        .map_err(|e| e.context("failed to merge labels"))?;
                }
                labels::add_entries(m, &label.pairs, &specs)?;
                self.transformer_done(m, "LabelTransformer");
            }
            // kustomize always configures one more for commonLabels.
            labels::add_entries(m, &common_labels, &tc.common_labels)?;
            self.transformer_done(m, "LabelTransformer");
        }
        if let Some(ann) = &k.common_annotations
            && !ann.is_empty()
        {
            labels::add_entries(m, ann, &tc.common_annotations)?;
            self.transformer_done(m, "AnnotationsTransformer");
        }
        for p in k.patches_json6902.iter().flatten() {
            patch::apply_legacy_json6902(m, &self.ldr, p)?;
            self.transformer_done(m, "PatchJson6902Transformer");
        }
        for r in &k.replicas {
            replicas::transform(m, r, &tc.replicas)?;
            self.transformer_done(m, "ReplicaCountTransformer");
        }
        for img in &k.images {
            images::transform(m, img, &tc.images)?;
            self.transformer_done(m, "ImageTagTransformer");
        }
        if !k.replacements.is_empty() {
            let list = replacements::load(&self.ldr, &k.replacements)?;
            replacements::apply(m, &list)?;
            self.transformer_done(m, "ReplacementTransformer");
        }
        for p in &plugin_transformers {
            let Plugin::Transformer(t) = &p.plugin else {
                continue;
            };
            t.transform(m, &self.ldr).map_err(|e| p.context(e))?;
            transformer_done_with(m, p.origin.as_ref());
        }
        Ok(())
    }
}

/// The label a validator may add (kustomize's `ValidatedByLabelKey`).
const VALIDATED_BY_LABEL: &str = "validated-by";

/// Which plugin list of a kustomization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PluginList {
    Generators,
    Transformers,
    Validators,
}

impl PluginList {
    fn field(self) -> &'static str {
        match self {
            PluginList::Generators => "generators",
            PluginList::Transformers => "transformers",
            PluginList::Validators => "validators",
        }
    }
}

/// A builtin plugin configured from a `generators:`/`transformers:`/
/// `validators:` entry.
struct ConfiguredPlugin {
    plugin: Plugin,
    /// Where its config came from, for origin annotations (when tracked).
    origin: Option<Origin>,
    /// The kustomization, entry and plugin id, for errors.
    whence: String,
}

impl ConfiguredPlugin {
    fn context(&self, e: Error) -> Error {
        e.context(self.whence.clone())
    }
}

/// After each transformer: record it (when tracking origins) and drop
/// emptied resources, as kustomize does.
fn transformer_done_with(m: &mut ResMap, origin: Option<&Origin>) {
    if let Some(o) = origin {
        origin::add_transformation(m, o);
    }
    m.retain(|r| !r.as_map().is_empty());
}

/// kustomize's `openapi.SetSchema`: the first kustomization with an
/// `openapi` field (the root, else bases and components in accumulation
/// order) chooses the schema strategic merges use for the whole build. A
/// custom schema replaces the built-in Kubernetes one (kyaml parses only the
/// custom file), so built-in kinds it does not describe merge lists as
/// unknown kinds do.
fn choose_openapi(kt: &KustTarget) -> Result<()> {
    let Some(o) = &kt.kustomization.openapi else {
        return Ok(());
    };
    let invalid = |message: String| Error::InvalidKustomization {
        path: kt.ldr.root().join(kt.file_name),
        message,
    };
    // kustomize reads the file even when a schema is already chosen.
    let custom = match o.get("path") {
        Some(p) => Some((p, kt.ldr.load(p)?)),
        None => None,
    };
    if crate::openapi::is_selected() {
        return Ok(());
    }
    let version = o.get("version");
    if let Some((p, bytes)) = custom {
        if version.is_some() {
            return Err(invalid(
                "builtin version and custom schema provided, cannot use both".into(),
            ));
        }
        let table = crate::openapi::Table::from_custom_schema(&bytes)
            .map_err(|e| invalid(format!("invalid OpenAPI schema file '{p}': {e}")))?;
        crate::openapi::select(Arc::new(table));
        return Ok(());
    }
    match version.map(String::as_str) {
        None | Some("") => Ok(()),
        Some(v) if v == crate::openapi::schema_version() => {
            crate::openapi::select(crate::openapi::builtin_table());
            Ok(())
        }
        Some(_) => Err(invalid(
            "the specified OpenAPI version is not built in".into(),
        )),
    }
}

/// Features this crate deliberately does not run (Helm, ...), refused with
/// an error naming the file, as Flux does.
fn unsupported(k: &Kustomization, path: &Path) -> Result<()> {
    let refuse = |what: &str| {
        Err(Error::InvalidKustomization {
            path: path.to_path_buf(),
            message: format!("{what} are not supported"),
        })
    };
    if !k.helm_charts.is_empty()
        || !k.helm_chart_inflation_generator.is_empty()
        || k.helm_globals.is_some()
    {
        return refuse("helmCharts");
    }
    for m in &k.build_metadata {
        if ![
            "originAnnotations",
            "transformerAnnotations",
            "managedByLabel",
        ]
        .contains(&m.as_str())
        {
            return Err(Error::InvalidKustomization {
                path: path.to_path_buf(),
                message: format!("unknown buildMetadata option {m:?}"),
            });
        }
    }
    Ok(())
}
