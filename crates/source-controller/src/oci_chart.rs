//! Charts from OCI registries, as Helm stores them (`helm push`): the chart
//! `<name>` of a `type: oci` HelmRepository at `oci://host/path` is the
//! repository `oci://host/path/<name>`, its versions are the tags (`+` of a
//! version written `_`), and the chart is the layer of media type
//! `application/vnd.cncf.helm.chart.content.v1.tar+gzip`, pulled with its
//! digest checked through the shared `oci` crate.

use std::time::Duration;

use api::source::HelmRepository;

use crate::Error;
use crate::chart_package::BuildReason;
use crate::controller::{Context, read_secret};

/// Flux's default timeout for registry operations.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An OCI chart repository and how to reach it.
pub struct OciChartRepository {
    url: String,
    credentials: oci::Credentials,
    options: oci::Options,
}

impl OciChartRepository {
    /// The registry of a `type: oci` HelmRepository: its `secretRef` (a
    /// `kubernetes.io/dockerconfigjson` Secret, or `username`/`password`),
    /// `insecure` (plain HTTP) and `timeout`.
    pub async fn for_repository(
        ctx: &Context,
        namespace: &str,
        repo: &HelmRepository,
    ) -> Result<Self, Error> {
        let url = repo.spec.url.trim_end_matches('/').to_string();
        let (host, _) = oci::parse_url(&format!("{url}/chart")).map_err(|source| Error::Oci {
            context: "invalid OCI HelmRepository URL".into(),
            source,
        })?;
        crate::controller::only_generic_provider(
            repo.spec.provider,
            api::source::CloudProvider::Generic,
        )?;
        if repo.spec.cert_secret_ref.is_some() {
            return Err(Error::Unsupported(
                "certSecretRef is not supported for OCI HelmRepositories by this source-controller"
                    .into(),
            ));
        }
        let credentials = match &repo.spec.secret_ref {
            Some(secret_ref) => {
                let data = read_secret(ctx, namespace, &secret_ref.name).await?;
                let secret_error = |message: String| Error::Secret {
                    namespace: namespace.to_string(),
                    name: secret_ref.name.clone(),
                    message,
                };
                let text = |key: &str| {
                    data.get(key)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .filter(|v| !v.is_empty())
                };
                if let Some(json) = data.get(oci::DOCKER_CONFIG_JSON_KEY) {
                    oci::Credentials::from_docker_config_json(json, &host)
                        .map_err(|e| secret_error(e.to_string()))?
                } else if let Some(username) = text("username") {
                    oci::Credentials::basic(username, text("password").unwrap_or_default())
                } else {
                    return Err(secret_error(format!(
                        "the secret has neither '{}' nor 'username'",
                        oci::DOCKER_CONFIG_JSON_KEY
                    )));
                }
            }
            None => oci::Credentials::Anonymous,
        };
        let timeout = match &repo.spec.timeout {
            Some(t) => t
                .to_std()
                .map_err(|e| Error::InvalidDuration(e.to_string()))?,
            None => DEFAULT_TIMEOUT,
        };
        Ok(OciChartRepository {
            url,
            credentials,
            options: oci::Options {
                insecure: repo.spec.insecure == Some(true),
                timeout,
                ..oci::Options::default()
            },
        })
    }

    /// A registry no HelmRepository describes: anonymous, over HTTPS.
    pub fn anonymous(url: &str) -> OciChartRepository {
        OciChartRepository {
            url: url.trim_end_matches('/').to_string(),
            credentials: oci::Credentials::Anonymous,
            options: oci::Options {
                insecure: false,
                timeout: DEFAULT_TIMEOUT,
                ..oci::Options::default()
            },
        }
    }

    fn chart_repository(&self, chart: &str) -> Result<oci::Repository, Error> {
        oci::Repository::new(
            &format!("{}/{chart}", self.url),
            &self.credentials,
            &self.options,
        )
        .map_err(|source| Error::Oci {
            context: "failed to create the registry client".into(),
            source,
        })
    }

    /// The version of `chart` that `version` asks for: an exact version is
    /// taken as it is (no tag listing, as Flux), anything else is a semver
    /// range over the tags (`*` when empty).
    pub async fn resolve_version(&self, chart: &str, version: &str) -> Result<String, Error> {
        if is_exact_version(version) {
            return Ok(version.to_string());
        }
        let repository = self.chart_repository(chart)?;
        let tags = repository.list_tags().await.map_err(|source| match source {
            oci::Error::Authentication { .. } => Error::Oci {
                context: format!("failed to list the tags of chart '{chart}'"),
                source,
            },
            other => BuildReason::ChartPull.error(format!(
                "failed to get chart version for remote reference: could not get tags for '{chart}': {other}"
            )),
        })?;
        let versions: Vec<String> = tags.iter().map(|tag| tag.replace('_', "+")).collect();
        if versions.is_empty() {
            return Err(BuildReason::ChartReference.error(format!(
                "failed to get chart version for remote reference: unable to locate any tags in provided repository: {chart}"
            )));
        }
        let range_text = if version.is_empty() { "*" } else { version };
        let range = runtime::semver::Range::parse(range_text).map_err(|e| {
            BuildReason::ChartReference.error(format!(
                "failed to get chart version for remote reference: {e}"
            ))
        })?;
        range
            .highest(versions.iter().map(String::as_str))
            .map(|(found, _)| found.to_string())
            .ok_or_else(|| {
                BuildReason::ChartReference.error(format!(
                    "failed to get chart version for remote reference: could not locate a version matching provided version string {range_text}"
                ))
            })
    }

    /// Pulls the chart layer of `chart` at `version` (at most `limit` bytes).
    pub async fn pull(&self, chart: &str, version: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let pull_error = |message: String| {
            BuildReason::ChartPull.error(format!(
                "failed to download chart for remote reference: {message}"
            ))
        };
        let repository = self.chart_repository(chart)?;
        let resolved = repository
            .resolve(&oci::Selector::Tag(version.replace('+', "_")))
            .await
            .map_err(|e| match e {
                oci::Error::Authentication { .. } => Error::Oci {
                    context: format!("failed to resolve chart '{chart}'"),
                    source: e,
                },
                other => pull_error(other.to_string()),
            })?;
        let manifest = repository
            .pull_manifest(&resolved.digest)
            .await
            .map_err(|e| pull_error(e.to_string()))?;
        let layer = manifest
            .layer(Some(oci::HELM_CHART_CONTENT_MEDIA_TYPE))
            .ok_or_else(|| {
                pull_error(format!(
                    "the artifact '{}:{version}' has no layer of media type '{}'",
                    repository.name(),
                    oci::HELM_CHART_CONTENT_MEDIA_TYPE
                ))
            })?
            .clone();
        let work = tempfile::NamedTempFile::new()
            .map_err(Error::io("creating a file for the chart layer"))?;
        repository
            .pull_blob_to(&layer, work.path(), limit)
            .await
            .map_err(|e| pull_error(e.to_string()))?;
        std::fs::read(work.path()).map_err(Error::io("reading the pulled chart layer"))
    }
}

/// A full version (`1.2.3`, `1.2.3-rc.1+meta`), not a range.
fn is_exact_version(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    core.split('.').count() == 3
        && core
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        && runtime::semver::Version::parse(version).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_versions_skip_the_tag_listing() {
        assert!(is_exact_version("1.2.3"));
        assert!(is_exact_version("1.2.3-rc.1+build.5"));
        for range in [
            "",
            "*",
            "1.x",
            "1.2",
            ">=1.0.0",
            "~1.2.3",
            "v1.2.3",
            "1.2.3 - 1.4.0",
        ] {
            assert!(!is_exact_version(range), "{range}");
        }
    }
}
