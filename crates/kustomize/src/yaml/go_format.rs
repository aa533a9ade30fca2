//! Number formatting exactly as the Go standard library does it, because
//! kustomize's output goes through `encoding/json` and go-yaml v2.

use std::fmt::Write as _;

use serde_json::{Number, Value};

/// Splits a finite, non-zero float into its shortest round-trip decimal
/// digits and the decimal point position (Go's `decimalSlice.dp`).
fn shortest_digits(f: f64) -> (String, i32) {
    // Rust's `{:e}` prints the shortest representation that round-trips,
    // which is what Go's `FormatFloat(f, _, -1, 64)` uses too.
    let s = format!("{:e}", f.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = digits.trim_end_matches('0').to_string();
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    (digits, exp + 1)
}

fn fmt_e(neg: bool, digits: &str, dp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let mut chars = digits.chars();
    out.push(chars.next().unwrap_or('0'));
    let rest: String = chars.collect();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(&rest);
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.unsigned_abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
    out
}

fn fmt_f(neg: bool, digits: &str, dp: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let nd = digits.len() as i32;
    if dp > 0 {
        for i in 0..dp {
            out.push(
                digits
                    .as_bytes()
                    .get(i as usize)
                    .map_or('0', |&b| b as char),
            );
        }
    } else {
        out.push('0');
    }
    let frac = (nd - dp).max(0);
    if frac > 0 {
        out.push('.');
        for i in 0..frac {
            let idx = dp + i;
            let c = if idx < 0 {
                '0'
            } else {
                digits
                    .as_bytes()
                    .get(idx as usize)
                    .map_or('0', |&b| b as char)
            };
            out.push(c);
        }
    }
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`.
pub fn format_g(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let (digits, dp) = shortest_digits(f);
    let exp = dp - 1;
    // Shortest formatting decides with a precision of 6 (strconv's rule).
    if !(-4..6).contains(&exp) {
        fmt_e(neg, &digits, dp)
    } else {
        fmt_f(neg, &digits, dp)
    }
}

/// `encoding/json`'s float encoding.
pub fn json_float(f: f64) -> String {
    let neg = f.is_sign_negative();
    if f == 0.0 {
        return if neg { "-0".into() } else { "0".into() };
    }
    let abs = f.abs();
    let (digits, dp) = shortest_digits(f);
    if !(1e-6..1e21).contains(&abs) {
        let mut s = fmt_e(neg, &digits, dp);
        // encoding/json cleans up e-09 to e-9.
        let n = s.len();
        let b = s.as_bytes();
        if n >= 4 && b[n - 4] == b'e' && b[n - 3] == b'-' && b[n - 2] == b'0' {
            let last = b[n - 1] as char;
            s.truncate(n - 2);
            s.push(last);
        }
        s
    } else {
        fmt_f(neg, &digits, dp)
    }
}

/// The text go-yaml v2 prints for a number that went through JSON.
pub fn yaml_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let json = json_float(f);
    // go-yaml re-reads the JSON text; integral text becomes an integer.
    if let Ok(i) = json.parse::<i64>() {
        return i.to_string();
    }
    if let Ok(u) = json.parse::<u64>() {
        return u.to_string();
    }
    format_g(f)
}

/// `fmt.Sprintf("%v", x)` for a JSON scalar, used where kustomize turns a
/// field value into a string (vars, replacements with delimiters).
pub fn go_sprint_number(n: &Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    format_g(n.as_f64().unwrap_or(0.0))
}

/// `encoding/json`'s output for a value: map keys sorted, HTML characters
/// and U+2028/U+2029 escaped.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

/// `json.MarshalIndent(v, "", "  ")`.
pub fn go_json_indent(v: &Value) -> String {
    let mut out = String::new();
    write_json_indent(&mut out, v, 0);
    out
}

fn write_json_indent(out: &mut String, v: &Value, depth: usize) {
    let pad = |out: &mut String, d: usize| {
        out.push('\n');
        for _ in 0..d {
            out.push_str("  ");
        }
    };
    match v {
        Value::Array(a) if !a.is_empty() => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_json_indent(out, item, depth + 1);
            }
            pad(out, depth);
            out.push(']');
        }
        Value::Object(m) if !m.is_empty() => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                pad(out, depth + 1);
                write_string(out, k);
                out.push_str(": ");
                if let Some(v) = m.get(k) {
                    write_json_indent(out, v, depth + 1);
                }
            }
            pad(out, depth);
            out.push('}');
        }
        other => write_json(out, other),
    }
}

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                if let Some(v) = m.get(k) {
                    write_json(out, v);
                }
            }
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(format_g(1.5), "1.5");
        assert_eq!(format_g(1234567.5), "1.2345675e+06");
        assert_eq!(format_g(1e20), "1e+20");
        assert_eq!(format_g(1.5e-6), "1.5e-06");
        assert_eq!(format_g(1.5e300), "1.5e+300");
        assert_eq!(format_g(100000.5), "100000.5");
        assert_eq!(format_g(0.0001), "0.0001");
        assert_eq!(format_g(1.2345678901234569e23), "1.2345678901234569e+23");
    }

    #[test]
    fn json_format() {
        assert_eq!(json_float(1.0), "1");
        assert_eq!(json_float(1e20), "100000000000000000000");
        assert_eq!(json_float(1e21), "1e+21");
        assert_eq!(json_float(1.5e-7), "1.5e-7");
        assert_eq!(json_float(0.0000015), "0.0000015");
    }

    #[test]
    fn yaml_numbers() {
        let f = |x: f64| yaml_number(&Number::from_f64(x).unwrap());
        assert_eq!(f(1.0), "1");
        assert_eq!(f(1000.0), "1000");
        assert_eq!(f(1e20), "1e+20");
        assert_eq!(f(1e19), "10000000000000000000");
        assert_eq!(f(1234567.5), "1.2345675e+06");
    }
}
