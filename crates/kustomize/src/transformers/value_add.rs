//! ValueAddTransformer: put one value (by default the kustomization
//! directory's name) at a field path of selected resources, optionally as
//! a part of a file path held there.

use serde_json::Value;

use crate::error::{Error, Result};
use crate::fieldpath::{self, Create};
use crate::fieldspec::{split_path, untagged_scalar};
use crate::resmap::ResMap;
use crate::resource::scalar_text;
use crate::selector::Selector;
use crate::transformers::namespace;

/// Where a ValueAddTransformer puts its value.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// The resources to change; all when `None`.
    pub selector: Option<Selector>,
    /// A `/`-separated path to the field.
    pub field_path: String,
    /// When positive, the value is inserted as a part of the file path the
    /// field holds, at this position (1 is first).
    pub file_path_position: i64,
}

/// Go's `filepath.Clean` on `/`-separated paths.
fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Join`: non-empty parts joined, then cleaned.
fn join(parts: &[String]) -> String {
    let kept: Vec<&str> = parts
        .iter()
        .map(String::as_str)
        .filter(|p| !p.is_empty())
        .collect();
    if kept.is_empty() {
        return String::new();
    }
    clean(&kept.join("/"))
}

/// kyaml's `filesys.PathSplit`: an absolute path starts with an empty part.
fn path_split(path: &str) -> Vec<String> {
    if path.is_empty() {
        return Vec::new();
    }
    let (dir, file) = match path.rfind('/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => ("", path),
    };
    if dir == "/" {
        if file.is_empty() {
            return vec![String::new()];
        }
        return vec![String::new(), file.to_string()];
    }
    let dir = dir.strip_suffix('/').unwrap_or(dir);
    if dir.is_empty() {
        return vec![file.to_string()];
    }
    let mut out = path_split(dir);
    out.push(file.to_string());
    out
}

/// kyaml's `filesys.PathJoin`.
fn path_join(parts: &[String]) -> String {
    match parts.split_first() {
        None => String::new(),
        Some((first, rest)) if first.is_empty() => format!("/{}", join(rest)),
        Some(_) => join(parts),
    }
}

/// kyaml's `filesys.InsertPathPart`: `part` inserted at `pos` (0 is first)
/// of `path`, an absolute path staying absolute.
pub fn insert_path_part(path: &str, pos: i64, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let parts = path_split(path);
    let mut pos = usize::try_from(pos.max(0))
        .unwrap_or(usize::MAX)
        .min(parts.len());
    if parts.first().is_some_and(String::is_empty) && pos < parts.len() {
        pos += 1;
    }
    let mut out: Vec<String> = parts[..pos].to_vec();
    out.push(part.to_string());
    out.extend_from_slice(&parts[pos..]);
    path_join(&out)
}

/// Applies the value to every target.
pub fn transform(m: &mut ResMap, value: &str, targets: &[Target]) -> Result<()> {
    for t in targets {
        let selected: Vec<usize> = match &t.selector {
            None => (0..m.len()).collect(),
            Some(s) => m.select(s)?,
        };
        for i in selected {
            let Some(res) = m.get_mut(i) else { continue };
            if t.field_path == "metadata/namespace" {
                namespace::set_namespace(res, value, &[], namespace::Options::default())?;
                continue;
            }
            let path = split_path(&t.field_path, '/');
            let mut root = Value::Object(std::mem::take(res.as_map_mut()));
            let result = fieldpath::match_apply(&mut root, &path, Some(Create::Scalar), &mut |n| {
                if n.is_object() || n.is_array() {
                    return Err(Error::transformer(format!(
                        "wrong node kind: expected ScalarNode but got {}",
                        crate::resource::value_kind(n)
                    )));
                }
                let new = if t.file_path_position > 0 {
                    let current = if n.is_null() {
                        String::new()
                    } else {
                        scalar_text(n)
                    };
                    insert_path_part(&current, t.file_path_position - 1, value)
                } else {
                    value.to_string()
                };
                *n = untagged_scalar(&new);
                Ok(())
            });
            if let Value::Object(obj) = root {
                *res.as_map_mut() = obj;
            }
            result?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_path_parts_as_kyaml() {
        for (old, pos, new) in [
            ("", 0, "PEACH"),
            ("/", 3, "/PEACH"),
            ("pie", 0, "PEACH/pie"),
            ("/pie", 0, "/PEACH/pie"),
            ("raw", 1, "raw/PEACH"),
            ("/raw", 9, "/raw/PEACH"),
            ("a/nice/warm/pie", 3, "a/nice/warm/PEACH/pie"),
            ("/a/nice/warm/pie", 3, "/a/nice/warm/PEACH/pie"),
        ] {
            assert_eq!(insert_path_part(old, pos, "PEACH"), new, "{old} at {pos}");
        }
    }
}
