//! `ferroflux delete <kind> <name> [-s]`: asks first (refusing without a
//! terminal to ask on, unless `--silent`), deletes, and waits until the
//! object is gone, its controller's finalizer done.

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use kube::api::DeleteParams;

use crate::cluster::{Cluster, describe};
use crate::output::Log;
use crate::select::{Verb, verb_target};

verb_target!(DeleteTarget, Verb::Delete);

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Delete a Kustomization (its controller then prunes what it applied)
  ferroflux delete kustomization apps

  # Without asking
  ferroflux delete source git podinfo --silent")]
pub struct DeleteArgs {
    #[command(subcommand)]
    target: DeleteTarget,
    /// Delete without asking for confirmation.
    #[arg(short = 's', long, global = true)]
    silent: bool,
}

pub async fn run(args: DeleteArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0;
    let (Some(kind), Some(name)) = (target.kind(), target.names.first()) else {
        bail!("one kind and name are required");
    };
    let api = cluster.api_here(kind);
    api.get(name)
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    if !args.silent {
        if !std::io::stdin().is_terminal() {
            bail!(
                "refusing to delete without confirmation: stdin is not a terminal (use --silent)"
            );
        }
        eprint!(
            "Are you sure you want to delete this {}? [y/N] ",
            kind.human
        );
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            bail!("aborting");
        }
    }
    let log = Log::default();
    log.action(&format!(
        "deleting {} {name} in {} namespace",
        kind.human, cluster.namespace
    ));
    api.delete(name, &DeleteParams::default())
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    let spinner = log.waiting(&format!("waiting for {} {name} to be gone", kind.kind));
    let deadline = Instant::now() + cluster.timeout;
    while api
        .get_opt(name)
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?
        .is_some()
    {
        if Instant::now() >= deadline {
            bail!(
                "timed out after {:?} waiting for {} {name} to be deleted (is its controller running?)",
                cluster.timeout,
                kind.kind
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    drop(spinner);
    log.success(&format!("{} deleted", kind.human));
    Ok(())
}
