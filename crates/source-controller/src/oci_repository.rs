//! OCIRepository: resolve the reference (digest, semver range over the tags,
//! or tag) to a manifest digest, pull the selected layer and store it, as
//! Flux does: `extract` unpacks the layer and re-archives it with the ignore
//! rules, `copy` stores the compressed layer unchanged.
//!
//! The reconciliation reads top to bottom: credentials, resolve the digest
//! with a HEAD request, decide (the stored artifact has that revision and the
//! spec asks for the same content: nothing is pulled and nothing written),
//! act (pull manifest and layer, store, record).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use api::meta::Artifact;
use api::source::{
    CloudProvider, OCILayerOperation, OCIRepository, OCIRepositoryRef, OCIRepositorySpec,
    OCIRepositoryStatus,
};
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{debug, info};

use crate::Error;
use crate::controller::{Context, SecretData};
use crate::source_ignore::SourceIgnore;
use crate::source_status::{self, Outcome};
use crate::storage::ArtifactStore;

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "OCIRepository";
/// Flux's default timeout for registry operations.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// The link beside the artifacts that `status.url` points at.
const LATEST_LINK: &str = "latest.tar.gz";

/// Reconciles one OCIRepository.
pub async fn reconcile(obj: Arc<OCIRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.options.suspend == Some(true);
    source_status::reconcile_source(obj, ctx, KIND, suspended, |obj, ctx, status| {
        Box::pin(sync(obj, ctx, status))
    })
    .await
}

/// Fetch, decide, act. Updates `status` (artifact and observations) only when
/// a new artifact was stored.
async fn sync(
    obj: &OCIRepository,
    ctx: &Context,
    status: &mut OCIRepositoryStatus,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;

    // Fetch: what the spec asks for, credentials, the current digest.
    check_supported(spec)?;
    let (host, _) = oci::parse_url(&spec.url).map_err(|e| match e {
        oci::Error::InvalidUrl { url, reason } => Error::InvalidUrl { url, reason },
        other => oci_error("URL validation failed", other),
    })?;
    let timeout = match &spec.options.timeout {
        Some(t) => t
            .to_std()
            .map_err(|e| Error::InvalidDuration(e.to_string()))?,
        None => DEFAULT_TIMEOUT,
    };
    let credentials = match &spec.options.secret_ref {
        Some(secret_ref) => {
            credentials_from_secret(ctx, &namespace, &secret_ref.name, &host).await?
        }
        None => oci::Credentials::Anonymous,
    };
    let options = oci::Options {
        insecure: spec.options.insecure.unwrap_or(false),
        timeout,
        ..oci::Options::default()
    };
    let repository = oci::Repository::new(&spec.url, &credentials, &options)
        .map_err(|e| oci_error("failed to create the registry client", e))?;
    let selector = match selector(spec.options.r#ref.as_ref()) {
        // Flux words failures to pick the tag apart from failures to resolve it.
        oci::Selector::Semver { range, filter } => {
            let tag_error = |e| {
                oci_error(
                    &format!("failed to determine the artifact tag for '{}'", spec.url),
                    e,
                )
            };
            let tags = repository.list_tags().await.map_err(tag_error)?;
            oci::Selector::Tag(
                oci::highest_matching(&tags, &range, filter.as_deref()).map_err(tag_error)?,
            )
        }
        other => other,
    };
    let resolved = repository
        .resolve(&selector)
        .await
        .map_err(|e| oci_error("failed to determine artifact digest", e))?;
    let revision = resolved.revision();

    // Decide: is the stored artifact still what the spec and the registry ask for?
    let same_config = status.observed_ignore == spec.options.ignore
        && status.observed_layer_selector == spec.options.layer_selector;
    if same_config && ctx.store.holds(status.artifact.as_ref(), &revision) {
        debug!(%namespace, %name, %revision, "artifact up-to-date");
        return Ok(Outcome::UpToDate {
            message: stored_message(&revision),
        });
    }

    // Act: pull the manifest and the selected layer, store, record.
    let manifest = repository
        .pull_manifest(&resolved.digest)
        .await
        .map_err(|e| oci_error(&format!("failed to pull artifact from '{}'", spec.url), e))?;
    let layer_selector = spec.options.layer_selector.clone().unwrap_or_default();
    let layer = manifest
        .layer(layer_selector.media_type.as_deref())
        .ok_or_else(|| {
            Error::OciLayer(match &layer_selector.media_type {
                Some(media_type) => {
                    format!("failed to find layer with media type '{media_type}' in artifact")
                }
                None => "no layers found in artifact".to_string(),
            })
        })?
        .clone();
    let work = tempfile::Builder::new()
        .prefix("ocirepository-")
        .tempdir()
        .map_err(Error::io("creating a working directory"))?;
    let blob = work.path().join("layer");
    let max_size = ctx.settings.artifact_max_size.unwrap_or(u64::MAX);
    repository
        .pull_blob_to(&layer, &blob, max_size)
        .await
        .map_err(|e| oci_error(&format!("failed to pull artifact from '{}'", spec.url), e))?;
    info!(%namespace, %name, url = %spec.url, %revision, media_type = %layer.media_type, "pulled artifact layer");

    // Flux names the file after the whole digest, algorithm included.
    let path = ArtifactStore::artifact_path(
        KIND,
        &namespace,
        &name,
        &format!("{}.tar.gz", resolved.digest),
    );
    let operation = layer_selector
        .operation
        .unwrap_or(OCILayerOperation::Extract);
    let stored = match operation {
        OCILayerOperation::Extract => {
            let content = work.path().join("content");
            extract(&blob, &content, ctx.settings.artifact_max_size).await?;
            let ignore = SourceIgnore::load(&content, spec.options.ignore.as_deref())?;
            ctx.store
                .archive_dir(&path, &content, ignore, ctx.settings.artifact_max_size)
                .await
        }
        OCILayerOperation::Copy => copy_into_store(&ctx.store, &path, &blob).await,
    }
    .map_err(|e| Error::Archive(Box::new(e)))?;

    let annotations = (!manifest.annotations.is_empty()).then(|| manifest.annotations.clone());
    status.artifact = Some(stored.artifact(&revision, annotations));
    status.observed_ignore = spec.options.ignore.clone();
    status.observed_layer_selector = spec.options.layer_selector.clone();
    if let Some(link) = ctx.store.publish(&stored, LATEST_LINK) {
        status.url = Some(link);
    }
    Ok(Outcome::Stored {
        message: stored_message(&revision),
    })
}

/// Flux's `ArtifactInStorage` (and `Ready`) message for an OCIRepository.
pub fn stored_message(revision: &str) -> String {
    format!("stored artifact for digest '{revision}'")
}

/// Flux's `NewArtifact` event note: the revision and URL, plus where the
/// content came from when the artifact's annotations say so.
pub fn new_artifact_note(obj: &OCIRepository, artifact: &Artifact) -> String {
    let note = format!(
        "stored artifact with revision '{}' from '{}'",
        artifact.revision, obj.spec.url
    );
    let annotation = |key| {
        artifact
            .metadata
            .as_ref()
            .and_then(|m| m.get(key))
            .filter(|v| !v.is_empty())
    };
    match (
        annotation(oci::ANNOTATION_SOURCE),
        annotation(oci::ANNOTATION_REVISION),
    ) {
        (Some(source), Some(revision)) => {
            format!("{note}, origin source '{source}', origin revision '{revision}'")
        }
        _ => note,
    }
}

fn oci_error(context: &str, source: oci::Error) -> Error {
    Error::Oci {
        context: context.to_string(),
        source,
    }
}

/// Refuses what this controller does not implement, rather than ignoring it.
fn check_supported(spec: &OCIRepositorySpec) -> Result<(), Error> {
    crate::controller::only_generic_provider(spec.options.provider, CloudProvider::Generic)?;
    let unsupported = [
        (
            spec.options.verify.is_some(),
            "verify (signature verification)",
        ),
        (
            spec.options.service_account_name.is_some(),
            "serviceAccountName",
        ),
        (spec.options.cert_secret_ref.is_some(), "certSecretRef"),
        (spec.options.proxy_secret_ref.is_some(), "proxySecretRef"),
    ];
    match unsupported.iter().find(|(set, _)| *set) {
        Some((_, field)) => Err(Error::Unsupported(format!(
            "{field} is not supported by this source-controller"
        ))),
        None => Ok(()),
    }
}

/// Flux's precedence: digest, then semver (with its filter), then tag, then `latest`.
fn selector(reference: Option<&OCIRepositoryRef>) -> oci::Selector {
    let empty = OCIRepositoryRef::default();
    let r = reference.unwrap_or(&empty);
    let non_empty = |s: &Option<String>| s.as_ref().filter(|v| !v.is_empty()).cloned();
    if let Some(digest) = non_empty(&r.digest) {
        return oci::Selector::Digest(digest);
    }
    if let Some(range) = non_empty(&r.semver) {
        return oci::Selector::Semver {
            range,
            filter: non_empty(&r.semver_filter),
        };
    }
    oci::Selector::Tag(non_empty(&r.tag).unwrap_or_else(|| "latest".to_string()))
}

/// The registry credentials for `host` in the `kubernetes.io/dockerconfigjson` Secret.
async fn credentials_from_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
    host: &str,
) -> Result<oci::Credentials, Error> {
    let secret = SecretData::read(ctx, namespace, name).await?;
    let json = secret
        .data
        .get(oci::DOCKER_CONFIG_JSON_KEY)
        .ok_or_else(|| {
            secret.error(format!(
                "the secret has no '{}' key",
                oci::DOCKER_CONFIG_JSON_KEY
            ))
        })?;
    oci::Credentials::from_docker_config_json(json, host).map_err(|e| secret.error(e.to_string()))
}

/// Unpacks the pulled layer (a tar.gz) under the consumers' hardening rules.
async fn extract(blob: &Path, dir: &Path, max_size: Option<u64>) -> Result<(), Error> {
    let (blob, dir) = (blob.to_path_buf(), dir.to_path_buf());
    off_the_runtime("extracting the layer", move || {
        let file = std::fs::File::open(&blob).map_err(Error::io("opening the pulled layer"))?;
        let options = runtime::artifact::UntarOptions {
            max_size,
            skip_symlinks: true,
        };
        runtime::artifact::untar_gz(std::io::BufReader::new(file), &dir, options).map_err(|e| {
            Error::OciLayer(format!(
                "failed to extract layer contents from artifact: {e}"
            ))
        })
    })
    .await
}

/// Stores the pulled layer as it is.
async fn copy_into_store(
    store: &ArtifactStore,
    path: &str,
    blob: &Path,
) -> Result<crate::storage::StoredFile, Error> {
    let (store, path, blob) = (store.clone(), path.to_string(), blob.to_path_buf());
    off_the_runtime("copying the layer", move || {
        store.write_atomically(&path, |out| {
            let mut file =
                std::fs::File::open(&blob).map_err(Error::io("opening the pulled layer"))?;
            std::io::copy(&mut file, out).map_err(Error::io("copying the layer"))?;
            Ok(())
        })
    })
    .await
}

/// Runs blocking file work on tokio's blocking pool.
async fn off_the_runtime<T, F>(what: &str, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, Error> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Io {
            context: what.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(json: serde_json::Value) -> OCIRepositoryRef {
        serde_json::from_value(json).expect("ref")
    }

    #[test]
    fn reference_precedence_is_fluxs() {
        assert_eq!(selector(None), oci::Selector::Tag("latest".into()));
        assert_eq!(
            selector(Some(&reference(serde_json::json!({"tag": "v1"})))),
            oci::Selector::Tag("v1".into())
        );
        assert_eq!(
            selector(Some(&reference(
                serde_json::json!({"tag": "v1", "semver": ">=1.0.0", "semverFilter": "^1"})
            ))),
            oci::Selector::Semver {
                range: ">=1.0.0".into(),
                filter: Some("^1".into())
            }
        );
        assert_eq!(
            selector(Some(&reference(
                serde_json::json!({"tag": "v1", "semver": "1.x", "digest": "sha256:abc"})
            ))),
            oci::Selector::Digest("sha256:abc".into())
        );
    }

    #[test]
    fn unsupported_fields_stall() {
        let spec: OCIRepositorySpec = serde_json::from_value(serde_json::json!({
            "url": "oci://ghcr.io/a/b",
            "interval": "1m",
            "verify": {"provider": "cosign"}
        }))
        .expect("spec");
        let err = check_supported(&spec).unwrap_err();
        assert!(err.failure().is_stalled());
        assert_eq!(err.failure().reason, "InvalidProviderConfiguration");
        let mut generic = spec.clone();
        generic.options.verify = None;
        generic.options.provider = Some(CloudProvider::Generic);
        assert!(check_supported(&generic).is_ok());
        generic.options.provider = Some(CloudProvider::Aws);
        assert!(check_supported(&generic).is_err());
    }

    #[test]
    fn failures_map_to_flux_reasons() {
        let auth = oci_error(
            "failed to determine artifact digest",
            oci::Error::Authentication {
                host: "h".into(),
                message: "401".into(),
            },
        );
        assert_eq!(auth.failure().reason, "OCIArtifactPullFailed");
        assert!(!auth.failure().is_stalled());
        let unreadable = oci_error(
            "failed to read the registry credentials",
            oci::Error::InvalidCredentials("no auths".into()),
        );
        assert_eq!(unreadable.failure().reason, "AuthenticationFailed");
        let missing = oci_error(
            "failed to determine artifact digest",
            oci::Error::NotFound {
                reference: "h/r:t".into(),
                message: "m".into(),
            },
        );
        assert_eq!(missing.failure().reason, "OCIArtifactPullFailed");
        assert_eq!(missing.failure().condition, Some("FetchFailed"));
        assert!(
            missing
                .to_string()
                .starts_with("failed to determine artifact digest: ")
        );
        let semver = oci_error(
            "failed to determine artifact digest",
            oci::Error::InvalidSemver {
                range: "x".into(),
                message: "m".into(),
            },
        );
        assert!(semver.failure().is_stalled());
        let layer = Error::OciLayer("failed to find layer".into());
        assert_eq!(layer.failure().reason, "OCIArtifactLayerOperationFailed");
    }
}
