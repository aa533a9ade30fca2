//! OpenPGP verification of Git signatures with [rPGP](https://docs.rs/pgp), a
//! pure-Rust implementation: a detached signature over a [`SignedObject`]'s
//! payload, checked against armored public key rings the way Flux does (the
//! first key ring holding the signing key wins, and the key is named by the
//! 16-hex-digit id of its primary key). It also signs commits with a secret key
//! ([`Signer`]), as `gpg --detach-sign --armor` does for `git commit -S`.

use pgp::composed::{
    ArmorOptions, Deserializable, DetachedSignature, SignedPublicKey, SignedSecretKey,
};
use pgp::packet::{SecretKey, SecretSubkey, SignatureType};
use pgp::types::{KeyDetails, KeyId, Password, SecretParams, SigningKey};

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

/// An unlocked OpenPGP secret key that signs commits.
pub(crate) struct Signer {
    key: UnlockedKey,
}

enum UnlockedKey {
    Primary(SecretKey),
    Subkey(SecretSubkey),
}

impl Signer {
    /// Reads the first key of an armored secret key block, picks the key that
    /// signs (the newest unrevoked subkey bound for signing, else the primary
    /// key, as Go's `openpgp.Entity.SigningKey` does) and unlocks it.
    pub(crate) fn new(key: &crate::SigningKey) -> Result<Signer, Error> {
        let crate::SigningKey::OpenPgp {
            armored_secret_key,
            passphrase,
        } = key;
        let invalid = |reason: String| Error::SigningKey { reason };
        let (mut keys, _headers) = SignedSecretKey::from_armor_many(&armored_secret_key[..])
            .map_err(|e| invalid(format!("not an armored OpenPGP secret key: {e}")))?;
        let key = keys
            .next()
            .ok_or_else(|| invalid("the armor block holds no secret key".into()))?
            .map_err(|e| invalid(format!("not an armored OpenPGP secret key: {e}")))?;
        key.verify_bindings()
            .map_err(|e| invalid(format!("the key's self-signatures do not verify: {e}")))?;
        let password = Password::from(passphrase.as_deref().unwrap_or_default());
        let unlock_failed = |e: pgp::errors::Error| {
            invalid(format!("wrong passphrase, cannot unlock the key: {e}"))
        };
        let no_passphrase =
            || invalid("the key is protected by a passphrase and none was given".into());
        let subkey = key
            .secret_subkeys
            .iter()
            .filter(|subkey| {
                let bound_to_sign = subkey.signatures.iter().any(|sig| {
                    sig.typ() == Some(SignatureType::SubkeyBinding) && sig.key_flags().sign()
                });
                let revoked = subkey
                    .signatures
                    .iter()
                    .any(|sig| sig.typ() == Some(SignatureType::SubkeyRevocation));
                bound_to_sign && !revoked
            })
            .max_by_key(|subkey| subkey.key.created_at());
        let key = match subkey {
            Some(subkey) => {
                let mut subkey = subkey.key.clone();
                if passphrase.is_none() && is_locked(subkey.secret_params()) {
                    return Err(no_passphrase());
                }
                subkey.remove_password(&password).map_err(unlock_failed)?;
                UnlockedKey::Subkey(subkey)
            }
            None => {
                let mut primary = key.primary_key.clone();
                if passphrase.is_none() && is_locked(primary.secret_params()) {
                    return Err(no_passphrase());
                }
                primary.remove_password(&password).map_err(unlock_failed)?;
                UnlockedKey::Primary(primary)
            }
        };
        Ok(Signer { key })
    }

    /// A detached binary signature over `payload`, ASCII-armored.
    pub(crate) fn sign(&self, payload: &[u8]) -> Result<String, Error> {
        match &self.key {
            UnlockedKey::Primary(key) => sign_with(key, payload),
            UnlockedKey::Subkey(key) => sign_with(key, payload),
        }
    }

    /// The id of the key (primary or subkey) that signs.
    #[cfg(test)]
    fn key_id(&self) -> String {
        match &self.key {
            UnlockedKey::Primary(key) => key_id_string(&key.legacy_key_id()),
            UnlockedKey::Subkey(key) => key_id_string(&key.legacy_key_id()),
        }
    }
}

fn is_locked(params: &SecretParams) -> bool {
    matches!(params, SecretParams::Encrypted(_))
}

fn sign_with(key: &impl SigningKey, payload: &[u8]) -> Result<String, Error> {
    let failed = |e: pgp::errors::Error| Error::SigningKey {
        reason: format!("signing failed: {e}"),
    };
    let signature = DetachedSignature::sign_binary_data(
        pgp_rand::thread_rng(),
        key,
        &Password::empty(),
        key.hash_alg(),
        payload,
    )
    .map_err(failed)?;
    signature
        .to_armored_string(ArmorOptions::default())
        .map_err(failed)
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

    /// A v4 ed25519 key as gpg makes them, with a signing subkey when asked,
    /// locked with `passphrase` when given: (armored secret key, armored public key).
    fn generated_key(signing_subkey: bool, passphrase: Option<&str>) -> (String, String) {
        use pgp::composed::{KeyType, SecretKeyParamsBuilder, SubkeyParamsBuilder};
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .primary_user_id("Flux <flux@example.com>".into())
            .passphrase(passphrase.map(str::to_string));
        if signing_subkey {
            params.subkey(
                SubkeyParamsBuilder::default()
                    .key_type(KeyType::Ed25519Legacy)
                    .can_sign(true)
                    .passphrase(passphrase.map(str::to_string))
                    .build()
                    .unwrap(),
            );
        }
        let key = params
            .build()
            .unwrap()
            .generate(pgp_rand::thread_rng())
            .unwrap();
        (
            key.to_armored_string(ArmorOptions::default()).unwrap(),
            key.to_public_key()
                .to_armored_string(ArmorOptions::default())
                .unwrap(),
        )
    }

    fn signing_key(secret: &str, passphrase: Option<&str>) -> crate::SigningKey {
        crate::SigningKey::OpenPgp {
            armored_secret_key: secret.as_bytes().to_vec(),
            passphrase: passphrase.map(str::to_string),
        }
    }

    #[test]
    fn signatures_made_here_verify_and_name_the_primary_key() {
        for subkey in [false, true] {
            let (secret, public) = generated_key(subkey, Some("pass phrase"));
            let signer = Signer::new(&signing_key(&secret, Some("pass phrase"))).unwrap();
            let ring = KeyRing::from_armored(public.as_bytes()).unwrap();
            let primary = ring.key_ids().remove(0);
            assert_eq!(signer.key_id() != primary, subkey, "signs with the subkey");
            let payload = b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nmessage\n";
            let signature = signer.sign(payload).unwrap();
            assert!(signature.starts_with("-----BEGIN PGP SIGNATURE-----"));
            let object = SignedObject {
                payload: payload.to_vec(),
                signature: Some(signature.clone()),
            };
            assert_eq!(
                verify(&object, std::slice::from_ref(&ring)).unwrap(),
                primary
            );
            let tampered = SignedObject {
                payload: b"tree 0000\n".to_vec(),
                signature: Some(signature),
            };
            assert!(matches!(
                verify(&tampered, &[ring]),
                Err(Error::UntrustedSignature { .. })
            ));
        }
    }

    #[test]
    fn unusable_keys_are_signing_key_errors() {
        let (secret, public) = generated_key(true, Some("right"));
        let reason = |key: crate::SigningKey| match Signer::new(&key) {
            Err(Error::SigningKey { reason }) => reason,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("the key was accepted"),
        };
        assert!(reason(signing_key(&secret, Some("wrong"))).starts_with("wrong passphrase"),);
        assert!(reason(signing_key(&secret, None)).contains("none was given"));
        assert!(reason(signing_key("not a key", None)).contains("not an armored"));
        // A public key is not a secret key.
        assert!(reason(signing_key(&public, None)).contains("not an armored"));

        // An unprotected key ignores a passphrase, as gpg does.
        let (plain, _) = generated_key(false, None);
        assert!(Signer::new(&signing_key(&plain, Some("unused"))).is_ok());
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
