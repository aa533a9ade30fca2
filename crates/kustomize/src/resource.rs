//! One Kubernetes object being built, plus kustomize's bookkeeping.
//!
//! Like kustomize, the bookkeeping (previous names, prefixes, generator
//! behaviour, ...) lives in `internal.config.kubernetes.io/*` annotations on
//! the object itself and is stripped before output; several kustomize
//! behaviours (patch merges, selectors) depend on that placement.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::resid::{Gvk, ResId, parse_group_version};
use crate::yaml::go_format;

/// The prefix of kustomize's bookkeeping annotations.
pub const ANNOTATION_DOMAIN: &str = "internal.config.kubernetes.io";
/// Kinds the resource had before kind changes, comma-separated.
pub const PREVIOUS_KINDS: &str = "internal.config.kubernetes.io/previousKinds";
/// Names the resource had before renames, comma-separated.
pub const PREVIOUS_NAMES: &str = "internal.config.kubernetes.io/previousNames";
/// Name prefixes added so far, comma-separated.
pub const PREFIXES: &str = "internal.config.kubernetes.io/prefixes";
/// Name suffixes added so far, comma-separated.
pub const SUFFIXES: &str = "internal.config.kubernetes.io/suffixes";
/// Namespaces the resource had before namespace changes, comma-separated.
pub const PREVIOUS_NAMESPACES: &str = "internal.config.kubernetes.io/previousNamespaces";
/// Ids of the resources that refer to this one by name.
pub const REF_BY: &str = "internal.config.kubernetes.io/refBy";
/// A generated resource's [`Behavior`].
pub const GENERATOR_BEHAVIOR: &str = "internal.config.kubernetes.io/generatorBehavior";
/// Set on generated resources whose name gets a content-hash suffix.
pub const NEEDS_HASH_SUFFIX: &str = "internal.config.kubernetes.io/needsHashSuffix";
/// Set when a patch may rename the resource.
pub const ALLOW_NAME_CHANGE: &str = "internal.config.kubernetes.io/allowNameChange";
/// Set when a patch may change the resource's kind.
pub const ALLOW_KIND_CHANGE: &str = "internal.config.kubernetes.io/allowKindChange";
/// Where the resource came from (`buildMetadata: [originAnnotations]`).
pub const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
/// The transformers that changed the resource (`buildMetadata: [transformerAnnotations]`).
pub const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";
/// Marks a resource to leave out of the output (unless `"false"`).
pub const LOCAL_CONFIG_ANNOTATION: &str = "config.kubernetes.io/local-config";
const ENABLED: &str = "enabled";

/// The annotations kustomize removes before printing.
const BUILD_ANNOTATIONS: &[&str] = &[
    PREVIOUS_KINDS,
    PREVIOUS_NAMES,
    PREFIXES,
    SUFFIXES,
    PREVIOUS_NAMESPACES,
    ALLOW_NAME_CHANGE,
    ALLOW_KIND_CHANGE,
    REF_BY,
    GENERATOR_BEHAVIOR,
    NEEDS_HASH_SUFFIX,
    "internal.config.kubernetes.io/path",
    "internal.config.kubernetes.io/index",
    "internal.config.kubernetes.io/seqindent",
    "internal.config.kubernetes.io/id",
    "internal.config.k8s.io/id",
    "config.kubernetes.io/path",
    "config.kubernetes.io/index",
    "config.k8s.io/id",
    "kustomize.config.k8s.io/helm-generated",
];

/// Generator merge behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Not set: treated as [`Behavior::Create`].
    Unspecified,
    /// Create; the resource must not exist yet.
    Create,
    /// Replace the existing resource of the same id.
    Replace,
    /// Merge into the existing resource of the same id.
    Merge,
}

impl Behavior {
    /// Parses a `behavior` value; anything unknown is [`Behavior::Unspecified`].
    pub fn parse(s: &str) -> Behavior {
        match s {
            "create" => Behavior::Create,
            "replace" => Behavior::Replace,
            "merge" => Behavior::Merge,
            _ => Behavior::Unspecified,
        }
    }

    /// The `behavior` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Behavior::Create => "create",
            Behavior::Replace => "replace",
            Behavior::Merge => "merge",
            Behavior::Unspecified => "unspecified",
        }
    }
}

/// The text kyaml reads from a scalar node (`yaml.Node.Value`).
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => go_format::go_sprint_number(n),
        Value::Bool(b) => b.to_string(),
        Value::Null | Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Like `scalar_text` but `None` for nulls and empty collections (kyaml's
/// `IsYNodeNilOrEmpty`).
fn non_empty_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(v) => scalar_text(v),
    }
}

/// A resource.
#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    obj: Map<String, Value>,
    ref_var_names: Vec<String>,
}

impl Resource {
    /// Wraps an object. Callers validate kind and name first.
    pub fn new(obj: Map<String, Value>) -> Resource {
        Resource {
            obj,
            ref_var_names: Vec::new(),
        }
    }

    /// Builds a resource from a parsed document, checking what kustomize's
    /// `GetValidatedMetadata` checks.
    pub fn from_value(value: Value) -> Result<Resource> {
        let Value::Object(obj) = value else {
            return Err(Error::resource(format!(
                "missing Resource metadata: expected a mapping, got {}",
                value_kind(&value)
            )));
        };
        let r = Resource::new(obj);
        r.validate_metadata()?;
        Ok(r)
    }

    fn validate_metadata(&self) -> Result<()> {
        let kind = self.kind();
        if kind.is_empty() {
            if self.obj.get("apiVersion").is_none() && self.obj.get("metadata").is_none() {
                return Err(Error::resource("missing Resource metadata"));
            }
            return Err(Error::resource(format!(
                "missing kind in object {}",
                self.meta_summary()
            )));
        }
        if kind.ends_with("List") {
            return Ok(());
        }
        if self.name().is_empty() {
            return Err(Error::resource(format!(
                "missing metadata.name in object {}",
                self.meta_summary()
            )));
        }
        Ok(())
    }

    fn meta_summary(&self) -> String {
        format!(
            "{{{{{} {}}} {{{} {}}}}}",
            self.api_version(),
            self.kind(),
            self.name(),
            self.namespace()
        )
    }

    /// The object.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.obj
    }

    /// The object, for changing in place.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.obj
    }

    /// The object as a JSON value.
    pub fn into_value(self) -> Value {
        Value::Object(self.obj)
    }

    /// A copy of the object as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.obj.clone())
    }

    /// Replaces the object, keeping kustomize-only fields.
    pub fn set_map(&mut self, obj: Map<String, Value>) {
        self.obj = obj;
    }

    /// `kind`, empty when unset.
    pub fn kind(&self) -> String {
        non_empty_text(self.obj.get("kind"))
    }

    /// `apiVersion`, empty when unset.
    pub fn api_version(&self) -> String {
        non_empty_text(self.obj.get("apiVersion"))
    }

    fn metadata(&self) -> Option<&Map<String, Value>> {
        self.obj.get("metadata").and_then(Value::as_object)
    }

    fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let md = self
            .obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !md.is_object() {
            *md = Value::Object(Map::new());
        }
        match md {
            Value::Object(m) => m,
            // Just replaced by an object above.
            _ => unreachable!("metadata was just made a mapping"),
        }
    }

    /// `metadata.name`, empty when unset.
    pub fn name(&self) -> String {
        non_empty_text(self.metadata().and_then(|m| m.get("name")))
    }

    /// `metadata.namespace`, empty when unset.
    pub fn namespace(&self) -> String {
        non_empty_text(self.metadata().and_then(|m| m.get("namespace")))
    }

    /// Sets `metadata.name`.
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Sets `metadata.namespace`; an empty one removes it.
    pub fn set_namespace(&mut self, ns: &str) {
        if ns.is_empty() {
            if let Some(Value::Object(md)) = self.obj.get_mut("metadata") {
                md.shift_remove("namespace");
            }
            return;
        }
        self.metadata_mut()
            .insert("namespace".into(), Value::String(ns.to_string()));
    }

    /// Sets `kind`.
    pub fn set_kind(&mut self, kind: &str) {
        self.obj
            .insert("kind".into(), Value::String(kind.to_string()));
    }

    /// Sets `apiVersion`.
    pub fn set_api_version(&mut self, v: &str) {
        self.obj
            .insert("apiVersion".into(), Value::String(v.to_string()));
    }

    /// The group, version and kind (with the cluster-scope lookup).
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(&self.api_version(), &self.kind())
    }

    /// The gvk without the cluster-scope lookup, for matching.
    pub fn gvk_unscoped(&self) -> Gvk {
        let api_version = self.api_version();
        let (g, v) = parse_group_version(&api_version);
        Gvk::unscoped(g, v, self.kind())
    }

    /// The name the resource was first known by (cheaper than `org_id`).
    pub fn org_name(&self) -> String {
        match self.annotation(PREVIOUS_NAMES) {
            Some(names) => names.split(',').next().unwrap_or_default().to_string(),
            None => self.name(),
        }
    }

    /// Sets `apiVersion` and `kind`.
    pub fn set_gvk(&mut self, gvk: &Gvk) {
        self.set_kind(&gvk.kind);
        self.set_api_version(&gvk.api_version());
    }

    /// The current id: gvk, name and namespace.
    pub fn cur_id(&self) -> ResId {
        ResId::new(self.gvk(), self.name(), self.namespace())
    }

    fn string_map(&self, field: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(Value::Object(m)) = self.metadata().and_then(|m| m.get(field)) {
            for (k, v) in m {
                out.insert(k.clone(), scalar_text(v));
            }
        }
        out
    }

    /// Rewrites a metadata map like kyaml's `setMapInMetadata`: the field is
    /// dropped when empty, otherwise rebuilt with sorted string values.
    fn set_string_map(&mut self, field: &str, m: &BTreeMap<String, String>) {
        let md = self.metadata_mut();
        md.shift_remove(field);
        if m.is_empty() {
            return;
        }
        let mut out = Map::new();
        for (k, v) in m {
            out.insert(k.clone(), Value::String(v.clone()));
        }
        md.insert(field.to_string(), Value::Object(out));
    }

    /// `metadata.annotations`, values as text.
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.string_map("annotations")
    }

    /// `metadata.labels`, values as text.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.string_map("labels")
    }

    /// Replaces `metadata.annotations` (removed when empty).
    pub fn set_annotations(&mut self, m: &BTreeMap<String, String>) {
        self.set_string_map("annotations", m);
    }

    /// Replaces `metadata.labels` (removed when empty).
    pub fn set_labels(&mut self, m: &BTreeMap<String, String>) {
        self.set_string_map("labels", m);
    }

    fn annotation(&self, key: &str) -> Option<String> {
        self.metadata()
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .and_then(|a| a.get(key))
            .map(scalar_text)
    }

    /// Sets one annotation in place (kyaml's `SetAnnotation`), creating the
    /// map when needed.
    pub fn set_annotation(&mut self, key: &str, value: &str) {
        let md = self.metadata_mut();
        let ann = md
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        if let Value::Object(a) = ann {
            a.insert(key.to_string(), Value::String(value.to_string()));
        }
    }

    fn csv_annotation(&self, key: &str) -> Vec<String> {
        match self.annotation(key) {
            Some(v) => v.split(',').map(str::to_string).collect(),
            None => Vec::new(),
        }
    }

    fn append_csv_annotation(&mut self, key: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let mut current = self.csv_annotation(key);
        current.push(value.to_string());
        self.set_annotation(key, &current.join(","));
    }

    /// Records a name prefix added to the resource.
    pub fn add_name_prefix(&mut self, p: &str) {
        self.append_csv_annotation(PREFIXES, p);
    }

    /// Records a name suffix added to the resource.
    pub fn add_name_suffix(&mut self, s: &str) {
        self.append_csv_annotation(SUFFIXES, s);
    }

    /// The name prefixes added so far, in order.
    pub fn name_prefixes(&self) -> Vec<String> {
        self.csv_annotation(PREFIXES)
    }

    /// The name suffixes added so far, in order.
    pub fn name_suffixes(&self) -> Vec<String> {
        self.csv_annotation(SUFFIXES)
    }

    fn is_enabled(&self, key: &str) -> bool {
        self.annotation(key).as_deref() == Some(ENABLED)
    }

    /// Lets patches rename the resource.
    pub fn allow_name_change(&mut self) {
        self.set_annotation(ALLOW_NAME_CHANGE, ENABLED);
    }

    /// Whether patches may rename the resource.
    pub fn name_change_allowed(&self) -> bool {
        self.is_enabled(ALLOW_NAME_CHANGE)
    }

    /// Lets patches change the resource's kind.
    pub fn allow_kind_change(&mut self) {
        self.set_annotation(ALLOW_KIND_CHANGE, ENABLED);
    }

    /// Whether patches may change the resource's kind.
    pub fn kind_change_allowed(&self) -> bool {
        self.is_enabled(ALLOW_KIND_CHANGE)
    }

    /// Marks the resource's name for a content-hash suffix.
    pub fn enable_hash_suffix(&mut self) {
        self.set_annotation(NEEDS_HASH_SUFFIX, ENABLED);
    }

    /// Whether the resource's name gets a content-hash suffix.
    pub fn needs_hash_suffix(&self) -> bool {
        self.is_enabled(NEEDS_HASH_SUFFIX)
    }

    /// The generator behaviour recorded on the resource.
    pub fn behavior(&self) -> Behavior {
        self.annotation(GENERATOR_BEHAVIOR)
            .map(|b| Behavior::parse(&b))
            .unwrap_or(Behavior::Unspecified)
    }

    /// Records the generator behaviour.
    pub fn set_behavior(&mut self, b: Behavior) {
        self.set_annotation(GENERATOR_BEHAVIOR, b.as_str());
    }

    /// The ids this resource had before renames, oldest first.
    pub fn prev_ids(&self) -> Vec<ResId> {
        let ann = self.annotations();
        let Some(names) = ann.get(PREVIOUS_NAMES) else {
            return Vec::new();
        };
        let names: Vec<&str> = names.split(',').collect();
        let empty = String::new();
        let nss: Vec<&str> = ann
            .get(PREVIOUS_NAMESPACES)
            .unwrap_or(&empty)
            .split(',')
            .collect();
        let kinds: Vec<&str> = ann
            .get(PREVIOUS_KINDS)
            .unwrap_or(&empty)
            .split(',')
            .collect();
        if names.len() != nss.len() || names.len() != kinds.len() {
            return Vec::new();
        }
        let api_version = self.api_version();
        let (group, version) = parse_group_version(&api_version);
        names
            .iter()
            .zip(nss.iter())
            .zip(kinds.iter())
            .map(|((n, ns), k)| ResId::new(Gvk::unscoped(group, version, *k), *n, *ns))
            .collect()
    }

    /// The id the resource was first known by.
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }

    /// Records the current id as a previous one, before a rename.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let ns = id.effective_namespace().to_string();
        self.append_csv_annotation(PREVIOUS_NAMES, &id.name);
        self.append_csv_annotation(PREVIOUS_NAMESPACES, &ns);
        self.append_csv_annotation(PREVIOUS_KINDS, &id.gvk.kind);
    }

    /// Names of the vars whose value is read from this resource.
    pub fn ref_var_names(&self) -> &[String] {
        &self.ref_var_names
    }

    /// Records that var `name` reads its value from this resource.
    pub fn append_ref_var_name(&mut self, name: &str) {
        self.ref_var_names.push(name.to_string());
    }

    /// Strips kustomize's bookkeeping annotations.
    pub fn remove_build_annotations(&mut self) {
        let mut ann = self.annotations();
        if ann.is_empty() {
            return;
        }
        for a in BUILD_ANNOTATIONS {
            ann.remove(*a);
        }
        self.set_annotations(&ann);
    }

    /// Removes one annotation, rewriting the annotation map the way kyaml's
    /// `SetAnnotations` does (which also drops an empty map).
    pub fn remove_annotation_rewriting(&mut self, key: &str) {
        let mut ann = self.annotations();
        ann.remove(key);
        self.set_annotations(&ann);
    }

    /// Copies name, namespace, labels and annotations from `other`, merging
    /// maps with `self`'s values winning (kustomize's
    /// `CopyMergeMetaDataFieldsFrom`).
    pub fn copy_merge_metadata_from(&mut self, other: &Resource) {
        let mut labels = other.labels();
        labels.extend(self.labels());
        self.set_labels(&labels);
        let mine = self.annotations();
        let needs_hash = mine.contains_key(NEEDS_HASH_SUFFIX);
        let theirs = other.annotations();
        let mut merged = theirs.clone();
        for (k, v) in mine {
            merged.insert(k, v);
        }
        // Bookkeeping annotations come from `other` only.
        for a in BUILD_ANNOTATIONS {
            match theirs.get(*a) {
                Some(v) => {
                    merged.insert((*a).to_string(), v.clone());
                }
                None => {
                    merged.remove(*a);
                }
            }
        }
        if !needs_hash {
            merged.remove(NEEDS_HASH_SUFFIX);
        }
        self.set_annotations(&merged);
        self.set_name(&other.name());
        self.set_namespace(&other.namespace());
        self.ref_var_names = other.ref_var_names.clone();
    }

    fn string_field_map(&self, field: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(Value::Object(m)) = self.obj.get(field) {
            for (k, v) in m {
                out.insert(k.clone(), scalar_text(v));
            }
        }
        out
    }

    fn set_string_field_map(&mut self, field: &str, m: BTreeMap<String, String>) {
        self.obj.shift_remove(field);
        if m.is_empty() {
            return;
        }
        let mut out = Map::new();
        for (k, v) in m {
            out.insert(k, Value::String(v));
        }
        self.obj.insert(field.to_string(), Value::Object(out));
    }

    /// `data`, values as text.
    pub fn data_map(&self) -> BTreeMap<String, String> {
        self.string_field_map("data")
    }

    /// `binaryData`, values as text.
    pub fn binary_data_map(&self) -> BTreeMap<String, String> {
        self.string_field_map("binaryData")
    }

    /// Merges `o`'s data into this one's, this one's values winning.
    pub fn merge_data_maps_from(&mut self, o: &Resource) {
        let mut data = o.data_map();
        data.extend(self.data_map());
        self.set_string_field_map("data", data);
        let mut bin = o.binary_data_map();
        bin.extend(self.binary_data_map());
        self.set_string_field_map("binaryData", bin);
    }

    /// True when kustomize's local-config annotation asks to drop it.
    pub fn is_local_config(&self) -> bool {
        match self.annotation(LOCAL_CONFIG_ANNOTATION) {
            Some(v) => v != "false",
            None => false,
        }
    }
}

/// The name of a value's YAML node kind, for messages.
pub fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "sequence",
        Value::Object(_) => "mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(v: Value) -> Resource {
        Resource::from_value(v).unwrap()
    }

    #[test]
    fn ids_and_previous_ids() {
        let mut r =
            res(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}));
        assert_eq!(r.cur_id().to_string(), "Deployment.v1.apps/a.[noNs]");
        r.store_previous_id();
        r.set_name("p-a");
        assert_eq!(r.org_id().name, "a");
        assert_eq!(r.org_id().namespace, "default");
        assert_eq!(r.cur_id().name, "p-a");
        r.remove_build_annotations();
        assert_eq!(
            r.to_value(),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "p-a"}})
        );
    }

    #[test]
    fn validation() {
        assert!(Resource::from_value(json!({"kind": "X"})).is_err());
        assert!(Resource::from_value(json!({"metadata": {"name": "x"}})).is_err());
        assert!(Resource::from_value(json!({"kind": "XList"})).is_ok());
        assert!(Resource::from_value(json!([1])).is_err());
    }
}
