//! One pass over a YAML stream's parse events, keeping what setters need:
//! each document's object identity, every scalar with its byte span and
//! position, and every comment.

use std::ops::Range;

use granit_parser::{Event, Options, Parser, ScalarStyle, Span};

use super::SetterError;
use crate::ObjectIdentifier;

/// Where a scalar sits in its collection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A mapping key; never a setter target.
    Key,
    /// A mapping value or a sequence item.
    Value,
    /// A document's root node.
    Root,
}

/// A scalar as written in the source.
#[derive(Debug)]
pub(crate) struct Scalar {
    /// Bytes of the scalar itself: quotes included, anchor and tag excluded.
    pub span: Range<usize>,
    /// The value after unescaping and line folding.
    pub value: String,
    pub style: ScalarStyle,
    pub role: Role,
    /// Directly inside a flow collection (`[…]`, `{…}`).
    pub in_flow: bool,
    /// Index into [`Stream::documents`].
    pub document: usize,
}

/// A comment: the bytes from its `#` to the end of its line, and its text
/// after that `#`.
#[derive(Debug)]
pub(crate) struct Comment {
    pub span: Range<usize>,
    pub payload: String,
}

/// What setters know of a YAML stream.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    /// The object each document holds (fields empty where absent).
    pub documents: Vec<ObjectIdentifier>,
    /// Every scalar, in source order.
    pub scalars: Vec<Scalar>,
    /// Every comment, in source order.
    pub comments: Vec<Comment>,
}

#[derive(Clone, Copy, Debug)]
enum Frame {
    Mapping { flow: bool, expecting_key: bool },
    Sequence { flow: bool },
}

/// Which identifying field the next scalar value fills.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ApiVersion,
    Kind,
    Metadata,
    Name,
    Namespace,
}

/// Parses `text` completely. Like Flux (whose reader drops a file it cannot
/// read, markers and all), a stream with any syntax error, or with a
/// document that is neither empty nor a mapping, is an error as a whole.
pub(crate) fn scan(text: &str) -> Result<Stream, SetterError> {
    let mut options = Options::default();
    // A long run of comments must not fail an otherwise valid file.
    options.max_buffered_comment_events = usize::MAX;
    let mut stream = Stream::default();
    let mut stack: Vec<Frame> = Vec::new();
    // The identifying field the pending key names, at the depth it was seen.
    let mut pending_field: Option<(Field, usize)> = None;
    // The depth of the current document's `metadata` mapping, once entered.
    let mut metadata_depth: Option<usize> = None;

    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.map_err(|error| SetterError::InvalidYaml {
            line: error.marker().line(),
            column: error.marker().col() + 1,
            message: error.info(),
        })?;
        let range = byte_range(&span)?;
        match event {
            Event::DocumentStart(..) => {
                stream.documents.push(ObjectIdentifier {
                    api_version: String::new(),
                    kind: String::new(),
                    namespace: String::new(),
                    name: String::new(),
                });
                stack.clear();
                pending_field = None;
                metadata_depth = None;
            }
            Event::Scalar(value, style, _anchor, _tag) => {
                let role = take_role(&mut stack);
                if role == Role::Root && !is_null(&value, style) {
                    return Err(not_a_mapping(text, range.start, "scalar"));
                }
                let depth = stack.len();
                match role {
                    Role::Key => {
                        pending_field = identifying_field(&value, depth, metadata_depth);
                    }
                    Role::Value => {
                        if let Some((field, at)) = pending_field.take()
                            && at == depth
                            && !is_null(&value, style)
                            && let Some(document) = stream.documents.last_mut()
                        {
                            fill(document, field, &value);
                        }
                    }
                    Role::Root => {}
                }
                stream.scalars.push(Scalar {
                    span: range,
                    value: value.into_owned(),
                    style,
                    role,
                    in_flow: matches!(
                        stack.last(),
                        Some(Frame::Mapping { flow: true, .. } | Frame::Sequence { flow: true })
                    ),
                    document: stream.documents.len().saturating_sub(1),
                });
            }
            Event::Alias(_) | Event::UnresolvedAlias(_) => {
                take_role(&mut stack);
                pending_field = None;
            }
            Event::MappingStart(style, ..) => {
                let role = take_role(&mut stack);
                if role == Role::Value
                    && let Some((Field::Metadata, at)) = pending_field.take()
                    && at == stack.len()
                    && metadata_depth.is_none()
                {
                    metadata_depth = Some(at + 1);
                }
                pending_field = None;
                stack.push(Frame::Mapping {
                    flow: style == granit_parser::StructureStyle::Flow,
                    expecting_key: true,
                });
            }
            Event::SequenceStart(style, ..) => {
                if take_role(&mut stack) == Role::Root {
                    return Err(not_a_mapping(text, range.start, "sequence"));
                }
                pending_field = None;
                stack.push(Frame::Sequence {
                    flow: style == granit_parser::StructureStyle::Flow,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if metadata_depth == Some(stack.len()) {
                    // Leaving `metadata`: depth 0 matches no key, and a later
                    // `metadata` is not read (kyaml reads the first).
                    metadata_depth = Some(0);
                }
                stack.pop();
                pending_field = None;
            }
            Event::Comment(payload, _placement) => stream.comments.push(Comment {
                span: range,
                payload: payload.into_owned(),
            }),
            _ => {}
        }
    }
    // Spans are what edits rely on, so make their order certain.
    stream.scalars.sort_by_key(|scalar| scalar.span.start);
    stream.comments.sort_by_key(|comment| comment.span.start);
    Ok(stream)
}

fn byte_range(span: &Span) -> Result<Range<usize>, SetterError> {
    // A parser over a `&str` always tracks byte offsets.
    span.byte_range().ok_or(SetterError::InvalidYaml {
        line: span.start.line(),
        column: span.start.col() + 1,
        message: "the parser reported no byte offsets".to_owned(),
    })
}

/// The role of the node about to be read, advancing the enclosing mapping
/// between key and value.
fn take_role(stack: &mut [Frame]) -> Role {
    match stack.last_mut() {
        None => Role::Root,
        Some(Frame::Sequence { .. }) => Role::Value,
        Some(Frame::Mapping { expecting_key, .. }) => {
            let was_key = *expecting_key;
            *expecting_key = !was_key;
            if was_key { Role::Key } else { Role::Value }
        }
    }
}

/// The identifying field a key at `depth` names: `apiVersion`, `kind` and
/// `metadata` at the top of the document, `name` and `namespace` directly
/// in its first `metadata` mapping.
fn identifying_field(
    key: &str,
    depth: usize,
    metadata_depth: Option<usize>,
) -> Option<(Field, usize)> {
    let field = match (key, depth) {
        ("apiVersion", 1) => Field::ApiVersion,
        ("kind", 1) => Field::Kind,
        ("metadata", 1) => Field::Metadata,
        ("name", d) if Some(d) == metadata_depth => Field::Name,
        ("namespace", d) if Some(d) == metadata_depth => Field::Namespace,
        _ => return None,
    };
    Some((field, depth))
}

/// Sets an identifying field the first time it is seen (kyaml reads the
/// first of duplicate keys).
fn fill(document: &mut ObjectIdentifier, field: Field, value: &str) {
    let slot = match field {
        Field::ApiVersion => &mut document.api_version,
        Field::Kind => &mut document.kind,
        Field::Name => &mut document.name,
        Field::Namespace => &mut document.namespace,
        Field::Metadata => return,
    };
    if slot.is_empty() {
        value.clone_into(slot);
    }
}

/// A plain null (`~`, `null`, or nothing at all), which kyaml treats as an
/// absent field or an empty document.
fn is_null(value: &str, style: ScalarStyle) -> bool {
    style == ScalarStyle::Plain && matches!(value, "" | "~" | "null" | "Null" | "NULL")
}

fn not_a_mapping(text: &str, offset: usize, found: &'static str) -> SetterError {
    SetterError::NotAMapping {
        line: line_of(text, offset),
        found,
    }
}

/// The 1-based line of a byte offset.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.bytes().filter(|&b| b == b'\n').count() + 1
}
