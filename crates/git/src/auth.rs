//! Credentials for a remote, read from the keys of a Flux Git Secret.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use crate::Error;

/// How to authenticate to a remote.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// HTTP(S) credentials and TLS settings.
    Http(HttpAuth),
    /// An SSH key and the host keys to trust.
    Ssh(SshAuth),
}

/// HTTP(S) credentials and TLS settings.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HttpAuth {
    /// Basic auth `(username, password)`.
    pub basic: Option<(String, String)>,
    /// Bearer token sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// PEM bundle of certificate authorities to trust in addition to the system's.
    pub ca_pem: Option<Vec<u8>>,
    /// PEM client certificate and key for mutual TLS.
    pub client_cert_pem: Option<(Vec<u8>, Vec<u8>)>,
}

/// An SSH private key and the `known_hosts` to check the server against.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SshAuth {
    /// The private key (OpenSSH or PEM).
    pub identity: Vec<u8>,
    /// The key's passphrase, if it is encrypted.
    pub passphrase: Option<String>,
    /// `known_hosts` lines; the server's host key must be among them.
    pub known_hosts: Vec<u8>,
}

// Credentials never appear in logs or error messages.
impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Http(http) => f
                .debug_struct("Auth::Http")
                .field("basic", &http.basic.as_ref().map(|(user, _)| user))
                .field("bearer_token", &http.bearer_token.is_some())
                .field("ca_pem", &http.ca_pem.is_some())
                .field("client_cert_pem", &http.client_cert_pem.is_some())
                .finish(),
            Auth::Ssh(_) => f.write_str("Auth::Ssh"),
        }
    }
}

impl Auth {
    /// Reads credentials for `url` from Secret data, with Flux's keys:
    /// `username`/`password`, `bearerToken`, `ca.crt` (or the legacy `caFile`),
    /// `tls.crt`/`tls.key` for HTTP(S); `identity`, `known_hosts` and optionally
    /// `password` for SSH.
    pub fn from_secret(url: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Auth, Error> {
        let scheme = scheme_of(url)?;
        let text = |key: &str| -> Result<Option<String>, Error> {
            data.get(key)
                .map(|bytes| {
                    String::from_utf8(bytes.clone()).map_err(|_| Error::InvalidAuth {
                        scheme: scheme.clone(),
                        reason: format!("'{key}' is not valid UTF-8"),
                    })
                })
                .transpose()
        };
        match scheme.as_str() {
            "http" | "https" => {
                let username = text("username")?.filter(|u| !u.is_empty());
                let password = text("password")?.unwrap_or_default();
                let bearer_token = text("bearerToken")?.filter(|t| !t.is_empty());
                if username.is_none() && !password.is_empty() {
                    return Err(Error::InvalidAuth {
                        scheme,
                        reason: "'password' requires 'username' to be set".into(),
                    });
                }
                if username.is_some() && bearer_token.is_some() {
                    return Err(Error::InvalidAuth {
                        scheme,
                        reason: "'username'/'password' and 'bearerToken' are mutually exclusive"
                            .into(),
                    });
                }
                let ca_pem = data
                    .get("ca.crt")
                    .or_else(|| data.get("caFile"))
                    .filter(|ca| !ca.is_empty())
                    .cloned();
                let client_cert_pem = match (data.get("tls.crt"), data.get("tls.key")) {
                    (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
                    (None, None) => None,
                    _ => {
                        return Err(Error::InvalidAuth {
                            scheme,
                            reason: "'tls.crt' and 'tls.key' must be given together".into(),
                        });
                    }
                };
                Ok(Auth::Http(HttpAuth {
                    basic: username.map(|u| (u, password)),
                    bearer_token,
                    ca_pem,
                    client_cert_pem,
                }))
            }
            "ssh" => {
                let identity = data.get("identity").filter(|i| !i.is_empty()).cloned();
                let known_hosts = data.get("known_hosts").filter(|k| !k.is_empty()).cloned();
                let Some(identity) = identity else {
                    return Err(Error::InvalidAuth {
                        scheme,
                        reason: "'identity' is required".into(),
                    });
                };
                let Some(known_hosts) = known_hosts else {
                    return Err(Error::InvalidAuth {
                        scheme,
                        reason: "'known_hosts' is required".into(),
                    });
                };
                Ok(Auth::Ssh(SshAuth {
                    identity,
                    passphrase: text("password")?.filter(|p| !p.is_empty()),
                    known_hosts,
                }))
            }
            _ => Ok(Auth::None),
        }
    }
}

/// The lower-case scheme of a repository URL, refusing SCP-like `user@host:path`
/// addresses as Flux does.
pub(crate) fn scheme_of(url: &str) -> Result<String, Error> {
    let invalid = |reason: &str| Error::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        invalid("expected <scheme>://<host>/<path>; SCP-like addresses are not supported")
    })?;
    if rest.is_empty() {
        return Err(invalid("the address has no host or path"));
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "http" | "https" | "ssh" | "file" => Ok(scheme),
        other => Err(invalid(&format!("unsupported scheme '{other}'"))),
    }
}

/// Files backing an SSH connection: the key and `known_hosts` in a private
/// temporary directory, removed when this is dropped.
pub(crate) struct SshFiles {
    dir: tempfile::TempDir,
    has_identity: bool,
}

impl SshFiles {
    /// Writes the key and `known_hosts` of `auth`; without a key, `ssh` still
    /// gets an empty `known_hosts`, so unknown hosts are refused.
    pub(crate) fn write(auth: Option<&SshAuth>) -> Result<SshFiles, Error> {
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-ssh-")
            .tempdir()
            .map_err(Error::io("creating a directory for the SSH key"))?;
        let mut known_hosts = auth.map(|a| a.known_hosts.clone()).unwrap_or_default();
        if !known_hosts.is_empty() && !known_hosts.ends_with(b"\n") {
            known_hosts.push(b'\n');
        }
        // ssh refuses keys readable by others; write the files owner-only.
        write_private(&dir.path().join("known_hosts"), &known_hosts)?;
        let files = SshFiles {
            dir,
            has_identity: auth.is_some(),
        };
        if let Some(auth) = auth {
            write_private(&files.dir.path().join("identity"), &auth.identity)?;
            if let Some(passphrase) = &auth.passphrase {
                files.decrypt_identity(passphrase)?;
            }
        }
        Ok(files)
    }

    /// What `ssh` logged, trimmed, without the lines of a session that
    /// worked (it logs at INFO, where "Unable to negotiate" is reported).
    pub(crate) fn log(&self) -> String {
        const ROUTINE: [&str; 3] = ["Authenticated to ", "Transferred: ", "Bytes per second: "];
        std::fs::read_to_string(self.dir.path().join("ssh.log"))
            .map(|text| {
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !ROUTINE.iter().any(|r| l.starts_with(r)))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// Removes the passphrase from the temporary copy of the key, so that `ssh`
    /// never has to prompt for it.
    fn decrypt_identity(&self, passphrase: &str) -> Result<(), Error> {
        let output = std::process::Command::new("ssh-keygen")
            .arg("-p")
            .arg("-P")
            .arg(passphrase)
            .arg("-N")
            .arg("")
            .arg("-f")
            .arg(self.dir.path().join("identity"))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(Error::io("running ssh-keygen to decrypt the SSH key"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(Error::InvalidAuth {
                scheme: "ssh".into(),
                reason: format!(
                    "cannot decrypt 'identity' with 'password': {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            })
        }
    }

    /// The `core.sshCommand` that uses only these files: no agent, no user or
    /// system configuration, strict host key checking, never a prompt.
    /// Errors go to a log file in the same directory, read back by [`SshFiles::log`].
    pub(crate) fn command(&self, connect_timeout_secs: u64) -> String {
        let identity = if self.has_identity {
            format!("-i {} ", shell_quote(&self.dir.path().join("identity")))
        } else {
            String::new()
        };
        format!(
            "ssh -F /dev/null {identity}-o IdentitiesOnly=yes -o IdentityAgent=none \
             -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes -o UpdateHostKeys=no -o BatchMode=yes \
             -o ConnectTimeout={} -o ServerAliveInterval=15 -o ServerAliveCountMax=2 \
             {}-o LogLevel=INFO -E {}",
            shell_quote(&self.dir.path().join("known_hosts")),
            connect_timeout_secs.max(1),
            ssh_algorithms().options(),
            shell_quote(&self.dir.path().join("ssh.log")),
        )
    }
}

/// The SSH algorithms every connection of this process may use (Flux's
/// `--ssh-hostkey-algos` and `--ssh-kex-algos`); empty lists leave `ssh`'s
/// defaults. Names are OpenSSH's, which are also Go's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SshAlgorithms {
    /// Host key algorithms the server's key must use (`HostKeyAlgorithms`).
    pub host_key: Vec<String>,
    /// Key exchange algorithms (`KexAlgorithms`).
    pub kex: Vec<String>,
}

impl SshAlgorithms {
    fn options(&self) -> String {
        [
            ("HostKeyAlgorithms", &self.host_key),
            ("KexAlgorithms", &self.kex),
        ]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(option, names)| format!("-o {option}={} ", names.join(",")))
        .collect()
    }
}

static SSH_ALGORITHMS: std::sync::OnceLock<SshAlgorithms> = std::sync::OnceLock::new();

fn ssh_algorithms() -> &'static SshAlgorithms {
    SSH_ALGORITHMS.get_or_init(SshAlgorithms::default)
}

/// Restricts the SSH algorithms of every later connection, once per process
/// (the controllers call it from their flags at start-up). Names must be
/// algorithm names (letters, digits, `-`, `.`, `@`, `+`).
pub fn set_ssh_algorithms(algorithms: SshAlgorithms) -> Result<(), Error> {
    let invalid = algorithms
        .host_key
        .iter()
        .chain(&algorithms.kex)
        .find(|name| {
            name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.@+".contains(&b))
        });
    if let Some(name) = invalid {
        return Err(Error::InvalidSshAlgorithms(format!(
            "'{name}' is not an SSH algorithm name"
        )));
    }
    if SSH_ALGORITHMS.set(algorithms.clone()).is_err() && ssh_algorithms() != &algorithms {
        return Err(Error::InvalidSshAlgorithms(
            "they were already set differently in this process".into(),
        ));
    }
    Ok(())
}

/// Whether what `ssh` logged means the server refused the key or the host key
/// is not trusted (a credentials problem, not a network one).
pub(crate) fn ssh_refused(log: &str) -> bool {
    let log = log.to_ascii_lowercase();
    [
        "permission denied",
        "host key verification failed",
        "no ed25519 host key",
        "no rsa host key",
        "no ecdsa host key",
    ]
    .iter()
    .any(|needle| log.contains(needle))
}

pub(crate) fn write_private(path: &Path, content: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(Error::io(format!("creating {}", path.display())))?;
    file.write_all(content)
        .map_err(Error::io(format!("writing {}", path.display())))
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn http_basic_bearer_and_ca() {
        let auth = Auth::from_secret(
            "https://example.com/repo.git",
            &data(&[("username", "git"), ("password", "pw"), ("ca.crt", "PEM")]),
        )
        .unwrap();
        let Auth::Http(http) = auth else {
            panic!("expected http auth")
        };
        assert_eq!(http.basic, Some(("git".into(), "pw".into())));
        assert_eq!(http.ca_pem.as_deref(), Some(&b"PEM"[..]));

        let auth = Auth::from_secret("http://h/r", &data(&[("bearerToken", "tok")])).unwrap();
        assert!(
            matches!(auth, Auth::Http(HttpAuth { bearer_token: Some(ref t), .. }) if t == "tok")
        );

        let legacy = Auth::from_secret("https://h/r", &data(&[("caFile", "OLD")])).unwrap();
        assert!(matches!(legacy, Auth::Http(HttpAuth { ca_pem: Some(ref c), .. }) if c == b"OLD"));
    }

    #[test]
    fn ssh_algorithm_options() {
        let algorithms = SshAlgorithms {
            host_key: vec!["ssh-ed25519".into(), "rsa-sha2-512".into()],
            kex: vec!["curve25519-sha256@libssh.org".into()],
        };
        assert_eq!(
            algorithms.options(),
            "-o HostKeyAlgorithms=ssh-ed25519,rsa-sha2-512 -o KexAlgorithms=curve25519-sha256@libssh.org "
        );
        assert_eq!(SshAlgorithms::default().options(), "");
        // Names reach a shell command line: anything else is refused.
        for bad in ["a;rm -rf /", "", "x y", "$(id)"] {
            let refused = set_ssh_algorithms(SshAlgorithms {
                host_key: vec![bad.into()],
                kex: Vec::new(),
            });
            assert!(
                matches!(refused, Err(Error::InvalidSshAlgorithms(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn http_invalid_combinations() {
        assert!(matches!(
            Auth::from_secret("https://h/r", &data(&[("password", "pw")])),
            Err(Error::InvalidAuth { .. })
        ));
        assert!(matches!(
            Auth::from_secret(
                "https://h/r",
                &data(&[("username", "u"), ("bearerToken", "t")])
            ),
            Err(Error::InvalidAuth { .. })
        ));
        assert!(matches!(
            Auth::from_secret("https://h/r", &data(&[("tls.crt", "c")])),
            Err(Error::InvalidAuth { .. })
        ));
    }

    #[test]
    fn ssh_requires_identity_and_known_hosts() {
        let err = Auth::from_secret("ssh://git@h:22/r.git", &data(&[("identity", "k")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid 'ssh' auth option: 'known_hosts' is required");
        let err = Auth::from_secret("ssh://git@h/r.git", &data(&[("known_hosts", "h")]))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "invalid 'ssh' auth option: 'identity' is required");
        assert!(matches!(
            Auth::from_secret(
                "ssh://git@h/r.git",
                &data(&[("identity", "k"), ("known_hosts", "h")])
            ),
            Ok(Auth::Ssh(_))
        ));
    }

    #[test]
    fn scp_like_and_unknown_schemes_are_refused() {
        assert!(matches!(
            scheme_of("git@github.com:org/repo.git"),
            Err(Error::InvalidUrl { .. })
        ));
        assert!(matches!(
            scheme_of("ftp://h/r"),
            Err(Error::InvalidUrl { .. })
        ));
        assert_eq!(scheme_of("HTTPS://h/r").unwrap(), "https");
    }

    #[test]
    fn ssh_files_are_private_and_command_uses_them() {
        use std::os::unix::fs::PermissionsExt;
        let files = SshFiles::write(Some(&SshAuth {
            identity: b"KEY".to_vec(),
            passphrase: None,
            known_hosts: b"[127.0.0.1]:2222 ssh-ed25519 AAAA".to_vec(),
        }))
        .unwrap();
        let mode = std::fs::metadata(files.dir.path().join("identity"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let known = std::fs::read(files.dir.path().join("known_hosts")).unwrap();
        assert!(known.ends_with(b"\n"));
        let command = files.command(30);
        assert!(command.contains("StrictHostKeyChecking=yes"), "{command}");
        assert!(command.contains("ConnectTimeout=30"), "{command}");
        assert!(
            command.contains(&files.dir.path().display().to_string()),
            "{command}"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let auth = Auth::Http(HttpAuth {
            basic: Some(("user".into(), "s3cret".into())),
            bearer_token: Some("t0ken".into()),
            ..HttpAuth::default()
        });
        let shown = format!("{auth:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }
}
