//! `buildMetadata: [originAnnotations, transformerAnnotations]`: where each
//! resource came from (`config.kubernetes.io/origin`) and which built-in
//! transformers ran over it (`alpha.config.kubernetes.io/transformations`).

use std::path::{Component, Path, PathBuf};

use crate::remote::RepoSpec;
use crate::resmap::ResMap;
use crate::resource::{ORIGIN_ANNOTATION, TRANSFORMATIONS_ANNOTATION};

/// A resource's origin: a file path relative to the top kustomization, or
/// the built-in generator/transformer and the kustomization configuring it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The file, relative to the top kustomization (or to the remote
    /// repository it came from); empty for a built-in.
    pub path: String,
    /// The remote repository it came from (its clone URL), if any.
    pub repo: String,
    /// The reference of that repository (`?ref=`), if any.
    pub reference: String,
    /// The kustomization file configuring the built-in generator or transformer.
    pub configured_in: String,
    /// The built-in's kind (e.g. `PatchTransformer`).
    pub configured_by_kind: String,
    /// The name of the plugin config that configured it (plugins listed
    /// in `generators:`/`transformers:`; empty for kustomization fields).
    pub configured_by_name: String,
    /// The namespace of that plugin config, if any.
    pub configured_by_namespace: String,
}

/// Go's `filepath.Join`: joins and cleans lexically.
fn join(base: &str, rel: &str) -> String {
    let joined = Path::new(base).join(rel);
    let mut out: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else {
                    out.push("..".into());
                }
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str().to_string_lossy().into_owned()),
        }
    }
    let p: PathBuf = out.iter().collect();
    p.to_string_lossy().into_owned()
}

impl Origin {
    /// The origin of something `path` below this one; a remote repository
    /// URL starts a new origin in that repository.
    pub fn append(&self, path: &str) -> Origin {
        if let Ok(repo) = RepoSpec::parse(path) {
            return Origin {
                path: repo.origin_path(),
                repo: repo.clone_url(),
                reference: repo.reference.clone().unwrap_or_default(),
                ..self.clone()
            };
        }
        Origin {
            path: join(&self.path, path),
            ..self.clone()
        }
    }

    /// The origin of a built-in generator or transformer configured in the
    /// kustomization file `file` of this directory.
    pub fn builtin(&self, file: &str, kind: &str) -> Origin {
        Origin {
            path: String::new(),
            repo: self.repo.clone(),
            reference: self.reference.clone(),
            configured_in: join(&self.path, file),
            configured_by_kind: kind.to_string(),
            ..Origin::default()
        }
    }

    /// The origin of a builtin plugin configured by the plugin config
    /// `kind`/`name`/`namespace` whose own origin is `self` (kustomize's
    /// `OriginFromCustomPlugin`).
    pub fn plugin(&self, kind: &str, name: &str, namespace: &str) -> Origin {
        Origin {
            path: String::new(),
            repo: self.repo.clone(),
            reference: self.reference.clone(),
            configured_in: self.path.clone(),
            configured_by_kind: kind.to_string(),
            configured_by_name: name.to_string(),
            configured_by_namespace: namespace.to_string(),
        }
    }

    /// Reads back the `path`/`repo`/`ref` of an origin annotation written
    /// by [`Origin::to_yaml`].
    pub fn from_annotation(text: &str) -> Origin {
        let mut o = Origin::default();
        for line in text.lines() {
            if let Some(v) = line.strip_prefix("path: ") {
                o.path = v.to_string();
            } else if let Some(v) = line.strip_prefix("repo: ") {
                o.repo = v.to_string();
            } else if let Some(v) = line.strip_prefix("ref: ") {
                o.reference = v.to_string();
            }
        }
        o
    }

    /// The annotation text (kyaml's YAML rendering of the origin).
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        if !self.path.is_empty() {
            out.push_str(&format!("path: {}\n", self.path));
        }
        if !self.repo.is_empty() {
            out.push_str(&format!("repo: {}\n", self.repo));
        }
        if !self.reference.is_empty() {
            out.push_str(&format!("ref: {}\n", self.reference));
        }
        if !self.configured_in.is_empty() {
            out.push_str(&format!("configuredIn: {}\n", self.configured_in));
        }
        if !self.configured_by_kind.is_empty() {
            out.push_str(&format!(
                "configuredBy:\n  apiVersion: builtin\n  kind: {}\n",
                self.configured_by_kind
            ));
            if !self.configured_by_name.is_empty() {
                out.push_str(&format!("  name: {}\n", self.configured_by_name));
            }
            if !self.configured_by_namespace.is_empty() {
                out.push_str(&format!("  namespace: {}\n", self.configured_by_namespace));
            }
        }
        out
    }

    /// The same as a list item of the transformations annotation.
    fn to_list_item(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.to_yaml().lines().enumerate() {
            out.push_str(if i == 0 { "- " } else { "  " });
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// Sets the origin on resources that have none yet.
pub fn add_origin(m: &mut ResMap, origin: &Origin) {
    let text = origin.to_yaml();
    for r in m.resources_mut() {
        if !r.annotations().contains_key(ORIGIN_ANNOTATION) {
            r.set_annotation(ORIGIN_ANNOTATION, &text);
        }
    }
}

/// Records that a transformer ran: resources without an origin take the
/// transformer as their origin, the others list it as a transformation.
pub fn add_transformation(m: &mut ResMap, origin: &Origin) {
    for r in m.resources_mut() {
        let ann = r.annotations();
        if !ann.contains_key(ORIGIN_ANNOTATION) {
            r.set_annotation(ORIGIN_ANNOTATION, &origin.to_yaml());
            continue;
        }
        let mut list = ann
            .get(TRANSFORMATIONS_ANNOTATION)
            .cloned()
            .unwrap_or_default();
        list.push_str(&origin.to_list_item());
        let mut ann = ann;
        ann.insert(TRANSFORMATIONS_ANNOTATION.to_string(), list);
        r.set_annotations(&ann);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kyaml() {
        let top = Origin::default();
        let base = top.append("../base/");
        assert_eq!(base.path, "../base");
        assert_eq!(base.append("./s.yaml").to_yaml(), "path: ../base/s.yaml\n");
        let t = top
            .append("base")
            .builtin("kustomization.yaml", "LabelTransformer");
        assert_eq!(
            t.to_list_item(),
            "- configuredIn: base/kustomization.yaml\n  configuredBy:\n    apiVersion: builtin\n    kind: LabelTransformer\n"
        );
    }
}
