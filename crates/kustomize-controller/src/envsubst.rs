//! Flux's post-build variable syntax: a bash-like subset of parameter
//! expansion (the drone/envsubst dialect Flux forked).
//!
//! * `${var}`; `$var` without braces is left alone;
//! * defaults `${var:=word}`, `${var:-word}`, `${var=word}` (also `:?`,
//!   `:+`, which Flux treats as defaults too): the word is used when the
//!   variable is unset or empty, and may itself contain `${…}`;
//! * `${#var}` length, `${var^}` `${var^^}` `${var,}` `${var,,}` case;
//! * `${var:pos}` `${var:pos:len}` substring (byte offsets, negative from the end);
//! * `${var#glob}` `${var##glob}` `${var%glob}` `${var%%glob}` trimming;
//! * `${var/old/new}` `${var//old/new}` `${var/#old/new}` `${var/%old/new}`
//!   literal replacement, where `\/` and `\\` escape;
//! * `$$` is a literal `$`, so `$${var}` stays `${var}`.
//!
//! In strict mode an unset variable is an error unless a default operator
//! handles it.

use std::fmt;

/// Why an expression could not be expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubstError {
    /// The text is not valid syntax; the message is the Flux one.
    Syntax(&'static str),
    /// Strict mode: the variable is not defined and has no default.
    NotSet(String),
}

impl fmt::Display for SubstError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubstError::Syntax(message) => f.write_str(message),
            SubstError::NotSet(name) => write!(f, "variable not set (strict mode): {name:?}"),
        }
    }
}

impl std::error::Error for SubstError {}

const BAD_SUBSTITUTION: SubstError = SubstError::Syntax("bad substitution");
const MISSING_CLOSING_BRACE: SubstError = SubstError::Syntax("missing closing brace");
const BAD_VARIABLE_NAME: SubstError = SubstError::Syntax("unable to parse variable name");
const BAD_FUNCTION_PARAMETER: SubstError =
    SubstError::Syntax("unable to parse substitution within function");

/// The operator of a `${…}` expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `${var}`.
    Value,
    /// `${#var}`.
    Length,
    /// `${var,}` / `${var,,}` / `${var^}` / `${var^^}`; other mixes keep the value.
    LowerFirst,
    Lower,
    UpperFirst,
    Upper,
    KeepCase,
    /// `${var:pos[:len]}`.
    Substring,
    /// `${var#g}` / `${var##g}` / `${var%g}` / `${var%%g}`.
    TrimShortestPrefix,
    TrimLongestPrefix,
    TrimShortestSuffix,
    TrimLongestSuffix,
    /// `${var/a/b}` / `${var//a/b}` / `${var/#a/b}` / `${var/%a/b}`.
    ReplaceFirst,
    ReplaceAll,
    ReplacePrefix,
    ReplaceSuffix,
    /// `=`, `:=`, `:-`, `:?`, `:+`: all mean "value, else the word".
    Default,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Text(String),
    Expr {
        name: String,
        op: Op,
        args: Vec<Node>,
    },
}

/// Where a parameter word ends.
#[derive(Clone, Copy)]
enum WordEnd {
    /// At the closing brace.
    Brace,
    /// At `:` or the closing brace (substring offset).
    ColonOrBrace,
    /// At `/` (replacement pattern).
    Slash,
}

impl WordEnd {
    fn accepts(self, c: char) -> bool {
        match self {
            WordEnd::Brace => c != '}',
            WordEnd::ColonOrBrace => c != ':' && c != '}',
            WordEnd::Slash => c != '/',
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn at_open(&self) -> bool {
        self.peek() == Some('$') && self.peek_at(1) == Some('{')
    }

    /// Whether the next two characters are an escape: `$$` always; `\/`
    /// and `\\` inside expressions.
    fn at_escape(&self, backslash: bool) -> bool {
        match (self.peek(), self.peek_at(1)) {
            (Some('$'), Some('$')) => true,
            (Some('\\'), Some('/' | '\\')) => backslash,
            _ => false,
        }
    }

    /// The whole input.
    fn parse(&mut self) -> Result<Vec<Node>, SubstError> {
        let mut nodes = Vec::new();
        while self.peek().is_some() {
            if self.at_open() {
                self.pos += 2;
                nodes.push(self.expression()?);
            } else {
                let text = self.text(|_| true, Some(false));
                nodes.push(Node::Text(text));
            }
        }
        Ok(nodes)
    }

    /// A run of text accepted by `accept`, stopping before `${`. With
    /// `escapes` set, an escape pair yields its second character whatever
    /// it is (`Some(true)` also honours backslash escapes).
    fn text(&mut self, accept: impl Fn(char) -> bool, escapes: Option<bool>) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            if self.at_open() {
                break;
            }
            if let Some(backslash) = escapes
                && self.at_escape(backslash)
            {
                out.push(self.peek_at(1).unwrap_or(c));
                self.pos += 2;
                continue;
            }
            if !accept(c) {
                break;
            }
            out.push(c);
            self.pos += 1;
        }
        out
    }

    fn expect_close(&mut self, error: SubstError) -> Result<(), SubstError> {
        if self.peek() == Some('}') {
            self.pos += 1;
            Ok(())
        } else {
            Err(error)
        }
    }

    fn identifier(&mut self) -> String {
        self.text(|c| c.is_alphanumeric() || c == '_', None)
    }

    /// Takes up to `max` characters from `set`.
    fn operator(&mut self, set: &[char], max: usize) -> String {
        let mut op = String::new();
        while op.chars().count() < max
            && let Some(c) = self.peek().filter(|c| set.contains(c))
        {
            op.push(c);
            self.pos += 1;
        }
        op
    }

    /// After `${`.
    fn expression(&mut self) -> Result<Node, SubstError> {
        if self.peek() == Some('#') {
            self.pos += 1;
            let name = self.identifier();
            if name.is_empty() {
                return Err(BAD_SUBSTITUTION);
            }
            self.expect_close(BAD_SUBSTITUTION)?;
            return Ok(Node::Expr {
                name,
                op: Op::Length,
                args: Vec::new(),
            });
        }
        let name = self.identifier();
        if name.is_empty() {
            return Err(BAD_VARIABLE_NAME);
        }
        match self.peek() {
            Some(':') if matches!(self.peek_at(1), Some('=' | '-' | '?' | '+')) => {
                self.pos += 2;
                self.default_words(name)
            }
            Some(':') => self.substring(name),
            Some('=') => {
                self.pos += 1;
                self.default_words(name)
            }
            Some(',' | '^') => {
                let op = match self.operator(&[',', '^'], 2).as_str() {
                    "," => Op::LowerFirst,
                    ",," => Op::Lower,
                    "^" => Op::UpperFirst,
                    "^^" => Op::Upper,
                    _ => Op::KeepCase,
                };
                self.expect_close(BAD_SUBSTITUTION)?;
                Ok(Node::Expr {
                    name,
                    op,
                    args: Vec::new(),
                })
            }
            Some('/') => self.replacement(name),
            Some(mark @ ('#' | '%')) => {
                let op = match (mark, self.operator(&[mark], 2).len()) {
                    ('#', 1) => Op::TrimShortestPrefix,
                    ('#', _) => Op::TrimLongestPrefix,
                    (_, 1) => Op::TrimShortestSuffix,
                    _ => Op::TrimLongestSuffix,
                };
                let pattern = self.word(WordEnd::Brace, false)?;
                self.expect_close(BAD_SUBSTITUTION)?;
                Ok(Node::Expr {
                    name,
                    op,
                    args: vec![pattern],
                })
            }
            _ => {
                self.expect_close(MISSING_CLOSING_BRACE)?;
                Ok(Node::Expr {
                    name,
                    op: Op::Value,
                    args: Vec::new(),
                })
            }
        }
    }

    /// One parameter: a nested `${…}` or a non-empty run of `kind` characters.
    fn word(&mut self, kind: WordEnd, backslash: bool) -> Result<Node, SubstError> {
        if self.at_open() {
            self.pos += 2;
            return self.expression();
        }
        let escapes = Some(backslash).filter(|b| *b);
        let starts_word = self.peek().is_some_and(|c| kind.accepts(c))
            || (escapes.is_some() && self.at_escape(true));
        if !starts_word {
            return Err(BAD_FUNCTION_PARAMETER);
        }
        Ok(Node::Text(self.text(|c| kind.accepts(c), escapes)))
    }

    /// The words of a default, up to the closing brace.
    fn default_words(&mut self, name: String) -> Result<Node, SubstError> {
        let mut args = Vec::new();
        loop {
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Node::Expr {
                    name,
                    op: Op::Default,
                    args,
                });
            }
            args.push(self.word(WordEnd::Brace, false)?);
        }
    }

    fn substring(&mut self, name: String) -> Result<Node, SubstError> {
        self.pos += 1; // ':'
        let mut args = vec![self.word(WordEnd::ColonOrBrace, false)?];
        match self.peek() {
            Some('}') => self.pos += 1,
            Some(':') => {
                while self.peek() == Some(':') {
                    self.pos += 1;
                }
                args.push(self.word(WordEnd::Brace, false)?);
                self.expect_close(BAD_SUBSTITUTION)?;
            }
            _ => return Err(BAD_SUBSTITUTION),
        }
        Ok(Node::Expr {
            name,
            op: Op::Substring,
            args,
        })
    }

    fn replacement(&mut self, name: String) -> Result<Node, SubstError> {
        self.pos += 1; // '/'
        let op = match self.peek() {
            Some('/') => Op::ReplaceAll,
            Some('#') => Op::ReplacePrefix,
            Some('%') => Op::ReplaceSuffix,
            _ => Op::ReplaceFirst,
        };
        if op != Op::ReplaceFirst {
            self.pos += 1;
        }
        let pattern = if self.peek() == Some('/') {
            Node::Text(String::new())
        } else {
            self.word(WordEnd::Slash, true)?
        };
        if self.peek() != Some('/') {
            return Err(BAD_SUBSTITUTION);
        }
        while self.peek() == Some('/') {
            self.pos += 1;
        }
        let mut args = vec![pattern];
        if self.peek() != Some('}') {
            args.push(self.word(WordEnd::Brace, true)?);
        }
        self.expect_close(BAD_SUBSTITUTION)?;
        Ok(Node::Expr { name, op, args })
    }
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    /// Parses a text; syntax errors are reported even when no variable is used.
    pub fn parse(text: &str) -> Result<Template, SubstError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
        };
        Ok(Template {
            nodes: parser.parse()?,
        })
    }

    /// Expands the template; `lookup` returns a variable's value, `None`
    /// when it is not defined (an error in `strict` mode unless a default
    /// handles it, otherwise the empty string).
    pub fn expand(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
        strict: bool,
    ) -> Result<String, SubstError> {
        let mut out = String::new();
        for node in &self.nodes {
            expand_node(node, lookup, strict, &mut out)?;
        }
        Ok(out)
    }
}

fn expand_node(
    node: &Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    strict: bool,
    out: &mut String,
) -> Result<(), SubstError> {
    let (name, op, args) = match node {
        Node::Text(text) => {
            out.push_str(text);
            return Ok(());
        }
        Node::Expr { name, op, args } => (name, *op, args),
    };
    let mut words = Vec::with_capacity(args.len());
    for arg in args {
        let mut word = String::new();
        expand_node(arg, lookup, strict, &mut word)?;
        words.push(word);
    }
    let value = match lookup(name) {
        Some(value) => value,
        None if strict && op != Op::Default => return Err(SubstError::NotSet(name.clone())),
        None => String::new(),
    };
    out.push_str(&apply(op, value, &words));
    Ok(())
}

/// Applies an operator to a value (Flux's substitution functions).
fn apply(op: Op, value: String, words: &[String]) -> String {
    let first = || words.first().map(String::as_str).unwrap_or_default();
    match op {
        Op::Value | Op::KeepCase => value,
        Op::Length => value.len().to_string(),
        Op::Lower => value.to_lowercase(),
        Op::Upper => value.to_uppercase(),
        Op::LowerFirst | Op::UpperFirst => {
            let mut chars = value.chars();
            match chars.next() {
                None => value,
                Some(c) if op == Op::LowerFirst => c.to_lowercase().chain(chars).collect(),
                Some(c) => c.to_uppercase().chain(chars).collect(),
            }
        }
        Op::Default => {
            if value.is_empty() && !words.is_empty() {
                words.concat()
            } else {
                value
            }
        }
        Op::Substring => substring(&value, words),
        Op::TrimShortestPrefix => trim_prefix(&value, first(), true),
        Op::TrimLongestPrefix => trim_prefix(&value, first(), false),
        Op::TrimShortestSuffix | Op::TrimLongestSuffix => {
            let reversed: String = value.chars().rev().collect();
            let pattern: String = first().chars().rev().collect();
            trim_prefix(&reversed, &pattern, op == Op::TrimShortestSuffix)
                .chars()
                .rev()
                .collect()
        }
        Op::ReplaceFirst | Op::ReplaceAll => {
            let replacement = words.get(1).map(String::as_str).unwrap_or_default();
            if op == Op::ReplaceAll {
                value.replace(first(), replacement)
            } else {
                value.replacen(first(), replacement, 1)
            }
        }
        Op::ReplacePrefix => match words {
            [pattern, replacement] if value.starts_with(pattern.as_str()) => {
                format!("{replacement}{}", &value[pattern.len()..])
            }
            _ => value,
        },
        Op::ReplaceSuffix => match words {
            [pattern, replacement] if value.ends_with(pattern.as_str()) => {
                format!("{}{replacement}", &value[..value.len() - pattern.len()])
            }
            _ => value,
        },
    }
}

/// `${var:pos[:len]}` with Go's byte offsets; an unparsable number keeps the
/// value, offsets past the end give the empty string.
fn substring(value: &str, words: &[String]) -> String {
    let bytes = value.as_bytes();
    let len = bytes.len() as i64;
    let Some(Ok(mut pos)) = words.first().map(|w| w.parse::<i64>()) else {
        return value.to_owned();
    };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let slice = |from: i64, to: i64| {
        String::from_utf8_lossy(&bytes[from as usize..to as usize]).into_owned()
    };
    let Some(length) = words.get(1) else {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    };
    let Ok(length) = length.parse::<i64>() else {
        return value.to_owned();
    };
    if length < 0 {
        let end = len + length;
        return if end < pos {
            String::new()
        } else {
            slice(pos, end)
        };
    }
    if pos.saturating_add(length) >= len {
        return if pos < len {
            slice(pos, len)
        } else {
            String::new()
        };
    }
    slice(pos, pos + length)
}

/// Removes the shortest (or longest) prefix matching a glob; a bad pattern
/// leaves the value unchanged.
fn trim_prefix(value: &str, pattern: &str, shortest: bool) -> String {
    let Some(glob) = Glob::parse(pattern) else {
        return value.to_owned();
    };
    // Candidate prefixes from longest to shortest, never empty.
    let mut ends: Vec<usize> = value
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .collect();
    ends.reverse();
    let mut found = None;
    for end in ends {
        if glob.matches(&value[..end]) {
            found = Some(end);
            if !shortest {
                break;
            }
        }
    }
    match found {
        Some(end) => value[end..].to_owned(),
        None => value.to_owned(),
    }
}

/// A glob as Flux's envsubst matches it (Go's `path.Match` syntax, but `/`
/// is an ordinary character): `*` any run, `?` any character, `[…]`
/// classes with ranges and `^` negation, `\` escapes.
#[derive(Debug)]
struct Glob {
    items: Vec<GlobItem>,
}

#[derive(Debug)]
enum GlobItem {
    Literal(char),
    Any,
    Star,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    fn parse(pattern: &str) -> Option<Glob> {
        let mut items = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            items.push(match c {
                '*' => GlobItem::Star,
                '?' => GlobItem::Any,
                '\\' => GlobItem::Literal(chars.next()?),
                '[' => {
                    let negated = chars.next_if_eq(&'^').is_some();
                    let mut ranges = Vec::new();
                    loop {
                        let mut lo = chars.next()?;
                        if lo == ']' && !ranges.is_empty() {
                            break;
                        }
                        if lo == '\\' {
                            lo = chars.next()?;
                        }
                        let hi = if chars.next_if_eq(&'-').is_some() {
                            match chars.next()? {
                                '\\' => chars.next()?,
                                ']' => return None,
                                hi => hi,
                            }
                        } else {
                            lo
                        };
                        if lo > hi {
                            return None;
                        }
                        ranges.push((lo, hi));
                    }
                    GlobItem::Class { negated, ranges }
                }
                other => GlobItem::Literal(other),
            });
        }
        Some(Glob { items })
    }

    fn matches(&self, name: &str) -> bool {
        let name: Vec<char> = name.chars().collect();
        matches_from(&self.items, &name)
    }
}

fn matches_from(items: &[GlobItem], name: &[char]) -> bool {
    let Some((item, rest)) = items.split_first() else {
        return name.is_empty();
    };
    match item {
        GlobItem::Star => (0..=name.len()).any(|taken| matches_from(rest, &name[taken..])),
        single => match name.split_first() {
            Some((&c, tail)) => {
                let ok = match single {
                    GlobItem::Literal(l) => *l == c,
                    GlobItem::Any => true,
                    GlobItem::Class { negated, ranges } => {
                        ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
                    }
                    GlobItem::Star => false,
                };
                ok && matches_from(rest, tail)
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn run(vars: &[(&str, &str)], input: &str, strict: bool) -> Result<String, SubstError> {
        let vars: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Template::parse(input)?.expand(&|name| vars.get(name).cloned(), strict)
    }

    fn expands(vars: &[(&str, &str)], input: &str, expected: &str) {
        assert_eq!(run(vars, input, false).as_deref(), Ok(expected), "{input}");
    }

    #[test]
    fn plain_text_and_unbraced_dollars_are_untouched() {
        expands(&[], "abcdEFGH28ij", "abcdEFGH28ij");
        expands(&[("var", "x")], "$var and $ alone", "$var and $ alone");
        expands(&[], "\\\\something", "\\\\something");
    }

    #[test]
    fn operators() {
        let v = &[("var01", "abcdEFGH28ij")];
        expands(v, "${#var01}", "12");
        expands(v, "${var01^}", "AbcdEFGH28ij");
        expands(v, "${var01^^}", "ABCDEFGH28IJ");
        expands(&[("v", "ABC")], "${v,}", "aBC");
        expands(&[("v", "ABC")], "${v,,}", "abc");
        let p = &[("path_name", "/home/bozo/ideas/thoughts.for.today")];
        expands(p, "${path_name:11}", "ideas/thoughts.for.today");
        expands(p, "${path_name:11:5}", "ideas");
        expands(&[("v", "abcdef")], "${v:1:-1}", "bcde");
        expands(&[("v", "abc")], "${v:10}", "");
        expands(&[("v", "abc")], "${v:x}", "abc");
        let z = &[("stringZ", "abcABC123ABCabc")];
        expands(z, "${stringZ/%abc/XYZ}", "abcABC123ABCXYZ");
        expands(z, "${stringZ/#abc/XYZ}", "XYZABC123ABCabc");
        expands(z, "${stringZ//abc/xyz}", "xyzABC123ABCxyz");
        expands(z, "${stringZ/abc/xyz}", "xyzABC123ABCabc");
        expands(&[("s", "somevalue")], "${s/#/prefix-}", "prefix-somevalue");
        expands(&[("s", "somevalue")], "${s/%/-suffix}", "somevalue-suffix");
        expands(&[("s", "foo/bar")], r"${s/\//-}", "foo-bar");
        expands(&[("s", "foo/bar/baz")], r"${s//\//-}", "foo-bar-baz");
        expands(&[("s", "foo.bar")], "${s/./}", "foobar");
    }

    #[test]
    fn glob_trimming() {
        let f = &[("f", "bash.string.txt")];
        expands(f, "${f#*.}", "string.txt");
        expands(f, "${f##*.}", "txt");
        expands(f, "${f%.*}", "bash.string");
        expands(f, "${f%%.*}", "bash");
        expands(&[("f", "path/to/file")], "${f#*/}", "to/file");
        expands(&[("f", "path/to/file")], "${f##*/}", "file");
        expands(&[("f", "/path/to/file")], "${f#*/}", "path/to/file");
        expands(&[("f", "v1.2.3")], "${f#v}", "1.2.3");
        expands(&[("f", "a1b")], "${f#[a-z]}", "1b");
        expands(&[("f", "abc")], "${f#[}", "abc");
    }

    #[test]
    fn defaults_nest_and_escapes_stay_literal() {
        expands(&[("var", "abc")], "${var=xyz}", "abc");
        expands(&[], "${var=xyz}", "xyz");
        expands(&[], "${var:=xyz}", "xyz");
        expands(&[("var", "")], "${var:-xyz}", "xyz");
        expands(&[("d", "foo")], "something ${var=${d}}", "something foo");
        expands(
            &[("d", "foo1")],
            "foo: ${var=${d}-suffix}",
            "foo: foo1-suffix",
        );
        expands(
            &[("d", "foo1")],
            "foo: ${var=prefix${d}-suffix}",
            "foo: prefixfoo1-suffix",
        );
        expands(&[("v", "abcdEFGH28ij")], "${var=${v^^}}", "ABCDEFGH28IJ");
        expands(&[("v", "x")], "$${v}", "${v}");
        expands(
            &[("var01", "abcdEFGH28ij")],
            "some text ${var01}$${var$${var01}$var01${var01}",
            "some text abcdEFGH28ij${var${var01}$var01abcdEFGH28ij",
        );
        expands(
            &[("d", "foo")],
            "something $${var=${d}}",
            "something ${var=foo}",
        );
        expands(&[], "pa$$word", "pa$word");
    }

    #[test]
    fn strict_mode_names_the_missing_variable() {
        assert_eq!(
            run(&[], "${missing}", true),
            Err(SubstError::NotSet("missing".into()))
        );
        assert_eq!(run(&[("foo", "")], "${foo}", true).as_deref(), Ok(""));
        for input in [
            "${#missing}",
            "${missing^}",
            "${missing,,}",
            "${missing:0}",
            "${missing:0:10}",
            "${missing/a/b}",
            "${missing//a/b}",
            "${missing/#a/b}",
            "${missing/%a/b}",
            "${missing#a}",
            "${missing##a}",
            "${missing%a}",
            "${missing%%a}",
        ] {
            assert_eq!(
                run(&[], input, true),
                Err(SubstError::NotSet("missing".into())),
                "{input}"
            );
        }
        for (input, expected) in [
            ("${missing:-fallback}", "fallback"),
            ("${missing:=assigned}", "assigned"),
            ("${missing=assigned}", "assigned"),
            ("${missing:-}", ""),
        ] {
            assert_eq!(run(&[], input, true).as_deref(), Ok(expected), "{input}");
        }
        assert_eq!(run(&[], "${missing}", false).as_deref(), Ok(""));
        let err = run(&[], "${missing}", true).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "variable not set (strict mode): \"missing\""
        );
    }

    #[test]
    fn syntax_errors_use_flux_messages() {
        for (input, message) in [
            ("${}", "unable to parse variable name"),
            ("${foo", "missing closing brace"),
            ("${foo bar}", "missing closing brace"),
            ("${foo#}", "unable to parse substitution within function"),
            ("${foo:1x", "bad substitution"),
            ("${foo/a}", "bad substitution"),
            ("${#}", "bad substitution"),
        ] {
            let err = run(&[("foo", "v")], input, false).expect_err(input);
            assert_eq!(err.to_string(), message, "{input}");
        }
    }
}
