//! `cargo xtask demo --once` end to end: a control plane of its own, the Git
//! server, the registry, the three controllers, the example app applied, a
//! change rolled out, an object pruned, a new image tag written to Git by the
//! automation and rolled out, and nothing left behind.

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
        "ImagePolicy ready: latest image 127.0.0.1:",
        "ImageUpdateAutomation ready: repository up-to-date",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in:\n{stderr}");
    }
    // The image update: each step once, in order, timed from the push.
    let update = stderr
        .split_once("==> a new image: ")
        .map(|(_, rest)| rest)
        .expect("the image update step");
    let mut rest = update;
    for expected in [
        "/flux-system/podinfo:6.1.0 pushed to the registry",
        "s: ImagePolicy flux-system/podinfo selected 127.0.0.1:",
        "/flux-system/podinfo:6.1.0\n",
        "s: ImageUpdateAutomation flux-system/podinfo pushed to main:",
        "Author: fluxcdbot <fluxcdbot@users.noreply.github.com>",
        "Automated image update by podinfo",
        "apps/podinfo/base/deployment.yaml:",
        "Deployment/podinfo: 127.0.0.1:",
        "/flux-system/podinfo:6.0.0 -> 127.0.0.1:",
        // The setter line rewritten in place, marker kept.
        "-        image: 127.0.0.1:",
        r#"/flux-system/podinfo:6.0.0 # {"$imagepolicy": "flux-system:podinfo"}"#,
        "+        image: 127.0.0.1:",
        r#"/flux-system/podinfo:6.1.0 # {"$imagepolicy": "flux-system:podinfo"}"#,
        "s: GitRepository flux-system/podinfo fetched main@sha1:",
        "s: Deployment podinfo/podinfo has image 127.0.0.1:",
        "/flux-system/podinfo:6.1.0",
    ] {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("no {expected:?} (in order) in:\n{update}"));
        rest = &rest[at + expected.len()..];
    }
    // The automation's commit is the revision fetched.
    let commit = update
        .split_once("commit ")
        .and_then(|(_, rest)| rest.get(..40))
        .expect("the pushed commit");
    assert!(
        update.contains(&format!("fetched main@sha1:{commit}")),
        "{update}"
    );
    // kubectl's own listing: the source, the Kustomization, the applied objects.
    for expected in [
        "flux-system   gitrepository.source.toolkit.fluxcd.io/podinfo",
        "flux-system   kustomization.kustomize.toolkit.fluxcd.io/podinfo",
        "deployment.apps/podinfo",
        "service/podinfo",
        "/flux-system/podinfo:6.0.0",
        "imagerepository.image.toolkit.fluxcd.io/podinfo",
        "imagepolicy.image.toolkit.fluxcd.io/podinfo",
        "imageupdateautomation.image.toolkit.fluxcd.io/podinfo",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    // The listings after the prune have no Service.
    let after_prune = stdout
        .rsplit_once("$ kubectl get deployments,services,configmaps")
        .map(|(_, rest)| rest)
        .expect("the listing after the prune");
    assert!(
        !after_prune.contains("service/podinfo"),
        "Service still listed:\n{after_prune}"
    );
    // The last listing: the new image in the cluster.
    let last = stdout
        .rsplit("$ kubectl")
        .next()
        .expect("a kubectl listing");
    assert!(
        last.contains("Deployment   podinfo   127.0.0.1:")
            && last.contains("/flux-system/podinfo:6.1.0"),
        "{last}"
    );
    let removed: Vec<&str> = stderr
        .split_once("removed:\n")
        .map(|(_, rest)| rest.lines().map(str::trim).collect())
        .unwrap_or_default();
    // Control plane, Git server, registry, controllers' working directory.
    assert_eq!(removed.len(), 4, "{stderr}");
    for dir in removed {
        assert!(!Path::new(dir).exists(), "{dir} was left behind");
    }
}
