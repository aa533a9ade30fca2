//! Implicit typing of plain YAML scalars as go-yaml does it.
//!
//! kustomize reads resources with go-yaml v3 (YAML 1.2 booleans, but Go's
//! permissive integer syntax and timestamps) and prints them with go-yaml v2
//! (which additionally treats YAML 1.1 `yes`/`no`/`on`/`off` as booleans, so
//! such strings get quoted on output).

use super::timestamp;

/// Which go-yaml major version's rules apply.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Dialect {
    /// go-yaml v2: YAML 1.1 booleans (`yes`, `on`, ...) too.
    V2,
    /// go-yaml v3: YAML 1.2 booleans only.
    V3,
}

/// What a plain scalar resolves to.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    /// `null`, `~` or empty.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An integer too large for `i64`.
    Uint(u64),
    /// A float, including `.inf` and `.nan`.
    Float(f64),
    /// A timestamp, already rendered as Go's `time.Time` JSON form.
    Timestamp(String),
    /// The merge key `<<`.
    Merge,
    /// A string.
    Str,
}

fn hint(first: u8) -> u8 {
    match first {
        b'+' | b'-' => b'S',
        b'0'..=b'9' => b'D',
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => b'M',
        b'.' => b'.',
        _ => 0,
    }
}

fn lookup(s: &str, dialect: Dialect) -> Option<Resolved> {
    let r = match s {
        "true" | "True" | "TRUE" => Resolved::Bool(true),
        "false" | "False" | "FALSE" => Resolved::Bool(false),
        "" | "~" | "null" | "Null" | "NULL" => Resolved::Null,
        ".nan" | ".NaN" | ".NAN" => Resolved::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Resolved::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Resolved::Float(f64::NEG_INFINITY),
        "<<" => Resolved::Merge,
        _ if dialect == Dialect::V2 => match s {
            "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Resolved::Bool(true),
            "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Resolved::Bool(false),
            _ => return None,
        },
        _ => return None,
    };
    Some(r)
}

/// Go's `strconv.ParseUint(s, base, 64)` without underscores.
fn parse_uint_base(s: &str, base: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for c in s.chars() {
        let d = c.to_digit(base)?;
        n = n.checked_mul(base as u64)?.checked_add(d as u64)?;
    }
    Some(n)
}

/// Go's `strconv.ParseUint(s, 0, 64)`: base from the prefix.
pub fn parse_uint_base0(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    if b[0] == b'0' {
        if b.len() >= 3 {
            match b[1].to_ascii_lowercase() {
                b'b' => return parse_uint_base(&s[2..], 2),
                b'o' => return parse_uint_base(&s[2..], 8),
                b'x' => return parse_uint_base(&s[2..], 16),
                _ => {}
            }
        }
        if s.len() == 1 {
            return Some(0);
        }
        return parse_uint_base(&s[1..], 8);
    }
    parse_uint_base(s, 10)
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
pub fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, rest) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let u = parse_uint_base0(rest)?;
    if neg {
        if u <= i64::MAX as u64 + 1 {
            Some((u as i64).wrapping_neg())
        } else {
            None
        }
    } else if u <= i64::MAX as u64 {
        Some(u as i64)
    } else {
        None
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go's `strconv.ParseFloat` for the decimal syntax; out-of-range values
/// are errors there.
fn parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    if lower.contains("inf") || lower.contains("nan") || lower.contains('x') || s.contains('_') {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

fn int_result(i: i64) -> Resolved {
    Resolved::Int(i)
}

/// Resolves a plain scalar (no explicit tag).
pub fn resolve_plain(s: &str, dialect: Dialect) -> Resolved {
    let h = if s.is_empty() {
        b'N'
    } else {
        hint(s.as_bytes()[0])
    };
    if h == 0 {
        return Resolved::Str;
    }
    if let Some(r) = lookup(s, dialect) {
        return r;
    }
    match h {
        b'.' => match parse_float(s) {
            Some(f) => Resolved::Float(f),
            None => Resolved::Str,
        },
        b'D' | b'S' => {
            if let Some(ts) = timestamp::parse(s) {
                return Resolved::Timestamp(ts);
            }
            let plain = s.replace('_', "");
            if let Some(i) = parse_int_base0(&plain) {
                return int_result(i);
            }
            if let Some(u) = parse_uint_base0(&plain) {
                return Resolved::Uint(u);
            }
            if is_yaml_style_float(&plain)
                && let Some(f) = parse_float(&plain)
            {
                return Resolved::Float(f);
            }
            if let Some(rest) = plain.strip_prefix("-0b") {
                if let Some(u) = parse_uint_base(rest, 2)
                    && u <= i64::MAX as u64 + 1
                {
                    return int_result((u as i64).wrapping_neg());
                }
            } else if let Some(rest) = plain.strip_prefix("-0o")
                && dialect == Dialect::V3
                && let Some(u) = parse_uint_base(rest, 8)
                && u <= i64::MAX as u64 + 1
            {
                return int_result((u as i64).wrapping_neg());
            }
            Resolved::Str
        }
        _ => Resolved::Str,
    }
}

/// True when go-yaml v2 would read the unquoted text back as a string, so
/// the encoder may print it plain.
pub fn resolves_to_string_v2(s: &str) -> bool {
    resolve_plain(s, Dialect::V2) == Resolved::Str
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_resolution() {
        use Resolved::*;
        let r = |s| resolve_plain(s, Dialect::V3);
        assert_eq!(r("017"), Int(15));
        assert_eq!(r("0o17"), Int(15));
        assert_eq!(r("0x1F"), Int(31));
        assert_eq!(r("1_000"), Int(1000));
        assert_eq!(r("yes"), Str);
        assert_eq!(r("True"), Bool(true));
        assert_eq!(r("~"), Null);
        assert_eq!(r("1.5"), Float(1.5));
        assert_eq!(r("9223372036854775807"), Int(i64::MAX));
        assert_eq!(r("18446744073709551615"), Uint(u64::MAX));
        assert_eq!(r("123456789012345678901234"), Float(1.2345678901234568e23));
        assert_eq!(r("1e400"), Str);
        assert_eq!(r("-"), Str);
        assert_eq!(r("08"), Float(8.0));
    }

    #[test]
    fn v2_string_check() {
        assert!(!resolves_to_string_v2("yes"));
        assert!(!resolves_to_string_v2("2001-12-14"));
        assert!(!resolves_to_string_v2(""));
        assert!(resolves_to_string_v2("héllo"));
        assert!(resolves_to_string_v2("0x"));
        assert!(resolves_to_string_v2("v1.2"));
    }
}
