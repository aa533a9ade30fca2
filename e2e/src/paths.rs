//! Where the harness keeps things: a cache outside the work tree for built and
//! downloaded binaries, and free loopback ports for the servers it starts.

use std::net::TcpListener;
use std::path::PathBuf;

/// The cache for binaries that are expensive to make (Go builds, the helm wheel).
///
/// `$FERROFLUX_CACHE`, else `$XDG_CACHE_HOME/ferroflux`, else `~/.cache/ferroflux`.
/// It lives outside the work tree so a fresh clone on the same machine reuses it.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FERROFLUX_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("ferroflux");
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("ferroflux")
}

/// The directory of cached tool binaries (`helm`, `kubectl`, `kube-apiserver`, …).
pub fn bin_dir() -> PathBuf {
    cache_dir().join("bin")
}

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Takes an exclusive lock on `<cache>/locks/<name>.lock`, waiting for other
/// processes holding it; released when the returned file is dropped.
///
/// Test binaries run in parallel and would otherwise race to install the same
/// package or write the same cached binary.
pub fn lock(name: &str) -> std::io::Result<std::fs::File> {
    let dir = cache_dir().join("locks");
    std::fs::create_dir_all(&dir)?;
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!("{name}.lock")))?;
    file.lock()?;
    Ok(file)
}

/// The binary `bin` of workspace package `package`, from the target
/// directory of the running test (`target/<profile>/<bin>`), built there
/// with `cargo build` first when missing. For tests that run another
/// package's binary, which `CARGO_BIN_EXE_*` does not cover.
pub fn workspace_binary(package: &str, bin: &str) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let test = std::env::current_exe()?;
    // target/<profile>/deps/<test binary>
    let profile_dir = test
        .parent()
        .and_then(std::path::Path::parent)
        .context("the test binary is not in a cargo target directory")?;
    let binary = profile_dir.join(bin);
    if binary.exists() {
        return Ok(binary);
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("target profile directory")?;
    let _lock = lock(&format!("build-{bin}"))?;
    let mut build = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
    build.args(["build", "--quiet", "-p", package, "--bin", bin]);
    if profile != "debug" {
        build.args(["--profile", profile]);
    }
    let status = build
        .status()
        .with_context(|| format!("cargo build -p {package}"))?;
    anyhow::ensure!(
        status.success(),
        "cargo build -p {package} failed ({status})"
    );
    anyhow::ensure!(
        binary.exists(),
        "{} missing after the build",
        binary.display()
    );
    Ok(binary)
}
