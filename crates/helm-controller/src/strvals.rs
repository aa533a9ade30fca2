//! Helm's `--set` syntax (`a.b[0].c=value,x=y`), which `valuesFrom[].targetPath`
//! uses to place a single value: dots nest maps (`\.` escapes a dot),
//! `[N]` indexes lists (growing them with nulls), commas separate
//! assignments (`\,` escapes one), `{a,b}` is a list, and values are typed as
//! helm types them (`true`/`false`, `null`, integers without a leading zero,
//! everything else a string). String mode (`--set-string`) keeps every value a
//! string; literal mode (`--set-literal`) takes everything after the first `=`
//! verbatim.

use serde_json::{Map, Value};

/// Helm's cap on a list index in `--set`.
const MAX_INDEX: usize = 65_536;

/// How values are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `--set`: typed values.
    Typed,
    /// `--set-string`: string values.
    String,
    /// `--set-literal`: the rest of the input is one string value.
    Literal,
}

/// Why an assignment could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// Parses `input` (`path=value[,path=value...]`) into `values`.
pub fn parse_into(
    input: &str,
    values: &mut Map<String, Value>,
    mode: Mode,
) -> Result<(), ParseError> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
        mode,
    };
    while !parser.at_end() {
        parser.assignment(values)?;
    }
    Ok(())
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    mode: Mode,
}

/// Where a key ended.
enum KeyEnd {
    Equals,
    Dot,
    Bracket,
    Comma,
    End,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.chars.get(self.pos).copied();
        self.pos += 1;
        c
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// Reads a key up to `=`, `.`, `[` or `,`, honouring `\` escapes.
    fn key(&mut self) -> (String, KeyEnd) {
        let mut key = String::new();
        while let Some(c) = self.next() {
            match c {
                '\\' => {
                    if let Some(escaped) = self.next() {
                        key.push(escaped);
                    }
                }
                '=' => return (key, KeyEnd::Equals),
                '.' => return (key, KeyEnd::Dot),
                '[' => return (key, KeyEnd::Bracket),
                ',' => return (key, KeyEnd::Comma),
                other => key.push(other),
            }
        }
        (key, KeyEnd::End)
    }

    /// One `path=value` into `data`, consuming a trailing comma.
    fn assignment(&mut self, data: &mut Map<String, Value>) -> Result<(), ParseError> {
        let (key, end) = self.key();
        match end {
            KeyEnd::Equals => {
                let value = self.value()?;
                data.insert(key, value);
                Ok(())
            }
            KeyEnd::Dot => {
                if key.is_empty() {
                    return Err(ParseError("key map with no name".into()));
                }
                let mut inner = match data.remove(&key) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let result = self.assignment(&mut inner);
                data.insert(key, Value::Object(inner));
                result
            }
            KeyEnd::Bracket => {
                if key.is_empty() {
                    return Err(ParseError("key list with no name".into()));
                }
                let list = match data.remove(&key) {
                    Some(Value::Array(list)) => list,
                    _ => Vec::new(),
                };
                let list = self.list_assignment(list)?;
                data.insert(key, Value::Array(list));
                Ok(())
            }
            KeyEnd::Comma | KeyEnd::End => {
                if key.is_empty() && matches!(end, KeyEnd::End) {
                    return Ok(());
                }
                Err(ParseError(format!("key \"{key}\" has no value")))
            }
        }
    }

    /// After `name[`: `N]` then `=value`, `.rest` or `[M]...`.
    fn list_assignment(&mut self, mut list: Vec<Value>) -> Result<Vec<Value>, ParseError> {
        let index = self.index()?;
        match self.next() {
            Some('=') => {
                let value = self.value()?;
                set_index(&mut list, index, value);
                Ok(list)
            }
            Some('.') => {
                let mut inner = match list.get_mut(index).map(Value::take) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let result = self.assignment(&mut inner);
                set_index(&mut list, index, Value::Object(inner));
                result.map(|()| list)
            }
            Some('[') => {
                let inner = match list.get_mut(index).map(Value::take) {
                    Some(Value::Array(inner)) => inner,
                    _ => Vec::new(),
                };
                let inner = self.list_assignment(inner)?;
                set_index(&mut list, index, Value::Array(inner));
                Ok(list)
            }
            Some(other) => Err(ParseError(format!(
                "unexpected character {other:?} after list index"
            ))),
            None => Err(ParseError("list index has no value".into())),
        }
    }

    /// `N]` of a list index.
    fn index(&mut self) -> Result<usize, ParseError> {
        let mut digits = String::new();
        loop {
            match self.next() {
                Some(']') => break,
                Some(c) => digits.push(c),
                None => return Err(ParseError("unterminated list index".into())),
            }
        }
        let index: usize = digits
            .trim()
            .parse()
            .map_err(|_| ParseError(format!("invalid list index {digits:?}")))?;
        if index > MAX_INDEX {
            return Err(ParseError(format!(
                "index of {index} is greater than maximum supported index of {MAX_INDEX}"
            )));
        }
        Ok(index)
    }

    /// A value after `=`, up to an unescaped comma (or the end).
    fn value(&mut self) -> Result<Value, ParseError> {
        if self.mode == Mode::Literal {
            let rest: String = self.chars[self.pos.min(self.chars.len())..]
                .iter()
                .collect();
            self.pos = self.chars.len();
            return Ok(Value::String(rest));
        }
        if self.peek() == Some('{') {
            self.pos += 1;
            return self.inline_list();
        }
        let (text, _) = self.until(&[',']);
        Ok(self.typed(text))
    }

    /// `a,b,c}` of an inline list, then an optional comma.
    fn inline_list(&mut self) -> Result<Value, ParseError> {
        let mut items = Vec::new();
        loop {
            let (text, stop) = self.until(&[',', '}']);
            match stop {
                Some('}') => {
                    items.push(self.typed(text));
                    // A list value ends its assignment.
                    match self.next() {
                        None | Some(',') => return Ok(Value::Array(items)),
                        Some(other) => {
                            return Err(ParseError(format!(
                                "unexpected character {other:?} after list value"
                            )));
                        }
                    }
                }
                Some(_) => items.push(self.typed(text)),
                None => return Err(ParseError("list value is missing its closing '}'".into())),
            }
        }
    }

    /// Text up to one of `stops` (consumed, and returned) or the end.
    fn until(&mut self, stops: &[char]) -> (String, Option<char>) {
        let mut text = String::new();
        while let Some(c) = self.next() {
            if c == '\\' {
                if let Some(escaped) = self.next() {
                    text.push(escaped);
                }
                continue;
            }
            if stops.contains(&c) {
                return (text, Some(c));
            }
            text.push(c);
        }
        (text, None)
    }

    fn typed(&self, text: String) -> Value {
        if self.mode != Mode::Typed {
            return Value::String(text);
        }
        typed_value(text)
    }
}

/// Helm's typing of a `--set` value.
fn typed_value(text: String) -> Value {
    if text.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if text.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if text.eq_ignore_ascii_case("null") {
        return Value::Null;
    }
    if text == "0" {
        return Value::from(0);
    }
    // A leading zero keeps the value a string (helm avoids octal surprises).
    if !text.is_empty()
        && !text.starts_with('0')
        && let Ok(number) = text.parse::<i64>()
    {
        return Value::from(number);
    }
    Value::String(text)
}

fn set_index(list: &mut Vec<Value>, index: usize, value: Value) {
    if list.len() <= index {
        list.resize(index + 1, Value::Null);
    }
    list[index] = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(input: &str, mode: Mode) -> Result<Value, ParseError> {
        let mut map = Map::new();
        parse_into(input, &mut map, mode)?;
        Ok(Value::Object(map))
    }

    #[test]
    fn nested_keys_lists_and_escapes() {
        assert_eq!(
            parse("outer.inner=value", Mode::Typed),
            Ok(json!({"outer": {"inner": "value"}}))
        );
        assert_eq!(
            parse("merge.at[2]=value", Mode::Typed),
            Ok(json!({"merge": {"at": [null, null, "value"]}}))
        );
        assert_eq!(
            parse(r"nodeSelector.kubernetes\.io/role=master", Mode::Typed),
            Ok(json!({"nodeSelector": {"kubernetes.io/role": "master"}}))
        );
        assert_eq!(
            parse("a.b[0].c=x", Mode::Typed),
            Ok(json!({"a": {"b": [{"c": "x"}]}}))
        );
        assert_eq!(
            parse("a[1][0]=x", Mode::Typed),
            Ok(json!({"a": [null, ["x"]]}))
        );
        assert_eq!(
            parse(r"name=value1\,value2", Mode::Typed),
            Ok(json!({"name": "value1,value2"}))
        );
        assert_eq!(
            parse("name={a,b,c}", Mode::Typed),
            Ok(json!({"name": ["a", "b", "c"]}))
        );
        assert_eq!(
            parse("a=1,b.c=2", Mode::Typed),
            Ok(json!({"a": 1, "b": {"c": 2}}))
        );
    }

    #[test]
    fn values_are_typed_like_helm() {
        assert_eq!(
            parse("a=true,b=FALSE,c=null,d=0,e=42,f=007,g=1.5,h=", Mode::Typed),
            Ok(
                json!({"a": true, "b": false, "c": null, "d": 0, "e": 42, "f": "007", "g": "1.5", "h": ""})
            )
        );
        assert_eq!(
            parse("a=true,b=42", Mode::String),
            Ok(json!({"a": "true", "b": "42"}))
        );
        assert_eq!(
            parse("a.b=x,y=z", Mode::Literal),
            Ok(json!({"a": {"b": "x,y=z"}}))
        );
    }

    #[test]
    fn merges_into_existing_values() {
        let mut map = json!({"nested": {"configuration": ["list", "item", "option"], "keep": 1}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        parse_into("nested.configuration[1]=foo", &mut map, Mode::Typed).expect("parses");
        assert_eq!(
            Value::Object(map),
            json!({"nested": {"configuration": ["list", "foo", "option"], "keep": 1}})
        );
    }

    #[test]
    fn malformed_assignments_fail() {
        assert!(parse("novalue", Mode::Typed).is_err());
        assert!(parse("a=b,c", Mode::Typed).is_err());
        assert!(parse("a[x]=1", Mode::Typed).is_err());
        assert!(parse("a[70000]=1", Mode::Typed).is_err());
        assert!(parse("a={b,c", Mode::Typed).is_err());
        assert!(parse(".a=1", Mode::Typed).is_err());
    }
}
