//! `spec.include`: the artifacts of other GitRepositories copied into the
//! checkout (digest checked, from this controller's own store), refused when
//! they form a cycle; and which repositories include a changed one.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use api::meta::Artifact;
use api::source::{GitRepository, GitRepositoryInclude};
use kube::ResourceExt;
use kube::api::Api;

use crate::Error;
use crate::controller::Context;
use crate::storage::ArtifactStore;

/// How deep include chains are followed when looking for cycles.
const MAX_INCLUDE_DEPTH: usize = 32;

/// An include ready to be copied.
pub(super) struct ResolvedInclude {
    pub(super) name: String,
    pub(super) from_path: PathBuf,
    pub(super) to_path: PathBuf,
    pub(super) artifact: Artifact,
}
pub(super) async fn resolve_includes(
    obj: &GitRepository,
    ctx: &Context,
) -> Result<Vec<ResolvedInclude>, Error> {
    let Some(includes) = obj.spec.include.as_ref().filter(|i| !i.is_empty()) else {
        return Ok(Vec::new());
    };
    let namespace = obj.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut resolved = Vec::new();
    for include in includes {
        let name = include.repository.name.clone();
        let to_path =
            relative_path(include.to_path.as_deref().unwrap_or(&name)).map_err(|reason| {
                Error::Include {
                    reason: "IllegalPath",
                    message: format!(
                        "path calculation for include '{name}' failed: toPath {reason}"
                    ),
                }
            })?;
        let from_path =
            relative_path(include.from_path.as_deref().unwrap_or("")).map_err(|reason| {
                Error::Include {
                    reason: "IllegalPath",
                    message: format!(
                        "path calculation for include '{name}' failed: fromPath {reason}"
                    ),
                }
            })?;
        if name == obj.name_any() {
            return Err(Error::Include {
                reason: "CircularInclude",
                message: format!("include '{name}' refers to this GitRepository itself"),
            });
        }
        let dependency = match api.get_opt(&name).await? {
            Some(dep) => dep,
            None => {
                return Err(Error::Include {
                    reason: "NotFound",
                    message: format!(
                        "could not get resource for include '{name}': gitrepositories \"{name}\" not found"
                    ),
                });
            }
        };
        check_include_cycle(&api, &obj.name_any(), &dependency).await?;
        let Some(artifact) = dependency.status.as_ref().and_then(|s| s.artifact.clone()) else {
            return Err(Error::Include {
                reason: "NoArtifact",
                message: format!("no artifact available for include '{name}'"),
            });
        };
        resolved.push(ResolvedInclude {
            name,
            from_path,
            to_path,
            artifact,
        });
    }
    Ok(resolved)
}
/// Refuses include chains that lead back to `origin`: each new artifact of one
/// repository would otherwise change the other's forever.
pub(super) async fn check_include_cycle(
    api: &Api<GitRepository>,
    origin: &str,
    first: &GitRepository,
) -> Result<(), Error> {
    let mut pending: Vec<(Vec<String>, Vec<GitRepositoryInclude>)> = vec![(
        vec![origin.to_string(), first.name_any()],
        first.spec.include.clone().unwrap_or_default(),
    )];
    let mut visited = std::collections::BTreeSet::new();
    while let Some((chain, includes)) = pending.pop() {
        for include in includes {
            let next = include.repository.name;
            if next == origin {
                let mut cycle = chain.clone();
                cycle.push(next);
                return Err(Error::Include {
                    reason: "CircularInclude",
                    message: format!("circular include: {}", cycle.join(" -> ")),
                });
            }
            if chain.len() > MAX_INCLUDE_DEPTH || !visited.insert(next.clone()) {
                continue;
            }
            if let Some(repo) = api.get_opt(&next).await? {
                let mut longer = chain.clone();
                longer.push(next);
                pending.push((longer, repo.spec.include.unwrap_or_default()));
            }
        }
    }
    Ok(())
}
/// A path inside the artifact: relative, no `..`, no absolute parts.
pub(super) fn relative_path(text: &str) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for component in Path::new(text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("must not contain '..'"),
            Component::RootDir | Component::Prefix(_) => return Err("must be relative"),
        }
    }
    Ok(out)
}
pub(super) fn same_artifacts(a: &[Artifact], b: &[Artifact]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x.revision == y.revision && x.digest == y.digest)
}
/// Copies `fromPath` of an included artifact (read from our own store, digest
/// checked) to `toPath` in the checkout.
pub(super) fn copy_include(
    store: &ArtifactStore,
    include: &ResolvedInclude,
    checkout: &Path,
) -> Result<(), Error> {
    let copy_failure = |message: String| Error::Include {
        reason: "CopyFailure",
        message: format!(
            "failed to copy '{}' include from '{}' to '{}': {message}",
            include.name,
            include.from_path.display(),
            include.to_path.display()
        ),
    };
    let file = store
        .local_path(&include.artifact.path)
        .map_err(|e| copy_failure(e.to_string()))?;
    let bytes = std::fs::read(&file).map_err(|e| copy_failure(format!("reading artifact: {e}")))?;
    runtime::artifact::verify_digest(&bytes, &include.artifact.digest)
        .map_err(|e| copy_failure(e.to_string()))?;
    let unpacked = tempfile::tempdir().map_err(|e| copy_failure(e.to_string()))?;
    runtime::artifact::untar_gz(
        &bytes[..],
        unpacked.path(),
        runtime::artifact::UntarOptions::default(),
    )
    .map_err(|e| copy_failure(e.to_string()))?;
    let source = unpacked.path().join(&include.from_path);
    if !source.exists() {
        return Err(copy_failure(
            "the path does not exist in the included artifact".into(),
        ));
    }
    let target = checkout.join(&include.to_path);
    copy_tree(&source, &target).map_err(|e| copy_failure(e.to_string()))
}
/// Copies regular files and directories from `source` to `target`, replacing
/// files that exist; links are not followed.
pub(super) fn copy_tree(source: &Path, target: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(source)?;
    if meta.is_file() {
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(source, target)?;
        return Ok(());
    }
    if !meta.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(target)?;
    for entry in std::fs::read_dir(source)? {
        let entry = entry?;
        copy_tree(&entry.path(), &target.join(entry.file_name()))?;
    }
    Ok(())
}
/// Lists the GitRepositories that include `changed`, for re-reconciling them
/// when its artifact changes.
pub fn includers_of(
    changed: &GitRepository,
    all: &[Arc<GitRepository>],
) -> Vec<kube::runtime::reflector::ObjectRef<GitRepository>> {
    let namespace = changed.namespace();
    let name = changed.name_any();
    all.iter()
        .filter(|repo| repo.namespace() == namespace)
        .filter(|repo| {
            repo.spec
                .include
                .as_ref()
                .is_some_and(|includes| includes.iter().any(|i| i.repository.name == name))
        })
        .map(|repo| kube::runtime::reflector::ObjectRef::from(repo.as_ref()))
        .collect()
}
