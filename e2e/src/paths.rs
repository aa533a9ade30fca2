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
