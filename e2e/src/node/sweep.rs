//! Leaving nothing behind: what a node adds to the machine outside its own
//! directory (iptables chains, the CNI bridge, mounts, cgroups, a few fixed
//! directories of containerd and the kubelet, `ip_forward`) is recorded in a
//! baseline when it starts, and [`sweep`] undoes everything relative to that
//! baseline. The same sweep runs at teardown and, before a node starts, over
//! the remains of a node whose process was killed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// The kubelet's cgroup root, in every cgroup v1 hierarchy: every Pod's
/// processes live below it, so the sweep finds them all there.
pub(crate) const CGROUP_ROOT: &str = "ferroflux-node";

/// The CNI bridge.
pub(crate) const BRIDGE: &str = "ferroflux0";

/// Paths that containerd 1.6 and the kubelet use whatever their root
/// directories say (shim sockets, runc state, container log links, the
/// device-plugin socket, libcni's result cache); removed when the node made them.
const FIXED_PATHS: &[&str] = &[
    "/run/containerd",
    "/var/log/containers",
    "/var/log/pods",
    "/var/lib/kubelet",
    "/var/lib/cni",
];

/// The tables kube-proxy, the kubelet and the CNI plugins write to.
const TABLES: &[&str] = &["nat", "filter", "mangle"];

/// The machine as it was before the node started.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// `iptables`/`ip6tables` → table → chains that existed.
    chains: BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
    /// [`FIXED_PATHS`] that did not exist.
    absent: Vec<PathBuf>,
    /// `/proc/sys/net/ipv4/ip_forward` (the bridge plugin turns it on).
    ip_forward: String,
}

impl Baseline {
    /// Records the machine's state now.
    pub(crate) fn record() -> Self {
        let mut chains = BTreeMap::new();
        for tool in ["iptables", "ip6tables"] {
            let tables = TABLES
                .iter()
                .map(|table| (table.to_string(), list_chains(tool, table)))
                .collect();
            chains.insert(tool.to_string(), tables);
        }
        Self {
            chains,
            absent: FIXED_PATHS
                .iter()
                .map(PathBuf::from)
                .filter(|path| !path.exists())
                .collect(),
            ip_forward: std::fs::read_to_string(IP_FORWARD)
                .unwrap_or_default()
                .trim()
                .to_string(),
        }
    }

    fn path(root: &Path) -> PathBuf {
        root.join("baseline.json")
    }

    /// Saves the baseline in the node's directory (so that a later sweep can
    /// clean up after a node whose process died).
    pub(crate) fn save(&self, root: &Path) -> Result<()> {
        std::fs::create_dir_all(root)?;
        std::fs::write(Self::path(root), serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", Self::path(root).display()))
    }
}

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Undoes everything the node rooted at `root` did to the machine, as far as
/// its saved baseline says, then removes `root`. Best effort: every step
/// runs, and the failures are returned together.
pub(crate) fn sweep(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    let baseline: Baseline = std::fs::read(Baseline::path(root))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut failures = Vec::new();
    kill_node_processes(root);
    if let Err(err) = unmount_below(root) {
        failures.push(format!("{err:#}"));
    }
    for (tool, tables) in &baseline.chains {
        for (table, before) in tables {
            if let Err(err) = remove_new_chains(tool, table, before) {
                failures.push(format!("{err:#}"));
            }
        }
    }
    let _ = Command::new("ip")
        .args(["link", "delete", BRIDGE])
        .stderr(std::process::Stdio::null())
        .status();
    remove_cgroups();
    for path in &baseline.absent {
        if let Err(err) = remove_path(path) {
            failures.push(format!("{err:#}"));
        }
    }
    if !baseline.ip_forward.is_empty() {
        let _ = std::fs::write(IP_FORWARD, &baseline.ip_forward);
    }
    if let Err(err) = remove_path(root) {
        failures.push(format!("{err:#}"));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("cleaning up the node: {}", failures.join("; "))
    }
}

fn remove_path(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err).with_context(|| format!("removing {}", path.display())),
    }
}

/// SIGKILLs every process in the node's cgroups (containers) and every
/// process naming `root` in its arguments (containerd's shims, which outlive
/// containerd), until none is left.
#[allow(unsafe_code)]
pub(crate) fn kill_node_processes(root: &Path) {
    let needle = root.to_string_lossy().into_owned();
    let own = std::process::id();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut pids: BTreeSet<u32> = cgroup_dirs()
            .iter()
            .flat_map(|dir| procs_below(dir))
            .collect();
        pids.extend(processes_naming(&needle));
        pids.remove(&own);
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            if let Ok(raw) = i32::try_from(pid) {
                // SAFETY: kill has no memory effects; these processes are the node's.
                unsafe { libc::kill(raw, libc::SIGKILL) };
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Live processes with an argument containing `needle`.
fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| crate::cluster::detached::pid_alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|bytes| {
                bytes
                    .split(|&b| b == 0)
                    .any(|arg| String::from_utf8_lossy(arg).contains(needle))
            })
        })
        .collect()
}

/// `/sys/fs/cgroup/<hierarchy>/ferroflux-node` for every mounted hierarchy.
pub(crate) fn cgroup_dirs() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|entry| entry.path().join(CGROUP_ROOT))
        .filter(|dir| dir.is_dir())
        .collect()
}

/// The pids in `dir` and every cgroup below it.
fn procs_below(dir: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pids.extend(procs_below(&entry.path()));
            }
        }
    }
    pids
}

/// Removes the node's cgroups, deepest first (a cgroup goes with `rmdir`
/// once it has no processes and no children).
fn remove_cgroups() {
    fn remove(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    for dir in cgroup_dirs() {
        remove(&dir);
    }
}

/// Unmounts (lazily) every mount point at or below `root`, deepest first:
/// container root filesystems, Pod volumes, network namespaces.
#[allow(unsafe_code)]
fn unmount_below(root: &Path) -> Result<()> {
    let prefix = root.to_string_lossy().into_owned();
    for _ in 0..5 {
        let info = std::fs::read_to_string("/proc/self/mountinfo")
            .context("reading /proc/self/mountinfo")?;
        let mut points: Vec<String> = info
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .map(unescape_mount_point)
            .filter(|point| point == &prefix || point.starts_with(&format!("{prefix}/")))
            .collect();
        if points.is_empty() {
            return Ok(());
        }
        points.sort_by_key(|point| std::cmp::Reverse(point.len()));
        points.dedup();
        for point in points {
            let Ok(path) = std::ffi::CString::new(point) else {
                continue;
            };
            // SAFETY: path is a valid NUL-terminated string; umount2 reads it only.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
    }
    anyhow::bail!(
        "mounts below {} remain after five unmount rounds",
        root.display()
    )
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount_point(field: &str) -> String {
    let mut out = String::new();
    let mut chars = field.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&digits, 8) {
                Ok(byte) => out.push(char::from(byte)),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&digits);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The chains of `table` (`-S` prints `-N CHAIN` for user chains and `-P`
/// for built-in ones).
fn list_chains(tool: &str, table: &str) -> BTreeSet<String> {
    rules(tool, table)
        .iter()
        .filter_map(|rule| match rule.as_slice() {
            [flag, chain, ..] if flag == "-N" || flag == "-P" => Some(chain.clone()),
            _ => None,
        })
        .collect()
}

/// `tool -t table -S`, each line split into words as a shell would.
fn rules(tool: &str, table: &str) -> Vec<Vec<String>> {
    let Ok(output) = Command::new(tool).args(["-w", "-t", table, "-S"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(shell_words)
        .collect()
}

/// Removes the chains of `table` that are not in `before` (made by
/// kube-proxy, the kubelet and the CNI plugins), with every rule jumping to
/// them.
fn remove_new_chains(tool: &str, table: &str, before: &BTreeSet<String>) -> Result<()> {
    let current = rules(tool, table);
    let new: BTreeSet<String> = list_chains(tool, table)
        .into_iter()
        .filter(|chain| !before.contains(chain))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    for rule in &current {
        let [append, chain, spec @ ..] = rule.as_slice() else {
            continue;
        };
        if append != "-A" || new.contains(chain) {
            continue;
        }
        let target = spec
            .windows(2)
            .find(|pair| pair[0] == "-j" || pair[0] == "-g")
            .map(|pair| pair[1].as_str());
        if target.is_some_and(|target| new.contains(target)) {
            run_quietly(
                Command::new(tool)
                    .args(["-w", "-t", table, "-D", chain])
                    .args(spec),
            );
        }
    }
    for chain in &new {
        run_quietly(Command::new(tool).args(["-w", "-t", table, "-F", chain]));
    }
    for chain in &new {
        run_quietly(Command::new(tool).args(["-w", "-t", table, "-X", chain]));
    }
    let left: Vec<String> = list_chains(tool, table)
        .into_iter()
        .filter(|chain| !before.contains(chain))
        .collect();
    if left.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{tool} -t {table}: chains {left:?} could not be removed")
    }
}

fn run_quietly(cmd: &mut Command) {
    let _ = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Splits an `iptables -S` line into words: double quotes group, a
/// backslash escapes the next character (comments are printed that way).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                word.extend(chars.next());
                in_word = true;
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_lines_split_like_a_shell() {
        let line = r#"-A POSTROUTING -s 10.244.0.8/32 -m comment --comment "name: \"ferroflux-pods\" id: \"eb6c\"" -j CNI-35636b9c"#;
        assert_eq!(
            shell_words(line),
            [
                "-A",
                "POSTROUTING",
                "-s",
                "10.244.0.8/32",
                "-m",
                "comment",
                "--comment",
                r#"name: "ferroflux-pods" id: "eb6c""#,
                "-j",
                "CNI-35636b9c"
            ]
        );
        assert_eq!(
            shell_words(r#"-A X --comment """#),
            ["-A", "X", "--comment", ""]
        );
    }

    #[test]
    fn mount_points_are_unescaped() {
        assert_eq!(unescape_mount_point(r"/tmp/a\040b"), "/tmp/a b");
        assert_eq!(unescape_mount_point("/plain"), "/plain");
    }
}
