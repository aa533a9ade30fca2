//! The `sops` metadata section: who the data key is encrypted for, which
//! values are encrypted, and the MAC.

use regex::Regex;
use serde_json::{Map, Value};

use crate::keyring::Keyring;
use crate::{Error, shamir};

/// SOPS's default when a file names no encryption rule.
const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// Which leaves of the tree are encrypted. SOPS allows one rule per file.
#[derive(Debug)]
pub(crate) enum Rule {
    /// Leaves under a key ending with the suffix are plaintext.
    UnencryptedSuffix(String),
    /// Only leaves under a key ending with the suffix are encrypted.
    EncryptedSuffix(String),
    /// Leaves under a key matching the regex are plaintext.
    UnencryptedRegex(Regex),
    /// Only leaves under a key matching the regex are encrypted.
    EncryptedRegex(Regex),
    /// The rule depends on YAML comments, which this reader does not keep:
    /// a leaf counts as encrypted when it has the `ENC[…]` form.
    ByComment,
}

impl Rule {
    /// Whether the leaf at `path` is encrypted; `value` is only consulted
    /// for comment-based rules.
    pub(crate) fn encrypts(&self, path: &[String], value: &Value) -> bool {
        match self {
            Rule::UnencryptedSuffix(suffix) => !path.iter().any(|key| key.ends_with(suffix)),
            Rule::EncryptedSuffix(suffix) => path.iter().any(|key| key.ends_with(suffix)),
            Rule::UnencryptedRegex(regex) => !path.iter().any(|key| regex.is_match(key)),
            Rule::EncryptedRegex(regex) => path.iter().any(|key| regex.is_match(key)),
            Rule::ByComment => value.as_str().is_some_and(crate::cipher::looks_encrypted),
        }
    }
}

/// One master key the data key (or a share of it) is encrypted with.
#[derive(Debug)]
enum MasterKey {
    /// An age recipient and its armored stanza.
    Age { recipient: String, enc: String },
    /// A key type this implementation cannot use, described for errors.
    Unsupported(String),
}

/// The parsed `sops` section.
#[derive(Debug)]
pub(crate) struct Metadata {
    groups: Vec<Vec<MasterKey>>,
    shamir_threshold: usize,
    /// The `lastmodified` timestamp as SOPS re-formats it for the MAC's AAD.
    pub(crate) last_modified: String,
    /// The encrypted MAC.
    pub(crate) mac: String,
    pub(crate) rule: Rule,
    pub(crate) mac_only_encrypted: bool,
}

fn string_field<'a>(section: &'a Map<String, Value>, name: &str) -> Result<&'a str, Error> {
    match section.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(Error::MalformedMetadata(format!("{name} is not a string"))),
    }
}

/// Reads the master keys of one group (the top level or a `key_groups` item).
fn keys_of(group: &Map<String, Value>) -> Result<Vec<MasterKey>, Error> {
    let mut keys = Vec::new();
    let entries = |name: &str| -> Result<Vec<&Map<String, Value>>, Error> {
        match group.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_object().ok_or_else(|| {
                        Error::MalformedMetadata(format!("{name} entry is not a mapping"))
                    })
                })
                .collect(),
            Some(_) => Err(Error::MalformedMetadata(format!("{name} is not a list"))),
        }
    };
    for entry in entries("age")? {
        keys.push(MasterKey::Age {
            recipient: string_field(entry, "recipient")?.to_owned(),
            enc: string_field(entry, "enc")?.to_owned(),
        });
    }
    // Other key types are listed so that a failure can say what the file
    // would need; their stanzas are never used.
    let described: [(&str, &str, &str); 5] = [
        ("pgp", "fp", "PGP key"),
        ("kms", "arn", "AWS KMS key"),
        ("gcp_kms", "resource_id", "GCP KMS key"),
        ("azure_kv", "vault_url", "Azure Key Vault"),
        ("hc_vault", "vault_address", "Vault"),
    ];
    for (field, id, label) in described {
        for entry in entries(field)? {
            keys.push(MasterKey::Unsupported(format!(
                "{label} {}",
                string_field(entry, id)?
            )));
        }
    }
    Ok(keys)
}

/// SOPS parses `lastmodified` and formats it again as RFC 3339 (seconds
/// precision, `Z` for a zero offset) before using it as the MAC's AAD.
fn normalise_timestamp(text: &str) -> String {
    let (main, offset) = match text.rfind(['Z', '+']).or_else(|| {
        // A negative offset: the last '-' after the time part.
        text.rfind('-').filter(|&at| text[..at].contains('T'))
    }) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let main = main.split_once('.').map_or(main, |(seconds, _)| seconds);
    let offset = if offset == "+00:00" || offset == "-00:00" {
        "Z"
    } else {
        offset
    };
    format!("{main}{offset}")
}

impl Metadata {
    /// Parses the `sops` section of a document.
    pub(crate) fn parse(section: &Value) -> Result<Metadata, Error> {
        let section = section
            .as_object()
            .ok_or_else(|| Error::MalformedMetadata("the sops section is not a mapping".into()))?;
        let key_groups = match section.get("key_groups") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(groups)) => groups
                .iter()
                .map(|group| {
                    group
                        .as_object()
                        .ok_or_else(|| {
                            Error::MalformedMetadata("key group is not a mapping".into())
                        })
                        .and_then(keys_of)
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(Error::MalformedMetadata("key_groups is not a list".into())),
        };
        let groups = if key_groups.is_empty() {
            vec![keys_of(section)?]
        } else {
            key_groups
        };
        let shamir_threshold = match section.get("shamir_threshold") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
            // The dotenv store writes every metadata value as a string.
            Some(Value::String(text)) => text.parse().map_err(|_| {
                Error::MalformedMetadata("shamir_threshold is not an integer".into())
            })?,
            Some(_) => {
                return Err(Error::MalformedMetadata(
                    "shamir_threshold is not an integer".into(),
                ));
            }
        };
        let mac_only_encrypted = match section.get("mac_only_encrypted") {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::String(text)) => text == "true",
            _ => false,
        };

        let mut rules = Vec::new();
        let regex = |name: &str, pattern: &str| {
            Regex::new(pattern).map_err(|err| Error::MalformedMetadata(format!("{name}: {err}")))
        };
        for name in [
            "unencrypted_suffix",
            "encrypted_suffix",
            "unencrypted_regex",
            "encrypted_regex",
            "unencrypted_comment_regex",
            "encrypted_comment_regex",
        ] {
            let value = string_field(section, name)?;
            if value.is_empty() {
                continue;
            }
            rules.push(match name {
                "unencrypted_suffix" => Rule::UnencryptedSuffix(value.to_owned()),
                "encrypted_suffix" => Rule::EncryptedSuffix(value.to_owned()),
                "unencrypted_regex" => Rule::UnencryptedRegex(regex(name, value)?),
                "encrypted_regex" => Rule::EncryptedRegex(regex(name, value)?),
                _ => Rule::ByComment,
            });
        }
        if rules.len() > 1 {
            return Err(Error::MalformedMetadata(
                "more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
                 unencrypted_regex, encrypted_comment_regex and unencrypted_comment_regex"
                    .into(),
            ));
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_owned()));

        let last_modified = string_field(section, "lastmodified")?;
        if last_modified.is_empty() {
            return Err(Error::MalformedMetadata("lastmodified is missing".into()));
        }
        Ok(Metadata {
            groups,
            shamir_threshold,
            last_modified: normalise_timestamp(last_modified),
            mac: string_field(section, "mac")?.to_owned(),
            rule,
            mac_only_encrypted,
        })
    }

    /// Every master key of the file, described for error messages.
    fn recipients(&self) -> Vec<String> {
        self.groups
            .iter()
            .flatten()
            .map(|key| match key {
                MasterKey::Age { recipient, .. } => recipient.clone(),
                MasterKey::Unsupported(description) => format!("{description} (not supported)"),
            })
            .collect()
    }

    /// Recovers the 32-byte data key with the keyring.
    pub(crate) fn data_key(&self, keys: &Keyring) -> Result<[u8; 32], Error> {
        let mut parts = Vec::new();
        for group in &self.groups {
            for key in group {
                if let MasterKey::Age { enc, .. } = key
                    && let Some(part) = keys.open_age(enc)?
                {
                    parts.push(part);
                    break;
                }
            }
        }
        let no_key = || Error::NoMatchingKey {
            recipients: self.recipients(),
            available: keys.age_recipients(),
        };
        let key = if self.groups.len() > 1 {
            if parts.len() < self.shamir_threshold.max(2) {
                return Err(no_key());
            }
            shamir::combine(&parts)?
        } else {
            parts.pop().ok_or_else(no_key)?
        };
        key.try_into()
            .map_err(|_| Error::MalformedMetadata("the data key is not 32 bytes".into()))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn section(extra: Value) -> Value {
        let mut base =
            json!({"lastmodified": "2024-05-06T07:08:09Z", "mac": "", "version": "3.10.2"});
        if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
            base.extend(extra.clone());
        }
        base
    }

    fn path(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn default_rule_is_unencrypted_suffix() {
        let md = Metadata::parse(&section(json!({}))).expect("parse");
        let v = Value::String("x".into());
        assert!(md.rule.encrypts(&path(&["a", "b"]), &v));
        assert!(!md.rule.encrypts(&path(&["a_unencrypted", "b"]), &v));
    }

    #[test]
    fn each_rule_kind() {
        let v = Value::String("plain".into());
        let md = Metadata::parse(&section(json!({"encrypted_regex": "^(data|stringData)$"})))
            .expect("parse");
        assert!(md.rule.encrypts(&path(&["stringData", "password"]), &v));
        assert!(!md.rule.encrypts(&path(&["metadata", "name"]), &v));
        let md = Metadata::parse(&section(json!({"unencrypted_regex": "^meta"}))).expect("parse");
        assert!(!md.rule.encrypts(&path(&["metadata", "name"]), &v));
        let md = Metadata::parse(&section(json!({"encrypted_suffix": "_secret"}))).expect("parse");
        assert!(md.rule.encrypts(&path(&["db_secret", "x"]), &v));
        assert!(!md.rule.encrypts(&path(&["db"]), &v));
        let md = Metadata::parse(&section(json!({"encrypted_comment_regex": "sops:enc"})))
            .expect("parse");
        assert!(!md.rule.encrypts(&path(&["a"]), &v));
        assert!(md.rule.encrypts(
            &path(&["a"]),
            &Value::String("ENC[AES256_GCM,data:x]".into())
        ));
    }

    #[test]
    fn two_rules_are_refused() {
        let err = Metadata::parse(&section(
            json!({"encrypted_regex": "a", "unencrypted_suffix": "_u"}),
        ))
        .expect_err("two rules");
        assert!(err.to_string().contains("more than one"), "{err}");
    }

    #[test]
    fn timestamps_are_normalised_like_go() {
        assert_eq!(
            normalise_timestamp("2024-05-06T07:08:09Z"),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            normalise_timestamp("2024-05-06T07:08:09.123Z"),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            normalise_timestamp("2024-05-06T07:08:09+00:00"),
            "2024-05-06T07:08:09Z"
        );
        assert_eq!(
            normalise_timestamp("2024-05-06T07:08:09.5-02:00"),
            "2024-05-06T07:08:09-02:00"
        );
    }

    #[test]
    fn missing_key_names_the_recipients() {
        let md = Metadata::parse(&section(json!({
            "age": [{"recipient": "age1example", "enc": "-----BEGIN AGE ENCRYPTED FILE-----\n-----END AGE ENCRYPTED FILE-----\n"}],
            "pgp": [{"fp": "ABCDEF", "enc": "x", "created_at": "now"}],
        })))
        .expect("parse");
        let err = md.data_key(&Keyring::new()).expect_err("no keys");
        let text = err.to_string();
        assert!(
            text.contains("age1example") && text.contains("PGP key ABCDEF"),
            "{text}"
        );
    }
}
