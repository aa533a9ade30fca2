//! OpenPGP verification of Git signatures with [rPGP](https://docs.rs/pgp), a
//! pure-Rust implementation: a detached signature over a [`SignedObject`]'s
//! payload, checked against armored public key rings the way Flux does (the
//! first key ring holding the signing key wins, and the key is named by the
//! 16-hex-digit id of its primary key).

use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::{KeyDetails, KeyId};

use crate::{Error, SignedObject};

/// The trusted public keys of one armored key ring (one Secret value).
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<SignedPublicKey>,
}

impl KeyRing {
    /// Reads an ASCII-armored key ring (`gpg --export --armor`): one armor block
    /// with one or more public keys, each with valid self-signatures.
    pub fn from_armored(text: &[u8]) -> Result<KeyRing, Error> {
        let invalid = |e: pgp::errors::Error| Error::KeyRing(e.to_string());
        let (keys, _headers) = SignedPublicKey::from_armor_many(text).map_err(invalid)?;
        let keys = keys.collect::<Result<Vec<_>, _>>().map_err(invalid)?;
        if keys.is_empty() {
            return Err(Error::KeyRing("no public key found".to_string()));
        }
        for key in &keys {
            key.verify_bindings().map_err(invalid)?;
        }
        Ok(KeyRing { keys })
    }

    /// The primary key ids in this key ring, as [`verify`] reports them.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| key_id_string(&k.primary_key.legacy_key_id()))
            .collect()
    }

    /// The primary key id of the key (primary or subkey) that made `signature`.
    fn signer_of(&self, signature: &DetachedSignature, payload: &[u8]) -> Option<String> {
        self.keys.iter().find_map(|key| {
            let by_primary = signature.verify(&key.primary_key, payload).is_ok();
            let by_subkey = || {
                key.public_subkeys
                    .iter()
                    .any(|subkey| signature.verify(subkey, payload).is_ok())
            };
            (by_primary || by_subkey()).then(|| key_id_string(&key.primary_key.legacy_key_id()))
        })
    }
}

/// Verifies `object`'s signature with the key rings and returns the primary
/// key id (`5982D0279C227FFD`) of the key that made it.
pub fn verify(object: &SignedObject, key_rings: &[KeyRing]) -> Result<String, Error> {
    let Some(armored) = object.signature.as_deref().filter(|s| !s.trim().is_empty()) else {
        return Err(Error::Unsigned);
    };
    // A signature that does not parse (an SSH or X.509 one, say) cannot match
    // any OpenPGP key; Flux reports it the same way.
    let Ok((signature, _headers)) = DetachedSignature::from_string(armored) else {
        return Err(Error::UntrustedSignature {
            issuers: Vec::new(),
        });
    };
    key_rings
        .iter()
        .find_map(|ring| ring.signer_of(&signature, &object.payload))
        .ok_or_else(|| Error::UntrustedSignature {
            issuers: issuers_of(&signature),
        })
}

/// Who the signature says made it: issuer key ids, or the low 8 bytes of
/// issuer fingerprints (the v4 key id) when only those are given.
fn issuers_of(signature: &DetachedSignature) -> Vec<String> {
    let mut ids: Vec<String> = signature
        .signature
        .issuer_key_id()
        .into_iter()
        .map(key_id_string)
        .collect();
    for fingerprint in signature.signature.issuer_fingerprint() {
        let bytes = fingerprint.as_bytes();
        if let Some(low) = bytes.len().checked_sub(8).map(|start| &bytes[start..]) {
            let id = hex_upper(low);
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// Go's `KeyIdString`: 16 upper-case hex digits.
fn key_id_string(id: &KeyId) -> String {
    hex_upper(id.as_ref())
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with gpg 2.2: an ed25519 primary key BFCDD9E4E7E565E1 with an
    // ed25519 signing subkey F2643229B7529C42, which made the signature.
    const SIGNER: &str = include_str!("../testdata/signer.asc");
    const SIGNATURE: &str = include_str!("../testdata/commit.sig.asc");
    const PAYLOAD: &str = include_str!("../testdata/commit.payload");

    fn signed(payload: &str) -> SignedObject {
        SignedObject {
            payload: payload.as_bytes().to_vec(),
            signature: Some(SIGNATURE.to_string()),
        }
    }

    #[test]
    fn a_subkey_signature_is_named_by_the_primary_key() {
        let ring = KeyRing::from_armored(SIGNER.as_bytes()).unwrap();
        assert_eq!(ring.key_ids(), ["BFCDD9E4E7E565E1"]);
        assert_eq!(
            verify(&signed(PAYLOAD), &[ring]).unwrap(),
            "BFCDD9E4E7E565E1"
        );
    }

    #[test]
    fn untrusted_or_tampered_signatures_name_the_signing_key() {
        let ring = KeyRing::from_armored(SIGNER.as_bytes()).unwrap();
        let tampered = PAYLOAD.replace("subkey", "someone");
        for (object, rings) in [
            (signed(PAYLOAD), Vec::new()),
            (signed(&tampered), vec![ring]),
        ] {
            match verify(&object, &rings) {
                Err(Error::UntrustedSignature { issuers }) => {
                    assert_eq!(issuers, ["F2643229B7529C42"])
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn unsigned_objects_are_refused_before_any_key_is_tried() {
        let object = SignedObject {
            payload: b"tree x\n".to_vec(),
            signature: None,
        };
        assert!(matches!(verify(&object, &[]), Err(Error::Unsigned)));
        assert_eq!(
            Error::Unsigned.to_string(),
            "unable to verify payload as the provided signature is empty"
        );
    }

    #[test]
    fn garbage_is_not_a_key_ring() {
        let err = KeyRing::from_armored(b"not a key").unwrap_err();
        assert!(matches!(err, Error::KeyRing(_)));
        assert!(
            err.to_string()
                .starts_with("unable to read armored key ring: ")
        );
    }

    #[test]
    fn signatures_that_do_not_parse_match_no_key() {
        let object = SignedObject {
            payload: b"tree x\n".to_vec(),
            signature: Some(
                "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n".into(),
            ),
        };
        let err = verify(&object, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to verify payload with any of the given key rings"
        );
    }

    #[test]
    fn unknown_signers_are_named() {
        let err = Error::UntrustedSignature {
            issuers: vec!["5982D0279C227FFD".into()],
        };
        assert_eq!(
            err.to_string(),
            "unable to verify payload with any of the given key rings (signed with key '5982D0279C227FFD')"
        );
    }
}
