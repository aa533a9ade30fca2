//! The document formats SOPS stores: reading encrypted files into branches
//! plus metadata, and writing decrypted branches back out.

use serde_json::{Map, Value};

use crate::Error;
use crate::tree::{Branch, Item, branch_from_map, branch_to_map};

/// Key of the metadata section in YAML and JSON documents.
pub(crate) const METADATA_KEY: &str = "sops";
/// Prefix of the flattened metadata keys in dotenv documents.
const DOTENV_PREFIX: &str = "sops_";

/// A SOPS document format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML, possibly several documents.
    Yaml,
    /// One JSON object.
    Json,
    /// `KEY=value` lines.
    Dotenv,
    /// INI sections (recognised, not supported).
    Ini,
    /// Any other file: stored as JSON `{"data": …}`, decrypted to its bytes.
    Binary,
}

impl Format {
    /// The format SOPS picks for a file name, with Flux's addition that
    /// `.dockerconfigjson` is JSON.
    pub fn for_path(path: &str) -> Format {
        if path.ends_with(".yaml") || path.ends_with(".yml") {
            Format::Yaml
        } else if path.ends_with(".json") || path.ends_with(".dockerconfigjson") {
            Format::Json
        } else if path.ends_with(".env") {
            Format::Dotenv
        } else if path.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    /// Detects a SOPS-encrypted document by the marker its MAC line leaves
    /// (the test Flux applies to Secret data entries and generator files).
    /// JSON and binary documents look alike and are both read as JSON.
    pub fn detect_encrypted(data: &[u8]) -> Option<Format> {
        let contains = |marker: &[u8]| data.windows(marker.len()).any(|w| w == marker);
        if contains(b"\"mac\": \"ENC[") {
            Some(Format::Json)
        } else if contains(b"mac: ENC[") {
            Some(Format::Yaml)
        } else if contains(b"sops_mac=ENC[") {
            Some(Format::Dotenv)
        } else if contains(b"[sops]") {
            Some(Format::Ini)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Ini => "INI",
            Format::Binary => "binary",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Parsing limits: far above any real secret, far below what would hurt.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: 1_000,
            max_nodes: 1_000_000,
            max_events: 4_000_000,
            max_depth: 128,
            max_aliases: 1_000,
            max_total_scalar_bytes: 64 * 1024 * 1024,
        },
    }
}

/// An encrypted document: its branches and its raw metadata section.
pub(crate) struct Loaded {
    pub(crate) branches: Vec<Branch>,
    pub(crate) metadata: Value,
}

/// Takes the `sops` key out of a top-level object.
fn split_metadata(mut map: Map<String, Value>) -> (Branch, Option<Value>) {
    let metadata = map.shift_remove(METADATA_KEY);
    (branch_from_map(map), metadata)
}

/// Reads an encrypted document.
pub(crate) fn load(data: &[u8], format: Format) -> Result<Loaded, Error> {
    let parse_error = |reason: String| Error::Parse { format, reason };
    let (branches, metadata) = match format {
        Format::Yaml => {
            let text = std::str::from_utf8(data).map_err(|_| parse_error("not UTF-8".into()))?;
            let documents: Vec<Value> =
                serde_saphyr::from_multiple_with_options(text, yaml_options())
                    .map_err(|err| parse_error(err.to_string()))?;
            let mut branches = Vec::new();
            let mut metadata = None;
            for document in documents {
                match document {
                    // An empty document (`---` alone) is an empty branch.
                    Value::Null => branches.push(Branch::new()),
                    Value::Object(map) => {
                        let (branch, section) = split_metadata(map);
                        // SOPS reads the metadata of the first document.
                        if metadata.is_none() {
                            metadata = section;
                        }
                        branches.push(branch);
                    }
                    _ => return Err(parse_error("a document is not a mapping".into())),
                }
            }
            (branches, metadata)
        }
        Format::Json | Format::Binary => {
            let value: Value =
                serde_json::from_slice(data).map_err(|err| parse_error(err.to_string()))?;
            let Value::Object(map) = value else {
                return Err(parse_error("the document is not an object".into()));
            };
            let (branch, metadata) = split_metadata(map);
            (vec![branch], metadata)
        }
        Format::Dotenv => {
            let text = std::str::from_utf8(data).map_err(|_| parse_error("not UTF-8".into()))?;
            let (branch, flat) = parse_dotenv(text)?;
            let metadata = if flat.is_empty() {
                None
            } else {
                Some(unflatten(flat))
            };
            (vec![branch], metadata)
        }
        Format::Ini => return Err(Error::UnsupportedFormat(format)),
    };
    let metadata = metadata.ok_or(Error::MetadataNotFound)?;
    Ok(Loaded { branches, metadata })
}

/// Parses dotenv lines as SOPS does: `#` starts a comment line, every other
/// non-empty line is `KEY=value` with `\n` escapes. `sops_*` entries are the
/// flattened metadata, returned apart.
fn parse_dotenv(text: &str) -> Result<(Branch, Vec<(String, String)>), Error> {
    let mut branch = Branch::new();
    let mut metadata = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            branch.push(Item::Comment(comment.to_owned()));
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| Error::Parse {
            format: Format::Dotenv,
            reason: format!("line {} has no '='", index + 1),
        })?;
        let value = value.replace("\\n", "\n");
        match key.strip_prefix(DOTENV_PREFIX) {
            Some(flat_key) => metadata.push((flat_key.to_owned(), value)),
            None => branch.push(Item::Entry(key.to_owned(), Value::String(value))),
        }
    }
    Ok((branch, metadata))
}

/// Rebuilds the metadata tree from SOPS's flattened keys, e.g.
/// `age__list_0__map_recipient` → `age[0].recipient`.
fn unflatten(flat: Vec<(String, String)>) -> Value {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    enum Step {
        Key(String),
        Index(usize),
    }
    fn tokenize(path: &str) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut rest = path;
        let mut current = Step::Key(String::new());
        loop {
            let next_map = rest.find(MAP);
            let next_list = rest.find(LIST);
            let (at, separator) = match (next_map, next_list) {
                (Some(m), Some(l)) if l < m => (l, LIST),
                (Some(m), _) => (m, MAP),
                (None, Some(l)) => (l, LIST),
                (None, None) => (rest.len(), ""),
            };
            let token = &rest[..at];
            steps.push(match current {
                Step::Key(_) => Step::Key(token.to_owned()),
                Step::Index(_) => Step::Index(token.parse().unwrap_or(0)),
            });
            if separator.is_empty() {
                return steps;
            }
            current = if separator == MAP {
                Step::Key(String::new())
            } else {
                Step::Index(0)
            };
            rest = &rest[at + separator.len()..];
        }
    }
    fn insert(node: &mut Value, steps: &[Step], value: Value) {
        let Some((step, rest)) = steps.split_first() else {
            *node = value;
            return;
        };
        let child = match step {
            Step::Key(key) => {
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                let Value::Object(map) = node else { return };
                map.entry(key.clone()).or_insert(Value::Null)
            }
            Step::Index(index) => {
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(items) = node else { return };
                if items.len() <= *index {
                    items.resize(*index + 1, Value::Null);
                }
                &mut items[*index]
            }
        };
        insert(child, rest, value);
    }
    let mut root = Value::Object(Map::new());
    for (path, value) in flat {
        insert(&mut root, &tokenize(&path), Value::String(value));
    }
    root
}

/// Writes decrypted branches in the output format.
pub(crate) fn emit(branches: Vec<Branch>, format: Format) -> Result<Vec<u8>, Error> {
    let emit_error = |reason: String| Error::Emit { format, reason };
    match format {
        Format::Yaml => {
            let documents: Vec<Value> = branches
                .into_iter()
                .map(|branch| Value::Object(branch_to_map(branch)))
                .collect();
            let text = if documents.len() == 1 {
                serde_saphyr::to_string(&documents[0])
            } else {
                serde_saphyr::to_string_multiple(&documents)
            }
            .map_err(|err| emit_error(err.to_string()))?;
            Ok(text.into_bytes())
        }
        Format::Json => {
            let [branch] = <[Branch; 1]>::try_from(branches)
                .map_err(|_| emit_error("JSON holds exactly one document".into()))?;
            let mut out = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
            let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&Value::Object(branch_to_map(branch)), &mut serializer)
                .map_err(|err| emit_error(err.to_string()))?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Dotenv => {
            let [branch] = <[Branch; 1]>::try_from(branches)
                .map_err(|_| emit_error("dotenv holds exactly one document".into()))?;
            let mut out = String::new();
            for item in branch {
                match item {
                    Item::Comment(text) => {
                        out.push('#');
                        out.push_str(&text);
                    }
                    Item::Entry(key, value) => {
                        let text = match value {
                            Value::String(text) => text,
                            Value::Object(_) | Value::Array(_) => {
                                return Err(emit_error(format!(
                                    "the value of {key} is not a scalar"
                                )));
                            }
                            Value::Null => String::new(),
                            other => other.to_string(),
                        };
                        out.push_str(&key);
                        out.push('=');
                        out.push_str(&text.replace('\n', "\\n"));
                    }
                }
                out.push('\n');
            }
            Ok(out.into_bytes())
        }
        Format::Binary => {
            let [branch] = <[Branch; 1]>::try_from(branches)
                .map_err(|_| emit_error("binary holds exactly one document".into()))?;
            branch
                .into_iter()
                .find_map(|item| match item {
                    Item::Entry(key, Value::String(data)) if key == "data" => {
                        Some(data.into_bytes())
                    }
                    _ => None,
                })
                .ok_or_else(|| emit_error("no \"data\" entry".into()))
        }
        Format::Ini => Err(Error::UnsupportedFormat(format)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_for_paths() {
        assert_eq!(Format::for_path("a/secret.yaml"), Format::Yaml);
        assert_eq!(Format::for_path("x.yml"), Format::Yaml);
        assert_eq!(Format::for_path("c.json"), Format::Json);
        assert_eq!(Format::for_path(".dockerconfigjson"), Format::Json);
        assert_eq!(Format::for_path("app.env"), Format::Dotenv);
        assert_eq!(Format::for_path("a.ini"), Format::Ini);
        assert_eq!(Format::for_path("tls.crt"), Format::Binary);
    }

    #[test]
    fn detects_markers() {
        assert_eq!(
            Format::detect_encrypted(b"sops:\n    mac: ENC[AES"),
            Some(Format::Yaml)
        );
        assert_eq!(
            Format::detect_encrypted(b"{\"mac\": \"ENC[AES"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::detect_encrypted(b"sops_mac=ENC[AES"),
            Some(Format::Dotenv)
        );
        assert_eq!(Format::detect_encrypted(b"plain: text"), None);
    }

    #[test]
    fn unflattens_dotenv_metadata() {
        let flat = vec![
            ("age__list_0__map_recipient".to_owned(), "age1a".to_owned()),
            ("age__list_1__map_recipient".to_owned(), "age1b".to_owned()),
            ("lastmodified".to_owned(), "now".to_owned()),
            (
                "key_groups__list_0__map_age__list_0__map_enc".to_owned(),
                "x".to_owned(),
            ),
        ];
        assert_eq!(
            unflatten(flat),
            json!({
                "age": [{"recipient": "age1a"}, {"recipient": "age1b"}],
                "lastmodified": "now",
                "key_groups": [{"age": [{"enc": "x"}]}],
            })
        );
    }

    #[test]
    fn dotenv_round_trip_keeps_comments_and_newlines() {
        let (branch, metadata) =
            parse_dotenv("A=1\n#note\nB=two\\nlines\nsops_version=3\n").expect("parse");
        assert_eq!(metadata, vec![("version".to_owned(), "3".to_owned())]);
        let out = emit(vec![branch], Format::Dotenv).expect("emit");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "A=1\n#note\nB=two\\nlines\n"
        );
        assert!(parse_dotenv("no equals sign").is_err());
    }

    #[test]
    fn missing_metadata_is_reported() {
        assert!(matches!(
            load(b"a: 1\n", Format::Yaml),
            Err(Error::MetadataNotFound)
        ));
        assert!(matches!(
            load(b"[1]", Format::Json),
            Err(Error::Parse { .. })
        ));
        assert!(matches!(
            load(b"[s]", Format::Ini),
            Err(Error::UnsupportedFormat(Format::Ini))
        ));
    }
}
