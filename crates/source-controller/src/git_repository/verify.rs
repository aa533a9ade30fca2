//! `spec.verify`: the OpenPGP or SSH signature of the checked-out commit
//! and/or of the annotated tag it was reached through, checked against the
//! keys of a Secret, with Flux's `SourceVerified` condition and reasons.

use api::meta::{condition_type, reason};
use api::source::{
    GitRepository, GitRepositoryStatus, GitRepositoryVerification, GitVerificationMode,
};

use kube::ResourceExt;
use sha2::{Digest, Sha256};
use tracing::info;

use crate::Error;
use crate::controller::Context;

/// Verifies the checked-out commit and/or the tag it was reached through, as
/// `spec.verify` asks, and records the result in `SourceVerified` and
/// `sourceVerificationMode`.
pub(super) async fn verify_signatures(
    obj: &GitRepository,
    ctx: &Context,
    commit: &git::Commit,
    status: &mut GitRepositoryStatus,
) -> Result<(), Error> {
    // Without `spec.verify`, `forget_failed_verification` already cleared it all.
    let Some(verification) = &obj.spec.verify else {
        return Ok(());
    };
    let result = match read_key_rings(ctx, obj, verification).await {
        Ok(keys) => verified_message(verification, commit, &keys)
            .map(|message| (message, keys.fingerprint())),
        Err(err) => Err(err),
    };
    match result {
        Ok((message, fingerprint)) => {
            status.source_verification_fingerprint = Some(fingerprint);
            info!(namespace = %obj.namespace().unwrap_or_default(), name = %obj.name_any(), "{message}");
            status.source_verification_mode = Some(verification_mode(verification));
            update_conditions(obj, status, |c| {
                c.mark_true(condition_type::SOURCE_VERIFIED, reason::SUCCEEDED, message)
            });
            Ok(())
        }
        Err(err) => {
            if let Error::Verification {
                reason, message, ..
            } = &err
            {
                update_conditions(obj, status, |c| {
                    c.mark_false(condition_type::SOURCE_VERIFIED, reason, message.clone())
                });
            }
            Err(err)
        }
    }
}
/// The keys a verification Secret trusts: `*.sshpub` entries are SSH public
/// keys (`authorized_keys` lines); every other entry (`*.asc` by convention)
/// is an armored OpenPGP key ring, as in Flux.
#[derive(Debug, Default)]
pub(super) struct TrustedKeys {
    pgp: Vec<Vec<u8>>,
    ssh: Vec<Vec<u8>>,
}

impl TrustedKeys {
    /// Flux's fingerprint of a verification policy: the SHA-256 of the sorted
    /// PGP key rings and SSH keys, independent of the Secret's key names.
    pub(super) fn fingerprint(&self) -> String {
        let mut pgp = self.pgp.clone();
        let mut ssh = self.ssh.clone();
        pgp.sort();
        ssh.sort();
        let mut hasher = Sha256::new();
        for (kind, keys) in [(&b"pgp:"[..], &pgp), (&b"ssh:"[..], &ssh)] {
            for key in keys {
                hasher.update(kind);
                hasher.update(key);
                hasher.update([0]);
            }
        }
        format!("sha256:{}", hex::encode(hasher.finalize()))
    }
}

/// Whether the keys trusted now differ from those that verified the stored
/// artifact (a key rotation), or cannot be read: then the unchanged
/// revision is verified again, as Flux does.
pub(super) async fn verification_policy_changed(
    ctx: &Context,
    obj: &GitRepository,
    status: &GitRepositoryStatus,
) -> bool {
    let Some(verification) = &obj.spec.verify else {
        return false;
    };
    match read_key_rings(ctx, obj, verification).await {
        Ok(keys) => status.source_verification_fingerprint.as_deref() != Some(&keys.fingerprint()),
        Err(_) => true,
    }
}

/// The trusted keys of `spec.verify.secretRef`. They are read lazily by the
/// caller, so a broken key is reported against the object whose
/// verification needed it, as Flux does.
pub(super) async fn read_key_rings(
    ctx: &Context,
    obj: &GitRepository,
    verification: &GitRepositoryVerification,
) -> Result<TrustedKeys, Error> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = &verification.secret_ref.name;
    match crate::controller::read_secret(ctx, &namespace, name).await {
        Ok(data) => {
            let mut keys = TrustedKeys::default();
            for (key, value) in data {
                if key.ends_with(".sshpub") {
                    keys.ssh.push(value);
                } else {
                    keys.pgp.push(value);
                }
            }
            Ok(keys)
        }
        Err(Error::Secret { message, .. }) => Err(Error::Verification {
            reason: reason::VERIFICATION_ERROR,
            message: format!("public keys secret error: {message}"),
            stalled: false,
        }),
        Err(other) => Err(other),
    }
}

/// Verifies a commit or tag (`what`) by its signature's kind, returning the
/// key that made it (an OpenPGP key id or an SSH `SHA256:` fingerprint).
fn verify_object(
    signed: &git::SignedObject,
    keys: &TrustedKeys,
    what: &str,
) -> Result<String, String> {
    match git::SignatureKind::of(signed) {
        git::SignatureKind::OpenPgp => {
            if keys.pgp.is_empty() {
                return Err(
                    "PGP signature detected but no PGP public keys found in secret \
                            (keys with .asc suffix)"
                        .into(),
                );
            }
            // A ring that does not parse is skipped while another does.
            let (rings, broken): (Vec<_>, Vec<_>) = keys
                .pgp
                .iter()
                .map(|ring| git::KeyRing::from_armored(ring))
                .partition(Result::is_ok);
            let rings: Vec<git::KeyRing> = rings.into_iter().flatten().collect();
            let verified = match broken.into_iter().find_map(Result::err) {
                Some(err) if rings.is_empty() => Err(err),
                _ => git::verify(signed, &rings),
            };
            verified.map_err(|e| format!("unable to verify Git {what}: {e}"))
        }
        git::SignatureKind::Ssh => {
            if keys.ssh.is_empty() {
                return Err(
                    "SSH signature detected but no SSH public keys found in secret \
                            (keys with .sshpub suffix)"
                        .into(),
                );
            }
            git::verify_ssh(signed, &keys.ssh)
                .map_err(|e| format!("unable to verify Git {what} SSH signature: {e}"))
        }
        other => Err(format!("unsupported signature type: {}", other.as_str())),
    }
}

/// Flux's `SourceVerified` message for a successful verification, or the
/// failure with Flux's reason.
pub(super) fn verified_message(
    verification: &GitRepositoryVerification,
    commit: &git::Commit,
    keys: &TrustedKeys,
) -> Result<String, Error> {
    let mode = verification_mode(verification);
    let mut lines = Vec::new();
    if matches!(
        mode,
        GitVerificationMode::Tag | GitVerificationMode::TagAndHEAD
    ) {
        let Some(tag) = &commit.referencing_tag else {
            return Err(Error::Verification {
                reason: "InvalidVerificationMode",
                message: "cannot verify tag object's signature if a tag reference is not specified"
                    .to_string(),
                stalled: true,
            });
        };
        if tag.signed.signature.is_none() {
            // The tag can be replaced by a signed one upstream: not stalled.
            return Err(Error::Verification {
                reason: "InvalidGitObject",
                message: format!("cannot verify signature of tag '{tag}' since it is not signed"),
                stalled: false,
            });
        }
        let key = verify_object(&tag.signed, keys, "tag").map_err(|e| Error::Verification {
            reason: "InvalidTagSignature",
            message: format!("signature verification of tag '{tag}' failed: {e}"),
            stalled: false,
        })?;
        lines.push(format!("tag '{tag}' with key '{key}'"));
    }
    if matches!(
        mode,
        GitVerificationMode::Head | GitVerificationMode::TagAndHEAD
    ) {
        let key =
            verify_object(&commit.signed, keys, "commit").map_err(|e| Error::Verification {
                reason: "InvalidCommitSignature",
                message: format!(
                    "signature verification of commit '{}' failed: {e}",
                    commit.id
                ),
                stalled: false,
            })?;
        lines.push(format!("commit '{}' with key '{key}'", commit.id));
    }
    Ok(format!(
        "verified signature of\n\t- {}",
        lines.join("\n\t- ")
    ))
}
/// The mode in effect: `head` is the old spelling of `HEAD`, the default.
pub(super) fn verification_mode(verification: &GitRepositoryVerification) -> GitVerificationMode {
    match verification.mode {
        Some(GitVerificationMode::Tag) => GitVerificationMode::Tag,
        Some(GitVerificationMode::TagAndHEAD) => GitVerificationMode::TagAndHEAD,
        Some(GitVerificationMode::Head | GitVerificationMode::LegacyHead) | None => {
            GitVerificationMode::Head
        }
    }
}
/// Whether the stored artifact must be checked out and verified again although
/// its revision is current: verification is asked for and the last one did not
/// cover what the mode now asks (Flux's `requiresVerification`).
pub(super) fn requires_verification(
    verification: Option<&GitRepositoryVerification>,
    observed: Option<GitVerificationMode>,
) -> bool {
    let Some(verification) = verification else {
        return false;
    };
    match (observed, verification_mode(verification)) {
        (None, _) => true,
        (Some(GitVerificationMode::TagAndHEAD), _) => false,
        (Some(GitVerificationMode::Head | GitVerificationMode::LegacyHead), wanted) => {
            wanted != GitVerificationMode::Head
        }
        (Some(GitVerificationMode::Tag), wanted) => wanted != GitVerificationMode::Tag,
    }
}
/// Drops `SourceVerified=False` (worked out again on this pass) and, when
/// `spec.verify` is gone, every trace of verification.
pub(super) fn forget_failed_verification(obj: &GitRepository, status: &mut GitRepositoryStatus) {
    let verify_removed = obj.spec.verify.is_none();
    if verify_removed {
        status.source_verification_mode = None;
        status.source_verification_fingerprint = None;
    }
    update_conditions(obj, status, |c| {
        if verify_removed || c.is_false(condition_type::SOURCE_VERIFIED) {
            c.delete(condition_type::SOURCE_VERIFIED);
        }
    });
}

pub(super) fn update_conditions(
    obj: &GitRepository,
    status: &mut GitRepositoryStatus,
    change: impl FnOnce(&mut runtime::conditions::Conditions),
) {
    let mut conditions = runtime::conditions::Conditions::new(
        status.conditions.take().unwrap_or_default(),
        obj.metadata.generation,
    );
    change(&mut conditions);
    status.conditions = Some(conditions.into_items());
}
