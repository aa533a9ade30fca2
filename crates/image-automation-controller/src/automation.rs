//! ImageUpdateAutomation: write the ImagePolicies' latest images into the
//! files of a Git repository and push a commit, as Flux's
//! image-automation-controller does.
//!
//! Fetch (the GitRepository, its credentials, the policies the selector
//! picks, the checkout of the branch), decide (rewrite the setter markers
//! under `update.path`; nothing changed means nothing to commit), act
//! (commit with the rendered message, signed if asked, and push; a push
//! refused as non-fast-forward is redone once on the new head).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use api::image::{
    ImagePolicy, ImageRef, ImageUpdateAutomation, ImageUpdateAutomationStatus, UpdateStrategyName,
};
use api::meta::reason;
use api::source::GitRepository;
use image_update::setters::update_file;
use image_update::template::{
    CommitData, DEFAULT_MESSAGE_TEMPLATE, TemplateError, render_commit_message,
};
use image_update::{PolicyImage, UpdateResult};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::core::SelectorExt;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::Error;
use crate::context::Context;
use crate::reconcile::{Halt, Success, finish, reconcile_object};

/// Reason: the source cannot be used as configured.
const INVALID_SOURCE_CONFIGURATION: &str = "InvalidSourceConfiguration";
/// Reason: clone, commit or push failed.
const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
/// Reason: the files could not be updated.
const UPDATE_FAILED: &str = "UpdateFailed";
/// Reason: `spec.policySelector` is not a valid selector.
const INVALID_POLICY_SELECTOR: &str = "InvalidPolicySelector";
/// Reason: `spec.policyChangeDelay` is not a duration this controller can
/// wait (the CRD pattern lets through values too large for it).
const INVALID_POLICY_CHANGE_DELAY: &str = "InvalidPolicyChangeDelay";
/// Reason: the message template uses data Flux removed.
const REMOVED_TEMPLATE_FIELD: &str = "RemovedTemplateField";
/// Reason: the update strategy is not `Setters`.
const INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
/// Event reason: markers name policies the automation does not know.
const UNKNOWN_POLICY: &str = "UnknownImagePolicy";
/// Flux's default timeout for Git operations of an automation.
const GIT_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a push refused because the branch moved is redone in one pass
/// (automations sharing a branch take turns; beyond this the harness's
/// backoff spreads them out).
const PUSH_ATTEMPTS: usize = 5;

/// Reconciles one ImageUpdateAutomation.
pub async fn reconcile(
    obj: Arc<ImageUpdateAutomation>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    reconcile_object(
        obj,
        ctx,
        |auto| auto.spec.suspend == Some(true),
        |obj, ctx, mut session| async move {
            let result = run(&obj, &ctx, &mut session.status).await;
            finish(obj.as_ref(), &ctx, session, result).await
        },
        |_, _| Ok(()),
    )
    .await
}

/// The automations a change of `policy` wakes (for the policy watch), each
/// with how long its run waits: `spec.policyChangeDelay`, so that image
/// updates arriving together make one commit.
pub fn users_of_policy(
    policy: &ImagePolicy,
    automations: &Store<ImageUpdateAutomation>,
) -> Vec<(ObjectRef<ImageUpdateAutomation>, Option<Duration>)> {
    policy_triggers(policy, &automations.state())
}

/// [`users_of_policy`] over a list. Without a delay: every automation of the
/// policy's namespace, at once (the selector is checked when it runs).
/// With one: only the automations whose `policySelector` picks the policy,
/// so that a change of a policy an automation does not write never holds
/// back nor adds to its run. An unreadable delay wakes at once, for the run
/// to report it.
fn policy_triggers(
    policy: &ImagePolicy,
    automations: &[Arc<ImageUpdateAutomation>],
) -> Vec<(ObjectRef<ImageUpdateAutomation>, Option<Duration>)> {
    automations
        .iter()
        .filter(|a| a.namespace() == policy.namespace())
        .filter_map(|a| {
            let delay = policy_change_delay(a).ok().flatten();
            if delay.is_some() && !selects(a.spec.policy_selector.as_ref(), policy) {
                return None;
            }
            Some((ObjectRef::from_obj(a.as_ref()), delay))
        })
        .collect()
}

/// `spec.policyChangeDelay`; `None` when unset or zero (no delay).
fn policy_change_delay(auto: &ImageUpdateAutomation) -> Result<Option<Duration>, Halt> {
    let Some(delay) = &auto.spec.policy_change_delay else {
        return Ok(None);
    };
    let delay = delay.to_std().map_err(|e| {
        Halt::stall(
            INVALID_POLICY_CHANGE_DELAY,
            format!("invalid spec.policyChangeDelay: {e}"),
        )
    })?;
    Ok((!delay.is_zero()).then_some(delay))
}

/// Whether `selector` (`spec.policySelector`; unset: all) picks `policy`.
/// An invalid selector picks nothing: the run stalls on it.
fn selects(selector: Option<&LabelSelector>, policy: &ImagePolicy) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let Ok(selector) = kube::core::Selector::try_from(selector.clone()) else {
        return false;
    };
    selector.matches(policy.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
}

/// What of an ImagePolicy changes an automation's work: its latest image
/// and its labels (the selector). Always a value: a predicate's `None` lets
/// every change through.
pub fn latest_image(policy: &ImagePolicy) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let latest = policy
        .status
        .as_ref()
        .and_then(|s| s.latest_ref.as_ref())
        .map(|l| (&l.name, &l.tag, &l.digest));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    latest.hash(&mut hasher);
    policy.metadata.labels.hash(&mut hasher);
    Some(hasher.finish())
}

/// The automations of `secret`'s namespace signing with its key (for
/// `--watch-configs-label-selector`).
pub fn users_of_secret(
    secret: &Secret,
    automations: &[Arc<ImageUpdateAutomation>],
) -> Vec<ObjectRef<ImageUpdateAutomation>> {
    let name = secret.name_any();
    automations
        .iter()
        .filter(|a| a.namespace() == secret.namespace())
        .filter(|a| {
            a.spec
                .git
                .as_ref()
                .and_then(|g| g.commit.signing_key.as_ref())
                .is_some_and(|k| k.secret_ref.name == name)
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// The automations using `repository` as their source.
pub fn users_of_source(
    repository: &GitRepository,
    automations: &Store<ImageUpdateAutomation>,
) -> Vec<ObjectRef<ImageUpdateAutomation>> {
    automations
        .state()
        .iter()
        .filter(|a| {
            a.spec.source_ref.name == repository.name_any()
                && a.spec
                    .source_ref
                    .namespace
                    .clone()
                    .or_else(|| a.namespace())
                    == repository.namespace()
        })
        .map(|a| ObjectRef::from_obj(a.as_ref()))
        .collect()
}

/// Everything one run works from.
struct Plan {
    repository: GitRepository,
    remote: git::Remote,
    checkout: git::Reference,
    push_branch: String,
    push_refspec: Option<String>,
    push_options: BTreeMap<String, String>,
    /// The push branch is not the checked-out branch.
    separate_push_branch: bool,
    force_branch: bool,
    update_path: String,
    policies: BTreeMap<String, PolicyImage>,
    observed: BTreeMap<String, ImageRef>,
}

async fn run(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
    status: &mut ImageUpdateAutomationStatus,
) -> Result<Success, Halt> {
    let interval = auto
        .spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(600));
    let plan = plan(auto, ctx).await?;
    let template = auto
        .spec
        .git
        .as_ref()
        .and_then(|g| g.commit.message_template.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| DEFAULT_MESSAGE_TEMPLATE.to_string());
    image_update::template::validate_commit_template(&template).map_err(template_halt)?;

    status.last_automation_run_time = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    status.observed_policies = Some(plan.observed.clone());

    let mut attempt = 0;
    let pushed = loop {
        attempt += 1;
        match update_commit_push(auto, ctx, &plan, &template).await {
            Err(PushOutcome::Moved(message)) if attempt < PUSH_ATTEMPTS => {
                tracing::info!(name = %auto.name_any(), %message, "branch moved during the update; redoing it on the new head");
            }
            Err(PushOutcome::Moved(message)) => {
                return Err(Halt::retry(GIT_OPERATION_FAILED, message));
            }
            Err(PushOutcome::Failed(halt)) => return Err(halt),
            Ok(done) => break done,
        }
    };
    status.observed_source_revision = Some(pushed.source_revision.clone());
    let message = match &pushed.commit {
        Some(commit) => {
            status.last_push_commit = Some(commit.clone());
            status.last_push_time = Some(Time(k8s_openapi::jiff::Timestamp::now()));
            request_source_reconcile(ctx, &plan).await;
            format!(
                "pushed commit '{}' to branch '{}'",
                short(commit),
                plan.push_branch
            )
        }
        None => "repository up-to-date".to_string(),
    };
    Ok(Success {
        message,
        requeue: ctx.requeue_after(interval),
    })
}

fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

fn template_halt(err: TemplateError) -> Halt {
    match err {
        TemplateError::RemovedField { .. } => {
            Halt::stall(REMOVED_TEMPLATE_FIELD, err.flux_message())
        }
        TemplateError::Parse { .. } => Halt::stall(reason::FAILED, err.flux_message()),
        TemplateError::Execute { .. } => Halt::retry(reason::FAILED, err.flux_message()),
    }
}

/// The GitRepository, credentials, references and policies of a run.
async fn plan(auto: &ImageUpdateAutomation, ctx: &Context) -> Result<Plan, Halt> {
    let namespace = auto.namespace().unwrap_or_default();
    let spec = &auto.spec;
    let git_spec = spec.git.as_ref().ok_or_else(|| {
        Halt::stall(
            INVALID_SOURCE_CONFIGURATION,
            "source configuration is invalid: spec.git is required",
        )
    })?;
    if let Some(update) = &spec.update
        && update
            .strategy
            .is_some_and(|s| s != UpdateStrategyName::Setters)
    {
        return Err(Halt::stall(
            INVALID_UPDATE_STRATEGY,
            "only the Setters update strategy is supported",
        ));
    }
    policy_change_delay(auto)?;
    if git_spec.commit.signing_key.as_ref().is_some_and(|k| {
        k.r#type
            .is_some_and(|t| t != api::image::SigningKeyType::Gpg)
    }) {
        return Err(Halt::stall(
            INVALID_SOURCE_CONFIGURATION,
            "spec.git.commit.signingKey.type 'ssh' is not supported by ferroflux yet: use an OpenPGP key (git.asc)",
        ));
    }

    // The source, within the namespaces this automation may use.
    let source_namespace = spec
        .source_ref
        .namespace
        .clone()
        .unwrap_or_else(|| namespace.clone());
    if source_namespace != namespace && ctx.settings.no_cross_namespace_refs {
        return Err(Halt::stall(
            reason::ACCESS_DENIED,
            format!(
                "cannot access '{}/{}/{}', cross-namespace references have been blocked",
                "GitRepository", source_namespace, spec.source_ref.name
            ),
        ));
    }
    let repositories: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &source_namespace);
    let repository = repositories
        .get_opt(&spec.source_ref.name)
        .await
        .map_err(|e| Halt::retry(reason::FAILED, e.to_string()))?
        .ok_or_else(|| {
            Halt::wait(
                reason::DEPENDENCY_NOT_READY,
                format!(
                    "referenced GitRepository '{source_namespace}/{}' does not exist",
                    spec.source_ref.name
                ),
            )
        })?;
    let remote = remote(ctx, &repository, &source_namespace).await?;

    // Checkout and push references.
    let checkout_ref = git_spec
        .checkout
        .as_ref()
        .map(|c| c.r#ref.clone())
        .or_else(|| repository.spec.r#ref.clone())
        .unwrap_or_default();
    let non_empty = |s: &Option<String>| s.as_ref().filter(|v| !v.is_empty()).cloned();
    let checkout = if let Some(commit) = non_empty(&checkout_ref.commit) {
        git::Reference::Commit {
            id: commit,
            branch: non_empty(&checkout_ref.branch),
        }
    } else if let Some(name) = non_empty(&checkout_ref.name) {
        git::Reference::Name(name)
    } else if let Some(tag) = non_empty(&checkout_ref.tag) {
        git::Reference::Tag(tag)
    } else if non_empty(&checkout_ref.semver).is_some() {
        return Err(Halt::stall(
            INVALID_SOURCE_CONFIGURATION,
            "a semver checkout reference cannot be pushed to: set spec.git.checkout.ref.branch or spec.git.push.branch",
        ));
    } else {
        git::Reference::Branch(non_empty(&checkout_ref.branch).unwrap_or_else(|| "master".into()))
    };
    let push = git_spec.push.clone().unwrap_or_default();
    let checkout_branch = match &checkout {
        git::Reference::Branch(b) => Some(b.clone()),
        _ => None,
    };
    let push_branch = non_empty(&push.branch).or(checkout_branch.clone()).ok_or_else(|| {
        Halt::stall(
            INVALID_SOURCE_CONFIGURATION,
            "push spec not provided, and cannot be inferred from .spec.git.checkout.ref or GitRepository .spec.ref",
        )
    })?;
    let separate_push_branch = Some(&push_branch) != checkout_branch.as_ref();
    let force_branch = ctx.settings.force_push_branch && separate_push_branch;

    // The policies whose latest images are written.
    let selector = spec.policy_selector.as_ref();
    let params = match selector.map(label_selector_query).transpose()? {
        Some(query) if !query.is_empty() => ListParams::default().labels(&query),
        _ => ListParams::default(),
    };
    let policies: Api<ImagePolicy> = Api::namespaced(ctx.client.clone(), &namespace);
    let listed = policies
        .list(&params)
        .await
        .map_err(|e| Halt::retry(reason::FAILED, format!("failed to list ImagePolicies: {e}")))?;
    let mut images = BTreeMap::new();
    let mut observed = BTreeMap::new();
    for policy in listed.items {
        let Some(latest) = policy.status.as_ref().and_then(|s| s.latest_ref.clone()) else {
            continue;
        };
        images.insert(
            format!("{namespace}:{}", policy.name_any()),
            PolicyImage {
                name: latest.name.clone(),
                tag: latest.tag.clone(),
                digest: latest.digest.clone(),
            },
        );
        observed.insert(policy.name_any(), latest);
    }
    let update_path = spec
        .update
        .as_ref()
        .and_then(|u| u.path.clone())
        .unwrap_or_default();

    Ok(Plan {
        repository,
        remote,
        checkout,
        push_branch,
        push_refspec: non_empty(&push.refspec),
        push_options: push.options.unwrap_or_default(),
        separate_push_branch,
        force_branch,
        update_path,
        policies: images,
        observed,
    })
}

/// `spec.policySelector` as a label query (`a=b,c in (d)`).
fn label_selector_query(selector: &LabelSelector) -> Result<String, Halt> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.clone().unwrap_or_default().join(",");
        parts.push(match expression.operator.as_str() {
            "In" => format!("{} in ({values})", expression.key),
            "NotIn" => format!("{} notin ({values})", expression.key),
            "Exists" => expression.key.clone(),
            "DoesNotExist" => format!("!{}", expression.key),
            other => {
                return Err(Halt::stall(
                    INVALID_POLICY_SELECTOR,
                    format!("failed to parse policy selector: \"{other}\" is not a valid label selector operator"),
                ));
            }
        });
    }
    Ok(parts.join(","))
}

/// The Git remote of `repository` with its credentials.
async fn remote(
    ctx: &Context,
    repository: &GitRepository,
    namespace: &str,
) -> Result<git::Remote, Halt> {
    let url = repository.spec.url.clone();
    let auth = match &repository.spec.secret_ref {
        Some(secret_ref) => {
            let data = secret_data(ctx, namespace, &secret_ref.name).await?;
            git::Auth::from_secret(&url, &data)
                .map_err(|e| Halt::stall(INVALID_SOURCE_CONFIGURATION, e.to_string()))?
        }
        None => git::Auth::None,
    };
    Ok(git::Remote {
        url,
        auth,
        timeout: GIT_TIMEOUT,
        proxy: None,
    })
}

async fn secret_data(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<BTreeMap<String, Vec<u8>>, Halt> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|e| Halt::retry(reason::AUTHENTICATION_FAILED, e.to_string()))?
        .ok_or_else(|| {
            Halt::retry(
                reason::AUTHENTICATION_FAILED,
                format!("secrets \"{name}\" not found"),
            )
        })?;
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// What a successful update, commit and push did.
struct Pushed {
    source_revision: String,
    commit: Option<String>,
}

enum PushOutcome {
    /// The branch moved on the remote: fetch and redo.
    Moved(String),
    /// Anything else.
    Failed(Halt),
}

impl From<Halt> for PushOutcome {
    fn from(halt: Halt) -> Self {
        PushOutcome::Failed(halt)
    }
}

fn git_halt(context: &str, err: git::Error) -> Halt {
    let reason = match &err {
        git::Error::Authentication { .. } => reason::AUTHENTICATION_FAILED,
        _ => GIT_OPERATION_FAILED,
    };
    Halt::retry(reason, format!("{context}: {err}"))
}

async fn update_commit_push(
    auto: &ImageUpdateAutomation,
    ctx: &Context,
    plan: &Plan,
    template: &str,
) -> Result<Pushed, PushOutcome> {
    let work = tempfile::Builder::new()
        .prefix("image-update-")
        .tempdir()
        .map_err(|e| {
            Halt::retry(
                GIT_OPERATION_FAILED,
                format!("creating a work directory: {e}"),
            )
        })?;
    let dir = work.path().join("repository");
    let options = git::CheckoutOptions {
        depth: if ctx.settings.shallow_clone {
            std::num::NonZeroU32::new(1)
        } else {
            None
        },
    };
    // A separate push branch that exists already is worked on as it is (its
    // earlier updates, or commits a reviewer added, stay), as Flux does;
    // a new one starts from the checkout reference.
    let mut base = plan.checkout.clone();
    if plan.separate_push_branch {
        let name = format!("refs/heads/{}", plan.push_branch);
        let found = git::list_refs(&plan.remote, &[name.as_str()])
            .await
            .map_err(|e| git_halt("failed to list the push branch", e))?;
        if !found.is_empty() {
            base = git::Reference::Branch(plan.push_branch.clone());
        }
    }
    let checked_out = git::checkout(&plan.remote, &base, &dir, &options)
        .await
        .map_err(|e| git_halt("failed to checkout source", e))?;
    let source_revision = checked_out.revision.clone();

    // Decide: rewrite the markers under the update path.
    let root = dir.clone();
    let policies = plan.policies.clone();
    let update_path = plan.update_path.clone();
    let (result, unknown) =
        tokio::task::spawn_blocking(move || update_tree(&root, &update_path, &policies))
            .await
            .map_err(|e| Halt::retry(UPDATE_FAILED, format!("update task failed: {e}")))??;
    if !unknown.is_empty() {
        let names: Vec<&str> = unknown.iter().map(String::as_str).collect();
        ctx.recorder
            .warning(
                auto,
                UNKNOWN_POLICY,
                &format!(
                    "markers name ImagePolicies that do not exist, are not selected by spec.policySelector or have no latest image yet; their values are left as they are: {}",
                    names.join(", ")
                ),
            )
            .await;
    }
    if result.file_changes.is_empty() {
        return Ok(Pushed {
            source_revision,
            commit: None,
        });
    }

    // Act: commit and push.
    let git_spec = auto
        .spec
        .git
        .as_ref()
        .ok_or_else(|| Halt::stall(INVALID_SOURCE_CONFIGURATION, "spec.git is required"))?;
    let namespace = auto.namespace().unwrap_or_default();
    let values = git_spec
        .commit
        .message_template_values
        .clone()
        .unwrap_or_default();
    let message = render_commit_message(
        template,
        &CommitData {
            automation_name: &auto.name_any(),
            automation_namespace: &namespace,
            changed: &result,
            values: &values,
        },
    )
    .map_err(template_halt)?;
    let signing_key = match &git_spec.commit.signing_key {
        Some(key) => {
            let data = secret_data(ctx, &namespace, &key.secret_ref.name).await?;
            let armored = data.get("git.asc").cloned().ok_or_else(|| {
                Halt::stall(
                    INVALID_SOURCE_CONFIGURATION,
                    format!(
                        "signing key Secret '{}' has no 'git.asc' key",
                        key.secret_ref.name
                    ),
                )
            })?;
            Some(git::SigningKey::OpenPgp {
                armored_secret_key: armored,
                passphrase: data
                    .get("passphrase")
                    .map(|p| String::from_utf8_lossy(p).trim_end().to_string()),
            })
        }
        None => None,
    };
    let author = &git_spec.commit.author;
    let request = git::CommitRequest {
        message,
        author: git::Signature {
            name: author
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| author.email.clone()),
            email: author.email.clone(),
            time: jiff::Timestamp::now(),
        },
        signing_key,
    };
    let commit = git::commit(&dir, &request).await.map_err(|e| {
        let reason = if matches!(e, git::Error::SigningKey { .. }) {
            INVALID_SOURCE_CONFIGURATION
        } else {
            GIT_OPERATION_FAILED
        };
        Halt::retry(reason, format!("failed to commit: {e}"))
    })?;
    let Some(commit) = commit else {
        return Ok(Pushed {
            source_revision,
            commit: None,
        });
    };
    let mut refspecs = vec![format!("HEAD:refs/heads/{}", plan.push_branch)];
    if let Some(refspec) = &plan.push_refspec {
        refspecs.push(local_refspec(refspec, &plan.push_branch));
    }
    let push = git::PushRequest {
        refspecs,
        options: plan.push_options.clone(),
        force: plan.force_branch,
    };
    match git::push(&plan.remote, &dir, &push).await {
        Ok(()) => {}
        Err(git::Error::PushRejected {
            non_fast_forward: true,
            reason,
            ..
        }) => {
            return Err(PushOutcome::Moved(format!(
                "failed to push to branch '{}': {reason}",
                plan.push_branch
            )));
        }
        Err(e) => return Err(git_halt("failed to push", e).into()),
    }
    tracing::info!(name = %auto.name_any(), commit = %commit, branch = %plan.push_branch, "pushed");
    ctx.recorder
        .normal(
            auto,
            reason::SUCCEEDED,
            &format!(
                "Committed and pushed change {commit} to {}\n{}",
                plan.push_branch, request.message
            ),
        )
        .await;
    Ok(Pushed {
        source_revision,
        commit: Some(commit),
    })
}

/// `push.refspec` for this checkout: Flux commits on a local push branch,
/// so a refspec names it (`refs/heads/main:refs/for/main`); here the commit
/// is the checkout's HEAD, which stands in for that branch.
fn local_refspec(refspec: &str, push_branch: &str) -> String {
    let (force, rest) = match refspec.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", refspec),
    };
    match rest.split_once(':') {
        Some((source, destination))
            if source == push_branch || source == format!("refs/heads/{push_branch}") =>
        {
            format!("{force}HEAD:{destination}")
        }
        _ => refspec.to_string(),
    }
}

/// Applies the setters to every YAML file under `root/path`; what changed,
/// and the policies markers named that are not in `policies`.
fn update_tree(
    root: &Path,
    path: &str,
    policies: &BTreeMap<String, PolicyImage>,
) -> Result<(UpdateResult, std::collections::BTreeSet<String>), Halt> {
    let base = root.join(path.trim_start_matches("./").trim_start_matches('/'));
    let base = base
        .canonicalize()
        .map_err(|e| Halt::stall(UPDATE_FAILED, format!("update path '{path}': {e}")))?;
    let root = root
        .canonicalize()
        .map_err(|e| Halt::retry(UPDATE_FAILED, format!("checkout directory: {e}")))?;
    if !base.starts_with(&root) {
        return Err(Halt::stall(
            UPDATE_FAILED,
            format!("update path '{path}' is outside the repository"),
        ));
    }
    let mut files = Vec::new();
    collect_yaml(&base, &mut files)
        .map_err(|e| Halt::retry(UPDATE_FAILED, format!("reading '{path}': {e}")))?;
    let mut result = UpdateResult::default();
    let mut unknown = std::collections::BTreeSet::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            // Not text: no marker can be in it.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
            Err(e) => {
                return Err(Halt::retry(
                    UPDATE_FAILED,
                    format!("reading {}: {e}", file.display()),
                ));
            }
        };
        let relative = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .to_string_lossy()
            .into_owned();
        let update = match update_file(&text, policies) {
            Ok(update) => update,
            Err(e) => {
                // Flux skips files it cannot read as YAML.
                tracing::debug!(file = %relative, error = %e, "skipping a file that is not valid YAML");
                continue;
            }
        };
        unknown.extend(update.unknown_policies.iter().cloned());
        if !update.changed() {
            continue;
        }
        std::fs::write(&file, &update.content)
            .map_err(|e| Halt::retry(UPDATE_FAILED, format!("writing {relative}: {e}")))?;
        let objects = result.file_changes.entry(relative).or_default();
        for (object, change) in update.changes {
            objects.entry(object).or_default().push(change);
        }
    }
    Ok((result, unknown))
}

/// Every `.yaml`/`.yml` file under `dir`, hidden directories (`.git`) left out.
fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !name.to_string_lossy().starts_with('.') {
                collect_yaml(&entry.path(), files)?;
            }
        } else if kind.is_file() {
            let name = name.to_string_lossy();
            if name.ends_with(".yaml") || name.ends_with(".yml") {
                files.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Asks the GitRepository to fetch at once when it tracks the pushed branch,
/// so the change reaches the cluster without waiting for its interval.
async fn request_source_reconcile(ctx: &Context, plan: &Plan) {
    let tracked = plan
        .repository
        .spec
        .r#ref
        .as_ref()
        .and_then(|r| r.branch.clone())
        .unwrap_or_else(|| "master".into());
    if tracked != plan.push_branch {
        return;
    }
    let namespace = plan.repository.namespace().unwrap_or_default();
    let api: Api<GitRepository> = Api::namespaced(ctx.client.clone(), &namespace);
    let token = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = serde_json::json!({
        "metadata": {"annotations": {api::meta::RECONCILE_REQUEST_ANNOTATION: token}}
    });
    if let Err(err) = api
        .patch(
            &plan.repository.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
    {
        tracing::warn!(error = %err, "failed to request a reconciliation of the GitRepository");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn automation(
        name: &str,
        namespace: &str,
        extra: serde_json::Value,
    ) -> Arc<ImageUpdateAutomation> {
        let mut spec = serde_json::json!({
            "interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "repo"}});
        for (key, value) in extra.as_object().into_iter().flatten() {
            spec[key] = value.clone();
        }
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}))
            .unwrap(),
        )
    }

    fn policy(namespace: &str, labels: serde_json::Value) -> ImagePolicy {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "app", "namespace": namespace, "labels": labels},
            "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {}}}}))
        .unwrap()
    }

    #[test]
    fn a_policy_change_wakes_its_namespace_at_once_or_the_selecting_automations_after_their_delay()
    {
        let automations = [
            automation("plain", "apps", serde_json::json!({})),
            automation(
                "plain-other-selector",
                "apps",
                serde_json::json!({"policySelector": {"matchLabels": {"team": "b"}}}),
            ),
            automation(
                "delayed",
                "apps",
                serde_json::json!({"policyChangeDelay": "1m30s"}),
            ),
            automation(
                "delayed-team-a",
                "apps",
                serde_json::json!({"policyChangeDelay": "5s",
                    "policySelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["a"]}]}}),
            ),
            automation(
                "delayed-team-b",
                "apps",
                serde_json::json!({"policyChangeDelay": "5s", "policySelector": {"matchLabels": {"team": "b"}}}),
            ),
            automation(
                "zero-delay-team-b",
                "apps",
                serde_json::json!({"policyChangeDelay": "0s", "policySelector": {"matchLabels": {"team": "b"}}}),
            ),
            automation(
                "elsewhere",
                "other",
                serde_json::json!({"policyChangeDelay": "5s"}),
            ),
        ];
        let triggers = policy_triggers(
            &policy("apps", serde_json::json!({"team": "a"})),
            &automations,
        );
        let triggers: Vec<(&str, Option<Duration>)> = triggers
            .iter()
            .map(|(obj, delay)| (obj.name.as_str(), *delay))
            .collect();
        assert_eq!(
            triggers,
            [
                ("plain", None),
                ("plain-other-selector", None),
                ("delayed", Some(Duration::from_secs(90))),
                ("delayed-team-a", Some(Duration::from_secs(5))),
                ("zero-delay-team-b", None),
            ]
        );
    }

    #[test]
    fn a_policy_change_delay_too_large_to_wait_stalls() {
        let auto = automation(
            "huge",
            "apps",
            serde_json::json!({"policyChangeDelay": "99999999999999999999h"}),
        );
        let halt = policy_change_delay(&auto).unwrap_err();
        assert_eq!(halt.reason, INVALID_POLICY_CHANGE_DELAY);
        assert!(
            halt.message.contains("spec.policyChangeDelay"),
            "{}",
            halt.message
        );
        // Woken at once, so that the run reports it.
        let triggers = policy_triggers(&policy("apps", serde_json::json!({})), &[auto]);
        assert_eq!(triggers[0].1, None);
    }

    #[test]
    fn refspecs_naming_the_push_branch_push_the_new_commit() {
        assert_eq!(
            local_refspec("refs/heads/main:refs/for/main", "main"),
            "HEAD:refs/for/main"
        );
        assert_eq!(
            local_refspec("main:refs/heads/mirror", "main"),
            "HEAD:refs/heads/mirror"
        );
        assert_eq!(
            local_refspec("+refs/heads/main:refs/heads/x", "main"),
            "+HEAD:refs/heads/x"
        );
        assert_eq!(
            local_refspec("refs/heads/other:refs/heads/x", "main"),
            "refs/heads/other:refs/heads/x"
        );
        assert_eq!(
            local_refspec("HEAD:refs/heads/x", "main"),
            "HEAD:refs/heads/x"
        );
    }
}
