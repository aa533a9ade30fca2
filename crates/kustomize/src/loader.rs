//! File access for a build, confined to a source root.
//!
//! Every path is resolved (symlinks included) and must stay inside the
//! source root given to the build, whatever the kustomization asks for. On
//! top of that, kustomize's load restrictor applies to files:
//! `LoadRestrictionsRootOnly` (kustomize's default) only lets a
//! kustomization read files in or below its own directory, while
//! `LoadRestrictionsNone` (what Flux uses, within the source root) lets it
//! read any file of the source tree. Directories (bases, components) may be
//! anywhere in the source root either way, as in kustomize, but a base may
//! not contain a kustomization that refers to it (a cycle).
//!
//! Remote targets go through the build's [`RemoteAccess`]: an HTTP(S) file
//! is fetched in place of a local one, and a Git URL as a base or component
//! is cloned into a temporary directory that becomes a source root of its
//! own — a remote kustomization reads nothing of the local tree, and its
//! files are always restricted to its own directory, as in kustomize. The
//! clones are removed when the build ends.

use std::borrow::Cow;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::remote::{RemoteFetcher, RepoSpec, is_remote_file, redacted};

/// Whether a build may fetch remote bases, components and files.
#[derive(Clone)]
pub enum RemoteAccess {
    /// Remote targets are refused, naming them; the text says why.
    Refused(Cow<'static, str>),
    /// Remote targets are fetched with this fetcher.
    Fetch(Arc<dyn RemoteFetcher>),
}

impl Default for RemoteAccess {
    fn default() -> Self {
        RemoteAccess::Refused(Cow::Borrowed("this build does not fetch remote targets"))
    }
}

impl fmt::Debug for RemoteAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteAccess::Refused(why) => f.debug_tuple("Refused").field(why).finish(),
            RemoteAccess::Fetch(fetcher) => f.debug_tuple("Fetch").field(fetcher).finish(),
        }
    }
}

/// A build's remote access and the clones it made, kept until it ends.
#[derive(Debug)]
struct Remotes {
    access: RemoteAccess,
    clones: Mutex<Vec<tempfile::TempDir>>,
}

/// kustomize's `--load-restrictor`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadRestrictor {
    /// Files must be in or below the kustomization's directory.
    #[default]
    RootOnly,
    /// Files may be anywhere in the source root.
    None,
}

/// The source tree a build may read.
#[derive(Debug)]
pub struct SourceRoot {
    root: PathBuf,
}

fn io_err(path: &Path, cause: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Joins `rel` to `base` and normalises `.` and `..` lexically.
pub fn join_clean(base: &Path, rel: &str) -> PathBuf {
    let joined = base.join(rel);
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

impl SourceRoot {
    /// Confines a build to `root` (which must exist).
    pub fn new(root: impl AsRef<Path>) -> Result<SourceRoot> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).map_err(|e| io_err(root, e))?;
        Ok(SourceRoot { root })
    }

    /// The source root (resolved).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves a path (following symlinks) and checks it stays inside.
    fn confine(&self, path: &Path) -> Result<PathBuf> {
        // Reject lexical escapes before touching the file system.
        let lexical = join_clean(Path::new("/"), &path.to_string_lossy());
        if !lexical.starts_with(&self.root) {
            return Err(Error::OutsideSourceRoot {
                path: path.to_path_buf(),
                root: self.root.clone(),
            });
        }
        let real = std::fs::canonicalize(path).map_err(|e| io_err(path, e))?;
        if !real.starts_with(&self.root) {
            return Err(Error::OutsideSourceRoot {
                path: path.to_path_buf(),
                root: self.root.clone(),
            });
        }
        Ok(real)
    }
}

/// Reads files for one kustomization directory.
#[derive(Clone, Debug)]
pub struct Loader {
    source: Arc<SourceRoot>,
    restrictor: LoadRestrictor,
    /// This loader's directory (resolved).
    root: PathBuf,
    /// The directories of the kustomizations that led here, outermost first.
    ancestors: Vec<PathBuf>,
    remotes: Arc<Remotes>,
    /// The remote repositories that led here (as written), outermost first.
    repos: Vec<String>,
}

impl Loader {
    /// A loader for the top directory of a build that refuses remote targets.
    pub fn new(source: Arc<SourceRoot>, dir: &Path, restrictor: LoadRestrictor) -> Result<Loader> {
        Loader::with_remote_access(source, dir, restrictor, RemoteAccess::default())
    }

    /// A loader for the top directory of a build, with its remote access.
    pub fn with_remote_access(
        source: Arc<SourceRoot>,
        dir: &Path,
        restrictor: LoadRestrictor,
        access: RemoteAccess,
    ) -> Result<Loader> {
        let remotes = Arc::new(Remotes {
            access,
            clones: Mutex::new(Vec::new()),
        });
        Loader::rooted(source, dir, restrictor, remotes, Vec::new())
    }

    fn rooted(
        source: Arc<SourceRoot>,
        dir: &Path,
        restrictor: LoadRestrictor,
        remotes: Arc<Remotes>,
        repos: Vec<String>,
    ) -> Result<Loader> {
        let dir = if dir.is_absolute() {
            dir.to_path_buf()
        } else {
            source.path().join(dir)
        };
        let root = source.confine(&dir)?;
        if !root.is_dir() {
            return Err(Error::NotADirectory { path: dir });
        }
        Ok(Loader {
            source,
            restrictor,
            root,
            ancestors: Vec::new(),
            remotes,
            repos,
        })
    }

    /// This loader's directory (resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The load restrictor that applies to files.
    pub fn restrictor(&self) -> LoadRestrictor {
        self.restrictor
    }

    fn resolve_file(&self, path: &str) -> Result<PathBuf> {
        let joined = join_clean(&self.root, path);
        let real = self.source.confine(&joined)?;
        if real.is_dir() {
            return Err(Error::NotAFile { path: joined });
        }
        if self.restrictor == LoadRestrictor::RootOnly {
            let dir = real.parent().unwrap_or(&real);
            if !dir.starts_with(&self.root) {
                return Err(Error::OutsideRoot {
                    path: joined,
                    root: self.root.clone(),
                });
            }
        }
        Ok(real)
    }

    /// Reads a file relative to this loader's directory, or an HTTP(S) URL.
    pub fn load(&self, path: &str) -> Result<Vec<u8>> {
        if is_remote_file(path) {
            return self.fetch_file(path);
        }
        let real = self.resolve_file(path)?;
        std::fs::read(&real).map_err(|e| io_err(&real, e))
    }

    /// Reads a UTF-8 text file.
    pub fn load_string(&self, path: &str) -> Result<String> {
        let bytes = self.load(path)?;
        String::from_utf8(bytes).map_err(|e| {
            io_err(
                &join_clean(&self.root, path),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
            )
        })
    }

    /// Whether `name` exists as a file in this directory.
    pub fn has_file(&self, name: &str) -> bool {
        self.root.join(name).is_file()
    }

    /// A loader for a base or component directory.
    pub fn child(&self, path: &str) -> Result<Loader> {
        if path.is_empty() {
            return Err(Error::resource("new root cannot be empty"));
        }
        if let Ok(repo) = RepoSpec::parse(path) {
            return self.clone_child(repo);
        }
        if Path::new(path).is_absolute() {
            return Err(Error::resource(format!(
                "new root '{path}' cannot be absolute"
            )));
        }
        let joined = join_clean(&self.root, path);
        let real = self.source.confine(&joined)?;
        if !real.is_dir() {
            return Err(Error::NotADirectory { path: joined });
        }
        let mut visited = self.ancestors.clone();
        visited.push(self.root.clone());
        for v in &visited {
            if v.starts_with(&real) {
                return Err(Error::Cycle {
                    candidate: real,
                    visited: self.root.clone(),
                });
            }
        }
        Ok(Loader {
            source: self.source.clone(),
            restrictor: self.restrictor,
            root: real,
            ancestors: visited,
            remotes: self.remotes.clone(),
            repos: self.repos.clone(),
        })
    }

    fn fetcher(&self, target: &str) -> Result<&dyn RemoteFetcher> {
        match &self.remotes.access {
            RemoteAccess::Fetch(fetcher) => Ok(fetcher.as_ref()),
            RemoteAccess::Refused(why) => Err(Error::RemoteRefused {
                target: redacted(target),
                why: why.to_string(),
            }),
        }
    }

    /// GETs a remote file. A failed status is kustomize's HTTP error, unless
    /// the URL is also a Git URL: the caller then tries it as a repository.
    fn fetch_file(&self, url: &str) -> Result<Vec<u8>> {
        let response = self
            .fetcher(url)?
            .get(url)
            .map_err(|message| Error::Remote {
                target: redacted(url),
                message,
            })?;
        if (200..300).contains(&response.status) {
            return Ok(response.body);
        }
        if RepoSpec::parse(url).is_ok() {
            return Err(Error::resource("URL is a git repository"));
        }
        Err(Error::Http {
            url: redacted(url),
            status: response.status,
        })
    }

    /// A loader rooted in a fresh clone of `repo`: a source root of its
    /// own, restricted to the kustomization's directory.
    fn clone_child(&self, repo: RepoSpec) -> Result<Loader> {
        let raw = repo.raw().to_string();
        // kustomize's rule: a URL that prefixes one that led here is a cycle.
        if let Some(previous) = self.repos.iter().find(|p| p.starts_with(&raw)) {
            return Err(Error::resource(format!(
                "cycle detected: URI '{}' referenced by previous URI '{}'",
                redacted(&raw),
                redacted(previous)
            )));
        }
        let fetcher = self.fetcher(&raw)?;
        let remote_err = |message: String| Error::Remote {
            target: redacted(&raw),
            message,
        };
        let dir = tempfile::Builder::new()
            .prefix("kustomize-")
            .tempdir()
            .map_err(|e| remote_err(format!("creating a directory for the clone: {e}")))?;
        fetcher.clone_repo(&repo, dir.path()).map_err(remote_err)?;
        let source = Arc::new(SourceRoot::new(dir.path())?);
        let kust_root = join_clean(source.path(), &repo.kust_root_path);
        if !kust_root.is_dir() {
            return Err(remote_err(format!(
                "'{}' is not a directory in the repository {}",
                repo.kust_root_path,
                redacted(&repo.clone_url())
            )));
        }
        let mut repos = self.repos.clone();
        repos.push(raw.clone());
        let loader = Loader::rooted(
            source,
            &kust_root,
            // Clones never read outside the kustomization's directory.
            LoadRestrictor::RootOnly,
            self.remotes.clone(),
            repos,
        )?;
        self.remotes
            .clones
            .lock()
            .map_err(|_| remote_err("clone bookkeeping poisoned".into()))?
            .push(dir);
        Ok(loader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confinement_and_restrictor() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base");
        let overlay = dir.path().join("overlay");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::create_dir_all(&overlay).unwrap();
        std::fs::write(base.join("a.yaml"), "x").unwrap();
        std::fs::write(overlay.join("b.yaml"), "y").unwrap();
        let src = Arc::new(SourceRoot::new(dir.path()).unwrap());
        let ldr = Loader::new(src.clone(), Path::new("overlay"), LoadRestrictor::RootOnly).unwrap();
        assert_eq!(ldr.load("b.yaml").unwrap(), b"y");
        assert!(matches!(
            ldr.load("../base/a.yaml"),
            Err(Error::OutsideRoot { .. })
        ));
        assert!(matches!(
            ldr.load("../../etc/passwd"),
            Err(Error::OutsideSourceRoot { .. })
        ));
        let child = ldr.child("../base").unwrap();
        assert_eq!(child.load("a.yaml").unwrap(), b"x");
        assert!(matches!(
            child.child("../overlay").and_then(|c| c.child("../base")),
            Err(Error::Cycle { .. })
        ));
        assert!(matches!(child.child(".."), Err(Error::Cycle { .. })));
        let free = Loader::new(src, Path::new("overlay"), LoadRestrictor::None).unwrap();
        assert_eq!(free.load("../base/a.yaml").unwrap(), b"x");
        assert!(matches!(
            free.load("/etc/passwd"),
            Err(Error::OutsideSourceRoot { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_cannot_escape() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        let src = Arc::new(SourceRoot::new(dir.path()).unwrap());
        let ldr = Loader::new(src, Path::new("."), LoadRestrictor::None).unwrap();
        assert!(matches!(
            ldr.load("link"),
            Err(Error::OutsideSourceRoot { .. })
        ));
    }
}
