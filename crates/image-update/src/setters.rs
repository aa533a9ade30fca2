//! Setter markers rewritten in YAML text, in place.
//!
//! Flux's `Setters` update strategy: a scalar value followed on its line by
//! a comment such as `# {"$imagepolicy": "flux-system:podinfo"}` is set to
//! the image the named ImagePolicy selected. Flux does this with kyaml and
//! re-serialises whole files; here only the bytes of each replaced value
//! change, so comments, quoting, anchors, indentation, flow style, document
//! markers and line endings stay exactly as written.
//!
//! Which values a marker applies to follows kyaml (the comment is the line
//! comment of the scalar it follows):
//!
//! - the scalar is a mapping value or a sequence item, written plain,
//!   `'single'` or `"double"` quoted (anchor and tag before it are kept),
//!   and the comment follows it on the line where it ends, with only blanks
//!   between them;
//! - inside a flow collection a `,` may also stand between them
//!   (`[app:v1, # {...}`); a comment after a closing `]` or `}` belongs to
//!   the collection and is ignored, as kyaml ignores it;
//! - markers after a key with no value, after an alias, after a block
//!   scalar's `|` or `>`, or on a line of their own are ignored too (kyaml
//!   would also honour a marker alone on the line above a sequence item,
//!   its head comment; that placement is not supported here).
//!
//! A replaced plain value stays plain unless YAML would read the new value
//! as something other than that string: a null, boolean or number (`""`,
//! `"20240131"`) is double-quoted, as Flux writes it; anything else that
//! cannot be plain is single-quoted. Where a value was `1.0` and the new
//! tag is not a number, Flux keeps the old `!!float` tag in its output;
//! here the new value is simply a string.
//!
//! A marker names `<namespace>:<policy>`, optionally followed by `:tag`,
//! `:name` or `:digest`. The full form writes `name:tag`, or
//! `name:tag@digest` when the policy reflects a digest; `:tag` writes the
//! tag alone even then; `:name` the image name; `:digest` the digest, or
//! an empty string when the policy has none (Flux defines that setter
//! regardless).

mod marker;
mod render;
mod scan;

use std::collections::BTreeMap;

use crate::{Change, ObjectIdentifier, PolicyImage};

/// The text Flux screens files for: files without it are never parsed.
const TOKEN: &str = "\"$imagepolicy\"";

/// The result of rewriting one file's setter markers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileUpdate {
    /// The new text of the file; equal to the input when nothing changed.
    pub content: String,
    /// Each value replaced, with the object it is in, in file order.
    pub changes: Vec<(ObjectIdentifier, Change)>,
    /// Setter references (as written in markers on values) that name no
    /// setter of the given policies, each once, in file order. Their values
    /// are left alone.
    pub unknown_policies: Vec<String>,
}

impl FileUpdate {
    /// Whether any value was replaced.
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Why a file holding the marker token could not be updated. Flux skips
/// such a file entirely (its reader records it as a problem file), so
/// callers should leave the file as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetterError {
    /// The text is not valid YAML.
    #[error("not valid YAML at line {line}, column {column}: {message}")]
    InvalidYaml {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// The parser's description.
        message: String,
    },
    /// A document is neither empty nor a mapping, so it cannot be a
    /// Kubernetes object; Flux's reader rejects the whole file for it.
    #[error("the document at line {line} is a {found}, not a mapping")]
    NotAMapping {
        /// 1-based line where the document's content starts.
        line: usize,
        /// What the document is (`scalar` or `sequence`).
        found: &'static str,
    },
}

/// Rewrites every setter marker in one YAML file's text (possibly a
/// multi-document stream).
///
/// `policies` maps `namespace:name` of each ImagePolicy that selected an
/// image to that image. A value already equal to its setter's value is left
/// alone and records no change. Each change names the object (`apiVersion`,
/// `kind`, `metadata.namespace`, `metadata.name`) of the document it is in;
/// like Flux, every mapping document is updated, and fields it lacks are
/// empty in its identifier.
pub fn update_file(
    text: &str,
    policies: &BTreeMap<String, PolicyImage>,
) -> Result<FileUpdate, SetterError> {
    let unchanged = || FileUpdate {
        content: text.to_owned(),
        ..FileUpdate::default()
    };
    if !text.contains(TOKEN) {
        return Ok(unchanged());
    }
    let stream = scan::scan(text)?;
    let mut update = unchanged();
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();

    for comment in &stream.comments {
        let Some(reference) = marker::setter_reference(&comment.payload) else {
            continue;
        };
        let Some(scalar) = marked_scalar(text, &stream.scalars, comment) else {
            continue;
        };
        let Some(quoting) = render::Quoting::of(scalar.style) else {
            continue;
        };
        let Some(new_value) = marker::setter_value(&reference, policies) else {
            if !update.unknown_policies.contains(&reference) {
                update.unknown_policies.push(reference);
            }
            continue;
        };
        if new_value == scalar.value {
            continue;
        }
        edits.push((
            scalar.span.clone(),
            render::scalar_text(&new_value, quoting, scalar.in_flow),
        ));
        let object = stream
            .documents
            .get(scalar.document)
            .cloned()
            .unwrap_or_else(empty_identifier);
        update.changes.push((
            object,
            Change {
                old_value: scalar.value.clone(),
                new_value,
                setter: reference,
            },
        ));
    }

    if !edits.is_empty() {
        update.content = apply(text, &edits);
    }
    Ok(update)
}

/// The value scalar a comment marks, if any: the last scalar ending before
/// the comment, when only blanks (and, in a flow collection, one `,`) stand
/// between them on the same line.
fn marked_scalar<'s>(
    text: &str,
    scalars: &'s [scan::Scalar],
    comment: &scan::Comment,
) -> Option<&'s scan::Scalar> {
    let before = scalars.partition_point(|scalar| scalar.span.end <= comment.span.start);
    let scalar = scalars.get(before.checked_sub(1)?)?;
    if scalar.role != scan::Role::Value || scalar.span.is_empty() {
        return None;
    }
    let gap = text.get(scalar.span.end..comment.span.start)?;
    let gap = gap.trim_matches([' ', '\t']);
    let separated = gap.is_empty() || (scalar.in_flow && gap == ",");
    separated.then_some(scalar)
}

/// `text` with each range replaced; ranges are in order and disjoint.
fn apply(text: &str, edits: &[(std::ops::Range<usize>, String)]) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    let mut copied = 0;
    for (range, replacement) in edits {
        out.push_str(text.get(copied..range.start).unwrap_or_default());
        out.push_str(replacement);
        copied = range.end;
    }
    out.push_str(text.get(copied..).unwrap_or_default());
    out
}

fn empty_identifier() -> ObjectIdentifier {
    ObjectIdentifier {
        api_version: String::new(),
        kind: String::new(),
        namespace: String::new(),
        name: String::new(),
    }
}
