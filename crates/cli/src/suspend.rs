//! `ferroflux suspend|resume <kind> [name...] [--all]`: sets `spec.suspend`
//! with a merge patch. `resume` also requests a reconciliation in the same
//! patch and, for one object (or with `--wait`), waits for it as
//! `reconcile` does.

use anyhow::{Result, bail};
use clap::Args;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::cluster::{Cluster, describe, is_not_found};
use crate::kinds::Kind;
use crate::output::Log;
use crate::reconcile::{self, Request};
use crate::select::{Target, Verb, verb_target};
use crate::table;

verb_target!(SuspendTarget, Verb::Suspend);
verb_target!(ResumeTarget, Verb::Resume);

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Stop applying a Kustomization
  ferroflux suspend kustomization apps

  # Suspend every GitRepository of the namespace
  ferroflux suspend source git --all")]
pub struct SuspendArgs {
    #[command(subcommand)]
    target: SuspendTarget,
    /// Suspend every object of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Resume a Kustomization and wait until it is reconciled
  ferroflux resume kustomization apps

  # Resume every HelmRelease of the namespace without waiting
  ferroflux resume helmrelease --all")]
pub struct ResumeArgs {
    #[command(subcommand)]
    target: ResumeTarget,
    /// Resume every object of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
    /// Wait for each object to be reconciled (default: when one object is
    /// named).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    wait: Option<bool>,
}

/// The objects a suspend or resume works on: the named ones (each once), or
/// every one of the namespace with `--all`.
async fn objects(
    cluster: &Cluster,
    kind: &Kind,
    target: &Target,
    all: bool,
    log: Log,
) -> Result<(Vec<DynamicObject>, bool)> {
    let api = cluster.api_here(kind);
    let ns = &cluster.namespace;
    if target.names.is_empty() {
        if !all {
            bail!("{} name is required", kind.human);
        }
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        if list.items.is_empty() {
            bail!("no {} objects found in {ns} namespace", kind.kind);
        }
        return Ok((list.items, false));
    }
    let mut found = Vec::new();
    let mut missing = false;
    let mut seen = std::collections::BTreeSet::new();
    for name in &target.names {
        if !seen.insert(name) {
            continue;
        }
        match api.get(name).await {
            Ok(object) => found.push(object),
            Err(e) if is_not_found(&e) => {
                log.failure(&format!("{} {name} not found in {ns} namespace", kind.kind));
                missing = true;
            }
            Err(e) => bail!("{}", describe(&e)),
        }
    }
    Ok((found, missing))
}

fn the_kind(target: &Target) -> Result<&'static Kind> {
    target
        .kind()
        .ok_or_else(|| anyhow::anyhow!("one kind is required"))
}

pub async fn suspend(args: SuspendArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0;
    let kind = the_kind(&target)?;
    let log = Log::default();
    let (objects, missing) = objects(&cluster, kind, &target, args.all, log).await?;
    let api = cluster.api_here(kind);
    let patch = json!({"spec": {"suspend": true}});
    for object in objects {
        let name = object.metadata.name.clone().unwrap_or_default();
        log.action(&format!(
            "suspending {} {name} in {} namespace",
            kind.human, cluster.namespace
        ));
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        log.success(&format!("{} suspended", kind.human));
    }
    if missing {
        bail!("some objects were not found");
    }
    Ok(())
}

pub async fn resume(args: ResumeArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0;
    let kind = the_kind(&target)?;
    let log = Log::default();
    let wait = args.wait.unwrap_or(target.names.len() == 1);
    let (objects, missing) = objects(&cluster, kind, &target, args.all, log).await?;
    let api = cluster.api_here(kind);
    let mut resumed = Vec::new();
    for object in objects {
        let name = object.metadata.name.clone().unwrap_or_default();
        log.action(&format!(
            "resuming {} {name} in {} namespace",
            kind.human, cluster.namespace
        ));
        let spec = json!({"suspend": false});
        let token = if kind.reconcilable && !reconcile::is_static(kind, &object) {
            reconcile::annotate(&api, &name, Some(spec), Request::default()).await?
        } else {
            api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            String::new()
        };
        log.success(&format!("{} resumed", kind.human));
        resumed.push((name, token));
    }
    let mut failed = false;
    if wait {
        for (name, token) in resumed {
            if token.is_empty() {
                log.success(&format!("{} {name} reconciliation completed", kind.kind));
                continue;
            }
            let object = reconcile::wait_handled(&cluster, log, &api, kind, &name, &token).await?;
            let (ready, message) = table::readiness(kind, &object);
            if ready == "True" {
                log.success(&format!("{} {name} reconciliation completed", kind.kind));
                log.success(&reconcile::success_message(kind, &object));
            } else {
                log.failure(&format!(
                    "{} {name} reconciliation failed: {message}",
                    kind.kind
                ));
                failed = true;
            }
        }
    }
    if failed {
        bail!("resumed, but not ready");
    }
    if missing {
        bail!("some objects were not found");
    }
    Ok(())
}
