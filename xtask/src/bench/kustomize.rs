//! `cargo xtask bench kustomize`: `ferroflux kustomize build` against the
//! reference `kubectl kustomize` (v5.8.1), process against process, on
//! (a) a typical small overlay and (b) a generated tree of 2,000 resources
//! with 50 patches and 20 generators.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{ProcessCost, best_of, machine, mib, release_binary, write_report};

const RUNS: usize = 5;

pub fn run() -> Result<()> {
    let ferroflux = release_binary("ferroflux", "ferroflux")?;
    let kubectl = e2e::packages::kubectl_kustomize()?;
    let work =
        std::env::temp_dir().join(format!("ferroflux-bench-kustomize-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);

    let small = write_small_overlay(&work.join("small"))?;
    let large = write_large_tree(&work.join("large"))?;

    let mut report = String::new();
    writeln!(report, "# Benchmark: kustomize build\n")?;
    writeln!(
        report,
        "Machine: {}. Each figure is the best of {RUNS} runs (wall time) and the highest peak RSS seen.\n",
        machine()
    )?;
    writeln!(report, "| tree | tool | wall | peak RSS |")?;
    writeln!(report, "|---|---|---|---|")?;
    let mut ratios = Vec::new();
    for (name, dir) in [
        ("small overlay (20 resources, generator, patch)", &small),
        ("2,000 resources, 50 patches, 20 generators", &large),
    ] {
        same_output(&ferroflux, &kubectl, dir)?;
        let ours = best_of(RUNS, || {
            build_command(&ferroflux, &["kustomize", "build"], dir)
        })?;
        let reference = best_of(RUNS, || build_command(&kubectl, &["kustomize"], dir))?;
        row(&mut report, name, "ferroflux kustomize build", ours)?;
        row(&mut report, name, "kubectl kustomize (v5.8.1)", reference)?;
        ratios.push((
            name,
            reference.wall.as_secs_f64() / ours.wall.as_secs_f64(),
            ours.peak_rss as f64 / reference.peak_rss as f64,
        ));
    }
    writeln!(
        report,
        "\n| tree | speed-up (kubectl / ferroflux) | memory (ferroflux / kubectl) |"
    )?;
    writeln!(report, "|---|---|---|")?;
    for (name, speed, memory) in ratios {
        writeln!(report, "| {name} | {speed:.1}× | {memory:.2} |")?;
    }
    writeln!(
        report,
        "\nTargets: at least 5× faster and at most a third of the memory. Outputs were checked equal before timing."
    )?;
    write_report("kustomize", &report)?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

fn build_command(bin: &Path, args: &[&str], dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args).arg(dir);
    cmd
}

fn row(report: &mut String, tree: &str, tool: &str, cost: ProcessCost) -> Result<()> {
    writeln!(
        report,
        "| {tree} | {tool} | {:.1} ms | {} |",
        cost.wall.as_secs_f64() * 1000.0,
        mib(cost.peak_rss)
    )?;
    Ok(())
}

/// Both tools must produce the same YAML stream, or the timing means nothing.
fn same_output(ferroflux: &Path, kubectl: &Path, dir: &Path) -> Result<()> {
    let ours = Command::new(ferroflux)
        .args(["kustomize", "build"])
        .arg(dir)
        .output()?;
    let theirs = Command::new(kubectl).arg("kustomize").arg(dir).output()?;
    if !ours.status.success() || !theirs.status.success() {
        bail!(
            "build failed on {}: ferroflux: {} kubectl: {}",
            dir.display(),
            String::from_utf8_lossy(&ours.stderr).trim(),
            String::from_utf8_lossy(&theirs.stderr).trim()
        );
    }
    if ours.stdout != theirs.stdout {
        bail!(
            "ferroflux and kubectl kustomize disagree on {}",
            dir.display()
        );
    }
    Ok(())
}

fn write(path: &Path, content: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  labels: {{app: {name}}}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/example/{name}:1.0.0\n        ports:\n        - containerPort: 8080\n        env:\n        - name: MODE\n          value: base\n        envFrom:\n        - configMapRef: {{name: {name}-config}}\n"
    )
}

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector: {{app: {name}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n"
    )
}

fn config_map(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}-config\ndata:\n  LOG_LEVEL: info\n"
    )
}

fn service_account(name: &str) -> String {
    format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n")
}

/// Base of 5 apps × (Deployment, Service, ConfigMap, ServiceAccount) = 20
/// resources, and two overlays (staging, production); the benchmark builds
/// production, which adds a namespace, a prefix, labels, an image override,
/// a configMapGenerator and a strategic merge patch.
fn write_small_overlay(root: &Path) -> Result<PathBuf> {
    let mut resources = Vec::new();
    for i in 0..5 {
        let name = format!("app{i}");
        for (kind, body) in [
            ("deployment", deployment(&name)),
            ("service", service(&name)),
            ("configmap", config_map(&name)),
            ("sa", service_account(&name)),
        ] {
            let file = format!("{name}-{kind}.yaml");
            write(&root.join("base").join(&file), &body)?;
            resources.push(file);
        }
    }
    write(
        &root.join("base/kustomization.yaml"),
        &format!(
            "resources:\n{}",
            resources
                .iter()
                .map(|r| format!("- {r}\n"))
                .collect::<String>()
        ),
    )?;
    for (env, replicas) in [("staging", 1), ("production", 3)] {
        write(
            &root.join(env).join("kustomization.yaml"),
            &format!(
                "namespace: {env}\nnamePrefix: {env}-\nlabels:\n- pairs: {{env: {env}}}\n  includeSelectors: false\nresources:\n- ../base\nimages:\n- name: ghcr.io/example/app0\n  newTag: 2.0.0\nconfigMapGenerator:\n- name: settings\n  literals:\n  - ENV={env}\n  - FEATURE_X=on\npatches:\n- path: replicas.yaml\n"
            ),
        )?;
        write(
            &root.join(env).join("replicas.yaml"),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app0\nspec:\n  replicas: {replicas}\n"
            ),
        )?;
    }
    Ok(root.join("production"))
}

/// 500 apps × 4 resources = 2,000 resources in 10 bases, one overlay with 50
/// strategic merge patches and 20 configMapGenerators.
fn write_large_tree(root: &Path) -> Result<PathBuf> {
    let mut bases = Vec::new();
    for b in 0..10 {
        let dir = root.join(format!("base{b}"));
        let mut resources = Vec::new();
        for a in 0..50 {
            let name = format!("svc{b}x{a}");
            let file = format!("{name}.yaml");
            let body = [
                deployment(&name),
                service(&name),
                config_map(&name),
                service_account(&name),
            ]
            .join("---\n");
            write(&dir.join(&file), &body)?;
            resources.push(file);
        }
        write(
            &dir.join("kustomization.yaml"),
            &format!(
                "resources:\n{}",
                resources
                    .iter()
                    .map(|r| format!("- {r}\n"))
                    .collect::<String>()
            ),
        )?;
        bases.push(format!("../base{b}"));
    }
    let overlay = root.join("overlay");
    let mut kustomization =
        String::from("namespace: bench\ncommonAnnotations:\n  team: platform\nresources:\n");
    for base in &bases {
        writeln!(kustomization, "- {base}")?;
    }
    kustomization.push_str("configMapGenerator:\n");
    for g in 0..20 {
        writeln!(
            kustomization,
            "- name: generated{g}\n  literals:\n  - KEY={g}\n  - OTHER=value{g}"
        )?;
    }
    kustomization.push_str("patches:\n");
    for p in 0..50 {
        let (b, a) = (p % 10, p);
        let file = format!("patch{p}.yaml");
        write(
            &overlay.join(&file),
            &format!(
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc{b}x{a}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: MODE\n          value: patched{p}\n"
            ),
        )?;
        writeln!(kustomization, "- path: {file}")?;
    }
    write(&overlay.join("kustomization.yaml"), &kustomization)?;
    Ok(overlay)
}
