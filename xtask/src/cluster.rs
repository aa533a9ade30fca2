//! `cargo xtask cluster`: the local control plane (see `e2e::cluster::detached`).

use anyhow::Result;
use e2e::cluster::detached::{self, DetachedCluster};

/// What `cargo xtask cluster` does.
#[derive(clap::Subcommand)]
pub enum Action {
    /// Build (once) and start etcd, kube-apiserver and kube-controller-manager; install the CRDs.
    Up,
    /// Stop every process `up` started and remove the control plane's data.
    Down,
    /// Say whether the control plane is running and where.
    Status,
    /// Print the environment to use it (`export KUBECONFIG=…`).
    Env,
}

/// Runs `cargo xtask cluster <action>`.
pub fn run(action: Action) -> Result<()> {
    let cluster = DetachedCluster::default();
    match action {
        Action::Up => up(&cluster),
        Action::Down => down(&cluster),
        Action::Status => status(&cluster),
        Action::Env => {
            print!("{}", cluster.env()?);
            Ok(())
        }
    }
}

fn up(cluster: &DetachedCluster) -> Result<()> {
    let report = cluster.up()?;
    if let Some(dir) = &report.removed_stale {
        eprintln!(
            "removed {} left behind by a control plane that is no longer running",
            dir.display()
        );
    }
    if report.already_running {
        eprintln!(
            "control plane already running at {}; re-applied {} CRDs in {:.1?}",
            report.url,
            report.crds.len(),
            report.took
        );
    } else {
        eprintln!(
            "control plane running at {} ({} CRDs installed) in {:.1?}",
            report.url,
            report.crds.len(),
            report.took
        );
    }
    print!("{}", detached::env_lines(&report.kubeconfig));
    Ok(())
}

fn down(cluster: &DetachedCluster) -> Result<()> {
    let report = cluster.down()?;
    if report.stopped.is_empty() && report.removed.is_none() {
        eprintln!("control plane not running; nothing to do");
        return Ok(());
    }
    for (name, pid) in &report.stopped {
        eprintln!("stopped {name} (pid {pid})");
    }
    if let Some(dir) = &report.removed {
        eprintln!("removed {}", dir.display());
    }
    Ok(())
}

fn status(cluster: &DetachedCluster) -> Result<()> {
    let status = cluster.status()?;
    if status.running() {
        println!(
            "running at {}",
            status.url.as_deref().unwrap_or("(unknown URL)")
        );
        for state in &status.components {
            let rss = state
                .rss_kib
                .map(|kib| format!(", {} MiB resident", kib / 1024))
                .unwrap_or_default();
            println!(
                "  {:<24} pid {}{rss}",
                state.component.name(),
                state.pid.unwrap_or_default()
            );
        }
        println!("kubeconfig: {}", status.kubeconfig.display());
    } else if status.stopped() {
        println!("not running");
        if let Some(dir) = &status.run_dir {
            println!(
                "  {} is left from a run that died; `cargo xtask cluster up` or `down` removes it",
                dir.display()
            );
        }
    } else {
        println!(
            "partly running: {}; run `cargo xtask cluster down`",
            status.describe()
        );
    }
    println!("logs: {}", status.log_dir.display());
    Ok(())
}
