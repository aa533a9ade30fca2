//! Go's `fmt.Sprint`, `Sprintln` and `Sprintf` over template values: the
//! verbs commit templates use, with flags, width and precision.

use std::fmt::Write as _;

use super::lex::go_quote;
use super::value::{Value, format_float_g, write_value};

/// `fmt.Sprint`: a space between operands when neither is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            out.push(' ');
        }
        write_value(&mut out, arg);
        prev_string = is_string;
    }
    out
}

/// `fmt.Sprintln`: spaces between all operands, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_value(&mut out, arg);
    }
    out.push('\n');
    out
}

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    precision: Option<usize>,
}

/// Widths beyond this are refused (Go's own limit is 1e6).
const MAX_WIDTH: usize = 1_000_000;

/// `fmt.Sprintf`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next_arg = 0;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, flag)) = chars.peek() {
            match flag {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => spec.sharp = true,
                _ => break,
            }
            chars.next();
        }
        let read_number = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
                           next_arg: &mut usize|
         -> Option<usize> {
            if chars.peek().map(|&(_, c)| c) == Some('*') {
                chars.next();
                let value = match args.get(*next_arg) {
                    Some(Value::Int(i)) => Some((i.unsigned_abs() as usize).min(MAX_WIDTH)),
                    _ => None,
                };
                *next_arg += 1;
                return value;
            }
            let mut number: Option<usize> = None;
            while let Some(&(_, d)) = chars.peek() {
                let Some(digit) = d.to_digit(10) else { break };
                number = Some((number.unwrap_or(0) * 10 + digit as usize).min(MAX_WIDTH));
                chars.next();
            }
            number
        };
        spec.width = read_number(&mut chars, &mut next_arg);
        if chars.peek().map(|&(_, c)| c) == Some('.') {
            chars.next();
            spec.precision = Some(read_number(&mut chars, &mut next_arg).unwrap_or(0));
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next_arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        next_arg += 1;
        format_arg(&mut out, verb, spec, arg);
    }
    if next_arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, arg) in args[next_arg..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match arg {
                Value::Nil => out.push_str("<nil>"),
                other => {
                    let _ = write!(out, "{}=", other.type_name());
                    write_value(&mut out, other);
                }
            }
        }
        out.push(')');
    }
    out
}

fn bad_verb(out: &mut String, verb: char, arg: &Value) {
    match arg {
        Value::Nil => {
            let _ = write!(out, "%!{verb}(<nil>)");
        }
        other => {
            let _ = write!(out, "%!{verb}({}=", other.type_name());
            write_value(out, other);
            out.push(')');
        }
    }
}

/// Pads to the width: spaces (left or, with `-`, right) or zeros.
fn pad(out: &mut String, spec: Spec, body: &str, numeric: bool) {
    let len = body.chars().count();
    let width = spec.width.unwrap_or(0);
    if len >= width {
        out.push_str(body);
        return;
    }
    let fill = width - len;
    if spec.minus {
        out.push_str(body);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero {
        // Zeros go after a sign.
        let (sign, digits) = match body.chars().next() {
            Some(c @ ('-' | '+' | ' ')) if numeric => (Some(c), &body[1..]),
            _ => (None, body),
        };
        if let Some(sign) = sign {
            out.push(sign);
        }
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(body);
    }
}

fn signed(spec: Spec, negative: bool, digits: &str) -> String {
    let sign = if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    format!("{sign}{digits}")
}

fn format_int(out: &mut String, verb: char, spec: Spec, i: i64) {
    let magnitude = i.unsigned_abs();
    let mut digits = match verb {
        'd' | 'v' => magnitude.to_string(),
        'x' => format!("{magnitude:x}"),
        'X' => format!("{magnitude:X}"),
        'o' => format!("{magnitude:o}"),
        'b' => format!("{magnitude:b}"),
        _ => magnitude.to_string(),
    };
    if let Some(precision) = spec.precision {
        while digits.len() < precision {
            digits.insert(0, '0');
        }
    }
    if spec.sharp {
        match verb {
            'x' => digits.insert_str(0, "0x"),
            'X' => digits.insert_str(0, "0X"),
            'o' => digits.insert(0, '0'),
            _ => {}
        }
    }
    let body = signed(spec, i < 0, &digits);
    let spec = Spec {
        zero: spec.zero && spec.precision.is_none(),
        ..spec
    };
    pad(out, spec, &body, true);
}

fn format_float(out: &mut String, verb: char, spec: Spec, f: f64) {
    let body = match verb {
        'f' | 'F' => format!("{:.*}", spec.precision.unwrap_or(6), f.abs()),
        'e' | 'E' => {
            let s = format!("{:.*e}", spec.precision.unwrap_or(6), f.abs());
            let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
            let e: i32 = e.parse().unwrap_or(0);
            let text = format!(
                "{m}e{}{:02}",
                if e < 0 { '-' } else { '+' },
                e.unsigned_abs()
            );
            if verb == 'E' {
                text.to_uppercase()
            } else {
                text
            }
        }
        _ => format_float_g(f.abs()),
    };
    let body = signed(spec, f.is_sign_negative() && f != 0.0, &body);
    pad(out, spec, &body, true);
}

fn format_string(out: &mut String, verb: char, spec: Spec, s: &str) {
    let s: String = match spec.precision {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    };
    let body = match verb {
        'q' => go_quote(&s),
        'x' => s.bytes().map(|b| format!("{b:02x}")).collect(),
        'X' => s.bytes().map(|b| format!("{b:02X}")).collect(),
        _ => s,
    };
    pad(out, spec, &body, false);
}

fn format_arg(out: &mut String, verb: char, spec: Spec, arg: &Value) {
    if verb == 'T' {
        pad(out, spec, arg.type_name(), false);
        return;
    }
    match arg {
        Value::Nil => match verb {
            'v' | 's' => pad(out, spec, "<nil>", false),
            _ => bad_verb(out, verb, arg),
        },
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, spec, if *b { "true" } else { "false" }, false),
            _ => bad_verb(out, verb, arg),
        },
        Value::Int(i) => match verb {
            'v' | 'd' | 'x' | 'X' | 'o' | 'b' => format_int(out, verb, spec, *i),
            'c' => {
                let c = u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                pad(out, spec, &c.to_string(), false);
            }
            'q' => {
                let c = u32::try_from(*i)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                let quoted = match c {
                    '\'' => "'\\''".to_string(),
                    '"' => "'\"'".to_string(),
                    c => {
                        let q = go_quote(&c.to_string());
                        format!("'{}'", &q[1..q.len() - 1])
                    }
                };
                pad(out, spec, &quoted, false);
            }
            'e' | 'E' | 'f' | 'F' | 'g' | 'G' | 's' | 't' => bad_verb(out, verb, arg),
            _ => bad_verb(out, verb, arg),
        },
        Value::Float(f) => match verb {
            'v' | 'g' | 'G' | 'f' | 'F' | 'e' | 'E' => format_float(out, verb, spec, *f),
            _ => bad_verb(out, verb, arg),
        },
        Value::String(s) => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => format_string(out, verb, spec, s),
            _ => bad_verb(out, verb, arg),
        },
        Value::Struct(s) if s.display.is_some() => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => {
                format_string(out, verb, spec, s.display.as_deref().unwrap_or(""))
            }
            _ => bad_verb(out, verb, arg),
        },
        Value::List(_) | Value::Map(_) | Value::Struct(_) => {
            // Containers apply the verb to each element, as Go's fmt does.
            let mut body = String::new();
            format_container(&mut body, verb, spec, arg);
            let outer = Spec {
                width: None,
                ..spec
            };
            pad(out, outer, &body, false);
        }
    }
}

fn format_container(out: &mut String, verb: char, spec: Spec, arg: &Value) {
    let inner = |out: &mut String, v: &Value| match v {
        Value::List(_) | Value::Map(_) => format_container(out, verb, spec, v),
        Value::Struct(s) if s.display.is_none() => format_container(out, verb, spec, v),
        other => format_arg(out, verb, spec, other),
    };
    match arg {
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                inner(out, item);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.entries().iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                inner(out, k);
                out.push(':');
                inner(out, v);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, field) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if spec.plus && verb == 'v' {
                    let _ = write!(out, "{}:", field.name);
                }
                inner(out, &field.value);
            }
            out.push('}');
        }
        other => format_arg(out, verb, spec, other),
    }
}
