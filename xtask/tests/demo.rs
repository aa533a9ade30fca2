//! `cargo xtask demo --once` end to end: a control plane of its own, the Git
//! server, the registry, the four controllers, the example app applied, a
//! change rolled out, an object pruned, a push announced by a signed GitHub
//! webhook and rolled out with its notifications recorded, a new image tag
//! written to Git by the automation and rolled out, and nothing left behind.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
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
    // Notifications: a Provider posting to the demo's recorder, an Alert.
    assert!(
        stderr.contains(
            "==> creating Provider flux-system/recorder (generic, http://127.0.0.1:"
        ) && stderr.contains("and Alert flux-system/podinfo (every event of GitRepository and Kustomization podinfo)"),
        "{stderr}"
    );
    // The webhook: each step once, in order; the pushed commit is the one applied
    // and the one the notifications are about.
    let webhook = stderr
        .split_once("==> a push announced by GitHub's webhook: ")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once("==> a new image: "))
        .map(|(step, _)| step)
        .expect("the webhook step, before the image update");
    let pushed = webhook
        .split_once("pushed main@sha1:")
        .and_then(|(_, rest)| rest.get(..40))
        .expect("the pushed commit");
    let revision = format!("(revision main@sha1:{pushed})");
    let mut rest = webhook;
    for expected in [
        "Receiver flux-system/podinfo (type github, events push) for GitRepository podinfo",
        "webhook URL http://127.0.0.1:",
        "/hook/",
        ", secret in Secret flux-system/podinfo-token",
        &format!("pushed main@sha1:{pushed}"),
        "X-GitHub-Event: push",
        "X-Hub-Signature-256: sha256=",
        "s: the Receiver answered 200",
        &format!("s: Kustomization flux-system/podinfo applied main@sha1:{pushed}"),
        "the recorder got (Alert podinfo → Provider recorder)",
    ] {
        let at = rest
            .find(expected)
            .unwrap_or_else(|| panic!("no {expected:?} (in order) in:\n{webhook}"));
        rest = &rest[at + expected.len()..];
    }
    // What the recorder got: source-controller's new artifact and
    // kustomize-controller's change set of the pushed commit, each through
    // the generic Provider (`gotk-component` header).
    let notified = |prefix: &str, text: &str| {
        rest.lines().any(|line| {
            line.trim_start().starts_with(prefix)
                && line.contains(text)
                && line.ends_with(&revision)
        })
    };
    assert!(
        notified(
            "[source-controller] info GitRepository/flux-system/podinfo NewArtifact: ",
            ""
        ),
        "{webhook}"
    );
    assert!(
        notified(
            "[kustomize-controller] info Kustomization/flux-system/podinfo ",
            "ConfigMap/podinfo/podinfo-config configured"
        ),
        "{webhook}"
    );
    // The curl printed for doing it by hand signs as GitHub does.
    let curl = webhook
        .split_once("the same by hand (after a push): ")
        .and_then(|(_, rest)| rest.lines().next())
        .expect("the curl");
    let url = webhook
        .split_once("webhook URL ")
        .and_then(|(_, rest)| rest.split_once(','))
        .map(|(url, _)| url)
        .expect("the webhook URL");
    check_curl(curl, url);

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
        "receiver.notification.toolkit.fluxcd.io/podinfo",
        "alert.notification.toolkit.fluxcd.io/podinfo",
        "provider.notification.toolkit.fluxcd.io/recorder",
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

/// Runs `curl` (the demo's command, the demo's webhook `url` swapped for a
/// loopback listener of this test) and checks the request it makes: a
/// GitHub `push` delivery whose `X-Hub-Signature-256` is the HMAC-SHA256 of
/// its body keyed with the Receiver's secret.
fn check_curl(curl: &str, url: &str) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let local = format!("http://{}/hook/x", listener.local_addr().unwrap());
    assert!(curl.contains(url), "{curl}");
    let command = curl.replace(url, &local);
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut request = Vec::new();
        let mut buffer = [0; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            request.extend_from_slice(&buffer[..n]);
            let text = String::from_utf8_lossy(&request).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length: ")
                            .map(str::to_owned)
                    })
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                if body.len() >= length || n == 0 {
                    stream
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        )
                        .unwrap();
                    return (head.to_owned(), body.to_owned());
                }
            }
        }
    });
    let status = Command::new("bash")
        .args(["-c", &command])
        .status()
        .expect("running the printed curl");
    assert!(status.success(), "{command}");
    let (head, body) = server.join().unwrap();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (key, value) = l.split_once(": ")?;
                key.eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_default()
    };
    assert!(head.starts_with("POST /hook/x "), "{head}");
    assert_eq!(header("X-GitHub-Event"), "push", "{head}");
    assert_eq!(header("Content-Type"), "application/json", "{head}");
    assert_eq!(body, r#"{"ref":"refs/heads/main"}"#);
    assert_eq!(
        header("X-Hub-Signature-256"),
        xtask::notification::github_signature("demo-webhook-secret", body.as_bytes()),
        "{head}"
    );
}
