//! What every reconciliation shares ([`Context`]): clients (the controller's
//! own, impersonated ones, and those of remote clusters through
//! [`Context::target`]), the artifact fetcher, the discovery cache, events,
//! metrics and the command-line settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use api::kustomize::Kustomization;
use kube::{Client, ResourceExt};
use runtime::artifact::ArtifactFetcher;
use runtime::events::EventRecorder;
use runtime::metrics::Metrics;
use runtime::remote_cluster::{
    KubeConfigError, KubeConfigPolicy, RemoteKubeConfig, client_as, service_account_user,
};
use runtime::ssa::Resolver;

/// The field manager and event reporter name.
pub const CONTROLLER_NAME: &str = "kustomize-controller";

/// Settings the reconcilers read from the command line.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--interval-jitter-percentage`.
    pub jitter_percent: u8,
    /// `--requeue-dependency`.
    pub requeue_dependency: Duration,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
    /// `--default-service-account` (None when empty).
    pub default_service_account: Option<String>,
    /// `--sops-age-secret` as (namespace, name).
    pub sops_age_secret: Option<(String, String)>,
    /// `--concurrent-ssa`.
    pub concurrent_ssa: usize,
    /// `--override-manager`.
    pub override_managers: Vec<String>,
    /// `--custom-apply-stage-kinds`.
    pub custom_stage_kinds: Vec<String>,
    /// Feature gate `StrictPostBuildSubstitutions`.
    pub strict_substitution: bool,
    /// `--no-remote-bases`: refuse remote bases instead of fetching them.
    pub no_remote_bases: bool,
    /// Feature gate `ExternalArtifact`: ExternalArtifact sources may be used.
    pub allow_external_artifact: bool,
    /// Not `DisableFailFastBehavior`.
    pub fail_fast: bool,
    /// Poll interval of health checks. Much shorter than Flux's 5s: most
    /// objects are ready a few tens of milliseconds after being applied (a
    /// Deployment once kube-controller-manager has observed it), and a
    /// reconcile waiting for the next poll holds one of the `--concurrent`
    /// workers. At 1 s, 100 Kustomizations with `wait` took 51 s to be Ready
    /// with the controller idle; each poll is one GET per object.
    pub health_poll_interval: Duration,
    /// `--insecure-kubeconfig-exec`, `--insecure-kubeconfig-tls` and
    /// `--default-kubeconfig-service-account` (`spec.kubeConfig`).
    pub kubeconfig_policy: KubeConfigPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            jitter_percent: 5,
            requeue_dependency: Duration::from_secs(30),
            no_cross_namespace_refs: false,
            default_service_account: None,
            sops_age_secret: None,
            concurrent_ssa: 4,
            override_managers: Vec::new(),
            custom_stage_kinds: Vec::new(),
            strict_substitution: true,
            no_remote_bases: false,
            allow_external_artifact: false,
            fail_fast: true,
            health_poll_interval: Duration::from_millis(200),
            kubeconfig_policy: KubeConfigPolicy::default(),
        }
    }
}

/// Everything a reconciliation needs, shared by all of them.
pub struct Context {
    /// The controller's own client (sources, Secrets, status).
    pub client: Client,
    /// The configuration the client was built from, for impersonation.
    config: kube::Config,
    /// Kubernetes events.
    pub recorder: EventRecorder,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Downloads artifacts.
    pub fetcher: ArtifactFetcher,
    /// Discovery cache shared by all apply engines.
    pub resolver: Resolver,
    /// Command-line settings.
    pub settings: Settings,
    /// Impersonating clients by user name.
    impersonated: Mutex<HashMap<String, Client>>,
}

impl Context {
    /// A context for the reconcilers.
    pub fn new(
        client: Client,
        config: kube::Config,
        metrics: Arc<Metrics>,
        fetcher: ArtifactFetcher,
        recorder: EventRecorder,
        settings: Settings,
    ) -> Context {
        Context {
            recorder,
            client,
            config,
            metrics,
            fetcher,
            resolver: Resolver::default(),
            settings,
            impersonated: Mutex::new(HashMap::new()),
        }
    }

    /// The service account a Kustomization applies as: its own
    /// `serviceAccountName`, else `--default-service-account`.
    pub fn service_account(&self, ks: &Kustomization) -> Option<String> {
        ks.spec
            .service_account_name
            .clone()
            .filter(|sa| !sa.is_empty())
            .or_else(|| self.settings.default_service_account.clone())
    }

    /// The cluster `ks` applies to and the client it applies with: the
    /// remote cluster of `spec.kubeConfig` when set, the controller's own
    /// otherwise; impersonating its service account
    /// (`system:serviceaccount:<namespace>:<name>`) when it has one. Dry-run,
    /// apply, prune, health checks and garbage collection all go through it.
    pub async fn target(&self, ks: &Kustomization) -> Result<Target, KubeConfigError> {
        let namespace = ks.namespace().unwrap_or_default();
        let user = self
            .service_account(ks)
            .map(|account| service_account_user(&namespace, &account));
        let Some(reference) = &ks.spec.kube_config else {
            let client = self.local_client(user).map_err(|err| {
                KubeConfigError::Invalid(format!("failed to build the impersonating client: {err}"))
            })?;
            return Ok(Target {
                client,
                resolver: self.resolver.clone(),
            });
        };
        let remote = RemoteKubeConfig::load(
            &self.client,
            &namespace,
            reference,
            &self.settings.kubeconfig_policy,
        )
        .await?;
        Ok(Target {
            client: remote.client(user.as_deref())?,
            // Discovery of another cluster: its kinds are not this one's.
            resolver: Resolver::default(),
        })
    }

    /// The controller's own client, impersonating `user` when given
    /// (one client per user, kept for the controller's lifetime).
    fn local_client(&self, user: Option<String>) -> Result<Client, kube::Error> {
        let Some(user) = user else {
            return Ok(self.client.clone());
        };
        let mut clients = self
            .impersonated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&user) {
            return Ok(client.clone());
        }
        let client = client_as(&self.config, Some(&user))?;
        clients.insert(user, client.clone());
        Ok(client)
    }
}

/// The cluster a Kustomization's objects live in.
pub struct Target {
    /// The client that applies, prunes and checks health there.
    pub client: Client,
    /// Discovery of that cluster's resources.
    pub resolver: Resolver,
}
