//! Normalised tar.gz archives of a directory, so that equal trees always give
//! byte-equal archives and therefore equal digests.
//!
//! As Flux does: only regular files and directories (symlinks, devices and the
//! like are left out), names relative to the root, owner 0:0 with no user or
//! group names, zero timestamps, and fixed modes (directories 0750, executable
//! files 0700, other files 0600). Entries are written depth-first in byte order
//! of their names and the gzip header carries no name or time.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use flate2::{Compression, GzBuilder};
use tar::{EntryType, Header};

use crate::Error;
use crate::source_ignore::SourceIgnore;

/// Mode of directories in an archive.
pub const DIR_MODE: u32 = 0o750;
/// Mode of executable files in an archive.
pub const EXE_FILE_MODE: u32 = 0o700;
/// Mode of other files in an archive.
pub const FILE_MODE: u32 = 0o600;

/// Writes the archive of `dir`, without the paths `ignore` excludes, into `out`.
/// Fails once the files' total size would exceed `max_size` bytes.
pub fn write_tar_gz<W: Write>(
    dir: &Path,
    ignore: &SourceIgnore,
    max_size: Option<u64>,
    out: W,
) -> Result<W, Error> {
    let metadata =
        std::fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?;
    if !metadata.is_dir() {
        return Err(Error::InvalidPath(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let gz = GzBuilder::new().mtime(0).write(out, Compression::default());
    let mut tar = tar::Builder::new(gz);
    let mut budget = Budget {
        used: 0,
        max: max_size,
    };
    append_dir(&mut tar, dir, Path::new(""), ignore, &mut budget)?;
    let gz = tar
        .into_inner()
        .map_err(Error::io("finishing the tar stream"))?;
    gz.finish().map_err(Error::io("finishing the gzip stream"))
}

struct Budget {
    used: u64,
    max: Option<u64>,
}

impl Budget {
    fn take(&mut self, bytes: u64) -> Result<(), Error> {
        self.used = self.used.saturating_add(bytes);
        match self.max {
            Some(max) if self.used > max => Err(Error::SizeLimit { limit: max }),
            _ => Ok(()),
        }
    }
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    ignore: &SourceIgnore,
    budget: &mut Budget,
) -> Result<(), Error> {
    let dir = root.join(rel);
    let mut entries = std::fs::read_dir(&dir)
        .map_err(Error::io(format!("listing {}", dir.display())))?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::io(format!("listing {}", dir.display())))?;
    entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in entries {
        let rel_path = rel.join(&name);
        let path = root.join(&rel_path);
        // Never follow links: a symlink in a repository could point anywhere.
        let meta = std::fs::symlink_metadata(&path)
            .map_err(Error::io(format!("inspecting {}", path.display())))?;
        let file_type = meta.file_type();
        if !(file_type.is_dir() || file_type.is_file()) {
            continue;
        }
        if ignore.is_ignored(&rel_path, file_type.is_dir()) {
            continue;
        }
        let mut header = Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        if file_type.is_dir() {
            header.set_entry_type(EntryType::Directory);
            header.set_mode(DIR_MODE);
            header.set_size(0);
            tar.append_data(&mut header, &rel_path, std::io::empty())
                .map_err(Error::io(format!("archiving {}", rel_path.display())))?;
            append_dir(tar, root, &rel_path, ignore, budget)?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            budget.take(meta.len())?;
            let executable = meta.permissions().mode() & 0o111 != 0;
            header.set_entry_type(EntryType::Regular);
            header.set_mode(if executable { EXE_FILE_MODE } else { FILE_MODE });
            header.set_size(meta.len());
            let file =
                File::open(&path).map_err(Error::io(format!("opening {}", path.display())))?;
            tar.append_data(&mut header, &rel_path, file)
                .map_err(Error::io(format!("archiving {}", rel_path.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (path, content) in files {
            let full = dir.path().join(path);
            std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
            std::fs::write(full, content).expect("write");
        }
        dir
    }

    fn archive(dir: &Path) -> Vec<u8> {
        write_tar_gz(dir, &SourceIgnore::defaults(), None, Vec::new()).expect("archive")
    }

    fn entries(bytes: &[u8]) -> Vec<(String, u32, u64, u64, String)> {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        ar.entries()
            .expect("entries")
            .map(|e| {
                let mut e = e.expect("entry");
                let h = e.header().clone();
                let mut content = String::new();
                e.read_to_string(&mut content).expect("read");
                (
                    e.path().expect("path").display().to_string(),
                    h.mode().expect("mode"),
                    h.uid().expect("uid"),
                    h.mtime().expect("mtime"),
                    content,
                )
            })
            .collect()
    }

    #[test]
    fn equal_trees_give_equal_bytes() {
        let a = tree(&[("b.yaml", "b"), ("a/x.yaml", "x"), ("a/y.yaml", "y")]);
        // Same content, created in another order at another time.
        let b = tree(&[("a/y.yaml", "y"), ("b.yaml", "b"), ("a/x.yaml", "x")]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        std::fs::write(b.path().join("a/x.yaml"), "x").expect("rewrite");
        assert_eq!(archive(a.path()), archive(b.path()));
        let c = tree(&[("b.yaml", "B"), ("a/x.yaml", "x"), ("a/y.yaml", "y")]);
        assert_ne!(archive(a.path()), archive(c.path()));
    }

    #[test]
    fn headers_are_normalised_and_sorted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&[
            ("z.txt", "z"),
            ("bin/run.sh", "#!/bin/sh\n"),
            ("a.txt", "a"),
        ]);
        std::fs::set_permissions(
            dir.path().join("bin/run.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .expect("chmod");
        std::fs::set_permissions(
            dir.path().join("a.txt"),
            std::fs::Permissions::from_mode(0o664),
        )
        .expect("chmod");
        let got = entries(&archive(dir.path()));
        let names: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["a.txt", "bin", "bin/run.sh", "z.txt"]);
        let modes: Vec<_> = got.iter().map(|e| e.1).collect();
        assert_eq!(modes, [FILE_MODE, DIR_MODE, EXE_FILE_MODE, FILE_MODE]);
        assert!(got.iter().all(|e| e.2 == 0 && e.3 == 0));
        assert_eq!(got[2].4, "#!/bin/sh\n");
    }

    #[test]
    fn symlinks_and_ignored_paths_are_left_out() {
        let dir = tree(&[
            ("deploy/app.yaml", "app"),
            (".git/HEAD", "ref"),
            ("logo.png", "png"),
            (".github/workflows/ci.yaml", "ci"),
        ]);
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).expect("symlink");
        std::os::unix::fs::symlink("deploy", dir.path().join("link-dir")).expect("symlink");
        let names: Vec<_> = entries(&archive(dir.path()))
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, ["deploy", "deploy/app.yaml"]);
    }

    #[test]
    fn long_names_survive() {
        let long = format!("{}/file.yaml", "d".repeat(150));
        let dir = tree(&[(long.as_str(), "deep")]);
        let got = entries(&archive(dir.path()));
        assert_eq!(got.last().map(|e| e.0.as_str()), Some(long.as_str()));
    }

    #[test]
    fn size_limit_is_enforced() {
        let dir = tree(&[("a", "12345"), ("b", "67890")]);
        let err =
            write_tar_gz(dir.path(), &SourceIgnore::defaults(), Some(8), Vec::new()).unwrap_err();
        assert!(matches!(err, Error::SizeLimit { limit: 8 }), "{err:?}");
        assert!(write_tar_gz(dir.path(), &SourceIgnore::defaults(), Some(10), Vec::new()).is_ok());
    }
}
