//! Pushing a checkout's commits with the `git` CLI: gix has no push
//! (GitoxideLabs/gitoxide#306), and the CLI has the same authentication
//! plumbing. Credentials reach git through `GIT_CONFIG_*` environment variables
//! and files in a private temporary directory, never through its command line
//! (visible in `ps`) or a configuration file in the checkout.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;

use base64::Engine;

use crate::auth::{SshFiles, scheme_of, ssh_refused, write_private};
use crate::{Auth, Error, Remote};

/// What to push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushRequest {
    /// `git push` refspecs: `HEAD:refs/heads/main`, `HEAD:refs/for/main`.
    pub refspecs: Vec<String>,
    /// Push options (`git push -o`), Flux's `push.options`: a key with a
    /// non-empty value is sent as `key=value`, otherwise as `key`. The server
    /// must accept push options (`receive.advertisePushOptions`).
    pub options: BTreeMap<String, String>,
    /// Updates the remote references even when that loses commits on them.
    pub force: bool,
}

/// The system's trusted certificate authorities, kept next to a custom CA
/// because `http.sslCAInfo` replaces them, where Flux adds to them.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Pushes from the checkout in `dir` to `remote` with its credentials, under
/// its timeout (`git` and its helpers are killed when it passes).
///
/// Each rejected reference is a [`Error::PushRejected`], with
/// `non_fast_forward` set when the remote has commits the pushed one lacks;
/// refused credentials are [`Error::Authentication`], a server without push
/// options is [`Error::PushOptionsUnsupported`], anything else [`Error::Push`].
pub async fn push(remote: &Remote, dir: &Path, request: &PushRequest) -> Result<(), Error> {
    let scheme = scheme_of(&remote.url)?;
    crate::proxy::check_scheme(remote.proxy.as_ref(), &scheme)?;
    let failed = |message: String| Error::Push {
        url: remote.url.clone(),
        message,
    };
    if request.refspecs.is_empty() {
        return Err(failed("no refspec to push".into()));
    }
    let git_dir = dir.join(".git");
    if !git_dir.is_dir() {
        return Err(failed(format!("{} is not a checkout", dir.display())));
    }
    let scratch = tempfile::Builder::new()
        .prefix("ferroflux-push-")
        .tempdir()
        .map_err(Error::io("creating a directory for git push"))?;
    let mut config: Vec<(String, String)> = vec![
        // Nothing may ask a terminal, a helper or the user for anything.
        ("credential.helper".into(), String::new()),
        ("core.askPass".into(), String::new()),
        ("core.hooksPath".into(), "/dev/null".into()),
    ];
    // git would read the proxy environment by curl's rules (ALL_PROXY,
    // loopback proxied); go-git, Flux's, by Go's: the proxy is decided here
    // and an empty http.proxy makes git connect directly.
    let proxy = match &remote.proxy {
        Some(proxy) => proxy.url_with_credentials(),
        None => env_proxy::Url::parse(&remote.url)
            .ok()
            .and_then(|url| env_proxy::environment().proxy_for(&url).ok().flatten())
            .map(String::from)
            .unwrap_or_default(),
    };
    config.push(("http.proxy".into(), proxy));
    let mut ssh = None;
    match (&remote.auth, scheme.as_str()) {
        (Auth::Http(http), "http" | "https") => {
            if let Some((username, password)) = &http.basic {
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                config.push((
                    "http.extraHeader".into(),
                    format!("Authorization: Basic {token}"),
                ));
            } else if let Some(token) = &http.bearer_token {
                config.push((
                    "http.extraHeader".into(),
                    format!("Authorization: Bearer {token}"),
                ));
            }
            if let Some(ca) = &http.ca_pem {
                let mut bundle = ca.clone();
                if let Ok(system) = std::fs::read(SYSTEM_CA_BUNDLE) {
                    bundle.push(b'\n');
                    bundle.extend_from_slice(&system);
                }
                let path = scratch.path().join("ca.crt");
                write_private(&path, &bundle)?;
                config.push(("http.sslCAInfo".into(), path.display().to_string()));
            }
            if let Some((cert, key)) = &http.client_cert_pem {
                let cert_path = scratch.path().join("tls.crt");
                let key_path = scratch.path().join("tls.key");
                write_private(&cert_path, cert)?;
                write_private(&key_path, key)?;
                config.push(("http.sslCert".into(), cert_path.display().to_string()));
                config.push(("http.sslKey".into(), key_path.display().to_string()));
            }
        }
        (auth, "ssh") => {
            let key = match auth {
                Auth::Ssh(key) => Some(key),
                _ => None,
            };
            ssh = Some(SshFiles::write(key)?);
        }
        _ => {}
    }

    let mut command = tokio::process::Command::new("git");
    command
        .arg("push")
        .arg("--porcelain")
        // Hooks of the checkout are not the controller's to run.
        .arg("--no-verify");
    if request.force {
        command.arg("--force");
    }
    for (key, value) in &request.options {
        if value.is_empty() {
            command.arg(format!("--push-option={key}"));
        } else {
            command.arg(format!("--push-option={key}={value}"));
        }
    }
    command
        .arg("--end-of-options")
        .arg(&remote.url)
        .args(&request.refspecs);
    // Only what is set here: no system or user configuration, credential
    // helpers, prompts or locale (the output is parsed in English).
    command
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into()),
        )
        .env("HOME", scratch.path())
        .env("LC_ALL", "C")
        .env("GIT_DIR", &git_dir)
        .env("GIT_WORK_TREE", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "")
        .env("SSH_ASKPASS", "")
        .env("GIT_CONFIG_COUNT", config.len().to_string());
    for (index, (key, value)) in config.iter().enumerate() {
        command
            .env(format!("GIT_CONFIG_KEY_{index}"), key)
            .env(format!("GIT_CONFIG_VALUE_{index}"), value);
    }
    if let Some(files) = &ssh {
        command
            .env("GIT_SSH_COMMAND", files.command(remote.timeout.as_secs()))
            .env("GIT_SSH_VARIANT", "ssh");
    }
    command
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own, so that a timeout kills git's helpers
        // (git-remote-http, ssh) with it.
        .process_group(0)
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(Error::io("running git push (is git installed?)"))?;
    let group = child
        .id()
        .and_then(|id| rustix::process::Pid::from_raw(id as i32));
    let output = match tokio::time::timeout(remote.timeout, child.wait_with_output()).await {
        Ok(output) => output.map_err(Error::io("running git push"))?,
        Err(_) => {
            if let Some(group) = group {
                // Already gone is fine: the point is that nothing is left.
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            return Err(Error::Timeout {
                url: remote.url.clone(),
                timeout: remote.timeout,
            });
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ssh_log = ssh.as_ref().map(SshFiles::log).unwrap_or_default();
    tracing::debug!(url = %remote.url, status = %output.status, %stdout, %stderr, "git push");
    if output.status.success() {
        return Ok(());
    }
    Err(classify(
        &remote.url,
        &stdout,
        &stderr,
        &ssh_log,
        !request.options.is_empty(),
    ))
}

/// Turns a failed `git push --porcelain` into an error: rejected references
/// first (the per-reference lines on stdout), then what stderr and the ssh log
/// say.
fn classify(url: &str, stdout: &str, stderr: &str, ssh_log: &str, with_options: bool) -> Error {
    if let Some(rejected) = stdout.lines().find_map(rejected_ref) {
        return Error::PushRejected {
            url: url.to_string(),
            non_fast_forward: branch_moved(&rejected.reason),
            reference: rejected.reference,
            reason: rejected.reason,
        };
    }
    let mut message = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if !ssh_log.is_empty() {
        message = format!("{message}: ssh: {ssh_log}");
    }
    let lower = message.to_ascii_lowercase();
    // git only prompts (and, forbidden to, fails so) after a 401.
    if lower.contains("could not read username") || lower.contains("could not read password") {
        message =
            format!("the server refused the credentials or asked for some (HTTP 401): {message}");
    }
    if with_options && lower.contains("does not support push options") {
        return Error::PushOptionsUnsupported {
            url: url.to_string(),
        };
    }
    let refused = ssh_refused(ssh_log)
        || [
            "authentication failed",
            "could not read username",
            "could not read password",
            "terminal prompts disabled",
            "returned error: 401",
            "returned error: 403",
            "permission denied",
            "host key verification failed",
        ]
        .iter()
        .any(|needle| lower.contains(needle));
    if refused {
        Error::Authentication {
            url: url.to_string(),
            message,
        }
    } else {
        Error::Push {
            url: url.to_string(),
            message: if message.is_empty() {
                "git push failed without a message".to_string()
            } else {
                message
            },
        }
    }
}

struct Rejected {
    reference: String,
    reason: String,
}

/// Whether a rejection means the remote branch moved: it has commits the
/// pushed one lacks (`fetch first`, `non-fast-forward`), or another push
/// updated it between the server's advertisement and this update (the
/// server's `failed to update ref` / `cannot lock ref` / `incorrect old
/// value`). Either way, redoing the change on the new head is the remedy.
fn branch_moved(reason: &str) -> bool {
    matches!(reason, "non-fast-forward" | "fetch first")
        || [
            "failed to update ref",
            "cannot lock ref",
            "incorrect old value",
        ]
        .iter()
        .any(|m| reason.contains(m))
}

/// A rejected reference in `git push --porcelain` output:
/// `!<TAB><from>:<to><TAB>[rejected] (fetch first)`.
fn rejected_ref(line: &str) -> Option<Rejected> {
    let mut fields = line.split('\t');
    if fields.next()? != "!" {
        return None;
    }
    let refs = fields.next()?;
    let summary = fields.next().unwrap_or_default().trim();
    // Remote reference names cannot contain ':', so the last one splits.
    let reference = refs.rsplit_once(':').map_or(refs, |(_, to)| to).to_string();
    let reason = match (summary.find('('), summary.rfind(')')) {
        (Some(open), Some(close)) if open < close => summary[open + 1..close].to_string(),
        _ => summary.to_string(),
    };
    Some(Rejected { reference, reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://example.com/repo.git";

    #[test]
    fn a_branch_another_push_updated_meanwhile_counts_as_moved() {
        assert!(branch_moved("failed to update ref"));
        assert!(branch_moved(
            "cannot lock ref 'refs/heads/main': is at 1a2b but expected 3c4d"
        ));
        assert!(!branch_moved("pre-receive hook declined"));
    }

    #[test]
    fn rejected_references_are_typed() {
        let stdout = "To https://example.com/repo.git\n\
                      =\trefs/heads/a:refs/heads/a\t[up to date]\n\
                      !\tHEAD:refs/heads/main\t[rejected] (fetch first)\n\
                      Done\n";
        match classify(URL, stdout, "error: failed to push some refs", "", false) {
            Error::PushRejected {
                reference,
                reason,
                non_fast_forward,
                ..
            } => {
                assert_eq!(reference, "refs/heads/main");
                assert_eq!(reason, "fetch first");
                assert!(non_fast_forward);
            }
            other => panic!("unexpected {other:?}"),
        }
        let hook =
            "!\trefs/heads/main:refs/heads/main\t[remote rejected] (pre-receive hook declined)\n";
        match classify(URL, hook, "", "", false) {
            Error::PushRejected {
                reason,
                non_fast_forward,
                ..
            } => {
                assert_eq!(reason, "pre-receive hook declined");
                assert!(!non_fast_forward);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn credentials_and_push_options_are_recognised() {
        let denied =
            "fatal: could not read Username for 'http://127.0.0.1:1': terminal prompts disabled";
        assert!(matches!(
            classify(URL, "", denied, "", false),
            Error::Authentication { .. }
        ));
        assert!(matches!(
            classify(
                "ssh://git@h/r",
                "",
                "fatal: Could not read from remote repository.",
                "git@127.0.0.1: Permission denied (publickey).",
                false
            ),
            Error::Authentication { .. }
        ));
        let options = "fatal: the receiving end does not support push options\nfatal: the remote end hung up unexpectedly";
        let err = classify(URL, "", options, "", true);
        assert!(
            matches!(err, Error::PushOptionsUnsupported { .. }),
            "{err:?}"
        );
        assert!(matches!(
            classify(
                URL,
                "",
                "fatal: unable to access: Could not resolve host",
                "",
                false
            ),
            Error::Push { .. }
        ));
    }
}
