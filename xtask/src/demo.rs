//! `cargo xtask demo`: set everything up and run the main job.
//!
//! Today the main job is the foundation: a real control plane on loopback
//! with every Flux CRD installed, ready for Flux manifests. The GitOps loop
//! (source-controller + kustomize-controller applying a Git repository) joins
//! it as those controllers land.

use std::process::Command;

use anyhow::{Context, Result, bail};

pub fn run() -> Result<()> {
    eprintln!("==> installing what is missing (Debian packages, helm, kubectl)");
    e2e::packages::ensure_all()?;
    eprintln!(
        "==> starting the local control plane (the first run builds it from Go modules, ~15 min)"
    );
    crate::cluster::run(crate::cluster::Action::Up)?;

    let cluster = e2e::cluster::detached::DetachedCluster::default();
    let kubeconfig = cluster.kubeconfig_path();
    let kubectl = e2e::packages::kubectl_kustomize()?;
    eprintln!("\n==> the Flux API, served by ferroflux's CRDs:");
    let out = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["api-resources", "--categories=fluxcd", "-o", "wide"])
        .output()
        .context("running kubectl api-resources")?;
    if !out.status.success() {
        bail!(
            "kubectl api-resources failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    print!("{}", String::from_utf8_lossy(&out.stdout));
    println!(
        "\nUse it:\n  export KUBECONFIG={}\n  {} get crds\n\nStop it: cargo xtask cluster down",
        kubeconfig.display(),
        kubectl.display()
    );
    Ok(())
}
