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

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

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
}

impl Loader {
    /// A loader for the top directory of a build.
    pub fn new(source: Arc<SourceRoot>, dir: &Path, restrictor: LoadRestrictor) -> Result<Loader> {
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
        if is_remote(path) {
            return Err(Error::resource(format!(
                "remote resource '{path}' is not supported: resources must be local files"
            )));
        }
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

    /// Reads a file relative to this loader's directory.
    pub fn load(&self, path: &str) -> Result<Vec<u8>> {
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
        if is_remote(path) {
            return Err(Error::resource(format!(
                "remote base '{path}' is not supported: bases must be local directories"
            )));
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
        })
    }
}

/// kustomize treats these as remote; this crate never fetches them.
fn is_remote(path: &str) -> bool {
    path.starts_with("http://")
        || path.starts_with("https://")
        || path.starts_with("git@")
        || path.starts_with("git::")
        || path.starts_with("ssh://")
        || path.starts_with("github.com/")
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
