//! Fetches kustomize's remote targets for a ferroflux build: Git
//! repositories with the project's gix code (`crates/git`) and single files
//! over HTTP(S) with reqwest, each bounded in time (the URL's `?timeout=`,
//! and the caller's deadline) and size.
//!
//! The build (`crates/kustomize`) is synchronous and runs on a blocking
//! thread; [`Fetcher`] runs each fetch on the tokio runtime it was given and
//! waits for the answer.
#![warn(missing_docs)]

use std::future::Future;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kustomize::remote::{DEFAULT_TIMEOUT, redacted};
use kustomize::{HttpResponse, RemoteFetcher, RepoSpec};

/// How large a remote target may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest body of a remote file.
    pub max_file_bytes: u64,
    /// Largest checkout of a remote repository (work tree and `.git`).
    pub max_repository_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 16 << 20,
            max_repository_bytes: 256 << 20,
        }
    }
}

/// Fetches remote bases, components and files for one build.
#[derive(Debug)]
pub struct Fetcher {
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    deadline: Option<Instant>,
    limits: Limits,
}

impl Fetcher {
    /// A fetcher running its work on `runtime`, with default limits and no
    /// deadline beyond each URL's own timeout.
    pub fn new(runtime: tokio::runtime::Handle) -> Result<Fetcher, String> {
        let http = env_proxy::client_builder()
            .user_agent(concat!("ferroflux/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("building the HTTP client: {}", describe(&e)))?;
        Ok(Fetcher {
            runtime,
            http,
            deadline: None,
            limits: Limits::default(),
        })
    }

    /// Every fetch of this build ends by `deadline` (say, the
    /// Kustomization's timeout), whatever the URL's `?timeout=` says.
    pub fn with_deadline(mut self, deadline: Instant) -> Fetcher {
        self.deadline = Some(deadline);
        self
    }

    /// Size limits other than the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Fetcher {
        self.limits = limits;
        self
    }

    /// `wanted`, shortened to what is left before the deadline.
    fn bounded(&self, wanted: Duration) -> Result<Duration, String> {
        let Some(deadline) = self.deadline else {
            return Ok(wanted);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("the build's timeout has passed".into());
        }
        Ok(wanted.min(left))
    }

    /// Runs `work` on the runtime and waits for it, at most `timeout` (plus
    /// a moment for the work's own timeout to report first).
    fn run<T, F>(&self, timeout: Duration, work: F) -> Result<T, String>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, String>> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv_timeout(timeout + Duration::from_secs(2))
            .map_err(|_| format!("timed out after {timeout:?}"))?
    }
}

impl RemoteFetcher for Fetcher {
    fn clone_repo(&self, repo: &RepoSpec, into: &Path) -> Result<(), String> {
        let timeout = self.bounded(repo.timeout)?;
        let (url, auth) = split_credentials(&with_scheme(&repo.clone_url()));
        let remote = git::Remote {
            url,
            auth,
            timeout,
            proxy: None,
        };
        let reference = repo.reference.clone();
        let submodules = repo.submodules;
        let dir = into.to_path_buf();
        self.run(timeout, async move {
            let started = Instant::now();
            let reference = resolve_reference(&remote, reference.as_deref()).await?;
            let remote = git::Remote {
                timeout: timeout.saturating_sub(started.elapsed()),
                ..remote
            };
            let options = git::CheckoutOptions::default();
            git::checkout(&remote, &reference, &dir, &options)
                .await
                .map_err(|e| e.to_string())?;
            if submodules {
                let remote = git::Remote {
                    timeout: timeout.saturating_sub(started.elapsed()),
                    ..remote
                };
                git::checkout_submodules(&dir, &remote, &options)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })?;
        let size = tree_size(into).map_err(|e| format!("measuring the checkout: {e}"))?;
        if size > self.limits.max_repository_bytes {
            return Err(format!(
                "the checkout is {} MiB, more than the {} MiB a remote base may take",
                size >> 20,
                self.limits.max_repository_bytes >> 20
            ));
        }
        Ok(())
    }

    fn get(&self, url: &str) -> Result<HttpResponse, String> {
        let timeout = self.bounded(DEFAULT_TIMEOUT)?;
        let request = self.http.get(url).timeout(timeout);
        let max = self.limits.max_file_bytes;
        self.run(timeout, async move {
            let mut response = request
                .send()
                .await
                .map_err(|e| describe(&e.without_url()))?;
            let status = response.status().as_u16();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| describe(&e.without_url()))?
            {
                if (body.len() + chunk.len()) as u64 > max {
                    return Err(format!(
                        "the file is larger than the {} MiB a remote file may take",
                        max >> 20
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse { status, body })
        })
    }
}

/// What `?ref=` names, resolved as `git fetch <ref>` does: the exact name,
/// then under `refs/`, `refs/tags/`, `refs/heads/`; else a full commit id.
/// No ref is the remote's `HEAD`.
async fn resolve_reference(
    remote: &git::Remote,
    reference: Option<&str>,
) -> Result<git::Reference, String> {
    let Some(name) = reference else {
        return Ok(git::Reference::Name("HEAD".into()));
    };
    let candidates = [
        name.to_string(),
        format!("refs/{name}"),
        format!("refs/tags/{name}"),
        format!("refs/heads/{name}"),
    ];
    let patterns: Vec<&str> = candidates.iter().map(String::as_str).collect();
    let refs = git::list_refs(remote, &patterns)
        .await
        .map_err(|e| e.to_string())?;
    let found = candidates
        .iter()
        .find(|candidate| refs.iter().any(|r| &r.name == *candidate));
    if let Some(full) = found {
        return Ok(if let Some(tag) = full.strip_prefix("refs/tags/") {
            git::Reference::Tag(tag.to_string())
        } else if let Some(branch) = full.strip_prefix("refs/heads/") {
            git::Reference::Branch(branch.to_string())
        } else {
            git::Reference::Name(full.clone())
        });
    }
    if matches!(name.len(), 40 | 64) && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(git::Reference::Commit {
            id: name.to_ascii_lowercase(),
            branch: None,
        });
    }
    Err(format!(
        "reference '{name}' not found in {}: no such branch or tag, and not a full commit id",
        redacted(&remote.url)
    ))
}

/// Moves `user:password@` out of an HTTP(S) URL into basic-auth
/// credentials, which is how git uses them too.
fn split_credentials(url: &str) -> (String, git::Auth) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_string(), git::Auth::None);
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let Some((userinfo, host)) = authority.rsplit_once('@').filter(|_| http) else {
        return (url.to_string(), git::Auth::None);
    };
    let Some((user, password)) = userinfo.split_once(':') else {
        return (url.to_string(), git::Auth::None);
    };
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let auth = git::Auth::Http(git::HttpAuth {
        basic: Some((decode(user), decode(password))),
        ..git::HttpAuth::default()
    });
    (format!("{scheme}://{host}{}", &rest[authority_end..]), auth)
}

/// An SCP-like address (`git@host:org/repo.git`, which kustomize accepts)
/// as the `ssh://` URL the Git client takes; anything else as it is.
fn with_scheme(url: &str) -> String {
    if url.contains("://") {
        return url.to_string();
    }
    match url.split_once(':') {
        Some((login, path)) if login.contains('@') && !login.contains('/') => {
            format!("ssh://{login}/{}", path.trim_start_matches('/'))
        }
        _ => url.to_string(),
    }
}

/// Bytes under `dir`, symbolic links counted as links.
fn tree_size(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let metadata = entry.path().symlink_metadata()?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                total += metadata.len();
            }
        }
    }
    Ok(total)
}

/// An error and its causes, one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scp_like_addresses_become_ssh_urls() {
        assert_eq!(
            with_scheme("git@github.com:org/app.git"),
            "ssh://git@github.com/org/app.git"
        );
        assert_eq!(
            with_scheme("https://example.com/org/app.git"),
            "https://example.com/org/app.git"
        );
    }

    #[test]
    fn credentials_leave_the_url() {
        let (url, auth) = split_credentials("https://bot:p%40ss@git.example.com:8443/org/app.git");
        assert_eq!(url, "https://git.example.com:8443/org/app.git");
        assert_eq!(
            auth,
            git::Auth::Http(git::HttpAuth {
                basic: Some(("bot".into(), "p@ss".into())),
                ..git::HttpAuth::default()
            })
        );
        let (url, auth) = split_credentials("git@github.com:org/app.git");
        assert_eq!(url, "git@github.com:org/app.git");
        assert_eq!(auth, git::Auth::None);
        let (url, auth) = split_credentials("ssh://git@example.com/org/app.git");
        assert_eq!(url, "ssh://git@example.com/org/app.git");
        assert_eq!(auth, git::Auth::None);
    }
}
