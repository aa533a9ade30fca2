//! The container image (`cargo xtask image`, [`e2e::image`]) end to end:
//! the image built (the controllers' release build, which cargo keeps in
//! `target/` between runs, so only what changed is rebuilt), pushed to a real registry over the distribution API,
//! pulled back and checked the way a runtime would see it: manifest and
//! config digests, each layer's digest and diff_id, user 65534, and, in the
//! root file system unpacked from the pulled layers, every binary run as
//! user 65534 under `chroot` (so the controllers, helm, git with its HTTPS
//! helper, ssh and sh work with only what the image holds) and Debian's CA
//! bundle present.
//!
//! `FERROFLUX_IMAGE_PROFILE` builds with another cargo profile (default
//! `release`, what `cargo xtask image` ships).

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output};

use e2e::image::{BIN_DIR, CA_BUNDLE, CONTROLLERS, USER};
use e2e::registry::{OCI_CONFIG, OCI_LAYER_GZIP, Registry, sha256_digest};

const REPOSITORY: &str = "ferroflux";

#[test]
fn the_image_holds_every_binary_runnable_as_nobody() {
    assert!(
        e2e::packages::is_root(),
        "the image test unpacks the image and runs its binaries under chroot: run it as root"
    );
    let profile = std::env::var("FERROFLUX_IMAGE_PROFILE").unwrap_or_else(|_| "release".into());
    let started = std::time::Instant::now();
    let image = e2e::image::build(&profile).unwrap();
    eprintln!("{}\nbuilt in {:.0?}", image.report(), started.elapsed());

    let registry = Registry::start(false).unwrap();
    let digest = image.push(&registry, REPOSITORY, "test").unwrap();
    assert_eq!(digest, image.digest());

    // What a runtime pulls.
    let (pulled, manifest) = registry.manifest(REPOSITORY, "test").unwrap();
    assert_eq!(pulled, digest);
    assert_eq!(manifest["config"]["mediaType"], OCI_CONFIG);
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config_bytes = registry.blob(REPOSITORY, config_digest).unwrap();
    assert_eq!(sha256_digest(&config_bytes), config_digest);
    let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap();
    assert_eq!(config["config"]["User"], USER);
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    let env: Vec<&str> = config["config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"),
        "{env:?}"
    );
    assert!(
        env.iter().any(|e| e.starts_with("PATH=/usr/local/bin")),
        "{env:?}"
    );
    for volume in ["/tmp", "/data"] {
        assert!(
            config["config"]["Volumes"].get(volume).is_some(),
            "{config}"
        );
    }
    assert_eq!(
        config["config"]["Labels"]["org.opencontainers.image.title"],
        "ferroflux"
    );
    assert!(
        config["config"].get("Entrypoint").is_none(),
        "the chart sets the command"
    );

    let layers = manifest["layers"].as_array().unwrap();
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(layers.len(), 3, "base, tools, controllers");
    assert_eq!(diff_ids.len(), layers.len());
    let rootfs = tempfile::Builder::new()
        .prefix("ferroflux-image-rootfs-")
        .tempdir()
        .unwrap();
    for (layer, diff_id) in layers.iter().zip(diff_ids) {
        assert_eq!(layer["mediaType"], OCI_LAYER_GZIP);
        let blob_digest = layer["digest"].as_str().unwrap();
        let blob = registry.blob(REPOSITORY, blob_digest).unwrap();
        assert_eq!(sha256_digest(&blob), blob_digest);
        assert_eq!(layer["size"].as_u64(), Some(blob.len() as u64));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(blob.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        assert_eq!(sha256_digest(&tar), diff_id.as_str().unwrap());
        let mut archive = tar::Archive::new(tar.as_slice());
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.unpack(rootfs.path()).unwrap();
    }
    let root = rootfs.path();
    // The runtime gives a container its /dev; git opens /dev/null.
    std::fs::create_dir_all(root.join("dev")).unwrap();
    let status = Command::new("mknod")
        .args(["-m", "666"])
        .arg(root.join("dev/null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(status.success(), "mknod /dev/null");

    for controller in CONTROLLERS {
        let help = run_as_nobody(root, &[&format!("/{BIN_DIR}/{controller}"), "--help"]);
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("--metrics-addr"),
            "{controller} --help:\n{text}"
        );
    }
    let helm = run_as_nobody(root, &["helm", "version", "--short"]);
    assert!(
        String::from_utf8_lossy(&helm.stdout).starts_with(e2e::packages::HELM_VERSION),
        "{helm:?}"
    );
    let git = run_as_nobody(root, &["git", "--version"]);
    assert!(String::from_utf8_lossy(&git.stdout).starts_with("git version"));
    // ssh -V reports on stderr.
    let ssh = run_as_nobody(root, &["ssh", "-V"]);
    assert!(String::from_utf8_lossy(&ssh.stderr).contains("OpenSSH"));
    let sh = run_as_nobody(root, &["/bin/sh", "-c", "echo from-sh"]);
    assert_eq!(String::from_utf8_lossy(&sh.stdout), "from-sh\n");
    // Every shared library of the dynamic tools resolves inside the image.
    for binary in [
        "/usr/lib/git-core/git-remote-https",
        "/usr/bin/ssh-keygen",
        "/usr/bin/git",
    ] {
        let listed = run_as_nobody(root, &["/lib64/ld-linux-x86-64.so.2", "--list", binary]);
        let text = String::from_utf8_lossy(&listed.stdout);
        assert!(!text.contains("not found"), "{binary}:\n{text}");
    }
    // git finds its HTTPS helper where it looks for it.
    let exec_path = run_as_nobody(root, &["git", "--exec-path"]);
    let exec_path = String::from_utf8_lossy(&exec_path.stdout)
        .trim()
        .to_string();
    assert!(
        root.join(exec_path.trim_start_matches('/'))
            .join("git-remote-https")
            .exists()
    );

    let bundle = std::fs::read_to_string(root.join(CA_BUNDLE)).unwrap();
    assert!(
        bundle.matches("BEGIN CERTIFICATE").count() > 100,
        "the CA bundle is too small"
    );
    // A writable /data for user 65534 even without a volume (the chart mounts one).
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(root.join("data")).unwrap().uid(), 65534);
}

/// Runs `args` under `chroot` into `root` as the image's user, with the
/// image's environment; fails the test unless it succeeds.
fn run_as_nobody(root: &Path, args: &[&str]) -> Output {
    // Absolute: the child environment below has the image's PATH.
    let output = Command::new("/usr/sbin/chroot")
        .arg(format!("--userspec={USER}"))
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin")
        .env("HOME", "/tmp")
        .env("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
        .current_dir("/")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?} in the image failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
