//! The HelmRelease reconciliation, top to bottom: finalizer and deletion
//! (uninstall), suspend, reset/force requests, then the `prerequisites`
//! (supported spec, dependencies, the chart from its source, the values),
//! the `release` loop running helm's `actions` (install, upgrade, test,
//! rollback, uninstall, unlock) and `drift` detection, the conditions
//! `summarize`d into `Ready`, and the final status (observed generation,
//! inventory, requeue).

mod actions;
mod drift;
mod health;
mod prerequisites;
mod release;
mod summarize;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::helm::{HelmRelease, HelmReleaseStatus};
use api::meta::{
    FINALIZER, FORCE_REQUEST_ANNOTATION, RESET_REQUEST_ANNOTATION, condition_type, reason,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use runtime::events::EventRecorder;
use runtime::status::StatusSession;

use crate::event_queue::EventQueue;
use runtime::metrics::Metrics;
use runtime::reconcile_request::requested_at;

use crate::Error;
use crate::chart::{self, ChartCache};
use crate::helm_cli::{Cascade, HelmCli, Identity, ReleaseRef, UninstallOptions, Wait};
use crate::names::release_name;
use crate::post_render::{PostRenderSpec, SpecDigests};
use crate::state::Desired;
use crate::storage::ReleaseStorage;
use crate::target_cluster::TargetCluster;
use crate::values;
use runtime::remote_cluster::KubeConfigPolicy;

use prerequisites::*;

/// Field manager and event reporter name.
pub const CONTROLLER_NAME: &str = "helm-controller";
/// Default timeout of Helm actions.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// Requeue after a remediation or a repeated action: the next attempt
/// follows at once, as Flux's immediate requeue does.
const REQUEUE_SOON: Duration = Duration::from_secs(1);

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--requeue-dependency`.
    pub requeue_dependency: Duration,
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// `--default-service-account`.
    pub default_service_account: Option<String>,
    /// Feature gate `DetectDrift`: detect drift of every release.
    pub detect_drift: bool,
    /// Feature gate `CorrectDrift`: correct drift of every release.
    pub correct_drift: bool,
    /// `--insecure-kubeconfig-exec`, `--insecure-kubeconfig-tls` and
    /// `--default-kubeconfig-service-account`.
    pub kubeconfig_policy: KubeConfigPolicy,
    /// `--override-manager`: field managers drift correction takes over.
    pub override_managers: Vec<String>,
    /// Feature gate `ExternalArtifact`: a `chartRef` may name an ExternalArtifact.
    pub allow_external_artifact: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            requeue_dependency: Duration::from_secs(30),
            jitter_percent: 5,
            no_cross_namespace_refs: false,
            default_service_account: None,
            detect_drift: false,
            correct_drift: false,
            kubeconfig_policy: KubeConfigPolicy::default(),
            override_managers: Vec::new(),
            allow_external_artifact: false,
        }
    }
}

/// What every reconciliation shares.
pub struct Context {
    /// Kubernetes client of the controller.
    pub client: Client,
    /// The helm driver.
    pub helm: HelmCli,
    /// Helm's release storage.
    pub storage: ReleaseStorage,
    /// Downloaded charts.
    pub charts: ChartCache,
    /// The chart sources as watched, when the manager watches them.
    pub sources: Option<chart::SourceCache>,
    /// Kubernetes events, written in the background.
    pub recorder: EventQueue,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Discovery cache for drift detection and inventories.
    pub resolver: runtime::ssa::Resolver,
    /// Command-line settings.
    pub settings: Settings,
    /// A digest of the status last written per object, to tell whether the
    /// watch cache already holds it.
    written: Mutex<HashMap<String, u64>>,
}

impl Context {
    /// A context. Must be called inside a Tokio runtime (events are written
    /// by a task of their own).
    pub fn new(
        client: Client,
        helm: HelmCli,
        charts: ChartCache,
        metrics: Arc<Metrics>,
        recorder: EventRecorder,
        settings: Settings,
    ) -> Self {
        Self {
            recorder: EventQueue::spawn(recorder),
            storage: ReleaseStorage::new(client.clone()),
            client,
            helm,
            charts,
            sources: None,
            metrics,
            resolver: runtime::ssa::Resolver::default(),
            settings,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// The controller's own cluster, where releases without
    /// `spec.kubeConfig` live.
    pub fn local_cluster(&self) -> TargetCluster {
        TargetCluster::local(
            self.client.clone(),
            self.helm.clone(),
            self.storage.clone(),
            self.resolver.clone(),
        )
    }

    /// Records that `status` is what the object `key` now holds.
    fn remember_written(&self, key: String, status: &HelmReleaseStatus) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match status_digest(Some(status)) {
            Some(digest) => {
                written.insert(key, digest);
            }
            None => {
                written.remove(&key);
            }
        }
    }

    /// Whether the cached `hr` may stand for the stored object: its status
    /// is the one this process last wrote, or the process never wrote one
    /// (its watch then listed every status written before it started).
    fn holds_last_written(&self, hr: &HelmRelease) -> bool {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        match written.get(&object_key(hr)) {
            None => true,
            Some(digest) => status_digest(hr.status.as_ref()) == Some(*digest),
        }
    }

    fn forget_written(&self, hr: &HelmRelease) {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&object_key(hr));
    }

    fn jittered(&self, interval: Duration) -> Action {
        Action::requeue(runtime::options::jittered(
            interval,
            self.settings.jitter_percent,
        ))
    }
}

fn object_key(hr: &HelmRelease) -> String {
    format!("{}/{}", hr.namespace().unwrap_or_default(), hr.name_any())
}

/// A digest of a status as serialized (`None` when it cannot be).
fn status_digest(status: Option<&HelmReleaseStatus>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let json = serde_json::to_string(&status).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    json.hash(&mut hasher);
    Some(hasher.finish())
}

/// Reconciles one HelmRelease.
pub fn reconcile(
    hr: Arc<HelmRelease>,
    ctx: Arc<Context>,
) -> futures::future::BoxFuture<'static, Result<Action, Error>> {
    // Boxing pins the future's Send-ness to concrete lifetimes, which the
    // controller's generic bounds cannot infer through the finalizer helper.
    Box::pin(reconcile_object(hr, ctx))
}

async fn reconcile_object(hr: Arc<HelmRelease>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = hr.namespace().unwrap_or_default();
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &namespace);
    // A new HelmRelease gets its finalizer while it is released, not in a
    // reconciliation of its own: one API round trip less to wait for.
    let done = runtime::finalizer::reconcile(
        &api,
        FINALIZER,
        hr,
        |hr| apply(hr, ctx.clone()),
        |hr| cleanup(hr, ctx.clone()),
    )
    .await?;
    Ok(done.unwrap_or_else(Action::await_change))
}

/// The working copy of one reconciliation: the object, the cluster its
/// release lives in, and the status being built ([`StatusSession`]).
pub struct Run<'a> {
    pub(crate) ctx: &'a Context,
    pub(crate) hr: &'a HelmRelease,
    /// The cluster the release lives in.
    pub(crate) cluster: TargetCluster,
    /// The status being built and the writes.
    pub(crate) session: StatusSession<HelmRelease>,
    /// The latest stored revision the release loop last listed, so the
    /// inventory needs no list of its own.
    pub(crate) latest_stored: Option<crate::release::Release>,
    /// The latest revision an action's direct read of the storage just
    /// found, for the next pass of the release loop.
    pub(crate) observed_latest: Option<Option<crate::release::Release>>,
}

impl<'a> Run<'a> {
    fn new(ctx: &'a Context, hr: &'a HelmRelease, api: Api<HelmRelease>) -> Self {
        Self {
            ctx,
            hr,
            cluster: ctx.local_cluster(),
            session: StatusSession::begin(hr, api, CONTROLLER_NAME),
            latest_stored: None,
            observed_latest: None,
        }
    }

    /// Writes the status built so far (only what changed).
    pub(crate) async fn patch(&mut self) -> Result<(), Error> {
        let status = self.status_write().await?;
        self.status_written(status);
        Ok(())
    }

    /// The write of the status built so far, owning what it needs so that
    /// it can run while the reconciliation goes on; its result goes to
    /// [`Self::status_written`].
    pub(crate) fn status_write(
        &mut self,
    ) -> impl Future<Output = Result<HelmReleaseStatus, Error>> + Send + 'static {
        let write = self.session.write();
        async move { Ok(write.await?) }
    }

    /// Records `status` as what the object now holds.
    pub(crate) fn status_written(&mut self, status: HelmReleaseStatus) {
        self.ctx.remember_written(object_key(self.hr), &status);
        self.session.record_written(status);
    }

    /// Sets `Ready=False` with `reason` (and `Reconciling` to retrying),
    /// records an event, writes status.
    async fn not_ready(&mut self, reason: &str, message: &str, warn: bool) -> Result<(), Error> {
        self.session
            .conditions
            .mark_failed_retrying(reason, message);
        if warn {
            self.ctx.recorder.warning(self.hr, reason, message).await;
        }
        self.patch().await
    }

    /// Marks a terminal failure (Stalled) and writes status.
    async fn stalled(&mut self, reason: &str, message: &str) -> Result<Action, Error> {
        self.session.conditions.mark_stalled(reason, message);
        self.ctx.recorder.warning(self.hr, reason, message).await;
        self.session.status.observed_generation = self.hr.meta().generation;
        self.patch().await?;
        Ok(Action::await_change())
    }
}

/// The release name, namespace and identity of a HelmRelease.
pub fn release_ref(hr: &HelmRelease, settings: &Settings) -> ReleaseRef {
    let namespace = hr.namespace().unwrap_or_default();
    let target = hr
        .spec
        .target_namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| namespace.clone());
    let service_account = hr
        .spec
        .service_account_name
        .clone()
        .or_else(|| settings.default_service_account.clone());
    ReleaseRef {
        name: release_name(
            &hr.name_any(),
            hr.spec.target_namespace.as_deref(),
            hr.spec.release_name.as_deref(),
        ),
        namespace: target,
        identity: service_account
            .map(|sa| Identity::service_account(&namespace, &sa))
            .unwrap_or_default(),
    }
}

async fn apply(hr: Arc<HelmRelease>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ctx = ctx.as_ref();
    let namespace = hr.namespace().unwrap_or_default();
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &namespace);
    let Some(hr) = fresh(ctx, &api, hr).await? else {
        return Ok(Action::await_change());
    };
    let hr = hr.as_ref();
    if hr.spec.suspend.unwrap_or(false) {
        tracing::info!(object = %object_key(hr), "reconciliation is suspended");
        return Ok(Action::await_change());
    }
    let mut run = Run::new(ctx, hr, api);
    let interval = hr
        .spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(600));

    // Requests handled in this reconciliation.
    if let Some(token) = requested_at(&hr.metadata) {
        run.session
            .status
            .reconcile_request
            .last_handled_reconcile_at = Some(token.to_string());
    }
    if let Some(token) = pending_token(
        hr,
        RESET_REQUEST_ANNOTATION,
        run.session.status.last_handled_reset_at.as_deref(),
    ) {
        clear_failures(&mut run.session.status);
        run.session.status.last_handled_reset_at = Some(token);
    }
    let force = pending_token(
        hr,
        FORCE_REQUEST_ANNOTATION,
        run.session
            .status
            .force_request
            .last_handled_force_at
            .as_deref(),
    );

    // Only Reconciling: Ready keeps telling the last result meanwhile, so
    // dependents and `kubectl wait` do not see it flap on every interval.
    // Not written yet: the next write (a failure, the start of a helm action,
    // the result) carries it, which spares one API round trip per
    // reconciliation; until then the stale observedGeneration tells that a
    // new generation is in progress.
    run.session.conditions.mark_true(
        condition_type::RECONCILING,
        reason::PROGRESSING,
        "Fulfilling prerequisites",
    );

    if let Some(message) = unsupported(hr) {
        return run.stalled("InitFailed", &message).await;
    }
    // An expression that does not compile can never pass: Flux stalls before
    // anything else runs.
    if let Err(err) = health::compile_all(hr.spec.health_check_exprs.as_deref().unwrap_or_default())
    {
        return run
            .stalled(reason::INVALID_CEL_EXPRESSION, &err.to_string())
            .await;
    }

    // Dependencies must be ready first.
    if let Err(err) = check_dependencies(ctx, hr).await {
        let message = dependency_message(&err);
        if err.is_terminal() {
            return run.stalled(reason::INVALID_CEL_EXPRESSION, &message).await;
        }
        run.not_ready(reason::DEPENDENCY_NOT_READY, &message, false)
            .await?;
        ctx.recorder
            .normal(hr, reason::DEPENDENCY_NOT_READY, &message)
            .await;
        return Err(Error::Waiting(message));
    }
    progress_after(&mut run.session.conditions, &[reason::DEPENDENCY_NOT_READY]);

    // The chart, through its source's status.
    let loaded = match acquire_chart(&mut run).await {
        Ok(loaded) => loaded,
        Err(ChartOutcome::Stalled(reason, message)) => return run.stalled(&reason, &message).await,
        Err(ChartOutcome::Wait(reason, message)) => {
            run.not_ready(&reason, &message, false).await?;
            return Err(Error::Waiting(message));
        }
        Err(ChartOutcome::Failed(reason, message)) => {
            run.not_ready(&reason, &message, true).await?;
            return Err(Error::Release(message));
        }
    };
    progress_after(
        &mut run.session.conditions,
        &[
            reason::ACCESS_DENIED,
            reason::ARTIFACT_FAILED,
            "SourceNotReady",
        ],
    );

    // The values.
    let values = match compose_values(ctx, hr).await {
        Ok(values) => values,
        Err(err) => {
            let message = err.to_string();
            run.not_ready("ValuesError", &message, true).await?;
            return Err(Error::Release(message));
        }
    };
    progress_after(&mut run.session.conditions, &["ValuesError"]);

    // The cluster the release lives in.
    match TargetCluster::of_release(&run.cluster, hr, &ctx.settings.kubeconfig_policy).await {
        Ok(cluster) => run.cluster = cluster,
        Err(err) if err.is_terminal() => {
            return run.stalled(REST_CLIENT_ERROR, &err.to_string()).await;
        }
        Err(err) => {
            let message = err.to_string();
            run.not_ready(REST_CLIENT_ERROR, &message, true).await?;
            return Err(Error::Release(message));
        }
    }
    progress_after(&mut run.session.conditions, &[REST_CLIENT_ERROR]);

    let release = release_ref(hr, &ctx.settings);
    let post_render = PostRenderSpec::for_release(&hr.name_any(), &namespace, &hr.spec);

    // A release moved to another name or namespace, or (unless upgraded in
    // place) to another chart: remove the old one first, then install anew.
    let reinstall_on_rename = hr
        .spec
        .upgrade
        .as_ref()
        .and_then(|u| u.chart_name_change_strategy)
        != Some(api::helm::ChartNameChangeStrategy::InPlaceUpdate);
    if let Some(previous) =
        crate::state::latest(run.session.status.history.as_deref().unwrap_or_default())
        && (previous.name != release.name
            || previous.namespace != release.namespace
            || (reinstall_on_rename && previous.chart_name != loaded.metadata.name))
    {
        let old = ReleaseRef {
            name: previous.name.clone(),
            namespace: previous.namespace.clone(),
            identity: release.identity.clone(),
        };
        tracing::info!(object = %object_key(hr), old = %format!("{}/{}", old.namespace, old.name), "release target changed: uninstalling the previous release");
        match run
            .cluster
            .helm
            .uninstall(&old, &uninstall_options(hr))
            .await
        {
            Ok(()) | Err(crate::helm_cli::HelmError::ReleaseNotFound) => {
                run.cluster.storage.forget(&old.namespace, &old.name);
            }
            Err(err) => return Err(err.into()),
        }
        run.session.status.history = None;
        clear_failures(&mut run.session.status);
        run.session.status.storage_namespace = None;
        run.patch().await?;
        return Ok(Action::requeue(REQUEUE_SOON));
    }
    run.session.status.storage_namespace = Some(release.namespace.clone());

    let config_digest = values::config_digest(&values);
    let desired = Desired {
        chart_name: loaded.metadata.name.clone(),
        chart_version: loaded.metadata.version.clone(),
        config_digest: config_digest.clone(),
        oci_digest: loaded.oci_digest.clone(),
        // Decided in the release loop from the observed digests.
        spec_digests_changed: None,
    };

    // A new desired state starts with a clean failure count.
    if run.session.status.last_attempted_revision.as_deref() != Some(desired.chart_version.as_str())
        || run.session.status.last_attempted_config_digest.as_deref()
            != Some(config_digest.as_str())
        || run.session.status.last_attempted_generation != hr.meta().generation
    {
        clear_failures(&mut run.session.status);
    }
    run.session.status.last_attempted_generation = hr.meta().generation;
    run.session.status.last_attempted_revision = Some(desired.chart_version.clone());
    run.session.status.last_attempted_revision_digest = loaded.oci_digest.clone();
    run.session.status.last_attempted_config_digest = Some(config_digest);

    let request = release::Request {
        release,
        chart: &loaded,
        values,
        desired,
        post_render: post_render.clone(),
        spec_digests: SpecDigests::of(&hr.spec),
        force: force.is_some(),
    };
    let outcome = run.release(&request).await;
    if let Some(token) = force {
        run.session.status.force_request.last_handled_force_at = Some(token);
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(err) => {
            run.patch().await?;
            return Err(err);
        }
    };
    use release::Outcome;
    match outcome {
        Outcome::Done => {
            if run.session.conditions.is_true(condition_type::READY) {
                request.spec_digests.record(&mut run.session.status);
                run.session.status.inventory = Some(run.inventory(&request).await?);
            }
            run.session.status.observed_generation = hr.meta().generation;
            run.patch().await?;
            Ok(ctx.jittered(interval))
        }
        Outcome::RetryAfter(delay) => {
            run.patch().await?;
            Ok(Action::requeue(delay))
        }
        Outcome::RequeueSoon => {
            run.patch().await?;
            Ok(Action::requeue(REQUEUE_SOON))
        }
        Outcome::Stalled => {
            run.session.status.observed_generation = hr.meta().generation;
            run.patch().await?;
            Ok(Action::await_change())
        }
    }
}

/// Reason of a remote cluster that cannot be reached (`spec.kubeConfig`).
const REST_CLIENT_ERROR: &str = "RESTClientError";

/// `helm uninstall` settings of a HelmRelease.
pub fn uninstall_options(hr: &HelmRelease) -> UninstallOptions {
    let spec = hr.spec.uninstall.clone().unwrap_or_default();
    UninstallOptions {
        timeout: actions::timeout_of(spec.timeout.as_ref(), hr),
        disable_hooks: spec.disable_hooks.unwrap_or(false),
        keep_history: spec.keep_history.unwrap_or(false),
        wait: if spec.disable_wait.unwrap_or(false) {
            Wait::HookOnly
        } else {
            Wait::Watcher
        },
        cascade: match spec.deletion_propagation {
            Some(api::helm::DeletionPropagation::Foreground) => Cascade::Foreground,
            Some(api::helm::DeletionPropagation::Orphan) => Cascade::Orphan,
            _ => Cascade::Background,
        },
    }
}

/// Deletion: uninstall the release and delete the HelmChart, unless the
/// HelmRelease is suspended (then both are left as they are).
async fn cleanup(hr: Arc<HelmRelease>, ctx: Arc<Context>) -> Result<Action, Error> {
    let (hr, ctx) = (hr.as_ref(), ctx.as_ref());
    if hr.spec.suspend.unwrap_or(false) {
        tracing::info!(object = %object_key(hr), "suspended: leaving the Helm release in place");
        return Ok(Action::await_change());
    }
    let status = hr.status.clone().unwrap_or_default();
    let mut release = release_ref(hr, &ctx.settings);
    if let Some(latest) = crate::state::latest(status.history.as_deref().unwrap_or_default()) {
        release.name = latest.name.clone();
        release.namespace = latest.namespace.clone();
    }
    let namespace = hr.namespace().unwrap_or_default();
    let api: Api<HelmRelease> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut run = Run::new(ctx, hr, api);
    let installed = status.storage_namespace.is_some();
    // Nothing to uninstall without an install; a kubeConfig that can never
    // work never installed anything.
    let target = match installed {
        true => TargetCluster::of_release(&run.cluster, hr, &ctx.settings.kubeconfig_policy)
            .await
            .map(Some),
        false => Ok(None),
    };
    let cluster = match target {
        Ok(cluster) => cluster,
        Err(err) if err.is_terminal() => None,
        Err(err) => {
            let message = format!("cannot uninstall: {err}");
            run.not_ready(REST_CLIENT_ERROR, &message, true).await?;
            return Err(Error::Release(message));
        }
    };
    let impersonates_missing = match (&release.identity.user, &cluster) {
        (Some(user), Some(cluster)) => {
            let name = user.rsplit(':').next().unwrap_or_default();
            let api: Api<ServiceAccount> = Api::namespaced(cluster.client.clone(), &namespace);
            api.get_opt(name).await?.is_none()
        }
        _ => false,
    };
    if let Some(cluster) = cluster.filter(|_| !impersonates_missing) {
        match cluster
            .helm
            .uninstall(&release, &uninstall_options(hr))
            .await
        {
            Ok(()) => {
                cluster.storage.forget(&release.namespace, &release.name);
                tracing::info!(object = %object_key(hr), "uninstalled Helm release for deleted resource");
            }
            Err(crate::helm_cli::HelmError::ReleaseNotFound) => {
                cluster.storage.forget(&release.namespace, &release.name);
            }
            Err(err) => {
                let message = format!(
                    "Helm uninstall failed for release {}/{}: {err}",
                    release.namespace, release.name
                );
                run.not_ready("UninstallFailed", &message, true).await?;
                return Err(err.into());
            }
        }
    }
    if let Some(generated) = status
        .helm_chart
        .as_deref()
        .and_then(crate::template::parse_status_value)
    {
        crate::template::delete(&ctx.client, &generated).await?;
    }
    ctx.forget_written(hr);
    Ok(Action::await_change())
}
