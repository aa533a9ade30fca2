//! YAML output byte-for-byte like kustomize's.
//!
//! kustomize prints each resource by marshalling it to JSON and converting
//! that JSON to YAML with go-yaml v2 (`sigs.k8s.io/yaml.JSONToYAML`). The
//! result has sorted keys ("natural" order), block style, 2-space indentation,
//! indentless sequences under mapping keys, lines folded at 80 columns and
//! go-yaml v2's quoting rules (YAML 1.1 booleans and timestamps are quoted).
//! This module reproduces that emitter for `serde_json::Value` trees.

use serde_json::Value;

use super::go_format;

/// Lines are folded once the column exceeds this width (go-yaml's default).
const BEST_WIDTH: usize = 80;
/// Indentation step (go-yaml's default).
const BEST_INDENT: i64 = 2;

/// Renders one document the way `yaml.JSONToYAML(json.Marshal(obj))` does.
pub fn to_yaml_document(value: &Value) -> String {
    let mut emitter = Emitter::new();
    emitter.emit_node(value, Context::ROOT);
    // Document end: go-yaml writes a final line break unless already at a
    // fresh line.
    emitter.write_indent();
    emitter.out
}

/// Renders a stream of documents separated by `---` lines, as kustomize does.
pub fn to_yaml_stream<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&to_yaml_document(value));
    }
    out
}

#[derive(Clone, Copy)]
struct Context {
    mapping: bool,
    simple_key: bool,
}

impl Context {
    const ROOT: Context = Context {
        mapping: false,
        simple_key: false,
    };
    const SEQUENCE_ITEM: Context = Context {
        mapping: false,
        simple_key: false,
    };
    const MAPPING_VALUE: Context = Context {
        mapping: true,
        simple_key: false,
    };
    const SIMPLE_KEY: Context = Context {
        mapping: true,
        simple_key: true,
    };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
}

impl Emitter {
    fn new() -> Self {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
        }
    }

    fn emit_node(&mut self, value: &Value, ctx: Context) {
        match value {
            Value::Object(map) if !map.is_empty() => self.emit_block_mapping(map),
            Value::Object(_) => self.emit_empty_flow("{}"),
            Value::Array(items) if !items.is_empty() => self.emit_block_sequence(items, ctx),
            Value::Array(_) => self.emit_empty_flow("[]"),
            Value::Null => self.emit_scalar("null", Style::Plain, ctx),
            Value::Bool(b) => {
                self.emit_scalar(if *b { "true" } else { "false" }, Style::Plain, ctx)
            }
            Value::Number(n) => {
                let text = go_format::yaml_number(n);
                self.emit_scalar(&text, Style::Plain, ctx)
            }
            Value::String(s) => {
                let requested = requested_string_style(s);
                self.emit_scalar(s, requested, ctx)
            }
        }
    }

    fn emit_empty_flow(&mut self, text: &str) {
        // Flow start indicator: needs whitespace before it.
        self.write_indicator(&text[..1], true, true, false);
        self.write_indicator(&text[1..], false, false, false);
    }

    fn emit_block_mapping(&mut self, map: &serde_json::Map<String, Value>) {
        self.increase_indent(false, false);
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort_by(|a, b| natural_key_cmp(a, b));
        for key in keys {
            self.write_indent();
            let key_value = Value::String(key.clone());
            let analysis = analyze_scalar(key);
            // A key longer than 128 bytes or spanning lines cannot be a simple
            // key; go-yaml then writes `? key` / `: value`.
            if analysis.multiline || key.len() > 128 {
                self.write_indicator("?", true, false, true);
                self.emit_node(&key_value, Context::MAPPING_VALUE);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            } else {
                self.emit_node(&key_value, Context::SIMPLE_KEY);
                self.write_indicator(":", false, false, false);
            }
            if let Some(v) = map.get(key.as_str()) {
                self.emit_node(v, Context::MAPPING_VALUE);
            }
        }
        self.pop_indent();
    }

    fn emit_block_sequence(&mut self, items: &[Value], ctx: Context) {
        let indentless = ctx.mapping && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.emit_node(item, Context::SEQUENCE_ITEM);
        }
        self.pop_indent();
    }

    fn emit_scalar(&mut self, value: &str, requested: Style, ctx: Context) {
        let analysis = analyze_scalar(value);
        let style = select_style(requested, &analysis, value, ctx.simple_key);
        self.increase_indent(true, false);
        let allow_breaks = !ctx.simple_key;
        match style {
            Style::Plain => self.write_plain(value, allow_breaks),
            Style::SingleQuoted => self.write_single_quoted(value, allow_breaks),
            Style::DoubleQuoted => self.write_double_quoted(value, allow_breaks),
            Style::Literal => self.write_literal(value),
        }
        self.pop_indent();
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_char(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn write_break_char(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.write_char(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, value: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        self.write_folding(value, allow_breaks, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        self.write_folding(value, allow_breaks, true);
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The body of plain and single-quoted scalars: spaces may become line
    /// breaks past the width, line breaks are doubled, and (when quoted)
    /// quotes are doubled and the first and last characters never break.
    fn write_folding(&mut self, value: &str, allow_breaks: bool, quoted: bool) {
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                let inner = !quoted || (i > 0 && i < chars.len() - 1);
                if allow_breaks && !spaces && self.column > BEST_WIDTH && inner && !next_is_space {
                    self.write_indent();
                } else {
                    self.write_char(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break_char(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if quoted && c == '\'' {
                    self.put('\'');
                }
                self.write_char(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
    }

    fn write_double_quoted(&mut self, value: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let starts_with_bom = value.starts_with('\u{FEFF}');
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            // go-yaml's is_bom looks at the start of the value for every
            // position, so a leading BOM escapes every character.
            if !is_printable(c) || starts_with_bom || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let v = c as u32;
                        let (prefix, width) = if v <= 0xFF {
                            ('x', 2)
                        } else if v <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(prefix);
                        for k in (0..width).rev() {
                            let digit = (v >> (k * 4)) & 0xF;
                            let ch = char::from_digit(digit, 16)
                                .map(|d| d.to_ascii_uppercase())
                                .unwrap_or('0');
                            self.put(ch);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < chars.len() - 1
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.write_char(c);
                }
                spaces = true;
            } else {
                self.write_char(c);
                spaces = false;
            }
            i += 1;
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, value: &str) {
        self.write_indicator("|", true, false, false);
        // Block scalar hints.
        let chars: Vec<char> = value.chars().collect();
        if let Some(&first) = chars.first()
            && (first == ' ' || is_break(first))
        {
            let hint = char::from_digit(BEST_INDENT as u32, 10).unwrap_or('2');
            self.write_indicator(&hint.to_string(), false, false, false);
        }
        let chomp = match chars.len() {
            0 => Some('-'),
            n => {
                if !is_break(chars[n - 1]) {
                    Some('-')
                } else if n == 1 || is_break(chars[n - 2]) {
                    Some('+')
                } else {
                    None
                }
            }
        };
        if let Some(ch) = chomp {
            self.write_indicator(&ch.to_string(), false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.write_break_char(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.write_char(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The style go-yaml v2's encoder asks for before the emitter's own checks.
fn requested_string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if super::resolve::resolves_to_string_v2(s) && !is_base60_float(s) {
        Style::Plain
    } else {
        Style::DoubleQuoted
    }
}

fn is_base60_float(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(&c) = bytes.first() else {
        return false;
    };
    if !(c == b'+' || c == b'-' || c.is_ascii_digit()) || !s.contains(':') {
        return false;
    }
    // ^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$
    let mut i = 0;
    if bytes[i] == b'+' || bytes[i] == b'-' {
        i += 1;
    }
    if i >= bytes.len() || !bytes[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < bytes.len() && bytes[i] == b':' {
        i += 1;
        // [0-5]?[0-9]
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let digits = &bytes[start..i];
        let ok = match digits.len() {
            1 => true,
            2 => digits[0] <= b'5',
            _ => false,
        };
        if !ok {
            // A 2-digit group like "7x" could also match as one digit then
            // fail later; the regex would backtrack to one digit, which then
            // must be followed by ':' '.' or end.
            if digits.len() == 2 {
                i = start + 1;
            } else {
                return false;
            }
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_') {
            i += 1;
        }
    }
    i == bytes.len()
}

#[derive(Debug, Default)]
struct Analysis {
    multiline: bool,
    flow_plain_allowed: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// go-yaml's `is_printable`, expressed on code points. Note that it rejects
/// every character outside the Basic Multilingual Plane.
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn analyze_scalar(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain_allowed: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let mut leading_space = false;
    let mut leading_break = false;
    let mut trailing_space = false;
    let mut trailing_break = false;
    let mut break_space = false;
    let mut space_break = false;
    let mut previous_space = false;
    let mut previous_break = false;

    if value.starts_with("---") || value.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let chars: Vec<char> = value.chars().collect();
    let mut preceded_by_whitespace = true;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blank(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                '?' | ':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                '-' if followed_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => flow_indicators = true,
                ':' => {
                    flow_indicators = true;
                    if followed_by_whitespace {
                        block_indicators = true;
                    }
                }
                '#' if preceded_by_whitespace => {
                    flow_indicators = true;
                    block_indicators = true;
                }
                _ => {}
            }
        }
        // The emitter runs in unicode mode, so only non-printables count.
        if !is_printable(c) {
            special_characters = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i + 1 == chars.len() {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i + 1 == chars.len() {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c);
    }

    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain_allowed: true,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks {
        a.flow_plain_allowed = false;
        a.block_plain_allowed = false;
    }
    if flow_indicators {
        a.flow_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn select_style(requested: Style, a: &Analysis, value: &str, simple_key: bool) -> Style {
    let mut style = requested;
    if simple_key && a.multiline {
        style = Style::DoubleQuoted;
    }
    if style == Style::Plain {
        if !a.block_plain_allowed {
            style = Style::SingleQuoted;
        }
        if value.is_empty() && simple_key {
            style = Style::SingleQuoted;
        }
    }
    if style == Style::SingleQuoted && !a.single_quoted_allowed {
        style = Style::DoubleQuoted;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::DoubleQuoted;
    }
    style
}

/// go-yaml v2's map key order: numbers before strings, letters compared as
/// runes, and runs of digits compared numerically.
pub fn natural_key_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let less = |x: bool| if x { Ordering::Less } else { Ordering::Greater };
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return less(bl);
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ar[j].is_numeric() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_numeric() {
            an = an.wrapping_mul(10).wrapping_add(digit_value(ar[ai]));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_numeric() {
            bn = bn.wrapping_mul(10).wrapping_add(digit_value(br[bi]));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

/// Go computes `int64(r - '0')` for any Unicode digit; mirror that.
fn digit_value(c: char) -> i64 {
    (c as i64) - ('0' as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quoting_matches_go_yaml_v2() {
        let v = json!({
            "colon": "a: b", "e": "", "flt": "1.5", "hex": "0x1F", "list": "[1]",
            "n": null, "num": "0123", "on": "on", "tab": "a\tb", "trailsp": "abc ",
            "uni": "héllo", "w": "multi\nline\n", "y": "single", "yesval": "yes", "z": "true",
            "date": "2001-12-14", "dash": "-", "tilde": "~", "b60": "1:20",
        });
        let out = to_yaml_document(&v);
        let expected = "b60: \"1:20\"\ncolon: 'a: b'\ndash: '-'\ndate: \"2001-12-14\"\ne: \"\"\nflt: \"1.5\"\nhex: \"0x1F\"\nlist: '[1]'\n\"n\": null\nnum: \"0123\"\n\"on\": \"on\"\ntab: \"a\\tb\"\ntilde: \"~\"\ntrailsp: 'abc '\nuni: héllo\nw: |\n  multi\n  line\n\"y\": single\nyesval: \"yes\"\nz: \"true\"\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn nested_structures_and_folding() {
        let v = json!({
            "a": {"b": [1, {"c": "d", "e": []}, [2, 3]], "f": {}},
            "long": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb ccccccccccccccccccccccccccccccccc",
        });
        let out = to_yaml_document(&v);
        let expected = "a:\n  b:\n  - 1\n  - c: d\n    e: []\n  - - 2\n    - 3\n  f: {}\nlong: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n  ccccccccccccccccccccccccccccccccc\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn natural_order() {
        let mut keys = vec!["a10", "a9", "A", "_x", "-x", "123", "Yes", "ali"];
        keys.sort_by(|a, b| natural_key_cmp(a, b));
        assert_eq!(
            keys,
            vec!["-x", "_x", "123", "A", "Yes", "a9", "a10", "ali"]
        );
    }

    #[test]
    fn literal_chomping() {
        let v = json!({"a": "x\n\n", "b": "x\ny", "c": " lead\n"});
        assert_eq!(
            to_yaml_document(&v),
            "a: |+\n  x\n\nb: |-\n  x\n  y\nc: |2\n   lead\n"
        );
    }
}
