//! An HTTP proxy on loopback: Debian's `tinyproxy`, optionally requiring
//! basic auth, logging every request (`CONNECT host:port` for HTTPS
//! tunnels, `GET http://…` for plain HTTP) so tests can check that traffic
//! went through it.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::lighttpd::Credentials;
use crate::packages;
use crate::process::{self, Service};

/// A name of this machine that resolves to `127.0.0.1` (where the test
/// servers listen) but that Go's `ProxyFromEnvironment`, and so ferroflux,
/// does not take for local: requests to `localhost` and loopback addresses
/// never use the proxy environment, so a test of that environment must
/// address its servers by another name. The machine's host name, which
/// `/etc/hosts` maps to `127.0.0.1` here.
pub fn loopback_alias() -> Result<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name")?
        .trim()
        .to_string();
    let loopback = (name.as_str(), 80)
        .to_socket_addrs()
        .map(|mut addrs| addrs.any(|a| a.ip() == std::net::Ipv4Addr::LOCALHOST))
        .unwrap_or(false);
    if name.is_empty() || name == "localhost" || !loopback {
        anyhow::bail!(
            "the host name '{name}' does not resolve to 127.0.0.1: the proxy environment tests need a \
             name for loopback other than localhost"
        );
    }
    Ok(name)
}

/// `url` (or `host:port`) with `127.0.0.1` replaced by [`loopback_alias`],
/// so that requests to it follow the proxy environment.
pub fn via_alias(url: &str) -> Result<String> {
    anyhow::ensure!(url.contains("127.0.0.1"), "{url} is not on 127.0.0.1");
    Ok(url.replacen("127.0.0.1", &loopback_alias()?, 1))
}

/// A running tinyproxy. Stopped, and its directory deleted, on drop.
#[derive(Debug)]
pub struct HttpProxy {
    service: Service,
    port: u16,
    credentials: Option<Credentials>,
    _state: tempfile::TempDir,
}

impl HttpProxy {
    /// Installs what is missing and starts tinyproxy on a free loopback port,
    /// requiring basic auth (user `proxy`, random password) when `auth`.
    pub fn start(auth: bool) -> Result<Self> {
        packages::ensure_debian_packages()?;
        let state = tempfile::Builder::new()
            .prefix("ferroflux-proxy-")
            .tempdir()
            .context("creating the proxy's directory")?;
        let credentials = auth.then(|| Credentials::generate("proxy"));
        // Random hex, so nothing in it needs quoting in the config line.
        let auth_line = credentials
            .as_ref()
            .map(|c| format!("BasicAuth {} {}\n", c.username, c.password))
            .unwrap_or_default();
        let config = state.path().join("tinyproxy.conf");
        let log = state.path().join("tinyproxy.log");
        let (service, port) =
            process::start_on_free_port("tinyproxy", &log, Duration::from_secs(15), |port| {
                // No `ConnectPort` line: tinyproxy then tunnels to any port,
                // while Debian's default config only allows 443 and 563 and
                // would refuse the registry's. No `LogFile`: in the
                // foreground (`-d`) the log goes to stderr, i.e. `log`.
                std::fs::write(
                    &config,
                    format!(
                        "Port {port}\n\
                         Listen 127.0.0.1\n\
                         Timeout 120\n\
                         MaxClients 100\n\
                         LogLevel Connect\n\
                         Allow 127.0.0.1\n\
                         DisableViaHeader Yes\n\
                         {auth_line}"
                    ),
                )?;
                let mut cmd = Command::new("tinyproxy");
                cmd.arg("-d").arg("-c").arg(&config);
                Ok(cmd)
            })?;
        Ok(Self {
            service,
            port,
            credentials,
            _state: state,
        })
    }

    /// `http://127.0.0.1:PORT`, the proxy address without credentials.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The basic-auth user name, when the proxy requires auth.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The basic-auth password, when the proxy requires auth.
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    /// Everything tinyproxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.service.log_path()).unwrap_or_default()
    }

    /// Whether a client asked the proxy to tunnel to `host_port` (a
    /// `CONNECT` request, logged whether or not its credentials passed).
    pub fn connect_requested(&self, host_port: &str) -> bool {
        self.log().contains(&format!("CONNECT {host_port} "))
    }

    /// `http://user:password@127.0.0.1:PORT` when the proxy requires auth,
    /// else [`address`](Self::address): the form `HTTP_PROXY` takes.
    pub fn url_with_credentials(&self) -> String {
        match &self.credentials {
            Some(c) => format!(
                "http://{}:{}@127.0.0.1:{}",
                c.username, c.password, self.port
            ),
            None => self.address(),
        }
    }

    /// Stops the proxy (SIGKILL): its port then refuses connections.
    pub fn stop(&mut self) {
        self.service.kill();
    }
}
