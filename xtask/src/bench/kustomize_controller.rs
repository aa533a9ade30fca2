//! `cargo xtask bench kustomize-controller`: the shape of Flux's own
//! benchmark (fluxcd/flux-benchmark). N Kustomizations (default 1,000), each
//! applying an app of four objects (Deployment with 0 replicas,
//! ServiceAccount, Service, ConfigMap) from one GitRepository with
//! `wait: true`, named and labelled per instance through
//! `postBuild.substitute` (`${INDEX}`), from creation to all Ready;
//! kustomize-controller's peak RSS (the kernel's VmHWM) and CPU time; then
//! commit-to-applied latency of one more Kustomization, its source asked to
//! fetch with `reconcile.fluxcd.io/requestedAt` right after each push.
//!
//! Everything runs on a control plane of the benchmark's own
//! ([`crate::demo::Stack`]), with the release builds of both controllers at
//! their default flags.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::kustomize::Kustomization;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use super::{StackCpu, machine, mib, write_report};
use crate::demo::{ControllerBinaries, SYSTEM_NAMESPACE, Stack, ready_at};

/// Where the applied objects go.
const TARGET_NAMESPACE: &str = "bench";
const READY_TARGET: Duration = Duration::from_secs(120);
const RSS_TARGET: u64 = 64 * 1024 * 1024;
const LATENCY_TARGET: Duration = Duration::from_secs(2);
/// Commit-to-applied rounds.
const LATENCY_ROUNDS: usize = 5;
/// How long the whole scale run may take before the benchmark gives up.
const SCALE_DEADLINE: Duration = Duration::from_secs(20 * 60);

fn app(level: &str) -> Vec<(String, String)> {
    [
        (
            "app/deployment.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo-${INDEX}\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: podinfo-${INDEX}\n  template:\n    metadata:\n      labels:\n        app: podinfo-${INDEX}\n    spec:\n      serviceAccountName: podinfo-${INDEX}\n      containers:\n      - name: podinfo\n        image: ghcr.io/stefanprodan/podinfo:6.7.0\n        ports:\n        - containerPort: 9898\n".to_owned(),
        ),
        (
            "app/serviceaccount.yaml",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: podinfo-${INDEX}\n".to_owned(),
        ),
        (
            // Headless: the local control plane's service range (a /24) holds
            // far fewer addresses than a scale run creates Services.
            "app/service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo-${INDEX}\nspec:\n  clusterIP: None\n  selector:\n    app: podinfo-${INDEX}\n  ports:\n  - port: 9898\n".to_owned(),
        ),
        (
            "app/configmap.yaml",
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-${{INDEX}}\ndata:\n  level: {level}\n"),
        ),
    ]
    .into_iter()
    .map(|(path, content)| (path.to_owned(), content))
    .collect()
}

/// Distinct names and selectors per instance, as in Flux's benchmark: with
/// one shared selector, kube-controller-manager would match every
/// Deployment's ReplicaSets against all the others.
fn kustomization_spec(source: &str, index: &str) -> serde_json::Value {
    json!({"interval": "60m", "path": "./app", "prune": true, "wait": true,
        "targetNamespace": TARGET_NAMESPACE,
        "postBuild": {"substitute": {"INDEX": index}},
        "sourceRef": {"kind": "GitRepository", "name": source}})
}

/// What one run measured.
struct Figures {
    count: usize,
    concurrent: u16,
    controller_args: Vec<String>,
    all_ready: Duration,
    created_in: Duration,
    peak_rss: u64,
    cpu: Duration,
    /// CPU each process of the stack used during the scale run.
    cpu_by_process: Vec<(String, Duration)>,
    /// The machine's 1-minute load average when all were Ready.
    load: String,
    latencies: Vec<Duration>,
}

pub fn run(
    count: usize,
    concurrent: u16,
    binary: Option<std::path::PathBuf>,
    controller_args: &[String],
) -> Result<()> {
    let mut binaries = ControllerBinaries::build(true, false)?;
    if let Some(binary) = binary {
        binaries = binaries.with_kustomize(binary);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")?;
    let figures = runtime.block_on(measure(&binaries, count, concurrent, controller_args))?;
    write_report("kustomize-controller", &report(&figures)?)?;
    Ok(())
}

async fn measure(
    binaries: &ControllerBinaries,
    count: usize,
    concurrent: u16,
    controller_args: &[String],
) -> Result<Figures> {
    eprintln!("==> starting a control plane, a Git server and both controllers (release builds)");
    let mut args = vec![format!("--concurrent={concurrent}")];
    args.extend(controller_args.iter().cloned());
    let stack = Stack::start(binaries, &args).await?;
    let namespaces: Api<Namespace> = Api::all(stack.client.clone());
    namespaces
        .patch(
            TARGET_NAMESPACE,
            &PatchParams::apply("ferroflux-bench"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": TARGET_NAMESPACE}})),
        )
        .await?;
    let repo = stack.create_repo("apps", app("info")).await?;
    let revision = format!("main@sha1:{}", repo.head("main")?);
    stack.git_repository("apps", &repo, "60m").await?;
    stack.source_ready("apps", &revision).await?;

    eprintln!("==> creating {count} Kustomizations");
    let stack = Arc::new(stack);
    let cpu_before = StackCpu::now(&stack);
    let started = Instant::now();
    // A few creations in flight at once, as `kubectl apply` of many files would.
    let mut tasks = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    for i in 0..count {
        let stack = stack.clone();
        let permit = permits.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let result = stack
                .kustomization(
                    &format!("app-{i}"),
                    kustomization_spec("apps", &i.to_string()),
                )
                .await;
            drop(permit);
            result
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let created_in = started.elapsed();

    let api: Api<Kustomization> = Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let mut last_report = Instant::now();
    loop {
        let list = api.list(&ListParams::default()).await?;
        let ready = list
            .items
            .iter()
            .filter(|ks| ready_at(ks, &revision).is_some())
            .count();
        if ready == count {
            break;
        }
        if started.elapsed() > SCALE_DEADLINE {
            bail!(
                "{ready}/{count} Ready after {:?}\n{}",
                started.elapsed(),
                stack.logs(40)
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("    {ready}/{count} Ready after {:.0?}", started.elapsed());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_ready = started.elapsed();
    let pid = stack.kustomize_pid();
    let peak_rss = proc_status_kib(pid, "VmHWM:").context("reading VmHWM")? * 1024;
    let cpu = cpu_time(pid).context("reading CPU time")?;
    let cpu_by_process = StackCpu::now(&stack).since(&cpu_before);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|line| line.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default();
    eprintln!(
        "    all {count} Ready in {all_ready:.1?}; peak RSS {}, CPU {cpu:.1?}",
        mib(peak_rss)
    );

    eprintln!("==> commit-to-applied latency ({LATENCY_ROUNDS} commits)");
    let latency_repo = stack.create_repo("latency", app("round-0")).await?;
    let head = format!("main@sha1:{}", latency_repo.head("main")?);
    stack
        .git_repository("latency", &latency_repo, "60m")
        .await?;
    stack
        .kustomization("latency", kustomization_spec("latency", "latency"))
        .await?;
    stack.applied("latency", &head).await?;
    let mut latencies = Vec::new();
    for round in 1..=LATENCY_ROUNDS {
        let files = app(&format!("round-{round}"));
        let changed: Vec<(&str, String)> = files
            .iter()
            .filter(|(path, _)| path.ends_with("configmap.yaml"))
            .map(|(path, content)| (path.as_str(), content.clone()))
            .collect();
        let committed = Instant::now();
        let revision = stack
            .commit(
                &latency_repo,
                "latency",
                &changed,
                &[],
                &format!("round {round}"),
            )
            .await?;
        stack.applied("latency", &revision).await?;
        let took = committed.elapsed();
        eprintln!("    round {round}: {took:.2?}");
        latencies.push(took);
    }
    Ok(Figures {
        count,
        concurrent,
        controller_args: controller_args.to_vec(),
        all_ready,
        created_in,
        peak_rss,
        cpu,
        cpu_by_process,
        load,
        latencies,
    })
}

fn report(f: &Figures) -> Result<String> {
    let mut sorted = f.latencies.clone();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    let worst = sorted.last().copied().unwrap_or_default();
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    // The targets are for 1,000; a smaller run scales the time target.
    let ready_target = READY_TARGET.mul_f64(f.count as f64 / 1000.0);
    let mut out = String::new();
    writeln!(out, "# Benchmark: kustomize-controller\n")?;
    writeln!(
        out,
        "Machine: {}. {} Kustomizations, each applying 4 objects (Deployment with 0 replicas, \
         ServiceAccount, headless Service, ConfigMap) from one GitRepository with `wait: true`, \
         names and selectors per instance from `postBuild.substitute` as in Flux's benchmark; \
         release builds, kustomize-controller with `--concurrent={}` (Flux's benchmark runs 20, \
         its default is 4), on a \
         local control plane (etcd, kube-apiserver, kube-controller-manager) sharing the machine. \
         kube-controller-manager runs with `--kube-api-qps=200 --kube-api-burst=400`: at client-go's \
         default (20/s) its Deployment controller readies only ~5 Deployments a second, which bounds \
         any run with `wait: true` at ~200 s per 1,000 whatever the controller under test does.\n",
        machine(),
        f.count,
        f.concurrent
    )?;
    if !f.controller_args.is_empty() {
        writeln!(
            out,
            "kustomize-controller also runs with `{}`.\n",
            f.controller_args.join(" ")
        )?;
    }
    writeln!(out, "| measure | measured | target | met |")?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| creation to all Ready | {:.1} s | ≤ {:.0} s | {} |",
        f.all_ready.as_secs_f64(),
        ready_target.as_secs_f64(),
        met(f.all_ready <= ready_target)
    )?;
    writeln!(
        out,
        "| kustomize-controller peak RSS (VmHWM) | {} | ≤ {} | {} |",
        mib(f.peak_rss),
        mib(RSS_TARGET),
        met(f.peak_rss <= RSS_TARGET)
    )?;
    writeln!(
        out,
        "| commit-to-applied, requestedAt (median of {}) | {:.2} s | ≤ {:.0} s | {} |",
        f.latencies.len(),
        median.as_secs_f64(),
        LATENCY_TARGET.as_secs_f64(),
        met(median <= LATENCY_TARGET)
    )?;
    writeln!(
        out,
        "| commit-to-applied, worst | {:.2} s | ≤ {:.0} s | {} |",
        worst.as_secs_f64(),
        LATENCY_TARGET.as_secs_f64(),
        met(worst <= LATENCY_TARGET)
    )?;
    writeln!(
        out,
        "\nCreating the {} Kustomizations took {:.1} s of that; kustomize-controller used {:.1} s of CPU. \
         Flux v2 on 16 cores: 4m13s and 223 MiB for 1,000.",
        f.count,
        f.created_in.as_secs_f64(),
        f.cpu.as_secs_f64()
    )?;
    let by_process = StackCpu::describe(&f.cpu_by_process);
    writeln!(
        out,
        "\nCPU used from creation to all Ready: {}; load average (1 min) at the end: {}.",
        by_process, f.load
    )?;
    Ok(out)
}

/// A `kB` field of `/proc/<pid>/status`, in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
#[allow(unsafe_code)]
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).ok()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / per_second.max(1) as f64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_from_proc() {
        let pid = std::process::id();
        assert!(proc_status_kib(pid, "VmHWM:").is_some_and(|kib| kib > 0));
        assert!(cpu_time(pid).is_some());
    }
}
