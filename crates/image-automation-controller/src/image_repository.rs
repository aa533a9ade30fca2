//! ImageRepository: scan the registry repository for tags, as Flux's
//! image-reflector-controller does.
//!
//! Fetch (what the spec asks for and whether a scan is due), decide (scan
//! now, or only report the last scan until the interval has passed), act
//! (list tags, drop the excluded ones, store them, record the scan).

use std::sync::Arc;
use std::time::Duration;

use api::image::{ImageRepository, ImageRepositoryStatus, ScanResult};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use regex::Regex;

use crate::Error;
use crate::context::Context;
use crate::image_name::ImageName;
use crate::reconcile::{Halt, Success, finish, reconcile_object};
use crate::registry::{self, READ_OPERATION_FAILED};

/// Flux's default exclusion list: cosign signature tags.
pub const DEFAULT_EXCLUSION_LIST: &str = r"^.*\.sig$";
/// How many of the newest tags `status.lastScanResult.latestTags` shows
/// unless `spec.latestTagsCount` says otherwise.
const LATEST_TAGS: usize = 10;

/// Reconciles one ImageRepository.
pub async fn reconcile(obj: Arc<ImageRepository>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_object(
        obj,
        ctx,
        |repo| repo.spec.suspend == Some(true),
        |obj, ctx, mut session| async move {
            // The session already counts a new request as handled; whether
            // one is pending is read from the status as last written.
            let handled = session
                .written()
                .reconcile_request
                .last_handled_reconcile_at
                .clone();
            let result = scan(&obj, &ctx, &mut session.status, handled.as_deref()).await;
            finish(obj.as_ref(), &ctx, session, result).await
        },
        |repo, ctx| {
            ctx.tags
                .delete(&repo.namespace().unwrap_or_default(), &repo.name_any())
                .map_err(Error::io("removing the stored tags"))
        },
    )
    .await
}

/// The ImageRepositories of `secret`'s namespace that take credentials, a
/// CA or proxy settings from it (for `--watch-configs-label-selector`).
pub fn users_of_secret(
    secret: &k8s_openapi::api::core::v1::Secret,
    repositories: &[Arc<ImageRepository>],
) -> Vec<kube::runtime::reflector::ObjectRef<ImageRepository>> {
    let name = secret.name_any();
    repositories
        .iter()
        .filter(|r| r.namespace() == secret.namespace())
        .filter(|r| {
            let spec = &r.spec;
            [
                &spec.secret_ref,
                &spec.cert_secret_ref,
                &spec.proxy_secret_ref,
            ]
            .into_iter()
            .flatten()
            .any(|s| s.name == name)
        })
        .map(|r| kube::runtime::reflector::ObjectRef::from_obj(r.as_ref()))
        .collect()
}

/// `spec.exclusionList`, Flux's default when unset.
pub fn exclusion_list(repo: &ImageRepository) -> Vec<String> {
    repo.spec
        .exclusion_list
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_EXCLUSION_LIST.to_string()])
}

fn interval(repo: &ImageRepository) -> Duration {
    repo.spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(600))
}

/// `spec.timeout`, defaulting to the interval as in Flux.
pub fn timeout(repo: &ImageRepository) -> Duration {
    repo.spec
        .timeout
        .as_ref()
        .and_then(|t| t.to_std().ok())
        .unwrap_or_else(|| interval(repo))
}

/// The Ready message of a scan result.
fn scanned_message(result: &ScanResult) -> String {
    format!(
        "successful scan: found {} tags with checksum {}",
        result.tag_count,
        result.revision.as_deref().unwrap_or_default()
    )
}

async fn scan(
    repo: &ImageRepository,
    ctx: &Context,
    status: &mut ImageRepositoryStatus,
    handled_request: Option<&str>,
) -> Result<Success, Halt> {
    let namespace = repo.namespace().unwrap_or_default();
    let name = repo.name_any();

    // Fetch: what to scan, and how.
    registry::check_supported(repo)?;
    let image = registry::image_name(repo)?;
    let exclusions = exclusion_list(repo);
    let patterns = exclusions
        .iter()
        .map(|p| {
            Regex::new(p).map_err(|e| {
                Halt::stall(
                    READ_OPERATION_FAILED,
                    format!("scan failed: failed to compile regex {p}: {e}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let stored = ctx.tags.tags(&namespace, &name).map_err(|e| {
        Halt::retry(
            READ_OPERATION_FAILED,
            format!("failed to read the stored tags: {e}"),
        )
    })?;

    // Decide: a scan is due, or the last one still stands.
    if let Some(wait) = next_scan(
        repo,
        status,
        handled_request,
        &image,
        &exclusions,
        stored.is_empty(),
    ) && let Some(last) = &status.last_scan_result
    {
        return Ok(Success {
            message: scanned_message(last),
            requeue: Action::requeue(wait),
        });
    }

    // Act: list, filter, store, record.
    let client = registry::client(ctx, repo, &image, timeout(repo)).await?;
    let tags = client
        .list_tags()
        .await
        .map_err(|e| registry::registry_failure("scan failed", e))?;
    let mut kept: Vec<String> = tags
        .into_iter()
        .filter(|tag| !patterns.iter().any(|p| p.is_match(tag)))
        .collect();
    // Flux stores (and checksums) the tags newest-first by plain string order.
    kept.sort_by(|a, b| b.cmp(a));
    let revision = ctx.tags.set_tags(&namespace, &name, &kept).map_err(|e| {
        Halt::retry(
            READ_OPERATION_FAILED,
            format!(
                "scan failed: failed to set tags for \"{}\": {e}",
                image.canonical()
            ),
        )
    })?;
    let count = repo
        .spec
        .latest_tags_count
        .map_or(LATEST_TAGS, |n| usize::try_from(n).unwrap_or(LATEST_TAGS));
    let latest = latest_tags(&kept, count);
    let result = ScanResult {
        revision: Some(revision),
        tag_count: i64::try_from(kept.len()).unwrap_or(i64::MAX),
        scan_time: Some(Time(k8s_openapi::jiff::Timestamp::now())),
        latest_tags: (!latest.is_empty()).then_some(latest),
    };
    tracing::info!(%namespace, %name, image = %image.canonical(), tags = kept.len(), "scanned");
    let message = scanned_message(&result);
    status.last_scan_result = Some(result);
    status.canonical_image_name = Some(image.canonical());
    status.observed_exclusion_list = Some(exclusions);
    Ok(Success {
        message,
        requeue: ctx.requeue_after(interval(repo)),
    })
}

/// The `count` newest of `tags` (kept newest-first by string order): the
/// versions first, highest version first, then the other tags in string
/// order. Flux lists the first ten by string order alone, which puts `2.9.5`
/// before `2.10.0` (image-reflector-controller#443).
fn latest_tags(tags: &[String], count: usize) -> Vec<String> {
    let mut versions: Vec<(runtime::semver::Version, &String)> = Vec::new();
    let mut others: Vec<&String> = Vec::new();
    for tag in tags {
        match crate::policy::strict_version(tag) {
            Some(version) => versions.push((version, tag)),
            None => others.push(tag),
        }
    }
    // Stable: equal versions (`v1.0.0`, `1.0.0`) keep their string order.
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    versions
        .into_iter()
        .map(|(_, tag)| tag)
        .chain(others)
        .take(count)
        .cloned()
        .collect()
}

/// `None` when a scan is due now (Flux's rules: never scanned, a new
/// reconcile request, a new image or exclusion list, no stored tags, or the
/// interval has passed); otherwise how long until it is.
fn next_scan(
    repo: &ImageRepository,
    status: &ImageRepositoryStatus,
    handled_request: Option<&str>,
    image: &ImageName,
    exclusions: &[String],
    nothing_stored: bool,
) -> Option<Duration> {
    let last = status.last_scan_result.as_ref()?;
    let requested = runtime::reconcile_request::requested_at(&repo.metadata);
    if requested.is_some() && requested != handled_request {
        return None;
    }
    if status.canonical_image_name.as_deref() != Some(image.canonical().as_str()) {
        return None;
    }
    let mut observed = status.observed_exclusion_list.clone().unwrap_or_default();
    let mut wanted = exclusions.to_vec();
    observed.sort();
    wanted.sort();
    if observed != wanted || nothing_stored {
        return None;
    }
    let scanned = last.scan_time.as_ref()?.0;
    let elapsed = k8s_openapi::jiff::Timestamp::now().duration_since(scanned);
    let elapsed = Duration::try_from(elapsed).unwrap_or_default();
    let wait = interval(repo).saturating_sub(elapsed);
    (wait >= Duration::from_secs(1)).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_tags_put_the_highest_versions_first() {
        let mut tags: Vec<String> = [
            "2.9.5", "2.10.0", "2.10.14", "latest", "v2.11.0", "main-abc", "2.9.10",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        tags.sort_by(|a, b| b.cmp(a));
        assert_eq!(
            latest_tags(&tags, 10),
            [
                "v2.11.0", "2.10.14", "2.10.0", "2.9.10", "2.9.5", "main-abc", "latest"
            ]
        );
        assert_eq!(latest_tags(&tags, 2), ["v2.11.0", "2.10.14"]);
    }
}
