//! Background processes for the harness.
//!
//! Servers started by a test binary must die with it, even when it is killed:
//! every child gets `PR_SET_PDEATHSIG(SIGKILL)`. Linux delivers that signal when
//! the *thread* that forked the child exits, so children are forked from one
//! supervisor thread that lives as long as the process.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A child process whose output goes to a log file. Killed when dropped.
#[derive(Debug)]
pub struct Service {
    name: String,
    child: Child,
    log: PathBuf,
    /// Started by [`start_detached`]: outlives this process, so not killed on drop.
    detached: bool,
}

impl Service {
    /// The name given at start, used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The log file holding the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the tail of the log if the process has exited.
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                tail(&self.log, 30)
            );
        }
        Ok(())
    }

    /// Waits until `ready` returns true, failing early if the process exits.
    pub fn wait_until(&mut self, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_running()?;
            if ready() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not ready after {timeout:?}; last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the process accepts TCP connections on `127.0.0.1:port`.
    pub fn wait_for_port(&mut self, port: u16, timeout: Duration) -> Result<()> {
        self.wait_until(timeout, || port_open(port))
    }

    /// Sends SIGTERM, as the kubelet does when it deletes a pod, and waits
    /// up to `timeout` for the process to exit; its exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let sent = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()?;
        if !sent.success() {
            bail!("cannot send SIGTERM to {} ({sent})", self.name);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "{} still running {timeout:?} after SIGTERM; last lines of {}:\n{}",
                    self.name,
                    self.log.display(),
                    tail(&self.log, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if !self.detached {
            self.kill();
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn supervisor() -> Result<&'static mpsc::Sender<SpawnRequest>> {
    static SUPERVISOR: OnceLock<std::io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    SUPERVISOR
        .get_or_init(|| {
            let (tx, rx) = mpsc::channel::<SpawnRequest>();
            std::thread::Builder::new()
                .name("e2e-supervisor".into())
                .spawn(move || {
                    for (mut cmd, reply) in rx {
                        let _ = reply.send(cmd.spawn());
                    }
                    // The channel's sender is static, so this loop never ends and the
                    // thread lives until the process exits.
                })?;
            Ok(tx)
        })
        .as_ref()
        .map_err(|err| anyhow::anyhow!("spawning the e2e supervisor thread: {err}"))
}

/// Runs a controller `binary` once per `(flag, expected)` case with a flag
/// it must refuse at start-up, before it reaches any cluster: each run must
/// exit 1 having printed exactly one line (log on stdout, errors on stderr)
/// that contains `expected`.
pub fn assert_flags_refused(binary: &Path, cases: &[(&str, &str)]) -> Result<()> {
    for (flag, expected) in cases {
        let line = refused_at_start(binary, &[(*flag).to_string()])?;
        if !line.contains(expected) {
            bail!("{flag}: expected {expected:?} in {line}");
        }
    }
    Ok(())
}

/// Runs `binary` with `args` that it must refuse at start-up: checks it
/// exits 1 having printed exactly one line, and returns that line.
pub fn refused_at_start(binary: &Path, args: &[String]) -> Result<String> {
    let output = Command::new(binary)
        .args(args)
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if output.status.code() != Some(1) {
        bail!(
            "{args:?}: exited {} instead of 1:\n{printed}",
            output.status
        );
    }
    let lines: Vec<&str> = printed.lines().collect();
    match lines.as_slice() {
        [line] => Ok((*line).to_string()),
        _ => bail!(
            "{args:?}: printed {} lines, not one:\n{printed}",
            lines.len()
        ),
    }
}

/// Starts `cmd` in the background with stdout and stderr appended to `log`.
///
/// The child is killed when the returned [`Service`] is dropped, and by the
/// kernel when this process dies.
#[allow(unsafe_code)]
pub fn start(name: &str, mut cmd: Command, log: &Path) -> Result<Service> {
    redirect_to_log(&mut cmd, log)?;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let (reply_tx, reply_rx) = mpsc::channel();
    supervisor()?
        .send((cmd, reply_tx))
        .map_err(|_| anyhow::anyhow!("the e2e supervisor thread is gone"))?;
    let child = reply_rx
        .recv()
        .context("the e2e supervisor thread did not answer")?
        .with_context(|| format!("starting {name} ({program})"))?;
    Ok(Service {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
        detached: false,
    })
}

/// Starts `cmd` as a long-lived process that outlives this one: in a new
/// session (no controlling terminal, no signals from this process group), with
/// stdout and stderr appended to `log`. Dropping the returned [`Service`] does
/// not stop it; [`Service::kill`] still does.
#[allow(unsafe_code)]
pub fn start_detached(name: &str, mut cmd: Command, log: &Path) -> Result<Service> {
    redirect_to_log(&mut cmd, log)?;
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {name} ({program})"))?;
    Ok(Service {
        name: name.to_string(),
        child,
        log: log.to_path_buf(),
        detached: true,
    })
}

fn redirect_to_log(cmd: &mut Command, log: &Path) -> Result<()> {
    if let Some(parent) = log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening log {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    Ok(())
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_ok()
}

/// The last `lines` lines of a log file (reading at most its last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs `cmd` to completion, failing with its output when it exits non-zero.
pub fn run(cmd: &mut Command) -> Result<std::process::Output> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Starts a server on a free loopback port and waits until it listens.
///
/// [`crate::paths::free_port`] only says a port *was* free: a parallel test may
/// take it before the server binds. So when the server's log says the address
/// is in use, this picks another port and tries again (up to three times).
pub fn start_on_free_port(
    name: &str,
    log: &Path,
    timeout: Duration,
    mut command_for_port: impl FnMut(u16) -> Result<Command>,
) -> Result<(Service, u16)> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = crate::paths::free_port()?;
        // Only this attempt's lines count when looking for the bind error.
        let log_start = std::fs::metadata(log).map_or(0, |m| m.len());
        let mut service = start(name, command_for_port(port)?, log)?;
        match service.wait_for_port(port, timeout) {
            Ok(()) => return Ok((service, port)),
            Err(err) => {
                service.kill();
                let mut attempt_log = Vec::new();
                if let Ok(mut file) = File::open(log) {
                    let _ = file.seek(SeekFrom::Start(log_start));
                    let _ = file.read_to_end(&mut attempt_log);
                }
                let in_use = String::from_utf8_lossy(&attempt_log)
                    .to_ascii_lowercase()
                    .contains("address already in use");
                if !in_use || attempt == 3 {
                    return Err(err);
                }
            }
        }
    }
}
