//! `ferroflux kustomize build` prints exactly what kustomize prints and
//! fails with a non-zero exit and a one-line cause. Uses cases recorded
//! from real kustomize by the ferroflux-kustomize differential suite.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kustomize/tests/cases")
        .join(name)
}

fn ferroflux() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ferroflux"))
}

#[test]
fn prints_kustomize_bytes() {
    for (name, args) in [
        ("prefix-suffix-name-references", vec![]),
        ("resources-reorder-none", vec!["--reorder", "none"]),
        (
            "load-restrictor-none-allows-parent-file",
            vec!["--load-restrictor", "LoadRestrictionsNone"],
        ),
    ] {
        let dir = case(name);
        let build_dir = match std::fs::read_to_string(dir.join("build-dir")) {
            Ok(rel) => dir.join("input").join(rel.trim()),
            Err(_) => dir.join("input"),
        };
        let out = ferroflux()
            .args(["kustomize", "build"])
            .arg(&build_dir)
            .args(&args)
            .output()
            .expect("run ferroflux");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read(dir.join("expected.yaml")).expect("expected.yaml");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&expected),
            "{name}"
        );
    }
}

#[test]
fn fails_with_one_line_cause() {
    let out = ferroflux()
        .args(["kustomize", "build"])
        .arg(case("error-unknown-field").join("input"))
        .output()
        .expect("run ferroflux");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("✗ "), "{stderr}");
    assert!(
        stderr.contains("kustomization.yaml") && stderr.contains("namePrefx"),
        "{stderr}"
    );
}

#[test]
fn load_restrictor_is_enforced() {
    let dir = case("load-restrictor-root-only-error").join("input/app");
    let out = ferroflux()
        .args(["kustomize", "build"])
        .arg(&dir)
        .output()
        .expect("run ferroflux");
    assert!(!out.status.success());
    let out = ferroflux()
        .args([
            "kustomize",
            "build",
            "--load-restrictor",
            "LoadRestrictionsNone",
        ])
        .arg(&dir)
        .output()
        .expect("run ferroflux");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A remote base on the e2e Git server: fetched by default (as kustomize
/// does), refused by name with `--no-remote-bases`.
#[test]
fn remote_bases_are_fetched_unless_refused() {
    let server = e2e::git_server::GitServer::start().expect("git server");
    server
        .create_repo(
            "cli-remote",
            [
                ("base/kustomization.yaml", "resources:\n- cm.yaml\n"),
                (
                    "base/cm.yaml",
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-remote\n",
                ),
            ],
        )
        .expect("repository");
    let url = format!("{}//base?ref=main", server.http_anonymous_url("cli-remote"));
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        format!("resources:\n- {url}\n"),
    )
    .expect("write");

    let out = ferroflux()
        .args(["kustomize", "build"])
        .arg(dir.path())
        .output()
        .expect("run ferroflux");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-remote\n"
    );

    let out = ferroflux()
        .args(["kustomize", "build", "--no-remote-bases"])
        .arg(dir.path())
        .output()
        .expect("run ferroflux");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("remote resource '{url}' is not allowed")),
        "{stderr}"
    );
}
