//! Go's `encoding/json` output, byte for byte, for digests that must equal
//! those Flux computes over Go values (the `status.history[].digest` of a
//! HelmRelease is the sha256 of a `json.Encoder`'s output).
//!
//! [`to_vec`] serializes any `Serialize` value the way `json.Marshal`
//! encodes the Go value it mirrors: struct fields in declaration order (the
//! mirror's `skip_serializing_if` playing `omitempty`/`omitzero`), map keys
//! sorted by their bytes, strings with Go's escapes (`<`, `>`, `&`, U+2028
//! and U+2029 as `\u003c`-style escapes, control characters as `\u00XX`
//! except `\b \f \n \r \t`), integers as decimals and floats in Go's
//! shortest form (`1e+21`, `1e-7`, `0.000001`, `-0`). [`GoAny`] encodes
//! JSON decoded into a Go `any`, where every number is a float64. [`GoTime`]
//! is a `time.Time` as decoded from and encoded to RFC 3339.

use std::fmt::Write as _;

use serde::de::{Deserialize, Deserializer};
use serde::ser::{self, Impossible, Serialize, SerializeMap as _, SerializeSeq as _};
use serde_json::Value;

/// A value Go's encoder would refuse (NaN, infinities, non-string map keys,
/// enum variants with data) or a serialization error of the value itself.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(String);

impl ser::Error for Error {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        Error(msg.to_string())
    }
}

/// `value` as Go's `json.Marshal` encodes the Go value it mirrors (no
/// trailing newline: `json.Encoder.Encode` adds one).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    let mut serializer = Serializer { out: String::new() };
    value.serialize(&mut serializer)?;
    Ok(serializer.out.into_bytes())
}

/// Appends `text` as a Go JSON string (HTML-safe escaping, as
/// `json.Marshal` and a default `json.Encoder` do).
pub use go_format::write_string;

/// Appends `value` as Go encodes a float64 (`go_format::json_float`); Go
/// refuses NaN and the infinities.
pub fn write_float(out: &mut String, value: f64) -> Result<(), Error> {
    if !value.is_finite() {
        return Err(Error(format!("json: unsupported value: {value}")));
    }
    out.push_str(&go_format::json_float(value));
    Ok(())
}

/// A JSON value decoded into a Go `any` (as helm's `map[string]any` release
/// config): numbers are float64s, maps encode with sorted keys.
pub struct GoAny<'a>(pub &'a Value);

impl Serialize for GoAny<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            // `as_f64` converts integers with round-to-nearest, as Go's
            // ParseFloat reads the same digits.
            Value::Number(n) => serializer.serialize_f64(n.as_f64().unwrap_or(f64::NAN)),
            Value::String(s) => serializer.serialize_str(s),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&GoAny(item))?;
                }
                seq.end()
            }
            Value::Object(map) => GoObject(map).serialize(serializer),
        }
    }
}

/// A JSON object decoded into a Go `map[string]any` (see [`GoAny`]).
pub struct GoObject<'a>(pub &'a serde_json::Map<String, Value>);

impl Serialize for GoObject<'_> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in self.0 {
            out.serialize_entry(key, &GoAny(value))?;
        }
        out.end()
    }
}

/// Go's zero `time.Time` (January 1, year 1, 00:00:00 UTC) in Unix seconds.
const GO_ZERO_UNIX: i64 = -62_135_596_800;

/// A Go `time.Time` as `encoding/json` decodes it from RFC 3339 text and
/// encodes it back (RFC 3339 with nanoseconds, trailing zeros dropped, in
/// the offset it was written with; `Z` for offset zero). Helm's own
/// (un)marshalling is honoured too: `null`, `""` and a missing field are
/// the zero time, which helm's structs omit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GoTime(Option<TimeText>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum TimeText {
    Parsed(Rfc3339),
    /// Text Go would refuse to decode (so would Flux's helm-controller):
    /// kept as it is, so that a change of it still changes the digest.
    Invalid(String),
}

/// The fields of an RFC 3339 timestamp as Go keeps them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rfc3339 {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    /// Offset from UTC in minutes.
    offset: i32,
}

impl GoTime {
    /// Reads `text` as Go's `time.Time.UnmarshalJSON` reads a JSON string;
    /// empty text is helm's zero time.
    pub fn parse(text: &str) -> Self {
        if text.is_empty() {
            return GoTime(None);
        }
        GoTime(Some(match Rfc3339::parse(text) {
            Some(time) => TimeText::Parsed(time),
            None => TimeText::Invalid(text.to_string()),
        }))
    }

    /// Whether this is Go's zero time (`IsZero`), which helm omits.
    pub fn is_zero(&self) -> bool {
        match &self.0 {
            None => true,
            Some(TimeText::Parsed(time)) => time.unix_seconds() == GO_ZERO_UNIX && time.nanos == 0,
            Some(TimeText::Invalid(_)) => false,
        }
    }

    /// Whole seconds since the Unix epoch (`None` for the zero time or
    /// text that is no time).
    pub fn unix_seconds(&self) -> Option<i64> {
        match &self.0 {
            Some(TimeText::Parsed(time)) if !self.is_zero() => Some(time.unix_seconds()),
            _ => None,
        }
    }
}

impl Rfc3339 {
    /// Go's `parseRFC3339`: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`,
    /// fraction digits beyond nanoseconds ignored.
    fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        let number = |range: std::ops::Range<usize>, max: u32| -> Option<u32> {
            let digits = bytes.get(range)?;
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
            (value <= max).then_some(value)
        };
        let at = |index: usize, expected: u8| bytes.get(index) == Some(&expected);
        let year = i64::from(number(0..4, 9999)?);
        let month = number(5..7, 12).filter(|m| *m >= 1)?;
        let day = number(8..10, days_in_month(year, month)).filter(|d| *d >= 1)?;
        let hour = number(11..13, 23)?;
        let minute = number(14..16, 59)?;
        let second = number(17..19, 59)?;
        if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
            return None;
        }
        let mut rest = &bytes[19..];
        let mut nanos = 0;
        if rest.len() >= 2 && rest[0] == b'.' && rest[1].is_ascii_digit() {
            let digits = rest[1..].iter().take_while(|b| b.is_ascii_digit()).count();
            let mut scaled = 0u32;
            for position in 0..9 {
                let digit = if position < digits {
                    rest[1 + position] - b'0'
                } else {
                    0
                };
                scaled = scaled * 10 + u32::from(digit);
            }
            nanos = scaled;
            rest = &rest[1 + digits..];
        }
        let offset = match rest {
            b"Z" => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let zone = [*h1, *h2, *m1, *m2];
                if !zone.iter().all(u8::is_ascii_digit) {
                    return None;
                }
                let hours = i32::from(h1 - b'0') * 10 + i32::from(h2 - b'0');
                let minutes = i32::from(m1 - b'0') * 10 + i32::from(m2 - b'0');
                if hours > 23 || minutes > 59 {
                    return None;
                }
                let offset = hours * 60 + minutes;
                if *sign == b'-' { -offset } else { offset }
            }
            _ => return None,
        };
        Some(Rfc3339 {
            year,
            month,
            day,
            hour,
            minute,
            second,
            nanos,
            offset,
        })
    }

    fn unix_seconds(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset) * 60
    }

    /// Go's `time.RFC3339Nano` layout.
    fn format(&self) -> String {
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        );
        if self.nanos != 0 {
            let fraction = format!("{:09}", self.nanos);
            out.push('.');
            out.push_str(fraction.trim_end_matches('0'));
        }
        if self.offset == 0 {
            out.push('Z');
        } else {
            let sign = if self.offset < 0 { '-' } else { '+' };
            let offset = self.offset.unsigned_abs();
            let _ = write!(out, "{sign}{:02}:{:02}", offset / 60, offset % 60);
        }
        out
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (H. Hinnant).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

impl Serialize for GoTime {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            // Only reached where a mirror does not omit the zero time.
            None => serializer.serialize_str("0001-01-01T00:00:00Z"),
            Some(TimeText::Parsed(time)) => serializer.serialize_str(&time.format()),
            Some(TimeText::Invalid(text)) => serializer.serialize_str(text),
        }
    }
}

impl<'de> Deserialize<'de> for GoTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(GoTime(None)),
            Some(text) => Ok(GoTime::parse(&text)),
        }
    }
}

/// Writes Go's JSON into a string.
struct Serializer {
    out: String,
}

/// Elements of a list, written as they come.
struct Seq<'a> {
    ser: &'a mut Serializer,
    first: bool,
}

/// Entries of a map, sorted by key at the end as Go does.
struct Map<'a> {
    ser: &'a mut Serializer,
    entries: Vec<(String, String)>,
    key: Option<String>,
}

/// Fields of a struct, in declaration order.
struct Struct<'a> {
    ser: &'a mut Serializer,
    first: bool,
}

impl Serializer {
    /// Serializes `value` on its own, for map entries that are sorted later.
    fn nested<T: Serialize + ?Sized>(value: &T) -> Result<String, Error> {
        let mut inner = Serializer { out: String::new() };
        value.serialize(&mut inner)?;
        Ok(inner.out)
    }
}

impl<'a> ser::Serializer for &'a mut Serializer {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Seq<'a>;
    type SerializeTuple = Seq<'a>;
    type SerializeTupleStruct = Seq<'a>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Map<'a>;
    type SerializeStruct = Struct<'a>;
    type SerializeStructVariant = Impossible<(), Error>;

    fn serialize_bool(self, v: bool) -> Result<(), Error> {
        self.out.push_str(if v { "true" } else { "false" });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<(), Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i64(self, v: i64) -> Result<(), Error> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<(), Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u64(self, v: u64) -> Result<(), Error> {
        let _ = write!(self.out, "{v}");
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Error> {
        // No mirrored field is a float32 (Go formats those with 32-bit
        // precision); widening keeps the value.
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), Error> {
        write_float(&mut self.out, v)
    }
    fn serialize_char(self, v: char) -> Result<(), Error> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), Error> {
        write_string(&mut self.out, v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), Error> {
        // Go encodes a []byte as a base64 string.
        use base64::Engine as _;
        self.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    fn serialize_none(self) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), Error> {
        self.out.push_str("null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), Error> {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), Error> {
        // A Go string enum.
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _value: &T,
    ) -> Result<(), Error> {
        Err(Error(format!(
            "{name}::{variant}: Go has no enums with data"
        )))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<'a>, Error> {
        self.out.push('[');
        Ok(Seq {
            ser: self,
            first: true,
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Seq<'a>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(Error(format!(
            "{name}::{variant}: Go has no enums with data"
        )))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Map<'a>, Error> {
        Ok(Map {
            ser: self,
            entries: Vec::with_capacity(len.unwrap_or(0)),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Struct<'a>, Error> {
        self.out.push('{');
        Ok(Struct {
            ser: self,
            first: true,
        })
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(Error(format!(
            "{name}::{variant}: Go has no enums with data"
        )))
    }
}

impl Seq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        if !self.first {
            self.ser.out.push(',');
        }
        self.first = false;
        value.serialize(&mut *self.ser)
    }
}

impl ser::SerializeSeq for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        self.ser.out.push(']');
        Ok(())
    }
}

impl ser::SerializeTuple for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeTupleStruct for Seq<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.element(value)
    }
    fn end(self) -> Result<(), Error> {
        ser::SerializeSeq::end(self)
    }
}

impl ser::SerializeMap for Map<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(MapKey)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| Error("map value without a key".into()))?;
        self.entries.push((key, Serializer::nested(value)?));
        Ok(())
    }
    fn end(mut self) -> Result<(), Error> {
        // Go sorts map keys by their bytes (before escaping).
        self.entries.sort_by(|a, b| a.0.cmp(&b.0));
        let out = &mut self.ser.out;
        out.push('{');
        for (index, (key, value)) in self.entries.iter().enumerate() {
            if index > 0 {
                out.push(',');
            }
            write_string(out, key);
            out.push(':');
            out.push_str(value);
        }
        out.push('}');
        Ok(())
    }
}

impl ser::SerializeStruct for Struct<'_> {
    type Ok = ();
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        if !self.first {
            self.ser.out.push(',');
        }
        self.first = false;
        write_string(&mut self.ser.out, key);
        self.ser.out.push(':');
        value.serialize(&mut *self.ser)
    }
    fn end(self) -> Result<(), Error> {
        self.ser.out.push('}');
        Ok(())
    }
}

/// Map keys: Go's maps in the mirrored types are keyed by strings (integer
/// keys, which Go writes as decimal strings, are taken too).
struct MapKey;

impl ser::Serializer for MapKey {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i64(self, v: i64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_u64(self, v: u64) -> Result<String, Error> {
        Ok(v.to_string())
    }
    fn serialize_i8(self, v: i8) -> Result<String, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i16(self, v: i16) -> Result<String, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_i32(self, v: i32) -> Result<String, Error> {
        self.serialize_i64(v.into())
    }
    fn serialize_u8(self, v: u8) -> Result<String, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u16(self, v: u16) -> Result<String, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_u32(self, v: u32) -> Result<String, Error> {
        self.serialize_u64(v.into())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_string())
    }
    fn serialize_bool(self, _v: bool) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_error())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_error())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_error())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_error())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_error())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_error())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_error())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_error())
    }
}

fn key_error() -> Error {
    Error("json: unsupported map key type".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(value: &Value) -> String {
        String::from_utf8(to_vec(&GoAny(value)).expect("encodes")).expect("UTF-8")
    }

    /// `testdata/release-digest/numbers.jsonl`: JSON number literals and
    /// what Go's `json.Marshal` writes after decoding them into an `any`.
    #[test]
    fn numbers_encode_as_go_decodes_and_encodes_them() {
        let vectors = include_str!("../testdata/release-digest/numbers.jsonl");
        let mut count = 0;
        for line in vectors.lines() {
            let (literal, expected): (String, String) = serde_json::from_str(line).expect(line);
            let value: Value = serde_json::from_str(&literal).expect(&literal);
            assert_eq!(go(&value), expected, "{literal}");
            count += 1;
        }
        assert!(count > 400);
    }

    #[test]
    fn strings_and_maps_as_go_writes_them() {
        let value = serde_json::json!({
            "b": "<a href=\"x\">&</a>", "a": "\u{0}\u{1f}\u{8}\u{c}\n\r\t\\",
            "B": "\u{2028}\u{2029}é😀", "": [null, true, {"z": 1, "y": []}]
        });
        assert_eq!(
            go(&value),
            r#"{"":[null,true,{"y":[],"z":1}],"B":"\u2028\u2029é😀","a":"\u0000\u001f\b\f\n\r\t\\","b":"\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e"}"#
        );
        // DEL is no control character to Go.
        assert_eq!(go(&Value::from("\u{7f}")), "\"\u{7f}\"");
        assert!(to_vec(&f64::NAN).is_err());
        assert!(to_vec(&std::collections::HashMap::from([(true, 1)])).is_err());
    }

    #[test]
    fn times_as_go_reads_and_writes_them() {
        let cases = [
            (
                "2026-12-04T22:08:31.071498306Z",
                "2026-12-04T22:08:31.071498306Z",
            ),
            ("2026-12-04T22:08:31.500Z", "2026-12-04T22:08:31.5Z"),
            ("2026-12-04T22:08:31.000000000Z", "2026-12-04T22:08:31Z"),
            (
                "2024-02-29T23:59:59.1234567891+05:45",
                "2024-02-29T23:59:59.123456789+05:45",
            ),
            ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z"),
            ("2026-01-01T00:00:00-00:00", "2026-01-01T00:00:00Z"),
            ("2026-01-01T00:00:00-05:30", "2026-01-01T00:00:00-05:30"),
        ];
        for (text, go) in cases {
            let time = GoTime::parse(text);
            assert!(!time.is_zero(), "{text}");
            assert_eq!(
                String::from_utf8(to_vec(&time).expect("encodes")).expect("UTF-8"),
                format!("\"{go}\"")
            );
        }
        assert_eq!(
            GoTime::parse("2026-01-01T01:00:00+01:00").unix_seconds(),
            Some(1_767_225_600)
        );
        for zero in ["", "0001-01-01T00:00:00Z", "0000-12-31T23:00:00-01:00"] {
            assert!(GoTime::parse(zero).is_zero(), "{zero}");
            assert_eq!(GoTime::parse(zero).unix_seconds(), None);
        }
        // Not RFC 3339 (Go refuses these): kept as written.
        for invalid in [
            "2026-02-30T00:00:00Z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:00:00+0100",
            "yesterday",
            "2026-01-01T00:00:00.Z",
        ] {
            let time = GoTime::parse(invalid);
            assert!(!time.is_zero(), "{invalid}");
            assert_eq!(time.unix_seconds(), None);
            assert_eq!(
                String::from_utf8(to_vec(&time).expect("encodes")).expect("UTF-8"),
                format!("\"{invalid}\"")
            );
        }
    }
}
