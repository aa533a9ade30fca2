//! The long-lived control plane of `cargo xtask cluster up|down|status|env`.
//!
//! Its processes run in their own session, independent of the command that
//! started them, and are tracked by pid files. Everything lives under
//! `<cache>/cluster/`: `run/` (certificates, etcd data, pid files; removed by
//! `down`), `logs/`, `kubeconfig`, and `ports.json` (the ports chosen by the
//! first `up`, reused so the URL stays the same across restarts).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::control_plane::{Component, ControlPlane, Layout, Ports, Supervision, is_ready};
use super::crds::{install_crds, workspace_crds_dir};
use super::kubeconfig;
use crate::gobuild::{self, ControlPlaneBinaries};
use crate::paths;

/// A detached control plane and the directory that holds its state.
#[derive(Debug, Clone)]
pub struct DetachedCluster {
    root: PathBuf,
}

impl Default for DetachedCluster {
    /// The one `cargo xtask cluster` manages: `<cache>/cluster`.
    fn default() -> Self {
        Self::at(paths::cache_dir().join("cluster"))
    }
}

/// One component of the detached control plane.
#[derive(Debug, Clone)]
pub struct ComponentState {
    /// Which component this is.
    pub component: Component,
    /// Set when its pid file names a live process running the expected binary.
    pub pid: Option<u32>,
    /// Resident memory of that process, KiB.
    pub rss_kib: Option<u64>,
}

/// What `status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// Every component, in start order.
    pub components: Vec<ComponentState>,
    /// The apiserver URL (from the remembered ports).
    pub url: Option<String>,
    /// The admin kubeconfig's path.
    pub kubeconfig: PathBuf,
    /// The directory holding the components' logs.
    pub log_dir: PathBuf,
    /// The run directory exists: either the control plane runs, or a previous
    /// run ended without `down` (crash, reboot).
    pub run_dir: Option<PathBuf>,
}

impl Status {
    /// Every component runs.
    pub fn running(&self) -> bool {
        self.components.iter().all(|c| c.pid.is_some())
    }

    /// No component runs.
    pub fn stopped(&self) -> bool {
        self.components.iter().all(|c| c.pid.is_none())
    }

    /// `etcd (pid 12), kube-apiserver (not running), …`.
    pub fn describe(&self) -> String {
        self.components
            .iter()
            .map(|c| match c.pid {
                Some(pid) => format!("{} (pid {pid})", c.component.name()),
                None => format!("{} (not running)", c.component.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What `up` did.
#[derive(Debug)]
pub struct UpReport {
    /// The control plane was already running; only the CRDs were (re)applied.
    pub already_running: bool,
    /// A run directory left by a run that had died was removed first.
    pub removed_stale: Option<PathBuf>,
    /// The apiserver URL.
    pub url: String,
    /// The admin kubeconfig's path.
    pub kubeconfig: PathBuf,
    /// Names of the installed CRDs.
    pub crds: Vec<String>,
    /// Time from starting etcd to CRDs Established (excludes any Go build).
    pub took: Duration,
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct DownReport {
    /// Processes stopped: component (or `stray process`) name and pid.
    pub stopped: Vec<(String, u32)>,
    /// The run directory that was removed.
    pub removed: Option<PathBuf>,
}

impl DetachedCluster {
    /// A detached control plane whose state lives in `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory holding the state.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The admin kubeconfig.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.layout().kubeconfig
    }

    fn layout(&self) -> Layout {
        Layout {
            run_dir: self.root.join("run"),
            log_dir: self.root.join("logs"),
            kubeconfig: self.root.join("kubeconfig"),
        }
    }

    fn ports_file(&self) -> PathBuf {
        self.root.join("ports.json")
    }

    /// Serialises `up` and `down` on this state directory.
    fn lock(&self) -> Result<std::fs::File> {
        std::fs::create_dir_all(&self.root)
            .with_context(|| format!("creating {}", self.root.display()))?;
        let path = self.root.join("lock");
        let file = std::fs::File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        file.lock()
            .with_context(|| format!("locking {}", path.display()))?;
        Ok(file)
    }

    /// Reads pid files and checks which processes still run.
    pub fn status(&self) -> Result<Status> {
        let layout = self.layout();
        let binaries = expected_binaries();
        let components = Component::ALL
            .iter()
            .map(|&component| {
                let pid = std::fs::read_to_string(layout.pid_file(component))
                    .ok()
                    .and_then(|text| text.trim().parse::<u32>().ok())
                    .filter(|&pid| runs_binary(pid, component.binary(&binaries)));
                ComponentState {
                    component,
                    pid,
                    rss_kib: pid.and_then(rss_kib),
                }
            })
            .collect();
        let url = self.read_ports()?.map(|ports| ports.apiserver_url());
        Ok(Status {
            components,
            url,
            kubeconfig: layout.kubeconfig.clone(),
            log_dir: layout.log_dir.clone(),
            run_dir: layout.run_dir.exists().then_some(layout.run_dir),
        })
    }

    /// Builds the binaries if needed, starts the control plane unless it
    /// already runs, and installs the workspace's CRDs.
    pub fn up(&self) -> Result<UpReport> {
        let _lock = self.lock()?;
        let layout = self.layout();
        let runtime = runtime()?;
        let status = self.status()?;
        if status.running() {
            let started = Instant::now();
            let crds = runtime.block_on(async {
                let client =
                    kube::Client::try_from(kubeconfig::load(&layout.kubeconfig).await?)?;
                if !is_ready(&client).await {
                    bail!(
                        "the control plane runs ({}) but its apiserver is not ready; see the logs in {} \
                         or restart it with `cargo xtask cluster down && cargo xtask cluster up`",
                        status.describe(),
                        layout.log_dir.display()
                    );
                }
                install_crds(&client, &workspace_crds_dir()).await
            })?;
            return Ok(UpReport {
                already_running: true,
                removed_stale: None,
                url: status.url.unwrap_or_default(),
                kubeconfig: layout.kubeconfig,
                crds,
                took: started.elapsed(),
            });
        }
        if !status.stopped() {
            bail!(
                "the control plane is only partly running: {}; run `cargo xtask cluster down`, then `up` again",
                status.describe()
            );
        }
        let removed_stale = match status.run_dir {
            Some(dir) => {
                // Nothing runs, so the directory is left over from a run that died.
                std::fs::remove_dir_all(&dir).with_context(|| {
                    format!(
                        "removing the stale control-plane directory {} (left by a run that died); \
                         remove it by hand or run `cargo xtask cluster down`",
                        dir.display()
                    )
                })?;
                Some(dir)
            }
            None => None,
        };
        let _ = std::fs::remove_file(&layout.kubeconfig);

        let binaries = gobuild::control_plane_binaries()?;
        let ports = self.remembered_ports()?;
        ports.check_free(&format!(
            "stop that process, or delete {} so `cargo xtask cluster up` picks new ports",
            self.ports_file().display()
        ))?;

        let started = Instant::now();
        let result = runtime.block_on(async {
            ControlPlane::start(&binaries, &layout, ports, Supervision::Detached, None).await?;
            let client = kube::Client::try_from(kubeconfig::load(&layout.kubeconfig).await?)?;
            install_crds(&client, &workspace_crds_dir()).await.context(
                "the control plane runs, but installing the CRDs failed \
                 (fix crds/ and run `cargo xtask cluster up` again)",
            )
        });
        let crds = match result {
            Ok(crds) => crds,
            Err(err) => {
                // ControlPlane::start killed what it started; leave no half-made
                // run directory behind unless the control plane itself is up.
                if self.status()?.stopped() {
                    let _ = std::fs::remove_dir_all(&layout.run_dir);
                    let _ = std::fs::remove_file(&layout.kubeconfig);
                }
                return Err(err);
            }
        };
        Ok(UpReport {
            already_running: false,
            removed_stale,
            url: ports.apiserver_url(),
            kubeconfig: layout.kubeconfig,
            crds,
            took: started.elapsed(),
        })
    }

    /// Stops every process of the control plane (SIGTERM, then SIGKILL after
    /// a grace period) and removes its run directory and kubeconfig.
    pub fn down(&self) -> Result<DownReport> {
        let _lock = self.lock()?;
        let layout = self.layout();
        let status = self.status()?;
        let mut report = DownReport::default();
        for state in status.components.iter().rev() {
            if let Some(pid) = state.pid {
                stop(pid)?;
                report
                    .stopped
                    .push((state.component.name().to_string(), pid));
            }
        }
        // Processes whose pid file was lost still name the run directory in their flags.
        for pid in processes_mentioning(&layout.run_dir) {
            stop(pid)?;
            report.stopped.push(("stray process".to_string(), pid));
        }
        if layout.run_dir.exists() {
            std::fs::remove_dir_all(&layout.run_dir)
                .with_context(|| format!("removing {}", layout.run_dir.display()))?;
            report.removed = Some(layout.run_dir);
        }
        let _ = std::fs::remove_file(&layout.kubeconfig);
        Ok(report)
    }

    /// The shell lines that point clients (kubectl, tests) at the running
    /// control plane; fails when it does not run.
    pub fn env(&self) -> Result<String> {
        let status = self.status()?;
        if !status.running() {
            bail!(
                "the control plane is not running ({}); start it with `cargo xtask cluster up`",
                status.describe()
            );
        }
        Ok(env_lines(&status.kubeconfig))
    }

    fn read_ports(&self) -> Result<Option<Ports>> {
        let path = self.ports_file();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).with_context(|| {
                format!("reading {} (delete it to pick new ports)", path.display())
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The ports of the previous `up`, or new free ones (then remembered).
    fn remembered_ports(&self) -> Result<Ports> {
        if let Some(ports) = self.read_ports()? {
            return Ok(ports);
        }
        let ports = Ports::free()?;
        std::fs::write(self.ports_file(), serde_json::to_vec_pretty(&ports)?)
            .with_context(|| format!("writing {}", self.ports_file().display()))?;
        Ok(ports)
    }
}

/// The cached binary paths, whether built or not (to recognise our processes).
fn expected_binaries() -> ControlPlaneBinaries {
    ControlPlaneBinaries {
        etcd: gobuild::binary_path("etcd", gobuild::ETCD_VERSION),
        kube_apiserver: gobuild::binary_path("kube-apiserver", gobuild::KUBERNETES_VERSION),
        kube_controller_manager: gobuild::binary_path(
            "kube-controller-manager",
            gobuild::KUBERNETES_VERSION,
        ),
    }
}

/// `export KUBECONFIG=…` and `export FERROFLUX_KUBECONFIG=…`.
pub fn env_lines(kubeconfig: &Path) -> String {
    let path = kubeconfig.display();
    format!(
        "export KUBECONFIG={path}\nexport {}={path}\n",
        super::KUBECONFIG_ENV
    )
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")
}

/// SIGTERM, up to 10 s to exit, then SIGKILL.
#[allow(unsafe_code)]
fn stop(pid: u32) -> Result<()> {
    let Ok(raw) = i32::try_from(pid) else {
        bail!("pid {pid} out of range");
    };
    // SAFETY: kill has no memory effects; the pid was just checked to run our binary.
    unsafe { libc::kill(raw, libc::SIGTERM) };
    if wait_exit(pid, Duration::from_secs(10)) {
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { libc::kill(raw, libc::SIGKILL) };
    if wait_exit(pid, Duration::from_secs(5)) {
        return Ok(());
    }
    bail!("process {pid} survived SIGKILL; stop it by hand");
}

fn wait_exit(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !pid_alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !pid_alive(pid)
}

/// Whether `pid` is a live (not zombie) process.
pub(crate) fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name, which may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|&b| b == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).into_owned())
            .collect(),
    )
}

/// Whether `pid` is alive and was started from `binary` (guards against a
/// recycled pid).
fn runs_binary(pid: u32, binary: &Path) -> bool {
    pid_alive(pid)
        && cmdline(pid)
            .and_then(|args| args.into_iter().next())
            .is_some_and(|program| Path::new(&program) == binary)
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Live processes (other than this one) with an argument naming a path in `dir`.
fn processes_mentioning(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own && pid_alive(pid))
        .filter(|&pid| {
            cmdline(pid).is_some_and(|args| args.iter().any(|arg| arg.contains(&needle)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_recognised() {
        let pid = std::process::id();
        assert!(pid_alive(pid));
        let argv0 = cmdline(pid).unwrap().remove(0);
        assert!(runs_binary(pid, Path::new(&argv0)));
        assert!(!runs_binary(pid, Path::new("/nonexistent/binary")));
        assert!(rss_kib(pid).unwrap() > 0);
    }

    #[test]
    fn an_exited_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }

    #[test]
    fn env_lines_export_both_variables() {
        let lines = env_lines(Path::new("/x/kubeconfig"));
        assert_eq!(
            lines,
            "export KUBECONFIG=/x/kubeconfig\nexport FERROFLUX_KUBECONFIG=/x/kubeconfig\n"
        );
    }
}
