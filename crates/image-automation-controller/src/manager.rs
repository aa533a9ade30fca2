//! The controllers, declared: ImageRepository, ImagePolicy (woken by its
//! repository's new scans) and ImageUpdateAutomation (woken by new latest
//! images, after the automation's `policyChangeDelay`, and new source
//! revisions), on the shared harness.

use std::path::Path;
use std::sync::Arc;

use api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use api::source::GitRepository;
use k8s_openapi::api::core::v1::Secret;
use runtime::manager::{Manager, Related};
use runtime::metrics::Metrics;
use runtime::reconcile::ReconcileTrigger;

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context, Settings};
use crate::options::{FEATURE_GATES, Flags, GIT_FORCE_PUSH_BRANCH, GIT_SHALLOW_CLONE};
use crate::tag_store::TagStore;
use crate::{automation, image_policy, image_repository};

/// Runs the controllers until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    let gates = flags.common.feature_gates(FEATURE_GATES)?;
    git::set_ssh_algorithms(git::SshAlgorithms {
        host_key: flags.ssh.ssh_hostkey_algos.clone(),
        kex: flags.ssh.ssh_kex_algos.clone(),
    })
    .map_err(|e| flags.ssh.invalid(e))?;
    let tags = TagStore::open(
        Path::new(&flags.storage_path),
        flags.compression_threshold(),
    )
    .map_err(Error::io(format!(
        "opening the tag storage at {}",
        flags.storage_path
    )))?;
    let mut manager = Manager::new(CONTROLLER_NAME, &flags, Metrics::new()).await?;
    let settings = Settings {
        jitter_percent: flags.common.interval_jitter_percentage,
        no_cross_namespace_refs: flags.common.no_cross_namespace_refs,
        force_push_branch: gates.enabled(GIT_FORCE_PUSH_BRANCH),
        shallow_clone: gates.enabled(GIT_SHALLOW_CLONE),
    };
    let ctx = Arc::new(Context::new(
        manager.client().clone(),
        manager.metrics(),
        manager.event_recorder()?,
        tags,
        settings,
    ));

    let trigger = ReconcileTrigger::default();
    let configs = flags.watch_configs_label_selector.as_str();
    let repositories = manager
        .controller::<ImageRepository>(trigger)
        // New registry credentials, CA or proxy settings.
        .watches(Related::<Secret>::labelled(configs), |secret, store| {
            image_repository::users_of_secret(secret, &store.state())
        })
        .run(image_repository::reconcile, ctx.clone());
    let policies = manager
        .controller::<ImagePolicy>(trigger)
        // A new scan may change the latest image.
        .watches(
            Related::all().when_changed(image_policy::repository_scan),
            image_policy::users_of,
        )
        .run(image_policy::reconcile, ctx.clone());
    let automations = manager
        .controller::<ImageUpdateAutomation>(trigger)
        // A new latest image is a new update to write (after
        // `policyChangeDelay`, gathering the updates arriving meanwhile).
        .watches_delayed(
            Related::in_scope().when_changed(automation::latest_image),
            automation::users_of_policy,
        )
        // A new commit on the source may undo or conflict with an update.
        .watches(
            Related::all().when_changed(git_revision),
            automation::users_of_source,
        )
        // A new signing key.
        .watches(Related::<Secret>::labelled(configs), |secret, store| {
            automation::users_of_secret(secret, &store.state())
        })
        .run(automation::reconcile, ctx.clone());
    for controller in [repositories, policies, automations] {
        manager.add(controller);
    }
    manager.run().await?;
    Ok(())
}

/// What of a GitRepository concerns an automation: its artifact revision.
/// Always a value: a predicate's `None` lets every change through.
fn git_revision(repository: &GitRepository) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let revision = repository
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .map(|a| &a.revision);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    revision.hash(&mut hasher);
    Some(hasher.finish())
}
