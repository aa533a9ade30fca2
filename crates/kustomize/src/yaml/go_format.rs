//! Number formatting exactly as the Go standard library does it, because
//! kustomize's output goes through `encoding/json` and go-yaml v2.

use serde_json::{Number, Value};

pub use go_format::{format_g, json_float};

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
                go_format::write_string(out, k);
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
        Value::String(s) => go_format::write_string(out, s),
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
                go_format::write_string(out, k);
                out.push(':');
                if let Some(v) = m.get(k) {
                    write_json(out, v);
                }
            }
            out.push('}');
        }
    }
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
