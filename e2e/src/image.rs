//! The container image the Helm chart runs (`cargo xtask image`), built
//! without a container engine; a library here so that tests of every crate
//! can build and push it.
//!
//! One image holds the five controllers, each a static musl binary in
//! `/usr/local/bin` (the chart's Deployments pick theirs with `command`),
//! and what they run: `helm` (helm-controller), `git` with its HTTP(S)
//! helper (image-automation-controller pushes with the git CLI), `ssh` and
//! `ssh-keygen` (Git over SSH, passphrase-protected keys) and `/bin/sh`
//! (git and gix run `core.sshCommand` through the shell, as Git does). One
//! image rather than five: the controllers would share every layer but
//! their own binary anyway, and a single tag is simpler to pin, mirror and
//! roll.
//!
//! The layers are tar + gzip written here, reproducibly (sorted entries,
//! owner root, mtime = `SOURCE_DATE_EPOCH` or the HEAD commit's time), in
//! order of how often they change:
//! 1. `base`: `/etc/passwd` and `/etc/group` (user 65534 `nobody`, which
//!    `ssh` must find), `/etc/nsswitch.conf`, Debian's CA bundle, `/tmp`
//!    and `/data` (volumes: the root file system may be read-only), the
//!    merged-/usr links;
//! 2. `tools`: helm (static), git, ssh, ssh-keygen and dash from this Debian
//!    host with exactly the shared libraries `ldd` lists and the dynamic
//!    loader, plus the Debian copyright files of their packages;
//! 3. `controllers`: the five binaries, stripped.
//!
//! [`Image::write_layout`] writes it as an OCI image layout and
//! [`Image::push`] pushes it to a registry over the distribution API.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::registry::{OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, RegistryClient, sha256_digest};
use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};

/// The controller binaries in the image, each the binary of the package of
/// the same name.
pub const CONTROLLERS: [&str; 5] = [
    "source-controller",
    "kustomize-controller",
    "helm-controller",
    "image-automation-controller",
    "notification-controller",
];

/// The Rust target of the controller binaries: static, so the image needs
/// no C library for them.
pub const TARGET: &str = "x86_64-unknown-linux-musl";

/// The user the image runs as (`nobody`), as Flux's images do.
pub const USER: &str = "65534:65534";

/// Where the controllers and helm are.
pub const BIN_DIR: &str = "usr/local/bin";

/// Where the dynamic loader and the shared libraries of the tools are.
const LIB_DIR: &str = "usr/lib/x86_64-linux-gnu";

/// The CA bundle in the image (Debian's path, which git's libcurl also reads).
pub const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// The dynamically linked tools taken from this Debian host: (path on the
/// host, path in the image). `git` is the copy in git's exec path, which git
/// runs its builtins from; `/usr/bin/git` links to it.
const HOST_TOOLS: &[(&str, &str)] = &[
    ("/usr/lib/git-core/git", "usr/lib/git-core/git"),
    (
        "/usr/lib/git-core/git-remote-http",
        "usr/lib/git-core/git-remote-http",
    ),
    ("/usr/bin/ssh", "usr/bin/ssh"),
    ("/usr/bin/ssh-keygen", "usr/bin/ssh-keygen"),
    ("/usr/bin/dash", "usr/bin/dash"),
];

/// Links in the tools layer: (path, target).
const TOOL_LINKS: &[(&str, &str)] = &[
    ("usr/bin/git", "../lib/git-core/git"),
    ("usr/lib/git-core/git-remote-https", "git-remote-http"),
    ("usr/bin/sh", "dash"),
    (
        "usr/lib64/ld-linux-x86-64.so.2",
        "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
    ),
];

/// One layer: its gzip blob and what identifies its content.
#[derive(Debug)]
pub struct Layer {
    /// What the layer holds (the image history's `created_by`).
    pub what: &'static str,
    /// The gzip-compressed tar.
    pub blob: Vec<u8>,
    /// `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
}

/// A built image: config, layers and the manifest naming them.
#[derive(Debug)]
pub struct Image {
    /// The image config JSON.
    pub config: Vec<u8>,
    /// The layers, base first.
    pub layers: Vec<Layer>,
    /// The OCI image manifest JSON.
    pub manifest: Vec<u8>,
}

impl Image {
    /// The manifest's digest, which names the image.
    pub fn digest(&self) -> String {
        sha256_digest(&self.manifest)
    }

    /// What a pull transfers: config and compressed layers.
    pub fn compressed_size(&self) -> u64 {
        self.config.len() as u64 + self.layers.iter().map(|l| l.blob.len() as u64).sum::<u64>()
    }

    /// The layers' uncompressed size, about what the image takes unpacked.
    pub fn uncompressed_size(&self) -> u64 {
        self.layers.iter().map(|l| l.tar_size).sum()
    }

    /// Sizes per layer and in total, for people and reports.
    pub fn report(&self) -> String {
        let mut lines = vec![format!("image {}", self.digest())];
        for layer in &self.layers {
            lines.push(format!(
                "  layer {:<12} {:>10} compressed, {:>10} uncompressed",
                layer.what,
                mib(layer.blob.len() as u64),
                mib(layer.tar_size)
            ));
        }
        lines.push(format!(
            "  total              {:>10} compressed, {:>10} uncompressed",
            mib(self.compressed_size()),
            mib(self.uncompressed_size())
        ));
        lines.join("\n")
    }

    /// Writes an OCI image layout (`oci-layout`, `index.json`, `blobs/`)
    /// to `dir`, the index naming the manifest as `tag`; the directory is
    /// replaced.
    pub fn write_layout(&self, dir: &Path, tag: &str) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
        }
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
        let blob_list = std::iter::once(&self.config)
            .chain(self.layers.iter().map(|l| &l.blob))
            .chain(std::iter::once(&self.manifest));
        for blob in blob_list {
            let digest = sha256_digest(blob);
            let hex = digest.trim_start_matches("sha256:");
            std::fs::write(blobs.join(hex), blob)?;
        }
        std::fs::write(
            dir.join("oci-layout"),
            json!({"imageLayoutVersion": "1.0.0"}).to_string(),
        )?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": OCI_MANIFEST,
                "digest": self.digest(),
                "size": self.manifest.len(),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        });
        std::fs::write(dir.join("index.json"), serde_json::to_vec_pretty(&index)?)?;
        Ok(())
    }

    /// Pushes config, layers and manifest to `repository:tag` of `registry`;
    /// returns the manifest digest.
    pub fn push(&self, registry: &RegistryClient, repository: &str, tag: &str) -> Result<String> {
        for blob in std::iter::once(&self.config).chain(self.layers.iter().map(|l| &l.blob)) {
            registry.push_blob(repository, blob)?;
        }
        registry.push_manifest(repository, tag, OCI_MANIFEST, &self.manifest)
    }
}

/// Builds the controllers with `profile` for [`TARGET`] and assembles the image.
pub fn build(profile: &str) -> Result<Image> {
    let binaries = build_controllers(profile)?;
    let helm = crate::packages::helm()?;
    let epoch = source_date_epoch();
    let layers = std::thread::scope(|scope| -> Result<Vec<Layer>> {
        let base = scope.spawn(|| Layer::of("base", base_entries()?, epoch));
        let tools = scope.spawn(|| Layer::of("tools", tool_entries(&helm)?, epoch));
        let controllers =
            scope.spawn(|| Layer::of("controllers", controller_entries(&binaries)?, epoch));
        [base, tools, controllers]
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| bail!("a layer's thread panicked"))
            })
            .collect()
    })?;
    assemble(layers, epoch)
}

/// The image config and manifest over `layers`.
fn assemble(layers: Vec<Layer>, epoch: i64) -> Result<Image> {
    let created = jiff::Timestamp::from_second(epoch)
        .context("SOURCE_DATE_EPOCH out of range")?
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "User": USER,
            "Env": [
                format!("PATH=/{BIN_DIR}:/usr/bin"),
                // ssh, git and helm look for their files under $HOME: the
                // writable /tmp volume, not the read-only root.
                "HOME=/tmp",
                format!("SSL_CERT_FILE=/{CA_BUNDLE}"),
            ],
            "WorkingDir": "/tmp",
            "Volumes": {"/tmp": {}, "/data": {}},
            "Labels": labels(&created),
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        },
        "history": layers.iter().map(|l| json!({
            "created": created,
            "created_by": format!("cargo xtask image: {}", l.what),
        })).collect::<Vec<_>>(),
    });
    let config = serde_json::to_vec(&config)?;
    let descriptor = |media_type: &str, bytes: &[u8]| json!({"mediaType": media_type, "digest": sha256_digest(bytes), "size": bytes.len()});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, &config),
        "layers": layers.iter().map(|l| descriptor(OCI_LAYER_GZIP, &l.blob)).collect::<Vec<_>>(),
    });
    Ok(Image {
        config,
        layers,
        manifest: serde_json::to_vec(&manifest)?,
    })
}

/// The `org.opencontainers.image.*` labels.
fn labels(created: &str) -> Value {
    json!({
        "org.opencontainers.image.title": "ferroflux",
        "org.opencontainers.image.description":
            "ferroflux controllers (source, kustomize, helm, image-automation, notification) with helm and git",
        "org.opencontainers.image.version": env!("CARGO_PKG_VERSION"),
        "org.opencontainers.image.revision": git_output(&["rev-parse", "HEAD"]).unwrap_or_default(),
        "org.opencontainers.image.source": env!("CARGO_PKG_REPOSITORY"),
        "org.opencontainers.image.licenses": env!("CARGO_PKG_LICENSE"),
        "org.opencontainers.image.created": created,
    })
}

/// The workspace root (this crate lives one level below it).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// `SOURCE_DATE_EPOCH` when set (reproducible builds' convention), else the
/// HEAD commit's time, else 0.
fn source_date_epoch() -> i64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git_output(&["log", "-1", "--format=%ct"]))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn git_output(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(workspace_root())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Builds the five controllers for [`TARGET`] with `profile`; returns
/// (name, path) of each binary.
pub fn build_controllers(profile: &str) -> Result<Vec<(&'static str, PathBuf)>> {
    ensure_musl_gcc()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--locked",
            "--profile",
            profile,
            "--target",
            TARGET,
        ])
        .current_dir(workspace_root());
    for controller in CONTROLLERS {
        command.args(["-p", controller, "--bin", controller]);
    }
    eprintln!("==> cargo build --profile {profile} --target {TARGET} (the five controllers)");
    let status = command.status().context("running cargo build")?;
    ensure!(
        status.success(),
        "building the controllers failed ({status})"
    );
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from);
    // cargo names the output directory of the built-in profiles after
    // their old names.
    let profile_dir = match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let dir = target_dir.join(TARGET).join(profile_dir);
    CONTROLLERS
        .iter()
        .map(|name| {
            let path = dir.join(name);
            ensure!(path.is_file(), "{} missing after the build", path.display());
            Ok((*name, path))
        })
        .collect()
}

/// aws-lc-sys compiles C for the musl target with `musl-gcc` (Debian's
/// musl-tools), installed here when missing and running as root.
fn ensure_musl_gcc() -> Result<()> {
    let found = Command::new("musl-gcc").arg("--version").output().is_ok();
    if found {
        return Ok(());
    }
    if !crate::packages::is_root() {
        bail!(
            "musl-gcc is missing; install it with:\n  sudo apt-get install -y --no-install-recommends musl-tools"
        );
    }
    let _lock = crate::paths::lock("apt")?;
    crate::process::run(
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "musl-tools"])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
    .context("apt-get install musl-tools")?;
    Ok(())
}

/// A file-system entry of a layer.
#[derive(Clone, Debug)]
enum Entry {
    Dir { mode: u32, owner: u64 },
    File { mode: u32, content: Vec<u8> },
    Link { target: String },
}

/// Entries by path (relative, no leading `/`), so a layer's tar is sorted.
type Entries = BTreeMap<String, Entry>;

fn file(mode: u32, content: impl Into<Vec<u8>>) -> Entry {
    Entry::File {
        mode,
        content: content.into(),
    }
}

fn host_file(path: &Path, mode: u32) -> Result<Entry> {
    let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(file(mode, content))
}

fn link(target: &str) -> Entry {
    Entry::Link {
        target: target.to_string(),
    }
}

/// `/etc` basics, the CA bundle, the volume mount points and Debian's
/// merged-/usr links (so `/lib64/ld-linux-x86-64.so.2`, the loader the
/// tools name, resolves).
fn base_entries() -> Result<Entries> {
    let mut entries = Entries::new();
    entries.insert(
        "etc/passwd".into(),
        file(
            0o644,
            "root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n",
        ),
    );
    entries.insert(
        "etc/group".into(),
        file(0o644, "root:x:0:\nnogroup:x:65534:\n"),
    );
    // /etc/hosts before DNS (glibc's default without this file is the other
    // way round); Kubernetes mounts both /etc/hosts and /etc/resolv.conf.
    entries.insert(
        "etc/nsswitch.conf".into(),
        file(0o644, "passwd: files\ngroup: files\nhosts: files dns\n"),
    );
    entries.insert(
        CA_BUNDLE.into(),
        host_file(&Path::new("/").join(CA_BUNDLE), 0o644)
            .context("the CA bundle (Debian's ca-certificates)")?,
    );
    entries.insert(
        "tmp".into(),
        Entry::Dir {
            mode: 0o1777,
            owner: 0,
        },
    );
    entries.insert(
        "data".into(),
        Entry::Dir {
            mode: 0o755,
            owner: 65534,
        },
    );
    for (path, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        entries.insert(path.into(), link(target));
    }
    Ok(entries)
}

/// helm, and git, ssh, ssh-keygen and dash from this host with the shared
/// libraries and loader they need, and their packages' copyright files.
fn tool_entries(helm: &Path) -> Result<Entries> {
    crate::packages::ensure_debian_packages()?;
    let mut entries = Entries::new();
    entries.insert(format!("{BIN_DIR}/helm"), host_file(helm, 0o755)?);
    let mut host_paths = BTreeSet::new();
    for (host, image) in HOST_TOOLS {
        entries.insert((*image).to_string(), host_file(Path::new(host), 0o755)?);
        host_paths.insert((*host).to_string());
        for (soname, path) in shared_libraries(Path::new(host))? {
            entries.insert(format!("{LIB_DIR}/{soname}"), host_file(&path, 0o755)?);
            host_paths.insert(path.display().to_string());
        }
    }
    for (path, target) in TOOL_LINKS {
        entries.insert((*path).to_string(), link(target));
    }
    for package in owning_packages(&host_paths)? {
        let copyright = format!("usr/share/doc/{package}/copyright");
        entries.insert(
            copyright.clone(),
            host_file(&Path::new("/").join(&copyright), 0o644)?,
        );
    }
    Ok(entries)
}

/// The shared libraries `binary` loads, as `ldd` resolves them: (the name
/// it asks for, the file on this host), the dynamic loader included under
/// its own name.
fn shared_libraries(binary: &Path) -> Result<Vec<(String, PathBuf)>> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .with_context(|| format!("running ldd {}", binary.display()))?;
    ensure!(
        output.status.success(),
        "ldd {} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let mut libraries = Vec::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let line = line.trim();
        if line.contains("not found") {
            bail!("{}: {line}", binary.display());
        }
        // `libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x…)`, or the
        // loader as `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(" (").next().unwrap_or_default(),
            None if line.starts_with('/') => line.split(" (").next().unwrap_or_default(),
            None => continue,
        };
        let path = PathBuf::from(path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("ldd {}: no file name in {line:?}", binary.display()))?;
        libraries.push((name.to_string(), path.clone()));
    }
    Ok(libraries)
}

/// The Debian packages owning `paths` (`dpkg-query -S`). With merged /usr,
/// dpkg knows a file by the path its package ships (`/bin/dash`,
/// `/usr/lib/…/libzstd.so.1`), which may not be the one `ldd` printed, so
/// each path is also tried with `/usr` added or removed.
fn owning_packages(paths: &BTreeSet<String>) -> Result<BTreeSet<String>> {
    let mut packages = BTreeSet::new();
    for path in paths {
        let other = match path.strip_prefix("/usr") {
            Some(rest) => rest.to_string(),
            None => format!("/usr{path}"),
        };
        let owner = [path.as_str(), other.as_str()]
            .into_iter()
            .find_map(|candidate| {
                let output = Command::new("dpkg-query")
                    .arg("-S")
                    .arg(candidate)
                    .output()
                    .ok()?;
                output
                    .status
                    .success()
                    .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
            });
        let owner =
            owner.with_context(|| format!("no Debian package owns {path} (dpkg-query -S)"))?;
        packages.extend(
            owner
                .lines()
                // `git: /usr/bin/git`, `libc6:amd64: /lib/…`; diversions say so first.
                .filter(|line| !line.starts_with("diversion "))
                .filter_map(|line| line.split(": ").next())
                .flat_map(|names| names.split(", "))
                .map(|name| name.split(':').next().unwrap_or(name).to_string()),
        );
    }
    Ok(packages)
}

/// The controllers, stripped of their symbol tables (a quarter of their
/// size; panics still name file and line, backtraces lose function names).
fn controller_entries(binaries: &[(&str, PathBuf)]) -> Result<Entries> {
    let scratch = tempfile::tempdir()?;
    binaries
        .iter()
        .map(|(name, path)| {
            let stripped = scratch.path().join(name);
            crate::process::run(
                Command::new("strip")
                    .arg("--strip-all")
                    .arg("-o")
                    .arg(&stripped)
                    .arg(path),
            )
            .with_context(|| format!("stripping {} (binutils)", path.display()))?;
            Ok((format!("{BIN_DIR}/{name}"), host_file(&stripped, 0o755)?))
        })
        .collect()
}

impl Layer {
    /// The tar of `entries` (and the directories above them, 0755 root),
    /// gzip-compressed (the default level: level 9 saves 0.5% of the
    /// controllers' size at 2.6 times the time).
    fn of(what: &'static str, mut entries: Entries, epoch: i64) -> Result<Layer> {
        let parents: Vec<String> = entries
            .keys()
            .flat_map(|path| {
                let parts: Vec<&str> = path.split('/').collect();
                (1..parts.len()).map(move |n| parts[..n].join("/"))
            })
            .collect();
        for parent in parents {
            entries.entry(parent).or_insert(Entry::Dir {
                mode: 0o755,
                owner: 0,
            });
        }
        let mtime = u64::try_from(epoch).unwrap_or(0);
        let mut tar = tar::Builder::new(Vec::new());
        for (path, entry) in &entries {
            let mut header = tar::Header::new_ustar();
            header.set_mtime(mtime);
            header.set_uid(0);
            header.set_gid(0);
            match entry {
                Entry::Dir { mode, owner } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_uid(*owner);
                    header.set_gid(*owner);
                    header.set_size(0);
                    tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
                }
                Entry::File { mode, content } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(content.len() as u64);
                    tar.append_data(&mut header, path, content.as_slice())?;
                }
                Entry::Link { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    tar.append_link(&mut header, path, target)?;
                }
            }
        }
        let tar = tar.into_inner()?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(&tar)?;
        Ok(Layer {
            what,
            blob: gzip.finish()?,
            diff_id: sha256_digest(&tar),
            tar_size: tar.len() as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_hold_their_parent_directories_in_order() {
        let mut entries = Entries::new();
        entries.insert("usr/local/bin/x".into(), file(0o755, "x"));
        let layer = Layer::of("test", entries, 0).unwrap();
        let tar = {
            use std::io::Read;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(layer.blob.as_slice())
                .read_to_end(&mut out)
                .unwrap();
            out
        };
        assert_eq!(sha256_digest(&tar), layer.diff_id);
        let mut archive = tar::Archive::new(tar.as_slice());
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            paths,
            ["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/x"]
        );
    }
}
