//! Walking a document: decrypting its leaves and computing the MAC exactly
//! as SOPS does (same walk order, same byte rendering of every leaf).

use serde_json::{Map, Number, Value};
use sha2::{Digest, Sha512};

use crate::Error;
use crate::cipher::{self, Plain};
use crate::metadata::Metadata;

/// SHA-256 of "sops": written first into the MAC when only encrypted
/// values are covered, so that such a MAC never equals a full one.
const MAC_ONLY_ENCRYPTED_INITIALIZATION: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// One entry of a top-level branch. Only dotenv documents keep comments;
/// YAML comments are dropped by the parser (they are not part of the MAC).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Item {
    /// `key: value`.
    Entry(String, Value),
    /// A comment line (without `#`).
    Comment(String),
}

/// A top-level branch: one YAML document, the JSON object, the dotenv file.
pub(crate) type Branch = Vec<Item>;

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip digits,
/// never an exponent. Rust's `Display` for `f64` has the same contract.
fn go_float(value: f64) -> String {
    format!("{value}")
}

/// The bytes SOPS hashes for a leaf (`sops.ToBytes`).
fn leaf_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(text) => Some(text.as_bytes().to_vec()),
        Value::Bool(flag) => Some(if *flag {
            b"True".to_vec()
        } else {
            b"False".to_vec()
        }),
        Value::Number(number) => Some(
            match (number.as_i64(), number.as_u64(), number.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, Some(f)) => go_float(f),
                _ => number.to_string(),
            }
            .into_bytes(),
        ),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A decrypted leaf as a JSON value. Floats that are whole numbers become
/// integers, as Go's encoders print them (`8443`, not `8443.0`).
fn plain_to_value(plain: Plain) -> Result<Value, Error> {
    Ok(match plain {
        Plain::Str(text) | Plain::Time(text) | Plain::Comment(text) => Value::String(text),
        Plain::Int(int) => Value::Number(int.into()),
        Plain::Float(float) => {
            const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
            if float.fract() == 0.0 && float.abs() < EXACT {
                Value::Number((float as i64).into())
            } else {
                Value::Number(
                    Number::from_f64(float)
                        .ok_or_else(|| Error::MalformedValue("float is not finite".into()))?,
                )
            }
        }
        Plain::Bool(flag) => Value::Bool(flag),
        Plain::Bytes(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Value::String(text),
            Err(err) => {
                use base64::Engine as _;
                Value::String(base64::engine::general_purpose::STANDARD.encode(err.into_bytes()))
            }
        },
    })
}

/// The bytes SOPS hashes for a decrypted leaf; comments are not hashed.
fn plain_bytes(plain: &Plain) -> Option<Vec<u8>> {
    Some(match plain {
        Plain::Str(text) | Plain::Time(text) => text.as_bytes().to_vec(),
        Plain::Int(int) => int.to_string().into_bytes(),
        Plain::Float(float) => go_float(*float).into_bytes(),
        Plain::Bool(flag) => leaf_bytes(&Value::Bool(*flag))?,
        Plain::Bytes(bytes) => bytes.clone(),
        Plain::Comment(_) => return None,
    })
}

/// Decrypts the leaves of a document and accumulates its MAC.
struct Walker<'a> {
    key: &'a [u8; 32],
    metadata: &'a Metadata,
    hasher: Sha512,
}

impl Walker<'_> {
    fn leaf(&mut self, value: &mut Value, path: &[String]) -> Result<(), Error> {
        let encrypted = self.metadata.rule.encrypts(path, value);
        let at = |source: Error| Error::Value {
            path: path.join(":"),
            source: Box::new(source),
        };
        if encrypted {
            let Value::String(sealed) = value else {
                return Err(at(Error::NotEncrypted));
            };
            let plain =
                cipher::decrypt(sealed, self.key, &format!("{}:", path.join(":"))).map_err(at)?;
            if let Some(bytes) = plain_bytes(&plain) {
                self.hasher.update(&bytes);
            }
            *value = plain_to_value(plain).map_err(at)?;
        } else if !self.metadata.mac_only_encrypted
            && let Some(bytes) = leaf_bytes(value)
        {
            self.hasher.update(&bytes);
        }
        Ok(())
    }

    /// SOPS's walk: maps extend the path by their key, sequence items keep
    /// their parent's path, nulls are neither decrypted nor hashed.
    fn value(&mut self, value: &mut Value, path: &mut Vec<String>) -> Result<(), Error> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    path.push(key.clone());
                    self.value(child, path)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Array(items) => items.iter_mut().try_for_each(|item| self.value(item, path)),
            Value::Null => Ok(()),
            _ => self.leaf(value, path),
        }
    }

    fn branch(&mut self, branch: &mut Branch) -> Result<(), Error> {
        let mut path = Vec::new();
        for item in branch.iter_mut() {
            match item {
                Item::Entry(key, value) => {
                    path.push(key.clone());
                    self.value(value, &mut path)?;
                    path.pop();
                }
                // SOPS decrypts comments when it can and keeps them as they
                // are otherwise (files written by old releases); they never
                // count for the MAC.
                Item::Comment(text) => {
                    if cipher::looks_encrypted(text)
                        && let Ok(Plain::Comment(plain)) = cipher::decrypt(text, self.key, ":")
                    {
                        *text = plain;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Decrypts every branch in place with the data key; returns the MAC SOPS
/// would compute over the plaintext (uppercase hex SHA-512).
pub(crate) fn decrypt_branches(
    branches: &mut [Branch],
    key: &[u8; 32],
    metadata: &Metadata,
) -> Result<String, Error> {
    let mut walker = Walker {
        key,
        metadata,
        hasher: Sha512::new(),
    };
    if metadata.mac_only_encrypted {
        walker.hasher.update(MAC_ONLY_ENCRYPTED_INITIALIZATION);
    }
    for branch in branches.iter_mut() {
        walker.branch(branch)?;
    }
    Ok(hex_upper(&walker.hasher.finalize()))
}

fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            // Writing to a String cannot fail.
            let _ = write!(out, "{b:02X}");
            out
        })
}

/// Checks the file's MAC against the computed one.
pub(crate) fn verify_mac(computed: &str, key: &[u8; 32], metadata: &Metadata) -> Result<(), Error> {
    let stored = match cipher::decrypt(&metadata.mac, key, &metadata.last_modified) {
        Ok(Plain::Str(mac)) => mac,
        Ok(_) => return Err(Error::MalformedMetadata("the MAC is not a string".into())),
        Err(err) => {
            return Err(Error::Value {
                path: "sops:mac".into(),
                source: Box::new(err),
            });
        }
    };
    if stored == computed {
        Ok(())
    } else {
        Err(Error::MacMismatch {
            expected: if stored.is_empty() {
                "no MAC".into()
            } else {
                stored
            },
            computed: computed.to_owned(),
        })
    }
}

/// A branch from a JSON object (or YAML mapping).
pub(crate) fn branch_from_map(map: Map<String, Value>) -> Branch {
    map.into_iter().map(|(k, v)| Item::Entry(k, v)).collect()
}

/// The JSON object of a branch; comments are dropped.
pub(crate) fn branch_to_map(branch: Branch) -> Map<String, Value> {
    branch
        .into_iter()
        .filter_map(|item| match item {
            Item::Entry(k, v) => Some((k, v)),
            Item::Comment(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn leaves_render_like_go() {
        assert_eq!(leaf_bytes(&json!(true)), Some(b"True".to_vec()));
        assert_eq!(leaf_bytes(&json!(false)), Some(b"False".to_vec()));
        assert_eq!(leaf_bytes(&json!(42)), Some(b"42".to_vec()));
        assert_eq!(leaf_bytes(&json!(0.25)), Some(b"0.25".to_vec()));
        assert_eq!(
            leaf_bytes(&json!(1.5e20)),
            Some(b"150000000000000000000".to_vec())
        );
        assert_eq!(leaf_bytes(&json!(1e-7)), Some(b"0.0000001".to_vec()));
        assert_eq!(leaf_bytes(&Value::Null), None);
    }

    #[test]
    fn whole_floats_become_integers() {
        assert_eq!(
            plain_to_value(Plain::Float(8443.0)).expect("float"),
            json!(8443)
        );
        assert_eq!(
            plain_to_value(Plain::Float(0.5)).expect("float"),
            json!(0.5)
        );
    }

    #[test]
    fn hex_is_uppercase() {
        assert_eq!(hex_upper(&[0xab, 0x01]), "AB01");
    }
}
