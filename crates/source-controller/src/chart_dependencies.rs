//! The dependencies of a chart built from a source that `charts/` does not
//! already hold, added as Flux adds them: `file://` paths from the same
//! source artifact (never outside it), charts from HTTP repositories and from
//! OCI registries (`oci://`), with the credentials (and `insecure`) of the
//! HelmRepository object in the namespace that has the same URL (anonymously
//! when there is none).

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use api::source::{HelmRepository, HelmRepositoryType};
use kube::api::Api;

use crate::Error;
use crate::chart_package::{BuildReason, Chart, Dependency, Limits};
use crate::chart_repository::{ChartRepositoryClient, select_version};
use crate::controller::Context;
use crate::oci_chart::OciChartRepository;

/// Timeout for a dependency's index or chart download.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Where a chart being built lives.
pub struct ChartLocation<'a> {
    /// The unpacked source artifact.
    pub source_root: &'a Path,
    /// The chart directory, relative to `source_root`.
    pub chart_dir: &'a Path,
    /// The HelmChart's namespace (for HelmRepository credentials).
    pub namespace: &'a str,
}

/// Adds the missing dependencies of `chart`; returns how many were added.
pub async fn add_missing(
    ctx: &Context,
    location: &ChartLocation<'_>,
    chart: &mut Chart,
) -> Result<usize, Error> {
    let missing: Vec<Dependency> = chart
        .dependencies()?
        .into_iter()
        .filter(|d| !chart.has_dependency(&d.name))
        .collect();
    for dependency in &missing {
        let repository = dependency.repository.clone().unwrap_or_default();
        let added = if repository.is_empty() || repository.starts_with("file://") {
            local(ctx, location, dependency, &repository)
                .map_err(|e| format!("failed to add local dependency '{}': {e}", dependency.name))
        } else {
            remote(ctx, location.namespace, dependency, &repository)
                .await
                .map_err(|e| format!("failed to add remote dependency '{}': {e}", dependency.name))
        };
        let (version, archive) = added.map_err(|m| BuildReason::DependencyBuild.error(m))?;
        chart.add_dependency_archive(&dependency.name, &version, archive);
    }
    Ok(missing.len())
}

/// A `file://` dependency (relative to the chart directory), packaged.
fn local(
    ctx: &Context,
    location: &ChartLocation<'_>,
    dependency: &Dependency,
    repository: &str,
) -> Result<(String, Vec<u8>), String> {
    let relative = match repository.strip_prefix("file://") {
        Some(path) => location.chart_dir.join(path),
        None => location.chart_dir.join("charts").join(&dependency.name),
    };
    let relative = inside_root(&relative)
        .ok_or_else(|| format!("path '{repository}' leaves the source artifact"))?;
    let dir = location.source_root.join(&relative);
    if !dir.is_dir() {
        return Err(format!(
            "no chart found at '{}' (reference '{repository}')",
            relative.display()
        ));
    }
    let sub = Chart::from_dir(&dir, Limits::of(&ctx.settings)).map_err(|e| e.to_string())?;
    let metadata = sub.metadata().map_err(|e| e.to_string())?;
    if let Some(constraint) = dependency.version.as_deref().filter(|v| !v.is_empty()) {
        let range = runtime::semver::Range::parse(constraint)
            .map_err(|e| format!("invalid version/constraint format '{constraint}': {e}"))?;
        let satisfied = runtime::semver::Version::parse(&metadata.version)
            .is_some_and(|version| range.matches(&version));
        if !satisfied {
            return Err(format!(
                "can't get a valid version for constraint '{constraint}'"
            ));
        }
    }
    let archive = sub.package(&metadata.name).map_err(|e| e.to_string())?;
    Ok((metadata.version, archive))
}

/// `path` with `.` and `..` resolved, if it stays below the root.
fn inside_root(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// A dependency from an HTTP chart repository.
async fn remote(
    ctx: &Context,
    namespace: &str,
    dependency: &Dependency,
    repository: &str,
) -> Result<(String, Vec<u8>), String> {
    if repository.starts_with('@') || repository.starts_with("alias:") {
        return Err(format!(
            "repository alias '{repository}' is not supported: use the repository URL"
        ));
    }
    let requested = dependency.version.as_deref().unwrap_or("");
    let limit = ctx.settings.helm_chart_max_size;
    if repository.starts_with("oci://") {
        let registry = match repository_object(ctx, namespace, repository, true).await? {
            Some(repo) => OciChartRepository::for_repository(ctx, namespace, &repo)
                .await
                .map_err(|e| e.to_string())?,
            None => OciChartRepository::anonymous(repository),
        };
        let version = registry
            .resolve_version(&dependency.name, requested)
            .await
            .map_err(|e| e.to_string())?;
        let archive = registry
            .pull(&dependency.name, &version, limit)
            .await
            .map_err(|e| e.to_string())?;
        return Ok((version, archive));
    }
    if !(repository.starts_with("http://") || repository.starts_with("https://")) {
        return Err(format!("unsupported repository URL '{repository}'"));
    }
    let client = match repository_object(ctx, namespace, repository, false).await? {
        Some(repo) => {
            ChartRepositoryClient::for_repository(ctx, namespace, &repo, DOWNLOAD_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?
        }
        None => ChartRepositoryClient::anonymous(repository, DOWNLOAD_TIMEOUT)
            .map_err(|e| e.to_string())?,
    };
    let index = client.index(ctx.settings.helm_index_max_size).await?;
    let entry = select_version(&index, &dependency.name, requested).map_err(|e| e.to_string())?;
    let archive = client.download(&entry, limit).await?;
    Ok((entry.version, archive))
}

/// The HelmRepository (of `type: oci` when `oci`) in `namespace` whose URL
/// is `url`, if any.
async fn repository_object(
    ctx: &Context,
    namespace: &str,
    url: &str,
    oci: bool,
) -> Result<Option<HelmRepository>, String> {
    let api: Api<HelmRepository> = Api::namespaced(ctx.client.clone(), namespace);
    let repos = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing HelmRepositories: {e}"))?;
    let wanted = url.trim_end_matches('/');
    Ok(repos.items.into_iter().find(|repo| {
        (repo.spec.r#type == Some(HelmRepositoryType::Oci)) == oci
            && repo.spec.url.trim_end_matches('/') == wanted
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_stay_inside_the_source() {
        assert_eq!(
            inside_root(&Path::new("charts/app").join("../lib")),
            Some(PathBuf::from("charts/lib"))
        );
        assert_eq!(inside_root(&Path::new("app").join("../../etc")), None);
        assert_eq!(inside_root(Path::new("/etc")), None);
    }
}
