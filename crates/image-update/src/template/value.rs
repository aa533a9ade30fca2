//! The data a template sees: a small model of the Go values Flux hands to
//! `text/template`, with Go's printing (`fmt` `%v`), truthiness and ordering.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::rc::Rc;

/// A template value, shaped after the Go values `text/template` walks.
#[derive(Clone, Debug, Default)]
pub enum Value {
    /// No value: a missing map entry, an unset variable, Go's `nil`.
    #[default]
    Nil,
    /// A Go `bool`.
    Bool(bool),
    /// A Go `int`.
    Int(i64),
    /// A Go `float64`.
    Float(f64),
    /// A Go `string`.
    String(Rc<str>),
    /// A Go slice.
    List(Rc<List>),
    /// A Go map.
    Map(Rc<Map>),
    /// A Go struct.
    Struct(Rc<Struct>),
}

/// A slice, with the Go type name error messages show.
#[derive(Clone, Debug)]
pub struct List {
    /// Go type name (`[]update.Change`).
    pub type_name: String,
    /// The elements, in order.
    pub items: Vec<Value>,
}

/// A map: entries kept sorted by key, as Go's `range` and `fmt` visit them.
#[derive(Clone, Debug)]
pub struct Map {
    /// Go type name (`map[string]string`).
    pub type_name: String,
    /// Go type name of the keys (`string`, `update.ObjectIdentifier`).
    pub key_type: String,
    entries: Vec<(Value, Value)>,
    /// What `index` gives for a missing key (the element type's zero value).
    pub zero: Value,
}

/// A struct: named fields, methods without arguments, and an optional
/// `String()` result that printing uses instead of the fields.
#[derive(Clone, Debug)]
pub struct Struct {
    /// Go type name (`types.NamespacedName`).
    pub type_name: String,
    /// Fields in declaration order.
    pub fields: Vec<Field>,
    /// Methods without arguments, already evaluated (not printed).
    pub methods: Vec<(String, Value)>,
    /// What the type's `String()` method returns, if it has one.
    pub display: Option<String>,
}

/// One struct field.
#[derive(Clone, Debug)]
pub struct Field {
    /// Go field name.
    pub name: String,
    /// Field value.
    pub value: Value,
    /// An embedded field: its own fields are promoted.
    pub embedded: bool,
    /// JSON name from the field's tag, if any.
    pub json_name: Option<String>,
    /// The tag's `omitempty`.
    pub omit_empty: bool,
}

impl List {
    /// A list with a Go type name.
    pub fn new(type_name: impl Into<String>, items: Vec<Value>) -> Self {
        List {
            type_name: type_name.into(),
            items,
        }
    }
}

impl Map {
    /// A map from entries (later duplicates win), sorted as Go sorts keys.
    pub fn new(type_name: impl Into<String>, zero: Value, entries: Vec<(Value, Value)>) -> Self {
        let mut sorted: Vec<(Value, Value)> = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            match sorted.binary_search_by(|(k, _)| compare_keys(k, &key)) {
                Ok(at) => sorted[at].1 = value,
                Err(at) => sorted.insert(at, (key, value)),
            }
        }
        let type_name = type_name.into();
        Map {
            key_type: key_type_of(&type_name),
            type_name,
            entries: sorted,
            zero,
        }
    }

    /// Names the key type when the map's type name does not show it
    /// (a named type such as `update.ObjectChanges`).
    pub fn keyed_by(mut self, key_type: impl Into<String>) -> Self {
        self.key_type = key_type.into();
        self
    }

    /// Entries in key order.
    pub fn entries(&self) -> &[(Value, Value)] {
        &self.entries
    }

    /// The value for `key`, if present.
    pub fn get(&self, key: &Value) -> Option<&Value> {
        self.entries
            .binary_search_by(|(k, _)| compare_keys(k, key))
            .ok()
            .map(|at| &self.entries[at].1)
    }

    /// Whether keys are strings, so `.name` can look one up.
    pub fn has_string_keys(&self) -> bool {
        self.key_type == "string"
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Struct {
    /// A struct of the given Go type with no fields yet.
    pub fn new(type_name: impl Into<String>) -> Self {
        Struct {
            type_name: type_name.into(),
            fields: Vec::new(),
            methods: Vec::new(),
            display: None,
        }
    }

    /// Adds a field.
    pub fn field(mut self, name: &str, value: Value) -> Self {
        self.fields.push(Field {
            name: name.to_string(),
            value,
            embedded: false,
            json_name: None,
            omit_empty: false,
        });
        self
    }

    /// Adds a field with a JSON tag (`json:"name,omitempty"`).
    pub fn tagged_field(mut self, name: &str, value: Value, json: &str, omit_empty: bool) -> Self {
        self.fields.push(Field {
            name: name.to_string(),
            value,
            embedded: false,
            json_name: Some(json.to_string()),
            omit_empty,
        });
        self
    }

    /// Adds an embedded struct, whose fields are promoted.
    pub fn embedded(mut self, name: &str, value: Struct) -> Self {
        self.fields.push(Field {
            name: name.to_string(),
            value: Value::Struct(Rc::new(value)),
            embedded: true,
            json_name: None,
            omit_empty: false,
        });
        self
    }

    /// Adds a method without arguments, with its result.
    pub fn method(mut self, name: &str, result: Value) -> Self {
        self.methods.push((name.to_string(), result));
        self
    }

    /// Sets what `String()` returns.
    pub fn display(mut self, text: impl Into<String>) -> Self {
        self.display = Some(text.into());
        self
    }

    /// Looks up a method or a field, promoted ones included (Go's selector
    /// rule, shallowest depth first).
    pub fn lookup(&self, name: &str) -> Option<&Value> {
        if let Some((_, value)) = self.methods.iter().find(|(n, _)| n == name) {
            return Some(value);
        }
        if let Some(field) = self.fields.iter().find(|f| f.name == name) {
            return Some(&field.value);
        }
        self.fields
            .iter()
            .filter(|f| f.embedded)
            .find_map(|f| match &f.value {
                Value::Struct(inner) => inner.lookup(name),
                _ => None,
            })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(Rc::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(Rc::from(s))
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<Struct> for Value {
    fn from(s: Struct) -> Self {
        Value::Struct(Rc::new(s))
    }
}

impl From<Map> for Value {
    fn from(m: Map) -> Self {
        Value::Map(Rc::new(m))
    }
}

impl From<List> for Value {
    fn from(l: List) -> Self {
        Value::List(Rc::new(l))
    }
}

impl Value {
    /// A `[]interface {}` list.
    pub fn list(items: Vec<Value>) -> Value {
        List::new("[]interface {}", items).into()
    }

    /// A `map[string]interface {}` map.
    pub fn string_map(entries: Vec<(String, Value)>) -> Value {
        let entries = entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect();
        Map::new("map[string]interface {}", Value::Nil, entries).into()
    }

    /// Go's type name for messages (`%!d(string=x)`, "wrong type").
    pub fn type_name(&self) -> &str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::String(_) => "string",
            Value::List(l) => &l.type_name,
            Value::Map(m) => &m.type_name,
            Value::Struct(s) => &s.type_name,
        }
    }

    /// Go's truth: false, 0, "", empty lists and maps and nil are false.
    pub fn is_true(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(_) => true,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// Go's `fmt` `%v` (nil as `<nil>`).
    pub fn go_string(&self) -> String {
        let mut out = String::new();
        write_value(&mut out, self);
        out
    }
}

/// The key type in a Go map type name (`map[K]V`), empty for other names.
fn key_type_of(type_name: &str) -> String {
    let Some(inner) = type_name.strip_prefix("map[") else {
        return String::new();
    };
    let mut depth = 1;
    for (i, c) in inner.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return inner[..i].to_string();
                }
            }
            _ => {}
        }
    }
    String::new()
}

/// Appends Go's `%v` form of a value.
pub(crate) fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Nil => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => out.push_str(&format_float_g(*f)),
        Value::String(s) => out.push_str(s),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, v)) in m.entries.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push(']');
        }
        Value::Struct(s) => {
            if let Some(display) = &s.display {
                out.push_str(display);
                return;
            }
            out.push('{');
            for (i, field) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_value(out, &field.value);
            }
            out.push('}');
        }
    }
}

/// Go's `%v` of a float64.
pub(crate) fn format_float_g(f: f64) -> String {
    go_format::format_g(f)
}

/// Go's `fmtsort` order, which both `range` over a map and `fmt` use:
/// numbers and strings by value, false before true, structs field by field.
pub(crate) fn compare_keys(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Nil, Value::Nil) => Ordering::Equal,
        (Value::Nil, _) => Ordering::Less,
        (_, Value::Nil) => Ordering::Greater,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or_else(|| {
            // NaN sorts first, as in fmtsort.
            x.is_nan().cmp(&y.is_nan()).reverse()
        }),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Struct(x), Value::Struct(y)) => {
            for (fx, fy) in x.fields.iter().zip(y.fields.iter()) {
                let ord = compare_keys(&fx.value, &fy.value);
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            x.fields.len().cmp(&y.fields.len())
        }
        // Keys of one map share a type; mixed kinds only meet in odd data.
        _ => kind_rank(a).cmp(&kind_rank(b)),
    }
}

fn kind_rank(v: &Value) -> u8 {
    match v {
        Value::Nil => 0,
        Value::Bool(_) => 1,
        Value::Int(_) => 2,
        Value::Float(_) => 3,
        Value::String(_) => 4,
        Value::List(_) => 5,
        Value::Map(_) => 6,
        Value::Struct(_) => 7,
    }
}

/// Go's `==` on comparable values (also reflect.DeepEqual for `uniq`).
pub(crate) fn deep_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Float(x), Value::Float(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.items.len() == y.items.len()
                && x.items.iter().zip(&y.items).all(|(p, q)| deep_equal(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.entries
                    .iter()
                    .zip(&y.entries)
                    .all(|((k1, v1), (k2, v2))| deep_equal(k1, k2) && deep_equal(v1, v2))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.type_name == y.type_name
                && x.fields.len() == y.fields.len()
                && x.fields
                    .iter()
                    .zip(&y.fields)
                    .all(|(p, q)| deep_equal(&p.value, &q.value))
        }
        _ => false,
    }
}

/// Go's `encoding/json` of a value; `None` where Go's Marshal fails
/// (maps with non-string keys, NaN).
pub(crate) fn to_json(value: &Value, out: &mut String) -> Option<()> {
    match value {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) => {
            if !f.is_finite() {
                return None;
            }
            let abs = f.abs();
            if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                let s = format!("{:e}", f);
                let (m, e) = s.split_once('e')?;
                let e: i32 = e.parse().ok()?;
                let _ = write!(out, "{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
            } else {
                let _ = write!(out, "{f}");
            }
        }
        Value::String(s) => json_string(s, out),
        Value::List(l) => {
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                to_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, v)) in m.entries.iter().enumerate() {
                let Value::String(key) = k else {
                    return None;
                };
                if i > 0 {
                    out.push(',');
                }
                json_string(key, out);
                out.push(':');
                to_json(v, out)?;
            }
            out.push('}');
        }
        Value::Struct(s) => {
            out.push('{');
            let mut first = true;
            json_struct_fields(s, out, &mut first)?;
            out.push('}');
        }
    }
    Some(())
}

fn json_struct_fields(s: &Struct, out: &mut String, first: &mut bool) -> Option<()> {
    for field in &s.fields {
        if let (true, None, Value::Struct(inner)) = (field.embedded, &field.json_name, &field.value)
        {
            json_struct_fields(inner, out, first)?;
            continue;
        }
        if field.omit_empty && !field.value.is_true() {
            continue;
        }
        if !*first {
            out.push(',');
        }
        *first = false;
        json_string(field.json_name.as_deref().unwrap_or(&field.name), out);
        out.push(':');
        to_json(&field.value, out)?;
    }
    Some(())
}

/// A JSON string as Go writes it.
fn json_string(s: &str, out: &mut String) {
    go_format::write_string(out, s);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_percent_v() {
        assert_eq!(format_float_g(1.5), "1.5");
        assert_eq!(format_float_g(100000.0), "100000");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(1234567.0), "1.234567e+06");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(-2.25), "-2.25");
        assert_eq!(format_float_g(3.0), "3");
    }
}
