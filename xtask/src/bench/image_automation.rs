//! `cargo xtask bench image-automation`: the release image-automation-controller
//! against a control plane of the benchmark's own, the local registry
//! (Debian's docker-registry) and the local Git server:
//!
//! 1. scan + policy of an N-tag repository (default 10,000): ImageRepository
//!    creation to Ready, and to the semver ImagePolicy Ready with the
//!    expected latest tag; the controller's peak RSS (`VmHWM`);
//! 2. M ImageUpdateAutomations (default 100) over one Git repository, each
//!    its own path, all pushing to `main`: new tag (+ `requestedAt` on the
//!    ImageRepository) to all M pushes recorded and on the server; the
//!    controller's CPU time and peak RSS;
//! 3. new-tag-to-pushed-commit latency of one automation, `requestedAt`
//!    triggered, over a few rounds;
//! 4. new-tag-to-applied-in-cluster: source-controller and
//!    kustomize-controller (release builds) too, a GitRepository and a
//!    Kustomization applying the Deployment whose image carries the marker.
//!
//! Each part has a namespace and a fresh controller of its own (watching
//! only that namespace), so each figure is of that part alone. Everything
//! started here is stopped and its files removed at the end, on error and on
//! Ctrl-C; the processes also carry a parent-death signal.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail, ensure};
use api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use api::kustomize::Kustomization;
use api::source::GitRepository;
use e2e::cluster::{Cluster, TestNamespace};
use e2e::git_server::{GitServer, Repo};
use e2e::process::Service;
use e2e::registry::Registry;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use super::source::{cpu_time, proc_status_bytes};
use super::{load_average, machine, mib, release_binary, workspace_root, write_report};

const SCAN_TARGET: Duration = Duration::from_secs(2);
const SCAN_RSS_TARGET: u64 = 20 * 1024 * 1024;
const PUSH_LATENCY_TARGET: Duration = Duration::from_secs(3);
const APPLIED_LATENCY_TARGET: Duration = Duration::from_secs(5);
/// Scans of the N-tag repository, each a new ImageRepository (nothing stored yet).
const SCAN_RUNS: usize = 3;
/// How long one wait of parts 1, 3 and 4 may take.
const STEP_DEADLINE: Duration = Duration::from_secs(120);
/// How long the M automations may take, to up-to-date and then to pushed.
const FLEET_DEADLINE: Duration = Duration::from_secs(20 * 60);
/// How often the latency parts look at the objects: a few API reads per
/// poll, a small error on seconds.
const POLL: Duration = Duration::from_millis(25);
/// The flags every image-automation-controller here runs with; the rest are defaults.
const BASE_FLAGS: &str = "--watch-all-namespaces=false --log-encoding=console";
const GIT_SECRET: &str = "git-auth";

/// What one run measures.
pub struct Options {
    pub tags: usize,
    pub automations: usize,
    pub rounds: usize,
    /// Skip part 4 (no source-controller or kustomize-controller build).
    pub skip_applied: bool,
    pub controller_args: Vec<String>,
}

struct Binaries {
    image: PathBuf,
    /// source-controller and kustomize-controller, for part 4.
    source_and_kustomize: Option<(PathBuf, PathBuf)>,
}

struct ScanFigures {
    tags: usize,
    latest: String,
    /// How the N tags got into the registry, and how long it took.
    tagging: Duration,
    /// Per run: creation to ImageRepository Ready, creation to ImagePolicy Ready.
    runs: Vec<(Duration, Duration)>,
    /// Memory a second after start, before any object.
    started: Memory,
    /// Memory after each run.
    after_runs: Vec<Memory>,
    peak_rss: u64,
    cpu: Duration,
    stored_bytes: u64,
}

/// A process's resident memory: all, heap and stacks, mapped files (the
/// binary's code that ran, libraries), and the peak.
#[derive(Clone, Copy)]
struct Memory {
    rss: u64,
    anon: u64,
    file: u64,
    peak: u64,
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({} anonymous + {} file-backed), peak {}",
            mib(self.rss),
            mib(self.anon),
            mib(self.file),
            mib(self.peak)
        )
    }
}

fn memory(pid: u32) -> Result<Memory> {
    Ok(Memory {
        rss: proc_status_bytes(pid, "VmRSS")?,
        anon: proc_status_bytes(pid, "RssAnon")?,
        file: proc_status_bytes(pid, "RssFile")?,
        peak: proc_status_bytes(pid, "VmHWM")?,
    })
}

struct FleetFigures {
    count: usize,
    /// Creation of the M automations to all "repository up-to-date".
    up_to_date: Duration,
    up_to_date_cpu: Duration,
    /// New tag to each automation's push recorded, in order.
    pushes: Vec<Duration>,
    cpu: Duration,
    peak_rss: u64,
    commits: usize,
    files_changed: usize,
    redone: usize,
    retried: usize,
    /// The first failed run's log line, to show why.
    first_failure: Option<String>,
    load: String,
}

/// One round of a latency part: when each step was first seen, from the push of the tag.
#[derive(Default, Clone, Copy)]
struct Round {
    policy: Duration,
    pushed: Duration,
    /// Part 4 only: the GitRepository's artifact at the pushed commit.
    source: Option<Duration>,
    /// Part 4 only: the Deployment's image at the new tag.
    applied: Option<Duration>,
}

struct Figures {
    binary: PathBuf,
    controller_args: Vec<String>,
    scan: ScanFigures,
    fleet: FleetFigures,
    latency: Vec<Round>,
    latency_rss: u64,
    applied: Option<Vec<Round>>,
    load_start: String,
    load_end: String,
}

pub fn run(options: Options) -> Result<()> {
    if options.tags == 0 || options.automations == 0 || options.rounds == 0 {
        bail!("--tags, --automations and --rounds must be at least 1");
    }
    let binaries = Binaries {
        image: release_binary("image-automation-controller", "image-automation-controller")?,
        source_and_kustomize: if options.skip_applied {
            None
        } else {
            Some((
                release_binary("source-controller", "source-controller")?,
                release_binary("kustomize-controller", "kustomize-controller")?,
            ))
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = measure(&binaries, &options) => result,
            // Dropping the measuring future stops its processes (the control
            // plane's, the registry's and the Git server's too) and removes their files.
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    drop(runtime);
    let figures = result?;
    write_report("image-automation", &report(&figures)?)?;
    Ok(())
}

/// The servers every part uses.
struct World {
    // Fields drop in order: the namespaces go while the cluster still answers.
    namespaces: Vec<TestNamespace>,
    client: Client,
    registry: Registry,
    git: GitServer,
    work: tempfile::TempDir,
    cluster: Cluster,
}

impl World {
    async fn namespace(&mut self, prefix: &str) -> Result<String> {
        let namespace = self.cluster.test_namespace(prefix).await?;
        let name = namespace.name().to_owned();
        self.namespaces.push(namespace);
        // A Secret with the Git server's credentials, for the GitRepositories.
        apply::<k8s_openapi::api::core::v1::Secret>(
            &self.client,
            &name,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": GIT_SECRET},
                "stringData": {"username": self.git.username(), "password": self.git.password()}}),
        )
        .await?;
        Ok(name)
    }

    /// An image-automation-controller for `namespace` only, with its own tag storage.
    fn image_controller(&self, binary: &Path, namespace: &str, args: &[String]) -> Result<Service> {
        let dir = self.work.path().join(namespace);
        let kubeconfig = self.cluster.kubeconfig_path().to_path_buf();
        start_controller(
            "image-automation-controller",
            &dir.join("image-automation-controller.log"),
            |health| {
                let mut cmd = Command::new(binary);
                cmd.env("KUBECONFIG", &kubeconfig)
                    .env("RUNTIME_NAMESPACE", namespace)
                    .args(BASE_FLAGS.split(' '))
                    .arg(format!("--storage-path={}", dir.join("data").display()))
                    .arg(format!(
                        "--metrics-addr=127.0.0.1:{}",
                        e2e::paths::free_port()?
                    ))
                    .arg(format!("--health-addr=127.0.0.1:{health}"))
                    .args(args);
                Ok(cmd)
            },
        )
    }

    /// A GitRepository `name` following `main` of `repo`.
    async fn git_repository(&self, namespace: &str, name: &str, repo: &Repo) -> Result<()> {
        apply::<GitRepository>(
            &self.client,
            namespace,
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": name},
                "spec": {"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"},
                    "secretRef": {"name": GIT_SECRET}}}),
        )
        .await
    }

    /// ImageRepository `name` for `<host>/<repo_path>` and a semver ImagePolicy of the same name.
    async fn image_objects(&self, namespace: &str, name: &str, repo_path: &str) -> Result<()> {
        let image = format!("{}/{repo_path}", self.registry.host());
        apply::<ImageRepository>(
            &self.client,
            namespace,
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
                "metadata": {"name": name},
                "spec": {"image": image, "interval": "1h", "insecure": true}}),
        )
        .await?;
        apply::<ImagePolicy>(
            &self.client,
            namespace,
            json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
                "metadata": {"name": name},
                "spec": {"imageRepositoryRef": {"name": name},
                    "policy": {"semver": {"range": ">=1.0.0"}}}}),
        )
        .await
    }

    /// Pushes `repo_path:tag` to the registry.
    fn push_image(&self, repo_path: &str, tag: &str) -> Result<String> {
        tokio::task::block_in_place(|| self.registry.push_image(repo_path, tag))
    }

    /// `git` on the server's bare repository `repo` (read-only commands).
    fn server_git(&self, repo: &str, args: &[&str]) -> Result<String> {
        let out = e2e::process::run(
            Command::new("git")
                .arg("-c")
                .arg("safe.directory=*")
                .arg("--git-dir")
                .arg(self.git.repo_path(repo))
                .args(args),
        )?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

async fn measure(binaries: &Binaries, options: &Options) -> Result<Figures> {
    let load_start = load_average();
    // Logs of an earlier run would be mistaken for this one's.
    let _ = std::fs::remove_dir_all(logs_dir());
    eprintln!("==> starting a control plane of its own, the registry and the Git server");
    let cluster = Cluster::start_dedicated().await?;
    let client = cluster.client().await?;
    let registry = tokio::task::spawn_blocking(|| Registry::start(false)).await??;
    let git = tokio::task::spawn_blocking(GitServer::start).await??;
    let work = tempfile::Builder::new()
        .prefix("ferroflux-bench-image-automation-")
        .tempdir()
        .context("creating the work directory")?;
    let mut world = World {
        namespaces: Vec::new(),
        client,
        registry,
        git,
        work,
        cluster,
    };

    let scan = scan_part(&mut world, binaries, options).await?;
    let fleet = fleet_part(&mut world, binaries, options).await?;
    let (latency, latency_rss) = latency_part(&mut world, binaries, options).await?;
    let applied = match &binaries.source_and_kustomize {
        Some(others) => Some(applied_part(&mut world, binaries, others, options).await?),
        None => None,
    };
    let load_end = load_average();
    drop(world);
    Ok(Figures {
        binary: binaries.image.clone(),
        controller_args: options.controller_args.clone(),
        scan,
        fleet,
        latency,
        latency_rss,
        applied,
        load_start,
        load_end,
    })
}

/// The i-th of N tags: `1.<i/100>.<i%100>`, so plain string order and
/// semver order differ (1.9.x sorts after 1.10.x as text) and the latest is
/// the last one.
fn nth_tag(i: usize) -> String {
    format!("1.{}.{}", i / 100, i % 100)
}

async fn scan_part(
    world: &mut World,
    binaries: &Binaries,
    options: &Options,
) -> Result<ScanFigures> {
    let count = options.tags;
    eprintln!("==> (1) scan + policy of a {count}-tag repository ({SCAN_RUNS} runs)");
    let namespace = world.namespace("bench-image-scan").await?;
    let repo_path = format!("{namespace}/app");
    let tagging_started = Instant::now();
    let digest = world.push_image(&repo_path, &nth_tag(0))?;
    let tags: Vec<String> = (1..count).map(nth_tag).collect();
    tokio::task::block_in_place(|| write_tags(&world.registry, &repo_path, &digest, &tags))?;
    let tagging = tagging_started.elapsed();
    let latest = nth_tag(count - 1);
    eprintln!("    {count} tags in the registry after {tagging:.1?}");

    let mut controller =
        world.image_controller(&binaries.image, &namespace, &options.controller_args)?;
    // What the controller holds before any object: the floor under the peak.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = memory(controller.pid())?;
    let cpu_before = cpu_time(controller.pid())?;
    let mut runs = Vec::new();
    let mut after_runs = Vec::new();
    for run in 0..SCAN_RUNS {
        let name = format!("app-{run}");
        let started = Instant::now();
        world.image_objects(&namespace, &name, &repo_path).await?;
        let repositories: Api<ImageRepository> = Api::namespaced(world.client.clone(), &namespace);
        let policies: Api<ImagePolicy> = Api::namespaced(world.client.clone(), &namespace);
        let (mut scanned, mut selected) = (None, None);
        while scanned.is_none() || selected.is_none() {
            if started.elapsed() > STEP_DEADLINE {
                bail!(
                    "{name}: scan {scanned:?}, policy {selected:?} after {STEP_DEADLINE:?}\n{}",
                    e2e::process::tail(controller.log_path(), 30)
                );
            }
            controller.check_running()?;
            if scanned.is_none()
                && let Some(repo) = repositories.get_opt(&name).await?
                && is_ready(repo.status.as_ref().and_then(|s| s.conditions.as_ref()))
                && repo
                    .status
                    .as_ref()
                    .and_then(|s| s.last_scan_result.as_ref())
                    .is_some_and(|r| r.tag_count == i64::try_from(count).unwrap_or(i64::MAX))
            {
                scanned = Some(started.elapsed());
            }
            if selected.is_none()
                && let Some(policy) = policies.get_opt(&name).await?
                && is_ready(policy.status.as_ref().and_then(|s| s.conditions.as_ref()))
                && policy
                    .status
                    .as_ref()
                    .and_then(|s| s.latest_ref.as_ref())
                    .is_some_and(|r| r.tag == latest)
            {
                selected = Some(started.elapsed());
            }
            tokio::time::sleep(POLL).await;
        }
        let (scanned, selected) = (scanned.unwrap_or_default(), selected.unwrap_or_default());
        eprintln!("    run {run}: scan Ready {scanned:.2?}, policy Ready {selected:.2?}");
        runs.push((scanned, selected));
        after_runs.push(memory(controller.pid())?);
    }
    let peak_rss = proc_status_bytes(controller.pid(), "VmHWM")?;
    let cpu = cpu_time(controller.pid())?.saturating_sub(cpu_before);
    let stored_bytes = dir_size(&world.work.path().join(&namespace).join("data"));
    controller.kill();
    keep_log(&controller, "1-scan");
    eprintln!("    peak RSS {}", mib(peak_rss));
    Ok(ScanFigures {
        tags: count,
        latest,
        tagging,
        runs,
        after_runs,
        started,
        peak_rss,
        cpu,
        stored_bytes,
    })
}

/// Adds `tags` to the manifest `digest` of `repo` straight in the registry's
/// filesystem storage, in distribution's layout (what its tag PUT writes: a
/// `current/link` and an `index/sha256/<hex>/link` per tag naming the
/// manifest): 10,000 tags over the API take minutes, this takes a second.
/// The registry's own API then checks the result.
fn write_tags(registry: &Registry, repo: &str, digest: &str, tags: &[String]) -> Result<()> {
    let hex = digest
        .strip_prefix("sha256:")
        .with_context(|| format!("unexpected digest {digest}"))?;
    let base = registry
        .state_dir()
        .join("storage/docker/registry/v2/repositories")
        .join(repo)
        .join("_manifests/tags");
    // The pushed tag's directory proves the layout is the one written here.
    ensure!(
        base.join(nth_tag(0)).join("current/link").is_file(),
        "{} is not distribution's storage layout",
        base.display()
    );
    for tag in tags {
        let dir = base.join(tag);
        let index = dir.join("index/sha256").join(hex);
        std::fs::create_dir_all(dir.join("current"))?;
        std::fs::create_dir_all(&index)?;
        std::fs::write(dir.join("current/link"), digest)?;
        std::fs::write(index.join("link"), digest)?;
    }
    let listed = registry.list_tags(repo)?;
    ensure!(
        listed.len() == tags.len() + 1,
        "the registry lists {} tags, expected {}",
        listed.len(),
        tags.len() + 1
    );
    if let Some(last) = tags.last() {
        let (served, _) = registry.manifest(repo, last)?;
        ensure!(
            served == digest,
            "{repo}:{last} is {served}, expected {digest}"
        );
    }
    Ok(())
}

/// A Deployment named `name` whose image carries the marker of ImagePolicy `namespace:app`.
fn deployment(name: &str, image: &str, namespace: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n        - name: app\n          image: {image}:1.0.0 # {{\"$imagepolicy\": \"{namespace}:app\"}}\n"
    )
}

fn automation(name: &str, path: &str) -> Value {
    json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": name},
        "spec": {"interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "app"},
            "git": {"commit": {"author": {"name": "fluxbot", "email": "fluxbot@example.invalid"}},
                "push": {"branch": "main"}},
            "update": {"path": path, "strategy": "Setters"}}})
}

/// Ready with nothing to push, having seen policy `app` at `tag`.
fn up_to_date(auto: &ImageUpdateAutomation, tag: &str) -> bool {
    let Some(status) = &auto.status else {
        return false;
    };
    condition(status.conditions.as_ref(), "Ready")
        .is_some_and(|c| c.status == "True" && c.message == "repository up-to-date")
        && status
            .observed_policies
            .as_ref()
            .and_then(|p| p.get("app"))
            .is_some_and(|r| r.tag == tag)
}

async fn fleet_part(
    world: &mut World,
    binaries: &Binaries,
    options: &Options,
) -> Result<FleetFigures> {
    let count = options.automations;
    eprintln!("==> (2) {count} ImageUpdateAutomations pushing to one branch");
    let namespace = world.namespace("bench-image-fleet").await?;
    let repo_path = format!("{namespace}/app");
    let image = format!("{}/{repo_path}", world.registry.host());
    world.push_image(&repo_path, "1.0.0")?;
    let files: Vec<(String, String)> = (0..count)
        .map(|i| {
            (
                format!("team-{i:03}/app.yaml"),
                deployment(&format!("app-{i}"), &image, &namespace),
            )
        })
        .collect();
    let repo = tokio::task::block_in_place(|| world.git.create_repo(&namespace, files))?;
    world.git_repository(&namespace, "app", &repo).await?;
    world.image_objects(&namespace, "app", &repo_path).await?;
    let mut controller =
        world.image_controller(&binaries.image, &namespace, &options.controller_args)?;
    let api: Api<ImageUpdateAutomation> = Api::namespaced(world.client.clone(), &namespace);

    let cpu_before = cpu_time(controller.pid())?;
    let started = Instant::now();
    let names: Vec<String> = (0..count).map(|i| format!("team-{i:03}")).collect();
    futures::stream::iter(&names)
        .map(|name| {
            let client = world.client.clone();
            let namespace = namespace.clone();
            async move {
                apply::<ImageUpdateAutomation>(
                    &client,
                    &namespace,
                    automation(name, &format!("./{name}")),
                )
                .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    wait_all(&api, count, started, &mut controller, |a| {
        up_to_date(a, "1.0.0")
    })
    .await
    .context("waiting for the automations to be up to date")?;
    let up_to_date = started.elapsed();
    let up_to_date_cpu = cpu_time(controller.pid())?.saturating_sub(cpu_before);
    eprintln!("    all {count} up to date after {up_to_date:.1?}");
    let commits_before = commit_count(world, &namespace)?;

    let cpu_before = cpu_time(controller.pid())?;
    let started = Instant::now();
    world.push_image(&repo_path, "1.1.0")?;
    request_reconcile::<ImageRepository>(&world.client, &namespace, "app").await?;
    let mut pushes = wait_all(&api, count, started, &mut controller, |a| {
        a.status
            .as_ref()
            .is_some_and(|s| s.last_push_commit.is_some())
    })
    .await
    .context("waiting for the pushes")?;
    pushes.sort();
    let cpu = cpu_time(controller.pid())?.saturating_sub(cpu_before);
    let peak_rss = proc_status_bytes(controller.pid(), "VmHWM")?;
    let load = load_average();
    controller.kill();
    eprintln!(
        "    all {count} pushed after {:.1?}",
        pushes.last().copied().unwrap_or_default()
    );

    // The server has every change: one commit per automation, every file at the new tag.
    let commits = commit_count(world, &namespace)?.saturating_sub(commits_before);
    let grep = world
        .server_git(&namespace, &["grep", "-l", "-F", ":1.1.0 # {", "main"])
        .unwrap_or_default();
    let files_changed = grep.lines().count();
    keep_log(&controller, "2-fleet");
    let log = std::fs::read_to_string(controller.log_path()).unwrap_or_default();
    let redone = log
        .lines()
        .filter(|l| l.contains("redoing it on the new head"))
        .count();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("reconciliation failed"))
        .collect();
    let retried = failures.len();
    let first_failure = failures.first().map(|l| strip_ansi(l));
    Ok(FleetFigures {
        count,
        up_to_date,
        up_to_date_cpu,
        pushes,
        cpu,
        peak_rss,
        commits,
        files_changed,
        redone,
        retried,
        first_failure,
        load,
    })
}

fn commit_count(world: &World, repo: &str) -> Result<usize> {
    world
        .server_git(repo, &["rev-list", "--count", "main"])?
        .trim()
        .parse()
        .context("parsing git rev-list --count")
}

/// Lists the namespace's automations until `count` pass `check`; returns
/// when each was first seen passing, from `started`.
async fn wait_all(
    api: &Api<ImageUpdateAutomation>,
    count: usize,
    started: Instant,
    controller: &mut Service,
    check: impl Fn(&ImageUpdateAutomation) -> bool,
) -> Result<Vec<Duration>> {
    let mut seen: std::collections::HashMap<String, Duration> = std::collections::HashMap::new();
    let mut last_report = Instant::now();
    while seen.len() < count {
        controller.check_running()?;
        if started.elapsed() > FLEET_DEADLINE {
            bail!(
                "only {} of {count} after {FLEET_DEADLINE:?}; controller log {}:\n{}",
                seen.len(),
                controller.log_path().display(),
                e2e::process::tail(controller.log_path(), 30)
            );
        }
        let now = started.elapsed();
        for auto in api.list(&ListParams::default()).await?.items {
            let name = auto.metadata.name.clone().unwrap_or_default();
            if check(&auto) {
                seen.entry(name).or_insert(now);
            }
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!("    {}/{count} after {now:.0?}", seen.len());
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(seen.into_values().collect())
}

async fn latency_part(
    world: &mut World,
    binaries: &Binaries,
    options: &Options,
) -> Result<(Vec<Round>, u64)> {
    eprintln!(
        "==> (3) new tag to pushed commit, one automation ({} rounds)",
        options.rounds
    );
    let namespace = world.namespace("bench-image-latency").await?;
    let repo_path = format!("{namespace}/app");
    let image = format!("{}/{repo_path}", world.registry.host());
    world.push_image(&repo_path, "1.0.0")?;
    let repo = tokio::task::block_in_place(|| {
        world.git.create_repo(
            &namespace,
            [("deploy/app.yaml", deployment("app", &image, &namespace))],
        )
    })?;
    world.git_repository(&namespace, "app", &repo).await?;
    world.image_objects(&namespace, "app", &repo_path).await?;
    let mut controller =
        world.image_controller(&binaries.image, &namespace, &options.controller_args)?;
    apply::<ImageUpdateAutomation>(&world.client, &namespace, automation("app", "./deploy"))
        .await?;
    let api: Api<ImageUpdateAutomation> = Api::namespaced(world.client.clone(), &namespace);
    wait_all(&api, 1, Instant::now(), &mut controller, |a| {
        up_to_date(a, "1.0.0")
    })
    .await?;
    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let tag = format!("1.{round}.0");
        let r = tag_round(world, &namespace, &repo_path, &tag, &mut controller, None).await?;
        let text = world.server_git(&namespace, &["show", "main:deploy/app.yaml"])?;
        ensure!(
            text.contains(&format!("{image}:{tag} #")),
            "round {round}: the server has\n{text}"
        );
        eprintln!(
            "    round {round}: policy {:.2?}, pushed {:.2?}",
            r.policy, r.pushed
        );
        rounds.push(r);
    }
    let peak_rss = proc_status_bytes(controller.pid(), "VmHWM")?;
    controller.kill();
    keep_log(&controller, "3-latency");
    Ok((rounds, peak_rss))
}

/// Pushes `tag`, sets `requestedAt` on ImageRepository `app`, and follows the
/// change: ImagePolicy `app` at the tag, ImageUpdateAutomation `app` with a
/// new push, and (with a Deployment to watch) the GitRepository at that
/// commit and Deployment `app` at the tag.
async fn tag_round(
    world: &World,
    namespace: &str,
    repo_path: &str,
    tag: &str,
    controller: &mut Service,
    cluster_side: Option<&mut [Service]>,
) -> Result<Round> {
    let client = &world.client;
    let policies: Api<ImagePolicy> = Api::namespaced(client.clone(), namespace);
    let automations: Api<ImageUpdateAutomation> = Api::namespaced(client.clone(), namespace);
    let sources: Api<GitRepository> = Api::namespaced(client.clone(), namespace);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let previous = automations
        .get("app")
        .await?
        .status
        .and_then(|s| s.last_push_commit);
    let image = format!("{}/{repo_path}:{tag}", world.registry.host());
    let watch_cluster = cluster_side.is_some();
    let others = cluster_side.unwrap_or_default();

    let started = Instant::now();
    world.push_image(repo_path, tag)?;
    request_reconcile::<ImageRepository>(client, namespace, "app").await?;
    let (mut policy, mut pushed, mut source, mut applied) = (None, None, None, None);
    let mut commit: Option<String> = None;
    loop {
        let done = policy.is_some()
            && pushed.is_some()
            && (!watch_cluster || (source.is_some() && applied.is_some()));
        if done {
            break;
        }
        if started.elapsed() > STEP_DEADLINE {
            let mut logs = e2e::process::tail(controller.log_path(), 30);
            for other in others.iter() {
                logs.push_str(&format!(
                    "\n--- {}:\n{}",
                    other.name(),
                    e2e::process::tail(other.log_path(), 20)
                ));
            }
            bail!(
                "{tag}: policy {policy:?}, pushed {pushed:?}, source {source:?}, applied {applied:?} after {STEP_DEADLINE:?}\n{logs}"
            );
        }
        controller.check_running()?;
        for other in others.iter_mut() {
            other.check_running()?;
        }
        let now = started.elapsed();
        if policy.is_none()
            && policies
                .get("app")
                .await?
                .status
                .and_then(|s| s.latest_ref)
                .is_some_and(|r| r.tag == tag)
        {
            policy = Some(now);
        }
        if pushed.is_none()
            && let Some(last) = automations
                .get("app")
                .await?
                .status
                .and_then(|s| s.last_push_commit)
            && Some(&last) != previous.as_ref()
        {
            pushed = Some(now);
            commit = Some(last);
        }
        if watch_cluster {
            if source.is_none()
                && let Some(commit) = &commit
                && sources
                    .get("app")
                    .await?
                    .status
                    .and_then(|s| s.artifact)
                    .is_some_and(|a| a.revision == format!("main@sha1:{commit}"))
            {
                source = Some(now);
            }
            if applied.is_none()
                && deployment_image(&deployments).await?.as_deref() == Some(image.as_str())
            {
                applied = Some(now);
            }
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(Round {
        policy: policy.unwrap_or_default(),
        pushed: pushed.unwrap_or_default(),
        source,
        applied,
    })
}

/// The image of the first container of Deployment `app`, if it exists.
async fn deployment_image(deployments: &Api<Deployment>) -> Result<Option<String>> {
    Ok(deployments
        .get_opt("app")
        .await?
        .and_then(|d| d.spec?.template.spec?.containers.into_iter().next()?.image))
}

async fn applied_part(
    world: &mut World,
    binaries: &Binaries,
    (source_binary, kustomize_binary): &(PathBuf, PathBuf),
    options: &Options,
) -> Result<Vec<Round>> {
    eprintln!(
        "==> (4) new tag to applied in the cluster, with source-controller and kustomize-controller ({} rounds)",
        options.rounds
    );
    let namespace = world.namespace("bench-image-applied").await?;
    let repo_path = format!("{namespace}/app");
    let image = format!("{}/{repo_path}", world.registry.host());
    world.push_image(&repo_path, "1.0.0")?;
    let repo = tokio::task::block_in_place(|| {
        world.git.create_repo(
            &namespace,
            [("deploy/app.yaml", deployment("app", &image, &namespace))],
        )
    })?;
    let dir = world.work.path().join(&namespace);
    let kubeconfig = world.cluster.kubeconfig_path().to_path_buf();
    let source = start_controller(
        "source-controller",
        &dir.join("source-controller.log"),
        |health| {
            let mut cmd = Command::new(source_binary);
            cmd.env("KUBECONFIG", &kubeconfig)
                .env("RUNTIME_NAMESPACE", &namespace)
                .arg("--watch-all-namespaces=false")
                .arg("--log-encoding=console")
                .arg(format!(
                    "--storage-path={}",
                    dir.join("artifacts").display()
                ))
                .arg(format!(
                    "--storage-addr=127.0.0.1:{}",
                    e2e::paths::free_port()?
                ))
                .arg(format!(
                    "--metrics-addr=127.0.0.1:{}",
                    e2e::paths::free_port()?
                ))
                .arg(format!("--health-addr=127.0.0.1:{health}"));
            Ok(cmd)
        },
    )?;
    let kustomize = start_controller(
        "kustomize-controller",
        &dir.join("kustomize-controller.log"),
        |health| {
            let mut cmd = Command::new(kustomize_binary);
            cmd.env("KUBECONFIG", &kubeconfig)
                .env("RUNTIME_NAMESPACE", &namespace)
                .arg("--watch-all-namespaces=false")
                .arg("--log-encoding=console")
                .arg(format!(
                    "--metrics-addr=127.0.0.1:{}",
                    e2e::paths::free_port()?
                ))
                .arg(format!("--health-addr=127.0.0.1:{health}"));
            Ok(cmd)
        },
    )?;
    let mut others = [source, kustomize];
    let mut controller =
        world.image_controller(&binaries.image, &namespace, &options.controller_args)?;

    world.git_repository(&namespace, "app", &repo).await?;
    apply::<Kustomization>(
        &world.client,
        &namespace,
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "app"},
            "spec": {"interval": "1h", "path": "./deploy", "prune": true,
                "targetNamespace": namespace,
                "sourceRef": {"kind": "GitRepository", "name": "app"}}}),
    )
    .await?;
    world.image_objects(&namespace, "app", &repo_path).await?;
    apply::<ImageUpdateAutomation>(&world.client, &namespace, automation("app", "./deploy"))
        .await?;
    let automations: Api<ImageUpdateAutomation> = Api::namespaced(world.client.clone(), &namespace);
    wait_all(&automations, 1, Instant::now(), &mut controller, |a| {
        up_to_date(a, "1.0.0")
    })
    .await?;
    let deployments: Api<Deployment> = Api::namespaced(world.client.clone(), &namespace);
    let first = format!("{image}:1.0.0");
    let deadline = Instant::now() + STEP_DEADLINE;
    while deployment_image(&deployments).await?.as_deref() != Some(first.as_str()) {
        for other in &mut others {
            other.check_running()?;
        }
        if Instant::now() > deadline {
            bail!(
                "the Deployment was not applied in {STEP_DEADLINE:?}\n--- kustomize-controller:\n{}\n--- source-controller:\n{}",
                e2e::process::tail(others[1].log_path(), 20),
                e2e::process::tail(others[0].log_path(), 20)
            );
        }
        tokio::time::sleep(POLL).await;
    }

    let mut rounds = Vec::new();
    for round in 1..=options.rounds {
        let tag = format!("1.{round}.0");
        let r = tag_round(
            world,
            &namespace,
            &repo_path,
            &tag,
            &mut controller,
            Some(&mut others[..]),
        )
        .await?;
        eprintln!(
            "    round {round}: policy {:.2?}, pushed {:.2?}, source {:.2?}, applied {:.2?}",
            r.policy,
            r.pushed,
            r.source.unwrap_or_default(),
            r.applied.unwrap_or_default()
        );
        rounds.push(r);
    }
    controller.kill();
    keep_log(&controller, "4-applied");
    for other in &others {
        keep_log(other, "4-applied");
    }
    Ok(rounds)
}

/// Where the controllers' logs are kept after the run (their work directory goes).
fn logs_dir() -> PathBuf {
    workspace_root().join("target/bench/image-automation-logs")
}

/// Copies `service`'s log to [`logs_dir`] as `<part>-<name>.log` (best effort).
fn keep_log(service: &Service, part: &str) {
    let dir = logs_dir();
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::copy(
            service.log_path(),
            dir.join(format!("{part}-{}.log", service.name())),
        );
    }
}

/// Starts a controller on a free health port (retried when it was taken) and waits for it.
fn start_controller(
    name: &str,
    log: &Path,
    command: impl FnMut(u16) -> Result<Command>,
) -> Result<Service> {
    let (service, _) =
        e2e::process::start_on_free_port(name, log, Duration::from_secs(30), command)?;
    Ok(service)
}

/// Server-side applies `object` in `namespace`.
async fn apply<K>(client: &Client, namespace: &str, object: Value) -> Result<()>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let name = object["metadata"]["name"]
        .as_str()
        .context("object without a name")?
        .to_owned();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            &name,
            &PatchParams::apply("ferroflux-bench").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {} {namespace}/{name}", K::kind(&())))?;
    Ok(())
}

/// Sets `reconcile.fluxcd.io/requestedAt` on `name`, as `flux reconcile` does.
async fn request_reconcile<K>(client: &Client, namespace: &str, name: &str) -> Result<()>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let token = k8s_openapi::jiff::Timestamp::now()
        .as_nanosecond()
        .to_string();
    Api::<K>::namespaced(client.clone(), namespace)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                api::meta::RECONCILE_REQUEST_ANNOTATION: token}}})),
        )
        .await
        .context("annotating requestedAt")?;
    Ok(())
}

fn condition<'a>(conditions: Option<&'a Vec<Condition>>, type_: &str) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == type_)
}

fn is_ready(conditions: Option<&Vec<Condition>>) -> bool {
    condition(conditions, "Ready").is_some_and(|c| c.status == "True")
}

/// `line` without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Bytes of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            _ => entry.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

fn median_and_worst(mut values: Vec<Duration>) -> (Duration, Duration) {
    values.sort();
    (
        values.get(values.len() / 2).copied().unwrap_or_default(),
        values.last().copied().unwrap_or_default(),
    )
}

fn report(f: &Figures) -> Result<String> {
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut out = String::new();
    writeln!(out, "# Benchmark: image-automation-controller\n")?;
    writeln!(
        out,
        "Machine: {}, shared with another engineer's builds; load average (1, 5, 15 min) {} at the start, {} at the end. \
         Binary: `{}` (release build). Real kube-apiserver (a control plane of the benchmark's own), \
         Debian's docker-registry (distribution 2.8, filesystem storage) and Git over smart HTTP \
         (lighttpd + git http-backend, basic auth), all on loopback.\n",
        machine(),
        f.load_start,
        f.load_end,
        f.binary.display()
    )?;
    let extra = if f.controller_args.is_empty() {
        String::new()
    } else {
        format!(" {}", f.controller_args.join(" "))
    };
    writeln!(
        out,
        "Controller flags: `{BASE_FLAGS}{extra}` (plus storage, health and metrics addresses); the rest at \
         their defaults: `--concurrent=4`, `--kube-api-qps=50`, `--kube-api-burst=300`, \
         `--min-retry-delay=750ms`, `--max-retry-delay=15m`, feature gates GitForcePushBranch and \
         GitShallowClone on. Each part runs a fresh controller watching only its own namespace.\n"
    )?;
    writeln!(out, "| measure | measured | target | met |")?;
    writeln!(out, "|---|---|---|---|")?;

    let s = &f.scan;
    let (scan_median, scan_worst) = median_and_worst(s.runs.iter().map(|r| r.0).collect());
    let (policy_median, policy_worst) = median_and_worst(s.runs.iter().map(|r| r.1).collect());
    writeln!(
        out,
        "| (1) {} tags: ImageRepository creation to Ready (median / worst of {}) | {} / {} | ≤ 2 s | {} |",
        s.tags,
        s.runs.len(),
        secs(scan_median),
        secs(scan_worst),
        met(scan_worst <= SCAN_TARGET)
    )?;
    writeln!(
        out,
        "| (1) creation to ImagePolicy (semver `>=1.0.0`) Ready at `{}` (median / worst) | {} / {} | ≤ 2 s | {} |",
        s.latest,
        secs(policy_median),
        secs(policy_worst),
        met(policy_worst <= SCAN_TARGET)
    )?;
    writeln!(
        out,
        "| (1) controller peak RSS (VmHWM) | {} ({} VmRSS at start, before any object) | ≤ 20 MiB | {} |",
        mib(s.peak_rss),
        mib(s.started.rss),
        met(s.peak_rss <= SCAN_RSS_TARGET)
    )?;

    let fl = &f.fleet;
    let last = fl.pushes.last().copied().unwrap_or_default();
    let first = fl.pushes.first().copied().unwrap_or_default();
    let median = fl
        .pushes
        .get(fl.pushes.len() / 2)
        .copied()
        .unwrap_or_default();
    writeln!(
        out,
        "| (2) {} automations, one branch: new tag to all pushes recorded | {} (first {}, median {}) | | |",
        fl.count,
        secs(last),
        secs(first),
        secs(median)
    )?;
    writeln!(
        out,
        "| (2) controller CPU during that / peak RSS | {} / {} | | |",
        secs(fl.cpu),
        mib(fl.peak_rss)
    )?;

    let (push_median, push_worst) = median_and_worst(f.latency.iter().map(|r| r.pushed).collect());
    writeln!(
        out,
        "| (3) new tag to pushed commit, `requestedAt` (median of {}) | {} | ≤ 3 s | {} |",
        f.latency.len(),
        secs(push_median),
        met(push_median <= PUSH_LATENCY_TARGET)
    )?;
    writeln!(
        out,
        "| (3) new tag to pushed commit, worst | {} | ≤ 3 s | {} |",
        secs(push_worst),
        met(push_worst <= PUSH_LATENCY_TARGET)
    )?;
    match &f.applied {
        Some(rounds) => {
            let (median, worst) = median_and_worst(
                rounds
                    .iter()
                    .map(|r| r.applied.unwrap_or_default())
                    .collect(),
            );
            writeln!(
                out,
                "| (4) new tag to Deployment image applied in the cluster (median of {}) | {} | ≤ 5 s | {} |",
                rounds.len(),
                secs(median),
                met(median <= APPLIED_LATENCY_TARGET)
            )?;
            writeln!(
                out,
                "| (4) new tag to applied, worst | {} | ≤ 5 s | {} |",
                secs(worst),
                met(worst <= APPLIED_LATENCY_TARGET)
            )?;
        }
        None => writeln!(
            out,
            "| (4) new tag to applied in the cluster | not run (`--skip-applied`) | ≤ 5 s | |"
        )?,
    }

    writeln!(out, "\n## (1) Scan + policy\n")?;
    writeln!(
        out,
        "One image pushed over the registry API, then {} more tags of it (`1.<i/100>.<i%100>`, so \
         string and semver order differ) written into the registry's filesystem storage in \
         distribution's layout ({}; checked through the registry's tag listing and a manifest GET). \
         Each run creates a new ImageRepository and ImagePolicy of the same name at once (nothing \
         stored for that name yet) and polls both every {} ms. Runs (scan Ready, policy Ready): {}. \
         The controller used {} of CPU for the {} runs; its tag storage holds {} KiB.",
        s.tags - 1,
        secs(s.tagging),
        POLL.as_millis(),
        s.runs
            .iter()
            .map(|(a, b)| format!("{} / {}", secs(*a), secs(*b)))
            .collect::<Vec<_>>()
            .join(", "),
        secs(s.cpu),
        s.runs.len(),
        s.stored_bytes / 1024
    )?;
    writeln!(
        out,
        "\nController memory (VmRSS: RssAnon + RssFile, VmHWM) a second after start, before any \
         object: {}; after each run: {}.",
        s.started,
        s.after_runs
            .iter()
            .map(Memory::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    )?;

    writeln!(
        out,
        "\n## (2) {} automations racing on one branch\n",
        fl.count
    )?;
    writeln!(
        out,
        "One Git repository with {} directories, each holding a Deployment whose image carries the \
         marker of one ImagePolicy; one ImageUpdateAutomation per directory (`update.path`), all \
         pushing to `main`. Creation to all {} \"repository up-to-date\": {} ({} controller CPU). Then \
         a new tag pushed and `requestedAt` set on the ImageRepository: every automation records its \
         push after {}; controller CPU {} over that window, peak RSS {}, load average {} at the end. \
         The server then holds {} new commits and {} of {} files at the new tag. Pushes refused \
         because the branch moved, redone at once on the new head (log lines `redoing it on the new \
         head`): {}; runs that still failed after the controller's redos and were retried with \
         backoff (log lines `reconciliation failed`): {}.",
        fl.count,
        fl.count,
        secs(fl.up_to_date),
        secs(fl.up_to_date_cpu),
        secs(last),
        secs(fl.cpu),
        mib(fl.peak_rss),
        fl.load,
        fl.commits,
        fl.files_changed,
        fl.count,
        fl.redone,
        fl.retried
    )?;
    if let Some(line) = &fl.first_failure {
        writeln!(
            out,
            "\nThe first failed run, as logged:\n\n```\n{line}\n```"
        )?;
    }

    writeln!(out, "\n## (3) and (4) per round\n")?;
    writeln!(
        out,
        "Each round pushes a new tag (`1.<round>.0`) over the registry API, sets `requestedAt` on the \
         ImageRepository, then polls every {} ms; times are from the start of the push. In (4) the \
         automation itself asks source-controller to fetch (its `requestedAt` on the GitRepository \
         after the push); the Kustomization follows the new artifact; all three controllers at their \
         default flags, each watching only the part's namespace.\n",
        POLL.as_millis()
    )?;
    writeln!(
        out,
        "| round | policy at the tag | push recorded | GitRepository at the commit | Deployment image applied |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for (i, r) in f.latency.iter().enumerate() {
        writeln!(
            out,
            "| (3) {} | {} | {} | | |",
            i + 1,
            secs(r.policy),
            secs(r.pushed)
        )?;
    }
    for (i, r) in f.applied.iter().flatten().enumerate() {
        writeln!(
            out,
            "| (4) {} | {} | {} | {} | {} |",
            i + 1,
            secs(r.policy),
            secs(r.pushed),
            secs(r.source.unwrap_or_default()),
            secs(r.applied.unwrap_or_default())
        )?;
    }
    writeln!(
        out,
        "\nPeak RSS of the controller in (3): {}.",
        mib(f.latency_rss)
    )?;
    writeln!(
        out,
        "\nThe controllers' logs of this run: `{}`.",
        logs_dir().display()
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_tag_is_the_highest_version_but_not_the_highest_string() {
        let tags: Vec<String> = (0..10_000).map(nth_tag).collect();
        assert_eq!(tags.last().map(String::as_str), Some("1.99.99"));
        // As text, 1.9.99 sorts above 1.10.0: a selector comparing strings
        // would pick a wrong tag.
        assert!(nth_tag(999) > nth_tag(1000));
    }

    #[test]
    fn colour_sequences_are_stripped() {
        assert_eq!(
            strip_ansi("\u{1b}[33m WARN\u{1b}[0m failed \u{1b}[3merror\u{1b}[0m=x"),
            " WARN failed error=x"
        );
    }
}
