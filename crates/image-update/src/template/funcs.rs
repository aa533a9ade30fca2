//! The functions a template may call: Go's builtins and the hermetic Sprig
//! functions Flux commit templates use.

use std::cmp::Ordering;

use super::exec::MAX_OUTPUT;
use super::fmt::{sprint, sprintf, sprintln};
use super::lex::go_quote;
use super::value::{List, Map, Value, compare_keys, deep_equal, to_json};

/// Why a call failed, for the executor to word as Go does.
pub(crate) enum FuncError {
    /// The function returned an error ("error calling NAME: ...").
    Call(String),
    /// Wrong argument count.
    Arity { want: usize, at_least: bool },
    /// Argument `index` has the wrong type (`got` is `None` for no value).
    Type {
        index: usize,
        expected: &'static str,
        got: Option<String>,
    },
}

type Call = Result<Value, FuncError>;

/// Every function name a template may use ("and" and "or" are evaluated
/// lazily by the executor but listed here for the parser).
const FUNCTIONS: &[&str] = &[
    // text/template builtins
    "and",
    "or",
    "not",
    "len",
    "index",
    "slice",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "js",
    "urlquery",
    // Sprig
    "upper",
    "lower",
    "title",
    "trim",
    "trimPrefix",
    "trimSuffix",
    "trimAll",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "join",
    "split",
    "splitList",
    "default",
    "empty",
    "quote",
    "squote",
    "trunc",
    "repeat",
    "nospace",
    "indent",
    "nindent",
    "list",
    "dict",
    "keys",
    "sortAlpha",
    "uniq",
    "first",
    "last",
    "toString",
    "toJson",
    "cat",
    "substr",
];

/// Whether `name` is a function templates may call.
pub(crate) fn has_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn arity(args: &[Value], want: usize) -> Result<(), FuncError> {
    if args.len() != want {
        return Err(FuncError::Arity {
            want,
            at_least: false,
        });
    }
    Ok(())
}

fn at_least(args: &[Value], want: usize) -> Result<(), FuncError> {
    if args.len() < want {
        return Err(FuncError::Arity {
            want,
            at_least: true,
        });
    }
    Ok(())
}

fn string_arg(args: &[Value], index: usize) -> Result<&str, FuncError> {
    match &args[index] {
        Value::String(s) => Ok(s),
        Value::Nil => Err(FuncError::Type {
            index,
            expected: "string",
            got: None,
        }),
        other => Err(FuncError::Type {
            index,
            expected: "string",
            got: Some(other.type_name().to_string()),
        }),
    }
}

fn int_arg(args: &[Value], index: usize) -> Result<i64, FuncError> {
    match &args[index] {
        Value::Int(i) => Ok(*i),
        Value::Nil => Err(FuncError::Type {
            index,
            expected: "int",
            got: None,
        }),
        other => Err(FuncError::Type {
            index,
            expected: "int",
            got: Some(other.type_name().to_string()),
        }),
    }
}

fn checked(len: usize) -> Result<(), FuncError> {
    if len > MAX_OUTPUT {
        return Err(FuncError::Call(format!(
            "result exceeds {MAX_OUTPUT} bytes"
        )));
    }
    Ok(())
}

fn string_list(items: Vec<String>) -> Value {
    List::new("[]string", items.into_iter().map(Value::from).collect()).into()
}

/// Sprig's `strval`: strings as they are, anything else as `%v`.
fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        other => other.go_string(),
    }
}

/// Sprig's `strslice`: a list's non-nil elements as strings; a single
/// value as a one-element list.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l
            .items
            .iter()
            .filter(|i| !matches!(i, Value::Nil))
            .map(strval)
            .collect(),
        Value::Nil => Vec::new(),
        other => vec![strval(other)],
    }
}

/// Calls the function `name` with evaluated arguments.
pub(crate) fn call(name: &str, args: Vec<Value>) -> Call {
    let s1 = |f: fn(&str) -> String, args: &[Value]| -> Call {
        arity(args, 1)?;
        Ok(Value::from(f(string_arg(args, 0)?)))
    };
    // Sprig's two-string helpers take the operand last: `trimPrefix "v" .Tag`.
    let s2 = |f: fn(&str, &str) -> String, args: &[Value]| -> Call {
        arity(args, 2)?;
        Ok(Value::from(f(string_arg(args, 0)?, string_arg(args, 1)?)))
    };
    let b2 = |f: fn(&str, &str) -> bool, args: &[Value]| -> Call {
        arity(args, 2)?;
        Ok(Value::Bool(f(string_arg(args, 0)?, string_arg(args, 1)?)))
    };
    match name {
        "not" => {
            arity(&args, 1)?;
            Ok(Value::Bool(!args[0].is_true()))
        }
        "len" => {
            arity(&args, 1)?;
            match &args[0] {
                Value::String(s) => Ok(Value::Int(s.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.items.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                Value::Nil => Err(FuncError::Call("len of nil pointer".into())),
                other => Err(FuncError::Call(format!(
                    "len of type {}",
                    other.type_name()
                ))),
            }
        }
        "index" => index(args),
        "slice" => slice(args),
        "print" => Ok(Value::from(sprint(&args))),
        "println" => Ok(Value::from(sprintln(&args))),
        "printf" => {
            at_least(&args, 1)?;
            let format = string_arg(&args, 0)?.to_string();
            let text = sprintf(&format, &args[1..]);
            checked(text.len())?;
            Ok(Value::from(text))
        }
        "eq" => {
            at_least(&args, 1)?;
            if args.len() == 1 {
                return Err(FuncError::Call("missing argument for comparison".into()));
            }
            for other in &args[1..] {
                if equal(&args[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(&args, 2)?;
            Ok(Value::Bool(!equal(&args[0], &args[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(&args, 2)?;
            let ord = order(&args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "html" => Ok(Value::from(html_escape(&eval_args(&args)))),
        "js" => Ok(Value::from(js_escape(&eval_args(&args)))),
        "urlquery" => Ok(Value::from(query_escape(&eval_args(&args)))),

        "upper" => s1(|s| s.to_uppercase(), &args),
        "lower" => s1(|s| s.to_lowercase(), &args),
        "title" => s1(title, &args),
        "trim" => s1(|s| s.trim_matches(char::is_whitespace).to_string(), &args),
        "nospace" => s1(
            |s| s.chars().filter(|c| !c.is_whitespace()).collect(),
            &args,
        ),
        "trimPrefix" => s2(|p, s| s.strip_prefix(p).unwrap_or(s).to_string(), &args),
        "trimSuffix" => s2(|p, s| s.strip_suffix(p).unwrap_or(s).to_string(), &args),
        "trimAll" => s2(
            |cut, s| s.trim_matches(|c| cut.contains(c)).to_string(),
            &args,
        ),
        "contains" => b2(|sub, s| s.contains(sub), &args),
        "hasPrefix" => b2(|p, s| s.starts_with(p), &args),
        "hasSuffix" => b2(|p, s| s.ends_with(p), &args),
        "replace" => {
            arity(&args, 3)?;
            let (old, new, src) = (
                string_arg(&args, 0)?,
                string_arg(&args, 1)?,
                string_arg(&args, 2)?,
            );
            let count = if old.is_empty() {
                src.chars().count() + 1
            } else {
                src.matches(old).count()
            };
            checked(src.len() + count.saturating_mul(new.len()))?;
            Ok(Value::from(go_replace(src, old, new)))
        }
        "join" => {
            arity(&args, 2)?;
            let sep = string_arg(&args, 0)?;
            Ok(Value::from(strslice(&args[1]).join(sep)))
        }
        "splitList" => {
            arity(&args, 2)?;
            let (sep, s) = (string_arg(&args, 0)?, string_arg(&args, 1)?);
            Ok(string_list(go_split(s, sep)))
        }
        "split" => {
            arity(&args, 2)?;
            let (sep, s) = (string_arg(&args, 0)?, string_arg(&args, 1)?);
            let entries = go_split(s, sep)
                .into_iter()
                .enumerate()
                .map(|(i, part)| (Value::from(format!("_{i}")), Value::from(part)))
                .collect();
            Ok(Map::new("map[string]string", Value::from(""), entries).into())
        }
        "default" => {
            at_least(&args, 1)?;
            match args.get(1) {
                Some(given) if given.is_true() => Ok(given.clone()),
                _ => Ok(args[0].clone()),
            }
        }
        "empty" => {
            arity(&args, 1)?;
            Ok(Value::Bool(!args[0].is_true()))
        }
        "quote" => {
            let quoted: Vec<String> = args
                .iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| go_quote(&strval(a)))
                .collect();
            Ok(Value::from(quoted.join(" ")))
        }
        "squote" => {
            let quoted: Vec<String> = args
                .iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| format!("'{}'", strval(a)))
                .collect();
            Ok(Value::from(quoted.join(" ")))
        }
        "cat" => {
            let parts: Vec<String> = args
                .iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(strval)
                .collect();
            Ok(Value::from(parts.join(" ")))
        }
        "toString" => {
            arity(&args, 1)?;
            Ok(Value::from(strval(&args[0])))
        }
        "toJson" => {
            arity(&args, 1)?;
            let mut out = String::new();
            // Sprig ignores Marshal errors and returns "".
            if to_json(&args[0], &mut out).is_none() {
                out.clear();
            }
            Ok(Value::from(out))
        }
        "trunc" => {
            arity(&args, 2)?;
            let (c, s) = (int_arg(&args, 0)?, string_arg(&args, 1)?);
            let len = s.len() as i64;
            let cut = if c < 0 && len + c > 0 {
                byte_slice(s, (len + c) as usize, s.len())
            } else if c >= 0 && len > c {
                byte_slice(s, 0, c as usize)
            } else {
                s.to_string()
            };
            Ok(Value::from(cut))
        }
        "substr" => {
            arity(&args, 3)?;
            let (start, end, s) = (
                int_arg(&args, 0)?,
                int_arg(&args, 1)?,
                string_arg(&args, 2)?,
            );
            let len = s.len() as i64;
            let out = if start < 0 {
                byte_slice(s, 0, end.clamp(0, len) as usize)
            } else if end < 0 || end > len {
                byte_slice(s, start.min(len) as usize, s.len())
            } else {
                byte_slice(s, start.min(end) as usize, end as usize)
            };
            Ok(Value::from(out))
        }
        "repeat" => {
            arity(&args, 2)?;
            let (count, s) = (int_arg(&args, 0)?, string_arg(&args, 1)?);
            if count < 0 {
                return Err(FuncError::Call("strings: negative Repeat count".into()));
            }
            checked((count as usize).saturating_mul(s.len()))?;
            Ok(Value::from(s.repeat(count as usize)))
        }
        "indent" | "nindent" => {
            arity(&args, 2)?;
            let (spaces, s) = (int_arg(&args, 0)?, string_arg(&args, 1)?);
            let pad = " ".repeat(spaces.clamp(0, MAX_OUTPUT as i64) as usize);
            let lines = s.matches('\n').count() + 1;
            checked(s.len() + lines.saturating_mul(pad.len()))?;
            let text = format!("{pad}{}", s.replace('\n', &format!("\n{pad}")));
            Ok(Value::from(if name == "nindent" {
                format!("\n{text}")
            } else {
                text
            }))
        }
        "list" => Ok(Value::list(args)),
        "dict" => {
            let mut entries = Vec::new();
            for pair in args.chunks(2) {
                let value = pair.get(1).cloned().unwrap_or_else(|| Value::from(""));
                entries.push((strval(&pair[0]), value));
            }
            Ok(Value::string_map(entries))
        }
        "keys" => {
            let mut keys = Vec::new();
            for dict in &args {
                match dict {
                    Value::Map(m) if m.has_string_keys() => {
                        keys.extend(m.entries().iter().map(|(k, _)| strval(k)));
                    }
                    other => {
                        return Err(FuncError::Type {
                            index: 0,
                            expected: "map[string]interface {}",
                            got: Some(other.type_name().to_string()),
                        });
                    }
                }
            }
            Ok(string_list(keys))
        }
        "sortAlpha" => {
            arity(&args, 1)?;
            let mut items = strslice(&args[0]);
            items.sort();
            Ok(string_list(items))
        }
        "uniq" => {
            arity(&args, 1)?;
            let Value::List(list) = &args[0] else {
                return Err(FuncError::Call(format!(
                    "Cannot find uniq on type {}",
                    kind_name(&args[0])
                )));
            };
            let mut out: Vec<Value> = Vec::new();
            for item in &list.items {
                if !out.iter().any(|seen| deep_equal(seen, item)) {
                    out.push(item.clone());
                }
            }
            Ok(Value::list(out))
        }
        "first" | "last" => {
            arity(&args, 1)?;
            let Value::List(list) = &args[0] else {
                return Err(FuncError::Call(format!(
                    "Cannot find {name} on type {}",
                    kind_name(&args[0])
                )));
            };
            let item = if name == "first" {
                list.items.first()
            } else {
                list.items.last()
            };
            Ok(item.cloned().unwrap_or_default())
        }
        _ => Err(FuncError::Call(format!(
            "function {} not defined",
            go_quote(name)
        ))),
    }
}

/// Go's reflect kind name, which Sprig's list errors show.
fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Struct(_) => "struct",
    }
}

/// A byte range of a string, widened to character boundaries.
fn byte_slice(s: &str, start: usize, end: usize) -> String {
    let mut start = start.min(s.len());
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = end.min(s.len()).max(start);
    while !s.is_char_boundary(end) {
        end += 1;
    }
    s[start..end].to_string()
}

/// `strings.Replace(s, old, new, -1)`: an empty `old` matches between
/// every character.
fn go_replace(s: &str, old: &str, new: &str) -> String {
    if !old.is_empty() {
        return s.replace(old, new);
    }
    let mut out = String::from(new);
    for c in s.chars() {
        out.push(c);
        out.push_str(new);
    }
    out
}

/// `strings.Split`: an empty separator splits into characters.
fn go_split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(String::from).collect()
}

/// `strings.Title`: letters after a separator in upper case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_separator = true;
    for c in s.chars() {
        if prev_separator && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_separator = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !(c.is_alphabetic() || c.is_numeric()) && c.is_whitespace()
        };
    }
    out
}

/// What `html`, `js` and `urlquery` escape: one string as it is, else the
/// arguments printed as `print` would.
fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    sprint(args)
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || (!c.is_ascii() && c.is_control()) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `eq` on two values: basic kinds must match, lists and maps are not
/// comparable.
fn equal(a: &Value, b: &Value) -> Result<bool, FuncError> {
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => Ok(x == y),
        (Value::Int(x), Value::Int(y)) => Ok(x == y),
        (Value::Float(x), Value::Float(y)) => Ok(x == y),
        (Value::String(x), Value::String(y)) => Ok(x == y),
        (Value::Nil, Value::Nil) => Ok(true),
        (Value::Nil, Value::List(_) | Value::Map(_))
        | (Value::List(_) | Value::Map(_), Value::Nil) => Ok(false),
        (Value::List(_) | Value::Map(_), _) | (_, Value::List(_) | Value::Map(_)) => {
            Err(FuncError::Call("non-comparable type".into()))
        }
        (Value::Struct(_), Value::Struct(_)) => Ok(deep_equal(a, b)),
        _ => Err(FuncError::Call("incompatible types for comparison".into())),
    }
}

fn order(a: &Value, b: &Value) -> Result<Ordering, FuncError> {
    match (a, b) {
        (Value::Int(_), Value::Int(_)) | (Value::String(_), Value::String(_)) => {
            Ok(compare_keys(a, b))
        }
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Greater)),
        (
            Value::Int(_) | Value::Float(_) | Value::String(_),
            Value::Int(_) | Value::Float(_) | Value::String(_),
        ) => Err(FuncError::Call("incompatible types for comparison".into())),
        _ => Err(FuncError::Call("invalid type for comparison".into())),
    }
}

fn index(args: Vec<Value>) -> Call {
    at_least(&args, 1)?;
    let mut item = args[0].clone();
    if matches!(item, Value::Nil) {
        return Err(FuncError::Call("index of untyped nil".into()));
    }
    for key in &args[1..] {
        item = match &item {
            Value::List(list) => {
                let i = index_int(key)?;
                if i >= list.items.len() {
                    return Err(FuncError::Call(format!("index out of range: {i}")));
                }
                list.items[i].clone()
            }
            Value::String(s) => {
                let i = index_int(key)?;
                if i >= s.len() {
                    return Err(FuncError::Call(format!("index out of range: {i}")));
                }
                Value::Int(i64::from(s.as_bytes()[i]))
            }
            Value::Map(map) => {
                let key_type = map.key_type.as_str();
                let fits = match key {
                    Value::String(_) => key_type == "string" || key_type == "interface {}",
                    Value::Int(_) => key_type == "int" || key_type == "interface {}",
                    Value::Struct(s) => s.type_name == key_type,
                    Value::Nil => false,
                    _ => key_type == "interface {}",
                };
                if !fits {
                    return Err(FuncError::Call(format!(
                        "value has type {}; should be {}",
                        key.type_name(),
                        key_type
                    )));
                }
                map.get(key).cloned().unwrap_or_else(|| map.zero.clone())
            }
            Value::Nil => return Err(FuncError::Call("index of untyped nil".into())),
            other => {
                return Err(FuncError::Call(format!(
                    "can't index item of type {}",
                    other.type_name()
                )));
            }
        };
    }
    Ok(item)
}

fn index_int(key: &Value) -> Result<usize, FuncError> {
    match key {
        Value::Int(i) if *i < 0 => Err(FuncError::Call(format!("index out of range: {i}"))),
        Value::Int(i) => Ok(usize::try_from(*i).unwrap_or(usize::MAX)),
        Value::Nil => Err(FuncError::Call("cannot index slice/array with nil".into())),
        other => Err(FuncError::Call(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        ))),
    }
}

fn slice(args: Vec<Value>) -> Call {
    at_least(&args, 1)?;
    let item = &args[0];
    let len = match item {
        Value::Nil => return Err(FuncError::Call("slice of untyped nil".into())),
        Value::List(l) => l.items.len(),
        Value::String(s) => s.len(),
        other => {
            return Err(FuncError::Call(format!(
                "can't slice item of type {}",
                other.type_name()
            )));
        }
    };
    let indexes = &args[1..];
    if indexes.len() > 3 || (indexes.len() == 3 && matches!(item, Value::String(_))) {
        return Err(FuncError::Call(format!(
            "too many slice indexes: {}",
            indexes.len()
        )));
    }
    let mut bounds = [0, len, len];
    for (i, key) in indexes.iter().enumerate() {
        let value = index_int(key)?;
        if value > len {
            return Err(FuncError::Call(format!("index out of range: {value}")));
        }
        bounds[i] = value;
    }
    if indexes.len() < 2 {
        bounds[1] = len;
    }
    if bounds[0] > bounds[1] {
        return Err(FuncError::Call(format!(
            "invalid slice index: {} > {}",
            bounds[0], bounds[1]
        )));
    }
    if indexes.len() == 3 && bounds[1] > bounds[2] {
        return Err(FuncError::Call(format!(
            "invalid slice index: {} > {}",
            bounds[1], bounds[2]
        )));
    }
    match item {
        Value::List(l) => {
            Ok(List::new(l.type_name.clone(), l.items[bounds[0]..bounds[1]].to_vec()).into())
        }
        Value::String(s) => match s.get(bounds[0]..bounds[1]) {
            Some(part) => Ok(Value::from(part)),
            // Go slices bytes; a cut inside a character gives bytes Rust
            // strings cannot hold, so keep whole characters.
            None => Ok(Value::from(byte_slice(s, bounds[0], bounds[1]))),
        },
        _ => Err(FuncError::Call("can't slice".into())),
    }
}
