//! `ferroflux reconcile <kind> <name> [--with-source] [--force] [--reset]`:
//! asks the controller for a reconciliation now (the
//! `reconcile.fluxcd.io/requestedAt` annotation, plus `forceAt`/`resetAt`
//! for a HelmRelease) and waits until it has been handled and settled. The
//! request and the wait are shared with `resume`.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Map, Value, json};

use crate::cluster::{Cluster, describe};
use crate::kinds::{Kind, Readiness, SourceOf, Success};
use crate::output::Log;
use crate::select::{Verb, verb_target};
use crate::table::{self, condition, str_at};

verb_target!(ReconcileTarget, Verb::Reconcile);

/// The annotation asking any Flux controller for a reconciliation.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// A HelmRelease's one-off forced install or upgrade.
pub const FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";
/// A HelmRelease's failure counters reset.
pub const RESET_AT: &str = "reconcile.fluxcd.io/resetAt";

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # Fetch the Git repository now
  ferroflux reconcile source git podinfo

  # Fetch the source of a Kustomization, then apply it
  ferroflux reconcile kustomization apps --with-source

  # Force a HelmRelease upgrade and reset its retries
  ferroflux reconcile helmrelease podinfo --force --reset")]
pub struct ReconcileArgs {
    #[command(subcommand)]
    target: ReconcileTarget,
}

pub async fn run(args: ReconcileArgs, cluster: Cluster) -> Result<()> {
    let target = args.target.0;
    let Some(kind) = target.kind() else {
        bail!("reconcile takes one kind");
    };
    let Some(name) = target.names.first() else {
        bail!("{} name is required", kind.kind);
    };
    let request = Request {
        force: target.force,
        reset: target.reset,
    };
    let ns = cluster.namespace.clone();
    reconcile(
        &cluster,
        Log::default(),
        kind,
        &ns,
        name,
        target.with_source,
        request,
    )
    .await
}

/// The HelmRelease extras of a request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request {
    pub force: bool,
    pub reset: bool,
}

/// Requests and waits for a reconciliation of `kind` `ns/name`, its source
/// first with `with_source`; prints flux's lines.
pub async fn reconcile(
    cluster: &Cluster,
    log: Log,
    kind: &'static Kind,
    ns: &str,
    name: &str,
    with_source: bool,
    request: Request,
) -> Result<()> {
    let api = cluster.api(kind, Some(ns));
    let object = api
        .get(name)
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    if is_static(kind, &object) {
        log.success("reconciliation not supported by the object");
        return Ok(());
    }
    if object.data["spec"]["suspend"].as_bool() == Some(true) {
        bail!("resource is suspended");
    }
    if with_source && let Some((source, source_ns, source_name)) = source_of(kind, &object)? {
        // The chart of a HelmRelease is reconciled with its own source, as
        // flux does.
        Box::pin(reconcile(
            cluster,
            log,
            source,
            &source_ns,
            &source_name,
            true,
            Request::default(),
        ))
        .await?;
    }
    log.action(&format!(
        "annotating {} {name} in {ns} namespace",
        kind.kind
    ));
    let token = annotate(&api, name, None, request).await?;
    log.success(&format!("{} annotated", kind.kind));
    let object = wait_handled(cluster, log, &api, kind, name, &token).await?;
    let (ready, message) = table::readiness(kind, &object);
    if ready != "True" {
        if kind.source == SourceOf::None {
            bail!("{} reconciliation failed: '{message}'", kind.kind);
        }
        bail!("{} reconciliation failed: {message}", kind.kind);
    }
    log.success(&success_message(kind, &object));
    Ok(())
}

/// Whether the object has no reconciler to wait for (a `type: oci`
/// HelmRepository, the static notification kinds).
pub fn is_static(kind: &Kind, object: &DynamicObject) -> bool {
    match kind.readiness {
        Readiness::Static(_) => true,
        Readiness::HelmRepository => str_at(&object.data, &["spec", "type"]) == "oci",
        Readiness::Condition => false,
    }
}

/// A fresh request token: now, as Go's `time.RFC3339Nano` prints it.
pub fn token() -> String {
    jiff::Timestamp::now().to_string()
}

/// Sets the request annotations (and merges `spec` into the spec, for
/// `resume`) in one merge patch; returns the token.
pub async fn annotate(
    api: &Api<DynamicObject>,
    name: &str,
    spec: Option<Value>,
    request: Request,
) -> Result<String> {
    let token = token();
    let mut annotations = Map::new();
    annotations.insert(REQUESTED_AT.into(), token.clone().into());
    if request.force {
        annotations.insert(FORCE_AT.into(), token.clone().into());
    }
    if request.reset {
        annotations.insert(RESET_AT.into(), token.clone().into());
    }
    let mut patch = json!({"metadata": {"annotations": annotations}});
    if let Some(spec) = spec {
        patch["spec"] = spec;
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| anyhow::anyhow!(describe(&e)))?;
    Ok(token)
}

/// How far a requested reconciliation has got.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Not handled yet, or still reconciling.
    Pending,
    /// Settled: Ready is True or False for the current generation.
    Done,
}

/// Whether the request `token` has been handled and the object settled:
/// `status.lastHandledReconcileAt` is the token and either Ready=True for
/// the current generation with no `Reconciling=True`, or the attempt
/// failed: Ready=False with no `Reconciling=True` other than Flux's
/// `ProgressingWithRetry` (the failure recorded, a retry scheduled; the
/// generation is only marked observed on success), or `Stalled=True`.
pub fn progress(object: &DynamicObject, token: &str) -> Progress {
    let status = &object.data["status"];
    if str_at(status, &["lastHandledReconcileAt"]) != token {
        return Progress::Pending;
    }
    let is_true = |type_: &str| condition(object, type_).is_some_and(|c| c["status"] == "True");
    if is_true("Stalled") {
        return Progress::Done;
    }
    let reconciling = condition(object, "Reconciling").filter(|c| c["status"] == "True");
    let retrying = reconciling.is_some_and(|c| c["reason"] == "ProgressingWithRetry");
    let generation_observed = status["observedGeneration"]
        .as_i64()
        .is_none_or(|observed| Some(observed) == object.metadata.generation);
    match condition(object, "Ready").map(|c| str_at(c, &["status"])) {
        Some("True") if generation_observed && reconciling.is_none() => Progress::Done,
        Some("False") if reconciling.is_none() || retrying => Progress::Done,
        _ => Progress::Pending,
    }
}

/// Polls `name` until [`progress`] says the request `token` is done, under
/// a spinner; fails once `--timeout` has passed.
pub async fn wait_handled(
    cluster: &Cluster,
    log: Log,
    api: &Api<DynamicObject>,
    kind: &Kind,
    name: &str,
    token: &str,
) -> Result<DynamicObject> {
    let _spinner = log.waiting(&format!("waiting for {} reconciliation", kind.kind));
    let deadline = Instant::now() + cluster.timeout;
    loop {
        let object = api
            .get(name)
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        if progress(&object, token) == Progress::Done {
            return Ok(object);
        }
        if Instant::now() >= deadline {
            bail!(
                "timed out after {:?} waiting for {} {name} reconciliation",
                cluster.timeout,
                kind.kind
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The source `--with-source` reconciles first: its kind, namespace and name.
fn source_of(
    kind: &Kind,
    object: &DynamicObject,
) -> Result<Option<(&'static Kind, String, String)>> {
    let own_ns = object.metadata.namespace.clone().unwrap_or_default();
    let spec = &object.data["spec"];
    let by_ref = |reference: &Value, ns_allowed: bool| -> Result<(&'static Kind, String, String)> {
        let source_kind = str_at(reference, &["kind"]);
        let kind = Kind::by_kind(source_kind)
            .with_context(|| format!("unsupported source kind '{source_kind}'"))?;
        let ns = Some(str_at(reference, &["namespace"]))
            .filter(|ns| ns_allowed && !ns.is_empty())
            .map_or_else(|| own_ns.clone(), str::to_owned);
        Ok((kind, ns, str_at(reference, &["name"]).to_owned()))
    };
    Ok(Some(match kind.source {
        SourceOf::None => return Ok(None),
        SourceOf::SourceRef => by_ref(&spec["sourceRef"], true)?,
        SourceOf::ChartSourceRef => by_ref(&spec["sourceRef"], false)?,
        SourceOf::HelmReleaseChart if spec["chartRef"].is_object() => {
            by_ref(&spec["chartRef"], true)?
        }
        SourceOf::HelmReleaseChart => {
            let chart = Kind::by_kind("HelmChart").context("HelmChart kind")?;
            let source_ns = Some(str_at(spec, &["chart", "spec", "sourceRef", "namespace"]))
                .filter(|ns| !ns.is_empty())
                .map_or_else(|| own_ns.clone(), str::to_owned);
            let name = object.metadata.name.clone().unwrap_or_default();
            (chart, source_ns, format!("{own_ns}-{name}"))
        }
    }))
}

/// What flux prints once `kind` reconciled successfully.
pub fn success_message(kind: &Kind, object: &DynamicObject) -> String {
    let status = &object.data["status"];
    match kind.success {
        Success::FetchedRevision if is_static(kind, object) => table::readiness(kind, object).1,
        Success::FetchedRevision => format!(
            "fetched revision {}",
            str_at(status, &["artifact", "revision"])
        ),
        Success::AppliedRevision => {
            let revision = kind.columns.iter().find_map(|c| match c {
                crate::kinds::Column::Revision(r) => Some(*r),
                _ => None,
            });
            let text = match (kind.kind, revision) {
                ("Kustomization", _) => str_at(status, &["lastAppliedRevision"]).to_owned(),
                (_, Some(r)) => table::revision(r, object),
                (_, None) => String::new(),
            };
            format!("applied revision {text}")
        }
        Success::ScanTags => format!(
            "scan fetched {} tags",
            status["lastScanResult"]["tagCount"].as_i64().unwrap_or(0)
        ),
        Success::SelectedRef => {
            let latest = &status["latestRef"];
            let mut reference =
                format!("{}:{}", str_at(latest, &["name"]), str_at(latest, &["tag"]));
            let digest = str_at(latest, &["digest"]);
            if !digest.is_empty() {
                reference = format!("{reference}@{digest}");
            }
            format!("selected ref {reference}")
        }
        Success::ReadyMessage => table::readiness(kind, object).1,
        Success::Completed => format!("{} reconciliation completed", kind.kind),
    }
}

#[cfg(test)]
mod tests {
    // Test code: a failing unwrap is a failing test.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::kinds::KINDS;

    fn object(value: Value) -> DynamicObject {
        serde_json::from_value(value).unwrap()
    }

    fn ks(generation: i64, status: Value) -> DynamicObject {
        object(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "default", "generation": generation},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
            "status": status,
        }))
    }

    #[test]
    fn waits_for_the_token_the_generation_and_a_settled_ready() {
        let t = "2025-01-01T00:00:00.1Z";
        let ready = |s: &str| json!([{"type": "Ready", "status": s, "message": "m"}]);
        let cases = [
            (
                json!({"lastHandledReconcileAt": "old", "observedGeneration": 1, "conditions": ready("True")}),
                Progress::Pending,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 1, "conditions": ready("True")}),
                Progress::Pending,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 2, "conditions": ready("Unknown")}),
                Progress::Pending,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 2, "conditions": [
                {"type": "Ready", "status": "False"}, {"type": "Reconciling", "status": "True"}]}),
                Progress::Pending,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 2, "conditions": [
                {"type": "Ready", "status": "False"}, {"type": "Reconciling", "status": "True"}, {"type": "Stalled", "status": "True"}]}),
                Progress::Done,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 2, "conditions": ready("True")}),
                Progress::Done,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 2, "conditions": ready("False")}),
                Progress::Done,
            ),
            // A failure leaves the generation unobserved and a retry scheduled.
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 1, "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry"}]}),
                Progress::Done,
            ),
            (
                json!({"lastHandledReconcileAt": t, "observedGeneration": 1, "conditions": [
                    {"type": "Ready", "status": "False"},
                    {"type": "Reconciling", "status": "True", "reason": "Progressing"}]}),
                Progress::Pending,
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(progress(&ks(2, status.clone()), t), expected, "{status}");
        }
    }

    #[test]
    fn sources_of_kustomizations_charts_and_releases() {
        let kind = |k: &str| KINDS.iter().find(|x| x.kind == k).unwrap();
        let (source, ns, name) = source_of(kind("Kustomization"), &ks(1, json!({})))
            .unwrap()
            .unwrap();
        assert_eq!(
            (source.kind, ns.as_str(), name.as_str()),
            ("GitRepository", "default", "repo")
        );
        let hr = object(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {"chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "r", "namespace": "flux-system"}}}},
        }));
        let (source, ns, name) = source_of(kind("HelmRelease"), &hr).unwrap().unwrap();
        assert_eq!(
            (source.kind, ns.as_str(), name.as_str()),
            ("HelmChart", "flux-system", "apps-podinfo")
        );
        let hr = object(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {"chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
        }));
        let (source, ns, name) = source_of(kind("HelmRelease"), &hr).unwrap().unwrap();
        assert_eq!(
            (source.kind, ns.as_str(), name.as_str()),
            ("OCIRepository", "apps", "podinfo")
        );
        let chart = object(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "c", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "HelmRepository", "name": "r", "namespace": "ignored"}},
        }));
        let (source, ns, _) = source_of(kind("HelmChart"), &chart).unwrap().unwrap();
        assert_eq!((source.kind, ns.as_str()), ("HelmRepository", "apps"));
    }

    #[test]
    fn success_messages() {
        let kind = |k: &str| KINDS.iter().find(|x| x.kind == k).unwrap();
        let applied = ks(
            1,
            json!({"lastAppliedRevision": "main@sha1:0123456789abcdef0123456789abcdef01234567"}),
        );
        assert_eq!(
            success_message(kind("Kustomization"), &applied),
            "applied revision main@sha1:0123456789abcdef0123456789abcdef01234567"
        );
        let policy = object(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": "p", "namespace": "n"},
            "status": {"latestRef": {"name": "ghcr.io/x/y", "tag": "1.2.3"}},
        }));
        assert_eq!(
            success_message(kind("ImagePolicy"), &policy),
            "selected ref ghcr.io/x/y:1.2.3"
        );
    }
}
