//! The source of a Kustomization: looked up by its `sourceRef`, known only
//! through `.status.artifact`.

use api::kustomize::{Kustomization, KustomizationSourceKind};
use api::meta::Artifact;
use kube::{Client, ResourceExt};

/// OCI annotation with the revision an artifact was built from.
pub const ORIGIN_REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";

/// Why the source cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The source is in another namespace and `--no-cross-namespace-refs` is
    /// set, or it is an ExternalArtifact and its feature gate is off.
    #[error("can't access '{kind}/{namespace}/{name}', {why}")]
    AccessDenied {
        /// Source kind.
        kind: String,
        /// Source namespace.
        namespace: String,
        /// Source name.
        name: String,
        /// What blocks it, in Flux's words.
        why: &'static str,
    },
    /// The source does not exist.
    #[error("Source '{kind}/{namespace}/{name}' not found")]
    NotFound {
        /// Source kind.
        kind: String,
        /// Source namespace.
        namespace: String,
        /// Source name.
        name: String,
    },
    /// Reading the source failed.
    #[error("unable to get source '{namespace}/{name}': {source}")]
    Api {
        /// Source namespace.
        namespace: String,
        /// Source name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
}

/// What a Kustomization needs of its source.
#[derive(Clone, Debug)]
pub struct Source {
    /// `Kind/namespace/name`, for messages.
    pub display: String,
    /// The artifact, when the source has one.
    pub artifact: Option<Artifact>,
}

impl Source {
    /// The revision an OCI artifact was built from, when it says.
    pub fn origin_revision(&self) -> Option<String> {
        self.artifact
            .as_ref()?
            .metadata
            .as_ref()?
            .get(ORIGIN_REVISION_ANNOTATION)
            .cloned()
    }
}

/// The namespace of the source of `ks`.
pub fn source_namespace(ks: &Kustomization) -> String {
    ks.spec
        .source_ref
        .namespace
        .clone()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| ks.namespace().unwrap_or_default())
}

/// The kind name as written in `sourceRef.kind`.
pub fn kind_name(kind: KustomizationSourceKind) -> &'static str {
    match kind {
        KustomizationSourceKind::OCIRepository => "OCIRepository",
        KustomizationSourceKind::GitRepository => "GitRepository",
        KustomizationSourceKind::Bucket => "Bucket",
        KustomizationSourceKind::ExternalArtifact => "ExternalArtifact",
    }
}

/// Reads the source `kind` `namespace/name` and its artifact.
async fn artifact_of(
    client: &Client,
    namespace: &str,
    name: &str,
    kind: &'static str,
) -> Result<Source, SourceError> {
    let reference = runtime::source::SourceRef {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    };
    match runtime::source::get(client, &reference).await {
        Ok(object) => Ok(Source {
            display: format!("{kind}/{namespace}/{name}"),
            artifact: runtime::source::artifact(&object),
        }),
        Err(runtime::source::SourceError::NotFound { .. }) => Err(SourceError::NotFound {
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }),
        Err(runtime::source::SourceError::Api(source)) => Err(SourceError::Api {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Reads the source of `ks`; ExternalArtifacts only when `allow_external_artifact`.
pub async fn get(
    client: &Client,
    ks: &Kustomization,
    no_cross_namespace_refs: bool,
    allow_external_artifact: bool,
) -> Result<Source, SourceError> {
    let reference = &ks.spec.source_ref;
    let namespace = source_namespace(ks);
    let kind = kind_name(reference.kind);
    let denied = |why| SourceError::AccessDenied {
        kind: kind.to_owned(),
        namespace: namespace.clone(),
        name: reference.name.clone(),
        why,
    };
    if no_cross_namespace_refs && Some(namespace.as_str()) != ks.namespace().as_deref() {
        return Err(denied("cross-namespace references have been blocked"));
    }
    if reference.kind == KustomizationSourceKind::ExternalArtifact && !allow_external_artifact {
        return Err(denied("ExternalArtifact feature gate is disabled"));
    }
    artifact_of(client, &namespace, &reference.name, kind).await
}
