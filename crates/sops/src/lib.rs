//! Native decryption of [SOPS](https://github.com/getsops/sops) documents,
//! as a pure library: no processes, no network, no files.
//!
//! A SOPS document keeps its structure in the clear and encrypts leaf
//! values as `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` with one random
//! data key; the `sops` section holds that data key encrypted for each
//! recipient, the encryption rule, and a MAC over all plaintext leaves.
//! This crate recovers the data key with age X25519 identities (optionally
//! combining Shamir shares across key groups), decrypts every leaf with its
//! tree path as additional data, casts it back to its type and can verify
//! the MAC. YAML, JSON, dotenv and binary documents are read; comments in
//! YAML are not kept. PGP and cloud KMS master keys are recognised (and
//! named in errors) but not used.
//!
//! ```no_run
//! let mut keys = sops::Keyring::new();
//! keys.import_age(&std::fs::read_to_string("age.agekey")?)?;
//! let encrypted = std::fs::read("secret.enc.yaml")?;
//! let plain = sops::decrypt(&encrypted, sops::Format::Yaml, sops::Format::Yaml, &keys,
//!     sops::DecryptOptions::default())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![warn(missing_docs)]

mod cipher;
mod format;
mod keyring;
mod metadata;
mod shamir;
mod tree;

use serde_json::{Map, Value};

pub use format::Format;
pub use keyring::{AGE_KEY_SUFFIX, Keyring, PGP_KEY_SUFFIX};

use crate::format::METADATA_KEY;
use crate::metadata::Metadata;
use crate::tree::{branch_from_map, branch_to_map};

/// What can go wrong decrypting a SOPS document. Messages never contain
/// secret material: neither key text nor values.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The document does not parse in its format.
    #[error("cannot parse {format} document: {reason}")]
    Parse {
        /// The input format.
        format: Format,
        /// The parser's message.
        reason: String,
    },
    /// The decrypted document cannot be written in the output format.
    #[error("cannot write decrypted document as {format}: {reason}")]
    Emit {
        /// The output format.
        format: Format,
        /// Why.
        reason: String,
    },
    /// A format this crate does not read or write.
    #[error("the {0} format is not supported")]
    UnsupportedFormat(Format),
    /// The document has no `sops` section: it is not SOPS-encrypted.
    #[error("sops metadata not found")]
    MetadataNotFound,
    /// The `sops` section is not valid.
    #[error("invalid sops metadata: {0}")]
    MalformedMetadata(String),
    /// None of the given keys opens the data key.
    #[error(
        "cannot get sops data key: no decryption key matches; the data key is encrypted for {}, {}",
        list_or_none(recipients),
        available_keys(available)
    )]
    NoMatchingKey {
        /// The file's recipients (age public keys and descriptions of other keys).
        recipients: Vec<String>,
        /// The public keys of the identities that were tried.
        available: Vec<String>,
    },
    /// Combining Shamir shares of the data key failed.
    #[error("cannot combine the key groups' shares of the data key: {0}")]
    Shamir(String),
    /// An age identity line does not parse.
    #[error("line {line} is not an age identity (AGE-SECRET-KEY-1…)")]
    InvalidAgeKey {
        /// 1-based line number.
        line: usize,
    },
    /// A decryption Secret entry cannot be used.
    #[error("decryption key entry {entry:?}: {reason}")]
    InvalidSecretEntry {
        /// The Secret data key.
        entry: String,
        /// Why.
        reason: String,
    },
    /// Decrypting the value at a tree path failed.
    #[error("cannot decrypt value at {path:?}: {source}")]
    Value {
        /// The path, keys joined by `:`.
        path: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// An encrypted value is not of the `ENC[AES256_GCM,…]` form.
    #[error("malformed encrypted value: {0}")]
    MalformedValue(String),
    /// A value the encryption rule covers is not an encrypted string.
    #[error("value is not encrypted though the file's encryption rule covers it")]
    NotEncrypted,
    /// AES-GCM authentication failed: wrong key, or the value was moved or altered.
    #[error("authentication failed: the value was altered or encrypted under another key or path")]
    Authentication,
    /// The MAC over the plaintext does not match the file's.
    #[error("failed to verify sops data integrity: expected mac '{expected}', got '{computed}'")]
    MacMismatch {
        /// The MAC stored in the file.
        expected: String,
        /// The MAC of the decrypted values.
        computed: String,
    },
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "no recipient".to_owned()
    } else {
        items.join(", ")
    }
}

fn available_keys(available: &[String]) -> String {
    if available.is_empty() {
        "and no age key was given".to_owned()
    } else {
        format!("but the keys given are {}", available.join(", "))
    }
}

/// How to decrypt.
#[derive(Clone, Copy, Debug)]
pub struct DecryptOptions {
    /// Check the document's MAC, as the `sops` CLI does. Flux does not check
    /// it for Kubernetes objects, because kustomize adds labels, namespaces
    /// and name affixes to them after encryption.
    pub verify_mac: bool,
}

impl Default for DecryptOptions {
    fn default() -> Self {
        DecryptOptions { verify_mac: true }
    }
}

/// Whether an object is SOPS-encrypted: it has a `sops` section with a
/// non-empty `mac` (Flux's test).
pub fn is_encrypted(object: &Map<String, Value>) -> bool {
    object
        .get(METADATA_KEY)
        .and_then(|section| section.get("mac"))
        .is_some_and(|mac| match mac {
            Value::String(text) => !text.is_empty(),
            Value::Null => false,
            _ => true,
        })
}

/// Decrypts a whole document from `input` format and writes it as `output`.
pub fn decrypt(
    data: &[u8],
    input: Format,
    output: Format,
    keys: &Keyring,
    options: DecryptOptions,
) -> Result<Vec<u8>, Error> {
    let mut loaded = format::load(data, input)?;
    let metadata = Metadata::parse(&loaded.metadata)?;
    let key = metadata.data_key(keys)?;
    let mac = tree::decrypt_branches(&mut loaded.branches, &key, &metadata)?;
    if options.verify_mac {
        tree::verify_mac(&mac, &key, &metadata)?;
    }
    format::emit(loaded.branches, output)
}

/// Decrypts an object (e.g. a Kubernetes Secret as JSON) that carries its
/// own `sops` section; returns it without that section. Key order is kept.
pub fn decrypt_object(
    object: &Map<String, Value>,
    keys: &Keyring,
    options: DecryptOptions,
) -> Result<Map<String, Value>, Error> {
    let mut object = object.clone();
    let section = object
        .shift_remove(METADATA_KEY)
        .ok_or(Error::MetadataNotFound)?;
    let metadata = Metadata::parse(&section)?;
    let key = metadata.data_key(keys)?;
    let mut branches = vec![branch_from_map(object)];
    let mac = tree::decrypt_branches(&mut branches, &key, &metadata)?;
    if options.verify_mac {
        tree::verify_mac(&mac, &key, &metadata)?;
    }
    let branch = branches.pop().unwrap_or_default();
    Ok(branch_to_map(branch))
}
