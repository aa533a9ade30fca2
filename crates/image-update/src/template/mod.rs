//! Go `text/template` rendering of commit messages.
//!
//! Flux renders `spec.git.commit.messageTemplate` with Go's `text/template`
//! and Sprig's hermetic functions over its `TemplateData`
//! (`.AutomationObject`, `.Changed`, `.Values`). This module is an
//! interpreter of that language, of ferroflux's own: [`Template`] parses and
//! executes any template over a [`Value`], and [`render_commit_message`]
//! builds Flux's data from an [`UpdateResult`] and renders with it.
//!
//! Execution is bounded (output size, evaluation steps, `{{template}}`
//! depth, nesting at parse time) so that no template can hang or exhaust the
//! controller.

mod exec;
mod fmt;
mod funcs;
mod lex;
mod parse;
mod value;

use std::collections::BTreeMap;

pub use value::{Field, List, Map, Struct, Value};

use crate::change::{Change, ObjectIdentifier, UpdateResult};
use parse::{ArgKind, Node, Parsed, Pipe};

/// The message Flux commits with when `messageTemplate` is empty.
pub const DEFAULT_MESSAGE_TEMPLATE: &str = "Update from image update automation";

/// The name Flux parses commit templates under; Go's messages show it.
pub const COMMIT_TEMPLATE_NAME: &str = "commit message";

/// What a commit message template is rendered with (Flux's `TemplateData`).
#[derive(Clone, Copy, Debug)]
pub struct CommitData<'a> {
    /// `metadata.name` of the ImageUpdateAutomation.
    pub automation_name: &'a str,
    /// `metadata.namespace` of the ImageUpdateAutomation.
    pub automation_namespace: &'a str,
    /// What the update changed.
    pub changed: &'a UpdateResult,
    /// `spec.git.commit.messageTemplateValues`.
    pub values: &'a BTreeMap<String, String>,
}

/// Why a template could not be parsed or rendered; the messages are Go's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The text is not a valid template.
    #[error("template: {name}:{line}: {message}")]
    Parse {
        /// Template name.
        name: String,
        /// 1-based line of the error.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Executing the template failed.
    #[error("template: {name}:{line}:{column}: executing \"{executing}\" at <{node}>: {message}")]
    Execute {
        /// Template name.
        name: String,
        /// 1-based line of the failing node.
        line: usize,
        /// 0-based byte column of the failing node, as Go counts.
        column: usize,
        /// The (defined) template being executed.
        executing: String,
        /// The failing node's text, cut at 20 characters as Go does.
        node: String,
        /// What went wrong.
        message: String,
    },
    /// The template uses a field Flux removed from its template data
    /// (`.Updated`, `.Changed.ImageResult`): Flux stalls the automation
    /// with reason `RemovedTemplateField`.
    #[error("{}", removed_field_message(field))]
    RemovedField {
        /// The removed field (`.Updated`).
        field: String,
    },
}

fn removed_field_message(field: &str) -> String {
    const SEE: &str =
        "See: https://fluxcd.io/flux/components/image/imageupdateautomations/#message-template";
    match field {
        ".Updated" => {
            format!("template uses removed '.Updated' field. Please use '.Changed' instead. {SEE}")
        }
        ".Changed.ImageResult" => format!(
            "template uses removed '.Changed.ImageResult' field. Please use '.Changed.FileChanges' or '.Changed.Objects' instead. {SEE}"
        ),
        other => format!("template uses removed '{other}' field. {SEE}"),
    }
}

impl TemplateError {
    /// The message as Flux reports it in conditions and events: parse and
    /// execution errors wrapped as Flux wraps them.
    pub fn flux_message(&self) -> String {
        match self {
            TemplateError::Parse { .. } => {
                format!("unable to create commit message template from spec: {self}")
            }
            TemplateError::Execute { .. } => format!("failed to run template from spec: {self}"),
            TemplateError::RemovedField { .. } => self.to_string(),
        }
    }
}

/// A parsed template, with the templates it `define`s.
#[derive(Debug)]
pub struct Template {
    name: String,
    text: String,
    parsed: Parsed,
}

impl Template {
    /// Parses `text` as a Go template named `name` (the name appears in
    /// error messages).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let parsed =
            parse::parse(text, &funcs::has_function).map_err(|e| TemplateError::Parse {
                name: name.to_string(),
                line: e.line,
                message: e.message,
            })?;
        Ok(Template {
            name: name.to_string(),
            text: text.to_string(),
            parsed,
        })
    }

    /// The template's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Executes the template with `data` as dot (and `$`).
    pub fn execute(&self, data: &Value) -> Result<String, TemplateError> {
        exec::execute(self, data)
    }
}

/// Renders Flux's commit message template with Flux's data.
///
/// An empty template renders [`DEFAULT_MESSAGE_TEMPLATE`]. A template using
/// a removed field fails with [`TemplateError::RemovedField`] when that
/// field is evaluated, as Flux detects it from Go's execution error.
pub fn render_commit_message(template: &str, data: &CommitData) -> Result<String, TemplateError> {
    let text = if template.is_empty() {
        DEFAULT_MESSAGE_TEMPLATE
    } else {
        template
    };
    let parsed = Template::parse(COMMIT_TEMPLATE_NAME, text)?;
    parsed.execute(&commit_data_value(data)).map_err(|err| {
        let TemplateError::Execute { message, .. } = &err else {
            return err;
        };
        if message.contains("can't evaluate field Updated in type source.TemplateData") {
            return TemplateError::RemovedField {
                field: ".Updated".into(),
            };
        }
        if message.contains("can't evaluate field ImageResult in type update.Result") {
            return TemplateError::RemovedField {
                field: ".Changed.ImageResult".into(),
            };
        }
        err
    })
}

/// Checks a commit message template without data: it must parse, and must
/// not reach a removed field from the root data (`.Updated` outside
/// `with`/`range`, `$.Updated`). Lets a controller report the mistake
/// before any update is pending; Flux itself finds it when rendering.
pub fn validate_commit_template(template: &str) -> Result<(), TemplateError> {
    let parsed = Template::parse(COMMIT_TEMPLATE_NAME, template)?;
    match removed_field_in(&parsed.parsed.root, true) {
        Some(field) => Err(TemplateError::RemovedField { field }),
        None => Ok(()),
    }
}

fn removed_field_in(nodes: &[Node], dot_is_root: bool) -> Option<String> {
    nodes.iter().find_map(|node| match node {
        Node::Action(pipe) => removed_field_in_pipe(pipe, dot_is_root),
        Node::If(c) => removed_field_in_pipe(&c.pipe, dot_is_root)
            .or_else(|| removed_field_in(&c.list, dot_is_root))
            .or_else(|| removed_field_in(&c.else_list, dot_is_root)),
        Node::With(c) | Node::Range(c) => removed_field_in_pipe(&c.pipe, dot_is_root)
            .or_else(|| removed_field_in(&c.list, false))
            .or_else(|| removed_field_in(&c.else_list, dot_is_root)),
        Node::Template {
            pipe: Some(pipe), ..
        } => removed_field_in_pipe(pipe, dot_is_root),
        _ => None,
    })
}

fn removed_field_in_pipe(pipe: &Pipe, dot_is_root: bool) -> Option<String> {
    fn check(names: &[String]) -> Option<String> {
        match names {
            [first, ..] if first == "Updated" => Some(".Updated".into()),
            [first, second, ..] if first == "Changed" && second == "ImageResult" => {
                Some(".Changed.ImageResult".into())
            }
            _ => None,
        }
    }
    pipe.cmds
        .iter()
        .flat_map(|c| c.args.iter())
        .find_map(|arg| match &arg.kind {
            ArgKind::Field(names) if dot_is_root => check(names),
            ArgKind::Variable(name, names) if name == "$" => check(names),
            ArgKind::Pipe(inner) => removed_field_in_pipe(inner, dot_is_root),
            _ => None,
        })
}

/// Flux's `TemplateData` as template values, with Go's type names (error
/// messages show them) and Go's printing.
fn commit_data_value(data: &CommitData) -> Value {
    let automation = Struct::new("types.NamespacedName")
        .field("Namespace", data.automation_namespace.into())
        .field("Name", data.automation_name.into())
        .display(format!(
            "{}/{}",
            data.automation_namespace, data.automation_name
        ));
    let values = Map::new(
        "map[string]string",
        Value::from(""),
        data.values
            .iter()
            .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
            .collect(),
    );
    Struct::new("source.TemplateData")
        .field("AutomationObject", automation.into())
        .field("Changed", result_value(data.changed))
        .field("Values", values.into())
        .into()
}

fn result_value(result: &UpdateResult) -> Value {
    let file_changes = Map::new(
        "map[string]update.ObjectChanges",
        object_changes(Vec::new()),
        result
            .file_changes
            .iter()
            .map(|(file, objects)| {
                let entries = objects
                    .iter()
                    .map(|(id, changes)| (id, changes.as_slice()))
                    .collect();
                (Value::from(file.as_str()), object_changes(entries))
            })
            .collect(),
    );
    // Flux's Result.Changes(): every distinct change, in the order met.
    let mut changes: Vec<&Change> = Vec::new();
    for objects in result.file_changes.values() {
        for change in objects.values().flatten() {
            if !changes.contains(&change) {
                changes.push(change);
            }
        }
    }
    // Flux's Result.Objects(): objects of all files (a later file wins).
    let mut objects: BTreeMap<&ObjectIdentifier, &[Change]> = BTreeMap::new();
    for file_objects in result.file_changes.values() {
        for (id, changes) in file_objects {
            objects.insert(id, changes);
        }
    }
    Struct::new("update.Result")
        .field("FileChanges", file_changes.into())
        .method("Changes", change_list(changes.into_iter()))
        .method("Objects", object_changes(objects.into_iter().collect()))
        .into()
}

fn object_changes(entries: Vec<(&ObjectIdentifier, &[Change])>) -> Value {
    Map::new(
        "update.ObjectChanges",
        change_list(std::iter::empty()),
        entries
            .into_iter()
            .map(|(id, changes)| (object_identifier(id), change_list(changes.iter())))
            .collect(),
    )
    .keyed_by("update.ObjectIdentifier")
    .into()
}

/// Flux's ObjectIdentifier embeds kyaml's ResourceIdentifier, itself
/// embedding TypeMeta (APIVersion, Kind) and NameMeta (Name, Namespace); it
/// has no `String()`, so Go prints `{{{apps/v1 Deployment} {app ns}}}`.
fn object_identifier(id: &ObjectIdentifier) -> Value {
    let type_meta = Struct::new("yaml.TypeMeta")
        .tagged_field(
            "APIVersion",
            id.api_version.as_str().into(),
            "apiVersion",
            true,
        )
        .tagged_field("Kind", id.kind.as_str().into(), "kind", true);
    let name_meta = Struct::new("yaml.NameMeta")
        .tagged_field("Name", id.name.as_str().into(), "name", true)
        .tagged_field("Namespace", id.namespace.as_str().into(), "namespace", true);
    let resource = Struct::new("yaml.ResourceIdentifier")
        .embedded("TypeMeta", type_meta)
        .embedded("NameMeta", name_meta);
    Struct::new("update.ObjectIdentifier")
        .embedded("ResourceIdentifier", resource)
        .into()
}

fn change_list<'c>(changes: impl Iterator<Item = &'c Change>) -> Value {
    let items = changes
        .map(|c| {
            Struct::new("update.Change")
                .field("OldValue", c.old_value.as_str().into())
                .field("NewValue", c.new_value.as_str().into())
                .field("Setter", c.setter.as_str().into())
                .into()
        })
        .collect();
    List::new("[]update.Change", items).into()
}
