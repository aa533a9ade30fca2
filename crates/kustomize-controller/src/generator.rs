//! Preparing the kustomization Flux builds: generating `kustomization.yaml`
//! for a directory of plain manifests, then writing the Kustomization's
//! `targetNamespace`, `namePrefix`/`nameSuffix`, `patches`, `images`,
//! `components` and `buildMetadata` into it.
//!
//! This works on the unpacked artifact (a private temporary directory) and
//! never reads or writes outside `root`.

use std::path::{Component, Path, PathBuf};

use api::kustomize::KustomizationSpec;
use kustomize::yaml::{ParseOptions, parse_single, parse_stream, to_yaml_document};
use serde_json::{Map, Value, json};

/// kustomize's file names for a kustomization, in its order of preference.
pub use kustomize::kustomization::FILE_NAMES as KUSTOMIZATION_FILE_NAMES;

/// Namespace written into a generated kustomization of an empty directory:
/// kustomize refuses an empty kustomization, and a namespace with no
/// resources builds to nothing.
const EMPTY_PLACEHOLDER_NAMESPACE: &str = "_placeholder";

/// Failures preparing the kustomization.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file, relative to the artifact root.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A YAML file of a directory without kustomization does not parse.
    #[error("failed to decode Kubernetes YAML from {path}: {reason}")]
    Decode {
        /// The file, relative to the artifact root.
        path: String,
        /// Why.
        reason: String,
    },
    /// The existing kustomization file cannot be read as YAML.
    #[error("invalid kustomization file {path}: {reason}")]
    Kustomization {
        /// The file, relative to the artifact root.
        path: String,
        /// Why.
        reason: String,
    },
    /// A spec field cannot be written into the kustomization.
    #[error("invalid {field}: {reason}")]
    Spec {
        /// The Kustomization field.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// Whether a kustomization or its generation was needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The directory had a kustomization file.
    Existing,
    /// A kustomization file listing the manifests was written.
    Generated,
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn io_error(root: &Path, path: &Path) -> impl FnOnce(std::io::Error) -> GenerateError {
    let path = relative(root, path);
    move |source| GenerateError::Io { path, source }
}

/// The kustomization file in `dir`, if any (a regular file, not a directory).
pub fn kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
}

/// Whether every document of a YAML file is a Kubernetes object; `None`
/// for a file without documents.
fn holds_objects(text: &str) -> Result<Option<bool>, String> {
    let documents = parse_stream(text, ParseOptions::RESOURCE).map_err(|err| err.to_string())?;
    let documents: Vec<&Value> = documents
        .iter()
        .filter(|doc| !doc.is_null() && doc.as_object().is_none_or(|map| !map.is_empty()))
        .collect();
    if documents.is_empty() {
        return Ok(None);
    }
    let is_object = |doc: &&&Value| {
        doc.get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
            && doc
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
    };
    let objects = documents.iter().filter(is_object).count();
    match objects {
        0 => Ok(Some(false)),
        n if n == documents.len() => Ok(Some(true)),
        _ => Err("some documents are not Kubernetes objects (apiVersion and kind)".into()),
    }
}

/// Lists the resources of a directory without kustomization, in path
/// order: every YAML file of Kubernetes objects, and every subdirectory
/// that has its own kustomization (without descending into it). YAML files
/// of other things (CI configs, `.sops.yaml`) are left out; a file that
/// does not parse is an error.
fn scan(
    root: &Path,
    dir: &Path,
    base: &Path,
    found: &mut Vec<String>,
) -> Result<(), GenerateError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io_error(root, dir))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io_error(root, dir))?;
    entries.sort();
    for path in entries {
        let file_type = std::fs::symlink_metadata(&path)
            .map_err(io_error(root, &path))?
            .file_type();
        let display = format!("./{}", relative(base, &path));
        if file_type.is_dir() {
            if kustomization_file(&path).is_some() {
                found.push(display);
            } else {
                scan(root, &path, base, found)?;
            }
            continue;
        }
        let is_yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if !file_type.is_file() || !is_yaml {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(io_error(root, &path))?;
        match holds_objects(&text) {
            Ok(Some(true)) => found.push(display),
            Ok(_) => {}
            Err(reason) => {
                return Err(GenerateError::Decode {
                    path: relative(root, &path),
                    reason,
                });
            }
        }
    }
    Ok(())
}

/// Writes `kustomization.yaml` into a directory that has none.
fn generate(root: &Path, dir: &Path) -> Result<PathBuf, GenerateError> {
    let mut resources = Vec::new();
    scan(root, dir, dir, &mut resources)?;
    let mut kustomization = Map::new();
    kustomization.insert(
        "apiVersion".into(),
        json!("kustomize.config.k8s.io/v1beta1"),
    );
    kustomization.insert("kind".into(), json!("Kustomization"));
    if resources.is_empty() {
        kustomization.insert("namespace".into(), json!(EMPTY_PLACEHOLDER_NAMESPACE));
    } else {
        kustomization.insert("resources".into(), json!(resources));
    }
    let path = dir.join(KUSTOMIZATION_FILE_NAMES[0]);
    std::fs::write(&path, to_yaml_document(&Value::Object(kustomization)))
        .map_err(io_error(root, &path))?;
    Ok(path)
}

/// A local path relative to the kustomization (not a URL or absolute path).
fn is_local_relative(path: &str) -> bool {
    let path = path.strip_prefix("file://").unwrap_or(path);
    if path.starts_with('/') || path.contains("://") || path.starts_with("git@") {
        return false;
    }
    // `github.com/owner/repo`: a host name as first element.
    let first = path.split('/').next().unwrap_or_default();
    !(first.contains('.')
        && first != "."
        && first != ".."
        && path.contains('/')
        && !first.ends_with(".yaml")
        && !first.ends_with(".yml"))
}

/// Joins a relative path lexically; `None` when it leaves `root`.
fn join_inside(root: &Path, dir: &Path, relative: &str) -> Option<PathBuf> {
    let mut joined = dir.to_path_buf();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) => joined.push(part),
            Component::ParentDir => {
                if !joined.pop() || !joined.starts_with(root) {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    joined.starts_with(root).then_some(joined)
}

fn list_mut<'a>(
    kustomization: &'a mut Map<String, Value>,
    key: &str,
) -> Result<&'a mut Vec<Value>, GenerateError> {
    let entry = kustomization
        .entry(key.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if entry.is_null() {
        *entry = Value::Array(Vec::new());
    }
    entry
        .as_array_mut()
        .ok_or_else(|| GenerateError::Kustomization {
            path: KUSTOMIZATION_FILE_NAMES[0].into(),
            reason: format!("{key} is not a list"),
        })
}

fn spec_value<T: serde::Serialize>(field: &'static str, value: &T) -> Result<Value, GenerateError> {
    serde_json::to_value(value).map_err(|err| GenerateError::Spec {
        field,
        reason: err.to_string(),
    })
}

/// Writes the Kustomization's build settings into a kustomization file.
fn overlay(
    kustomization: &mut Map<String, Value>,
    spec: &KustomizationSpec,
    root: &Path,
    dir: &Path,
) -> Result<(), GenerateError> {
    if let Some(namespace) = &spec.target_namespace {
        kustomization.insert("namespace".into(), json!(namespace));
    }
    if let Some(prefix) = &spec.name_prefix {
        kustomization.insert("namePrefix".into(), json!(prefix));
    }
    if let Some(suffix) = &spec.name_suffix {
        kustomization.insert("nameSuffix".into(), json!(suffix));
    }
    if let Some(patches) = spec.patches.as_deref().filter(|p| !p.is_empty()) {
        let values = patches
            .iter()
            .map(|patch| spec_value("patches", patch))
            .collect::<Result<Vec<_>, _>>()?;
        list_mut(kustomization, "patches")?.extend(values);
    }
    if let Some(images) = spec.images.as_deref().filter(|i| !i.is_empty()) {
        for image in images {
            let value = spec_value("images", image)?;
            let list = list_mut(kustomization, "images")?;
            // An image of the same name in the file is replaced.
            match list.iter_mut().find(|existing| {
                existing.get("name").and_then(Value::as_str) == Some(image.name.as_str())
            }) {
                Some(existing) => *existing = value,
                None => list.push(value),
            }
        }
    }
    if let Some(components) = spec.components.as_deref().filter(|c| !c.is_empty()) {
        let ignore_missing = spec.ignore_missing_components.unwrap_or(false);
        let mut kept = Vec::new();
        for component in components {
            if is_local_relative(component) {
                let Some(path) = join_inside(root, dir, component) else {
                    return Err(GenerateError::Spec {
                        field: "components",
                        reason: format!("{component} is outside the source"),
                    });
                };
                if ignore_missing && !path.exists() {
                    continue;
                }
            }
            kept.push(json!(component));
        }
        list_mut(kustomization, "components")?.extend(kept);
    }
    if let Some(options) = spec.build_metadata.as_deref().filter(|o| !o.is_empty()) {
        let list = list_mut(kustomization, "buildMetadata")?;
        for option in options {
            let value = spec_value("buildMetadata", option)?;
            if !list.contains(&value) {
                list.push(value);
            }
        }
    }
    Ok(())
}

/// Prepares `dir` (inside the unpacked artifact `root`) for the build:
/// generates a kustomization when there is none, then writes the spec's
/// build settings into it.
pub fn prepare(root: &Path, dir: &Path, spec: &KustomizationSpec) -> Result<Action, GenerateError> {
    let (path, action) = match kustomization_file(dir) {
        Some(path) => (path, Action::Existing),
        None => (generate(root, dir)?, Action::Generated),
    };
    let text = std::fs::read_to_string(&path).map_err(io_error(root, &path))?;
    let invalid = |reason: String| GenerateError::Kustomization {
        path: relative(root, &path),
        reason,
    };
    let mut kustomization =
        match parse_single(&text, ParseOptions::CONFIG).map_err(|err| invalid(err.to_string()))? {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            _ => return Err(invalid("not a mapping".into())),
        };
    let before = kustomization.clone();
    overlay(&mut kustomization, spec, root, dir)?;
    if kustomization != before {
        std::fs::write(&path, to_yaml_document(&Value::Object(kustomization)))
            .map_err(io_error(root, &path))?;
    }
    Ok(action)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use api::kustomize::KustomizationSpec;

    use super::*;

    fn spec(extra: Value) -> KustomizationSpec {
        let mut base = json!({
            "interval": "5m", "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "repo"},
        });
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        serde_json::from_value(base).expect("spec")
    }

    fn write(root: &Path, path: &str, text: &str) {
        let full = root.join(path);
        fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        fs::write(full, text).expect("write");
    }

    fn read_kustomization(dir: &Path) -> Value {
        parse_single(
            &fs::read_to_string(dir.join("kustomization.yaml")).expect("read"),
            ParseOptions::CONFIG,
        )
        .expect("yaml")
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn generates_a_kustomization_for_plain_manifests() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        write(root, "apps/b.yaml", &CM.replace("name: a", "name: b"));
        write(root, "apps/a.yml", CM);
        write(
            root,
            "apps/nested/c.yaml",
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: s\n---\n",
        );
        write(
            root,
            "apps/base/kustomization.yaml",
            "resources: [ignored.yaml]\nnamePrefix: base-\n",
        );
        write(root, "apps/base/ignored.yaml", CM);
        write(root, "apps/.gitlab-ci.yml", "stages: [build]\n");
        write(root, "apps/.sops.yaml", "creation_rules:\n  - age: age1x\n");
        write(root, "apps/notes.txt", "not yaml: [");
        write(root, "apps/empty.yaml", "# nothing\n");
        let dir = root.join("apps");
        assert_eq!(
            prepare(root, &dir, &spec(json!({}))).expect("prepare"),
            Action::Generated
        );
        assert_eq!(
            read_kustomization(&dir)["resources"],
            json!(["./a.yml", "./b.yaml", "./base", "./nested/c.yaml"])
        );
        let out = kustomize::build(root, &dir, kustomize::BuildOptions::default()).expect("build");
        assert_eq!(out.resources.len(), 4);
    }

    #[test]
    fn an_unparsable_manifest_is_an_error_naming_the_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        write(tmp.path(), "bad.yaml", "kind: [unclosed\n");
        let err = prepare(tmp.path(), tmp.path(), &spec(json!({}))).expect_err("bad yaml");
        assert!(
            err.to_string()
                .starts_with("failed to decode Kubernetes YAML from bad.yaml"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_directory_builds_to_nothing() {
        let tmp = tempfile::tempdir().expect("tmp");
        prepare(tmp.path(), tmp.path(), &spec(json!({}))).expect("prepare");
        assert_eq!(
            read_kustomization(tmp.path())["namespace"],
            json!("_placeholder")
        );
        let out = kustomize::build(tmp.path(), tmp.path(), kustomize::BuildOptions::default())
            .expect("build");
        assert!(out.resources.is_empty());
    }

    #[test]
    fn spec_settings_are_written_into_an_existing_kustomization() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path();
        write(
            root,
            "app/kustomization.yaml",
            "resources: [deploy.yaml]\nimages:\n- name: nginx\n  newTag: '1.0'\n- name: redis\n  newTag: '6'\ncomponents: [../components/a]\n",
        );
        write(
            root,
            "app/deploy.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx\n",
        );
        write(
            root,
            "components/a/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonLabels:\n  comp: a\n",
        );
        write(
            root,
            "components/b/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  comp: b\n",
        );
        let dir = root.join("app");
        let spec = spec(json!({
            "targetNamespace": "prod", "namePrefix": "p-", "nameSuffix": "-s",
            "images": [{"name": "nginx", "newTag": "1.25"}, {"name": "busybox", "newName": "alpine"}],
            "patches": [{"patch": "- op: add\n  path: /metadata/labels/patched\n  value: 'yes'\n", "target": {"kind": "Deployment"}}],
            "components": ["../components/b", "../components/missing"],
            "ignoreMissingComponents": true,
            "buildMetadata": ["originAnnotations"],
        }));
        assert_eq!(
            prepare(root, &dir, &spec).expect("prepare"),
            Action::Existing
        );
        let k = read_kustomization(&dir);
        assert_eq!(k["namespace"], json!("prod"));
        assert_eq!(
            k["images"],
            json!([
                {"name": "nginx", "newTag": "1.25"},
                {"name": "redis", "newTag": "6"},
                {"name": "busybox", "newName": "alpine"},
            ])
        );
        assert_eq!(
            k["components"],
            json!(["../components/a", "../components/b"])
        );
        assert_eq!(k["buildMetadata"], json!(["originAnnotations"]));

        let out = kustomize::build(
            root,
            &dir,
            kustomize::BuildOptions {
                load_restrictor: kustomize::LoadRestrictor::None,
                ..Default::default()
            },
        )
        .expect("build");
        let deploy = out.resources.resources()[0].to_value();
        assert_eq!(deploy["metadata"]["name"], json!("p-web-s"));
        assert_eq!(deploy["metadata"]["namespace"], json!("prod"));
        assert_eq!(
            deploy["metadata"]["labels"],
            json!({"comp": "a", "patched": "yes"})
        );
        assert_eq!(deploy["metadata"]["annotations"]["comp"], json!("b"));
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["image"],
            json!("nginx:1.25")
        );
    }

    #[test]
    fn missing_components_fail_unless_ignored_and_may_not_leave_the_root() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().join("src");
        write(&root, "kustomization.yaml", "resources: []\nnamespace: x\n");
        prepare(&root, &root, &spec(json!({"components": ["missing"]}))).expect("kept");
        assert_eq!(read_kustomization(&root)["components"], json!(["missing"]));
        let err = prepare(&root, &root, &spec(json!({"components": ["../../etc"]})))
            .expect_err("outside");
        assert!(err.to_string().contains("outside the source"), "{err}");
    }

    #[test]
    fn local_paths_are_told_from_remote_ones() {
        for (path, local) in [
            ("foobar.yaml", true),
            ("./foobar.yaml", true),
            ("file://foobar.yaml", true),
            ("../components/a", true),
            ("file:///foobar.yaml", false),
            ("/foobar.yaml", false),
            ("https://github.com/owner/repo", false),
            ("git@github.com:owner/repo", false),
            ("ssh://git@github.com/owner/repo", false),
            ("github.com/owner/repo", false),
        ] {
            assert_eq!(is_local_relative(path), local, "{path}");
        }
    }
}
