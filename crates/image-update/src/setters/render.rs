//! The source text of a replacement value, in the style of the value it replaces.

use granit_parser::ScalarStyle;

/// How a replaced scalar was written, and so how its new value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quoting {
    /// No quotes.
    Plain,
    /// `'…'`.
    Single,
    /// `"…"`.
    Double,
}

impl Quoting {
    /// The quoting of a parsed scalar; `None` for block scalars (`|`, `>`),
    /// which setters leave alone.
    pub(crate) fn of(style: ScalarStyle) -> Option<Quoting> {
        match style {
            ScalarStyle::Plain => Some(Quoting::Plain),
            ScalarStyle::SingleQuoted => Some(Quoting::Single),
            ScalarStyle::DoubleQuoted => Some(Quoting::Double),
            _ => None,
        }
    }
}

/// `value` written as a YAML scalar that was written with `quoting`, inside a
/// flow collection when `in_flow`.
///
/// Quoted values keep their quotes. A plain value stays plain unless that
/// would read back as something else: a value YAML would take for a null,
/// boolean or number is double-quoted, as go-yaml and kyaml do when Flux
/// writes a string setter; any other value that cannot be plain is
/// single-quoted, as libyaml's emitter falls back.
pub(crate) fn scalar_text(value: &str, quoting: Quoting, in_flow: bool) -> String {
    match quoting {
        Quoting::Double => double_quoted(value),
        Quoting::Single if single_quotable(value) => single_quoted(value),
        Quoting::Single => double_quoted(value),
        Quoting::Plain if value.is_empty() || reads_as_non_string(value) => double_quoted(value),
        Quoting::Plain if plain_safe(value, in_flow) => value.to_owned(),
        Quoting::Plain if single_quotable(value) => single_quoted(value),
        Quoting::Plain => double_quoted(value),
    }
}

fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn double_quoted(value: &str) -> String {
    let mut text = String::with_capacity(value.len() + 2);
    text.push('"');
    for c in value.chars() {
        match c {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            '\n' => text.push_str("\\n"),
            '\t' => text.push_str("\\t"),
            '\r' => text.push_str("\\r"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                if code <= 0xff {
                    text.push_str(&format!("\\x{code:02x}"));
                } else {
                    text.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => text.push(c),
        }
    }
    text.push('"');
    text
}

/// Characters YAML does not allow unescaped in a scalar (C0/C1 controls,
/// DEL, and the byte order mark).
fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\t') || c == '\u{feff}'
}

/// Single quotes can hold anything printable on one line.
fn single_quotable(value: &str) -> bool {
    !value
        .chars()
        .any(|c| needs_escape(c) || c == '\n' || c == '\r')
}

/// Whether `value` can be written without quotes and read back as the same
/// string (conservatively: a `false` only costs a pair of quotes).
fn plain_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || value.starts_with("...")
        || first.is_whitespace()
        || value.ends_with(char::is_whitespace)
        || value.ends_with(':')
        || value.contains(": ")
        || value.contains(":\t")
        || value.contains(" #")
        || value.contains("\t#")
        || value
            .chars()
            .any(|c| needs_escape(c) || c == '\n' || c == '\r')
    {
        return false;
    }
    // Flow indicators end a plain scalar inside `[…]` and `{…}`.
    !(in_flow && value.contains([',', '[', ']', '{', '}']))
}

/// Whether a plain `value` would resolve to a non-string: a null, boolean,
/// integer or float under YAML 1.2's core schema or YAML 1.1 (which kyaml
/// consults before deciding a setter's string needs quotes, so `yes`, `on`,
/// `0x1f` and `1_000` count too).
fn reads_as_non_string(value: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
        ".NaN", ".NAN",
    ];
    KEYWORDS.contains(&value) || is_number(value)
}

/// Integers (decimal, `0b`, `0o`, `0x`, legacy octal) and floats, signed,
/// with YAML 1.1's `_` digit separators ignored.
fn is_number(value: &str) -> bool {
    let digits: String = value.chars().filter(|&c| c != '_').collect();
    let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits.as_str());
    let radix_digits = |prefix: &str, radix: u32| {
        unsigned
            .strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_digit(radix)))
    };
    if radix_digits("0b", 2) || radix_digits("0o", 8) || radix_digits("0x", 16) {
        return true;
    }
    is_decimal_float(unsigned)
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`, which also covers
/// plain decimal integers.
fn is_decimal_float(text: &str) -> bool {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (text, None),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((whole, fraction)) => {
            all_digits(whole) && all_digits(fraction) && (!whole.is_empty() || !fraction.is_empty())
        }
        None => !mantissa.is_empty() && all_digits(mantissa),
    };
    let exponent_ok = exponent.is_none_or(|exponent| {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        !digits.is_empty() && all_digits(digits)
    });
    mantissa_ok && exponent_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_stays_plain_when_it_reads_back_the_same() {
        for value in [
            "ghcr.io/org/app:v1.2.3",
            "ghcr.io/org/app:v1@sha256:0123abcd",
            "1.2.3",
            "v1",
            "sha256:0123",
            "a#b",
        ] {
            assert_eq!(scalar_text(value, Quoting::Plain, false), value);
        }
    }

    #[test]
    fn plain_that_would_change_type_is_double_quoted() {
        for value in [
            "1.10", "20240101", "1e3", ".5", "0x1F", "1_000", "yes", "null", "~",
        ] {
            assert_eq!(
                scalar_text(value, Quoting::Plain, false),
                format!("\"{value}\""),
                "{value}"
            );
        }
        assert_eq!(scalar_text("", Quoting::Plain, false), "\"\"");
    }

    #[test]
    fn plain_that_cannot_be_plain_is_single_quoted() {
        assert_eq!(scalar_text("a: b", Quoting::Plain, false), "'a: b'");
        assert_eq!(scalar_text("a #b", Quoting::Plain, false), "'a #b'");
        assert_eq!(scalar_text("*x", Quoting::Plain, false), "'*x'");
        assert_eq!(scalar_text("it's: x", Quoting::Plain, false), "'it''s: x'");
        assert_eq!(scalar_text("a,b", Quoting::Plain, true), "'a,b'");
        assert_eq!(scalar_text("a,b", Quoting::Plain, false), "a,b");
        assert_eq!(scalar_text("a:b", Quoting::Plain, true), "a:b");
    }

    #[test]
    fn quoted_styles_are_kept_and_escaped() {
        assert_eq!(scalar_text("app:v2", Quoting::Single, false), "'app:v2'");
        assert_eq!(scalar_text("it's", Quoting::Single, false), "'it''s'");
        assert_eq!(scalar_text("app:v2", Quoting::Double, false), "\"app:v2\"");
        assert_eq!(
            scalar_text("a\"b\\c\u{1}", Quoting::Double, false),
            "\"a\\\"b\\\\c\\x01\""
        );
        assert_eq!(scalar_text("a\u{1}", Quoting::Single, false), "\"a\\x01\"");
    }

    #[test]
    fn numbers() {
        for yes in [
            "0", "-1", "+2.5", "1.", ".5", "1e5", "1.5E-3", "0b101", "0o17", "017",
        ] {
            assert!(is_number(yes), "{yes}");
        }
        for no in ["", ".", "-", "1.2.3", "v1", "1e", "e5", "0x", "1a", "_"] {
            assert!(!is_number(no), "{no}");
        }
    }
}
