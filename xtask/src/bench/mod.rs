//! `cargo xtask bench <target>`: benchmarks that measure the speed and memory
//! targets of the issues, process against process, and write a small
//! Markdown report to `target/bench/<target>.md` (also printed).
//!
//! Timings come from whole-process runs (wall clock) and peak memory from the
//! kernel's accounting of each child (`wait4`'s `ru_maxrss`), never from
//! in-test timers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

mod helm_controller;
mod image_automation;
mod kustomize;
mod kustomize_controller;
mod notification;
mod source;

/// What to benchmark.
#[derive(clap::Subcommand)]
pub enum Target {
    /// `ferroflux kustomize build` against `kubectl kustomize`: wall time and peak RSS.
    Kustomize,
    /// N HelmReleases from creation to all Ready: time, peak RSS, overhead beyond helm.
    HelmController {
        /// Only this many HelmReleases (default: 100, then 1,000).
        #[arg(long)]
        count: Option<usize>,
        /// helm-controller's `--concurrent`.
        #[arg(long, default_value_t = helm_controller::DEFAULT_CONCURRENT)]
        concurrent: u16,
        /// helm-controller's `--helm-niceness` (default: the controller's default).
        #[arg(long)]
        helm_niceness: Option<u8>,
        /// Measure this helm-controller binary instead of a fresh release build
        /// (another commit's, or a profiler wrapping one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// A further flag for helm-controller (repeatable), e.g.
        /// `--controller-arg=--kube-api-qps=-1`.
        #[arg(long = "controller-arg", allow_hyphen_values = true)]
        controller_args: Vec<String>,
    },
    /// kustomize-controller: N Kustomizations (4 objects each) to all Ready, peak RSS, commit-to-applied latency.
    KustomizeController {
        /// How many Kustomizations.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// kustomize-controller's `--concurrent` (Flux's benchmark runs 20; its default is 4).
        #[arg(long, default_value_t = 20)]
        concurrent: u16,
        /// Measure this kustomize-controller binary instead of the fresh release build
        /// (another commit's, or a profiler wrapping one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// A further flag for kustomize-controller (repeatable), e.g.
        /// `--controller-arg=--kube-api-qps=500`.
        #[arg(long = "controller-arg", allow_hyphen_values = true)]
        controller_args: Vec<String>,
    },
    /// image-automation-controller: scan + policy of an N-tag repository, M automations racing on
    /// one branch, new-tag-to-pushed-commit and new-tag-to-applied-in-cluster latency.
    ImageAutomation {
        /// Tags in the scanned repository.
        #[arg(long, default_value_t = 10_000)]
        tags: usize,
        /// ImageUpdateAutomations pushing to one branch.
        #[arg(long, default_value_t = 100)]
        automations: usize,
        /// Rounds of each latency measurement.
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Skip new-tag-to-applied (no source-controller or kustomize-controller).
        #[arg(long)]
        skip_applied: bool,
        /// A further flag for image-automation-controller (repeatable), e.g.
        /// `--controller-arg=--concurrent=8`.
        #[arg(long = "controller-arg", allow_hyphen_values = true)]
        controller_args: Vec<String>,
    },
    /// notification-controller with source- and kustomize-controller: signed GitHub webhook to
    /// applied (R rounds), N events in S seconds accepted and dispatched, peak RSS and CPU.
    Notification {
        /// Rounds of webhook → applied.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Events POSTed to the event endpoint.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
        /// Over how many seconds the events are sent (evenly).
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// source-controller: N GitRepositories to Ready, peak and idle RSS, artifact of a 10,000-file repository.
    Source {
        /// How many GitRepositories the scale run creates.
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Measure this source-controller binary instead of a fresh release build.
        #[arg(long)]
        binary: Option<PathBuf>,
        /// A further flag for source-controller (repeatable), e.g.
        /// `--controller-arg=--kube-api-qps=-1`.
        #[arg(long = "controller-arg", allow_hyphen_values = true)]
        controller_args: Vec<String>,
    },
}

/// Runs the benchmark `target` and writes its report.
pub fn run(target: Target) -> Result<()> {
    match target {
        Target::Kustomize => kustomize::run(),
        Target::KustomizeController {
            count,
            concurrent,
            binary,
            controller_args,
        } => kustomize_controller::run(count, concurrent, binary, &controller_args),
        Target::Source {
            count,
            binary,
            controller_args,
        } => source::run(count, binary, &controller_args),
        Target::ImageAutomation {
            tags,
            automations,
            rounds,
            skip_applied,
            controller_args,
        } => image_automation::run(image_automation::Options {
            tags,
            automations,
            rounds,
            skip_applied,
            controller_args,
        }),
        Target::Notification {
            rounds,
            events,
            seconds,
        } => notification::run(notification::Options {
            rounds,
            events,
            seconds,
        }),
        Target::HelmController {
            count,
            concurrent,
            helm_niceness,
            binary,
            controller_args,
        } => helm_controller::run(count, concurrent, helm_niceness, binary, &controller_args),
    }
}

/// What one process run cost.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCost {
    /// Wall-clock time from spawn to exit.
    pub wall: Duration,
    /// Peak resident set size in bytes.
    pub peak_rss: u64,
}

/// Runs `cmd` to completion with stdout discarded, and measures it.
/// Fails with the process's stderr when it exits non-zero.
#[allow(unsafe_code)]
pub fn measure(cmd: &mut Command) -> Result<ProcessCost> {
    use std::os::unix::process::ExitStatusExt;
    let program = cmd.get_program().to_string_lossy().into_owned();
    let stderr_file = tempfile_path("stderr");
    let stderr = std::fs::File::create(&stderr_file)?;
    let started = Instant::now();
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("starting {program}"))?;
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data the kernel fills in; pid is our own child,
    // reaped here exactly once (the Child handle is forgotten below).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: status and usage are live locals the kernel writes into; the pid is
    // our own unreaped child.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    std::mem::forget(child);
    if rc < 0 {
        bail!("waiting for {program}: {}", std::io::Error::last_os_error());
    }
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        let err = std::fs::read_to_string(&stderr_file).unwrap_or_default();
        bail!("{program} failed ({exit}): {}", err.trim());
    }
    let _ = std::fs::remove_file(stderr_file);
    // Linux reports ru_maxrss in KiB.
    let peak_rss = u64::try_from(usage.ru_maxrss).unwrap_or(0) * 1024;
    Ok(ProcessCost { wall, peak_rss })
}

/// The best (lowest wall time) of `runs` measurements, with the highest peak RSS seen.
pub fn best_of(runs: usize, mut make: impl FnMut() -> Command) -> Result<ProcessCost> {
    let mut best: Option<ProcessCost> = None;
    let mut peak = 0;
    for _ in 0..runs.max(1) {
        let cost = measure(&mut make())?;
        peak = peak.max(cost.peak_rss);
        if best.is_none_or(|b| cost.wall < b.wall) {
            best = Some(cost);
        }
    }
    let best = best.context("no runs")?;
    Ok(ProcessCost {
        wall: best.wall,
        peak_rss: peak,
    })
}

/// Formats bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Writes `report` to `target/bench/<name>.md` and prints it.
pub fn write_report(name: &str, report: &str) -> Result<PathBuf> {
    let dir = workspace_root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, report)?;
    println!("{report}");
    eprintln!("report written to {}", path.display());
    Ok(path)
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Builds the release binary of `package` and returns its path.
pub fn release_binary(package: &str, bin: &str) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", package, "--bin", bin])
        .current_dir(workspace_root())
        .status()
        .context("running cargo build --release")?;
    if !status.success() {
        bail!("building {package} failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    Ok(target.join("release").join(bin))
}

/// A machine description line for reports.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {}", std::env::consts::ARCH)
}

fn tempfile_path(what: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ferroflux-bench-{}-{what}", std::process::id()))
}

/// The 1-, 5- and 15-minute load averages, for reports.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_string(),
        |text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// CPU time used so far by each process of a [`crate::demo::Stack`].
pub struct StackCpu(Vec<(String, Duration)>);

impl StackCpu {
    /// Reads the CPU time of every process of `stack` now.
    pub fn now(stack: &crate::demo::Stack) -> Self {
        Self(
            stack
                .processes()
                .into_iter()
                .filter_map(|(name, pid)| Some((name, source::cpu_time(pid).ok()?)))
                .collect(),
        )
    }

    /// `name 1.2 s, other 0.3 s`: the CPU time of each process, for reports.
    pub fn describe(by_process: &[(String, Duration)]) -> String {
        by_process
            .iter()
            .map(|(name, cpu)| format!("{name} {:.1} s", cpu.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The CPU time each process used since `before`.
    pub fn since(&self, before: &StackCpu) -> Vec<(String, Duration)> {
        self.0
            .iter()
            .map(|(name, after)| {
                let earlier = before
                    .0
                    .iter()
                    .find(|(other, _)| other == name)
                    .map_or(Duration::ZERO, |(_, cpu)| *cpu);
                (name.clone(), after.saturating_sub(earlier))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_real_process() {
        let cost = measure(Command::new("true").arg("x")).expect("`true` runs");
        assert!(cost.peak_rss > 0);
        assert!(cost.wall < Duration::from_secs(5));
        assert!(measure(&mut Command::new("false")).is_err());
    }
}
