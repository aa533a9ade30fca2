//! `replacements`: copy a value from one resource's field (or a literal)
//! into fields of selected resources.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::kustomization::{FieldOptions, Replacement, SourceSelector, TargetSelector};
use crate::loader::Loader;
use crate::resid::{Gvk, ResId};
use crate::resmap::ResMap;
use crate::resource::{Resource, scalar_text};
use crate::selector::Selector;
use crate::yaml::{ParseOptions, go_format, parse_single};

const DEFAULT_FIELD_PATH: &str = "metadata.name";

/// Loads `replacements` entries, reading `path:` files.
pub fn load(ldr: &Loader, entries: &[Replacement]) -> Result<Vec<Replacement>> {
    let mut out = Vec::new();
    for r in entries {
        if r.path.is_empty() {
            out.push(r.clone());
            continue;
        }
        if r.source.is_some() || !r.targets.is_empty() {
            return Err(Error::transformer(
                "cannot specify both path and inline replacement",
            ));
        }
        let text = ldr.load_string(&r.path)?;
        let value = parse_single(&text, ParseOptions::CONFIG).map_err(|e| Error::Yaml {
            path: ldr.root().join(&r.path),
            cause: e,
        })?;
        let decode = |v: Value| -> Result<Replacement> {
            let mut r: Replacement = crate::go_json::from_value_coercing(v)
                .map_err(|e| Error::transformer(format!("{}: {e}", r.path)))?;
            r.path.clear();
            Ok(r)
        };
        match value {
            Value::Array(items) => {
                for item in items {
                    out.push(decode(item)?);
                }
            }
            v @ Value::Object(_) => out.push(decode(v)?),
            other => {
                return Err(Error::transformer(format!(
                    "unsupported replacement type encountered within replacement path: {}",
                    crate::resource::value_kind(&other)
                )));
            }
        }
    }
    Ok(out)
}

/// Current id plus previous ids, with raw namespaces (kustomize's
/// `MakeResIds`).
fn res_ids(r: &Resource) -> Vec<ResId> {
    let cur = r.cur_id();
    let mut ids = vec![ResId::new(
        Gvk::unscoped(&cur.gvk.group, &cur.gvk.version, &cur.gvk.kind),
        cur.name,
        cur.namespace,
    )];
    ids.extend(r.prev_ids());
    ids
}

fn source_id(s: &SourceSelector) -> ResId {
    ResId::new(
        Gvk::unscoped(&s.group, &s.version, &s.kind),
        &s.name,
        &s.namespace,
    )
}

fn describe_source(s: &SourceSelector) -> String {
    let mut parts = vec![source_id(s).to_string()];
    if !s.field_path.is_empty() {
        parts.push(s.field_path.clone());
    }
    if let Some(o) = &s.options
        && (!o.delimiter.is_empty() || o.create)
    {
        parts.push(format!("{}({}), create={}", o.delimiter, o.index, o.create));
    }
    parts.join(":")
}

fn source_value(m: &ResMap, r: &Replacement) -> Result<Value> {
    if r.source_value.is_some() && r.source.is_some() {
        return Err(Error::transformer(
            "value and resource selectors are mutually exclusive",
        ));
    }
    if let Some(v) = &r.source_value {
        return Ok(crate::fieldspec::untagged_scalar(v));
    }
    let Some(src) = &r.source else {
        return Err(Error::transformer(
            "replacements must specify a source and at least one target",
        ));
    };
    let sel = source_id(src);
    let mut found: Option<&Resource> = None;
    for res in m.resources() {
        if res_ids(res).iter().any(|id| id.is_selected_by(&sel)) {
            if found.is_some() {
                return Err(Error::transformer(format!(
                    "multiple matches for selector {}",
                    describe_source(src)
                )));
            }
            found = Some(res);
        }
    }
    let Some(res) = found else {
        return Err(Error::transformer(format!(
            "nothing selected by {}",
            describe_source(src)
        )));
    };
    let fp = if src.field_path.is_empty() {
        DEFAULT_FIELD_PATH
    } else {
        &src.field_path
    };
    let path = fieldpath::smarter_split(fp, '.');
    let obj = res.to_value();
    let node = fieldpath::lookup(&obj, &path)
        .map_err(|e| e.context("error looking up replacement source"))?;
    let missing = match node {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    };
    let Some(node) = node.filter(|_| !missing) else {
        return Err(Error::transformer(format!(
            "fieldPath `{fp}` is missing for replacement source {}",
            source_id(src)
        )));
    };
    refine(src.options.as_ref(), node)
}

fn refine(options: Option<&FieldOptions>, node: &Value) -> Result<Value> {
    let Some(o) = options.filter(|o| !o.delimiter.is_empty()) else {
        return Ok(node.clone());
    };
    if node.is_object() || node.is_array() {
        return Err(Error::transformer(
            "delimiter option can only be used with scalar nodes",
        ));
    }
    let text = scalar_text(node);
    let parts: Vec<&str> = text.split(o.delimiter.as_str()).collect();
    if o.index < 0 || o.index as usize >= parts.len() {
        return Err(Error::transformer(format!(
            "options.index {} is out of bounds for value {text}",
            o.index
        )));
    }
    Ok(retyped(node, parts[o.index as usize]))
}

/// A scalar that keeps `like`'s type but takes new text (kyaml replaces
/// only the node's value).
fn retyped(like: &Value, text: &str) -> Value {
    match like {
        Value::String(_) => Value::String(text.to_string()),
        Value::Null => crate::fieldspec::untagged_scalar(text),
        _ => match crate::fieldspec::untagged_scalar(text) {
            v @ (Value::Number(_) | Value::Bool(_))
                if std::mem::discriminant(&v) == std::mem::discriminant(like) =>
            {
                v
            }
            // A number or boolean node given non-matching text: kyaml would
            // keep the tag and fail later; a string is the closest outcome.
            _ => Value::String(text.to_string()),
        },
    }
}

fn set_field_value(
    options: Option<&FieldOptions>,
    target: &mut Value,
    value: &Value,
) -> Result<()> {
    let mut value = value.clone();
    if let Some(o) = options.filter(|o| !o.delimiter.is_empty()) {
        if target.is_object() || target.is_array() {
            return Err(Error::transformer(
                "delimiter option can only be used with scalar nodes",
            ));
        }
        let target_text = scalar_text(target);
        let mut tv: Vec<String> = target_text
            .split(o.delimiter.as_str())
            .map(str::to_string)
            .collect();
        let v = scalar_text(&value);
        if o.index < 0 {
            tv.insert(0, v);
        } else if o.index as usize >= tv.len() {
            tv.push(v);
        } else {
            tv[o.index as usize] = v;
        }
        value = retyped(&value, &tv.join(&o.delimiter));
    }
    match target {
        Value::Object(_) | Value::Array(_) => *target = value,
        scalar => *scalar = retyped(scalar, &scalar_text(&value)),
    }
    Ok(())
}

fn selector_matches(sel: &Selector, id: &ResId) -> Result<bool> {
    let m = sel.compile()?;
    Ok(m.match_gvk(&id.gvk) && m.match_name(&id.name) && m.match_namespace(&id.namespace))
}

fn labels_and_annotations_match(res: &Resource, sel: &Selector) -> Result<bool> {
    let m = sel.compile()?;
    Ok(m.match_annotations(&res.annotations())? && m.match_labels(&res.labels())?)
}

/// kustomize's `setValueInStructuredData`: when a field along the path is a
/// string holding a JSON document, the rest of the path is followed inside
/// it and the string is re-encoded (compact, or indented like the original).
/// Returns false when the path holds no such document.
fn set_in_structured_data(
    obj: &mut Value,
    path: &[String],
    value: &Value,
    options: Option<&FieldOptions>,
    create: Option<Create>,
) -> bool {
    for split in 1..path.len() {
        let (head, rest) = path.split_at(split);
        let Ok(Some(Value::String(text))) = fieldpath::lookup(obj, head) else {
            continue;
        };
        let trimmed = text.trim_start();
        // Only JSON documents can be re-encoded exactly as kustomize does.
        if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
            return false;
        }
        let Ok(mut doc) = parse_single(text, ParseOptions::RESOURCE) else {
            return false;
        };
        let count = fieldpath::match_apply(&mut doc, rest, create, &mut |node| {
            set_field_value(options, node, value)
        });
        if !matches!(count, Ok(n) if n > 0) {
            return false;
        }
        let encoded = if text.contains('\n') && text.contains("  ") {
            go_format::go_json_indent(&doc)
        } else {
            go_format::go_json(&doc)
        };
        let mut done = false;
        let _ = fieldpath::match_apply(obj, head, None, &mut |node| {
            *node = Value::String(encoded.clone());
            done = true;
            Ok(())
        });
        return done;
    }
    false
}

fn copy_to_target(
    res: &mut Resource,
    value: &Value,
    t: &TargetSelector,
    field_paths: &[String],
) -> Result<()> {
    let create = t
        .options
        .as_ref()
        .is_some_and(|o| o.create)
        .then_some(match value {
            Value::Object(_) => Create::Mapping,
            Value::Array(_) => Create::Sequence,
            _ => Create::Scalar,
        });
    for fp in field_paths {
        let path = fieldpath::smarter_split(fp, '.');
        let mut obj = res.to_value();
        if set_in_structured_data(&mut obj, &path, value, t.options.as_ref(), create) {
            if let Value::Object(m) = obj {
                res.set_map(m);
            }
            continue;
        }
        let count = fieldpath::match_apply(&mut obj, &path, create, &mut |node| {
            set_field_value(t.options.as_ref(), node, value)
        });
        let what = if create.is_some() {
            format!("unable to find or create field {fp:?} in replacement target")
        } else {
            format!("unable to find field {fp:?} in replacement target")
        };
        match count {
            Err(e) => return Err(e.context(what)),
            Ok(0) => return Err(Error::transformer(what)),
            Ok(_) => {}
        }
        if let Value::Object(m) = obj {
            res.set_map(m);
        }
    }
    Ok(())
}

/// Applies replacements in order.
pub fn apply(m: &mut ResMap, replacements: &[Replacement]) -> Result<()> {
    for r in replacements {
        if (r.source_value.is_none() && r.source.is_none()) || r.targets.is_empty() {
            return Err(Error::transformer(
                "replacements must specify a source and at least one target",
            ));
        }
        let value = source_value(m, r)?;
        for t in &r.targets {
            let Some(select) = &t.select else {
                return Err(Error::transformer(
                    "target must specify resources to select",
                ));
            };
            let field_paths: Vec<String> = if t.field_paths.is_empty() {
                vec![DEFAULT_FIELD_PATH.to_string()]
            } else {
                t.field_paths.clone()
            };
            for i in 0..m.len() {
                let Some(res) = m.get_mut(i) else { continue };
                let ids = res_ids(res);
                if !labels_and_annotations_match(res, select)? {
                    continue;
                }
                let mut rejected = false;
                for rej in &t.reject {
                    if (!rej.annotation_selector.is_empty() || !rej.label_selector.is_empty())
                        && labels_and_annotations_match(res, rej)?
                    {
                        rejected = true;
                        break;
                    }
                    if !rej.id_is_empty() {
                        for id in &ids {
                            if selector_matches(rej, id)? {
                                rejected = true;
                                break;
                            }
                        }
                    }
                    if rejected {
                        break;
                    }
                }
                if rejected {
                    continue;
                }
                let mut selected = false;
                for id in &ids {
                    if selector_matches(select, id)? {
                        selected = true;
                        break;
                    }
                }
                if selected {
                    copy_to_target(res, &value, t, &field_paths)?;
                }
            }
        }
    }
    Ok(())
}
