//! Which files of a source go into its artifact: Flux's `.sourceignore` rules.
//!
//! Patterns use `.gitignore` syntax. They come from Flux's built-in excludes,
//! from `.sourceignore` files anywhere in the tree (scoped to their directory)
//! and from `spec.ignore`. As in Flux, the built-in excludes beyond the VCS ones
//! apply only when there are no other patterns at all; later patterns take
//! precedence over earlier ones.

use std::path::{Path, PathBuf};

use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::Error;

/// Name of the per-directory ignore file.
pub const IGNORE_FILE: &str = ".sourceignore";

/// Always excluded: version control metadata.
pub const EXCLUDE_VCS: &[&str] = &[".git/", ".gitignore", ".gitmodules", ".gitattributes"];
/// Excluded by default: binary media and archives.
pub const EXCLUDE_EXT: &[&str] = &[
    "*.jpg", "*.jpeg", "*.gif", "*.png", "*.wmv", "*.flv", "*.tar.gz", "*.zip",
];
/// Excluded by default: CI configuration.
pub const EXCLUDE_CI: &[&str] = &[
    ".github/",
    ".circleci/",
    ".travis.yml",
    ".gitlab-ci.yml",
    "appveyor.yml",
    ".drone.yml",
    "cloudbuild.yaml",
    "codeship-services.yml",
    "codeship-steps.yml",
];
/// Excluded by default: tool configuration that must not reach the cluster.
pub const EXCLUDE_EXTRA: &[&str] = &["**/.goreleaser.yml", "**/.sops.yaml", "**/.flux.yaml"];

/// Patterns of one scope: a directory (relative to the root, empty for the
/// root) and the lines that apply inside it.
struct Scope {
    dir: PathBuf,
    matcher: Gitignore,
}

/// Decides for each path of a tree whether it is left out of the artifact.
pub struct SourceIgnore {
    /// In increasing precedence.
    scopes: Vec<Scope>,
}

impl SourceIgnore {
    /// The rules for the tree at `root`: its `.sourceignore` files and `spec.ignore`.
    pub fn load(root: &Path, spec_ignore: Option<&str>) -> Result<SourceIgnore, Error> {
        let mut files = Vec::new();
        collect_ignore_files(root, Path::new(""), &mut files)?;
        Self::from_parts(&files, spec_ignore)
    }

    /// Only the built-in rules (no tree to read), for artifacts made from files
    /// rather than a checkout.
    pub fn defaults() -> SourceIgnore {
        // The built-in patterns are valid; an empty matcher is the safe fallback.
        Self::from_parts(&[], None).unwrap_or(SourceIgnore { scopes: Vec::new() })
    }

    /// No rules at all: every file goes into the artifact (a Bucket's, whose
    /// rules were applied to the object keys already).
    pub fn none() -> SourceIgnore {
        SourceIgnore { scopes: Vec::new() }
    }

    /// A Bucket's rules, as Flux applies them to object keys: the bucket's
    /// root `.sourceignore` object, then `spec.ignore`, without built-in
    /// excludes.
    pub fn for_keys(ignore_file: Option<&str>, spec_ignore: Option<&str>) -> Result<Self, Error> {
        let mut scopes = Vec::new();
        if let Some(text) = ignore_file {
            scopes.push(scope(Path::new(""), pattern_lines(text), IGNORE_FILE)?);
        }
        if let Some(text) = spec_ignore {
            scopes.push(scope(Path::new(""), pattern_lines(text), "spec.ignore")?);
        }
        Ok(SourceIgnore { scopes })
    }

    /// Whether the object `key` (`a/b/c.yaml`) is excluded: itself or any of
    /// its directories, as when walking a tree.
    pub fn is_ignored_key(&self, key: &str) -> bool {
        let parts: Vec<&str> = key.split('/').filter(|p| !p.is_empty()).collect();
        let mut path = PathBuf::new();
        for (i, part) in parts.iter().enumerate() {
            path.push(part);
            if self.is_ignored(&path, i + 1 < parts.len()) {
                return true;
            }
        }
        false
    }

    /// Rules from `.sourceignore` contents (directory, text) in walk order and
    /// `spec.ignore`.
    fn from_parts(
        files: &[(PathBuf, String)],
        spec_ignore: Option<&str>,
    ) -> Result<SourceIgnore, Error> {
        let user_lines = files
            .iter()
            .map(|(_, text)| pattern_lines(text).count())
            .sum::<usize>()
            + spec_ignore.map_or(0, |text| pattern_lines(text).count());
        let mut builtin: Vec<&str> = EXCLUDE_VCS.to_vec();
        if user_lines == 0 {
            builtin.extend(EXCLUDE_EXT);
            builtin.extend(EXCLUDE_CI);
            builtin.extend(EXCLUDE_EXTRA);
        }
        let mut scopes = vec![scope(
            Path::new(""),
            builtin.into_iter(),
            "built-in excludes",
        )?];
        for (dir, text) in files {
            let origin = dir.join(IGNORE_FILE).display().to_string();
            scopes.push(scope(dir, pattern_lines(text), &origin)?);
        }
        if let Some(text) = spec_ignore {
            scopes.push(scope(Path::new(""), pattern_lines(text), "spec.ignore")?);
        }
        Ok(SourceIgnore { scopes })
    }

    /// Whether `path` (relative to the root) is excluded.
    pub fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        for scope in self.scopes.iter().rev() {
            let Ok(inner) = path.strip_prefix(&scope.dir) else {
                continue;
            };
            if inner.as_os_str().is_empty() {
                continue;
            }
            match scope.matcher.matched(inner, is_dir) {
                ignore::Match::Ignore(_) => return true,
                ignore::Match::Whitelist(_) => return false,
                ignore::Match::None => {}
            }
        }
        false
    }
}

fn pattern_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
}

fn scope<'a>(
    dir: &Path,
    lines: impl Iterator<Item = &'a str>,
    origin: &str,
) -> Result<Scope, Error> {
    let mut builder = GitignoreBuilder::new("");
    for line in lines {
        builder
            .add_line(None, line)
            .map_err(|e| Error::InvalidIgnore(format!("{origin}: {e}")))?;
    }
    let matcher = builder
        .build()
        .map_err(|e| Error::InvalidIgnore(format!("{origin}: {e}")))?;
    Ok(Scope {
        dir: dir.to_path_buf(),
        matcher,
    })
}

/// Collects `.sourceignore` files from `root/rel` downwards, parents before
/// children and siblings in name order, never entering `.git`.
fn collect_ignore_files(
    root: &Path,
    rel: &Path,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<(), Error> {
    let dir = root.join(rel);
    let file = dir.join(IGNORE_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => out.push((rel.to_path_buf(), text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", file.display()))(e)),
    }
    let mut subdirs = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(Error::io(format!("listing {}", dir.display())))? {
        let entry = entry.map_err(Error::io(format!("listing {}", dir.display())))?;
        let file_type = entry
            .file_type()
            .map_err(Error::io(format!("inspecting {}", entry.path().display())))?;
        if file_type.is_dir() && entry.file_name() != ".git" {
            subdirs.push(entry.file_name());
        }
    }
    subdirs.sort();
    for name in subdirs {
        collect_ignore_files(root, &rel.join(name), out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(files: &[(&str, &str)], spec: Option<&str>) -> SourceIgnore {
        let files: Vec<(PathBuf, String)> = files
            .iter()
            .map(|(dir, text)| (PathBuf::from(dir), text.to_string()))
            .collect();
        SourceIgnore::from_parts(&files, spec).expect("valid patterns")
    }

    #[test]
    fn defaults_exclude_vcs_ci_media_and_tool_config() {
        let r = rules(&[], None);
        assert!(r.is_ignored(Path::new(".git"), true));
        assert!(r.is_ignored(Path::new(".gitignore"), false));
        assert!(r.is_ignored(Path::new(".github"), true));
        assert!(r.is_ignored(Path::new("docs/logo.png"), false));
        assert!(r.is_ignored(Path::new("release.tar.gz"), false));
        assert!(r.is_ignored(Path::new("deep/dir/.sops.yaml"), false));
        assert!(r.is_ignored(Path::new("appveyor.yml"), false));
        assert!(!r.is_ignored(Path::new("deploy/app.yaml"), false));
        assert!(!r.is_ignored(Path::new("README.md"), false));
    }

    #[test]
    fn spec_ignore_replaces_defaults_but_keeps_vcs() {
        let r = rules(&[], Some("# comment\n/secrets/\n*.md\n"));
        assert!(r.is_ignored(Path::new(".git"), true));
        assert!(r.is_ignored(Path::new("README.md"), false));
        assert!(r.is_ignored(Path::new("secrets"), true));
        assert!(!r.is_ignored(Path::new("app/secrets"), true));
        // The media defaults no longer apply.
        assert!(!r.is_ignored(Path::new("logo.png"), false));
    }

    #[test]
    fn sourceignore_files_are_scoped_to_their_directory() {
        let r = rules(&[("apps", "*.txt\n!keep.txt\n")], None);
        assert!(r.is_ignored(Path::new("apps/notes.txt"), false));
        assert!(r.is_ignored(Path::new("apps/sub/notes.txt"), false));
        assert!(!r.is_ignored(Path::new("apps/keep.txt"), false));
        assert!(!r.is_ignored(Path::new("other/notes.txt"), false));
        assert!(!r.is_ignored(Path::new("notes.txt"), false));
    }

    #[test]
    fn spec_ignore_takes_precedence_over_sourceignore() {
        let r = rules(&[("", "*.yaml\n")], Some("!keep.yaml\n"));
        assert!(r.is_ignored(Path::new("a.yaml"), false));
        assert!(!r.is_ignored(Path::new("keep.yaml"), false));
    }

    #[test]
    fn directory_only_patterns() {
        let r = rules(&[], Some("build/\n"));
        assert!(r.is_ignored(Path::new("build"), true));
        assert!(!r.is_ignored(Path::new("build"), false));
    }

    #[test]
    fn bucket_keys_match_without_builtin_excludes() {
        let r = SourceIgnore::for_keys(Some("*.md\n"), Some("/secrets/\n!keep.md\n"))
            .expect("valid patterns");
        assert!(r.is_ignored_key("docs/README.md"));
        assert!(!r.is_ignored_key("keep.md"));
        assert!(r.is_ignored_key("secrets/token.yaml"));
        assert!(!r.is_ignored_key("apps/secrets"));
        // No built-in excludes: Flux indexes such keys.
        assert!(!r.is_ignored_key(".github/workflows/ci.yaml"));
        assert!(!r.is_ignored_key("logo.png"));
        assert!(!SourceIgnore::none().is_ignored(Path::new(".git"), true));
    }

    #[test]
    fn loads_files_from_a_tree() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("a/b")).expect("mkdir");
        std::fs::create_dir_all(dir.path().join(".git")).expect("mkdir");
        std::fs::write(dir.path().join(".sourceignore"), "*.log\n").expect("write");
        std::fs::write(dir.path().join("a/b/.sourceignore"), "x.yaml\n").expect("write");
        std::fs::write(dir.path().join(".git/.sourceignore"), "*\n").expect("write");
        let r = SourceIgnore::load(dir.path(), None).expect("load");
        assert!(r.is_ignored(Path::new("debug.log"), false));
        assert!(r.is_ignored(Path::new("a/b/x.yaml"), false));
        assert!(!r.is_ignored(Path::new("a/x.yaml"), false));
        // Files under .git never contribute patterns.
        assert!(!r.is_ignored(Path::new("a/y.yaml"), false));
    }
}
