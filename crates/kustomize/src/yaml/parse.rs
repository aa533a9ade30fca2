//! YAML streams to `serde_json::Value` trees with go-yaml's typing rules.
//!
//! serde-saphyr's own resolver follows YAML 1.2 closely, but kustomize's
//! behaviour depends on go-yaml quirks (`017` is octal, `2001-12-14` is a
//! timestamp, `yes` is a string for resources but a boolean in
//! kustomization files). So this module drives serde-saphyr's event parser
//! (granit-parser) and resolves scalars itself. It never recurses on input
//! depth, caps nesting (the parser's own limit of 255 levels) and caps the
//! number of nodes aliases may produce, so hostile input cannot exhaust
//! memory or the stack.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use serde_saphyr::granit_parser::{Event, Options, Parser, ScalarStyle, Tag};

use super::resolve::{Dialect, Resolved, resolve_plain};
use super::timestamp;

/// Caps the number of nodes a stream may expand to through aliases.
const MAX_NODES: usize = 5_000_000;
/// Caps nesting, including nesting built up through aliases, so that the
/// recursive transformations and printing stay well within the stack.
const MAX_DEPTH: usize = 400;

/// A YAML syntax or typing error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for YamlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "yaml: line {}: {}", self.line, self.message)
        } else {
            write!(f, "yaml: {}", self.message)
        }
    }
}

impl std::error::Error for YamlError {}

/// How to decode.
#[derive(Clone, Copy, Debug)]
pub struct ParseOptions {
    /// Which go-yaml version's scalar typing applies.
    pub dialect: Dialect,
    /// Turn non-string mapping keys into their source text (what
    /// `sigs.k8s.io/yaml.YAMLToJSON` does) instead of failing.
    pub stringify_keys: bool,
    /// Accept a mapping key given twice, the last value winning (go-yaml
    /// v2's non-strict decoding into a map, which `sigs.k8s.io/yaml` does).
    pub duplicate_keys: bool,
}

impl ParseOptions {
    /// Resources: go-yaml v3 decoding into `map[string]interface{}`.
    pub const RESOURCE: ParseOptions = ParseOptions {
        dialect: Dialect::V3,
        stringify_keys: false,
        duplicate_keys: false,
    };
    /// Kustomization files and patches decoded via `sigs.k8s.io/yaml`.
    pub const CONFIG: ParseOptions = ParseOptions {
        dialect: Dialect::V2,
        stringify_keys: true,
        duplicate_keys: true,
    };
}

enum Key {
    Str(String),
    Merge,
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        entries: Map<String, Value>,
        merges: Vec<Value>,
        key: Option<Key>,
        key_line: usize,
        anchor: usize,
        key_lines: HashMap<String, usize>,
    },
}

struct Builder {
    options: ParseOptions,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    nodes: usize,
    root: Option<Value>,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> YamlError {
    YamlError {
        line,
        column,
        message: message.into(),
    }
}

/// Node count and depth of a value.
fn measure(v: &Value) -> (usize, usize) {
    let mut total = 0;
    let mut deepest = 0;
    let mut stack = vec![(v, 1usize)];
    while let Some((v, depth)) = stack.pop() {
        total += 1;
        deepest = deepest.max(depth);
        match v {
            Value::Array(a) => stack.extend(a.iter().map(|x| (x, depth + 1))),
            Value::Object(m) => stack.extend(m.values().map(|x| (x, depth + 1))),
            _ => {}
        }
    }
    (total, deepest)
}

fn float_value(f: f64, line: usize, col: usize) -> Result<Value, YamlError> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| {
        // encoding/json cannot marshal NaN or infinities either.
        err(
            line,
            col,
            format!("json: unsupported value: {}", super::go_format::format_g(f)),
        )
    })
}

fn resolved_to_value(r: Resolved, text: &str, line: usize, col: usize) -> Result<Value, YamlError> {
    Ok(match r {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Number(i.into()),
        Resolved::Uint(u) => Value::Number(u.into()),
        Resolved::Float(f) => float_value(f, line, col)?,
        Resolved::Timestamp(t) => Value::String(t),
        Resolved::Merge | Resolved::Str => Value::String(text.to_string()),
    })
}

fn decode_binary(text: &str, line: usize, col: usize) -> Result<Value, YamlError> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| {
            err(
                line,
                col,
                format!("!!binary value contains invalid base64 data: {e}"),
            )
        })?;
    Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Decodes a scalar that carries an explicit tag.
fn tagged_scalar(
    tag: &Tag,
    text: &str,
    plain: bool,
    dialect: Dialect,
    line: usize,
    col: usize,
) -> Result<Value, YamlError> {
    let Some(name) = tag.suffix_in_namespace("tag:yaml.org,2002:") else {
        // Unknown local tags decode as strings.
        return Ok(Value::String(text.to_string()));
    };
    let resolved = if plain || name != "str" {
        resolve_plain(text, dialect)
    } else {
        Resolved::Str
    };
    let mismatch = |want: &str| err(line, col, format!("cannot decode `{text}` as a !!{want}"));
    match name.as_ref() {
        "str" => Ok(Value::String(text.to_string())),
        "binary" => decode_binary(text, line, col),
        "null" => match resolved {
            Resolved::Null => Ok(Value::Null),
            _ => Err(mismatch("null")),
        },
        "bool" => match resolved {
            Resolved::Bool(b) => Ok(Value::Bool(b)),
            _ => Err(mismatch("bool")),
        },
        "int" => match resolved {
            Resolved::Int(_) | Resolved::Uint(_) => resolved_to_value(resolved, text, line, col),
            _ => Err(mismatch("int")),
        },
        "float" => match resolved {
            Resolved::Int(i) => float_value(i as f64, line, col),
            Resolved::Uint(u) => float_value(u as f64, line, col),
            Resolved::Float(f) => float_value(f, line, col),
            _ => Err(mismatch("float")),
        },
        "timestamp" => match timestamp::parse(text) {
            Some(t) => Ok(Value::String(t)),
            None => Err(mismatch("timestamp")),
        },
        "map" | "seq" => Err(mismatch(name.as_ref())),
        _ => Ok(Value::String(text.to_string())),
    }
}

impl Builder {
    fn add_nodes(&mut self, n: usize, line: usize) -> Result<(), YamlError> {
        self.nodes += n;
        if self.nodes > MAX_NODES {
            return Err(err(line, 0, "document contains excessive aliasing"));
        }
        Ok(())
    }

    fn complete(
        &mut self,
        value: Value,
        anchor: usize,
        line: usize,
        col: usize,
    ) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, value.clone());
        }
        self.deliver(value, None, line, col)
    }

    /// Hands a finished node to its parent. `key_text` carries the source
    /// text and plainness of scalars, needed when the node is a mapping key.
    fn deliver(
        &mut self,
        value: Value,
        key_text: Option<(&str, bool)>,
        line: usize,
        col: usize,
    ) -> Result<(), YamlError> {
        // Top-level keys of a resource are decoded into `map[string]any`,
        // which turns scalars into strings; nested maps must have string keys.
        let stringify = self.options.stringify_keys || self.stack.len() == 1;
        let duplicate_keys = self.options.duplicate_keys;
        match self.stack.last_mut() {
            None => {
                self.root = Some(value);
                Ok(())
            }
            Some(Frame::Seq { items, .. }) => {
                items.push(value);
                Ok(())
            }
            Some(Frame::Map {
                entries,
                merges,
                key,
                key_line,
                key_lines,
                ..
            }) => match key.take() {
                None => {
                    let k = match (&value, key_text) {
                        (Value::String(s), Some((text, true))) if s == "<<" && text == "<<" => {
                            Key::Merge
                        }
                        (Value::String(s), _) => Key::Str(s.clone()),
                        (_, Some((text, _))) if stringify => Key::Str(text.to_string()),
                        (Value::Null | Value::Bool(_) | Value::Number(_), _) if stringify => {
                            Key::Str(value.to_string())
                        }
                        _ => {
                            return Err(err(
                                line,
                                col,
                                format!("json: unsupported map key {value}: keys must be strings"),
                            ));
                        }
                    };
                    *key = Some(k);
                    *key_line = line;
                    Ok(())
                }
                Some(Key::Merge) => {
                    merges.push(value);
                    Ok(())
                }
                Some(Key::Str(k)) => {
                    if let Some(prev) = key_lines.get(&k).filter(|_| !duplicate_keys) {
                        return Err(err(
                            *key_line,
                            col,
                            format!("mapping key \"{k}\" already defined at line {prev}"),
                        ));
                    }
                    key_lines.insert(k.clone(), *key_line);
                    entries.insert(k, value);
                    Ok(())
                }
            },
        }
    }

    fn finish_map(
        entries: Map<String, Value>,
        merges: Vec<Value>,
        line: usize,
    ) -> Result<Value, YamlError> {
        if merges.is_empty() {
            return Ok(Value::Object(entries));
        }
        let mut result = Map::new();
        let mut absorb = |src: &Value| -> Result<(), YamlError> {
            match src {
                Value::Object(m) => {
                    for (k, v) in m {
                        if !result.contains_key(k) {
                            result.insert(k.clone(), v.clone());
                        }
                    }
                    Ok(())
                }
                _ => Err(err(
                    line,
                    0,
                    "map merge requires map or sequence of maps as the value",
                )),
            }
        };
        for merge in &merges {
            match merge {
                Value::Array(items) => {
                    for item in items {
                        absorb(item)?;
                    }
                }
                other => absorb(other)?,
            }
        }
        // Explicit keys override merged ones.
        for (k, v) in entries {
            result.insert(k, v);
        }
        Ok(Value::Object(result))
    }
}

/// Parses every document of a stream. Empty documents come back as `Null`.
pub fn parse_stream(src: &str, options: ParseOptions) -> Result<Vec<Value>, YamlError> {
    let mut parser_options = Options::default();
    parser_options.set_emit_comments(false);
    let parser = Parser::new_from_str_with_options(src, parser_options);
    let mut docs = Vec::new();
    let mut b = Builder {
        options,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
    };
    for item in parser {
        let (event, span) = item.map_err(|e| {
            let m = e.marker();
            err(m.line(), m.col() + 1, e.info())
        })?;
        let line = span.start.line();
        let col = span.start.col() + 1;
        match event {
            Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart(..) => {
                b.root = None;
                b.anchors.clear();
            }
            Event::DocumentEnd => {
                docs.push(b.root.take().unwrap_or(Value::Null));
            }
            Event::Alias(id) => {
                let value = b
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| err(line, col, "unknown anchor referenced"))?;
                let (count, depth) = measure(&value);
                if depth + b.stack.len() > MAX_DEPTH {
                    return Err(err(line, col, "document nests too deeply"));
                }
                b.add_nodes(count, line)?;
                b.deliver(value, None, line, col)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                b.add_nodes(1, line)?;
                let plain = style == ScalarStyle::Plain;
                let value = match &tag {
                    Some(tag) => tagged_scalar(tag, &text, plain, options.dialect, line, col)?,
                    None if plain => {
                        resolved_to_value(resolve_plain(&text, options.dialect), &text, line, col)?
                    }
                    None => Value::String(text.to_string()),
                };
                if anchor != 0 {
                    b.anchors.insert(anchor, value.clone());
                }
                b.deliver(value, Some((&text, plain)), line, col)?;
            }
            Event::SequenceStart(_, anchor, _) => {
                b.add_nodes(1, line)?;
                b.stack.push(Frame::Seq {
                    items: Vec::new(),
                    anchor,
                });
            }
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor }) = b.stack.pop() {
                    b.complete(Value::Array(items), anchor, line, col)?;
                }
            }
            Event::MappingStart(_, anchor, _) => {
                b.add_nodes(1, line)?;
                b.stack.push(Frame::Map {
                    entries: Map::new(),
                    merges: Vec::new(),
                    key: None,
                    key_line: line,
                    anchor,
                    key_lines: HashMap::new(),
                });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    entries,
                    merges,
                    anchor,
                    ..
                }) = b.stack.pop()
                {
                    let value = Builder::finish_map(entries, merges, line)?;
                    b.complete(value, anchor, line, col)?;
                }
            }
            _ => {}
        }
    }
    Ok(docs)
}

/// Parses a stream that must hold exactly one document (empty input is
/// `Null`).
pub fn parse_single(src: &str, options: ParseOptions) -> Result<Value, YamlError> {
    let mut docs = parse_stream(src, options)?;
    match docs.len() {
        0 => Ok(Value::Null),
        1 => Ok(docs.remove(0)),
        _ => Err(err(0, 0, "expected a single document in the stream")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(src: &str) -> Value {
        parse_single(src, ParseOptions::RESOURCE).unwrap()
    }

    #[test]
    fn go_typing() {
        let v = one(
            "a: 017\nb: yes\nc: 2001-12-14\nd: !!str 12\ne: '1'\nf: ~\ng: 1.0\nh: !!binary aGVsbG8=\n",
        );
        assert_eq!(
            v,
            json!({"a": 15, "b": "yes", "c": "2001-12-14T00:00:00Z", "d": "12", "e": "1", "f": null, "g": 1.0, "h": "hello"})
        );
        let c = parse_single("a: yes\n1: x\n", ParseOptions::CONFIG).unwrap();
        assert_eq!(c, json!({"a": true, "1": "x"}));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = one("a: &x {k: v, j: 1}\nb: *x\nc:\n  <<: *x\n  k: w\n");
        assert_eq!(
            v,
            json!({"a": {"k": "v", "j": 1}, "b": {"k": "v", "j": 1}, "c": {"k": "w", "j": 1}})
        );
    }

    #[test]
    fn documents() {
        let docs = parse_stream("a: 1\n---\n---\nb: 2\n", ParseOptions::RESOURCE).unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), Value::Null, json!({"b": 2})]);
    }

    #[test]
    fn errors_do_not_panic() {
        assert!(parse_stream("a: [1\n", ParseOptions::RESOURCE).is_err());
        assert!(parse_stream("a: 1\na: 2\n", ParseOptions::RESOURCE).is_err());
        assert!(parse_stream("a: .inf\n", ParseOptions::RESOURCE).is_err());
        assert!(parse_stream("? [a]\n: b\n", ParseOptions::RESOURCE).is_err());
        let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        assert!(parse_stream(laughs, ParseOptions::RESOURCE).is_err());
        let mut chained = String::from("a0: &a0 [1]\n");
        for i in 1..600 {
            chained.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        assert!(parse_stream(&chained, ParseOptions::RESOURCE).is_err());
    }
}
