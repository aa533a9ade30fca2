//! `patches`, `patchesStrategicMerge` and `patchesJson6902`.

pub mod json6902;
pub mod strategic_merge;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kustomization::Patch;
use crate::loader::Loader;
use crate::resmap::ResMap;
use crate::resource::{ANNOTATION_DOMAIN, Resource};
use crate::selector::Selector;
use json6902::JsonPatch;

/// Applies a strategic merge patch to one resource, keeping its name, kind
/// and namespace unless the patch allows changing them (kustomize's
/// `Resource.ApplySmPatch`). The resource becomes empty when the patch
/// deletes it.
pub fn apply_smp(target: &mut Resource, patch: &Resource) -> Result<()> {
    let (name, ns, kind) = (target.name(), target.namespace(), target.kind());
    if patch.name_change_allowed() || patch.kind_change_allowed() {
        target.store_previous_id();
    }
    let merged = strategic_merge::merge(target.to_value(), patch.to_value())?;
    match merged {
        Some(Value::Object(m)) if !m.is_empty() => {
            target.set_map(m);
        }
        _ => {
            target.set_map(Map::new());
            return Ok(());
        }
    }
    if !patch.kind_change_allowed() {
        target.set_kind(&kind);
    }
    if !patch.name_change_allowed() {
        target.set_name(&name);
    }
    target.set_namespace(&ns);
    Ok(())
}

/// Applies a patch to the selected resources the way kustomize's
/// `ResMap.ApplySmPatch` does (the patch takes each target's apiVersion),
/// dropping deleted resources.
pub fn apply_smp_to(m: &mut ResMap, selected: &[usize], patch: &Resource) -> Result<()> {
    let mut selected = selected.to_vec();
    selected.sort_unstable();
    let mut list = Vec::with_capacity(m.len());
    let mut ids_changed = false;
    for (i, res) in std::mem::take(m).into_resources().into_iter().enumerate() {
        let mut res = res;
        if selected.binary_search(&i).is_ok() {
            let before = res.cur_id();
            let mut copy = patch.clone();
            copy.copy_merge_metadata_from(patch);
            copy.set_gvk(&res.gvk());
            copy.set_kind(&patch.kind());
            apply_smp(&mut res, &copy)?;
            ids_changed |= !res.as_map().is_empty() && !before.equals(&res.cur_id());
        }
        if !res.as_map().is_empty() {
            list.push(res);
        }
    }
    if ids_changed {
        // A rename may collide with another resource: re-check every id.
        m.extend_checked(list)
    } else {
        m.set_resources(list);
        Ok(())
    }
}

/// Keeps numbers the way a round trip through Go's `interface{}` JSON
/// decoding does: integers beyond 2^53 become floats.
fn normalise_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            let big = n
                .as_i64()
                .map(|i| i.unsigned_abs() > (1u64 << 53))
                .unwrap_or(false)
                || n.as_u64().is_some_and(|u| u > (1u64 << 53));
            if big && let Some(f) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = f;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise_numbers),
        Value::Object(m) => m.values_mut().for_each(normalise_numbers),
        _ => {}
    }
}

/// Applies a JSON patch to a resource, keeping kustomize's internal
/// annotations (and rewriting the annotation map as kustomize does).
pub fn apply_json6902(res: &mut Resource, patch: &JsonPatch) -> Result<()> {
    let internal: Vec<(String, String)> = res
        .annotations()
        .into_iter()
        .filter(|(k, _)| {
            k.starts_with(ANNOTATION_DOMAIN)
                || k == "config.kubernetes.io/path"
                || k == "config.kubernetes.io/index"
                || k == "config.k8s.io/id"
        })
        .collect();
    let mut doc = res.to_value();
    patch.apply(&mut doc)?;
    normalise_numbers(&mut doc);
    match doc {
        Value::Object(m) => res.set_map(m),
        other => {
            return Err(Error::patch(format!(
                "json patch result is not an object: {}",
                crate::resource::value_kind(&other)
            )));
        }
    }
    let mut ann = res.annotations();
    ann.extend(internal);
    res.set_annotations(&ann);
    Ok(())
}

/// Parses strategic merge patches from text (kustomize's `SliceFromBytes`).
pub fn parse_smp(text: &str) -> Result<Vec<Resource>> {
    crate::target::resources_from_text(text)
}

/// A loaded `patches` entry.
pub enum LoadedPatch {
    /// Strategic merge patches (one per document).
    Strategic(Vec<Resource>),
    /// A JSON 6902 patch.
    Json(JsonPatch),
    /// A patch with no documents: nothing to apply.
    Empty,
}

/// kustomize's `PatchTransformerPlugin.Config`.
pub fn load_patch(ldr: &Loader, p: &Patch) -> Result<(LoadedPatch, String)> {
    let inline = p.patch.trim();
    let (text, source) = match (inline.is_empty(), p.path.is_empty()) {
        (true, true) => return Err(Error::patch("must specify one of patch and path")),
        (false, false) => return Err(Error::patch("patch and path can't be set at the same time")),
        (false, true) => (inline.to_string(), format!("[patch: {inline:?}]")),
        (true, false) => {
            let text = ldr.load_string(&p.path).map_err(|e| {
                e.context(format!(
                    "failed to get the patch file from path({})",
                    p.path
                ))
            })?;
            (text, format!("[path: {:?}]", p.path))
        }
    };
    let sm = parse_smp(&text);
    let json = decode_json_patch(&text);
    match (sm, json) {
        (Ok(sm), Ok(js)) if !sm.is_empty() && !js.is_empty() => Err(Error::patch(format!(
            "illegally qualifies as both an SM and JSON patch: {source}"
        ))),
        (Err(_), Err(_)) => Err(Error::patch(format!(
            "unable to parse SM or JSON patch from {source}"
        ))),
        (Ok(mut sm), _) => {
            if sm.is_empty() {
                return Ok((LoadedPatch::Empty, source));
            }
            if let Some(opts) = &p.options {
                for r in &mut sm {
                    if opts.allow_name_change {
                        r.allow_name_change();
                    }
                    if opts.allow_kind_change {
                        r.allow_kind_change();
                    }
                }
            }
            Ok((LoadedPatch::Strategic(sm), source))
        }
        (Err(_), Ok(js)) => Ok((LoadedPatch::Json(js), source)),
    }
}

/// kustomize's `jsonPatchFromBytes`.
fn decode_json_patch(text: &str) -> Result<JsonPatch> {
    if text.is_empty() {
        return Err(Error::patch("empty json patch operations"));
    }
    JsonPatch::decode(text)
}

/// Applies one `patches` entry.
pub fn apply_patch_entry(m: &mut ResMap, ldr: &Loader, p: &Patch) -> Result<()> {
    let (loaded, source) = load_patch(ldr, p)?;
    match loaded {
        LoadedPatch::Empty => Ok(()),
        LoadedPatch::Strategic(patches) => {
            if let Some(target) = &p.target {
                if patches.len() > 1 {
                    return Err(Error::patch(format!(
                        "Multiple Strategic-Merge Patches in one `patches` entry is not allowed to set `patches.target` field: {source}"
                    )));
                }
                let selected = m.select(target).map_err(|e| {
                    e.context(format!(
                        "unable to find patch target {:?} in `resources`",
                        target.to_string()
                    ))
                })?;
                return apply_smp_to(m, &selected, &patches[0]);
            }
            for patch in &patches {
                let id = patch.org_id();
                let i = m.index_by_any_id(&id).map_err(|e| {
                    e.context(format!(
                        "no resource matches strategic merge patch \"{id}\""
                    ))
                })?;
                if let Some(res) = m.get_mut(i) {
                    apply_smp(res, patch)?;
                }
            }
            Ok(())
        }
        LoadedPatch::Json(js) => {
            let Some(target) = &p.target else {
                return Err(Error::patch(format!(
                    "must specify a target for JSON patch {source}"
                )));
            };
            for i in m.select(target)? {
                if let Some(res) = m.get_mut(i) {
                    res.store_previous_id();
                    apply_json6902(res, &js)?;
                }
            }
            Ok(())
        }
    }
}

/// Applies `patchesStrategicMerge` entries (inline YAML or file paths).
pub fn apply_patches_strategic_merge(
    m: &mut ResMap,
    ldr: &Loader,
    entries: &[String],
) -> Result<()> {
    let mut loaded = Vec::new();
    for entry in entries {
        match parse_smp(entry) {
            Ok(p) => loaded.extend(p),
            Err(_) => {
                let text = ldr.load_string(entry)?;
                loaded.extend(parse_smp(&text).map_err(|e| e.context(entry.clone()))?);
            }
        }
    }
    if loaded.is_empty() {
        return Err(Error::patch(format!(
            "patch appears to be empty; files={entries:?}"
        )));
    }
    for patch in &loaded {
        let i = m.index_by_any_id(&patch.org_id())?;
        apply_smp_to(m, &[i], patch)?;
    }
    Ok(())
}

/// Applies a `patchesJson6902` entry.
pub fn apply_legacy_json6902(m: &mut ResMap, ldr: &Loader, p: &Patch) -> Result<()> {
    let target: Selector = p.target.clone().unwrap_or_default();
    if target.name.is_empty() {
        return Err(Error::patch("must specify the target name"));
    }
    if p.path.is_empty() && p.patch.is_empty() {
        return Err(Error::patch("empty file path and empty jsonOp"));
    }
    let text = if !p.path.is_empty() {
        if !p.patch.is_empty() {
            return Err(Error::patch("must specify a file path or jsonOp, not both"));
        }
        let t = ldr.load_string(&p.path)?;
        if t.is_empty() {
            return Err(Error::patch(format!(
                "patch file '{}' empty seems to be empty",
                p.path
            )));
        }
        t
    } else {
        p.patch.clone()
    };
    let js = JsonPatch::decode(&text).map_err(|e| e.context(format!("decoding {text}")))?;
    if js.is_empty() {
        return Err(Error::patch(format!(
            "patch appears to be empty; file={}, JsonOp={text}",
            p.path
        )));
    }
    for i in m.select(&target)? {
        if let Some(res) = m.get_mut(i) {
            apply_json6902(res, &js)?;
        }
    }
    Ok(())
}
