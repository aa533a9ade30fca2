//! `ferroflux get <kind> [name]`, `get all`, `get sources all`, `get images
//! all`: flux's status tables, `--watch`, `--status-selector`, and `-o
//! yaml|json` for the objects themselves.

use std::io::{IsTerminal, Write};

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use futures::{StreamExt, TryStreamExt};
use kube::api::{DynamicObject, ListParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::cluster::{Cluster, describe, is_not_found};
use crate::kinds::Kind;
use crate::output::{Log, colour, stdout_width};
use crate::select::{Selection, Verb, verb_target};
use crate::table::{self, Style};

verb_target!(GetTarget, Verb::Get);

/// `-o`: the objects instead of the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The table flux prints (the default).
    Table,
    /// The objects as YAML (a `List` unless one object was named).
    Yaml,
    /// The objects as JSON (a `List` unless one object was named).
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # The Git repositories of flux-system and their status
  ferroflux get sources git

  # Every Flux object of every namespace
  ferroflux get all -A

  # Kustomizations that are not ready, then watch them change
  ferroflux get kustomizations --status-selector ready=false --watch")]
pub struct GetArgs {
    #[command(subcommand)]
    target: GetTarget,
    /// List the objects across all namespaces.
    #[arg(short = 'A', long, global = true)]
    all_namespaces: bool,
    /// Skip the header.
    #[arg(long, global = true)]
    no_header: bool,
    /// Only objects whose condition TYPE has STATUS, e.g. ready=false.
    #[arg(long, global = true, value_name = "TYPE=STATUS")]
    status_selector: Option<String>,
    /// Only objects matching this label selector.
    #[arg(short = 'l', long, global = true, value_name = "SELECTOR")]
    label_selector: Option<String>,
    /// After listing, print every change until --timeout passes.
    #[arg(short = 'w', long, global = true)]
    watch: bool,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value = "table")]
    output: Format,
}

/// A parsed `--status-selector`.
struct StatusSelector {
    type_: String,
    status: String,
}

impl StatusSelector {
    fn parse(text: &str) -> Result<StatusSelector> {
        match text.split_once('=') {
            Some((type_, status)) => Ok(StatusSelector {
                type_: type_.to_owned(),
                status: status.to_owned(),
            }),
            None => bail!("expected status selector in type=status format, but found: {text}"),
        }
    }

    fn keeps(selector: &Option<StatusSelector>, object: &DynamicObject) -> bool {
        selector
            .as_ref()
            .is_none_or(|s| table::status_matches(object, &s.type_, &s.status))
    }
}

pub async fn run(args: GetArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0.clone();
    let selector = args
        .status_selector
        .as_deref()
        .map(StatusSelector::parse)
        .transpose()?;
    if target.names.len() > 1 {
        bail!("get takes at most one name");
    }
    let name = target.names.first().cloned();
    let mut params = ListParams::default();
    if let Some(labels) = &args.label_selector {
        params = params.labels(labels);
    }
    if let Some(name) = &name {
        params = params.fields(&format!("metadata.name={name}"));
    }
    let namespace = (!args.all_namespaces).then_some(cluster.namespace.as_str());
    let style = Style {
        width: stdout_width(),
        colour: colour(std::io::stdout().is_terminal()),
    };
    if args.watch {
        let Selection::One(kind) = target.selection else {
            bail!("expected a single resource type, but found all");
        };
        return watch(&args, &cluster, kind, namespace, &params, &selector, style).await;
    }
    let kinds = target.selection.kinds();
    let many = target.selection.is_many();
    // All kinds at once: `get all -A` is one round trip's time, not thirteen.
    let lists = futures::future::join_all(kinds.iter().map(|kind| {
        let api = cluster.api(kind, namespace);
        let params = params.clone();
        async move { api.list(&params).await }
    }))
    .await;
    let where_ = match namespace {
        Some(ns) => format!("{ns:?} namespace"),
        None => "any namespace".to_owned(),
    };
    let log = Log::default();
    let mut out = String::new();
    let mut objects: Vec<Value> = Vec::new();
    for (kind, list) in kinds.iter().zip(lists) {
        let items = match list {
            Ok(list) => list.items,
            // A kind whose CRD is not installed is left out of `get all`.
            Err(e) if many && is_not_found(&e) => continue,
            Err(e) if many => {
                log.failure(&describe(&e));
                continue;
            }
            Err(e) => bail!("{}", describe(&e)),
        };
        if items.is_empty() {
            if many {
                continue;
            }
            match &name {
                Some(name) => bail!("{} object '{name}' not found in {where_}", kind.kind),
                None => bail!("no {} objects found in {where_}", kind.kind),
            }
        }
        let kept = items.iter().filter(|o| StatusSelector::keeps(&selector, o));
        if args.output != Format::Table {
            for object in kept {
                objects.push(full_object(kind, object));
            }
            continue;
        }
        let rows: Vec<Vec<String>> = kept
            .map(|o| table::row(kind, o, args.all_namespaces, many))
            .collect();
        let header = table::headers(kind, args.all_namespaces);
        out.push_str(&table::render(
            (!args.no_header).then_some(header.as_slice()),
            &rows,
            style,
        ));
        if many {
            out.push('\n');
        }
    }
    match args.output {
        Format::Table => {}
        format => {
            let single = name.is_some() && !many && objects.len() == 1;
            let value = match (single, objects.pop()) {
                (true, Some(object)) => object,
                (_, last) => {
                    objects.extend(last);
                    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": objects})
                }
            };
            out = match format {
                Format::Json => format!("{}\n", serde_json::to_string_pretty(&value)?),
                _ => kustomize::yaml::to_yaml_document(&value),
            };
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The object as the API server serves it, with its apiVersion and kind.
fn full_object(kind: &Kind, object: &DynamicObject) -> Value {
    let mut value = serde_json::to_value(object).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), kind.api_version().into());
        map.insert("kind".into(), kind.kind.into());
    }
    value
}

/// `--watch`: the current objects as a table, then one row per change, as
/// flux prints them, until `--timeout` passes.
async fn watch(
    args: &GetArgs,
    cluster: &Cluster,
    kind: &'static Kind,
    namespace: Option<&str>,
    params: &ListParams,
    selector: &Option<StatusSelector>,
    style: Style,
) -> Result<()> {
    let config = watcher::Config {
        label_selector: params.label_selector.clone(),
        field_selector: params.field_selector.clone(),
        ..watcher::Config::default()
    };
    let api = cluster.api(kind, namespace);
    let header = table::headers(kind, args.all_namespaces);
    let mut header_printed = args.no_header;
    let mut initial: Vec<DynamicObject> = Vec::new();
    let mut print = |objects: &[DynamicObject]| -> Result<()> {
        let rows: Vec<Vec<String>> = objects
            .iter()
            .filter(|o| StatusSelector::keeps(selector, o))
            .map(|o| table::row(kind, o, args.all_namespaces, false))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let text = table::render((!header_printed).then_some(header.as_slice()), &rows, style);
        header_printed = true;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()?;
        Ok(())
    };
    let stream = watcher(api, config).map_err(|e| anyhow::anyhow!("watch: {e}"));
    let mut stream = std::pin::pin!(stream);
    let deadline = tokio::time::sleep(cluster.timeout);
    let mut deadline = std::pin::pin!(deadline);
    loop {
        let event = tokio::select! {
            () = &mut deadline => return Ok(()),
            event = stream.next() => event,
        };
        match event {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(watcher::Event::Init)) => initial.clear(),
            Some(Ok(watcher::Event::InitApply(object))) => initial.push(object),
            Some(Ok(watcher::Event::InitDone)) => print(&std::mem::take(&mut initial))?,
            Some(Ok(watcher::Event::Apply(object) | watcher::Event::Delete(object))) => {
                print(std::slice::from_ref(&object))?;
            }
        }
    }
}
