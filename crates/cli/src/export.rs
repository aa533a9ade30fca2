//! `ferroflux export <kind> [name] [--all]`: the objects as YAML to apply
//! elsewhere, as `flux export` prints them: apiVersion, kind, metadata
//! (name, namespace, labels, annotations) and spec, `---` before each;
//! no status, and none of the annotations that only record a request or
//! kubectl's last apply.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Args;
use kube::api::{DynamicObject, ListParams};
use serde_json::{Map, Value};

use crate::cluster::{Cluster, describe};
use crate::kinds::Kind;
use crate::select::{Verb, verb_target};

verb_target!(ExportTarget, Verb::Export);

/// Annotations left out: requests to a controller and kubectl's bookkeeping.
const INTERNAL_ANNOTATIONS: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    crate::reconcile::REQUESTED_AT,
    crate::reconcile::FORCE_AT,
    crate::reconcile::RESET_AT,
];

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # One Kustomization
  ferroflux export kustomization apps > apps.yaml

  # Every GitRepository of the namespace
  ferroflux export source git --all")]
pub struct ExportArgs {
    #[command(subcommand)]
    target: ExportTarget,
    /// Export every object of the kind in the namespace.
    #[arg(long, global = true)]
    all: bool,
}

pub async fn run(args: ExportArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0;
    let Some(kind) = target.kind() else {
        bail!("export takes one kind");
    };
    let api = cluster.api_here(kind);
    let objects = match target.names.first() {
        Some(name) => vec![
            api.get(name)
                .await
                .map_err(|e| anyhow::anyhow!(describe(&e)))?,
        ],
        None if args.all => {
            let items = api
                .list(&ListParams::default())
                .await
                .map_err(|e| anyhow::anyhow!(describe(&e)))?
                .items;
            if items.is_empty() {
                bail!("no objects found in {} namespace", cluster.namespace);
            }
            items
        }
        None => bail!("name is required"),
    };
    let out: String = objects.iter().map(|o| document(kind, o)).collect();
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// The clean object.
pub fn clean(kind: &Kind, object: &DynamicObject) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), object.metadata.name.clone().into());
    metadata.insert("namespace".into(), object.metadata.namespace.clone().into());
    if let Some(labels) = object.metadata.labels.as_ref().filter(|l| !l.is_empty()) {
        metadata.insert(
            "labels".into(),
            serde_json::to_value(labels).unwrap_or_default(),
        );
    }
    let annotations: Map<String, Value> = object
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| !INTERNAL_ANNOTATIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), annotations.into());
    }
    let mut clean = Map::new();
    clean.insert("apiVersion".into(), kind.api_version().into());
    clean.insert("kind".into(), kind.kind.into());
    clean.insert("metadata".into(), metadata.into());
    clean.insert(
        "spec".into(),
        object
            .data
            .get("spec")
            .cloned()
            .unwrap_or_else(|| Map::new().into()),
    );
    clean.into()
}

/// One `---` document, keys sorted as flux's sigs.k8s.io/yaml writes them.
pub fn document(kind: &Kind, object: &DynamicObject) -> String {
    format!(
        "---\n{}",
        kustomize::yaml::to_yaml_document(&clean(kind, object))
    )
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::kinds::KINDS;
    use serde_json::json;

    #[test]
    fn exports_like_flux() {
        let kind = KINDS.iter().find(|k| k.kind == "Kustomization").unwrap();
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "uid": "u", "resourceVersion": "7",
                "generation": 3, "creationTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["finalizers.fluxcd.io"],
                "labels": {"team": "a"},
                "annotations": {"reconcile.fluxcd.io/requestedAt": "now", "note": "kept",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "managedFields": [{"manager": "x"}]},
            "spec": {"interval": "10m", "path": "./apps", "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                "patches": [{"patch": "a: b\n", "target": {"kind": "Deployment"}}]},
            "status": {"observedGeneration": 3},
        }))
        .unwrap();
        assert_eq!(
            document(kind, &object),
            "---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  annotations:
    note: kept
  labels:
    team: a
  name: apps
  namespace: flux-system
spec:
  interval: 10m
  patches:
  - patch: |
      a: b
    target:
      kind: Deployment
  path: ./apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
"
        );
    }
}
