//! Recording a checkout's work tree as a new commit on its `HEAD`, optionally
//! signed with OpenPGP, the way image automation commits its updates.
//!
//! gix cannot build a tree from the index, so the tree is built from the work
//! tree itself: every file under it except `.git`, which is what staging all
//! changes (`git add --all`) amounts to in a checkout nobody else touches.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gix::ObjectId;
use gix::bstr::{BStr, BString};
use gix::objs::WriteTo;
use gix::objs::tree::{Entry, EntryKind, EntryMode};

use crate::Error;

/// Who made a commit and when. Flux uses the same person as author and committer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The person's name.
    pub name: String,
    /// The person's e-mail address.
    pub email: String,
    /// When the commit was made; recorded in whole seconds, in UTC.
    pub time: jiff::Timestamp,
}

/// A key to sign commits with.
#[derive(Clone, PartialEq, Eq)]
pub enum SigningKey {
    /// An ASCII-armored OpenPGP secret key (a Flux Secret's `git.asc`) and the
    /// passphrase that unlocks it (the Secret's `passphrase`). The first key of
    /// the armor block is used: its newest signing subkey, or the primary key.
    OpenPgp {
        /// `gpg --export-secret-keys --armor` output.
        armored_secret_key: Vec<u8>,
        /// The passphrase, when the key is encrypted.
        passphrase: Option<String>,
    },
}

// Key material never appears in logs or error messages.
impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigningKey::OpenPgp { passphrase, .. } => f
                .debug_struct("SigningKey::OpenPgp")
                .field("passphrase", &passphrase.is_some())
                .finish_non_exhaustive(),
        }
    }
}

/// What to commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitRequest {
    /// The commit message, recorded as given.
    pub message: String,
    /// Author and committer.
    pub author: Signature,
    /// Signs the commit when given.
    pub signing_key: Option<SigningKey>,
}

/// Stages every change under the work tree of the checkout in `dir` (modified,
/// added and deleted files, executable bits and symbolic links; nothing is
/// ignored but `.git`) and commits it on `HEAD`.
///
/// Returns `None` when the tree equals `HEAD`'s (no empty commit is made),
/// otherwise the new commit's hex id. `HEAD`, and the branch it names when it
/// is not detached, move to the new commit; the index is rewritten to match it.
pub async fn commit(dir: &Path, request: &CommitRequest) -> Result<Option<String>, Error> {
    let dir = dir.to_path_buf();
    let request = request.clone();
    let worker_dir = dir.clone();
    // Unlocking a key (its S2K hashing) and hashing the work tree are blocking work.
    tokio::task::spawn_blocking(move || commit_blocking(&worker_dir, &request))
        .await
        .map_err(|join| Error::Commit {
            dir,
            message: format!("commit worker failed: {join}"),
        })?
}

fn commit_blocking(dir: &Path, request: &CommitRequest) -> Result<Option<String>, Error> {
    // Fail on an unusable key before any work is done.
    let signer = request
        .signing_key
        .as_ref()
        .map(crate::openpgp::Signer::new)
        .transpose()?;
    let fail = |message: String| Error::Commit {
        dir: dir.to_path_buf(),
        message,
    };
    let repo = gix::open_opts(dir, gix::open::Options::isolated())
        .map_err(|e| fail(format!("cannot open the repository: {e}")))?;
    let workdir = repo
        .workdir()
        .ok_or_else(|| fail("the repository has no work tree".into()))?
        .to_path_buf();
    let head = repo
        .head()
        .map_err(|e| fail(format!("cannot read HEAD: {e}")))?;
    let parent = head.id().map(|id| id.detach());
    let head_tree = match parent {
        Some(parent) => Some(
            repo.find_commit(parent)
                .and_then(|c| c.tree_id())
                .map_err(|e| fail(format!("cannot read the tree of HEAD ({parent}): {e}")))?
                .detach(),
        ),
        None => None,
    };
    let tree = write_tree(&repo, &workdir, head_tree)
        .map_err(fail)?
        .unwrap_or_else(|| ObjectId::empty_tree(repo.object_hash()));
    if Some(tree) == head_tree {
        return Ok(None);
    }

    let signature = actor(&request.author);
    let mut object = gix::objs::Commit {
        tree,
        parents: parent.into_iter().collect(),
        author: signature.clone(),
        committer: signature.clone(),
        encoding: None,
        message: request.message.as_str().into(),
        extra_headers: Vec::new(),
    };
    if let Some(signer) = &signer {
        // The signature covers the object exactly as it is without the
        // header, which is what `git verify-commit` cuts it out to check.
        let mut payload = Vec::new();
        object
            .write_to(&mut payload)
            .map_err(|e| fail(format!("cannot serialise the commit: {e}")))?;
        let armored = signer.sign(&payload)?;
        object.extra_headers.push(("gpgsig".into(), armored.into()));
    }
    let id = repo
        .write_object(&object)
        .map_err(|e| fail(format!("cannot write the commit: {e}")))?
        .detach();

    // Through HEAD to the branch it names, as `git commit` does, and only if
    // nothing moved HEAD meanwhile.
    let expected = match parent {
        Some(parent) => gix::refs::transaction::PreviousValue::MustExistAndMatch(parent.into()),
        None => gix::refs::transaction::PreviousValue::MustNotExist,
    };
    let head_name: gix::refs::FullName = "HEAD"
        .try_into()
        .map_err(|e| fail(format!("invalid reference name: {e}")))?;
    let log = gix::reference::log::message("commit", request.message.as_str().into(), 1);
    let mut time = gix::date::parse::TimeBuf::default();
    repo.edit_references_as(
        [gix::refs::transaction::RefEdit::update(head_name, id, expected, log).with_deref(true)],
        Some(signature.to_ref(&mut time)),
    )
    .map_err(|e| fail(format!("cannot move HEAD to {id}: {e}")))?;

    // Keep the checkout consistent for the git CLI (status, a later push).
    let mut index = repo
        .index_from_tree(&tree)
        .map_err(|e| fail(format!("cannot build the index: {e}")))?;
    index
        .write(Default::default())
        .map_err(|e| fail(format!("cannot write the index: {e}")))?;
    Ok(Some(id.to_hex().to_string()))
}

fn actor(signature: &Signature) -> gix::actor::Signature {
    gix::actor::Signature {
        name: signature.name.as_str().into(),
        email: signature.email.as_str().into(),
        time: gix::date::Time {
            seconds: signature.time.as_second(),
            offset: 0,
        },
    }
}

/// Writes the tree of directory `path` (its blobs and subtrees) and returns its
/// id, or `None` when it holds no file: Git does not record empty directories.
/// `previous` is the tree at the same path in `HEAD`, consulted for submodule
/// commits, which a checkout leaves as (empty) directories.
fn write_tree(
    repo: &gix::Repository,
    path: &Path,
    previous: Option<ObjectId>,
) -> Result<Option<ObjectId>, String> {
    let previous = match previous {
        Some(id) => tree_entries(repo, id)?,
        None => Vec::new(),
    };
    let listing = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut entries = Vec::new();
    for item in listing {
        let item = item.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = item.file_name();
        if name == OsStr::new(".git") {
            continue;
        }
        let child = item.path();
        let metadata =
            std::fs::symlink_metadata(&child).map_err(|e| format!("{}: {e}", child.display()))?;
        let filename: BString = name.as_bytes().into();
        let before = previous
            .iter()
            .find(|(n, _, _)| n == &filename)
            .map(|(_, mode, id)| (*mode, *id));
        let file_type = metadata.file_type();
        let entry = if file_type.is_symlink() {
            let target =
                std::fs::read_link(&child).map_err(|e| format!("{}: {e}", child.display()))?;
            Some((
                EntryKind::Link,
                write_blob(repo, target.as_os_str().as_bytes())?,
            ))
        } else if file_type.is_file() {
            let content = std::fs::read(&child).map_err(|e| format!("{}: {e}", child.display()))?;
            // Git records only the owner's executable bit.
            let kind = if metadata.permissions().mode() & 0o100 != 0 {
                EntryKind::BlobExecutable
            } else {
                EntryKind::Blob
            };
            Some((kind, write_blob(repo, &content)?))
        } else if file_type.is_dir() {
            match before {
                Some((mode, id)) if mode.is_commit() => Some((EntryKind::Commit, id)),
                _ => {
                    let subtree = before.filter(|(mode, _)| mode.is_tree()).map(|(_, id)| id);
                    write_tree(repo, &child, subtree)?.map(|id| (EntryKind::Tree, id))
                }
            }
        } else {
            // Sockets, FIFOs and devices have no Git representation.
            None
        };
        if let Some((kind, oid)) = entry {
            entries.push(Entry {
                mode: kind.into(),
                filename,
                oid,
            });
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    // Git's order: by name, with directories compared as if they ended in '/'.
    entries.sort();
    let id = repo
        .write_object(&gix::objs::Tree { entries })
        .map_err(|e| format!("cannot write the tree of {}: {e}", path.display()))?;
    Ok(Some(id.detach()))
}

fn write_blob(repo: &gix::Repository, content: &[u8]) -> Result<ObjectId, String> {
    repo.write_blob(content)
        .map(|id| id.detach())
        .map_err(|e| format!("cannot write a blob: {e}"))
}

fn tree_entries(
    repo: &gix::Repository,
    id: ObjectId,
) -> Result<Vec<(BString, EntryMode, ObjectId)>, String> {
    let tree = repo
        .find_tree(id)
        .map_err(|e| format!("cannot read tree {id}: {e}"))?;
    let decoded = tree
        .decode()
        .map_err(|e| format!("cannot decode tree {id}: {e}"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| {
            let name: &BStr = e.filename;
            (name.to_owned(), e.mode, e.oid.to_owned())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signing_keys_are_not_shown() {
        let key = SigningKey::OpenPgp {
            armored_secret_key: b"-----BEGIN PGP PRIVATE KEY BLOCK-----".to_vec(),
            passphrase: Some("s3cret".into()),
        };
        let shown = format!("{key:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("PRIVATE"),
            "{shown}"
        );
    }
}
