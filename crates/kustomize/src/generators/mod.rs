//! `configMapGenerator` and `secretGenerator`.

pub mod hash;
pub mod iam_policy;

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::kustomization::{GeneratorArgs, GeneratorOptions};
use crate::loader::Loader;
use crate::resource::{Behavior, Resource};

/// Which kind a generator makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeneratedKind {
    /// A ConfigMap (`configMapGenerator`).
    ConfigMap,
    /// A Secret (`secretGenerator`).
    Secret,
}

impl GeneratedKind {
    fn as_str(self) -> &'static str {
        match self {
            GeneratedKind::ConfigMap => "ConfigMap",
            GeneratedKind::Secret => "Secret",
        }
    }
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() < 2 || b[0] != b[b.len() - 1] {
        return s;
    }
    if b[0] == b'"' || b[0] == b'\'' {
        return &s[1..s.len() - 1];
    }
    s
}

fn parse_literal(source: &str) -> Result<(String, String)> {
    let invalid = || {
        Error::generator(format!(
            "invalid literal source {source}, expected key=value"
        ))
    };
    if source.starts_with('=') {
        return Err(invalid());
    }
    let (k, v) = source.split_once('=').ok_or_else(invalid)?;
    Ok((k.to_string(), remove_quotes(v).to_string()))
}

/// kustomize's `ParseFileSource`: `path` or `key=path`.
fn parse_file_source(source: &str) -> Result<(String, String)> {
    let n = source.matches('=').count();
    match n {
        0 => {
            let base = source.rsplit('/').find(|s| !s.is_empty()).unwrap_or(source);
            Ok((base.to_string(), source.to_string()))
        }
        1 if source.starts_with('=') => Err(Error::generator(format!(
            "missing key name for file path {:?} in source {source:?}",
            source.trim_start_matches('=')
        ))),
        1 if source.ends_with('=') => Err(Error::generator(format!(
            "missing file path for key name {:?} in source {source:?}",
            source.trim_end_matches('=')
        ))),
        1 => {
            let (k, p) = source.split_once('=').unwrap_or((source, ""));
            Ok((k.to_string(), p.to_string()))
        }
        _ => Err(Error::generator(format!(
            "source {source:?} key name or file path contains '='"
        ))),
    }
}

/// Parses an env file (`KEY=value` lines, `#` comments). Like kubectl's
/// kustomize (whose key validator accepts everything), keys are not checked.
fn env_file_pairs(content: &[u8]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, raw) in content.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| Error::generator(format!("line {i} has invalid utf8 bytes")))?;
        let line = if i == 0 {
            line.strip_prefix('\u{feff}').unwrap_or(line)
        } else {
            line
        };
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k, v),
            None => (line, ""),
        };
        out.push((key.to_string(), value.to_string()));
    }
    Ok(out)
}

/// Loads the key/value pairs of a generator: env files, then literals, then
/// files, each key at most once. Values are bytes: file contents need not be
/// text.
fn load_pairs(ldr: &Loader, args: &GeneratorArgs) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut pairs: Vec<(String, Vec<u8>)> = Vec::new();
    for p in &args.envs {
        let content = ldr
            .load(p)
            .map_err(|e| e.context(format!("env source files: {:?}", args.envs)))?;
        let kvs = env_file_pairs(&content)
            .map_err(|e| e.context(format!("env source files: {:?}", args.envs)))?;
        pairs.extend(kvs.into_iter().map(|(k, v)| (k, v.into_bytes())));
    }
    for l in &args.literals {
        let (k, v) = parse_literal(l)
            .map_err(|e| e.context(format!("literal sources {:?}", args.literals)))?;
        pairs.push((k, v.into_bytes()));
    }
    for f in &args.files {
        let (key, path) = parse_file_source(f)
            .map_err(|e| e.context(format!("file sources: {:?}", args.files)))?;
        let content = ldr
            .load(&path)
            .map_err(|e| e.context(format!("file sources: {:?}", args.files)))?;
        pairs.push((key, content));
    }
    let mut known = BTreeMap::new();
    for (k, v) in pairs {
        if known.contains_key(&k) {
            return Err(Error::generator(format!(
                "configmap {} illegally repeats the key `{k}`",
                args.name
            )));
        }
        known.insert(k, v);
    }
    Ok(known)
}

/// kyaml's `encodeBase64`: standard base64 broken into 70-character lines,
/// each followed by a newline once there is more than one line's worth.
pub fn encode_base64_lines(data: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(data);
    if encoded.len() < 70 {
        return encoded;
    }
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 70 + 1);
    for chunk in encoded.as_bytes().chunks(70) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out
}

/// Generates one ConfigMap or Secret.
pub fn generate(
    kind: GeneratedKind,
    ldr: &Loader,
    args: &GeneratorArgs,
    options: Option<&GeneratorOptions>,
) -> Result<Resource> {
    if args.name.is_empty() {
        return Err(Error::generator("a configmap must have a name"));
    }
    let pairs = load_pairs(ldr, args).map_err(|e| e.context("loading KV pairs"))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String("v1".into()));
    obj.insert("kind".into(), Value::String(kind.as_str().into()));
    let mut md = Map::new();
    md.insert("name".into(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        md.insert("namespace".into(), Value::String(args.namespace.clone()));
    }
    obj.insert("metadata".into(), Value::Object(md));
    match kind {
        GeneratedKind::ConfigMap => {
            // Text goes to data, anything else (base64) to binaryData.
            let mut data = Map::new();
            let mut binary = Map::new();
            for (k, v) in pairs {
                match String::from_utf8(v) {
                    Ok(text) => {
                        data.insert(k, Value::String(text));
                    }
                    Err(e) => {
                        binary.insert(k, Value::String(encode_base64_lines(e.as_bytes())));
                    }
                }
            }
            if !data.is_empty() {
                obj.insert("data".into(), Value::Object(data));
            }
            if !binary.is_empty() {
                obj.insert("binaryData".into(), Value::Object(binary));
            }
        }
        GeneratedKind::Secret => {
            let t = if args.secret_type.is_empty() {
                "Opaque"
            } else {
                &args.secret_type
            };
            obj.insert("type".into(), Value::String(t.to_string()));
            let mut data = Map::new();
            for (k, v) in pairs {
                data.insert(k, Value::String(encode_base64_lines(&v)));
            }
            obj.insert("data".into(), Value::Object(data));
        }
    }
    let mut res = Resource::new(obj);
    if let Some(opts) = options {
        let mut labels = res.labels();
        for (k, v) in opts.labels.iter().flatten() {
            labels.insert(k.clone(), v.clone());
        }
        if !labels.is_empty() {
            res.set_labels(&labels);
        }
        for (k, v) in opts.annotations.iter().flatten() {
            res.set_annotation(k, v);
        }
        if opts.immutable {
            res.as_map_mut()
                .insert("immutable".into(), Value::Bool(true));
        }
    }
    if options.is_none_or(|o| !o.disable_name_suffix_hash) {
        res.enable_hash_suffix();
    }
    res.set_behavior(Behavior::parse(&args.behavior));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            parse_literal("a=\"b c\"").unwrap(),
            ("a".into(), "b c".into())
        );
        assert!(parse_literal("=x").is_err());
        assert!(parse_literal("novalue").is_err());
        assert_eq!(
            parse_file_source("dir/app.conf").unwrap(),
            ("app.conf".into(), "dir/app.conf".into())
        );
        assert_eq!(
            parse_file_source("k=dir/app.conf").unwrap(),
            ("k".into(), "dir/app.conf".into())
        );
        assert!(parse_file_source("a=b=c").is_err());
        let pairs = env_file_pairs(b"# c\nA=1\n  B=x=y\r\nC\n").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), "".into())
            ]
        );
        // kustomize's validator accepts any key.
        assert!(env_file_pairs(b"1A=x\n").is_ok());
    }

    #[test]
    fn base64_lines() {
        assert_eq!(encode_base64_lines(b"hello"), "aGVsbG8=");
        let long = encode_base64_lines(&[b'x'; 60]);
        assert!(long.ends_with('\n'));
        assert_eq!(long.lines().next().map(str::len), Some(70));
    }
}
