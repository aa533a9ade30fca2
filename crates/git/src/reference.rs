//! What to check out, and what was checked out.

/// A Git reference to fetch. Selecting among tags by semantic version is the
/// caller's job: it lists the remote's tags ([`crate::list_refs`]) and then asks
/// for one [`Reference::Tag`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    /// A branch, by short name (`main`).
    Branch(String),
    /// A tag, by short name (`v1.2.3`).
    Tag(String),
    /// A full reference name (`refs/pull/420/head`).
    Name(String),
    /// A commit by its full hex id, optionally on a branch (which then names the revision).
    Commit {
        /// The full commit id.
        id: String,
        /// The branch the commit belongs to, if given.
        branch: Option<String>,
    },
}

impl Reference {
    /// The full reference name on the remote, when the reference names one.
    pub fn full_name(&self) -> Option<String> {
        match self {
            Reference::Branch(branch) => Some(format!("refs/heads/{branch}")),
            Reference::Tag(tag) => Some(format!("refs/tags/{tag}")),
            Reference::Name(name) => Some(name.clone()),
            Reference::Commit { .. } => None,
        }
    }

    /// The revision string Flux reports for `commit` reached through this reference:
    /// `<branch>@sha1:<id>`, `<tag>@sha1:<id>`, `<full ref>@sha1:<id>` for a
    /// reference name, and `sha1:<id>` for a bare commit.
    pub fn revision(&self, commit: &str) -> String {
        let digest = format!("sha1:{commit}");
        match self {
            Reference::Branch(name) | Reference::Tag(name) | Reference::Name(name) => {
                format!("{name}@{digest}")
            }
            Reference::Commit {
                branch: Some(branch),
                ..
            } => format!("{branch}@{digest}"),
            Reference::Commit { branch: None, .. } => digest,
        }
    }

    /// A short human description, for messages.
    pub fn describe(&self) -> String {
        match self {
            Reference::Branch(name) => format!("branch '{name}'"),
            Reference::Tag(name) => format!("tag '{name}'"),
            Reference::Name(name) => format!("ref '{name}'"),
            Reference::Commit { id, .. } => format!("commit '{id}'"),
        }
    }
}

/// The commit that was checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The full hex id of the commit (annotated tags are peeled to their commit).
    pub id: String,
    /// Flux's revision string for it, see [`Reference::revision`].
    pub revision: String,
    /// The commit message.
    pub message: String,
    /// The commit object and its `gpgsig` signature.
    pub signed: crate::SignedObject,
    /// The annotated tag the commit was reached through (tag references only;
    /// lightweight tags have no object of their own).
    pub referencing_tag: Option<crate::AnnotatedTag>,
}

/// The commit id inside a Flux revision string (`main@sha1:<id>`, `sha1:<id>`), if any.
pub fn commit_of_revision(revision: &str) -> Option<&str> {
    let digest = revision.rsplit('@').next()?;
    digest.strip_prefix("sha1:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_revision_strings() {
        let id = "363a6a8fe6a7f13e05d34c163b0ef02a777da20a";
        assert_eq!(
            Reference::Branch("main".into()).revision(id),
            format!("main@sha1:{id}")
        );
        assert_eq!(
            Reference::Tag("v1.0.0".into()).revision(id),
            format!("v1.0.0@sha1:{id}")
        );
        assert_eq!(
            Reference::Name("refs/pull/420/head".into()).revision(id),
            format!("refs/pull/420/head@sha1:{id}")
        );
        assert_eq!(
            Reference::Commit {
                id: id.into(),
                branch: None
            }
            .revision(id),
            format!("sha1:{id}")
        );
        assert_eq!(
            Reference::Commit {
                id: id.into(),
                branch: Some("dev".into())
            }
            .revision(id),
            format!("dev@sha1:{id}")
        );
    }

    #[test]
    fn commit_is_read_back_from_revisions() {
        assert_eq!(commit_of_revision("main@sha1:abc"), Some("abc"));
        assert_eq!(commit_of_revision("feat/x@y@sha1:abc"), Some("abc"));
        assert_eq!(commit_of_revision("sha1:abc"), Some("abc"));
        assert_eq!(commit_of_revision("v1.2.3"), None);
    }

    #[test]
    fn full_names() {
        assert_eq!(
            Reference::Branch("main".into()).full_name().as_deref(),
            Some("refs/heads/main")
        );
        assert_eq!(
            Reference::Tag("v1".into()).full_name().as_deref(),
            Some("refs/tags/v1")
        );
        assert_eq!(
            Reference::Commit {
                id: "a".into(),
                branch: Some("main".into())
            }
            .full_name(),
            None
        );
    }
}
