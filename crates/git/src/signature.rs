//! Signatures of Git objects: which bytes a commit's `gpgsig` header or an
//! annotated tag's trailing armor signs, as `git verify-commit`/`verify-tag` see it.
//!
//! The splitting itself is gix's (`gix-object` follows Git's rules: the header
//! with its continuation lines for commits, the last armor marker at a line start
//! for tags); this module turns it into owned values a verifier can keep.

use gix::bstr::ByteSlice;
use gix::objs::{CommitRefIter, TagRefIter};

use crate::Error;

/// A Git object's signature and the exact bytes it covers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedObject {
    /// The object as Git hashes it, without the signature.
    pub payload: Vec<u8>,
    /// The armored signature, `None` when the object is not signed.
    pub signature: Option<String>,
}

impl SignedObject {
    /// Splits a raw commit object (what `git cat-file commit` prints) into the
    /// `gpgsig` signature and the rest.
    pub fn from_commit(raw: &[u8]) -> Result<SignedObject, Error> {
        let split = CommitRefIter::signature(raw, gix::hash::Kind::Sha1).map_err(|e| {
            Error::InvalidObject {
                kind: "commit",
                message: e.to_string(),
            }
        })?;
        Ok(match split {
            Some((signature, signed)) => SignedObject {
                payload: signed.to_bstring().into(),
                signature: Some(signature.to_str_lossy().into_owned()),
            },
            None => SignedObject {
                payload: raw.to_vec(),
                signature: None,
            },
        })
    }

    /// Splits a raw annotated tag object (what `git cat-file tag` prints) into
    /// the signature appended to its message and the rest.
    pub fn from_tag(raw: &[u8]) -> SignedObject {
        match TagRefIter::signature(raw) {
            Some((signature, signed)) => SignedObject {
                payload: signed.to_bstring().into(),
                signature: Some(signature.data.to_str_lossy().into_owned()),
            },
            None => SignedObject {
                payload: raw.to_vec(),
                signature: None,
            },
        }
    }
}

/// The annotated tag a checkout went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotatedTag {
    /// The tag's short name (`v1.0.0`).
    pub name: String,
    /// The full hex id of the tag object (not of the commit it points to).
    pub id: String,
    /// The tag object and its signature.
    pub signed: SignedObject,
}

impl std::fmt::Display for AnnotatedTag {
    /// `<name>@<tag object id>`, as Flux names a tag in its messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNATURE: &str =
        "-----BEGIN PGP SIGNATURE-----\n\niQEzBAABCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----";

    fn signed_commit() -> Vec<u8> {
        let folded = SIGNATURE.replace('\n', "\n ");
        format!(
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
             author A U Thor <a@example.com> 1700000000 +0000\n\
             committer A U Thor <a@example.com> 1700000000 +0000\n\
             gpgsig {folded}\n\
             \n\
             signed commit\n"
        )
        .into_bytes()
    }

    #[test]
    fn commit_signature_is_unfolded_and_cut_out() {
        let split = SignedObject::from_commit(&signed_commit()).unwrap();
        // Git ends the unfolded header value with a newline, as gpg wrote it.
        assert_eq!(split.signature, Some(format!("{SIGNATURE}\n")));
        assert_eq!(
            String::from_utf8(split.payload).unwrap(),
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
             author A U Thor <a@example.com> 1700000000 +0000\n\
             committer A U Thor <a@example.com> 1700000000 +0000\n\
             \n\
             signed commit\n"
        );
    }

    #[test]
    fn unsigned_commit_is_all_payload() {
        let raw = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
                    author A <a@example.com> 1700000000 +0000\n\
                    committer A <a@example.com> 1700000000 +0000\n\
                    \n\
                    gpgsig in the message is not a header\n";
        let split = SignedObject::from_commit(raw).unwrap();
        assert_eq!(split.signature, None);
        assert_eq!(split.payload, raw.to_vec());
    }

    #[test]
    fn malformed_commit_is_an_error() {
        assert!(matches!(
            SignedObject::from_commit(b"tree not-a-hash\n\nx"),
            Err(Error::InvalidObject { kind: "commit", .. })
        ));
    }

    #[test]
    fn tag_signature_is_the_trailing_armor() {
        let body = "object 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
                    type commit\n\
                    tag v1.0.0\n\
                    tagger A U Thor <a@example.com> 1700000000 +0000\n\
                    \n\
                    release 1.0.0\n";
        let raw = format!("{body}{SIGNATURE}\n");
        let split = SignedObject::from_tag(raw.as_bytes());
        assert_eq!(split.payload, body.as_bytes());
        assert_eq!(split.signature, Some(format!("{SIGNATURE}\n")));

        let unsigned = SignedObject::from_tag(body.as_bytes());
        assert_eq!(unsigned.signature, None);
        assert_eq!(unsigned.payload, body.as_bytes());
    }

    #[test]
    fn tags_are_named_as_flux_does() {
        let tag = AnnotatedTag {
            name: "v1.0.0".into(),
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            signed: SignedObject::default(),
        };
        assert_eq!(
            tag.to_string(),
            "v1.0.0@0123456789abcdef0123456789abcdef01234567"
        );
    }
}
