//! GitRepository: resolve the reference, check out the commit, add included
//! artifacts, archive the tree and record the artifact, as Flux does.
//!
//! The reconciliation reads top to bottom: fetch what is needed (Secret,
//! remote references, included repositories), decide whether a new artifact
//! is needed at all, act (clone, archive, store), then write the status once.
//! When the remote still points at the stored revision and the spec asks for
//! the same artifact, nothing is cloned and nothing is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api::meta::Artifact;
use api::source::{GitProvider, GitRepository, GitRepositoryRef, GitRepositoryStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use tracing::{debug, info, warn};

use crate::Error;
use crate::controller::Context;
use crate::source_ignore::SourceIgnore;
use crate::source_status::{self, Outcome};
use crate::storage::ArtifactStore;

mod include;
mod verify;

pub use include::includers_of;
use include::{copy_include, relative_path, resolve_includes, same_artifacts};
use verify::{
    forget_failed_verification, requires_verification, verification_policy_changed,
    verify_signatures,
};

/// Kind name used in storage paths, metrics and events.
pub const KIND: &str = "GitRepository";
/// Flux's default Git timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Reconciles one GitRepository.
pub async fn reconcile(obj: Arc<GitRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    let suspended = obj.spec.suspend == Some(true);
    source_status::reconcile_source(obj, ctx, KIND, suspended, |obj, ctx, status| {
        Box::pin(sync(obj, ctx, status))
    })
    .await
}

/// Fetch, decide, act. Updates `status` (artifact and observations) only when
/// a new artifact was stored.
async fn sync(
    obj: &GitRepository,
    ctx: &Context,
    status: &mut GitRepositoryStatus,
) -> Result<Outcome, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let spec = &obj.spec;

    // A failed verification is worked out again; a successful one stays as the
    // record of the stored artifact until it is replaced.
    forget_failed_verification(obj, status);

    // Fetch: credentials, the reference, the included artifacts.
    validate_url(&spec.url)?;
    crate::controller::only_generic_provider(spec.provider, GitProvider::Generic)?;
    let timeout = match &spec.timeout {
        Some(t) => t
            .to_std()
            .map_err(|e| Error::InvalidDuration(e.to_string()))?,
        None => DEFAULT_TIMEOUT,
    };
    let auth = match &spec.secret_ref {
        Some(secret_ref) => {
            let data = crate::controller::read_secret(ctx, &namespace, &secret_ref.name).await?;
            git::Auth::from_secret(&spec.url, &data)?
        }
        None => git::Auth::None,
    };
    let proxy = match &spec.proxy_secret_ref {
        Some(proxy_ref) => {
            let data = crate::controller::read_secret(ctx, &namespace, &proxy_ref.name).await?;
            Some(git::Proxy::from_secret(&data)?)
        }
        None => None,
    };
    let remote = git::Remote {
        url: spec.url.clone(),
        auth,
        timeout,
        proxy,
    };
    let (reference, known_commit) = resolve_reference(spec.r#ref.as_ref(), &remote).await?;
    let includes = resolve_includes(obj, ctx).await?;
    let included_artifacts: Vec<Artifact> = includes.iter().map(|i| i.artifact.clone()).collect();

    // Decide: is the stored artifact still what the spec and the remote ask for?
    let policy_changed = verification_policy_changed(ctx, obj, status).await;
    let same_config = !policy_changed
        && status.observed_ignore == spec.ignore
        && status.observed_include == spec.include
        && status.observed_sparse_checkout == spec.sparse_checkout
        && status.observed_recurse_submodules.unwrap_or(false)
            == spec.recurse_submodules.unwrap_or(false)
        && same_artifacts(
            status.included_artifacts.as_deref().unwrap_or(&[]),
            &included_artifacts,
        )
        && !requires_verification(spec.verify.as_ref(), status.source_verification_mode);
    if let Some(artifact) = status
        .artifact
        .as_ref()
        .filter(|a| ctx.store.exists(&a.path))
        && same_config
    {
        let remote_commit = match known_commit.clone() {
            Some(commit) => Some(commit),
            None => head_of(&remote, &reference).await?,
        };
        if let Some(commit) = remote_commit {
            let revision = reference.revision(&commit);
            if revision == artifact.revision {
                debug!(%namespace, %name, %revision, "artifact up-to-date");
                return Ok(Outcome::UpToDate {
                    message: stored_message(&revision),
                });
            }
        }
    }

    // Act: clone, add includes, archive, record.
    let work = tempfile::Builder::new()
        .prefix("gitrepository-")
        .tempdir()
        .map_err(Error::io("creating a working directory"))?;
    let checkout_dir = work.path().join("checkout");
    let started = std::time::Instant::now();
    let commit = git::checkout(
        &remote,
        &reference,
        &checkout_dir,
        &git::CheckoutOptions::default(),
    )
    .await?;
    info!(%namespace, %name, url = %spec.url, revision = %commit.revision, "cloned repository");
    // Before anything is stored: an unverified revision never becomes an artifact.
    verify_signatures(obj, ctx, &commit, status).await?;
    let submodules = if spec.recurse_submodules == Some(true) {
        checkout_submodules(&remote, &checkout_dir, started).await?
    } else {
        Vec::new()
    };
    if !submodules.is_empty() {
        info!(%namespace, %name, count = submodules.len(), "checked out submodules");
    }
    // The repository metadata never goes into the artifact; drop it early so
    // includes cannot be confused with it. Submodules have a `.git` each.
    for submodule in &submodules {
        let _ = std::fs::remove_dir_all(checkout_dir.join(&submodule.path).join(".git"));
    }
    let _ = std::fs::remove_dir_all(checkout_dir.join(".git"));
    if let Some(dirs) = &spec.sparse_checkout {
        keep_only(&checkout_dir, dirs)?;
    }
    for include in &includes {
        copy_include(&ctx.store, include, &checkout_dir)?;
    }
    let ignore = SourceIgnore::load(&checkout_dir, spec.ignore.as_deref())?;
    let path =
        ArtifactStore::artifact_path(KIND, &namespace, &name, &format!("{}.tar.gz", commit.id));
    let stored = ctx
        .store
        .archive_dir(&path, &checkout_dir, ignore, ctx.settings.artifact_max_size)
        .await
        .map_err(|e| Error::Archive(Box::new(e)))?;
    status.artifact = Some(Artifact {
        url: stored.url,
        path: stored.path.clone(),
        revision: commit.revision.clone(),
        digest: stored.digest,
        last_update_time: now(),
        size: Some(stored.size),
        metadata: None,
    });
    status.included_artifacts = (!included_artifacts.is_empty()).then_some(included_artifacts);
    status.observed_ignore = spec.ignore.clone();
    status.observed_include = spec.include.clone();
    status.observed_sparse_checkout = spec.sparse_checkout.clone();
    status.observed_recurse_submodules = spec.recurse_submodules;
    match ctx.store.garbage_collect(&stored.path) {
        Ok(removed) if !removed.is_empty() => {
            debug!(%namespace, %name, ?removed, "garbage collected old artifacts")
        }
        Ok(_) => {}
        Err(err) => {
            warn!(%namespace, %name, error = %err, "garbage collection of old artifacts failed")
        }
    }
    Ok(Outcome::Stored {
        message: stored_message(&commit.revision),
    })
}

fn stored_message(revision: &str) -> String {
    format!("stored artifact for revision '{revision}'")
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

fn validate_url(url: &str) -> Result<(), Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("expected <scheme>://<host>/<path>"))?;
    if !matches!(scheme, "http" | "https" | "ssh") {
        return Err(invalid("scheme must be http, https or ssh"));
    }
    let host = rest.split('/').next().unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(invalid("the address has no host"));
    }
    Ok(())
}

/// The reference to check out and, when listing the remote was needed to find
/// it (semver), the commit it points at.
async fn resolve_reference(
    reference: Option<&GitRepositoryRef>,
    remote: &git::Remote,
) -> Result<(git::Reference, Option<String>), Error> {
    let empty = GitRepositoryRef::default();
    let r = reference.unwrap_or(&empty);
    let non_empty = |s: &Option<String>| s.as_ref().filter(|v| !v.is_empty()).cloned();
    if let Some(commit) = non_empty(&r.commit) {
        return Ok((
            git::Reference::Commit {
                id: commit.to_ascii_lowercase(),
                branch: non_empty(&r.branch),
            },
            Some(commit.to_ascii_lowercase()),
        ));
    }
    if let Some(name) = non_empty(&r.name) {
        return Ok((git::Reference::Name(name), None));
    }
    if let Some(range_text) = non_empty(&r.semver) {
        let range =
            runtime::semver::Range::parse(&range_text).map_err(|e| Error::InvalidSemver {
                range: range_text.clone(),
                message: e.to_string(),
            })?;
        let tags = git::list_refs(remote, &["refs/tags/*"]).await?;
        let names: Vec<&str> = tags
            .iter()
            .filter_map(|t| t.name.strip_prefix("refs/tags/"))
            .collect();
        let (tag, _) = range
            .highest(names.iter().copied())
            .ok_or_else(|| Error::NoMatchingTag(range_text.clone()))?;
        let commit = tags
            .iter()
            .find(|t| t.name.strip_prefix("refs/tags/") == Some(tag))
            .map(|t| t.commit.clone());
        return Ok((git::Reference::Tag(tag.to_string()), commit));
    }
    if let Some(tag) = non_empty(&r.tag) {
        return Ok((git::Reference::Tag(tag), None));
    }
    let branch = non_empty(&r.branch).unwrap_or_else(|| "master".to_string());
    Ok((git::Reference::Branch(branch), None))
}

/// `spec.recurseSubmodules`: the submodules of the checkout, recursively, at
/// the commits it records, within what is left of `spec.timeout` (one limit
/// for the clone and its submodules, as in Flux).
async fn checkout_submodules(
    remote: &git::Remote,
    checkout_dir: &Path,
    started: std::time::Instant,
) -> Result<Vec<git::SubmoduleCheckout>, Error> {
    let left = git::Remote {
        timeout: remote.timeout.saturating_sub(started.elapsed()),
        ..remote.clone()
    };
    git::checkout_submodules(checkout_dir, &left, &git::CheckoutOptions::default())
        .await
        .map_err(|e| match e {
            // Report the limit the spec set, not the remainder.
            git::Error::Timeout { url, .. } => git::Error::Timeout {
                url,
                timeout: remote.timeout,
            },
            other => other,
        })
        .map_err(Error::Git)
}

/// The commit the remote's reference points at now, without cloning.
async fn head_of(
    remote: &git::Remote,
    reference: &git::Reference,
) -> Result<Option<String>, Error> {
    let Some(full) = reference.full_name() else {
        return Ok(None);
    };
    let refs = git::list_refs(remote, &[full.as_str()]).await?;
    match refs.into_iter().find(|r| r.name == full) {
        Some(found) => Ok(Some(found.commit)),
        None => Err(Error::Git(git::Error::ReferenceNotFound {
            reference: full,
            url: remote.url.clone(),
        })),
    }
}

/// Sparse checkout: keeps only the listed directories (and the paths leading
/// to them).
fn keep_only(root: &Path, dirs: &[String]) -> Result<(), Error> {
    let keep: Vec<PathBuf> = dirs
        .iter()
        .map(|d| {
            relative_path(d)
                .map_err(|reason| Error::InvalidPath(format!("sparseCheckout '{d}' {reason}")))
        })
        .collect::<Result<_, _>>()?;
    // Flux checks each directory exists after the checkout.
    if let Some((dir, _)) = dirs
        .iter()
        .zip(&keep)
        .find(|(_, k)| root.join(k).symlink_metadata().is_err())
    {
        return Err(Error::SparseCheckoutMissing(dir.clone()));
    }
    if keep.iter().any(|k| k.as_os_str().is_empty()) {
        return Ok(());
    }
    prune(root, Path::new(""), &keep).map_err(Error::io("applying sparseCheckout"))
}

fn prune(root: &Path, rel: &Path, keep: &[PathBuf]) -> std::io::Result<()> {
    for entry in std::fs::read_dir(root.join(rel))? {
        let entry = entry?;
        let child = rel.join(entry.file_name());
        if keep.iter().any(|k| child.starts_with(k)) {
            continue;
        }
        let is_dir = entry.file_type()?.is_dir();
        if is_dir && keep.iter().any(|k| k.starts_with(&child)) {
            prune(root, &child, keep)?;
        } else if is_dir {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::include::copy_tree;
    use super::verify::{verification_mode, verified_message};
    use super::*;
    use api::source::{GitRepositoryVerification, GitVerificationMode};

    #[test]
    fn urls() {
        assert!(validate_url("https://github.com/fluxcd/flux2").is_ok());
        assert!(validate_url("ssh://git@127.0.0.1:2222/repo.git").is_ok());
        assert!(validate_url("http://127.0.0.1:8080/repo.git").is_ok());
        assert!(matches!(
            validate_url("git@github.com:fluxcd/flux2.git"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            validate_url("ftp://h/r"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            validate_url("https:///path"),
            Err(Error::InvalidUrl { .. })
        ));
    }

    #[test]
    fn include_paths() {
        assert_eq!(relative_path("a/./b").unwrap(), PathBuf::from("a/b"));
        assert_eq!(relative_path("").unwrap(), PathBuf::new());
        assert!(relative_path("../escape").is_err());
        assert!(relative_path("a/../../escape").is_err());
        assert!(relative_path("/etc").is_err());
    }

    #[test]
    fn sparse_checkout_keeps_listed_dirs() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "apps/a.yaml",
            "apps/b/c.yaml",
            "infra/x.yaml",
            "README.md",
            "clusters/prod/k.yaml",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        keep_only(dir.path(), &["apps".into(), "clusters/prod".into()]).unwrap();
        assert!(dir.path().join("apps/b/c.yaml").exists());
        assert!(dir.path().join("clusters/prod/k.yaml").exists());
        assert!(!dir.path().join("infra").exists());
        assert!(!dir.path().join("README.md").exists());
        // A directory the commit lacks fails the fetch, naming it.
        let err = keep_only(dir.path(), &["apps".into(), "./nope".into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to sparse checkout directories : sparse checkout dir './nope' does not exist in repository"
        );
        assert!(
            dir.path().join("apps/a.yaml").exists(),
            "nothing pruned on failure"
        );
    }

    #[test]
    fn copies_trees_without_links() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("sub")).unwrap();
        std::fs::write(src.join("sub/f.yaml"), "f").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("link")).unwrap();
        copy_tree(&src, &dir.path().join("dst/inc")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("dst/inc/sub/f.yaml")).unwrap(),
            "f"
        );
        assert!(dir.path().join("dst/inc/link").symlink_metadata().is_err());
    }

    fn verification(mode: Option<GitVerificationMode>) -> GitRepositoryVerification {
        GitRepositoryVerification {
            mode,
            secret_ref: api::meta::LocalObjectReference {
                name: "keys".into(),
            },
        }
    }

    fn checked_out(tag: Option<git::AnnotatedTag>) -> git::Commit {
        git::Commit {
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            revision: "main@sha1:0123456789abcdef0123456789abcdef01234567".into(),
            message: "m".into(),
            signed: git::SignedObject {
                payload: b"tree x\n".to_vec(),
                signature: None,
            },
            referencing_tag: tag,
        }
    }

    #[test]
    fn verification_is_repeated_until_the_mode_is_covered() {
        use GitVerificationMode::*;
        let head = verification(Some(Head));
        assert!(!requires_verification(None, None));
        assert!(requires_verification(Some(&head), None));
        assert!(!requires_verification(Some(&head), Some(Head)));
        assert!(!requires_verification(
            Some(&verification(Some(LegacyHead))),
            Some(Head)
        ));
        assert!(!requires_verification(
            Some(&verification(None)),
            Some(Head)
        ));
        assert!(requires_verification(
            Some(&verification(Some(Tag))),
            Some(Head)
        ));
        assert!(requires_verification(Some(&head), Some(Tag)));
        assert!(requires_verification(
            Some(&verification(Some(TagAndHEAD))),
            Some(Tag)
        ));
        assert!(!requires_verification(Some(&head), Some(TagAndHEAD)));
        assert_eq!(verification_mode(&verification(Some(LegacyHead))), Head);
        assert_eq!(verification_mode(&verification(None)), Head);
    }

    #[test]
    fn verification_failures_carry_flux_reasons_and_messages() {
        let failure = |mode, commit: &git::Commit| match verified_message(
            &verification(Some(mode)),
            commit,
            &Default::default(),
        ) {
            Err(Error::Verification {
                reason,
                message,
                stalled,
            }) => (reason, message, stalled),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            failure(GitVerificationMode::Head, &checked_out(None)),
            (
                "InvalidCommitSignature",
                "signature verification of commit '0123456789abcdef0123456789abcdef01234567' \
                 failed: unsupported signature type: empty"
                    .to_string(),
                false
            )
        );
        assert_eq!(
            failure(GitVerificationMode::Tag, &checked_out(None)),
            (
                "InvalidVerificationMode",
                "cannot verify tag object's signature if a tag reference is not specified"
                    .to_string(),
                true
            )
        );
        let unsigned_tag = git::AnnotatedTag {
            name: "v1".into(),
            id: "fedcba".into(),
            signed: git::SignedObject::default(),
        };
        assert_eq!(
            failure(
                GitVerificationMode::TagAndHEAD,
                &checked_out(Some(unsigned_tag))
            ),
            (
                "InvalidGitObject",
                "cannot verify signature of tag 'v1@fedcba' since it is not signed".to_string(),
                false
            )
        );
        let verification_error = Error::Verification {
            reason: "InvalidCommitSignature",
            message: "m".into(),
            stalled: false,
        };
        assert_eq!(verification_error.failure().condition, None);
        assert_eq!(
            verification_error.failure().reason,
            "InvalidCommitSignature"
        );
    }

    #[test]
    fn failures_map_to_flux_reasons() {
        let auth = Error::Git(git::Error::Authentication {
            url: "u".into(),
            message: "401".into(),
        });
        assert_eq!(auth.failure().reason, "AuthenticationFailed");
        assert_eq!(auth.failure().condition, Some("FetchFailed"));
        let missing = Error::Git(git::Error::ReferenceNotFound {
            reference: "refs/heads/x".into(),
            url: "u".into(),
        });
        assert_eq!(missing.failure().reason, "GitOperationFailed");
        assert!(!missing.failure().is_stalled());
        let url = Error::InvalidUrl {
            url: "x".into(),
            reason: "y".into(),
        };
        assert!(url.failure().is_stalled());
        assert_eq!(url.failure().reason, "URLInvalid");
        let include = Error::Include {
            reason: "NoArtifact",
            message: "m".into(),
        };
        assert!(include.failure().is_waiting());
        assert_eq!(include.failure().condition, Some("IncludeUnavailable"));
    }
}
