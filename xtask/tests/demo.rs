//! `cargo xtask demo --once` end to end: a control plane of its own, the Git
//! server, both controllers, the example app applied, a change rolled out,
//! an object pruned, and nothing left behind.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_runs_its_script_and_leaves_nothing_behind() {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["demo", "--once"])
        .output()
        .expect("running cargo xtask demo --once");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    for expected in [
        "GitRepository ready: stored artifact for revision 'main@sha1:",
        "Kustomization ready in",
        "; Service podinfo/podinfo deleted",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    // kubectl's own listing: the source, the Kustomization, the applied objects.
    for expected in [
        "flux-system   gitrepository.source.toolkit.fluxcd.io/podinfo",
        "flux-system   kustomization.kustomize.toolkit.fluxcd.io/podinfo",
        "deployment.apps/podinfo",
        "service/podinfo",
        "ghcr.io/stefanprodan/podinfo:6.7.1",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // The last listing, after the prune, has no Service.
    let after_prune = stdout
        .rsplit("$ kubectl")
        .next()
        .expect("a kubectl listing");
    assert!(
        !after_prune.contains("service/podinfo"),
        "Service still listed:\n{after_prune}"
    );
    let removed: Vec<&str> = stderr
        .split_once("removed:\n")
        .map(|(_, rest)| rest.lines().map(str::trim).collect())
        .unwrap_or_default();
    assert_eq!(removed.len(), 3, "{stderr}");
    for dir in removed {
        assert!(!Path::new(dir).exists(), "{dir} was left behind");
    }
}
