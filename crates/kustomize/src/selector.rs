//! Resource selectors (`target` in patches, `select`/`reject` in
//! replacements): regular expressions on gvk/name/namespace plus Kubernetes
//! label and annotation selectors.

use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::resid::Gvk;

/// A selector as written in a kustomization.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selector {
    /// API group, a regular expression; empty matches any.
    #[serde(default)]
    pub group: String,
    /// API version, a regular expression; empty matches any.
    #[serde(default)]
    pub version: String,
    /// Kind, a regular expression; empty matches any.
    #[serde(default)]
    pub kind: String,
    /// Name, a regular expression; empty matches any.
    #[serde(default)]
    pub name: String,
    /// Namespace, a regular expression; empty matches any.
    #[serde(default)]
    pub namespace: String,
    /// A Kubernetes label selector; empty matches any.
    #[serde(default)]
    pub label_selector: String,
    /// An annotation selector, in label-selector syntax; empty matches any.
    #[serde(default)]
    pub annotation_selector: String,
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        write!(
            f,
            "{}.{}.{}/{}.{}:a={}:l={}",
            or(&self.kind, "[noKind]"),
            or(&self.version, "[noVer]"),
            or(&self.group, "[noGrp]"),
            or(&self.name, "[noName]"),
            or(&self.namespace, "[noNs]"),
            self.annotation_selector,
            self.label_selector
        )
    }
}

fn anchored(pattern: &str) -> Result<Option<Regex>> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|e| {
            Error::patch(format!(
                "invalid selector regular expression {pattern:?}: {e}"
            ))
        })
}

/// A compiled selector.
pub struct SelectorMatcher {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Option<LabelSelector>,
    annotations: Option<LabelSelector>,
}

impl Selector {
    /// Compiles the regular expressions and selectors.
    pub fn compile(&self) -> Result<SelectorMatcher> {
        let parse_sel = |s: &str| -> Result<Option<LabelSelector>> {
            if s.is_empty() {
                Ok(None)
            } else {
                LabelSelector::parse(s).map(Some)
            }
        };
        Ok(SelectorMatcher {
            group: anchored(&self.group)?,
            version: anchored(&self.version)?,
            kind: anchored(&self.kind)?,
            name: anchored(&self.name)?,
            namespace: anchored(&self.namespace)?,
            labels: parse_sel(&self.label_selector)?,
            annotations: parse_sel(&self.annotation_selector)?,
        })
    }

    /// The gvk/name/namespace part is empty.
    pub fn id_is_empty(&self) -> bool {
        self.group.is_empty()
            && self.version.is_empty()
            && self.kind.is_empty()
            && self.name.is_empty()
            && self.namespace.is_empty()
    }
}

fn matches(re: &Option<Regex>, s: &str) -> bool {
    re.as_ref().is_none_or(|re| re.is_match(s))
}

impl SelectorMatcher {
    /// Whether the selector constrains the name.
    pub fn has_name(&self) -> bool {
        self.name.is_some()
    }

    /// Whether the selector constrains the namespace.
    pub fn has_namespace(&self) -> bool {
        self.namespace.is_some()
    }

    /// Whether the selector has a label selector.
    pub fn has_labels(&self) -> bool {
        self.labels.is_some()
    }

    /// Whether the selector has an annotation selector.
    pub fn has_annotations(&self) -> bool {
        self.annotations.is_some()
    }

    /// Whether group, version and kind match.
    pub fn match_gvk(&self, gvk: &Gvk) -> bool {
        matches(&self.group, &gvk.group)
            && matches(&self.version, &gvk.version)
            && matches(&self.kind, &gvk.kind)
    }

    /// Whether the name matches.
    pub fn match_name(&self, n: &str) -> bool {
        matches(&self.name, n)
    }

    /// Whether the namespace matches.
    pub fn match_namespace(&self, ns: &str) -> bool {
        matches(&self.namespace, ns)
    }

    /// Whether the labels match the label selector.
    pub fn match_labels(&self, labels: &BTreeMap<String, String>) -> Result<bool> {
        Ok(self.labels.as_ref().is_none_or(|s| s.matches(labels)))
    }

    /// Whether the annotations match the annotation selector.
    pub fn match_annotations(&self, ann: &BTreeMap<String, String>) -> Result<bool> {
        Ok(self.annotations.as_ref().is_none_or(|s| s.matches(ann)))
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    Greater(String, i64),
    Less(String, i64),
}

/// A Kubernetes label selector (`a=b,c!=d,e in (f,g),!h`).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    src: &'a str,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let start = self.i;
        while self.i < self.s.len() {
            let c = self.s[self.i];
            if c.is_ascii_whitespace()
                || matches!(c, b',' | b'=' | b'!' | b'(' | b')' | b'<' | b'>')
            {
                break;
            }
            self.i += 1;
        }
        self.src[start..self.i].to_string()
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.src[self.i..].starts_with(token) {
            self.i += token.len();
            true
        } else {
            false
        }
    }
}

impl LabelSelector {
    /// Parses a Kubernetes label selector (`a=b,c!=d,e in (f),!g`).
    pub fn parse(src: &str) -> Result<LabelSelector> {
        let bad = |why: &str| {
            Error::patch(format!(
                "unable to parse requirement: {why} in selector {src:?}"
            ))
        };
        let mut lx = Lexer {
            s: src.as_bytes(),
            i: 0,
            src,
        };
        let mut requirements = Vec::new();
        loop {
            if lx.peek().is_none() {
                break;
            }
            let negated = lx.eat("!");
            let key = lx.word();
            if key.is_empty() {
                return Err(bad("missing key"));
            }
            let req = if negated {
                Requirement::DoesNotExist(key)
            } else if lx.eat("==") || lx.eat("=") {
                Requirement::Equals(key, lx.word())
            } else if lx.eat("!=") {
                Requirement::NotEquals(key, lx.word())
            } else if lx.eat(">") {
                let v = lx.word();
                Requirement::Greater(key, v.parse().map_err(|_| bad("expected an integer"))?)
            } else if lx.eat("<") {
                let v = lx.word();
                Requirement::Less(key, v.parse().map_err(|_| bad("expected an integer"))?)
            } else {
                let save = lx.i;
                let op = lx.word();
                match op.as_str() {
                    "in" | "notin" => {
                        if !lx.eat("(") {
                            return Err(bad("expected '('"));
                        }
                        let mut values = Vec::new();
                        loop {
                            let v = lx.word();
                            values.push(v);
                            if lx.eat(",") {
                                continue;
                            }
                            if lx.eat(")") {
                                break;
                            }
                            return Err(bad("expected ',' or ')'"));
                        }
                        if op == "in" {
                            Requirement::In(key, values)
                        } else {
                            Requirement::NotIn(key, values)
                        }
                    }
                    _ => {
                        lx.i = save;
                        Requirement::Exists(key)
                    }
                }
            };
            requirements.push(req);
            match lx.peek() {
                None => break,
                Some(b',') => {
                    lx.i += 1;
                }
                Some(_) => return Err(bad("expected ','")),
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|x| vs.contains(x)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|x| !vs.contains(x)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::Greater(k, n) => labels
                .get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            Requirement::Less(k, n) => labels
                .get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&l);
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, db)"));
        assert!(!m("tier notin (front)"));
        assert!(m("!missing"));
        assert!(!m("missing"));
        assert!(LabelSelector::parse("app in web").is_err());
    }

    #[test]
    fn regex_selectors() {
        let s = Selector {
            kind: "Deploy.*".into(),
            name: "a|b".into(),
            ..Selector::default()
        };
        let m = s.compile().unwrap();
        assert!(m.match_gvk(&Gvk::new("apps", "v1", "Deployment")));
        assert!(!m.match_gvk(&Gvk::new("apps", "v1", "StatefulSet")));
        assert!(m.match_name("a"));
        assert!(!m.match_name("ab"));
    }
}
