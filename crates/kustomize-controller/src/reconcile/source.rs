//! The first steps of an attempt: the source's artifact (through the
//! source's status), the dependencies, and the artifact downloaded,
//! verified and unpacked into a private directory.

use std::path::PathBuf;

use api::meta::{Artifact, reason};
use tracing::info;

use super::{Attempt, Halt, Next, Stop, go_duration, retry_interval};
use crate::Error;
use crate::dependencies;
use crate::source::{self, SourceError};

/// The artifact to apply and where it came from.
pub(super) struct SourceRevision {
    /// The source's current artifact.
    pub artifact: Artifact,
    /// The revision the source's own source had (`originRevision`), if any.
    pub origin: Option<String>,
}

/// An unpacked artifact: its canonical path, in a directory removed when
/// this is dropped.
pub(super) struct Unpacked {
    _workdir: tempfile::TempDir,
    pub root: PathBuf,
}

impl Attempt<'_> {
    /// The source's current artifact, through its status.
    pub(super) async fn source_artifact(&mut self) -> Result<SourceRevision, Stop> {
        let ctx = self.ctx;
        let settings = &ctx.settings;
        let source = source::get(
            &ctx.client,
            self.obj,
            settings.no_cross_namespace_refs,
            settings.allow_external_artifact,
        )
        .await
            .map_err(|err| match err {
                SourceError::AccessDenied { .. } => {
                    Halt::stall(reason::ACCESS_DENIED, err.to_string())
                }
                err => {
                    info!(kustomization = %self.name, namespace = %self.namespace, error = %err, "source unavailable");
                    Halt::retry(reason::ARTIFACT_FAILED, err.to_string()).quiet()
                }
            })?;
        let origin = source.origin_revision();
        let artifact = source.artifact.ok_or_else(|| {
            Halt::retry(
                reason::ARTIFACT_FAILED,
                format!(
                    "Source artifact not found, retrying in {}",
                    go_duration(retry_interval(self.obj))
                ),
            )
            .quiet()
        })?;
        Ok(SourceRevision { artifact, origin })
    }

    /// Every dependency ready (and, on the same source, at `revision`).
    pub(super) async fn dependencies_ready(&mut self, revision: &str) -> Result<(), Stop> {
        let ctx = self.ctx;
        let Err(err) = dependencies::check(&ctx.client, self.obj, revision).await else {
            return Ok(());
        };
        if err.is_terminal() {
            return Err(Halt::stall(reason::INVALID_CEL_EXPRESSION, err.to_string())
                .quiet()
                .into());
        }
        let message = format!(
            "Dependencies do not meet ready condition, retrying in {}",
            go_duration(ctx.settings.requeue_dependency)
        );
        info!(kustomization = %self.name, namespace = %self.namespace, "{message}");
        Err(Halt::retry(reason::DEPENDENCY_NOT_READY, err.to_string())
            .then(Next::Dependency)
            .announcing(message)
            .into())
    }

    /// Downloads, verifies and unpacks `artifact` into a private directory.
    pub(super) async fn unpack(&self, artifact: &Artifact) -> Result<Unpacked, Stop> {
        let workdir = tempfile::Builder::new()
            .prefix("kustomization-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "cannot create a working directory".into(),
                source,
            })?;
        self.ctx
            .fetcher
            .fetch_and_unpack(
                &artifact.url,
                &artifact.digest,
                workdir.path(),
                runtime::artifact::UntarOptions {
                    max_size: None,
                    skip_symlinks: false,
                },
            )
            .await
            .map_err(|err| {
                let message = match &err {
                    runtime::artifact::Error::Status { status: 404, .. } => format!(
                        "Source is not ready, artifact not found, retrying in {}",
                        go_duration(retry_interval(self.obj))
                    ),
                    other => other.to_string(),
                };
                Halt::retry(reason::ARTIFACT_FAILED, message)
            })?;
        let root = workdir.path().canonicalize().map_err(|source| Error::Io {
            context: "cannot resolve the working directory".into(),
            source,
        })?;
        Ok(Unpacked {
            _workdir: workdir,
            root,
        })
    }
}
