//! The cluster connection every verb shares: kubectl's flags (`--kubeconfig`,
//! `--context`, `-n`, `-A`) and `--timeout`, a kube client for the chosen
//! context, the namespace to work in, and the API of each Flux kind.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::kinds::Kind;

/// The namespace flux works in when nothing else names one.
pub const DEFAULT_NAMESPACE: &str = "flux-system";

/// Flags every command accepts, as kubectl and flux spell them.
#[derive(Args, Clone, Debug)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The namespace (default: $FLUX_SYSTEM_NAMESPACE, else the context's
    /// namespace, else flux-system).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// How long to wait for the cluster and for reconciliations (Go duration).
    #[arg(long, global = true, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    api::Duration::new(text)
        .to_std()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))
}

/// A client of the chosen cluster and the namespace to work in.
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
    pub timeout: Duration,
}

impl Cluster {
    /// Connects as the flags say. Nothing is sent to the API server yet.
    pub async fn connect(args: &ClusterArgs) -> Result<Cluster> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Some(
                Kubeconfig::read_from(path)
                    .with_context(|| format!("reading kubeconfig {}", path.display()))?,
            ),
            None => match Kubeconfig::read() {
                Ok(kubeconfig) => Some(kubeconfig),
                // No kubeconfig at all: inside a Pod, use its service account.
                Err(_) if args.context.is_none() => None,
                Err(e) => return Err(anyhow!("reading kubeconfig: {e}")),
            },
        };
        let (config, context_namespace) = match kubeconfig {
            Some(kubeconfig) => {
                let namespace = context_namespace(&kubeconfig, args.context.as_deref());
                let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| anyhow!("loading kubeconfig: {e}"))?;
                (config, namespace)
            }
            None => (
                kube::Config::incluster()
                    .map_err(|e| anyhow!("no kubeconfig found and not in a cluster: {e}"))?,
                None,
            ),
        };
        let namespace = args
            .namespace
            .clone()
            .or_else(|| {
                std::env::var("FLUX_SYSTEM_NAMESPACE")
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .or(context_namespace)
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        let client = kube::Client::try_from(config).map_err(|e| anyhow!("kube client: {e}"))?;
        Ok(Cluster {
            client,
            namespace,
            timeout: args.timeout,
        })
    }

    /// The API of `kind` in `namespace` (all namespaces with `None`).
    pub fn api(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        let resource = resource(kind);
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        }
    }

    /// The API of `kind` in the working namespace.
    pub fn api_here(&self, kind: &Kind) -> Api<DynamicObject> {
        self.api(kind, Some(&self.namespace))
    }
}

/// The API resource of `kind` (no discovery round trip: the table knows it).
pub fn resource(kind: &Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group, kind.version, kind.kind),
        kind.plural,
    )
}

/// The namespace the chosen context names, if it names one.
fn context_namespace(kubeconfig: &Kubeconfig, context: Option<&str>) -> Option<String> {
    let name = context.or(kubeconfig.current_context.as_deref())?;
    kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .filter(|ns| !ns.is_empty())
}

/// A kube error as one line: the API server's own message where there is
/// one (`gitrepositories.source.toolkit.fluxcd.io "x" not found`), as flux
/// prints it.
pub fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => one_line(&status.message),
        other => one_line(&other.to_string()),
    }
}

/// Joins the lines of `text` with `; `.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `error` is the API server's 404.
pub fn is_not_found(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 404)
}
