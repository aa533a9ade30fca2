//! Post-rendering of a release's manifests between helm and the cluster:
//! the HelmRelease's kustomize `postRenderers` (patches and images, through
//! ferroflux's native kustomize), then `commonMetadata`, then the origin
//! labels `helm.toolkit.fluxcd.io/name` and `/namespace` Flux puts on every
//! object of a release.
//!
//! Helm v4 accepts post-renderers only as plugins, so the controller gives
//! helm a private plugin ([`PLUGIN_NAME`]) whose command is the controller's
//! own binary in `post-render` mode: helm pipes the rendered manifests
//! through it and stores and applies what comes out, so the release in
//! Helm's storage is the post-rendered one, as with Flux. The plugin reads
//! its instructions ([`PostRenderSpec`]) from a file named in its argument.

use std::collections::BTreeMap;
use std::path::Path;

use api::helm::{Kustomize, PostRenderStrategy};
use api::meta::CommonMetadata;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Name of the post-renderer plugin helm is told to use.
pub const PLUGIN_NAME: &str = "ferroflux-postrender";
/// Label naming the HelmRelease an object belongs to.
pub const ORIGIN_NAME_LABEL: &str = "helm.toolkit.fluxcd.io/name";
/// Label naming the namespace of the HelmRelease an object belongs to.
pub const ORIGIN_NAMESPACE_LABEL: &str = "helm.toolkit.fluxcd.io/namespace";
/// Annotation marking a Helm hook.
const HOOK_ANNOTATION: &str = "helm.sh/hook";

/// Why post-rendering failed.
#[derive(Debug, thiserror::Error)]
pub enum PostRenderError {
    /// The manifests or the spec could not be read.
    #[error("post-render input: {0}")]
    Input(String),
    /// A kustomize post-renderer failed.
    #[error("kustomize post-render: {0}")]
    Kustomize(String),
    /// Local file trouble.
    #[error("post-render: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What to do to a release's manifests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostRenderSpec {
    /// The HelmRelease (`name`, `namespace`) whose origin labels to add.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// `spec.commonMetadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// The kustomize post-renderers, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kustomize: Vec<Kustomize>,
    /// Whether hooks are post-rendered: not at all, with the other objects,
    /// or in a pass of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<PostRenderStrategy>,
}

/// A HelmRelease's identity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
}

impl PostRenderSpec {
    /// The spec of a HelmRelease.
    pub fn for_release(name: &str, namespace: &str, spec: &api::helm::HelmReleaseSpec) -> Self {
        Self {
            origin: Some(Origin {
                name: name.to_string(),
                namespace: namespace.to_string(),
            }),
            common_metadata: spec.common_metadata.clone(),
            kustomize: spec
                .post_renderers
                .iter()
                .flatten()
                .filter_map(|renderer| renderer.kustomize.clone())
                .collect(),
            strategy: spec.post_render_strategy,
        }
    }

    /// Digest of the post-renderers (Flux's `observedPostRenderersDigest`):
    /// a change of them must produce a new release.
    pub fn renderers_digest(&self) -> String {
        let renderers = serde_json::to_vec(&self.kustomize).unwrap_or_default();
        runtime::artifact::sha256_digest(&renderers)
    }

    /// Digest of the common metadata (`observedCommonMetadataDigest`).
    pub fn common_metadata_digest(&self) -> String {
        let metadata = serde_json::to_vec(&self.common_metadata).unwrap_or_default();
        runtime::artifact::sha256_digest(&metadata)
    }
}

/// Post-renders a multi-document YAML stream.
pub fn post_render(manifests: &str, spec: &PostRenderSpec) -> Result<String, PostRenderError> {
    let documents =
        kustomize::yaml::parse_stream(manifests, kustomize::yaml::ParseOptions::RESOURCE)
            .map_err(|err| PostRenderError::Input(err.to_string()))?;
    let documents: Vec<Value> = documents.into_iter().filter(|d| !d.is_null()).collect();
    let strategy = spec.strategy.unwrap_or(PostRenderStrategy::Combined);
    let (hooks, objects): (Vec<Value>, Vec<Value>) = match strategy {
        PostRenderStrategy::Combined => (Vec::new(), documents),
        PostRenderStrategy::Nohooks | PostRenderStrategy::Separate => {
            documents.into_iter().partition(is_hook)
        }
    };
    let mut rendered = render_set(objects, spec)?;
    match strategy {
        PostRenderStrategy::Nohooks => rendered.extend(hooks),
        PostRenderStrategy::Separate => rendered.extend(render_set(hooks, spec)?),
        PostRenderStrategy::Combined => {}
    }
    Ok(kustomize::yaml::to_yaml_stream(rendered.iter()))
}

/// Runs the kustomize post-renderers, then the metadata ones, over one set.
fn render_set(
    mut objects: Vec<Value>,
    spec: &PostRenderSpec,
) -> Result<Vec<Value>, PostRenderError> {
    if objects.is_empty() {
        return Ok(objects);
    }
    for renderer in &spec.kustomize {
        objects = kustomize_pass(objects, renderer)?;
    }
    let mut labels = BTreeMap::new();
    let mut annotations = BTreeMap::new();
    if let Some(common) = &spec.common_metadata {
        labels.extend(common.labels.clone().unwrap_or_default());
        annotations.extend(common.annotations.clone().unwrap_or_default());
    }
    if let Some(origin) = &spec.origin {
        labels.insert(ORIGIN_NAME_LABEL.to_string(), origin.name.clone());
        labels.insert(ORIGIN_NAMESPACE_LABEL.to_string(), origin.namespace.clone());
    }
    for object in &mut objects {
        add_metadata(object, "labels", &labels);
        add_metadata(object, "annotations", &annotations);
    }
    Ok(objects)
}

/// One kustomize build over `objects` with the renderer's patches and images.
fn kustomize_pass(
    objects: Vec<Value>,
    renderer: &Kustomize,
) -> Result<Vec<Value>, PostRenderError> {
    let dir = tempfile::Builder::new()
        .prefix("post-render-")
        .tempdir()
        .map_err(|source| PostRenderError::Io {
            context: "creating a temporary directory".into(),
            source,
        })?;
    let write = |name: &str, content: String| {
        std::fs::write(dir.path().join(name), content).map_err(|source| PostRenderError::Io {
            context: format!("writing {name}"),
            source,
        })
    };
    write(
        "resources.yaml",
        kustomize::yaml::to_yaml_stream(objects.iter()),
    )?;
    let mut kustomization = Map::new();
    kustomization.insert(
        "apiVersion".into(),
        "kustomize.config.k8s.io/v1beta1".into(),
    );
    kustomization.insert("kind".into(), "Kustomization".into());
    kustomization.insert("resources".into(), serde_json::json!(["resources.yaml"]));
    if let Some(patches) = renderer.patches.as_ref().filter(|p| !p.is_empty()) {
        kustomization.insert("patches".into(), to_json(patches)?);
    }
    if let Some(images) = renderer.images.as_ref().filter(|i| !i.is_empty()) {
        kustomization.insert("images".into(), to_json(images)?);
    }
    // JSON is YAML: the kustomization needs no emitter of its own.
    write(
        "kustomization.yaml",
        Value::Object(kustomization).to_string(),
    )?;
    let output = kustomize::build(dir.path(), dir.path(), kustomize::BuildOptions::default())
        .map_err(|err| PostRenderError::Kustomize(err.to_string()))?;
    Ok(output
        .resources
        .resources()
        .iter()
        .map(kustomize::resource::Resource::to_value)
        .collect())
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, PostRenderError> {
    serde_json::to_value(value).map_err(|err| PostRenderError::Input(err.to_string()))
}

fn is_hook(object: &Value) -> bool {
    object
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|annotations| annotations.contains_key(HOOK_ANNOTATION))
}

/// Adds `entries` to `metadata.<field>` of an object (existing keys are overwritten).
fn add_metadata(object: &mut Value, field: &str, entries: &BTreeMap<String, String>) {
    if entries.is_empty() {
        return;
    }
    let Some(object) = object.as_object_mut() else {
        return;
    };
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(metadata) = metadata.as_object_mut() else {
        return;
    };
    let target = metadata
        .entry(field)
        .or_insert_with(|| Value::Object(Map::new()));
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Some(target) = target.as_object_mut() {
        for (key, value) in entries {
            target.insert(key.clone(), Value::String(value.clone()));
        }
    }
}

/// The `post-render` mode of the controller binary: reads the spec from
/// `spec_path`, the manifests from stdin, writes the result to stdout.
pub fn run_plugin(spec_path: &Path) -> Result<(), PostRenderError> {
    use std::io::{Read, Write};
    let spec_text = std::fs::read(spec_path).map_err(|source| PostRenderError::Io {
        context: format!("reading {}", spec_path.display()),
        source,
    })?;
    let spec: PostRenderSpec = serde_json::from_slice(&spec_text)
        .map_err(|err| PostRenderError::Input(format!("spec {}: {err}", spec_path.display())))?;
    let mut manifests = String::new();
    std::io::stdin()
        .read_to_string(&mut manifests)
        .map_err(|source| PostRenderError::Io {
            context: "reading the manifests".into(),
            source,
        })?;
    let rendered = post_render(&manifests, &spec)?;
    std::io::stdout()
        .write_all(rendered.as_bytes())
        .map_err(|source| PostRenderError::Io {
            context: "writing the manifests".into(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::meta::{Image, Patch, Selector};

    const MANIFESTS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  annotations:\n    postrenderer.helm.sh/postrender-filename: 'chart/templates/cm.yaml'\ndata:\n  a: b\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\nspec:\n  replicas: 1\n  template:\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.0\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-test\n  annotations:\n    helm.sh/hook: test\ndata:\n  t: x\n";

    fn spec() -> PostRenderSpec {
        PostRenderSpec {
            origin: Some(Origin {
                name: "podinfo".into(),
                namespace: "flux-system".into(),
            }),
            common_metadata: Some(CommonMetadata {
                labels: Some(BTreeMap::from([("team".into(), "a".into())])),
                annotations: Some(BTreeMap::from([("owner".into(), "ops".into())])),
            }),
            kustomize: vec![Kustomize {
                patches: Some(vec![Patch {
                    patch: "- op: replace\n  path: /data/a\n  value: patched\n".into(),
                    target: Some(Selector {
                        kind: Some("ConfigMap".into()),
                        name: Some("app".into()),
                        ..Selector::default()
                    }),
                }]),
                images: Some(vec![Image {
                    name: "nginx".into(),
                    new_tag: Some("2.0".into()),
                    ..Image::default()
                }]),
            }],
            strategy: None,
        }
    }

    fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{kind}/{name} missing"))
    }

    #[test]
    fn kustomize_then_metadata_then_origin_labels() {
        let out = post_render(MANIFESTS, &spec()).expect("renders");
        let objects = kustomize::yaml::parse_stream(&out, kustomize::yaml::ParseOptions::RESOURCE)
            .expect("valid YAML");
        assert_eq!(objects.len(), 3);
        let cm = find(&objects, "ConfigMap", "app");
        assert_eq!(cm["data"]["a"], "patched");
        assert_eq!(cm["metadata"]["labels"][ORIGIN_NAME_LABEL], "podinfo");
        assert_eq!(
            cm["metadata"]["labels"][ORIGIN_NAMESPACE_LABEL],
            "flux-system"
        );
        assert_eq!(cm["metadata"]["labels"]["team"], "a");
        assert_eq!(cm["metadata"]["annotations"]["owner"], "ops");
        // Helm maps objects back to their templates with this annotation.
        assert_eq!(
            cm["metadata"]["annotations"]["postrenderer.helm.sh/postrender-filename"],
            "chart/templates/cm.yaml"
        );
        let deployment = find(&objects, "Deployment", "app");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:2.0"
        );
        // Combined (Helm 4's default): hooks are post-rendered too.
        let hook = find(&objects, "ConfigMap", "app-test");
        assert_eq!(hook["metadata"]["labels"][ORIGIN_NAME_LABEL], "podinfo");
    }

    #[test]
    fn nohooks_leaves_hooks_alone() {
        let mut spec = spec();
        spec.strategy = Some(PostRenderStrategy::Nohooks);
        let out = post_render(MANIFESTS, &spec).expect("renders");
        let objects = kustomize::yaml::parse_stream(&out, kustomize::yaml::ParseOptions::RESOURCE)
            .expect("valid YAML");
        let hook = find(&objects, "ConfigMap", "app-test");
        assert!(hook["metadata"].get("labels").is_none(), "{hook}");
        assert_eq!(
            find(&objects, "ConfigMap", "app")["metadata"]["labels"]["team"],
            "a"
        );
    }

    #[test]
    fn without_renderers_only_labels_are_added() {
        let spec = PostRenderSpec {
            origin: Some(Origin {
                name: "r".into(),
                namespace: "ns".into(),
            }),
            ..PostRenderSpec::default()
        };
        let out = post_render(MANIFESTS, &spec).expect("renders");
        assert_eq!(
            out.matches("helm.toolkit.fluxcd.io/name: r\n").count(),
            3,
            "{out}"
        );
        assert!(out.contains("image: nginx:1.0"), "{out}");
    }

    #[test]
    fn broken_patches_fail() {
        let mut spec = spec();
        spec.kustomize[0].patches = Some(vec![Patch {
            patch: "- op: replace\n  path: /nope/deeper\n  value: x\n".into(),
            target: Some(Selector {
                kind: Some("ConfigMap".into()),
                name: Some("app".into()),
                ..Selector::default()
            }),
        }]);
        assert!(matches!(
            post_render(MANIFESTS, &spec),
            Err(PostRenderError::Kustomize(_))
        ));
    }

    #[test]
    fn digests_track_changes() {
        let a = spec();
        let mut b = spec();
        assert_eq!(a.renderers_digest(), b.renderers_digest());
        b.kustomize.clear();
        assert_ne!(a.renderers_digest(), b.renderers_digest());
        assert_eq!(a.common_metadata_digest(), b.common_metadata_digest());
    }
}
