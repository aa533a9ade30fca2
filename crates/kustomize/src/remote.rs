//! kustomize's remote targets: Git repositories named by URL
//! (`https://host/org/repo//deploy?ref=v1.2.0`, `git@host:org/repo.git/dir`)
//! as bases and components, and single files over HTTP(S) as resources.
//!
//! Parsing follows kustomize v5.8's `NewRepoSpecFromURL`; fetching is a
//! [`RemoteFetcher`] the caller hands the build, so this library never opens
//! a connection itself. Without one, every remote target is refused by name.

use std::fmt;
use std::path::{Component, Path};
use std::time::Duration;

/// kustomize's default for `?timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(27);

/// A Git repository, the reference to check out and the kustomization's
/// directory inside it: kustomize's `RepoSpec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoSpec {
    /// The URL as written, which cycle detection compares.
    raw: String,
    /// Scheme, user and host up to the path: `https://github.com/`,
    /// `git@github.com:`, `ssh://git@host:2222/`, `file://`.
    pub host: String,
    /// The repository's path on the host: `org/repo`, `org/repo.git`.
    pub repo_path: String,
    /// The kustomization's directory inside the repository (empty: its root).
    pub kust_root_path: String,
    /// `?ref=` (or the older `?version=`): a branch, tag or commit. `None`
    /// checks out the remote's `HEAD`.
    pub reference: Option<String>,
    /// `?submodules=` (default true): whether submodules are checked out too.
    pub submodules: bool,
    /// `?timeout=` (default 27s): how long fetching it may take.
    pub timeout: Duration,
}

/// Why a string is not a remote repository URL (it is then a local path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotARepoUrl(String);

impl fmt::Display for NotARepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl RepoSpec {
    /// Parses a remote target. Local paths (`../base`, `/abs`) are an error,
    /// which is how a build tells the two apart, as kustomize does.
    pub fn parse(target: &str) -> Result<RepoSpec, NotARepoUrl> {
        if Path::new(target).is_absolute() {
            return Err(NotARepoUrl(format!("uri looks like abs path: {target}")));
        }
        let (before_query, query) = target.split_once('?').unwrap_or((target, ""));
        let (reference, timeout, submodules) = parse_query(query);
        let (host, path) = extract_host(before_query)?;
        let default_segments = if host.starts_with(FILE_SCHEME) {
            None
        } else {
            Some(2)
        };
        let (repo_path, kust_root_path) = split_repo_path(path, default_segments)?;
        Ok(RepoSpec {
            raw: target.to_string(),
            host,
            repo_path,
            kust_root_path,
            reference,
            submodules,
            timeout,
        })
    }

    /// The URL as written in the kustomization.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The URL to clone (kustomize's `CloneSpec`): host and repository path.
    pub fn clone_url(&self) -> String {
        format!("{}{}", self.host, self.repo_path)
    }

    /// The origin path kustomize records for resources of this repository
    /// (`buildMetadata: [originAnnotations]`): the kustomization's directory
    /// in the repository, or `notCloned` for its root — kustomize derives it
    /// from a placeholder clone directory, and that quirk is in its output.
    pub fn origin_path(&self) -> String {
        let cleaned = clean_relative(&self.kust_root_path);
        if cleaned.is_empty() {
            "notCloned".to_string()
        } else {
            cleaned
        }
    }
}

/// `url` with the password of any `user:password@` replaced by `*****`,
/// for messages (they end up in object status and logs).
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:*****{}", &rest[userinfo.len()..])
        }
        _ => url.to_string(),
    }
}

/// Whether `target` names a file kustomize fetches over HTTP(S).
pub fn is_remote_file(target: &str) -> bool {
    has_prefix_ignore_case(target, HTTP_SCHEME) || has_prefix_ignore_case(target, HTTPS_SCHEME)
}

/// Fetches what a build's remote targets name. Implementations bound each
/// operation by time and size; the build keeps the directories it hands out
/// only for as long as it runs.
pub trait RemoteFetcher: Send + Sync + fmt::Debug {
    /// Clones `repo` into the empty directory `into`: a shallow checkout of
    /// `repo.reference` (else the remote's `HEAD`), submodules included when
    /// `repo.submodules` says so, within `repo.timeout`.
    fn clone_repo(&self, repo: &RepoSpec, into: &Path) -> Result<(), String>;

    /// GETs `url` (redirects followed), returning the final status and body.
    fn get(&self, url: &str) -> Result<HttpResponse, String>;
}

/// The answer to a GET.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

const FILE_SCHEME: &str = "file://";
const HTTP_SCHEME: &str = "http://";
const HTTPS_SCHEME: &str = "https://";
const SSH_SCHEME: &str = "ssh://";
const GIT_ROOT_DELIMITER: &str = "_git/";
const GIT_SUFFIX: &str = ".git";

fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    has_prefix_ignore_case(s, prefix).then(|| &s[prefix.len()..])
}

/// `ref` (else `version`), `timeout` and `submodules` from the query; a
/// query Go's `url.ParseQuery` rejects yields the defaults, as in kustomize.
fn parse_query(query: &str) -> (Option<String>, Duration, bool) {
    let defaults = (None, DEFAULT_TIMEOUT, true);
    if query.contains(';') || !valid_escapes(query) {
        return defaults;
    }
    let first = |key: &str| {
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    };
    let reference = first("ref").or_else(|| first("version"));
    let timeout = first("timeout")
        .and_then(|t| match t.parse::<u64>() {
            Ok(seconds) => Some(Duration::from_secs(seconds)),
            Err(_) => go_format::parse_duration(&t),
        })
        .filter(|t| !t.is_zero())
        .unwrap_or(DEFAULT_TIMEOUT);
    let submodules = first("submodules")
        .and_then(|s| go_parse_bool(&s))
        .unwrap_or(true);
    (reference, timeout, submodules)
}

/// Every `%` starts a two-digit hex escape (Go refuses the query otherwise).
fn valid_escapes(query: &str) -> bool {
    let bytes = query.as_bytes();
    bytes.iter().enumerate().all(|(i, b)| {
        *b != b'%'
            || (bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
    })
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Splits off scheme, user and host (kustomize's `extractHost`), returning
/// them normalised and the path that follows.
fn extract_host(url: &str) -> Result<(String, &str), NotARepoUrl> {
    // The go-getter `git::` prefix is accepted and dropped, as kustomize does.
    let url = strip_prefix_ignore_case(url, "git::").unwrap_or(url);
    let (mut scheme, rest) = [SSH_SCHEME, HTTPS_SCHEME, HTTP_SCHEME, FILE_SCHEME]
        .into_iter()
        .find_map(|scheme| strip_prefix_ignore_case(url, scheme).map(|rest| (scheme, rest)))
        .unwrap_or(("", url));
    let user_len = user_prefix_len(rest);
    let (mut user, rest) = rest.split_at(user_len);
    let lower = rest.to_ascii_lowercase();
    let github = lower.starts_with("github.com/") || lower.starts_with("github.com:");
    // SCP-like `user@host:path`: no scheme, and a user (or GitHub).
    let scp_like = scheme.is_empty() && (!user.is_empty() || github);
    if scheme.is_empty() && !scp_like {
        return Err(NotARepoUrl("failed to parse scheme".into()));
    }
    if scheme == FILE_SCHEME {
        // Everything after file:// is the repository's absolute path.
        return Ok((scheme.to_string(), &url[scheme.len()..]));
    }
    let mut separator = rest.find('/');
    if scp_like
        && let Some(colon) = rest.find(':')
        && separator.is_none_or(|slash| colon > 0 && colon < slash)
    {
        separator = Some(colon);
    }
    let (mut host, path) = match separator {
        Some(i) => (&rest[..=i], &rest[i + 1..]),
        None => (rest, ""),
    };
    if github {
        if scheme.starts_with(SSH_SCHEME) || !user.is_empty() {
            scheme = "";
            host = "github.com:";
        } else {
            scheme = HTTPS_SCHEME;
            user = "";
            host = "github.com/";
        }
    }
    if host.is_empty() {
        return Err(NotARepoUrl("failed to parse host segment".into()));
    }
    Ok((format!("{scheme}{user}{host}"), path))
}

/// Length of a leading `user@` (a letter, then letters, digits and `-`).
fn user_prefix_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return 0;
    }
    let name = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'-')
        .count();
    if bytes.get(name) == Some(&b'@') {
        name + 1
    } else {
        0
    }
}

/// Splits the path into the repository and the kustomization directory in
/// it: at `_git/<repo>`, `//` or `.git`, else after `default_segments`
/// segments (`None`: the whole path is the repository).
fn split_repo_path(
    path: &str,
    default_segments: Option<usize>,
) -> Result<(String, String), NotARepoUrl> {
    let explicit = if let Some(i) = path.find(GIT_ROOT_DELIMITER) {
        let after = &path[i + GIT_ROOT_DELIMITER.len()..];
        let (repo, dir) = after.split_once('/').unwrap_or((after, ""));
        Some((
            format!("{}{repo}", &path[..i + GIT_ROOT_DELIMITER.len()]),
            dir,
        ))
    } else if let Some(i) = path.find("//") {
        Some((path[..i].to_string(), &path[i + 2..]))
    } else {
        path.find(GIT_SUFFIX).map(|i| {
            let end = i + GIT_SUFFIX.len();
            (path[..end].to_string(), &path[end..])
        })
    };
    let split = explicit.or_else(|| match default_segments {
        None => Some((path.to_string(), "")),
        Some(n) => {
            let segments: Vec<&str> = path.split('/').collect();
            (segments.len() >= n).then(|| {
                let rest_start = segments[..n].iter().map(|s| s.len() + 1).sum::<usize>();
                (
                    segments[..n].join("/"),
                    path.get(rest_start..).unwrap_or(""),
                )
            })
        }
    });
    let Some((repo, dir)) = split.filter(|(repo, _)| !repo.is_empty()) else {
        return Err(NotARepoUrl("failed to parse repo path segment".into()));
    };
    if exits_repo(dir) {
        return Err(NotARepoUrl(format!("url path exits repo: {path}")));
    }
    Ok((repo, dir.strip_prefix('/').unwrap_or(dir).to_string()))
}

/// Whether a directory inside the repository climbs out of it.
fn exits_repo(dir: &str) -> bool {
    let mut depth = 0usize;
    for component in Path::new(dir.trim_start_matches('/')).components() {
        match component {
            Component::ParentDir if depth == 0 => return true,
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// A relative path cleaned lexically (Go's `filepath.Clean`), `""` for `.`.
fn clean_relative(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> RepoSpec {
        RepoSpec::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// (url, clone url, directory, ref) as kustomize v5.8 parses them.
    #[test]
    fn parses_what_kustomize_parses() {
        let cases = [
            (
                "https://github.com/org/repo//deploy/base?ref=v1.2.0",
                "https://github.com/org/repo",
                "deploy/base",
                Some("v1.2.0"),
            ),
            (
                "https://github.com/org/repo/deploy/base?ref=main",
                "https://github.com/org/repo",
                "deploy/base",
                Some("main"),
            ),
            (
                "github.com/org/repo/deploy",
                "https://github.com/org/repo",
                "deploy",
                None,
            ),
            (
                "git@github.com:org/repo.git/deploy?version=v1",
                "git@github.com:org/repo.git",
                "deploy",
                Some("v1"),
            ),
            (
                "ssh://git@github.com/org/repo//x",
                "git@github.com:org/repo",
                "x",
                None,
            ),
            (
                "http://127.0.0.1:8080/git/app.git//deploy?ref=v2&ref=v3",
                "http://127.0.0.1:8080/git/app.git",
                "deploy",
                Some("v2"),
            ),
            (
                "http://user:secret@127.0.0.1:8080/git/app.git",
                "http://user:secret@127.0.0.1:8080/git/app.git",
                "",
                None,
            ),
            (
                "git@gitlab.example.com:group/sub/project.git//k8s",
                "git@gitlab.example.com:group/sub/project.git",
                "k8s",
                None,
            ),
            (
                "ssh://git@example.com:2222/org/repo.git/dir",
                "ssh://git@example.com:2222/org/repo.git",
                "dir",
                None,
            ),
            (
                "https://dev.azure.com/org/project/_git/repo/path/to",
                "https://dev.azure.com/org/project/_git/repo",
                "path/to",
                None,
            ),
            (
                "git::https://example.com/org/repo.git//a?ref=abc",
                "https://example.com/org/repo.git",
                "a",
                Some("abc"),
            ),
            (
                "file:///srv/repos/app.git//deploy",
                "file:///srv/repos/app.git",
                "deploy",
                None,
            ),
            ("file:///srv/repos/app", "file:///srv/repos/app", "", None),
        ];
        for (url, clone, dir, reference) in cases {
            let s = spec(url);
            assert_eq!(s.clone_url(), clone, "{url}");
            assert_eq!(s.kust_root_path, dir, "{url}");
            assert_eq!(s.reference.as_deref(), reference, "{url}");
            assert_eq!(s.raw(), url);
        }
    }

    #[test]
    fn local_paths_and_malformed_urls_are_not_repositories() {
        for path in [
            "../base",
            "base",
            "/abs/path",
            "deployment.yaml",
            "https://example.com/",
            "https://example.com/org",
            "https://example.com/org/repo//../x",
            "example.com/org/repo",
        ] {
            assert!(RepoSpec::parse(path).is_err(), "{path}");
        }
    }

    #[test]
    fn query_parameters() {
        let s = spec("https://example.com/o/r.git?timeout=61&submodules=false");
        assert_eq!(s.timeout, Duration::from_secs(61));
        assert!(!s.submodules);
        let s = spec("https://example.com/o/r.git?timeout=1m30s&submodules=maybe");
        assert_eq!(s.timeout, Duration::from_secs(90));
        assert!(s.submodules);
        let s = spec("https://example.com/o/r.git?timeout=-5s");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        // A query Go cannot parse falls back to every default.
        let s = spec("https://example.com/o/r.git?ref=v1;x&timeout=5");
        assert_eq!((s.reference, s.timeout), (None, DEFAULT_TIMEOUT));
    }

    #[test]
    fn origin_paths() {
        assert_eq!(
            spec("https://example.com/o/r.git//a/b/../c").origin_path(),
            "a/c"
        );
        assert_eq!(
            spec("https://example.com/o/r.git").origin_path(),
            "notCloned"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redacted("https://bot:secret@example.com/o/r.git//x?ref=v1"),
            "https://bot:*****@example.com/o/r.git//x?ref=v1"
        );
        assert_eq!(
            redacted("https://example.com/a@b"),
            "https://example.com/a@b"
        );
        assert_eq!(redacted("git@github.com:o/r"), "git@github.com:o/r");
    }

    #[test]
    fn remote_files() {
        assert!(is_remote_file("https://raw.example.com/a.yaml"));
        assert!(is_remote_file("HTTP://example.com/a.yaml"));
        assert!(!is_remote_file("git@github.com:org/repo"));
        assert!(!is_remote_file("a.yaml"));
    }
}
