//! Decoding as Go's `encoding/json` decodes into structs, which is how
//! kustomize reads kustomization files and most plugin configs (YAML turned
//! into JSON by `sigs.k8s.io/yaml`): a key names a field when it matches the
//! field's JSON name exactly or, failing that, case-insensitively; when
//! several keys name the same field the last one wins; and `null` leaves a
//! field as it is. Unknown keys stay unknown (the structs decide whether
//! that is an error).
//!
//! `sigs.k8s.io/yaml.Unmarshal` (plugin configs) also turns a number or a
//! boolean into text where the Go field is a string ([`from_value_coercing`]);
//! `YAMLToJSON` followed by a JSON decoder (kustomization files) does not.

use serde::Deserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Decodes `value` into `T` with Go's rules for struct fields.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(GoJson(
        value,
        Mode {
            fold_case: true,
            coerce: false,
        },
    ))
}

/// [`from_value`], numbers and booleans decoding into strings as their text
/// (what `sigs.k8s.io/yaml.Unmarshal` does for string fields).
pub fn from_value_coercing<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(GoJson(
        value,
        Mode {
            fold_case: true,
            coerce: true,
        },
    ))
}

/// Decodes as kyaml (go-yaml v3) decodes into a struct: exact field names,
/// any scalar readable as text.
pub fn from_value_yaml_v3<T: DeserializeOwned>(value: Value) -> Result<T, serde_json::Error> {
    T::deserialize(GoJson(
        value,
        Mode {
            fold_case: false,
            coerce: true,
        },
    ))
}

/// How to decode.
#[derive(Clone, Copy)]
struct Mode {
    /// Match field names case-insensitively (and drop nulls).
    fold_case: bool,
    /// Read numbers and booleans into string fields as text.
    coerce: bool,
}

/// `strconv.FormatFloat(f, 'g', -1, 32)`: the shortest text of the float32
/// nearest `f`, in exponent form below 1e-4 and from 1e+06.
fn format_g32(f: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let x = f as f32;
    if !x.is_finite() {
        return go_format::format_g(f64::from(x));
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` is the shortest round-trip text of the f32.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if x < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let dp = exp + 1;
    let n = digits.len() as i32;
    let text = if dp <= 0 {
        format!(
            "0.{}{digits}",
            "0".repeat(usize::try_from(-dp).unwrap_or(0))
        )
    } else if dp >= n {
        format!(
            "{digits}{}",
            "0".repeat(usize::try_from(dp - n).unwrap_or(0))
        )
    } else {
        let (int, frac) = digits.split_at(usize::try_from(dp).unwrap_or(0));
        format!("{int}.{frac}")
    };
    format!("{sign}{text}")
}

/// Go's `foldName` comparison: equal ignoring case.
fn fold_eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
        || (!a.is_ascii()
            && a.chars()
                .flat_map(char::to_lowercase)
                .eq(b.chars().flat_map(char::to_lowercase)))
}

/// Renames keys to the field names they match and drops nulls (a `null`
/// does not change a Go struct field). Keys are taken in byte order, as
/// `sigs.k8s.io/yaml` writes them into the JSON Go decodes, and the last of
/// several keys naming a field wins.
fn fold_keys(obj: Map<String, Value>, fields: &[&str]) -> Map<String, Value> {
    let mut out = Map::with_capacity(obj.len());
    let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, value) in entries {
        let name = if fields.contains(&key.as_str()) {
            key
        } else {
            match fields.iter().find(|f| fold_eq(f, &key)) {
                Some(f) => (*f).to_string(),
                None => key,
            }
        };
        if value.is_null() && fields.contains(&name.as_str()) {
            continue;
        }
        out.insert(name, value);
    }
    out
}

/// A JSON value decoded with Go's rules.
struct GoJson(Value, Mode);

struct Seq(std::vec::IntoIter<Value>, Mode);

impl<'de> SeqAccess<'de> for Seq {
    type Error = serde_json::Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.0.next() {
            Some(v) => seed.deserialize(GoJson(v, self.1)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries {
    iter: serde_json::map::IntoIter,
    value: Option<Value>,
    mode: Mode,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = serde_json::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let key: de::value::StringDeserializer<serde_json::Error> = k.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let v = self.value.take().unwrap_or(Value::Null);
        seed.deserialize(GoJson(v, self.mode))
    }
}

impl<'de> Deserializer<'de> for GoJson {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Array(items) => visitor.visit_seq(Seq(items.into_iter(), self.1)),
            Value::Object(obj) => visitor.visit_map(Entries {
                iter: obj.into_iter(),
                value: None,
                mode: self.1,
            }),
            other => other.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Number(n) if self.1.coerce => {
                let text = match (n.as_i64(), n.as_u64()) {
                    (Some(i), _) => i.to_string(),
                    (None, Some(u)) => u.to_string(),
                    _ => format_g32(n.as_f64().unwrap_or(0.0)),
                };
                visitor.visit_string(text)
            }
            Value::Bool(b) if self.1.coerce => visitor.visit_string(b.to_string()),
            other => GoJson(other, self.1).deserialize_any(visitor),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            other => visitor.visit_some(GoJson(other, self.1)),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        match self.0 {
            Value::Object(obj) if self.1.fold_case => visitor.visit_map(Entries {
                iter: fold_keys(obj, fields).into_iter(),
                value: None,
                mode: self.1,
            }),
            other => GoJson(other, self.1).deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Inner {
        disable_name_suffix_hash: bool,
    }

    #[derive(Deserialize, Debug, Default, PartialEq)]
    #[serde(default, deny_unknown_fields, rename_all = "camelCase")]
    struct Outer {
        name: String,
        options: Option<Inner>,
        list: Vec<Inner>,
    }

    #[test]
    fn folds_case_last_key_wins_null_ignored() {
        // Byte order: "NAME" before "name".
        let v = serde_json::json!({
            "name": "b",
            "NAME": "a",
            "Options": {"DisableNameSuffixHash": true},
            "list": [{"disablenamesuffixhash": true}],
        });
        let o: Outer = from_value(v).unwrap();
        assert_eq!(o.name, "b");
        assert_eq!(
            o.options,
            Some(Inner {
                disable_name_suffix_hash: true
            })
        );
        assert_eq!(o.list.len(), 1);
        let o: Outer = from_value(serde_json::json!({"list": null, "name": null})).unwrap();
        assert_eq!(o, Outer::default());
        assert!(from_value::<Outer>(serde_json::json!({"nope": 1})).is_err());
    }

    #[test]
    fn coerces_scalars_into_strings() {
        let v = serde_json::json!({"a": 1, "b": true, "c": 1.5, "d": 0.1, "e": 1e7, "f": 1e-5});
        let m: std::collections::BTreeMap<String, String> = from_value_coercing(v.clone()).unwrap();
        let got: Vec<&str> = m.values().map(String::as_str).collect();
        assert_eq!(got, ["1", "true", "1.5", "0.1", "1e+07", "1e-05"]);
        assert!(from_value::<std::collections::BTreeMap<String, String>>(v).is_err());
    }
}
