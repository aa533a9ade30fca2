//! The `ferroflux` command-line interface: flux's verbs against the cluster
//! of the current kubeconfig context, one module per verb family. Every
//! kind the verbs accept is described once, in [`kinds`].
//!
//! Exit codes: 0 success; 1 failure (one `✗ <cause>` line on stderr); 2
//! bad usage (clap's message); 130 interrupted (Ctrl-C).

mod cluster;
mod delete;
mod export;
mod get;
mod kinds;
mod kustomize_cmd;
mod output;
mod reconcile;
mod select;
mod suspend;
mod table;
mod version;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cluster::{Cluster, ClusterArgs};

#[derive(Parser)]
#[command(
    name = "ferroflux",
    version,
    about = "GitOps toolkit for Kubernetes",
    after_help = "Examples:
  # The status of every Flux object of every namespace
  ferroflux get all -A

  # Fetch a Kustomization's source and apply it now
  ferroflux reconcile kustomization flux-system --with-source"
)]
struct Cli {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the status of Flux objects.
    Get(get::GetArgs),
    /// Trigger a reconciliation and wait for it.
    Reconcile(reconcile::ReconcileArgs),
    /// Suspend the reconciliation of objects.
    Suspend(suspend::SuspendArgs),
    /// Resume suspended objects and wait for them.
    Resume(suspend::ResumeArgs),
    /// Print objects as YAML to apply elsewhere.
    Export(export::ExportArgs),
    /// Delete an object and wait until it is gone.
    Delete(delete::DeleteArgs),
    /// Print the client's and the controllers' versions.
    Version(version::VersionArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  # bash: load for this shell
  source <(ferroflux completion bash)

  # zsh: install for every shell
  ferroflux completion zsh > \"${fpath[1]}/_ferroflux\"")]
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Build Kustomize overlays the way kustomize-controller does.
    Kustomize(kustomize_cmd::KustomizeArgs),
}

/// The interruption by Ctrl-C, told apart for its exit code.
#[derive(Debug)]
struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted")
    }
}

impl std::error::Error for Interrupted {}

async fn run_cluster_command(command: Command, args: ClusterArgs) -> anyhow::Result<()> {
    if let Command::Version(v) = command {
        return version::run(v, &args).await;
    }
    let cluster = Cluster::connect(&args).await?;
    match command {
        Command::Get(a) => get::run(a, cluster).await,
        Command::Reconcile(a) => reconcile::run(a, cluster).await,
        Command::Suspend(a) => suspend::suspend(a, cluster).await,
        Command::Resume(a) => suspend::resume(a, cluster).await,
        Command::Export(a) => export::run(a, cluster).await,
        Command::Delete(a) => delete::run(a, cluster).await,
        Command::Version(_) | Command::Completion { .. } | Command::Kustomize(_) => Ok(()),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Kustomize(args) => kustomize_cmd::run(args),
        Command::Completion { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ferroflux",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        command => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
            runtime.block_on(async {
                tokio::select! {
                    result = run_cluster_command(command, cli.cluster) => result,
                    _ = tokio::signal::ctrl_c() => Err(Interrupted.into()),
                }
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            output::Log::default().failure(&cluster::one_line(&format!("{e:#}")));
            if e.downcast_ref::<Interrupted>().is_some() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
