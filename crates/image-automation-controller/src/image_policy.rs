//! ImagePolicy: the latest image of an ImageRepository by the policy's
//! rules, published as `status.latestRef`, as Flux's
//! image-reflector-controller does.
//!
//! Fetch (the referenced repository, if this namespace may use it, and its
//! stored tags), decide (the latest tag by [`ImagePolicySelector`]), act
//! (reflect the digest when asked, record the new reference and the one
//! before it).

use std::sync::Arc;

use api::image::{ImagePolicy, ImagePolicyStatus, ImageRef, ImageRepository, ReflectionPolicy};
use api::meta::reason;
use k8s_openapi::api::core::v1::Namespace;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::context::Context;
use crate::image_repository::timeout;
use crate::policy::{ImagePolicySelector, PolicyError};
use crate::reconcile::{Halt, Success, finish, reconcile_object};
use crate::registry::{self, READ_OPERATION_FAILED};

/// Reason: `digestReflectionPolicy: Always` without an interval.
const INTERVAL_NOT_CONFIGURED: &str = "IntervalNotConfigured";
/// Reason: the policy cannot select anything whatever the tags.
const INVALID_POLICY: &str = "InvalidPolicy";
/// Reason for other failures (Kubernetes' `metav1.StatusFailure`, as Flux uses it).
const FAILURE: &str = "Failure";

/// Reconciles one ImagePolicy.
pub async fn reconcile(obj: Arc<ImagePolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    reconcile_object(
        obj,
        ctx,
        |policy| policy.spec.suspend == Some(true),
        |obj, ctx, mut session| async move {
            let result = select(&obj, &ctx, &mut session.status).await;
            finish(obj.as_ref(), &ctx, session, result).await
        },
        |_, _| Ok(()),
    )
    .await
}

/// The ImagePolicies referring to `repo` (for the repository watch).
pub fn users_of(
    repo: &ImageRepository,
    policies: &Store<ImagePolicy>,
) -> Vec<ObjectRef<ImagePolicy>> {
    let namespace = repo.namespace();
    let name = repo.name_any();
    policies
        .state()
        .iter()
        .filter(|p| p.spec.image_repository_ref.name == name)
        .filter(|p| {
            p.spec
                .image_repository_ref
                .namespace
                .clone()
                .or_else(|| p.namespace())
                == namespace
        })
        .map(|p| ObjectRef::from_obj(p.as_ref()))
        .collect()
}

/// What of an ImageRepository changes an ImagePolicy's answer: its scan
/// result and its image name. Always a value: a predicate's `None` lets
/// every change through.
pub fn repository_scan(repo: &ImageRepository) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let status = repo.status.as_ref();
    status
        .and_then(|s| s.last_scan_result.as_ref())
        .and_then(|r| r.revision.as_deref())
        .hash(&mut hasher);
    status.map(|s| &s.canonical_image_name).hash(&mut hasher);
    repo.spec.image.hash(&mut hasher);
    Some(hasher.finish())
}

async fn select(
    policy: &ImagePolicy,
    ctx: &Context,
    status: &mut ImagePolicyStatus,
) -> Result<Success, Halt> {
    let spec = &policy.spec;
    let reflection = spec
        .digest_reflection_policy
        .unwrap_or(ReflectionPolicy::Never);
    let interval = spec.interval.as_ref().and_then(|i| i.to_std().ok());
    if reflection == ReflectionPolicy::Always && interval.is_none() {
        return Err(Halt::stall(
            INTERVAL_NOT_CONFIGURED,
            "spec.interval must be set when spec.digestReflectionPolicy is set to 'Always'",
        ));
    }

    // Fetch: the repository (if this namespace may use it) and its tags.
    let repo = image_repository(policy, ctx).await?;
    let image = registry::image_name(&repo)?;
    let selector = ImagePolicySelector::new(&spec.policy, spec.filter_tags.as_ref())
        .map_err(|e| Halt::stall(INVALID_POLICY, e.to_string()))?;
    let tags = ctx
        .tags
        .tags(&repo.namespace().unwrap_or_default(), &repo.name_any())
        .map_err(|e| Halt::retry(FAILURE, format!("failed to read tags from database: {e}")))?;
    if tags.is_empty() {
        return Err(Halt::wait(
            reason::DEPENDENCY_NOT_READY,
            "no tags in database",
        ));
    }

    // Decide: the latest tag.
    let policy_halt = |e| match e {
        PolicyError::Invalid(message) => Halt::stall(INVALID_POLICY, message),
        PolicyError::NoLatest(message) => Halt::retry(FAILURE, message),
    };
    let tag: String = if selector.by_build_time() {
        let candidates = selector.candidates(&tags);
        let built = build_times(ctx, &repo, &image, &candidates).await?;
        let built: Vec<(&str, Option<String>)> =
            built.iter().map(|(t, c)| (t.as_str(), c.clone())).collect();
        crate::policy::newest_build(&built)
            .map_err(policy_halt)?
            .to_string()
    } else {
        selector.latest(&tags).map_err(policy_halt)?.to_string()
    };

    // Act: the digest if the policy reflects it, then the new reference.
    let mut latest = ImageRef {
        name: repo.spec.image.clone(),
        tag: tag.clone(),
        digest: None,
    };
    let current = status.latest_ref.clone();
    let fetch_digest = match reflection {
        ReflectionPolicy::Never => false,
        ReflectionPolicy::Always => true,
        ReflectionPolicy::IfNotPresent => match &current {
            Some(c) if c.name == latest.name && c.tag == latest.tag && c.digest.is_some() => {
                latest.digest = c.digest.clone();
                false
            }
            _ => true,
        },
    };
    if fetch_digest {
        registry::check_supported(&repo)?;
        let client = registry::client(ctx, &repo, &image, timeout(&repo)).await?;
        let resolved = client
            .resolve(&oci::Selector::Tag(tag.to_string()))
            .await
            .map_err(|e| {
                let mut halt = registry::registry_failure(
                    &format!("failed fetching digest of {}:{tag}", latest.name),
                    e,
                );
                if halt.reason == READ_OPERATION_FAILED {
                    halt.reason = FAILURE;
                }
                halt
            })?;
        latest.digest = Some(resolved.digest);
    }
    if current.as_ref() != Some(&latest) {
        status.observed_previous_ref = current;
        status.latest_ref = Some(latest.clone());
    }

    Ok(Success {
        message: ready_message(status),
        requeue: match (reflection, interval) {
            (ReflectionPolicy::Always, Some(interval)) => ctx.requeue_after(interval),
            // New tags come with the repository's new scan, which the watch brings.
            _ => Action::await_change(),
        },
    })
}

/// The build time of each candidate tag's image: the tag resolved to its
/// manifest digest now (a tag can move), the time read once per digest.
async fn build_times(
    ctx: &Context,
    repo: &ImageRepository,
    image: &crate::image_name::ImageName,
    candidates: &[&str],
) -> Result<Vec<(String, Option<String>)>, Halt> {
    /// Registry requests in flight at once.
    const PARALLEL: usize = 8;
    registry::check_supported(repo)?;
    let client = registry::client(ctx, repo, image, timeout(repo)).await?;
    let mut built = Vec::with_capacity(candidates.len());
    for chunk in candidates.chunks(PARALLEL) {
        let lookups = chunk.iter().map(|tag| build_time(ctx, &client, image, tag));
        built.extend(futures::future::try_join_all(lookups).await?);
    }
    Ok(built)
}

async fn build_time(
    ctx: &Context,
    client: &oci::Repository,
    image: &crate::image_name::ImageName,
    tag: &str,
) -> Result<(String, Option<String>), Halt> {
    let failed = |e| {
        registry::registry_failure(
            &format!(
                "failed reading the build time of {}:{tag}",
                image.canonical()
            ),
            e,
        )
    };
    let digest = client
        .resolve(&oci::Selector::Tag(tag.to_string()))
        .await
        .map_err(failed)?
        .digest;
    let created = match ctx.build_times.get(&digest) {
        Some(created) => created,
        None => {
            let created = client.image_created(&digest).await.map_err(failed)?;
            ctx.build_times.insert(digest, created.clone());
            created
        }
    };
    Ok((tag.to_string(), created))
}

/// Flux's Ready message: the latest reference, and the one before when it changed.
fn ready_message(status: &ImagePolicyStatus) -> String {
    let Some(latest) = &status.latest_ref else {
        return String::new();
    };
    let mut message = format!(
        "Latest image tag for {} resolved to {}",
        latest.name, latest.tag
    );
    if let Some(digest) = &latest.digest {
        message.push_str(&format!(" with digest {digest}"));
    }
    if let Some(previous) = &status.observed_previous_ref
        && previous != latest
    {
        message.push_str(&format!(" (previously {}:{}", previous.name, previous.tag));
        if let Some(digest) = &previous.digest {
            message.push_str(&format!("@{digest}"));
        }
        message.push(')');
    }
    message
}

/// The referenced ImageRepository, if the policy's namespace may use it.
async fn image_repository(policy: &ImagePolicy, ctx: &Context) -> Result<ImageRepository, Halt> {
    let own_namespace = policy.namespace().unwrap_or_default();
    let reference = &policy.spec.image_repository_ref;
    let namespace = reference
        .namespace
        .clone()
        .unwrap_or_else(|| own_namespace.clone());
    let failed = |reason: &'static str, message: String| {
        Halt::retry(
            reason,
            format!("failed to get the referred ImageRepository: {message}"),
        )
    };
    let cross_namespace = namespace != own_namespace;
    if cross_namespace && ctx.settings.no_cross_namespace_refs {
        return Err(failed(
            reason::ACCESS_DENIED,
            format!(
                "cannot access 'ImageRepository/{namespace}/{}', cross-namespace references have been blocked",
                reference.name
            ),
        ));
    }
    let repositories: Api<ImageRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let repo = repositories
        .get_opt(&reference.name)
        .await
        .map_err(|e| failed(FAILURE, e.to_string()))?
        .ok_or_else(|| {
            failed(
                reason::DEPENDENCY_NOT_READY,
                format!(
                    "referenced ImageRepository does not exist: imagerepositories.image.toolkit.fluxcd.io \"{}\" not found",
                    reference.name
                ),
            )
        })?;
    if cross_namespace {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let labels = namespaces
            .get_opt(&own_namespace)
            .await
            .map_err(|e| failed(FAILURE, e.to_string()))?
            .map(|ns| ns.labels().clone())
            .unwrap_or_default();
        let allowed = repo.spec.access_from.as_ref().is_some_and(|acl| {
            acl.namespace_selectors.iter().any(|selector| {
                selector
                    .match_labels
                    .as_ref()
                    .is_none_or(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)))
            })
        });
        if !allowed {
            return Err(failed(
                reason::ACCESS_DENIED,
                format!(
                    "access denied: 'ImageRepository/{namespace}/{}' can't be accessed due to missing ACL labels on 'accessFrom'",
                    reference.name
                ),
            ));
        }
    }
    Ok(repo)
}
