//! The controller harness: everything that turns a reconcile function into a
//! running controller, once for every ferroflux controller.
//!
//! [`Manager::new`] serves the admin endpoints (`/metrics`, `/healthz`,
//! `/readyz`), builds the paced client and reads the scope (namespace,
//! label selector) from the common flags. [`Manager::controller`] declares a
//! kind: its watch (with backoff, a reflector store and the
//! [`ReconcileTrigger`] predicate) and [`ControllerBuilder::watches`] (or
//! [`ControllerBuilder::watches_delayed`]) for related kinds mapped onto it;
//! [`ControllerBuilder::run`] wraps the reconcile function with the
//! reconcile metrics and the failure model of [`crate::reconcile`].
//! [`Manager::run`] then waits for leadership, runs every controller, and on
//! SIGTERM stops taking work, lets in-flight reconciliations finish for up to
//! `--graceful-shutdown-timeout`, and hands the lease back.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::Api;
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::Error;
use crate::admin::Readiness;
use crate::delayed_triggers::DelayedTriggers;
use crate::leader::Leadership;
use crate::metrics::{Metrics, ReconcileResult, SharedMetrics};
use crate::options::ControllerOptions;
use crate::reconcile::{Disposition, ReconcileError, ReconcileTrigger, RetryPolicy, object_key};
use crate::watch_backoff::WatchBackoff;

/// A kind a controller reconciles or watches.
pub trait Object:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Object for K where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static
{
}

/// What a controller process declares about itself.
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// The controller's name: field manager, event reporter, log field.
    pub name: &'static str,
    /// The Lease held while leading.
    pub leader_election_id: String,
    /// Concurrent reconciliations per kind (`--concurrent`).
    pub concurrent: u16,
}

impl ManagerOptions {
    /// The options of the controller `name` from its flags.
    pub fn from_flags(name: &'static str, flags: &impl crate::process::ControllerFlags) -> Self {
        Self {
            name,
            leader_election_id: flags.leader_election_id().to_string(),
            concurrent: flags.concurrent(),
        }
    }
}

/// Where the controllers look: one namespace or all, objects matching a
/// label selector or all of them.
#[derive(Clone)]
struct Scope {
    client: Client,
    namespace: Option<String>,
    watch_config: watcher::Config,
}

impl Scope {
    fn api<K: Object>(&self) -> Api<K> {
        crate::options::namespaced_or_all(&self.client, self.namespace.as_deref())
    }
}

/// Settings the reconcile wrapper reads.
#[derive(Clone)]
struct Policy {
    metrics: SharedMetrics,
    requeue_dependency: Duration,
    retry_min: Duration,
    retry_max: Duration,
    concurrency: u16,
}

/// A controller process: its client, admin endpoints, scope and
/// controllers, run until a signal or the loss of leadership.
pub struct Manager {
    options: ManagerOptions,
    common: ControllerOptions,
    config: kube::Config,
    scope: Scope,
    policy: Policy,
    readiness: Readiness,
    shutdown: CancellationToken,
    controllers: Vec<BoxFuture<'static, ()>>,
    background: Vec<JoinHandle<()>>,
}

impl Manager {
    /// The manager of the controller `name` configured by `flags`: serves
    /// the admin endpoints with `metrics` (plus the client's request
    /// counter), builds the client from the kubeconfig or in-cluster
    /// configuration and starts listening for SIGTERM/SIGINT. Controllers
    /// start in [`Manager::run`], once leading.
    pub async fn new(
        name: &'static str,
        flags: &impl crate::process::ControllerFlags,
        metrics: Metrics,
    ) -> Result<Self, Error> {
        // Invalid flag values stop the process before anything starts.
        flags.common().lease_timing()?;
        let mut config = kube::Config::infer()
            .await
            .map_err(|e| Error::Client(e.to_string()))?;
        // infer() took the kubeconfig when one is readable, else in-cluster.
        let kubeconfig = kube::config::Kubeconfig::read().ok();
        crate::api_client::route_by_environment(&mut config, kubeconfig.as_ref());
        let options = ManagerOptions::from_flags(name, flags);
        Self::with_config(options, flags.common(), metrics, config).await
    }

    /// [`Manager::new`] with the client configuration given rather than
    /// inferred (kubeconfig or in-cluster).
    pub async fn with_config(
        options: ManagerOptions,
        common: &ControllerOptions,
        mut metrics: Metrics,
        config: kube::Config,
    ) -> Result<Self, Error> {
        let shutdown = CancellationToken::new();
        let on_signal = shutdown.clone();
        let signal = tokio::spawn(async move {
            crate::shutdown::signal().await;
            info!("shutdown signal received");
            on_signal.cancel();
        });
        let requests = crate::api_client::register_request_counter(metrics.registry_mut());
        let metrics = Arc::new(metrics);
        let readiness = Readiness::default();
        crate::admin::serve(
            common.metrics_socket()?,
            common.health_socket()?,
            metrics.clone(),
            readiness.clone(),
        )
        .await?;
        let client = crate::api_client::build_client(
            config.clone(),
            common.kube_api_qps,
            common.kube_api_burst,
            requests,
        )?;
        let namespace = (!common.watch_all_namespaces)
            .then(crate::options::ControllerOptions::runtime_namespace);
        let mut watch_config = watcher::Config::default().any_semantic();
        if !common.watch_label_selector.is_empty() {
            watch_config = watch_config.labels(&common.watch_label_selector);
        }
        Ok(Self {
            policy: Policy {
                metrics,
                requeue_dependency: common.requeue_dependency,
                retry_min: common.min_retry_delay,
                retry_max: common.max_retry_delay,
                concurrency: options.concurrent.max(1),
            },
            options,
            common: common.clone(),
            config,
            scope: Scope {
                client,
                namespace,
                watch_config,
            },
            readiness,
            shutdown,
            controllers: Vec::new(),
            background: vec![signal],
        })
    }

    /// The controller's client.
    pub fn client(&self) -> &Client {
        &self.scope.client
    }

    /// The configuration the client was built from (for impersonating
    /// clients and helm's kubeconfig).
    pub fn kube_config(&self) -> &kube::Config {
        &self.config
    }

    /// The process's metrics.
    pub fn metrics(&self) -> SharedMetrics {
        self.policy.metrics.clone()
    }

    /// The controller's event recorder: Kubernetes events, and Flux's
    /// webhook events to `--events-addr` when it is set.
    pub fn event_recorder(&self) -> Result<crate::events::EventRecorder, Error> {
        crate::events::EventRecorder::new(self.scope.client.clone(), self.options.name)
            .posting_to(&self.common.events_addr)
    }

    /// The namespace watched, or `None` for all.
    pub fn namespace(&self) -> Option<&str> {
        self.scope.namespace.as_deref()
    }

    /// The API of `K` in the watched scope.
    pub fn api<K: Object>(&self) -> Api<K> {
        self.scope.api()
    }

    /// Declares a controller for `K`, triggered by the changes `trigger`
    /// names.
    pub fn controller<K: Object>(&self, trigger: ReconcileTrigger) -> ControllerBuilder<K> {
        let (store, writer) = reflector::store::<K>();
        let events = watcher(self.scope.api::<K>(), self.scope.watch_config.clone())
            .backoff(WatchBackoff::default())
            .reflect(writer)
            .applied_objects()
            .predicate_filter(
                move |obj: &K| trigger.fingerprint(obj),
                PredicateConfig::default(),
            );
        let controller = Controller::for_stream(events, store.clone())
            .with_config(ControllerConfig::default().concurrency(self.policy.concurrency))
            // The controller backs off its merged trigger stream too, on top
            // of each watch's own backoff: with kube's default it stalls every
            // trigger for up to a minute after an apiserver restart.
            .trigger_backoff(WatchBackoff::default())
            .graceful_shutdown_on(self.shutdown.clone().cancelled_owned());
        ControllerBuilder {
            scope: self.scope.clone(),
            policy: self.policy.clone(),
            controller,
            store,
        }
    }

    /// Adds a controller built with [`Manager::controller`].
    pub fn add(&mut self, controller: RunningController) {
        self.controllers.push(controller.0);
    }

    /// Runs `task` alongside the controllers; it is stopped when they are.
    pub fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.background.push(tokio::spawn(task));
    }

    /// A token cancelled when the process starts shutting down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits for leadership, runs the controllers until a shutdown signal
    /// (then drains them) or the loss of leadership (an error: the process
    /// must not write alongside the new leader).
    pub async fn run(self) -> Result<(), Error> {
        let Manager {
            options,
            common,
            scope,
            readiness,
            shutdown,
            controllers,
            background,
            ..
        } = self;
        let result = async {
            let lease_namespace = crate::options::ControllerOptions::runtime_namespace();
            let lease_name =
                crate::leader::lease_name(&options.leader_election_id, &common.watch_label_selector);
            let leadership = Leadership::new(
                scope.client.clone(),
                common.enable_leader_election,
                &lease_namespace,
                &lease_name,
                common.lease_timing()?,
            );
            let mut leadership = tokio::select! {
                leadership = leadership => leadership?,
                () = shutdown.cancelled() => return Ok(()),
            };
            readiness.set(true);
            info!(
                controller = options.name,
                namespaces = scope.namespace.as_deref().unwrap_or("*"),
                concurrent = options.concurrent,
                "starting controllers"
            );
            let mut running = futures::future::join_all(controllers);
            let outcome = tokio::select! {
                _ = &mut running => Ok(()),
                () = leadership.lost() => {
                    readiness.set(false);
                    return Err(Error::LeaderElection("leadership lost".into()));
                }
                () = shutdown.cancelled() => {
                    readiness.set(false);
                    let timeout = common.graceful_shutdown_timeout;
                    info!(timeout = ?timeout, "shutting down: waiting for in-flight reconciliations");
                    match tokio::time::timeout(timeout, running).await {
                        Ok(_) => info!("in-flight reconciliations finished"),
                        Err(_) => tracing::warn!(timeout = ?timeout, "graceful shutdown timed out; stopping the remaining reconciliations"),
                    }
                    Ok(())
                }
            };
            leadership.release().await;
            outcome
        }
        .await;
        for task in background {
            task.abort();
        }
        result
    }
}

/// A controller being declared: its kind's watch and store, and the watches
/// of related kinds.
pub struct ControllerBuilder<K: Object> {
    scope: Scope,
    policy: Policy,
    controller: Controller<K>,
    store: Store<K>,
}

/// Which objects of a related kind are watched, and which of their changes
/// matter.
pub struct Related<O: Object> {
    config: Option<watcher::Config>,
    predicate: Option<fn(&O) -> Option<u64>>,
    writer: Option<reflector::store::Writer<O>>,
}

impl<O: Object> Related<O> {
    /// Every object of the kind in the watched namespaces, whatever the
    /// label selector (sources are not sharded with their users).
    pub fn all() -> Self {
        Self {
            config: Some(watcher::Config::default().any_semantic()),
            predicate: None,
            writer: None,
        }
    }

    /// Objects within the controller's own scope, label selector included.
    pub fn in_scope() -> Self {
        Self {
            config: None,
            predicate: None,
            writer: None,
        }
    }

    /// Objects matching the label `selector` (e.g. `--watch-configs-label-selector`).
    pub fn labelled(selector: &str) -> Self {
        Self {
            config: Some(watcher::Config::default().labels(selector)),
            predicate: None,
            writer: None,
        }
    }

    /// Only changes of what `predicate` returns trigger.
    pub fn when_changed(mut self, predicate: fn(&O) -> Option<u64>) -> Self {
        self.predicate = Some(predicate);
        self
    }

    /// Also keeps the objects watched in the store of `writer`.
    pub fn cached_in(mut self, writer: reflector::store::Writer<O>) -> Self {
        self.writer = Some(writer);
        self
    }
}

/// A declared controller, ready to be added to its [`Manager`].
pub struct RunningController(BoxFuture<'static, ()>);

impl<K: Object> ControllerBuilder<K> {
    /// The store of the controller's own kind, as watched.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Reconciles the objects `map` names when an object of `O` changes;
    /// `map` gets the changed object and the store of the controller's kind.
    #[must_use]
    pub fn watches<O, I>(
        mut self,
        related: Related<O>,
        map: impl Fn(&O, &Store<K>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        O: Object,
        I: IntoIterator<Item = ObjectRef<K>> + 'static,
        I::IntoIter: Send,
    {
        let objects = self.related_objects(related);
        let store = self.store.clone();
        self.controller = self
            .controller
            .watches_stream(objects, move |obj: O| map(&obj, &store));
        self
    }

    /// [`watches`](Self::watches) with a delay per trigger: `map` also says
    /// how long each named object's reconciliation waits (`None`: not at
    /// all). Changes arriving while an object waits add nothing: it is
    /// reconciled once, when the delay of the first has passed. Triggers of
    /// other watches are not delayed.
    ///
    /// Why: kube's controller runs every trigger at once, and a kind may
    /// want related changes gathered into one run (ImageUpdateAutomation's
    /// `policyChangeDelay` commits image updates arriving together once).
    #[must_use]
    pub fn watches_delayed<O, I>(
        mut self,
        related: Related<O>,
        map: impl Fn(&O, &Store<K>) -> I + Send + Sync + 'static,
    ) -> Self
    where
        O: Object,
        I: IntoIterator<Item = (ObjectRef<K>, Option<Duration>)> + 'static,
        I::IntoIter: Send,
    {
        let store = self.store.clone();
        let triggers = self
            .related_objects(related)
            .flat_map(move |object| {
                let triggers: Vec<_> = match object {
                    Ok(object) => map(&object, &store).into_iter().collect(),
                    // The watch retries by itself (WatchBackoff); as in
                    // `watches`, an error triggers nothing.
                    Err(err) => {
                        tracing::debug!(kind = %O::kind(&()), error = %err, "watch error");
                        Vec::new()
                    }
                };
                futures::stream::iter(triggers)
            })
            .boxed();
        self.controller = self.controller.reconcile_on(DelayedTriggers::new(triggers));
        self
    }

    /// The watch of the related kind `O`: scoped and filtered as `related`
    /// says, reflected into its store if it has one.
    fn related_objects<O: Object>(
        &self,
        related: Related<O>,
    ) -> BoxStream<'static, Result<O, watcher::Error>> {
        let config = related
            .config
            .unwrap_or_else(|| self.scope.watch_config.clone());
        let events = watcher(self.scope.api::<O>(), config).backoff(WatchBackoff::default());
        let objects: BoxStream<'static, Result<O, watcher::Error>> = match related.writer {
            Some(writer) => events.reflect(writer).touched_objects().boxed(),
            None => events.touched_objects().boxed(),
        };
        match related.predicate {
            Some(predicate) => objects
                .predicate_filter(predicate, PredicateConfig::default())
                .boxed(),
            None => objects,
        }
    }

    /// Runs `reconcile` for every triggered object with `ctx`: its duration
    /// and result recorded, failures requeued by their disposition.
    pub fn run<C, E, Fut>(
        self,
        reconcile: impl Fn(Arc<K>, Arc<C>) -> Fut + Send + Sync + 'static,
        ctx: Arc<C>,
    ) -> RunningController
    where
        C: Send + Sync + 'static,
        E: ReconcileError,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
    {
        let harness = Arc::new(Harness {
            reconcile,
            ctx,
            retry: RetryPolicy::new(self.policy.retry_min, self.policy.retry_max),
            policy: self.policy,
        });
        let running = self
            .controller
            .run(
                |obj, harness| async move { harness.reconcile(obj).await },
                |obj, err, harness| harness.error_policy(obj.as_ref(), err),
                harness,
            )
            .for_each(|_| futures::future::ready(()));
        RunningController(running.boxed())
    }
}

/// The reconcile function with the harness's bookkeeping around it.
struct Harness<C, F> {
    reconcile: F,
    ctx: Arc<C>,
    retry: RetryPolicy,
    policy: Policy,
}

impl<C, F> Harness<C, F> {
    async fn reconcile<K, E, Fut>(&self, obj: Arc<K>) -> Result<Action, E>
    where
        K: Object,
        F: Fn(Arc<K>, Arc<C>) -> Fut,
        Fut: Future<Output = Result<Action, E>>,
        E: ReconcileError,
    {
        let started = Instant::now();
        let key = object_key(obj.as_ref());
        let result = (self.reconcile)(obj.clone(), self.ctx.clone()).await;
        let outcome = match &result {
            Ok(_) => ReconcileResult::Success,
            Err(err) if err.disposition() == Disposition::WaitForDependency => {
                ReconcileResult::Requeue
            }
            Err(_) => ReconcileResult::Error,
        };
        let meta = obj.meta();
        self.policy.metrics.record_reconcile(
            &K::kind(&()),
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
            started.elapsed(),
            outcome,
        );
        if result.is_ok() {
            self.retry.reset(&key);
        }
        result
    }

    fn error_policy<K: Object, E: ReconcileError>(&self, obj: &K, err: &E) -> Action {
        let key = object_key(obj);
        match err.disposition() {
            Disposition::WaitForDependency => {
                tracing::info!(object = %key, reason = %err, "waiting");
                Action::requeue(self.policy.requeue_dependency)
            }
            Disposition::Stall => {
                tracing::warn!(object = %key, error = %err, "reconciliation stalled");
                Action::await_change()
            }
            Disposition::Retry => {
                let delay = self.retry.next_delay(&key);
                tracing::warn!(object = %key, error = %err, retry_in = ?delay, "reconciliation failed");
                Action::requeue(delay)
            }
        }
    }
}
