//! Building the syntax tree from tokens, with the checks Go's parser makes
//! (functions and variables defined, `break` inside `range`, ...).

use std::collections::BTreeMap;
use std::fmt;

use super::lex::{Tok, Token, go_quote, lex};

/// Deepest nesting of blocks and parentheses accepted, so that a hostile
/// template cannot exhaust the stack.
const MAX_NESTING: usize = 100;

#[derive(Clone, Debug)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Template {
        pos: usize,
        name: String,
        pipe: Option<Pipe>,
    },
    Break,
    Continue,
}

#[derive(Clone, Debug)]
pub(crate) struct Control {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Vec<Node>,
}

#[derive(Clone, Debug)]
pub(crate) struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Clone, Debug)]
pub(crate) struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Clone, Debug)]
pub(crate) enum ArgKind {
    /// `.A.B`: the field names.
    Field(Vec<String>),
    /// `$x.A.B`: the variable and field names.
    Variable(String, Vec<String>),
    /// `(pipe).A.B`
    Chain(Box<Arg>, Vec<String>),
    Dot,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string literal: value and source text.
    Str(String, String),
    /// A function name.
    Ident(String),
    Pipe(Pipe),
}

#[derive(Clone, Debug)]
pub(crate) struct Arg {
    pub pos: usize,
    /// Source text of a number literal (Go prints it back as written).
    pub text: Option<String>,
    pub kind: ArgKind,
}

/// A parse failure: line and Go's message.
#[derive(Debug)]
pub(crate) struct ParseError {
    pub line: usize,
    pub message: String,
}

/// The parsed template: its main body and the templates it defines.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub root: Vec<Node>,
    pub defined: BTreeMap<String, Vec<Node>>,
}

enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}

struct Parser<'f> {
    tokens: Vec<Token>,
    at: usize,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    defined: BTreeMap<String, Vec<Node>>,
    has_function: &'f dyn Fn(&str) -> bool,
}

/// Parses template text; `has_function` says which names are functions.
pub(crate) fn parse(text: &str, has_function: &dyn Fn(&str) -> bool) -> Result<Parsed, ParseError> {
    let tokens = lex(text);
    let mut p = Parser {
        tokens,
        at: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        defined: BTreeMap::new(),
        has_function,
    };
    let mut root = Vec::new();
    loop {
        if p.peek().kind == Tok::Eof {
            break;
        }
        if p.peek().kind == Tok::LeftDelim {
            let save = p.at;
            p.next();
            if p.peek_non_space().kind == Tok::Keyword("define") {
                p.next_non_space();
                p.definition()?;
                continue;
            }
            p.at = save;
        }
        match p.text_or_action()? {
            Item::Node(node) => root.push(node),
            Item::End(line) => return Err(p.error_at(line, "unexpected {{end}}")),
            Item::Else(line) => return Err(p.error_at(line, "unexpected {{else}}")),
        }
    }
    Ok(Parsed {
        root,
        defined: p.defined,
    })
}

/// Go's description of a token in "unexpected ..." messages.
fn describe(kind: &Tok) -> String {
    let text = match kind {
        Tok::Eof => return "EOF".into(),
        Tok::Error(message) => return message.clone(),
        Tok::Keyword(k) => return format!("<{k}>"),
        Tok::Text(t) => t.clone(),
        Tok::LeftDelim => "{{".into(),
        Tok::RightDelim => "}}".into(),
        Tok::Space => " ".into(),
        Tok::Ident(s) | Tok::Field(s) | Tok::Variable(s) | Tok::Number(s) | Tok::CharConst(s) => {
            s.clone()
        }
        Tok::Dot => ".".into(),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Str(_, raw) => raw.clone(),
        Tok::LeftParen => "(".into(),
        Tok::RightParen => ")".into(),
        Tok::Pipe => "|".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Comma => ",".into(),
        Tok::Char(c) => c.to_string(),
    };
    if text.chars().count() > 10 {
        let short: String = text.chars().take(10).collect();
        format!("{}...", go_quote(&short))
    } else {
        go_quote(&text)
    }
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        // Reading past the end keeps returning EOF; one step back still lands on it.
        self.at = (self.at + 1).min(self.tokens.len());
        token
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.kind != Tok::Space {
                return token;
            }
        }
    }

    /// Skips spaces and returns the next token without consuming it.
    fn peek_non_space(&mut self) -> Token {
        while self.peek().kind == Tok::Space {
            self.at += 1;
        }
        self.peek().clone()
    }

    fn error_at(&self, line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }

    fn unexpected(&self, token: &Token, context: &str) -> ParseError {
        if let Tok::Error(message) = &token.kind {
            return self.error_at(token.line, message.clone());
        }
        self.error_at(
            token.line,
            format!("unexpected {} in {}", describe(&token.kind), context),
        )
    }

    fn enter(&mut self, line: usize) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.error_at(line, format!("nesting deeper than {MAX_NESTING}")));
        }
        Ok(())
    }

    fn expect_right_delim(&mut self, context: &str) -> Result<(), ParseError> {
        let token = self.next_non_space();
        if token.kind != Tok::RightDelim {
            return Err(self.unexpected(&token, context));
        }
        Ok(())
    }

    fn definition(&mut self) -> Result<(), ParseError> {
        let token = self.next_non_space();
        let Tok::Str(name, _) = token.kind.clone() else {
            return Err(self.unexpected(&token, "define clause"));
        };
        self.expect_right_delim("define clause")?;
        let outer_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let (list, end) = self.item_list()?;
        self.vars = outer_vars;
        if let Item::Else(line) = end {
            return Err(self.error_at(line, "unexpected {{else}} in define clause"));
        }
        self.add_definition(name, list, token.line)
    }

    fn add_definition(
        &mut self,
        name: String,
        list: Vec<Node>,
        line: usize,
    ) -> Result<(), ParseError> {
        let is_empty = |l: &[Node]| {
            l.iter()
                .all(|n| matches!(n, Node::Text(t) if t.trim().is_empty()))
        };
        match self.defined.get(&name) {
            Some(old) if !is_empty(old) && !is_empty(&list) => Err(self.error_at(
                line,
                format!(
                    "template: multiple definition of template {}",
                    go_quote(&name)
                ),
            )),
            Some(old) if !is_empty(old) => Ok(()),
            _ => {
                self.defined.insert(name, list);
                Ok(())
            }
        }
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> Result<(Vec<Node>, Item), ParseError> {
        let mut list = Vec::new();
        loop {
            let token = self.peek_non_space();
            match &token.kind {
                Tok::Eof => return Err(self.error_at(token.line, "unexpected EOF")),
                Tok::Error(message) => return Err(self.error_at(token.line, message.clone())),
                _ => {}
            }
            match self.text_or_action()? {
                Item::Node(node) => list.push(node),
                end => return Ok((list, end)),
            }
        }
    }

    fn text_or_action(&mut self) -> Result<Item, ParseError> {
        let token = self.next_non_space();
        match token.kind {
            Tok::Text(text) => Ok(Item::Node(Node::Text(text))),
            Tok::LeftDelim => self.action(),
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> Result<Item, ParseError> {
        let token = self.next_non_space();
        match token.kind {
            Tok::Keyword("block") => self.block(&token).map(Item::Node),
            Tok::Keyword("break") | Tok::Keyword("continue") => {
                let is_break = token.kind == Tok::Keyword("break");
                let word = if is_break { "break" } else { "continue" };
                if self.range_depth == 0 {
                    return Err(
                        self.error_at(token.line, format!("{{{{{word}}}}} outside {{{{range}}}}"))
                    );
                }
                self.expect_right_delim(word)?;
                Ok(Item::Node(if is_break {
                    Node::Break
                } else {
                    Node::Continue
                }))
            }
            Tok::Keyword("else") => {
                let next = self.peek_non_space();
                if matches!(next.kind, Tok::Keyword("if") | Tok::Keyword("with")) {
                    return Ok(Item::Else(token.line));
                }
                self.expect_right_delim("else")?;
                Ok(Item::Else(token.line))
            }
            Tok::Keyword("end") => {
                self.expect_right_delim("end")?;
                Ok(Item::End(token.line))
            }
            Tok::Keyword("if") => Ok(Item::Node(Node::If(self.control("if", token.line)?))),
            Tok::Keyword("range") => {
                Ok(Item::Node(Node::Range(self.control("range", token.line)?)))
            }
            Tok::Keyword("with") => Ok(Item::Node(Node::With(self.control("with", token.line)?))),
            Tok::Keyword("template") => self.template_call(&token).map(Item::Node),
            _ => {
                self.at -= 1;
                Ok(Item::Node(Node::Action(
                    self.pipeline("command", &Tok::RightDelim)?,
                )))
            }
        }
    }

    fn control(&mut self, context: &str, line: usize) -> Result<Control, ParseError> {
        self.enter(line)?;
        let vars_mark = self.vars.len();
        let pipe = self.pipeline(context, &Tok::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = Vec::new();
        if let Item::Else(else_line) = end {
            let chained = match self.peek().kind {
                Tok::Keyword("if") if context == "if" => true,
                Tok::Keyword("with") if context == "with" => true,
                _ => false,
            };
            if chained {
                self.next();
                let inner = self.control(context, else_line)?;
                else_list.push(if context == "if" {
                    Node::If(inner)
                } else {
                    Node::With(inner)
                });
            } else {
                let (list, end) = self.item_list()?;
                else_list = list;
                if let Item::Else(line) = end {
                    return Err(self.error_at(line, "expected end; found {{else}}"));
                }
            }
        }
        self.vars.truncate(vars_mark);
        self.nesting -= 1;
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, context: &str) -> Result<String, ParseError> {
        let token = self.next_non_space();
        match token.kind {
            Tok::Str(name, _) => Ok(name),
            _ => Err(self.unexpected(&token, context)),
        }
    }

    fn template_call(&mut self, token: &Token) -> Result<Node, ParseError> {
        let name = self.template_name("template clause")?;
        let pipe = if self.peek_non_space().kind == Tok::RightDelim {
            self.next_non_space();
            None
        } else {
            Some(self.pipeline("template clause", &Tok::RightDelim)?)
        };
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe,
        })
    }

    fn block(&mut self, token: &Token) -> Result<Node, ParseError> {
        self.enter(token.line)?;
        let name = self.template_name("block clause")?;
        let pipe = self.pipeline("block clause", &Tok::RightDelim)?;
        let outer_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let outer_range = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = outer_vars;
        self.range_depth = outer_range;
        if let Item::Else(line) = end {
            return Err(self.error_at(line, "unexpected {{else}} in block clause"));
        }
        self.add_definition(name.clone(), list, token.line)?;
        self.nesting -= 1;
        Ok(Node::Template {
            pos: token.pos,
            name,
            pipe: Some(pipe),
        })
    }

    fn pipeline(&mut self, context: &str, end: &Tok) -> Result<Pipe, ParseError> {
        let first = self.peek_non_space();
        let mut pipe = Pipe {
            pos: first.pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (range only).
        loop {
            let save = self.at;
            let token = self.peek_non_space();
            let Tok::Variable(name) = token.kind.clone() else {
                break;
            };
            self.next_non_space();
            let after = self.next_non_space();
            match after.kind {
                Tok::Declare | Tok::Assign => {
                    pipe.is_assign = after.kind == Tok::Assign;
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    break;
                }
                Tok::Comma => {
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    if context == "range" && pipe.decl.len() < 2 {
                        if matches!(
                            self.peek_non_space().kind,
                            Tok::Variable(_) | Tok::RightDelim | Tok::RightParen
                        ) {
                            continue;
                        }
                        return Err(
                            self.error_at(after.line, "range can only initialize variables")
                        );
                    }
                    return Err(
                        self.error_at(after.line, format!("too many declarations in {context}"))
                    );
                }
                _ => {
                    self.at = save;
                    break;
                }
            }
        }
        loop {
            let token = self.next_non_space();
            if &token.kind == end {
                break;
            }
            match token.kind {
                Tok::Bool(_)
                | Tok::CharConst(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::Str(..)
                | Tok::Variable(_)
                | Tok::LeftParen => {
                    self.at -= 1;
                    pipe.cmds.push(self.command()?);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
        let line = self.tokens[self.at.saturating_sub(1)].line;
        if pipe.cmds.is_empty() {
            return Err(self.error_at(line, format!("missing value for {context}")));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args.first().map(|a| &a.kind),
                Some(
                    ArgKind::Bool(_)
                        | ArgKind::Dot
                        | ArgKind::Nil
                        | ArgKind::Int(_)
                        | ArgKind::Float(_)
                        | ArgKind::Str(..)
                )
            ) {
                return Err(self.error_at(
                    line,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(pipe)
    }

    fn command(&mut self) -> Result<Command, ParseError> {
        let pos = self.peek_non_space().pos;
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(arg) = self.operand()? {
                args.push(arg);
            }
            let token = self.next();
            match token.kind {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RightParen => self.at -= 1,
                Tok::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            let line = self.peek().line;
            return Err(self.error_at(line, "empty command"));
        }
        Ok(Command { pos, args })
    }

    fn operand(&mut self) -> Result<Option<Arg>, ParseError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Tok::Field(name) = &self.peek().kind {
            fields.push(name[1..].to_string());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        let pos = term.pos;
        let kind = match term.kind {
            ArgKind::Field(mut names) => {
                names.extend(fields);
                ArgKind::Field(names)
            }
            ArgKind::Variable(name, mut names) => {
                names.extend(fields);
                ArgKind::Variable(name, names)
            }
            ArgKind::Bool(_)
            | ArgKind::Str(..)
            | ArgKind::Int(_)
            | ArgKind::Float(_)
            | ArgKind::Nil
            | ArgKind::Dot => {
                let line = self.tokens[self.at.saturating_sub(1)].line;
                return Err(self.error_at(
                    line,
                    format!("unexpected . after term {}", go_quote(&term_text(&term))),
                ));
            }
            _ => ArgKind::Chain(Box::new(term), fields),
        };
        Ok(Some(Arg {
            pos,
            text: None,
            kind,
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, ParseError> {
        let token = self.next_non_space();
        let arg = |kind| Arg {
            pos: token.pos,
            text: None,
            kind,
        };
        let kind = match token.kind.clone() {
            Tok::Ident(name) => {
                if !(self.has_function)(&name) {
                    return Err(self.error_at(
                        token.line,
                        format!("function {} not defined", go_quote(&name)),
                    ));
                }
                ArgKind::Ident(name)
            }
            Tok::Dot => ArgKind::Dot,
            Tok::Nil => ArgKind::Nil,
            Tok::Variable(name) => {
                let base = name.split('.').next().unwrap_or(&name).to_string();
                if !self.vars.contains(&base) {
                    return Err(self.error_at(
                        token.line,
                        format!("undefined variable {}", go_quote(&base)),
                    ));
                }
                ArgKind::Variable(base, Vec::new())
            }
            Tok::Field(name) => ArgKind::Field(vec![name[1..].to_string()]),
            Tok::Bool(b) => ArgKind::Bool(b),
            Tok::Number(text) => {
                let kind = parse_number(&text).ok_or_else(|| {
                    self.error_at(
                        token.line,
                        format!("illegal number syntax: {}", go_quote(&text)),
                    )
                })?;
                return Ok(Some(Arg {
                    pos: token.pos,
                    text: Some(text),
                    kind,
                }));
            }
            Tok::CharConst(text) => {
                let value = char_value(&text).ok_or_else(|| {
                    self.error_at(token.line, format!("malformed character constant: {text}"))
                })?;
                return Ok(Some(Arg {
                    pos: token.pos,
                    text: Some(text),
                    kind: ArgKind::Int(i64::from(value)),
                }));
            }
            Tok::LeftParen => {
                self.enter(token.line)?;
                let pipe = self.pipeline("parenthesized pipeline", &Tok::RightParen)?;
                self.nesting -= 1;
                ArgKind::Pipe(pipe)
            }
            Tok::Str(value, raw) => ArgKind::Str(value, raw),
            _ => {
                self.at -= 1;
                return Ok(None);
            }
        };
        Ok(Some(arg(kind)))
    }
}

fn term_text(arg: &Arg) -> String {
    arg.to_string()
}

fn char_value(text: &str) -> Option<u32> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    if inner == "\"" {
        return Some('"' as u32);
    }
    if inner == "\\'" {
        return Some('\'' as u32);
    }
    let decoded = super::lex::unquote(&format!("\"{inner}\""))?;
    let mut chars = decoded.chars();
    let c = chars.next()?;
    chars.next().is_none().then_some(c as u32)
}

/// A number literal as Go's parser reads it: integers stay integers,
/// anything with a fraction or exponent is a float.
fn parse_number(text: &str) -> Option<ArgKind> {
    let clean: String = text.chars().filter(|&c| c != '_').collect();
    let (negative, body) = match clean.as_bytes().first() {
        Some(b'-') => (true, &clean[1..]),
        Some(b'+') => (false, &clean[1..]),
        _ => (false, clean.as_str()),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let radix_int = if let Some(hex) = lower.strip_prefix("0x") {
        if hex.contains(['.', 'p']) {
            return None;
        }
        i64::from_str_radix(hex, 16).ok()
    } else if let Some(oct) = lower.strip_prefix("0o") {
        i64::from_str_radix(oct, 8).ok()
    } else if let Some(bin) = lower.strip_prefix("0b") {
        i64::from_str_radix(bin, 2).ok()
    } else if body.contains(['.', 'e', 'E']) {
        let f: f64 = body.parse().ok()?;
        return Some(ArgKind::Float(if negative { -f } else { f }));
    } else if body.len() > 1 && body.starts_with('0') {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    let value = radix_int?;
    Some(ArgKind::Int(if negative { -value } else { value }))
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |f: &mut fmt::Formatter<'_>, names: &[String]| -> fmt::Result {
            for name in names {
                write!(f, ".{name}")?;
            }
            Ok(())
        };
        if let Some(text) = &self.text {
            return f.write_str(text);
        }
        match &self.kind {
            ArgKind::Field(names) => fields(f, names),
            ArgKind::Variable(name, names) => {
                f.write_str(name)?;
                fields(f, names)
            }
            ArgKind::Chain(base, names) => {
                write!(f, "{base}")?;
                fields(f, names)
            }
            ArgKind::Dot => f.write_str("."),
            ArgKind::Nil => f.write_str("nil"),
            ArgKind::Bool(b) => write!(f, "{b}"),
            ArgKind::Int(i) => write!(f, "{i}"),
            ArgKind::Float(x) => write!(f, "{x}"),
            ArgKind::Str(_, raw) => f.write_str(raw),
            ArgKind::Ident(name) => f.write_str(name),
            ArgKind::Pipe(pipe) => write!(f, "({pipe})"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, arg) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{arg}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            f.write_str(&self.decl.join(", "))?;
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, cmd) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{cmd}")?;
        }
        Ok(())
    }
}
