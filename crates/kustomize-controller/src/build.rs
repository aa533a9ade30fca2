//! The build of one reconciliation, from an unpacked artifact to the
//! objects to apply: prepare the kustomization, decrypt generator sources,
//! `kustomize build` (never reading outside the artifact), then per object
//! decrypt and substitute, and finally add `commonMetadata`.

use std::path::{Component, Path, PathBuf};

use api::kustomize::KustomizationSpec;
use serde_json::{Map, Value};

use crate::decrypt::{self, DecryptError, Decryptor};
use crate::generator::{self, GenerateError};
use crate::postbuild::{self, PostBuildError, Variables};

/// Why a build failed. [`BuildError::reason`] gives the Flux condition reason.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// `spec.path` does not exist in the artifact.
    #[error("kustomization path not found: {path}: no such directory in the artifact")]
    PathNotFound {
        /// The path as given.
        path: String,
    },
    /// The kustomization could not be generated or overlaid.
    #[error("failed to generate kustomization.yaml: {0}")]
    Generate(#[from] GenerateError),
    /// Generator sources could not be decrypted.
    #[error("error decrypting sources: {0}")]
    DecryptSources(#[source] Box<DecryptError>),
    /// kustomize failed.
    #[error("kustomize build failed: {0}")]
    Kustomize(String),
    /// A built object lacks apiVersion, kind or name.
    #[error("failed to decode Kubernetes apiVersion, kind and name from: {0}")]
    InvalidObject(String),
    /// An object could not be decrypted.
    #[error("decryption failed for '{name}': {source}")]
    Decrypt {
        /// The object's name.
        name: String,
        /// The cause.
        #[source]
        source: Box<DecryptError>,
    },
    /// An encrypted Secret without decryption configured.
    #[error(transparent)]
    EncryptedWithoutDecryption(Box<DecryptError>),
    /// Variable substitution failed for an object.
    #[error("post build failed for '{name}': {source}")]
    PostBuild {
        /// The object's name.
        name: String,
        /// The cause.
        #[source]
        source: PostBuildError,
    },
    /// The substitution variables are invalid.
    #[error("post build failed: {0}")]
    Variables(#[source] PostBuildError),
}

impl BuildError {
    /// The Ready condition reason Flux uses for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            BuildError::PathNotFound { .. } => "ArtifactFailed",
            _ => "BuildFailed",
        }
    }
}

/// What the build needs besides the artifact.
pub struct BuildInput<'a> {
    /// The unpacked artifact; nothing outside it is read.
    pub root: &'a Path,
    /// The Kustomization's spec (`path` and the build settings).
    pub spec: &'a KustomizationSpec,
    /// Keys for `spec.decryption`; `None` when decryption is not configured.
    pub decryptor: Option<&'a Decryptor>,
    /// Variables for `spec.postBuild`; `None` when post-build is not configured.
    pub variables: Option<&'a Variables>,
    /// Undefined variables without default are errors (`StrictPostBuildSubstitutions`).
    pub strict_substitution: bool,
    /// Whether remote bases are fetched (`--no-remote-bases`).
    pub remote: kustomize::RemoteAccess,
}

/// Joins `spec.path` under the root, clamping `..` at the root as Flux's
/// secure join does.
fn build_dir(root: &Path, path: Option<&str>) -> PathBuf {
    let mut dir = root.to_path_buf();
    for component in Path::new(path.unwrap_or("")).components() {
        match component {
            Component::Normal(part) => dir.push(part),
            Component::ParentDir => {
                if dir != root {
                    dir.pop();
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    dir
}

fn name_of(object: &Map<String, Value>) -> &str {
    object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn has_identity(object: &Map<String, Value>) -> bool {
    let non_empty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    non_empty(object.get("apiVersion"))
        && non_empty(object.get("kind"))
        && !name_of(object).is_empty()
}

/// Sets `commonMetadata` labels and annotations on every object (not on
/// templates inside them), overriding values of the same key.
pub fn set_common_metadata(objects: &mut [Map<String, Value>], spec: &KustomizationSpec) {
    let Some(common) = &spec.common_metadata else {
        return;
    };
    for object in objects {
        let metadata = object
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Some(metadata) = metadata.as_object_mut() else {
            continue;
        };
        for (field, entries) in [
            ("labels", &common.labels),
            ("annotations", &common.annotations),
        ] {
            let Some(entries) = entries.as_ref().filter(|e| !e.is_empty()) else {
                continue;
            };
            let map = metadata
                .entry(field)
                .or_insert_with(|| Value::Object(Map::new()));
            if !map.is_object() {
                *map = Value::Object(Map::new());
            }
            if let Some(map) = map.as_object_mut() {
                for (key, value) in entries {
                    map.insert(key.clone(), Value::String(value.clone()));
                }
            }
        }
    }
}

/// Runs kustomize, turning a panic into an error as Flux does: the build
/// reads user input, and one bad repository must not stop the controller.
fn kustomize_build(
    root: &Path,
    dir: &Path,
    remote: kustomize::RemoteAccess,
) -> Result<Vec<Map<String, Value>>, BuildError> {
    let options = kustomize::BuildOptions {
        load_restrictor: kustomize::LoadRestrictor::None,
        remote,
        // Flux's krusty.Options leave Reorder empty, which is neither
        // "legacy" nor "unspecified": resources stay in the order they were
        // read (a kustomization's sortOptions still apply). The digest
        // `.status.history` keys states by is of this output, so a legacy
        // sort would record a new history entry for every Kustomization
        // taken over from Flux. Application order is the apply's own.
        reorder: kustomize::Reorder::None,
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        kustomize::build(root, dir, options)
    }))
    .map_err(|_| BuildError::Kustomize("recovered from kustomize build panic".into()))?;
    let output = result.map_err(|err| BuildError::Kustomize(err.to_string()))?;
    Ok(output
        .resources
        .into_resources()
        .into_iter()
        .filter_map(|resource| match resource.into_value() {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .collect())
}

/// Builds the objects of a Kustomization from its unpacked artifact.
pub fn build(input: &BuildInput<'_>) -> Result<Vec<Map<String, Value>>, BuildError> {
    let dir = build_dir(input.root, input.spec.path.as_deref());
    if !dir.is_dir() {
        return Err(BuildError::PathNotFound {
            path: input.spec.path.clone().unwrap_or_default(),
        });
    }
    generator::prepare(input.root, &dir, input.spec)?;
    if let Some(decryptor) = input.decryptor {
        decryptor
            .decrypt_sources(input.root, &dir)
            .map_err(|err| BuildError::DecryptSources(Box::new(err)))?;
    }
    let mut objects = kustomize_build(input.root, &dir, input.remote.clone())?;

    let variables = match input.variables {
        Some(vars) => {
            vars.validate().map_err(BuildError::Variables)?;
            let always = input
                .spec
                .post_build
                .as_ref()
                .and_then(|p| p.substitute_strategy)
                == Some(api::kustomize::SubstituteStrategy::Always);
            (always || !vars.is_empty()).then_some(vars)
        }
        None => None,
    };
    for object in objects.iter_mut() {
        if !has_identity(object) {
            return Err(BuildError::InvalidObject(
                serde_json::to_string(object).unwrap_or_default(),
            ));
        }
        if let Some(decryptor) = input.decryptor
            && let Some(plain) =
                decryptor
                    .decrypt_object(object)
                    .map_err(|source| BuildError::Decrypt {
                        name: name_of(object).to_owned(),
                        source: Box::new(source),
                    })?
        {
            *object = plain;
        }
        if let Some(vars) = variables
            && let Some(substituted) =
                postbuild::substitute(object, vars, input.strict_substitution).map_err(
                    |source| BuildError::PostBuild {
                        name: name_of(object).to_owned(),
                        source,
                    },
                )?
        {
            *object = substituted;
        }
    }
    decrypt::refuse_encrypted(&objects)
        .map_err(|err| BuildError::EncryptedWithoutDecryption(Box::new(err)))?;
    set_common_metadata(&mut objects, input.spec);
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, text).expect("write");
    }

    fn input<'a>(
        root: &'a Path,
        spec: &'a KustomizationSpec,
        vars: Option<&'a Variables>,
    ) -> BuildInput<'a> {
        BuildInput {
            root,
            spec,
            decryptor: None,
            variables: vars,
            strict_substitution: true,
            remote: kustomize::RemoteAccess::default(),
        }
    }

    #[test]
    fn paths_are_clamped_to_the_root() {
        let root = Path::new("/tmp/artifact");
        assert_eq!(build_dir(root, Some("./apps/prod")), root.join("apps/prod"));
        assert_eq!(build_dir(root, Some("../../etc")), root.join("etc"));
        assert_eq!(build_dir(root, Some("/abs/x")), root.join("abs/x"));
        assert_eq!(build_dir(root, None), root);
    }

    #[test]
    fn builds_plain_manifests_with_substitution_and_common_metadata() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        write(
            &root,
            "deploy/app.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: ${replicas:=1}\n  template:\n    metadata:\n      labels:\n        app: web\n",
        );
        write(
            &root,
            "deploy/raw.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\n  annotations:\n    kustomize.toolkit.fluxcd.io/substitute: disabled\ndata:\n  script: echo ${HOME}\n",
        );
        let spec = spec(json!({
            "path": "./deploy", "targetNamespace": "apps",
            "postBuild": {"substitute": {"replicas": "3"}},
            "commonMetadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
        }));
        let mut vars = Variables::new();
        vars.extend([("replicas", "3")]);
        let objects = build(&input(&root, &spec, Some(&vars))).expect("build");
        let deploy = objects
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("deployment");
        assert_eq!(deploy["spec"]["replicas"], json!(3));
        assert_eq!(deploy["metadata"]["namespace"], json!("apps"));
        assert_eq!(deploy["metadata"]["labels"], json!({"team": "a"}));
        assert_eq!(
            deploy["spec"]["template"]["metadata"]["labels"],
            json!({"app": "web"})
        );
        let raw = objects
            .iter()
            .find(|o| o["kind"] == "ConfigMap")
            .expect("configmap");
        assert_eq!(raw["data"]["script"], json!("echo ${HOME}"));
        assert_eq!(raw["metadata"]["annotations"]["note"], json!("x"));
    }

    #[test]
    fn substitution_runs_only_with_variables_unless_always() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        write(
            &root,
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${a:=default}\n",
        );
        let empty = Variables::new();
        let with_vars = spec(json!({"postBuild": {}}));
        let objects = build(&input(&root, &with_vars, Some(&empty))).expect("build");
        assert_eq!(objects[0]["data"]["a"], json!("${a:=default}"));
        let always = spec(json!({"postBuild": {"substituteStrategy": "Always"}}));
        let tmp2 = tempfile::tempdir().expect("tmp");
        let root2 = tmp2.path().canonicalize().expect("canonical");
        write(
            &root2,
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: ${a:=default}\n",
        );
        let objects = build(&input(&root2, &always, Some(&empty))).expect("build");
        assert_eq!(objects[0]["data"]["a"], json!("default"));
    }

    #[test]
    fn failures_carry_flux_reasons_and_messages() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        let missing = spec(json!({"path": "./nope"}));
        let err = build(&input(&root, &missing, None)).expect_err("missing path");
        assert_eq!(err.reason(), "ArtifactFailed");
        assert!(
            err.to_string().starts_with("kustomization path not found"),
            "{err}"
        );

        write(&root, "k/kustomization.yaml", "resources: [missing.yaml]\n");
        let err = build(&input(&root, &spec(json!({"path": "k"})), None)).expect_err("kustomize");
        assert_eq!(err.reason(), "BuildFailed");
        assert!(
            err.to_string().starts_with("kustomize build failed: "),
            "{err}"
        );

        write(
            &root,
            "v/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\ndata:\n  a: ${undefined_var}\n",
        );
        let mut vars = Variables::new();
        vars.extend([("other", "x")]);
        let err = build(&input(
            &root,
            &spec(json!({"path": "v", "postBuild": {}})),
            Some(&vars),
        ))
        .expect_err("strict");
        assert_eq!(
            err.to_string(),
            "post build failed for 'cm': variable substitution failed: variable not set (strict mode): \"undefined_var\""
        );
    }

    #[test]
    fn encrypted_secrets_need_decryption() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        let secret = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../sops/tests/fixtures/encrypted/secret.yaml"),
        )
        .expect("fixture");
        write(&root, "secret.yaml", &secret);
        let err = build(&input(&root, &spec(json!({})), None)).expect_err("encrypted");
        assert!(
            err.to_string()
                .contains("is SOPS encrypted, configuring decryption is required"),
            "{err}"
        );
    }
}
