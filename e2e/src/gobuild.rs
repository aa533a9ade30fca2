//! etcd, kube-apiserver and kube-controller-manager, built from their Go modules.
//!
//! No registry the project can reach ships these binaries, so they are built
//! once per machine into [`paths::bin_dir`] under versioned names
//! (`kube-apiserver-v1.37.2`) and reused from there. Builds take a machine-wide
//! lock, so parallel test binaries wait for one build instead of racing.
//!
//! `k8s.io/kubernetes` cannot be `go install`ed: it requires its staging
//! modules at `v0.0.0` through `replace … => ./staging/…` lines, which Go
//! ignores in a dependency. The build therefore uses a small wrapper module that
//! requires `k8s.io/kubernetes` and replaces every staging module with its
//! published `v0.MINOR.PATCH` tag, the list being read from kubernetes' own
//! go.mod as served by the module proxy.

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::paths;
use crate::process::tail;

/// The Kubernetes release whose kube-apiserver and kube-controller-manager are built.
pub const KUBERNETES_VERSION: &str = "v1.37.2";

/// The etcd release that is built (kube-apiserver ≥ 1.31 needs etcd ≥ 3.5 with /readyz).
pub const ETCD_VERSION: &str = "v3.6.16";

/// The oldest Go that builds both modules: kubernetes v1.37's go.mod says `go 1.26.0`.
const MIN_GO: (u32, u32) = (1, 26);

/// Paths of the built control-plane binaries.
#[derive(Debug, Clone)]
pub struct ControlPlaneBinaries {
    /// The etcd binary.
    pub etcd: PathBuf,
    /// The kube-apiserver binary.
    pub kube_apiserver: PathBuf,
    /// The kube-controller-manager binary.
    pub kube_controller_manager: PathBuf,
}

/// Returns the control-plane binaries, building whichever are missing.
///
/// The first call on a machine takes minutes (the Go module download and
/// compile); later calls only check that the files exist.
pub fn control_plane_binaries() -> Result<ControlPlaneBinaries> {
    let binaries = ControlPlaneBinaries {
        etcd: binary_path("etcd", ETCD_VERSION),
        kube_apiserver: binary_path("kube-apiserver", KUBERNETES_VERSION),
        kube_controller_manager: binary_path("kube-controller-manager", KUBERNETES_VERSION),
    };
    let all = [
        &binaries.etcd,
        &binaries.kube_apiserver,
        &binaries.kube_controller_manager,
    ];
    if all.iter().all(|path| path.is_file()) {
        return Ok(binaries);
    }

    eprintln!(
        "control-plane binaries missing from {}; building them (or waiting for another process that is)",
        paths::bin_dir().display()
    );
    let _lock = paths::lock("gobuild").context("locking the Go build")?;
    // Another process may have finished the build while this one waited.
    if !binaries.etcd.is_file() {
        build_etcd(&binaries.etcd)?;
    }
    let kube_missing: Vec<(&str, &Path)> = [
        ("kube-apiserver", binaries.kube_apiserver.as_path()),
        (
            "kube-controller-manager",
            binaries.kube_controller_manager.as_path(),
        ),
    ]
    .into_iter()
    .filter(|(_, path)| !path.is_file())
    .collect();
    if !kube_missing.is_empty() {
        build_kubernetes(&kube_missing)?;
    }
    Ok(binaries)
}

/// Paths of the built worker-node binaries (see [`crate::node`]).
#[derive(Debug, Clone)]
pub struct NodeBinaries {
    /// The kubelet.
    pub kubelet: PathBuf,
    /// kube-proxy (iptables mode).
    pub kube_proxy: PathBuf,
    /// kube-scheduler: a node's Pods must be bound to it.
    pub kube_scheduler: PathBuf,
    /// CoreDNS, the cluster DNS.
    pub coredns: PathBuf,
}

/// Returns the worker-node binaries, building whichever are missing: the
/// kubelet, kube-proxy and kube-scheduler from the same wrapper module (and
/// under the same lock and log) as kube-apiserver, CoreDNS from its own module.
///
/// The kubelet is the same release as the apiserver: v1.37 still runs on
/// cgroup v1 when its configuration sets `failCgroupV1: false`.
pub fn node_binaries() -> Result<NodeBinaries> {
    let binaries = NodeBinaries {
        kubelet: binary_path("kubelet", KUBERNETES_VERSION),
        kube_proxy: binary_path("kube-proxy", KUBERNETES_VERSION),
        kube_scheduler: binary_path("kube-scheduler", KUBERNETES_VERSION),
        coredns: binary_path("coredns", COREDNS_VERSION),
    };
    let kube = [
        ("kubelet", binaries.kubelet.as_path()),
        ("kube-proxy", binaries.kube_proxy.as_path()),
        ("kube-scheduler", binaries.kube_scheduler.as_path()),
    ];
    if kube.iter().any(|(_, path)| !path.is_file()) {
        let _lock = paths::lock("gobuild").context("locking the Go build")?;
        let missing: Vec<(&str, &Path)> = kube
            .into_iter()
            .filter(|(_, path)| !path.is_file())
            .collect();
        if !missing.is_empty() {
            build_kubernetes(&missing)?;
        }
    }
    module_binary(&GoCommand {
        name: "coredns",
        module: "github.com/coredns/coredns",
        version: COREDNS_VERSION,
        package: "github.com/coredns/coredns",
    })?;
    Ok(binaries)
}

/// The CoreDNS release built as the node's cluster DNS.
pub const COREDNS_VERSION: &str = "v1.15.0";

/// Builds a one-file Go program of the harness's own (`main.go` = `source`,
/// standard library only) into a static binary, cached under a name holding
/// the hash of its source, so an edited program is rebuilt.
pub fn own_program(name: &str, source: &str) -> Result<PathBuf> {
    use sha2::Digest;
    let hash = hex::encode(sha2::Sha256::digest(source.as_bytes()));
    let version = &hash[..12];
    let target = binary_path(name, version);
    if target.is_file() {
        return Ok(target);
    }
    let _lock = paths::lock("gobuild").context("locking the Go build")?;
    if target.is_file() {
        return Ok(target);
    }
    let build = Build::new(
        &format!("{name} (own program)"),
        &format!("{name}-{version}"),
    )?;
    let dir = build_root().join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        format!("module ferroflux.local/{name}\n\n{}\n", go_directive()),
    )?;
    std::fs::write(dir.join("main.go"), source)?;
    // -s -w: no symbol table or DWARF, the image layer stays ~1.5 MiB.
    build.build(&dir, ".", "-s -w", &target)?;
    Ok(target)
}

/// The nats-server release built for the NATS notification tests.
pub const NATS_SERVER_VERSION: &str = "v2.15.3";

/// Returns the nats-server binary, building it from its Go module once per
/// machine (seconds once the modules are downloaded).
pub fn nats_server_binary() -> Result<PathBuf> {
    module_binary(&GoCommand {
        name: "nats-server",
        module: "github.com/nats-io/nats-server/v2",
        version: NATS_SERVER_VERSION,
        package: "github.com/nats-io/nats-server/v2",
    })
}

/// The versitygw release built for the Bucket tests: an Apache-2.0 S3 server
/// with a POSIX backend (a directory per bucket, a file per object).
pub const VERSITYGW_VERSION: &str = "v1.8.0";

/// Returns the versitygw binary, building it from its Go module once per
/// machine (about two minutes on 2 cores with a cold module cache).
pub fn versitygw_binary() -> Result<PathBuf> {
    module_binary(&GoCommand {
        name: "versitygw",
        module: "github.com/versity/versitygw",
        version: VERSITYGW_VERSION,
        package: "github.com/versity/versitygw/cmd/versitygw",
    })
}

/// A change to a Flux controller's go.mod that makes it build outside its
/// repository.
#[derive(Debug, Clone, Copy)]
pub enum GoModEdit {
    /// Drop this line (a `replace` of the controller's own API module by
    /// `./api`, which the module archive has but builds the API from the
    /// repository's tree rather than the published tag).
    Drop(&'static str),
    /// Replace this line with another (a fork the module proxy refuses by
    /// the upstream release it patches).
    Replace(&'static str, &'static str),
}

/// A Flux controller release built from its Go module for the swap tests
/// (Flux's controllers and ferroflux's taking turns on the same objects).
/// No Flux code enters the repository: only the module, its version and the
/// go.mod edits below.
#[derive(Debug, Clone, Copy)]
pub struct FluxController {
    /// The controller's name (`helm-controller`); the module is
    /// `github.com/fluxcd/<name>` and its main package is the module root.
    pub name: &'static str,
    /// The release tag.
    pub version: &'static str,
    /// The go.mod edits, applied in order; each line must be there, so a
    /// version bump whose go.mod changed fails loudly instead of building
    /// something else.
    pub edits: &'static [GoModEdit],
}

/// The Flux controllers the swap tests run: helm-controller and
/// kustomize-controller of the same Flux release (source API v1.9), both
/// built by the Go the control plane needs (their go.mod says `go 1.26.0`;
/// the v1.10 kustomize- and source-controller need Go 1.27).
pub const FLUX_CONTROLLERS: &[FluxController] = &[
    FluxController {
        name: "helm-controller",
        version: "v1.6.3",
        edits: &[
            GoModEdit::Drop("replace github.com/fluxcd/helm-controller/api => ./api"),
            // The fork is not on the module proxy (403); helm-controller
            // builds against the helm release it patches.
            GoModEdit::Replace(
                "replace helm.sh/helm/v4 => github.com/fluxcd/helm/v4 v4.2.4-flux.1",
                "replace helm.sh/helm/v4 => helm.sh/helm/v4 v4.2.4",
            ),
        ],
    },
    FluxController {
        name: "kustomize-controller",
        version: "v1.9.0",
        edits: &[GoModEdit::Drop(
            "replace github.com/fluxcd/kustomize-controller/api => ./api",
        )],
    },
];

/// Returns Flux's controller `name` (one of [`FLUX_CONTROLLERS`]), building it
/// from its module once per machine (about five minutes on 2 cores) as
/// `flux-<name>-<version>` in [`paths::bin_dir`].
pub fn flux_controller(name: &str) -> Result<PathBuf> {
    let Some(controller) = FLUX_CONTROLLERS.iter().find(|c| c.name == name) else {
        bail!("no Flux controller {name:?} in gobuild::FLUX_CONTROLLERS");
    };
    let binary = format!("flux-{}", controller.name);
    let target = binary_path(&binary, controller.version);
    if target.is_file() {
        return Ok(target);
    }
    let _lock = paths::lock("gobuild").context("locking the Go build")?;
    if target.is_file() {
        return Ok(target);
    }
    let version = controller.version;
    let mut build = Build::new(
        &format!("Flux {name} {version}"),
        &format!("{binary}-{version}"),
    )?;
    let dir = build_root().join(format!("{binary}-{version}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the old tree {}", dir.display()))?;
    }
    std::fs::create_dir_all(build_root())?;
    let module = format!("github.com/fluxcd/{name}");
    let source = build.download(&build_root(), &module, version)?;
    // The module cache is read-only: a writable copy takes the edits.
    let copied = Command::new("cp")
        .args(["-R", "--no-preserve=mode,ownership"])
        .arg(&source.dir)
        .arg(&dir)
        .status()
        .context("running cp")?;
    if !copied.success() {
        bail!(
            "copying {} to {} failed: {copied}",
            source.dir,
            dir.display()
        );
    }
    let go_mod = dir.join("go.mod");
    let text = std::fs::read_to_string(&go_mod)?;
    std::fs::write(&go_mod, edit_go_mod(&text, controller.edits)?)?;
    // The edits leave go.sum short of the replacements' sums: `-mod=mod`
    // lets the build add them (checked against the checksum database).
    build.goflags = Some("-mod=mod");
    build.build(&dir, ".", "", &target)?;
    Ok(target)
}

/// `go_mod` with `edits` applied, each to a whole (trimmed) line.
fn edit_go_mod(go_mod: &str, edits: &[GoModEdit]) -> Result<String> {
    let mut lines: Vec<Option<String>> = go_mod.lines().map(|l| Some(l.to_string())).collect();
    for edit in edits {
        let (old, new) = match edit {
            GoModEdit::Drop(old) => (*old, None),
            GoModEdit::Replace(old, new) => (*old, Some(new.to_string())),
        };
        let Some(line) = lines
            .iter_mut()
            .find(|line| line.as_deref().map(str::trim) == Some(old))
        else {
            bail!("go.mod has no line {old:?}: update gobuild::FLUX_CONTROLLERS for this version");
        };
        *line = new;
    }
    let mut text: String = lines.into_iter().flatten().collect::<Vec<_>>().join("\n");
    text.push('\n');
    Ok(text)
}

/// A command built from a Go module with `go build`.
struct GoCommand<'a> {
    /// Name of the binary (and of its wrapper module).
    name: &'a str,
    /// The module that holds the command.
    module: &'a str,
    /// The module version.
    version: &'a str,
    /// The command's main package.
    package: &'a str,
}

/// The cached binary of `command`, built under the machine-wide build lock
/// when missing.
fn module_binary(command: &GoCommand) -> Result<PathBuf> {
    let GoCommand {
        name,
        module,
        version,
        package,
    } = command;
    let target = binary_path(name, version);
    if target.is_file() {
        return Ok(target);
    }
    let _lock = paths::lock("gobuild").context("locking the Go build")?;
    // Another process may have finished the build while this one waited.
    if target.is_file() {
        return Ok(target);
    }
    let build = Build::new(&format!("{name} {version}"), &format!("{name}-{version}"))?;
    let dir = build_root().join(format!("{name}-{version}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        format!(
            "module ferroflux.local/{name}\n\n{}\n\nrequire {module} {version}\n",
            go_directive()
        ),
    )?;
    // The command's main package cannot be imported: a tools file pins its
    // dependencies for `go mod tidy` without adding a package that builds.
    std::fs::write(
        dir.join("tools.go"),
        format!("//go:build tools\n\npackage tools\n\nimport _ \"{package}\"\n"),
    )?;
    build.resolve_modules(&dir)?;
    build.build(&dir, package, "", &target)?;
    Ok(target)
}

/// Where the binary `name` at `version` is cached.
pub fn binary_path(name: &str, version: &str) -> PathBuf {
    paths::bin_dir().join(format!("{name}-{version}"))
}

/// The directory holding the wrapper modules and build logs.
fn build_root() -> PathBuf {
    paths::cache_dir().join("gobuild")
}

/// Go's default install location, used when `go` is not on `PATH`.
const DEFAULT_GO: &str = "/usr/local/go/bin/go";

/// The `go` command to use, checked to be new enough.
pub(crate) fn go_command() -> Result<PathBuf> {
    let go = locate_go(
        std::env::var_os("FERROFLUX_GO"),
        std::env::var_os("PATH"),
        Path::new(DEFAULT_GO),
    )?;
    let output = Command::new(&go)
        .args(["env", "GOVERSION"])
        .output()
        .with_context(|| format!("running {} env GOVERSION", go.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    match parse_go_version(&version) {
        Some(found) if found >= MIN_GO => Ok(go),
        _ => bail!(
            "{} is {version:?}, too old to build kube-apiserver {KUBERNETES_VERSION}: install Go ≥ {}.{} \
             from https://go.dev/dl/ (or point FERROFLUX_GO at a newer go binary)",
            go.display(),
            MIN_GO.0,
            MIN_GO.1
        ),
    }
}

/// `$FERROFLUX_GO` when set (and then only it), else `go` on `path`, else `default`.
fn locate_go(
    ferroflux_go: Option<OsString>,
    path: Option<OsString>,
    default: &Path,
) -> Result<PathBuf> {
    if let Some(go) = ferroflux_go.filter(|go| !go.is_empty()) {
        let go = PathBuf::from(go);
        if !go.is_file() {
            bail!(
                "FERROFLUX_GO={} is not a file: point it at a go binary (Go ≥ {}.{}) or unset it",
                go.display(),
                MIN_GO.0,
                MIN_GO.1
            );
        }
        return Ok(go);
    }
    let on_path = path
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("go"))
        .find(|go| go.is_file());
    match on_path {
        Some(go) => Ok(go),
        None if default.is_file() => Ok(default.to_path_buf()),
        None => bail!(
            "Go is not installed (no `go` on PATH or at {}): install Go ≥ {}.{} from \
             https://go.dev/dl/ (or set FERROFLUX_GO to a go binary) to build etcd and kube-apiserver",
            default.display(),
            MIN_GO.0,
            MIN_GO.1
        ),
    }
}

/// `go1.26.8` → `(1, 26)`.
fn parse_go_version(version: &str) -> Option<(u32, u32)> {
    let rest = version.strip_prefix("go")?;
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// One build: its log file and the `go` it uses.
struct Build {
    go: PathBuf,
    log: PathBuf,
    what: String,
    /// `GOFLAGS` for every `go` command of this build (none by default).
    goflags: Option<&'static str>,
}

impl Build {
    fn new(what: &str, log_name: &str) -> Result<Self> {
        let go = go_command()?;
        let log = build_root().join(format!("{log_name}.log"));
        std::fs::create_dir_all(build_root())?;
        std::fs::write(&log, "")
            .with_context(|| format!("creating build log {}", log.display()))?;
        eprintln!("building {what} (once per machine; log: {})", log.display());
        Ok(Self {
            go,
            log,
            what: what.to_string(),
            goflags: None,
        })
    }

    /// Runs `go args…` in `dir` with all output appended to the log.
    fn go(&self, dir: &Path, args: &[&str]) -> Result<()> {
        let out = File::options()
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let err = out.try_clone()?;
        let mut cmd = Command::new(&self.go);
        cmd.args(args)
            .current_dir(dir)
            .env("CGO_ENABLED", "0")
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        // The module files written here are complete; a vendor or readonly
        // setting from the user's GOFLAGS would only break the build.
        match self.goflags {
            Some(flags) => cmd.env("GOFLAGS", flags),
            None => cmd.env_remove("GOFLAGS"),
        };
        let status = cmd
            .status()
            .with_context(|| format!("running {}", self.go.display()))?;
        if !status.success() {
            bail!(
                "building {} failed: `go {}` exited with {status}; last lines of {}:\n{}",
                self.what,
                args.join(" "),
                self.log.display(),
                tail(&self.log, 25)
            );
        }
        Ok(())
    }

    /// `go mod tidy`: downloads (on a cold machine) and pins every module the build needs.
    fn resolve_modules(&self, dir: &Path) -> Result<()> {
        let started = Instant::now();
        self.go(dir, &["mod", "tidy"])?;
        eprintln!(
            "resolved the modules of {} in {:.0?}",
            self.what,
            started.elapsed()
        );
        Ok(())
    }

    /// `go mod download -json module@version` run in `dir`: the module's
    /// source directory and go.mod in the module cache. Its JSON output is
    /// kept beside the build log.
    fn download(&self, dir: &Path, module: &str, version: &str) -> Result<ModuleDownload> {
        let name = module.rsplit('/').next().unwrap_or(module);
        let record = build_root().join(format!("{name}-{version}.download.json"));
        let output = Command::new(&self.go)
            .args(["mod", "download", "-json", &format!("{module}@{version}")])
            .current_dir(dir)
            .env_remove("GOFLAGS")
            .output()
            .context("running go mod download")?;
        std::fs::write(&record, &output.stdout)?;
        let info: ModuleDownload = serde_json::from_slice(&output.stdout).with_context(|| {
            format!(
                "go mod download {module}@{version} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            )
        })?;
        if let Some(error) = info.error {
            bail!("go mod download {module}@{version} failed: {error}");
        }
        Ok(info)
    }

    /// `go build` of `package` into `target`, atomically.
    fn build(&self, dir: &Path, package: &str, ldflags: &str, target: &Path) -> Result<()> {
        let started = Instant::now();
        std::fs::create_dir_all(paths::bin_dir())?;
        let mut partial = target.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        let partial_str = partial.to_string_lossy();
        let mut args = vec!["build", "-trimpath"];
        if !ldflags.is_empty() {
            args.extend(["-ldflags", ldflags]);
        }
        args.extend(["-o", &partial_str, package]);
        self.go(dir, &args)?;
        std::fs::rename(&partial, target)
            .with_context(|| format!("moving {} into place", partial.display()))?;
        eprintln!("built {} in {:.0?}", target.display(), started.elapsed());
        Ok(())
    }
}

fn build_etcd(target: &Path) -> Result<()> {
    let build = Build::new(
        &format!("etcd {ETCD_VERSION}"),
        &format!("etcd-{ETCD_VERSION}"),
    )?;
    let dir = build_root().join(format!("etcd-{ETCD_VERSION}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        format!(
            "module ferroflux.local/etcd\n\n{}\n\nrequire go.etcd.io/etcd/server/v3 {ETCD_VERSION}\n",
            go_directive()
        ),
    )?;
    std::fs::write(
        dir.join("main.go"),
        "// etcd's own main package, which is not importable, only calls etcdmain.Main.\n\
         package main\n\n\
         import (\n\t\"os\"\n\n\t\"go.etcd.io/etcd/server/v3/etcdmain\"\n)\n\n\
         func main() { etcdmain.Main(os.Args) }\n",
    )?;
    build.resolve_modules(&dir)?;
    build.build(&dir, ".", "", target)
}

/// The wrapper modules' `go` line. Without one Go treats a module as
/// pre-1.17 and loads the whole unpruned module graph: for etcd that is ~5,600
/// go.mod downloads and 6.5 minutes on a cold machine instead of ~180 and 17 s,
/// and it selects newer dependency versions than etcd itself was released with.
fn go_directive() -> String {
    format!("go {}.{}.0", MIN_GO.0, MIN_GO.1)
}

/// The staging modules replaced in kubernetes' own go.mod
/// (`k8s.io/X => ./staging/src/k8s.io/X`).
fn staging_modules(go_mod: &str) -> Vec<String> {
    go_mod
        .lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("replace").trim();
            let (module, target) = line.split_once("=>")?;
            let module = module.trim();
            let target = target.trim();
            (target == format!("./staging/src/{module}")).then(|| module.to_string())
        })
        .collect()
}

/// The wrapper module's go.mod: kubernetes plus one replace per staging module.
fn kubernetes_go_mod(staging: &[String]) -> Result<String> {
    let staging_version = staging_version(KUBERNETES_VERSION)?;
    let mut text = format!(
        "module ferroflux.local/kubernetes\n\n{}\n\nrequire k8s.io/kubernetes {KUBERNETES_VERSION}\n\nreplace (\n",
        go_directive()
    );
    for module in staging {
        text.push_str(&format!("\t{module} => {module} {staging_version}\n"));
    }
    text.push_str(")\n");
    Ok(text)
}

/// `v1.37.2` → `v0.37.2`, the tag of the staging modules of that release.
fn staging_version(version: &str) -> Result<String> {
    match version.strip_prefix("v1.") {
        Some(rest) => Ok(format!("v0.{rest}")),
        None => bail!("unexpected Kubernetes version {version:?} (want v1.MINOR.PATCH)"),
    }
}

/// `-X` flags that make `--version` and the API's /version report the release.
fn kubernetes_ldflags() -> String {
    let minor = KUBERNETES_VERSION.split('.').nth(1).unwrap_or_default();
    [
        "k8s.io/component-base/version",
        "k8s.io/client-go/pkg/version",
    ]
    .iter()
    .flat_map(|package| {
        [
            format!("-X {package}.gitVersion={KUBERNETES_VERSION}"),
            format!("-X {package}.gitMajor=1"),
            format!("-X {package}.gitMinor={minor}"),
            format!("-X {package}.gitTreeState=clean"),
        ]
    })
    .collect::<Vec<_>>()
    .join(" ")
}

fn build_kubernetes(missing: &[(&str, &Path)]) -> Result<()> {
    let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
    let build = Build::new(
        &format!("{} {KUBERNETES_VERSION}", names.join(" and ")),
        &format!("kubernetes-{KUBERNETES_VERSION}"),
    )?;
    let dir = build_root().join(format!("kubernetes-{KUBERNETES_VERSION}"));
    std::fs::create_dir_all(&dir)?;

    // Read the staging list from the exact go.mod of this release.
    let info = build.download(&dir, "k8s.io/kubernetes", KUBERNETES_VERSION)?;
    let upstream = std::fs::read_to_string(&info.go_mod)
        .with_context(|| format!("reading {}", info.go_mod))?;
    let staging = staging_modules(&upstream);
    if staging.is_empty() {
        bail!(
            "no staging modules found in {} (k8s.io/kubernetes@{KUBERNETES_VERSION}'s go.mod)",
            info.go_mod
        );
    }

    std::fs::write(dir.join("go.mod"), kubernetes_go_mod(&staging)?)?;
    let imports: String = names
        .iter()
        .map(|name| format!("\t_ \"k8s.io/kubernetes/cmd/{name}\"\n"))
        .collect();
    // `go mod tidy` reads files under any build tag, so this pins the commands'
    // dependencies without adding a package that builds.
    std::fs::write(
        dir.join("tools.go"),
        format!("//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"),
    )?;
    build.resolve_modules(&dir)?;
    let ldflags = kubernetes_ldflags();
    for (name, target) in missing {
        build.build(
            &dir,
            &format!("k8s.io/kubernetes/cmd/{name}"),
            &ldflags,
            target,
        )?;
    }
    Ok(())
}

/// The part of `go mod download -json` output used here.
#[derive(serde::Deserialize)]
struct ModuleDownload {
    #[serde(rename = "GoMod", default)]
    go_mod: String,
    /// The extracted module source.
    #[serde(rename = "Dir", default)]
    dir: String,
    #[serde(rename = "Error")]
    error: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_go_says_how_to_get_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = locate_go(
            None,
            Some(dir.path().as_os_str().to_owned()),
            &dir.path().join("absent"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("Go is not installed"), "{err}");
        assert!(
            err.contains("install Go ≥ 1.26 from https://go.dev/dl/"),
            "{err}"
        );

        let err = locate_go(Some("/nonexistent/go".into()), None, Path::new("/x"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("FERROFLUX_GO=/nonexistent/go is not a file"),
            "{err}"
        );
    }

    #[test]
    fn go_is_found_on_path_first() {
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        std::fs::write(&go, "").unwrap();
        let found = locate_go(
            None,
            Some(dir.path().as_os_str().to_owned()),
            Path::new("/nonexistent"),
        )
        .unwrap();
        assert_eq!(found, go);
    }

    #[test]
    fn go_mod_edits_apply_to_whole_lines_or_fail() {
        let go_mod =
            "module m\n\nreplace a => ./api\n\nreplace h => fork v1\nrequire (\n\tx v1\n)\n";
        let edits = [
            GoModEdit::Drop("replace a => ./api"),
            GoModEdit::Replace("replace h => fork v1", "replace h => h v1"),
        ];
        assert_eq!(
            edit_go_mod(go_mod, &edits).unwrap(),
            "module m\n\n\nreplace h => h v1\nrequire (\n\tx v1\n)\n"
        );
        let err = edit_go_mod("module m\n", &edits[..1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("no line \"replace a => ./api\""), "{err}");
    }

    #[test]
    fn go_versions_parse() {
        assert_eq!(parse_go_version("go1.26.8"), Some((1, 26)));
        assert_eq!(parse_go_version("go1.25rc1"), Some((1, 25)));
        assert_eq!(parse_go_version("devel"), None);
    }

    #[test]
    fn staging_modules_come_from_replace_lines() {
        let go_mod = "module k8s.io/kubernetes\n\nreplace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n\
                      \tk8s.io/client-go => ./staging/src/k8s.io/client-go\n\
                      \tgithub.com/x/y => github.com/x/y v1.0.0\n)\n\
                      replace k8s.io/kms => ./staging/src/k8s.io/kms\n";
        assert_eq!(
            staging_modules(go_mod),
            ["k8s.io/api", "k8s.io/client-go", "k8s.io/kms"]
        );
    }

    #[test]
    fn wrapper_go_mod_replaces_with_published_tags() {
        let text = kubernetes_go_mod(&["k8s.io/api".to_string()]).unwrap();
        assert!(text.contains("require k8s.io/kubernetes v1.37.2\n"));
        assert!(text.contains("\ngo 1.26.0\n"), "{text}");
        assert!(text.contains("\tk8s.io/api => k8s.io/api v0.37.2\n"));
    }

    #[test]
    fn ldflags_set_version_in_both_packages() {
        let flags = kubernetes_ldflags();
        assert!(flags.contains("-X k8s.io/component-base/version.gitVersion=v1.37.2"));
        assert!(flags.contains("-X k8s.io/client-go/pkg/version.gitMinor=37"));
    }
}
