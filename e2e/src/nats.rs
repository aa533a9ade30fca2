//! A real NATS server (`nats-server`, built from its Go module by
//! [`crate::gobuild::nats_server_binary`]) on a free loopback port,
//! optionally requiring a user and password.

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::gobuild;
use crate::lighttpd::Credentials;
use crate::process::{self, Service};

/// How to start a [`NatsServer`].
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Require user `flux` with a random password.
    pub auth: bool,
    /// With `auth`: the only subject (pattern) that user may publish to.
    pub publish_allow: Option<String>,
    /// Serve TLS with this PEM certificate and key (clients must trust its CA).
    pub tls: Option<(String, String)>,
}

/// A running nats-server. Stopped, and its directory deleted, on drop.
#[derive(Debug)]
pub struct NatsServer {
    service: Service,
    port: u16,
    credentials: Option<Credentials>,
    _state: tempfile::TempDir,
}

impl NatsServer {
    /// Builds nats-server if missing and starts it on 127.0.0.1, requiring
    /// user `flux` with a random password when `auth`.
    pub fn start(auth: bool) -> Result<Self> {
        Self::start_with(&NatsOptions {
            auth,
            ..NatsOptions::default()
        })
    }

    /// Starts a server as `options` say (a config file: user, publish
    /// permissions, TLS).
    pub fn start_with(options: &NatsOptions) -> Result<Self> {
        let binary = gobuild::nats_server_binary()?;
        let state = tempfile::Builder::new()
            .prefix("ferroflux-nats-")
            .tempdir()
            .context("creating the NATS server's directory")?;
        let credentials = options.auth.then(|| Credentials::generate("flux"));
        let mut config = String::new();
        if let Some(c) = &credentials {
            // Quoted: a hex password of digits would otherwise read as a number.
            let permissions = options
                .publish_allow
                .as_ref()
                .map(|subject| format!(", permissions: {{publish: {{allow: [\"{subject}\"]}}}}"))
                .unwrap_or_default();
            config.push_str(&format!(
                "authorization {{ users: [ {{user: \"{}\", password: \"{}\"{permissions}}} ] }}\n",
                c.username, c.password
            ));
        }
        if let Some((cert_pem, key_pem)) = &options.tls {
            let cert = state.path().join("server.crt");
            let key = state.path().join("server.key");
            std::fs::write(&cert, cert_pem)?;
            std::fs::write(&key, key_pem)?;
            config.push_str(&format!(
                "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
                cert.display(),
                key.display()
            ));
        }
        let config_file = state.path().join("nats-server.conf");
        std::fs::write(&config_file, config)?;
        let log = state.path().join("nats-server.log");
        let (service, port) =
            process::start_on_free_port("nats-server", &log, Duration::from_secs(15), |port| {
                let mut cmd = Command::new(&binary);
                cmd.arg("-c")
                    .arg(&config_file)
                    .args(["-a", "127.0.0.1", "-p", &port.to_string()]);
                Ok(cmd)
            })?;
        Ok(Self {
            service,
            port,
            credentials,
            _state: state,
        })
    }

    /// `nats://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user and password it requires, when started with auth.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.service.log_path()).unwrap_or_default()
    }
}
