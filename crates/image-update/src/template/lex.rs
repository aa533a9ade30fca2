//! Splitting template text into text runs and action tokens, with Go's
//! trim markers (`{{- ` and ` -}}`) and comments applied as it goes.

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub kind: Tok,
    /// Byte offset in the template text.
    pub pos: usize,
    /// 1-based line.
    pub line: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Keyword(&'static str),
    Field(String),
    Variable(String),
    Dot,
    Bool(bool),
    Nil,
    /// A quoted string: its value and its source text.
    Str(String, String),
    Number(String),
    CharConst(String),
    LeftParen,
    RightParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    /// Another printable ASCII character (Go's itemChar).
    Char(char),
    /// Lexing stopped here; the message says why.
    Error(String),
    Eof,
}

/// A lexing error: line and Go's message.
struct LexError {
    line: usize,
    message: String,
}

const KEYWORDS: &[&str] = &[
    "block", "break", "continue", "define", "else", "end", "if", "range", "template", "with",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    tokens: Vec<Token>,
}

/// Tokenises a whole template. A lexing error becomes an `Error` token
/// where it happened, so that the parser reports errors in text order.
pub(crate) fn lex(src: &str) -> Vec<Token> {
    let mut lx = Lexer {
        src,
        pos: 0,
        tokens: Vec::new(),
    };
    let (kind, line) = match lx.run() {
        Ok(()) => (Tok::Eof, lx.line_at(src.len())),
        Err(e) => (Tok::Error(e.message), e.line),
    };
    lx.tokens.push(Token {
        kind,
        pos: src.len(),
        line,
    });
    lx.tokens
}

impl Lexer<'_> {
    fn line_at(&self, pos: usize) -> usize {
        1 + self.src.as_bytes()[..pos.min(self.src.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    fn emit(&mut self, kind: Tok, start: usize) {
        let line = self.line_at(start);
        self.tokens.push(Token {
            kind,
            pos: start,
            line,
        });
    }

    fn fail<T>(&self, at: usize, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            line: self.line_at(at),
            message: message.into(),
        })
    }

    fn skip_leading_space(&mut self) {
        while self.pos < self.src.len() && is_space(self.src.as_bytes()[self.pos]) {
            self.pos += 1;
        }
    }

    /// `" -}}"` or `"}}"` at the current position: (is delimiter, trims).
    fn at_right_delim(&self) -> (bool, bool) {
        let rest = self.rest().as_bytes();
        if rest.len() >= 4 && is_space(rest[0]) && rest[1] == b'-' && &rest[2..4] == b"}}" {
            return (true, true);
        }
        (rest.starts_with(b"}}"), false)
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            let Some(found) = self.rest().find("{{") else {
                if self.pos < self.src.len() {
                    let text = self.rest().to_string();
                    self.emit(Tok::Text(text), self.pos);
                    self.pos = self.src.len();
                }
                return Ok(());
            };
            let delim_at = self.pos + found;
            let after = &self.src.as_bytes()[delim_at + 2..];
            let trims_left = after.len() >= 2 && after[0] == b'-' && is_space(after[1]);
            let mut text = &self.src[self.pos..delim_at];
            if trims_left {
                text = text.trim_end_matches([' ', '\t', '\r', '\n']);
            }
            if !text.is_empty() {
                let text = text.to_string();
                self.emit(Tok::Text(text), self.pos);
            }
            self.pos = delim_at + 2;
            if trims_left {
                self.pos += 2;
            }
            if self.rest().starts_with("/*") {
                self.comment(delim_at)?;
                continue;
            }
            self.emit(Tok::LeftDelim, delim_at);
            self.inside_action(delim_at)?;
        }
    }

    fn comment(&mut self, delim_at: usize) -> Result<(), LexError> {
        let Some(end) = self.rest()[2..].find("*/") else {
            return self.fail(delim_at, "unclosed comment");
        };
        self.pos += 2 + end + 2;
        let (delim, trims) = self.at_right_delim();
        if !delim {
            return self.fail(delim_at, "comment ends before closing delimiter");
        }
        self.pos += if trims { 4 } else { 2 };
        if trims {
            self.skip_leading_space();
        }
        Ok(())
    }

    fn inside_action(&mut self, delim_at: usize) -> Result<(), LexError> {
        let mut paren_depth = 0usize;
        loop {
            let (delim, trims) = self.at_right_delim();
            if delim {
                if paren_depth > 0 {
                    return self.fail(self.pos, "unclosed left paren");
                }
                let start = self.pos;
                self.pos += if trims { 4 } else { 2 };
                self.emit(Tok::RightDelim, start);
                if trims {
                    self.skip_leading_space();
                }
                return Ok(());
            }
            let start = self.pos;
            let Some(c) = self.rest().chars().next() else {
                return self.fail(delim_at, "unclosed action");
            };
            match c {
                ' ' | '\t' | '\r' | '\n' => {
                    while self.pos < self.src.len() && is_space(self.src.as_bytes()[self.pos]) {
                        // A space that starts " -}}" belongs to the delimiter.
                        if self.at_right_delim() == (true, true) {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos > start {
                        self.emit(Tok::Space, start);
                    }
                }
                '=' => {
                    self.pos += 1;
                    self.emit(Tok::Assign, start);
                }
                ':' => {
                    if !self.rest().starts_with(":=") {
                        return self.fail(start, "expected :=");
                    }
                    self.pos += 2;
                    self.emit(Tok::Declare, start);
                }
                '|' => {
                    self.pos += 1;
                    self.emit(Tok::Pipe, start);
                }
                ',' => {
                    self.pos += 1;
                    self.emit(Tok::Comma, start);
                }
                '(' => {
                    self.pos += 1;
                    paren_depth += 1;
                    self.emit(Tok::LeftParen, start);
                }
                ')' => {
                    if paren_depth == 0 {
                        return self.fail(start, "unexpected right paren");
                    }
                    paren_depth -= 1;
                    self.pos += 1;
                    self.emit(Tok::RightParen, start);
                }
                '"' => self.quoted(start)?,
                '`' => self.raw_quoted(start)?,
                '\'' => self.char_const(start)?,
                '$' => self.field_or_variable(start, true)?,
                '.' => {
                    let next = self.rest()[1..].chars().next();
                    if matches!(next, Some(d) if d.is_ascii_digit()) {
                        self.number(start)?;
                    } else {
                        self.field_or_variable(start, false)?;
                    }
                }
                '+' | '-' | '0'..='9' => self.number(start)?,
                c if is_alnum(c) => self.identifier(start)?,
                c if c.is_ascii_graphic() => {
                    self.pos += 1;
                    self.emit(Tok::Char(c), start);
                }
                c => {
                    return self.fail(
                        start,
                        format!("unrecognized character in action: {}", go_rune(c)),
                    );
                }
            }
        }
    }

    fn at_terminator(&self) -> bool {
        let rest = self.rest();
        match rest.chars().next() {
            None => true,
            Some(' ' | '\t' | '\r' | '\n' | '.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) => rest.starts_with("}}"),
        }
    }

    fn take_alnum(&mut self) {
        let len: usize = self
            .rest()
            .chars()
            .take_while(|&c| is_alnum(c))
            .map(char::len_utf8)
            .sum();
        self.pos += len;
    }

    fn bad_char_check(&self) -> Result<(), LexError> {
        if self.at_terminator() {
            return Ok(());
        }
        let c = self.rest().chars().next().unwrap_or(' ');
        self.fail(self.pos, format!("bad character {}", go_rune(c)))
    }

    fn identifier(&mut self, start: usize) -> Result<(), LexError> {
        self.take_alnum();
        self.bad_char_check()?;
        let word = &self.src[start..self.pos];
        let kind = if let Some(kw) = KEYWORDS.iter().find(|k| **k == word) {
            Tok::Keyword(kw)
        } else {
            match word {
                "true" => Tok::Bool(true),
                "false" => Tok::Bool(false),
                "nil" => Tok::Nil,
                _ => Tok::Ident(word.to_string()),
            }
        };
        self.emit(kind, start);
        Ok(())
    }

    fn field_or_variable(&mut self, start: usize, variable: bool) -> Result<(), LexError> {
        self.pos += 1;
        if self.at_terminator() {
            let kind = if variable {
                Tok::Variable("$".into())
            } else {
                Tok::Dot
            };
            self.emit(kind, start);
            return Ok(());
        }
        self.take_alnum();
        self.bad_char_check()?;
        let word = self.src[start..self.pos].to_string();
        let kind = if variable {
            Tok::Variable(word)
        } else {
            Tok::Field(word)
        };
        self.emit(kind, start);
        Ok(())
    }

    fn number(&mut self, start: usize) -> Result<(), LexError> {
        let bytes = self.src.as_bytes();
        let mut i = self.pos;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let mut digits = "0123456789_";
        let mut exponent = b"eE";
        if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'x' | b'X')) {
            i += 2;
            digits = "0123456789abcdefABCDEF_";
            exponent = b"pP";
        } else if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'o' | b'O')) {
            i += 2;
            digits = "01234567_";
        } else if bytes.get(i) == Some(&b'0') && matches!(bytes.get(i + 1), Some(b'b' | b'B')) {
            i += 2;
            digits = "01_";
        }
        let take = |i: &mut usize, set: &str| {
            while *i < bytes.len() && set.as_bytes().contains(&bytes[*i]) {
                *i += 1;
            }
        };
        take(&mut i, digits);
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            take(&mut i, digits);
        }
        if i < bytes.len() && exponent.contains(&bytes[i]) {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
            take(&mut i, "0123456789_");
        }
        self.pos = i;
        if self.rest().chars().next().is_some_and(is_alnum) {
            let c_len = self.rest().chars().next().map_or(1, char::len_utf8);
            let text = &self.src[start..self.pos + c_len];
            return self.fail(start, format!("bad number syntax: {}", go_quote(text)));
        }
        let text = self.src[start..self.pos].to_string();
        self.emit(Tok::Number(text), start);
        Ok(())
    }

    fn char_const(&mut self, start: usize) -> Result<(), LexError> {
        let mut iter = self.src[start + 1..].char_indices();
        loop {
            match iter.next() {
                Some((_, '\\')) => {
                    if iter.next().is_none() {
                        return self.fail(start, "unterminated character constant");
                    }
                }
                Some((_, '\n')) | None => {
                    return self.fail(start, "unterminated character constant");
                }
                Some((at, '\'')) => {
                    self.pos = start + 1 + at + 1;
                    let text = self.src[start..self.pos].to_string();
                    self.emit(Tok::CharConst(text), start);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn quoted(&mut self, start: usize) -> Result<(), LexError> {
        let mut iter = self.src[start + 1..].char_indices();
        loop {
            match iter.next() {
                Some((_, '\\')) => match iter.next() {
                    Some((_, '\n')) | None => {
                        return self.fail(start, "unterminated quoted string");
                    }
                    Some(_) => {}
                },
                Some((_, '\n')) | None => return self.fail(start, "unterminated quoted string"),
                Some((at, '"')) => {
                    self.pos = start + 1 + at + 1;
                    let text = &self.src[start..self.pos];
                    let Some(value) = unquote(text) else {
                        return self.fail(start, format!("invalid syntax: {text}"));
                    };
                    let text = text.to_string();
                    self.emit(Tok::Str(value, text), start);
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    fn raw_quoted(&mut self, start: usize) -> Result<(), LexError> {
        let Some(end) = self.src[start + 1..].find('`') else {
            return self.fail(start, "unterminated raw quoted string");
        };
        self.pos = start + 1 + end + 1;
        let value = self.src[start + 1..self.pos - 1].replace('\r', "");
        let text = self.src[start..self.pos].to_string();
        self.emit(Tok::Str(value, text), start);
        Ok(())
    }
}

/// Go's `%#U` of a rune: `U+0040 '@'`.
pub(crate) fn go_rune(c: char) -> String {
    format!("U+{:04X} '{}'", c as u32, c)
}

/// Decodes a double-quoted Go string literal (strconv.Unquote).
pub(crate) fn unquote(text: &str) -> Option<String> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                let byte = u8::from_str_radix(&hex, 16).ok()?;
                // Only ASCII bytes keep the string valid UTF-8.
                out.push(char::from_u32(u32::from(byte)).filter(|c| c.is_ascii())?);
            }
            'u' => {
                let hex: String = chars.by_ref().take(4).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            'U' => {
                let hex: String = chars.by_ref().take(8).collect();
                out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
            }
            d @ '0'..='7' => {
                let rest: String = chars.by_ref().take(2).collect();
                let octal = format!("{d}{rest}");
                let byte = u8::from_str_radix(&octal, 8).ok()?;
                out.push(char::from_u32(u32::from(byte)).filter(|c| c.is_ascii())?);
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Go's `%q` of a string (strconv.Quote).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || matches!(c as u32, 0x80..=0x9f | 0xad | 0x2028 | 0x2029) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
