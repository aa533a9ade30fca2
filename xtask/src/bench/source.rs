//! `cargo xtask bench source`: the release source-controller against a real
//! control plane and the local Git server (lighttpd + `git http-backend`):
//!
//! (a) N GitRepositories (default 1,000) from creation to all Ready, with the
//!     controller's peak RSS (`VmHWM`) and CPU time;
//! (b) the controller's resident memory (`VmRSS`) idling with 10 Ready objects;
//! (c) the artifact of a 10,000-file repository, creation to Ready, against
//!     `git clone --depth 1` + `tar czf` of the same tree from the same server.
//!
//! It runs on a control plane of its own, so no other work on the apiserver
//! counts. Everything started here is stopped and its files removed at the
//! end, on error and on Ctrl-C; the processes also carry a parent-death
//! signal, so even a `kill -9` of this command stops them.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use api::source::GitRepository;
use e2e::git_server::{GitServer, Repo};
use e2e::process::Service;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use super::{ProcessCost, best_of, machine, mib, release_binary, write_report};

/// Objects whose idle memory is measured.
const IDLE_OBJECTS: usize = 10;
/// Files in the repository of the artifact-build comparison.
const LARGE_REPO_FILES: usize = 10_000;
/// Runs of each side of the artifact-build comparison (best kept).
const ARTIFACT_RUNS: usize = 3;
/// How long to let the idle controller settle before reading its memory.
const IDLE_SETTLE: Duration = Duration::from_secs(15);
/// The longest any phase may take before the benchmark gives up.
const PHASE_DEADLINE: Duration = Duration::from_secs(900);

/// What the benchmark measured.
struct Figures {
    binary: PathBuf,
    controller_args: Vec<String>,
    count: usize,
    all_ready: Duration,
    scale_peak_rss: u64,
    scale_cpu: Duration,
    idle_rss: u64,
    idle_rss_anon: u64,
    idle_rss_file: u64,
    idle_peak_rss: u64,
    idle_threads: u64,
    idle_mappings: Vec<(&'static str, u64)>,
    artifact_ours: Duration,
    artifact_size: u64,
    artifact_shell: ProcessCost,
    artifact_shell_size: u64,
}

/// Runs the benchmark on `binary`, or on a fresh release build when `None`.
pub fn run(count: usize, binary: Option<PathBuf>, controller_args: &[String]) -> Result<()> {
    if count == 0 {
        bail!("--count must be at least 1");
    }
    let binary = match binary {
        Some(path) => std::fs::canonicalize(&path)
            .with_context(|| format!("source-controller binary {}", path.display()))?,
        None => release_binary("source-controller", "source-controller")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = async {
                eprintln!("==> starting a control plane of its own");
                let cluster = e2e::cluster::Cluster::start_dedicated().await?;
                measure(&cluster, &binary, count, controller_args).await
            } => result,
            // Dropping the measuring future stops its processes (the control
            // plane's too) and removes their files.
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    drop(runtime);
    let figures = result?;
    write_report("source", &report(&figures)?)?;
    Ok(())
}

async fn measure(
    cluster: &e2e::cluster::Cluster,
    binary: &Path,
    count: usize,
    controller_args: &[String],
) -> Result<Figures> {
    let client = cluster.client().await?;
    let work = tempfile::Builder::new()
        .prefix("ferroflux-bench-source-")
        .tempdir()
        .context("creating the work directory")?;
    eprintln!("==> starting the Git server and creating the repositories");
    let git = tokio::task::spawn_blocking(GitServer::start).await??;
    let (small, large) = tokio::task::block_in_place(|| -> Result<(Repo, Repo)> {
        let small = git.create_repo("bench-small", small_tree())?;
        let large = git.create_repo("bench-large", large_tree())?;
        Ok((small, large))
    })?;

    // (a) N objects, creation to all Ready, and the peak memory doing it.
    eprintln!("==> (a) {count} GitRepositories to Ready");
    let namespace = cluster.test_namespace("bench-source-scale").await?;
    let api: Api<GitRepository> = Api::namespaced(client.clone(), namespace.name());
    let mut controller = start_controller(
        binary,
        cluster,
        namespace.name(),
        &work.path().join("scale"),
        controller_args,
    )?;
    let url = git.http_anonymous_url(small.name());
    let started = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("repo-{i:04}")).collect();
    let (created, ready) = tokio::join!(
        create_all(&api, &names, &url),
        wait_all_ready(&api, count, &mut controller)
    );
    created?;
    ready?;
    let all_ready = started.elapsed();
    let scale_peak_rss = proc_status_bytes(controller.pid(), "VmHWM")?;
    let scale_cpu = cpu_time(controller.pid())?;
    eprintln!(
        "    all Ready after {all_ready:.1?}; peak RSS {}",
        mib(scale_peak_rss)
    );
    controller.kill();
    drop(controller);

    // (b) a fresh controller with a few objects, then left alone.
    eprintln!("==> (b) idle memory with {IDLE_OBJECTS} objects");
    let idle_namespace = cluster.test_namespace("bench-source-idle").await?;
    let api: Api<GitRepository> = Api::namespaced(client.clone(), idle_namespace.name());
    let mut controller = start_controller(
        binary,
        cluster,
        idle_namespace.name(),
        &work.path().join("idle"),
        controller_args,
    )?;
    let names: Vec<String> = (0..IDLE_OBJECTS).map(|i| format!("idle-{i}")).collect();
    let (created, ready) = tokio::join!(
        create_all(&api, &names, &url),
        wait_all_ready(&api, IDLE_OBJECTS, &mut controller)
    );
    created?;
    ready?;
    tokio::time::sleep(IDLE_SETTLE).await;
    controller.check_running()?;
    let idle_rss = proc_status_bytes(controller.pid(), "VmRSS")?;
    let idle_rss_anon = proc_status_bytes(controller.pid(), "RssAnon")?;
    let idle_rss_file = proc_status_bytes(controller.pid(), "RssFile")?;
    let idle_peak_rss = proc_status_bytes(controller.pid(), "VmHWM")?;
    let idle_threads = proc_status_number(controller.pid(), "Threads")?;
    let idle_mappings = resident_by_mapping(controller.pid(), binary)?;
    eprintln!("    idle RSS {}", mib(idle_rss));

    // (c) the large repository: our artifact build end to end, then the shell pipeline.
    eprintln!("==> (c) artifact of a {LARGE_REPO_FILES}-file repository");
    let large_url = git.http_anonymous_url(large.name());
    let mut artifact_ours: Option<Duration> = None;
    let mut artifact_size = 0;
    for run in 0..ARTIFACT_RUNS {
        let name = format!("large-{run}");
        let started = Instant::now();
        create_all(&api, std::slice::from_ref(&name), &large_url).await?;
        let obj = wait_ready(&api, &name, &mut controller).await?;
        let took = started.elapsed();
        artifact_size = obj
            .status
            .and_then(|s| s.artifact)
            .and_then(|a| a.size)
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0);
        artifact_ours = Some(artifact_ours.map_or(took, |best| best.min(took)));
    }
    let artifact_ours = artifact_ours.context("no artifact runs")?;
    controller.kill();
    drop(controller);

    let shell_dir = work.path().join("shell");
    let archive = work.path().join("shell.tar.gz");
    let artifact_shell = tokio::task::block_in_place(|| {
        best_of(ARTIFACT_RUNS, || {
            clone_and_tar_command(&large_url, &shell_dir, &archive)
        })
    })?;
    let artifact_shell_size = std::fs::metadata(&archive)?.len();

    drop(git);
    Ok(Figures {
        binary: binary.to_path_buf(),
        controller_args: controller_args.to_vec(),
        count,
        all_ready,
        scale_peak_rss,
        scale_cpu,
        idle_rss,
        idle_rss_anon,
        idle_rss_file,
        idle_peak_rss,
        idle_threads,
        idle_mappings,
        artifact_ours,
        artifact_size,
        artifact_shell,
        artifact_shell_size,
    })
}

/// A source-controller for `namespace` only, storing under `dir`, with the
/// further flags `args`; killed when dropped.
fn start_controller(
    binary: &Path,
    cluster: &e2e::cluster::Cluster,
    namespace: &str,
    dir: &Path,
    args: &[String],
) -> Result<Service> {
    std::fs::create_dir_all(dir)?;
    let storage = dir.join("data");
    let log = dir.join("controller.log");
    let health = e2e::paths::free_port()?;
    let mut cmd = Command::new(binary);
    cmd.env("KUBECONFIG", cluster.kubeconfig_path())
        .env("RUNTIME_NAMESPACE", namespace)
        .arg("--watch-all-namespaces=false")
        .arg(format!("--storage-path={}", storage.display()))
        .arg(format!(
            "--storage-addr=127.0.0.1:{}",
            e2e::paths::free_port()?
        ))
        .arg(format!(
            "--metrics-addr=127.0.0.1:{}",
            e2e::paths::free_port()?
        ))
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--log-encoding=console")
        .args(args);
    let mut service = e2e::process::start("source-controller", cmd, &log)?;
    service.wait_for_port(health, Duration::from_secs(30))?;
    Ok(service)
}

/// Creates one GitRepository per name, following `main` of `url`, a few at a time.
async fn create_all(api: &Api<GitRepository>, names: &[String], url: &str) -> Result<()> {
    futures::stream::iter(names)
        .map(|name| async move {
            let obj: GitRepository = serde_json::from_value(serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": name},
                "spec": {"url": url, "interval": "1h", "ref": {"branch": "main"}},
            }))?;
            api.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("creating GitRepository {name}"))?;
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
}

fn is_ready(obj: &GitRepository) -> bool {
    let Some(status) = &obj.status else {
        return false;
    };
    status.observed_generation == obj.metadata.generation
        && status.artifact.is_some()
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Watches the namespace until `count` objects are Ready at their generation.
async fn wait_all_ready(
    api: &Api<GitRepository>,
    count: usize,
    controller: &mut Service,
) -> Result<()> {
    let deadline = Instant::now() + PHASE_DEADLINE;
    let mut ready = HashSet::new();
    let mut stream = std::pin::pin!(
        watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects()
    );
    while ready.len() < count {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        controller.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "only {} of {count} objects Ready after {PHASE_DEADLINE:?}; controller log: {}",
                ready.len(),
                controller.log_path().display()
            );
        }
        let obj = match next {
            Err(_elapsed) => continue,
            Ok(None) => bail!("the watch ended"),
            Ok(Some(obj)) => obj.context("watching GitRepositories")?,
        };
        let name = obj.metadata.name.clone().unwrap_or_default();
        if is_ready(&obj) {
            ready.insert(name);
        } else {
            ready.remove(&name);
        }
    }
    Ok(())
}

/// Polls one object until it is Ready; returns it.
async fn wait_ready(
    api: &Api<GitRepository>,
    name: &str,
    controller: &mut Service,
) -> Result<GitRepository> {
    let deadline = Instant::now() + PHASE_DEADLINE;
    loop {
        if let Some(obj) = api.get_opt(name).await?
            && is_ready(&obj)
        {
            return Ok(obj);
        }
        controller.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "{name} not Ready after {PHASE_DEADLINE:?}; controller log: {}",
                controller.log_path().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `git clone --depth 1` then `tar czf` of the tree without `.git`: what a
/// shell script would do to make the same artifact.
fn clone_and_tar_command(url: &str, dir: &Path, archive: &Path) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(
            "rm -rf \"$2\" \"$3\" && git clone --quiet --depth 1 --branch main \"$1\" \"$2\" \
             && tar czf \"$3\" --exclude=.git -C \"$2\" .",
        )
        .arg("clone-and-tar")
        .arg(url)
        .arg(dir)
        .arg(archive);
    cmd
}

/// A line of `/proc/<pid>/status` in bytes (`VmRSS`, `VmHWM`, …).
pub(super) fn proc_status_bytes(pid: u32, field: &str) -> Result<u64> {
    Ok(proc_status_number(pid, field)? * 1024)
}

/// The number on a line of `/proc/<pid>/status` (kB for sizes).
fn proc_status_number(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// Resident memory of a process by kind of mapping, from `/proc/<pid>/smaps`:
/// which part of the idle figure is code, relocated data, libraries or heap.
fn resident_by_mapping(pid: u32, binary: &Path) -> Result<Vec<(&'static str, u64)>> {
    const KINDS: [&str; 7] = [
        "binary code (r-x)",
        "binary read-only data and relocations (r--)",
        "binary writable data (rw-)",
        "shared libraries (libc, libm, libgcc_s, ld.so)",
        "anonymous: heap, malloc arenas, thread stacks",
        "main thread stack",
        "other (vdso, vvar)",
    ];
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .with_context(|| format!("reading /proc/{pid}/smaps"))?;
    let binary = binary.to_string_lossy();
    let mut kib = [0u64; KINDS.len()];
    let mut kind = KINDS.len() - 1;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && !first.ends_with(':') {
            // A mapping header: range, perms, offset, device, inode, path.
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            kind = if path == binary {
                if perms.contains('x') {
                    0
                } else if perms.contains('w') {
                    2
                } else {
                    1
                }
            } else if path.contains(".so") {
                3
            } else if path.is_empty() || path == "[heap]" {
                4
            } else if path == "[stack]" {
                5
            } else {
                6
            };
        } else if first == "Rss:" {
            kib[kind] += fields
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Ok(KINDS.iter().copied().zip(kib.map(|k| k * 1024)).collect())
}

/// User plus system CPU time of a running process.
#[allow(unsafe_code)]
pub(super) fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after it are plain numbers.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    // SAFETY: sysconf only reads a constant of the running system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let per_second = u64::try_from(per_second)
        .ok()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Ok(Duration::from_millis(ticks * 1000 / per_second))
}

fn small_tree() -> Vec<(String, String)> {
    (0..10)
        .map(|i| {
            (
                format!("apps/app{i}.yaml"),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app{i}\ndata:\n  key: value{i}\n"),
            )
        })
        .collect()
}

/// 100 directories of 100 manifests, each a few hundred bytes and distinct.
fn large_tree() -> Vec<(String, String)> {
    (0..LARGE_REPO_FILES)
        .map(|i| {
            let (dir, file) = (i / 100, i % 100);
            (
                format!("team{dir:02}/service{file:02}/deployment.yaml"),
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: svc-{dir}-{file}\n  labels: {{team: team{dir}}}\nspec:\n  replicas: {}\n  selector:\n    matchLabels: {{app: svc-{dir}-{file}}}\n  template:\n    metadata:\n      labels: {{app: svc-{dir}-{file}}}\n    spec:\n      containers:\n      - name: app\n        image: ghcr.io/example/svc-{dir}-{file}:1.{i}.0\n        env:\n        - name: ID\n          value: \"{i}\"\n",
                    1 + i % 3
                ),
            )
        })
        .collect()
}

fn report(f: &Figures) -> Result<String> {
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let verdict = |ok: bool| if ok { "met" } else { "missed" };
    let mut out = String::new();
    writeln!(out, "# Benchmark: source-controller\n")?;
    writeln!(
        out,
        "Machine: {}. Binary: `{}`; real kube-apiserver, Git over smart HTTP (lighttpd + git http-backend) on loopback; default flags (`--concurrent=2`).\n",
        machine(),
        f.binary.display()
    )?;
    if !f.controller_args.is_empty() {
        writeln!(
            out,
            "source-controller also runs with `{}`.\n",
            f.controller_args.join(" ")
        )?;
    }
    writeln!(out, "| measure | figure | target | |")?;
    writeln!(out, "|---|---|---|---|")?;
    let scaled_target = 90.0 * f.count as f64 / 1000.0;
    writeln!(
        out,
        "| {} GitRepositories, creation to all Ready | {} | ≤ {scaled_target:.0} s{} | {} |",
        f.count,
        secs(f.all_ready),
        if f.count == 1000 {
            ""
        } else {
            " (90 s per 1,000)"
        },
        verdict(f.all_ready.as_secs_f64() <= scaled_target)
    )?;
    writeln!(
        out,
        "| peak RSS during that (VmHWM) | {} | ≤ 48 MiB | {} |",
        mib(f.scale_peak_rss),
        verdict(f.scale_peak_rss <= 48 << 20)
    )?;
    writeln!(
        out,
        "| CPU time of the controller during that | {} | | |",
        secs(f.scale_cpu)
    )?;
    writeln!(
        out,
        "| idle RSS with {IDLE_OBJECTS} Ready objects (VmRSS, {}s after Ready) | {}: {} heap and stacks (RssAnon) + {} mapped binary and libraries (RssFile); peak {} | ≤ 15 MiB | {} |",
        IDLE_SETTLE.as_secs(),
        mib(f.idle_rss),
        mib(f.idle_rss_anon),
        mib(f.idle_rss_file),
        mib(f.idle_peak_rss),
        verdict(f.idle_rss <= 15 << 20)
    )?;
    writeln!(
        out,
        "| {LARGE_REPO_FILES}-file repository: GitRepository creation to Ready (best of {ARTIFACT_RUNS}) | {:.2} s, artifact {} | no slower than the line below | {} |",
        f.artifact_ours.as_secs_f64(),
        mib(f.artifact_size),
        verdict(f.artifact_ours <= f.artifact_shell.wall)
    )?;
    writeln!(
        out,
        "| same tree: `git clone --depth 1` + `tar czf` (best of {ARTIFACT_RUNS}) | {:.2} s, archive {}, peak RSS {} | | |",
        f.artifact_shell.wall.as_secs_f64(),
        mib(f.artifact_shell_size),
        mib(f.artifact_shell.peak_rss)
    )?;
    writeln!(
        out,
        "\nIdle resident memory by mapping ({} threads):\n\n| mapping | RSS |\n|---|---|",
        f.idle_threads
    )?;
    for (kind, bytes) in &f.idle_mappings {
        writeln!(out, "| {kind} | {} |", mib(*bytes))?;
    }
    writeln!(
        out,
        "\nThe GitRepository figure includes the apiserver round trips (create, finalizer, status) that the shell pipeline does not have."
    )?;
    Ok(out)
}
