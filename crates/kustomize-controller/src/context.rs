//! What every reconciliation shares ([`Context`]): clients (the controller's
//! own and impersonated ones), the artifact fetcher, the discovery cache,
//! events, metrics and the command-line settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use api::kustomize::Kustomization;
use kube::{Client, ResourceExt};
use runtime::artifact::ArtifactFetcher;
use runtime::events::EventRecorder;
use runtime::metrics::Metrics;
use runtime::ssa::Resolver;

use crate::Error;

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
    /// Not `DisableFailFastBehavior`.
    pub fail_fast: bool,
    /// Poll interval of health checks. Much shorter than Flux's 5s: most
    /// objects are ready a few tens of milliseconds after being applied (a
    /// Deployment once kube-controller-manager has observed it), and a
    /// reconcile waiting for the next poll holds one of the `--concurrent`
    /// workers. At 1 s, 100 Kustomizations with `wait` took 51 s to be Ready
    /// with the controller idle; each poll is one GET per object.
    pub health_poll_interval: Duration,
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
            fail_fast: true,
            health_poll_interval: Duration::from_millis(200),
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

    /// The client that applies for `ks`: impersonating its service account
    /// (`system:serviceaccount:<namespace>:<name>`) when it has one, the
    /// controller's own otherwise.
    pub fn apply_client(&self, ks: &Kustomization) -> Result<Client, Error> {
        let Some(account) = self.service_account(ks) else {
            return Ok(self.client.clone());
        };
        let user = format!(
            "system:serviceaccount:{}:{account}",
            ks.namespace().unwrap_or_default()
        );
        let mut clients = self
            .impersonated
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = clients.get(&user) {
            return Ok(client.clone());
        }
        let mut config = self.config.clone();
        config.auth_info.impersonate = Some(user.clone());
        let client = Client::try_from(config)?;
        clients.insert(user, client.clone());
        Ok(client)
    }
}
