//! SSH signatures of commits and tags (`gpg.format=ssh`): the `sshsig`
//! format, checked against public keys in `authorized_keys` form, under
//! Git's namespace `git` — what Flux's `VerifySSH` accepts.

use ssh_key::{HashAlg, PublicKey, SshSig};

use crate::{Error, SignedObject};

/// Git's `sshsig` namespace for commits and tags.
const NAMESPACE: &str = "git";

/// What kind of signature a Git object carries, named as Flux names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureKind {
    /// `-----BEGIN PGP SIGNATURE-----` (or `PGP MESSAGE`).
    OpenPgp,
    /// `-----BEGIN SSH SIGNATURE-----`.
    Ssh,
    /// `-----BEGIN SIGNED MESSAGE-----` (S/MIME), which nothing verifies.
    X509,
    /// No signature.
    Empty,
    /// Anything else.
    Unknown,
}

impl SignatureKind {
    /// The kind of `object`'s signature.
    pub fn of(object: &SignedObject) -> SignatureKind {
        let Some(signature) = object.signature.as_deref().map(str::trim) else {
            return SignatureKind::Empty;
        };
        if signature.starts_with("-----BEGIN PGP SIGNATURE-----")
            || signature.starts_with("-----BEGIN PGP MESSAGE-----")
        {
            SignatureKind::OpenPgp
        } else if signature.starts_with("-----BEGIN SSH SIGNATURE-----") {
            SignatureKind::Ssh
        } else if signature.starts_with("-----BEGIN SIGNED MESSAGE-----") {
            SignatureKind::X509
        } else if signature.is_empty() {
            SignatureKind::Empty
        } else {
            SignatureKind::Unknown
        }
    }

    /// Flux's name for it: `openpgp`, `ssh`, `x509`, `empty`, `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureKind::OpenPgp => "openpgp",
            SignatureKind::Ssh => "ssh",
            SignatureKind::X509 => "x509",
            SignatureKind::Empty => "empty",
            SignatureKind::Unknown => "unknown",
        }
    }
}

/// Verifies `object`'s SSH signature with the keys of `authorized_keys`
/// (each an `authorized_keys` file: one key a line, `#` comments) and
/// returns the SHA-256 fingerprint (`SHA256:…`) of the key that made it.
pub fn verify_ssh(object: &SignedObject, authorized_keys: &[Vec<u8>]) -> Result<String, Error> {
    let invalid = |message: String| Error::SshSignature(message);
    let Some(armored) = object.signature.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Err(Error::Unsigned);
    };
    let kind = SignatureKind::of(object);
    if kind != SignatureKind::Ssh {
        return Err(invalid(format!(
            "unable to verify SSH signature, detected signature format: {}",
            kind.as_str()
        )));
    }
    let signature = SshSig::from_pem(armored.trim())
        .map_err(|e| invalid(format!("unable to unarmor SSH signature: {e}")))?;
    let mut parse_error = None;
    let mut parsed_any = false;
    for entry in authorized_keys {
        let keys = match parse_authorized_keys(entry) {
            Ok(keys) => keys,
            Err(e) => {
                parse_error.get_or_insert(e);
                continue;
            }
        };
        parsed_any = true;
        if let Some(key) = keys
            .iter()
            .find(|key| key.verify(NAMESPACE, &object.payload, &signature).is_ok())
        {
            return Ok(key.fingerprint(HashAlg::Sha256).to_string());
        }
    }
    match parse_error {
        Some(e) if !parsed_any => Err(invalid(format!("unable to parse authorized keys: {e}"))),
        _ => Err(invalid(
            "unable to verify payload with any of the given authorized keys: no matching key"
                .into(),
        )),
    }
}

/// The keys of an `authorized_keys` text; any line that is not one is an
/// error (a typo must not silently drop a trusted key).
fn parse_authorized_keys(text: &[u8]) -> Result<Vec<PublicKey>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_string())?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            // Options may precede the key (`cert-authority ssh-ed25519 AAAA…`).
            let start = line
                .find("ssh-")
                .or_else(|| line.find("ecdsa-"))
                .or_else(|| line.find("sk-"))
                .unwrap_or(0);
            PublicKey::from_openssh(&line[start..])
                .map_err(|e| format!("unable to parse authorized key: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_as_flux_names_them() {
        let signed = |s: &str| SignedObject {
            payload: b"x".to_vec(),
            signature: Some(s.to_string()),
        };
        assert_eq!(
            SignatureKind::of(&signed("-----BEGIN SSH SIGNATURE-----\nx")),
            SignatureKind::Ssh
        );
        assert_eq!(
            SignatureKind::of(&signed("\n-----BEGIN PGP SIGNATURE-----\nx")),
            SignatureKind::OpenPgp
        );
        assert_eq!(
            SignatureKind::of(&SignedObject::default()),
            SignatureKind::Empty
        );
        assert_eq!(SignatureKind::of(&signed("junk")).as_str(), "unknown");
        let err = verify_ssh(&signed("-----BEGIN PGP SIGNATURE-----\nx"), &[]).unwrap_err();
        assert!(
            err.to_string()
                .contains("detected signature format: openpgp"),
            "{err}"
        );
        assert!(parse_authorized_keys(b"# comment\n\nnot a key\n").is_err());
    }
}
