//! Submodules of a checkout, fetched as `git submodule update --init
//! --recursive` does: each gitlink of the checked-out tree is checked out at
//! the commit it records, from the URL `.gitmodules` gives for its path.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use gix::bstr::{BStr, ByteSlice};

use crate::fetch::{checkout_blocking, run_blocking};
use crate::{Auth, CheckoutOptions, Error, Reference, Remote};

/// How many levels submodules may nest (top-level submodules are level 1), as
/// Flux's default recursion depth.
pub const MAX_SUBMODULE_DEPTH: usize = 10;

/// A submodule that was checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmoduleCheckout {
    /// Its name in the `.gitmodules` of its superproject.
    pub name: String,
    /// Where it was checked out, relative to the top checkout (a nested
    /// submodule's path includes its parents').
    pub path: PathBuf,
    /// The URL it was fetched from, relative URLs resolved.
    pub url: String,
    /// The commit its superproject records for it, now checked out.
    pub commit: String,
}

/// Checks out the submodules of the checkout in `dir` (made by
/// [`checkout`](crate::checkout) from `superproject`), recursively, like
/// `git submodule update --init --recursive`, and lists them outermost first.
///
/// Every gitlink in the checked-out commit's tree is fetched at the commit it
/// records (fetching by commit id: servers must speak protocol v2, or allow
/// unadvertised objects, for commits that are no branch tip) into its path,
/// with `options.depth` (depth 1 where `.gitmodules` says `shallow = true`).
/// Each submodule gets its own `.git` directory inside its path, as a
/// `checkout` does; the superproject's `.git` knows nothing about them.
/// Relative URLs (`../other.git`) resolve against the superproject's URL as
/// git resolves them; SCP-like URLs (`git@host:org/repo.git`) are fetched as
/// `ssh://git@host/org/repo.git`. Submodules with `update = none` are skipped.
///
/// Credentials: a submodule on the same scheme, host and port as `superproject`
/// (at any nesting level) is fetched with `superproject.auth`; any other gets
/// [`Auth::None`], so a Secret's credentials never leave the host they were
/// given for. `file://` URLs and local paths are refused, as git refuses them
/// for submodules by default.
///
/// The whole walk, all submodules together, is bounded by
/// `superproject.timeout`; to bound a checkout and its submodules together,
/// pass the time the checkout left.
///
/// Errors: [`Error::Submodule`] names the submodule (path and URL) whose fetch
/// failed and wraps why; [`Error::InvalidSubmodule`] a gitlink without a
/// `.gitmodules` entry, a path that leaves the work tree (absolute, `..`,
/// through a symbolic link, `.git`), an unsupported URL, or nesting deeper
/// than [`MAX_SUBMODULE_DEPTH`] levels (a repository that contains itself).
pub async fn checkout_submodules(
    dir: &Path,
    superproject: &Remote,
    options: &CheckoutOptions,
) -> Result<Vec<SubmoduleCheckout>, Error> {
    let dir = dir.to_path_buf();
    let options = options.clone();
    run_blocking(superproject, move |top, interrupt| {
        let mut walk = Walk {
            top: &top,
            options: &options,
            interrupt: &interrupt,
            done: Vec::new(),
        };
        walk.superproject(&dir, Path::new(""), &mut Vec::new())?;
        Ok(walk.done)
    })
    .await
}

struct Walk<'a> {
    /// The top superproject: its credentials, host and time limit.
    top: &'a Remote,
    options: &'a CheckoutOptions,
    interrupt: &'a AtomicBool,
    done: Vec<SubmoduleCheckout>,
}

/// A submodule of one superproject, before it is fetched.
struct Recorded {
    name: String,
    /// Relative to its superproject's work tree, `/`-separated.
    path: String,
    url: gix::Url,
    commit: String,
    shallow: bool,
}

/// A submodule above the one being checked out: its URL and path.
struct Parent {
    url: String,
    path: PathBuf,
}

impl Walk<'_> {
    /// Checks out the submodules of the work tree `dir`, whose path from the
    /// top checkout is `prefix`, and theirs.
    fn superproject(
        &mut self,
        dir: &Path,
        prefix: &Path,
        parents: &mut Vec<Parent>,
    ) -> Result<(), Error> {
        for sub in recorded_submodules(dir, prefix)? {
            if self.interrupt.load(Ordering::Relaxed) {
                return Err(Error::Timeout {
                    url: self.top.url.clone(),
                    timeout: self.top.timeout,
                });
            }
            let path = prefix.join(&sub.path);
            let invalid = |url: &str, reason: String| Error::InvalidSubmodule {
                path: path.display().to_string(),
                url: url.to_string(),
                reason,
            };
            let url = fetch_url(&sub.url)
                .map_err(|reason| invalid(&sub.url.to_bstring().to_str_lossy(), reason))?;
            if parents.len() >= MAX_SUBMODULE_DEPTH {
                return Err(invalid(&url, too_deep(parents, &path, &url)));
            }
            let target = checkout_target(dir, &sub.path).map_err(|r| invalid(&url, r))?;
            let remote = Remote {
                url: url.clone(),
                auth: if same_host(&self.top.url, &sub.url) {
                    self.top.auth.clone()
                } else {
                    Auth::None
                },
                timeout: self.top.timeout,
                // The proxy serves HTTP(S) only; other submodules go direct.
                proxy: self
                    .top
                    .proxy
                    .clone()
                    .filter(|_| url.starts_with("http://") || url.starts_with("https://")),
            };
            let options = CheckoutOptions {
                depth: if sub.shallow {
                    NonZeroU32::new(1)
                } else {
                    self.options.depth
                },
            };
            let reference = Reference::Commit {
                id: sub.commit.clone(),
                branch: None,
            };
            checkout_blocking(&remote, &reference, &target, &options, self.interrupt).map_err(
                |e| Error::Submodule {
                    path: path.display().to_string(),
                    url: url.clone(),
                    source: Box::new(e),
                },
            )?;
            self.done.push(SubmoduleCheckout {
                name: sub.name,
                path: path.clone(),
                url: url.clone(),
                commit: sub.commit,
            });
            parents.push(Parent {
                url,
                path: path.clone(),
            });
            let nested = self.superproject(&target, &path, parents);
            parents.pop();
            nested?;
        }
        Ok(())
    }
}

/// The gitlinks of the commit checked out in `dir`, in path order, each with
/// its `.gitmodules` entry. `prefix` is `dir`'s path from the top checkout,
/// for messages.
fn recorded_submodules(dir: &Path, prefix: &Path) -> Result<Vec<Recorded>, Error> {
    let shown = |path: &str| prefix.join(path).display().to_string();
    let unreadable = |e: gix::Error| Error::InvalidSubmodule {
        path: prefix.display().to_string(),
        url: String::new(),
        reason: format!(
            "cannot read the checkout in '{}' for its submodules: {e}",
            dir.display()
        ),
    };
    let repo = gix::open_opts(dir, gix::open::Options::isolated()).map_err(unreadable)?;
    // The commit's own tree, not the index or the work tree: the gitlinks it
    // records are what git checks out.
    let tree = repo
        .head_commit()
        .and_then(|commit| commit.tree_id().map(|id| id.detach()))
        .map_err(unreadable)?;
    let index = repo.index_from_tree(&tree).map_err(unreadable)?;
    let gitlinks: Vec<(String, String)> = index
        .entries()
        .iter()
        .filter(|entry| entry.mode == gix::index::entry::Mode::COMMIT)
        .map(|entry| {
            (
                entry.path(&index).to_str_lossy().into_owned(),
                entry.id.to_hex().to_string(),
            )
        })
        .collect();
    if gitlinks.is_empty() {
        return Ok(Vec::new());
    }

    let mut by_path: HashMap<String, gix::Submodule<'_>> = HashMap::new();
    let configured = repo.submodules().map_err(|e| Error::InvalidSubmodule {
        path: shown(".gitmodules"),
        url: String::new(),
        reason: format!("cannot read '.gitmodules': {e}"),
    })?;
    for submodule in configured.into_iter().flatten() {
        let name = submodule.name().to_str_lossy().into_owned();
        let path = submodule.path().map_err(|e| Error::InvalidSubmodule {
            path: shown(&configured_path(&repo, submodule.name()).unwrap_or(name.clone())),
            url: String::new(),
            reason: format!("the path of submodule '{name}' in '.gitmodules' is refused: {e}"),
        })?;
        let path = path.to_str_lossy().into_owned();
        if let Err(reason) = relative_path(&path) {
            return Err(Error::InvalidSubmodule {
                path: shown(&path),
                url: String::new(),
                reason: format!("the path of submodule '{name}' in '.gitmodules' {reason}"),
            });
        }
        by_path.insert(path.trim_end_matches('/').to_string(), submodule);
    }

    let mut recorded = Vec::with_capacity(gitlinks.len());
    for (path, commit) in gitlinks {
        let invalid = |url: String, reason: String| Error::InvalidSubmodule {
            path: shown(&path),
            url,
            reason,
        };
        relative_path(&path).map_err(|r| invalid(String::new(), format!("the path {r}")))?;
        let Some(submodule) = by_path.get(&path) else {
            return Err(invalid(
                String::new(),
                format!(
                    "no URL found for the submodule path in '.gitmodules' (it records commit {commit})"
                ),
            ));
        };
        let name = submodule.name().to_str_lossy().into_owned();
        let raw_url = submodule
            .url()
            .map(|u| u.to_bstring().to_str_lossy().into_owned())
            .unwrap_or_default();
        let update = submodule.update().map_err(|e| {
            invalid(
                raw_url.clone(),
                format!("invalid 'update' for '{name}': {e}"),
            )
        })?;
        if matches!(update, Some(gix::submodule::config::Update::None)) {
            continue;
        }
        let url = submodule.resolved_url().map_err(|e| {
            invalid(
                raw_url.clone(),
                format!("cannot resolve the URL of '{name}': {e}"),
            )
        })?;
        let shallow = submodule
            .shallow()
            .map_err(|e| {
                invalid(
                    raw_url.clone(),
                    format!("invalid 'shallow' for '{name}': {e}"),
                )
            })?
            .unwrap_or(false);
        recorded.push(Recorded {
            name,
            path,
            url,
            commit,
            shallow,
        });
    }
    Ok(recorded)
}

/// `submodule.<name>.path` as written, for messages about it.
fn configured_path(repo: &gix::Repository, name: &BStr) -> Option<String> {
    let modules = repo.modules().ok()??;
    let path = modules
        .config()
        .string_by("submodule", Some(name), "path")?;
    Some(path.to_str_lossy().into_owned())
}

/// Refuses paths that could leave the work tree or reach a `.git` directory.
fn relative_path(path: &str) -> Result<(), String> {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Err("is empty".to_string());
    }
    if path.starts_with('/') {
        return Err(format!("'{path}' is absolute"));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!("'{path}' leads outside of the work tree"));
        }
        if part.eq_ignore_ascii_case(".git") {
            return Err(format!("'{path}' is inside a '.git' directory"));
        }
    }
    Ok(())
}

/// Where the submodule at `path` (relative, checked) goes under `dir`: it must
/// not go through a symbolic link nor hold anything yet.
fn checkout_target(dir: &Path, path: &str) -> Result<PathBuf, String> {
    let mut target = dir.to_path_buf();
    for part in path.trim_end_matches('/').split('/') {
        target.push(part);
        match std::fs::symlink_metadata(&target) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "'{}' is a symbolic link in the work tree",
                    target.strip_prefix(dir).unwrap_or(&target).display()
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!(
                    "'{}' is a file in the work tree",
                    target.strip_prefix(dir).unwrap_or(&target).display()
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot inspect '{}': {e}", target.display())),
        }
    }
    let occupied = std::fs::read_dir(&target).is_ok_and(|mut entries| entries.next().is_some());
    if occupied {
        return Err("its directory in the work tree is not empty".to_string());
    }
    Ok(target)
}

/// The URL to fetch a submodule from, as [`Remote::url`] takes it.
fn fetch_url(url: &gix::Url) -> Result<String, String> {
    use gix::url::Scheme;
    match &url.scheme {
        Scheme::Http | Scheme::Https | Scheme::Ssh => {}
        Scheme::File => {
            return Err(
                "local paths and file:// URLs are not fetched for submodules (git refuses them \
                 too: protocol.file.allow=user)"
                    .to_string(),
            );
        }
        other => {
            return Err(format!(
                "unsupported scheme '{}': use http, https or ssh",
                other.as_str()
            ));
        }
    }
    let mut url = url.clone();
    // An SCP-like path (`host:org/repo.git`) is relative to the login's home,
    // which Git hosting services treat as the root.
    if url.scheme == Scheme::Ssh && !url.path.starts_with(b"/") {
        url.path.insert(0, b'/');
    }
    url.serialize_alternative_form = false;
    let mut out = Vec::new();
    url.write_to(&mut out)
        .map_err(|e| format!("cannot write the URL: {e}"))?;
    String::from_utf8(out).map_err(|_| "the URL is not valid UTF-8".to_string())
}

/// Whether `url` has the scheme, host and port of `top` (the superproject's
/// URL), so it may receive the superproject's credentials.
fn same_host(top: &str, url: &gix::Url) -> bool {
    let Ok(top) = gix::url::parse(top.as_bytes().as_bstr()) else {
        return false;
    };
    let host = |u: &gix::Url| u.host().map(str::to_ascii_lowercase);
    top.scheme == url.scheme
        && host(&top).is_some()
        && host(&top) == host(url)
        && top.port_or_default() == url.port_or_default()
}

/// Why a submodule at `path` from `url`, below `parents`, is one level too many.
fn too_deep(parents: &[Parent], path: &Path, url: &str) -> String {
    let chain: Vec<String> = parents
        .iter()
        .map(|p| p.path.display().to_string())
        .chain([path.display().to_string()])
        .collect();
    let mut reason = format!(
        "submodules nest more than {MAX_SUBMODULE_DEPTH} levels deep ({})",
        chain.join(" -> ")
    );
    let key = repository_key(url);
    if let Some(outer) = parents.iter().find(|p| repository_key(&p.url) == key) {
        reason.push_str(&format!(
            "; the repository contains itself (it is also the submodule at '{}')",
            outer.path.display()
        ));
    }
    reason
}

/// A URL reduced to what names the repository, to recognise it under another
/// spelling (case of the host, trailing `/` or `.git`).
fn repository_key(url: &str) -> String {
    let lower = url.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('/');
    trimmed.strip_suffix(".git").unwrap_or(trimmed).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> gix::Url {
        gix::url::parse(url.as_bytes().as_bstr()).unwrap()
    }

    #[test]
    fn paths_stay_inside_the_work_tree() {
        assert!(relative_path("libs/sub").is_ok());
        assert!(relative_path("libs/sub/").is_ok());
        assert!(relative_path("/etc").is_err());
        assert!(relative_path("../up").is_err());
        assert!(relative_path("a/../../up").is_err());
        assert!(relative_path("a/./b").is_err());
        assert!(relative_path(".git/hooks").is_err());
        assert!(relative_path("a/.GIT").is_err());
        assert!(relative_path("").is_err());
    }

    #[test]
    fn targets_never_go_through_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("libs")).unwrap();
        std::fs::create_dir_all(dir.path().join("full")).unwrap();
        std::fs::write(dir.path().join("full/file"), "x").unwrap();
        std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert_eq!(
            checkout_target(dir.path(), "libs/sub").unwrap(),
            dir.path().join("libs/sub")
        );
        assert!(
            checkout_target(dir.path(), "link/sub")
                .unwrap_err()
                .contains("symbolic link")
        );
        assert!(
            checkout_target(dir.path(), "file/sub")
                .unwrap_err()
                .contains("is a file")
        );
        assert!(
            checkout_target(dir.path(), "full")
                .unwrap_err()
                .contains("not empty")
        );
    }

    #[test]
    fn urls_to_fetch() {
        assert_eq!(
            fetch_url(&parse("https://example.com/org/repo.git")).unwrap(),
            "https://example.com/org/repo.git"
        );
        assert_eq!(
            fetch_url(&parse("git@github.com:org/repo.git")).unwrap(),
            "ssh://git@github.com/org/repo.git"
        );
        assert_eq!(
            fetch_url(&parse("ssh://git@host:2222/srv/repo.git")).unwrap(),
            "ssh://git@host:2222/srv/repo.git"
        );
        assert!(
            fetch_url(&parse("file:///srv/repo.git"))
                .unwrap_err()
                .contains("file://")
        );
        assert!(fetch_url(&parse("/srv/repo.git")).is_err());
        assert!(
            fetch_url(&parse("git://host/repo.git"))
                .unwrap_err()
                .contains("'git'")
        );
    }

    #[test]
    fn credentials_go_to_the_same_scheme_host_and_port_only() {
        let top = "https://git.example.com/org/super.git";
        assert!(same_host(
            top,
            &parse("https://GIT.example.com:443/other/sub.git")
        ));
        assert!(!same_host(
            top,
            &parse("http://git.example.com/org/sub.git")
        ));
        assert!(!same_host(
            top,
            &parse("https://git.example.com:8443/org/sub.git")
        ));
        assert!(!same_host(
            top,
            &parse("https://evil.example.com/org/sub.git")
        ));
        assert!(same_host(
            "ssh://git@host:2222/a.git",
            &parse("ssh://other@host:2222/b.git")
        ));
        assert!(!same_host(
            "ssh://git@host:2222/a.git",
            &parse("ssh://git@host/b.git")
        ));
    }

    #[test]
    fn self_containing_repositories_are_named() {
        let parents: Vec<Parent> = (1..=MAX_SUBMODULE_DEPTH)
            .map(|level| Parent {
                url: "https://h/r.git".into(),
                path: PathBuf::from(vec!["self"; level].join("/")),
            })
            .collect();
        let reason = too_deep(&parents, Path::new("deeper"), "https://H/r");
        assert!(reason.contains("more than 10 levels"), "{reason}");
        assert!(reason.contains("contains itself"), "{reason}");
        assert!(reason.ends_with("at 'self')"), "{reason}");
    }
}
