//! The private keys a document can be decrypted with.

use std::io::Read as _;
use std::str::FromStr as _;

use age::x25519;

use crate::Error;

/// Secret data entries with this suffix hold age identities (Flux's rule).
pub const AGE_KEY_SUFFIX: &str = ".agekey";
/// Secret data entries with this suffix hold armored OpenPGP keys (Flux's rule).
pub const PGP_KEY_SUFFIX: &str = ".asc";

/// age X25519 identities, tried in order against every age recipient stanza.
#[derive(Default)]
pub struct Keyring {
    age: Vec<x25519::Identity>,
}

impl std::fmt::Debug for Keyring {
    /// Lists public keys only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("age", &self.age_recipients())
            .finish()
    }
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds the identities of an age identity file: one `AGE-SECRET-KEY-1…`
    /// per line, blank lines and `#` comments ignored. Returns how many were
    /// added; any other line is an error naming its line number (never its
    /// content, which may be a key).
    pub fn import_age(&mut self, text: &str) -> Result<usize, Error> {
        let mut added = 0;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = x25519::Identity::from_str(line)
                .map_err(|_| Error::InvalidAgeKey { line: index + 1 })?;
            self.age.push(identity);
            added += 1;
        }
        Ok(added)
    }

    /// Imports the keys of a decryption Secret's data the way Flux does:
    /// every `*.agekey` entry is an age identity file. `*.asc` entries (PGP)
    /// are reported as unsupported; other entries (cloud KMS credentials)
    /// are not keys and are left alone.
    pub fn import_secret_data<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<usize, Error> {
        let mut added = 0;
        for (name, value) in entries {
            if name.ends_with(AGE_KEY_SUFFIX) {
                let text = std::str::from_utf8(value).map_err(|_| Error::InvalidSecretEntry {
                    entry: name.to_owned(),
                    reason: "not UTF-8".to_owned(),
                })?;
                added += self
                    .import_age(text)
                    .map_err(|err| Error::InvalidSecretEntry {
                        entry: name.to_owned(),
                        reason: err.to_string(),
                    })?;
            } else if name.ends_with(PGP_KEY_SUFFIX) {
                return Err(Error::InvalidSecretEntry {
                    entry: name.to_owned(),
                    reason: "OpenPGP keys are not supported; use age keys (*.agekey)".to_owned(),
                });
            }
        }
        Ok(added)
    }

    /// Whether no key has been imported.
    pub fn is_empty(&self) -> bool {
        self.age.is_empty()
    }

    /// The age public keys (`age1…`) of the imported identities.
    pub fn age_recipients(&self) -> Vec<String> {
        self.age
            .iter()
            .map(|identity| identity.to_public().to_string())
            .collect()
    }

    /// Decrypts an armored age file (a SOPS `enc` field) with any of the
    /// identities; `None` when none of them is a recipient.
    pub(crate) fn open_age(&self, armored: &str) -> Result<Option<Vec<u8>>, Error> {
        if self.age.is_empty() {
            return Ok(None);
        }
        let reader = age::armor::ArmoredReader::new(armored.as_bytes());
        let decryptor = age::Decryptor::new(reader)
            .map_err(|err| Error::MalformedMetadata(format!("age stanza: {err}")))?;
        let identities = self.age.iter().map(|i| i as &dyn age::Identity);
        match decryptor.decrypt(identities) {
            Ok(mut stream) => {
                let mut plaintext = Vec::new();
                stream
                    .read_to_end(&mut plaintext)
                    .map_err(|err| Error::MalformedMetadata(format!("age payload: {err}")))?;
                Ok(Some(plaintext))
            }
            Err(age::DecryptError::NoMatchingKeys) => Ok(None),
            Err(err) => Err(Error::MalformedMetadata(format!("age stanza: {err}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AGE-SECRET-KEY-1TLMFKLF357ET982LEPL58GLADFZWYLVNCV7CUQUDWVMGTTEK5EVQF2A8TN";
    const PUBLIC: &str = "age13lhng9hm7lhdazf5a4g6ugg7kg7e0yw0rampk7pkyfu229mn2a3sa6plh5";

    #[test]
    fn imports_identity_files_with_comments() {
        let mut keys = Keyring::new();
        let text = format!("# created: now\n# public key: {PUBLIC}\n\n{KEY}\n");
        assert_eq!(keys.import_age(&text).expect("valid"), 1);
        assert_eq!(keys.age_recipients(), vec![PUBLIC.to_owned()]);
        assert!(!format!("{keys:?}").contains("SECRET"));
    }

    #[test]
    fn rejects_bad_lines_without_echoing_them() {
        let mut keys = Keyring::new();
        let err = keys
            .import_age(&format!("{KEY}\nAGE-SECRET-KEY-1NOTAKEY\n"))
            .expect_err("bad line");
        assert!(matches!(err, Error::InvalidAgeKey { line: 2 }));
        assert!(!err.to_string().contains("NOTAKEY"));
    }

    #[test]
    fn secret_data_uses_flux_entry_names() {
        let mut keys = Keyring::new();
        let added = keys
            .import_secret_data([
                ("identity.agekey", KEY.as_bytes()),
                ("sops.vault-token", b"s.token".as_slice()),
            ])
            .expect("import");
        assert_eq!(added, 1);
        let err = keys
            .import_secret_data([("private.asc", b"-----BEGIN PGP".as_slice())])
            .expect_err("pgp");
        assert!(err.to_string().contains("private.asc"), "{err}");
        let err = keys
            .import_secret_data([("bad.agekey", b"nonsense".as_slice())])
            .expect_err("bad age");
        assert!(err.to_string().contains("bad.agekey"), "{err}");
    }
}
