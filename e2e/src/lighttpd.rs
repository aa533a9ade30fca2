//! lighttpd on a free loopback port: the HTTP server behind the Git smart-HTTP
//! server and the Helm chart repository.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::process::{self, Service};

/// Basic-auth credentials in an htpasswd file.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl Credentials {
    /// A fixed user name with a fresh random password.
    pub fn generate(username: &str) -> Self {
        Self {
            username: username.to_string(),
            password: random_hex(),
        }
    }

    /// Writes `htpasswd` with these credentials, bcrypt-hashed: lighttpd
    /// (through libxcrypt) and docker-registry both read bcrypt.
    pub fn write_htpasswd(&self, file: &Path) -> Result<()> {
        process::run(
            Command::new("htpasswd")
                .arg("-Bbc")
                .arg(file)
                .arg(&self.username)
                .arg(&self.password),
        )
        .context("writing an htpasswd file")?;
        Ok(())
    }
}

/// 16 random hex digits, for passwords. `RandomState` is seeded from the OS, so
/// no random-number crate is needed for this.
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

/// Starts `lighttpd -D` with `site` (lighttpd config lines) after a common
/// header binding 127.0.0.1 on a free port with `document_root`.
///
/// `run_as` (uid, gid), when set, is the account lighttpd runs as, and so the
/// account CGI programs run as. lighttpd is started as that account rather
/// than told to drop to it (`server.username`): the kernel clears the
/// parent-death signal when a process changes its own credentials, and the
/// server must die with the test binary.
pub fn start(
    name: &str,
    state: &Path,
    document_root: &Path,
    run_as: Option<(u32, u32)>,
    site: &str,
) -> Result<(Service, u16)> {
    let log = state.join(format!("{name}.log"));
    let config = state.join(format!("{name}.conf"));
    process::start_on_free_port(name, &log, Duration::from_secs(10), |port| {
        std::fs::write(
            &config,
            format!(
                "server.bind = \"127.0.0.1\"\n\
                 server.port = {port}\n\
                 server.document-root = \"{root}\"\n\
                 # Buffer request bodies before handing them on: with streaming,\n\
                 # git pushes over 1 MiB (chunked) fail with 411.\n\
                 server.stream-request-body = 0\n\
                 # Tests replace files (helm repo index renames a new index.yaml\n\
                 # over the old one) and read them back at once. The default\n\
                 # \"simple\" engine re-checks a path at most once a second and\n\
                 # until then serves the old file from its cached descriptor.\n\
                 server.stat-cache-engine = \"disable\"\n\
                 mimetype.assign = (\".yaml\" => \"text/yaml\", \".tgz\" => \"application/gzip\", \"\" => \"application/octet-stream\")\n\
                 {site}\n",
                root = document_root.display(),
            ),
        )
        .with_context(|| format!("writing {}", config.display()))?;
        let mut cmd = Command::new("lighttpd");
        cmd.arg("-D").arg("-f").arg(&config);
        if let Some((uid, gid)) = run_as {
            // std switches credentials before running process::start's
            // pre_exec hook, so the parent-death signal set there sticks.
            cmd.uid(uid).gid(gid);
        }
        Ok(cmd)
    })
}
