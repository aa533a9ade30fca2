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
    /// The source is in another namespace and `--no-cross-namespace-refs` is set.
    #[error(
        "can't access '{kind}/{namespace}/{name}', cross-namespace references have been blocked"
    )]
    AccessDenied {
        /// Source kind.
        kind: String,
        /// Source namespace.
        namespace: String,
        /// Source name.
        name: String,
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
    /// The kind cannot be used by this controller.
    #[error("source '{name}' kind '{kind}' not supported{why}")]
    Unsupported {
        /// Source name.
        name: String,
        /// Source kind.
        kind: String,
        /// Additional explanation.
        why: &'static str,
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

/// Reads the source of `ks`.
pub async fn get(
    client: &Client,
    ks: &Kustomization,
    no_cross_namespace_refs: bool,
) -> Result<Source, SourceError> {
    let reference = &ks.spec.source_ref;
    let namespace = source_namespace(ks);
    let kind = kind_name(reference.kind);
    if no_cross_namespace_refs && Some(namespace.as_str()) != ks.namespace().as_deref() {
        return Err(SourceError::AccessDenied {
            kind: kind.to_owned(),
            namespace,
            name: reference.name.clone(),
        });
    }
    let name = reference.name.as_str();
    match reference.kind {
        KustomizationSourceKind::GitRepository
        | KustomizationSourceKind::OCIRepository
        | KustomizationSourceKind::Bucket => artifact_of(client, &namespace, name, kind).await,
        KustomizationSourceKind::ExternalArtifact => Err(SourceError::Unsupported {
            name: name.to_owned(),
            kind: kind.to_owned(),
            why: ": ExternalArtifact sources are not implemented",
        }),
    }
}
