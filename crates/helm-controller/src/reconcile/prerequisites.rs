//! What a HelmRelease needs before helm runs: a spec this controller can
//! honour, its dependencies ready, the chart from its source's status, the
//! values from `valuesFrom` and `values`, and the requests (`forceAt`,
//! `resetAt`) to handle.

use std::collections::HashMap;
use std::sync::Arc;

use api::helm::{HelmRelease, HelmReleaseStatus};
use api::meta::{ConditionStatus, condition_type, reason};
use kube::ResourceExt;
use kube::api::Api;
use runtime::conditions::Conditions;
use runtime::dependencies::DependencyError;

use runtime::reconcile_request::REQUESTED_AT;

use crate::Error;
use crate::chart::{self, ChartError, LoadedChart};
use crate::template;
use crate::values::{self, Lookup};

use super::{CONTROLLER_NAME, Context, Run};

/// The HelmRelease as stored now: the release decisions depend on the
/// recorded history, and the watch cache may not hold the status last
/// written yet. Read again only then.
pub(super) async fn fresh(
    ctx: &Context,
    api: &Api<HelmRelease>,
    hr: Arc<HelmRelease>,
) -> Result<Option<Arc<HelmRelease>>, Error> {
    if ctx.holds_last_written(&hr) {
        return Ok(Some(hr));
    }
    Ok(api.get_opt(&hr.name_any()).await?.map(Arc::new))
}

/// A pending one-off request of `annotation` (`forceAt`, `resetAt`): Flux
/// honours it only together with `requestedAt` carrying the same token.
pub(super) fn pending_token(
    hr: &HelmRelease,
    annotation: &str,
    handled: Option<&str>,
) -> Option<String> {
    let annotations = hr.metadata.annotations.as_ref()?;
    let token = annotations.get(annotation)?;
    let requested = annotations.get(REQUESTED_AT)?;
    (token == requested && Some(token.as_str()) != handled).then(|| token.clone())
}

/// Parts of the spec this controller cannot honour with the helm CLI.
pub(super) fn unsupported(hr: &HelmRelease) -> Option<String> {
    let namespace = hr.namespace().unwrap_or_default();
    let target = hr.spec.target_namespace.as_deref().unwrap_or(&namespace);
    if let Some(storage) = hr.spec.storage_namespace.as_deref()
        && storage != target
    {
        return Some(format!(
            "spec.storageNamespace '{storage}' must equal the release namespace '{target}': the helm CLI stores a release in the namespace it installs into"
        ));
    }
    None
}

/// Replaces a `Ready=False` left by an earlier step that now passed with
/// `Ready=Unknown` (Flux's "reconciliation in progress").
pub(super) fn progress_after(conditions: &mut Conditions, reasons: &[&str]) {
    if let Some(ready) = conditions.get(condition_type::READY)
        && ConditionStatus::of(&ready.status) == ConditionStatus::False
        && reasons.contains(&ready.reason.as_str())
    {
        conditions.mark_unknown(
            condition_type::READY,
            reason::PROGRESSING,
            "reconciliation in progress",
        );
    }
}

pub(super) fn clear_failures(status: &mut HelmReleaseStatus) {
    status.failures = None;
    status.install_failures = None;
    status.upgrade_failures = None;
}

/// `spec.dependsOn`: the shared rule (ready at its generation, or the
/// `readyExpr`), with helm-controller's message for a dependency that
/// cannot be read.
pub(super) async fn check_dependencies(
    ctx: &Context,
    hr: &HelmRelease,
) -> Result<(), DependencyError> {
    let references = hr.spec.depends_on.as_deref().unwrap_or_default();
    runtime::dependencies::check(&ctx.client, hr, references, |_| Ok(())).await
}

/// Flux's helm-controller words a dependency it cannot read its own way.
pub(super) fn dependency_message(err: &DependencyError) -> String {
    match err {
        DependencyError::NotFound { name, cause } => {
            format!("unable to get '{name}' dependency: {cause}")
        }
        other => other.to_string(),
    }
}

/// Flux's reason for a HelmRelease whose chart cannot be referenced: neither
/// `chart` nor `chartRef`, or a template that cannot become an object.
const INVALID_CHART_REFERENCE: &str = "InvalidChartReference";

/// Why the chart is not there yet.
pub(super) enum ChartOutcome {
    /// Retrying cannot help (reason, message).
    Stalled(String, String),
    /// Waiting for the source (reason, message).
    Wait(String, String),
    /// A failure to retry with backoff (reason, message).
    Failed(String, String),
}

pub(super) async fn acquire_chart(run: &mut Run<'_>) -> Result<LoadedChart, ChartOutcome> {
    let ctx = run.ctx;
    let hr = run.hr;
    let failed = |message: String| ChartOutcome::Failed(reason::ARTIFACT_FAILED.into(), message);
    let generated = template::generate(hr)
        .map_err(|err| ChartOutcome::Stalled(INVALID_CHART_REFERENCE.into(), err.to_string()))?;
    let Some(source) = chart::source_of(hr) else {
        return Err(ChartOutcome::Stalled(
            INVALID_CHART_REFERENCE.into(),
            "one of chartRef or chart must be present".into(),
        ));
    };
    let namespace = hr.namespace().unwrap_or_default();
    if ctx.settings.no_cross_namespace_refs && source.namespace != namespace {
        return Err(ChartOutcome::Stalled(
            reason::ACCESS_DENIED.into(),
            format!(
                "cross-namespace references are not allowed: {source} is in another namespace than the HelmRelease"
            ),
        ));
    }
    if source.kind == "ExternalArtifact" && !ctx.settings.allow_external_artifact {
        return Err(ChartOutcome::Stalled(
            reason::ACCESS_DENIED.into(),
            format!(
                "can't access '{}/{}/{}', ExternalArtifact feature gate is disabled",
                source.kind, source.namespace, source.name
            ),
        ));
    }
    let wanted = generated
        .as_ref()
        .map(|(reference, _)| template::status_value(reference));
    if let Some(previous) = run.session.status.helm_chart.clone()
        && Some(&previous) != wanted.as_ref()
    {
        // The template went (chartRef now), or changed the kind, name or
        // namespace of its object: the object made before goes, as in Flux.
        if let Some(old) = template::parse_status_value(&previous) {
            template::delete(&ctx.client, &old)
                .await
                .map_err(|e| failed(format!("failed to delete {} '{previous}': {e}", old.kind)))?;
        }
        run.session.status.helm_chart = None;
    }
    if let Some((reference, object)) = &generated {
        template::apply(&ctx.client, reference, object, CONTROLLER_NAME)
            .await
            .map_err(|e| failed(e.to_string()))?;
        run.session.status.helm_chart = wanted;
    }
    // The object this reconciliation may just have changed is read afresh;
    // a chartRef source is taken from the watch cache when ready.
    let cache = if generated.is_none() {
        ctx.sources.as_ref()
    } else {
        None
    };
    let artifact = match chart::source_artifact(&ctx.client, cache, &source).await {
        Ok(artifact) => artifact,
        Err(ChartError::NotReady(message)) => {
            return Err(ChartOutcome::Wait("SourceNotReady".into(), message));
        }
        Err(err) => return Err(failed(err.to_string())),
    };
    ctx.charts
        .load(&artifact, &source)
        .await
        .map_err(|err| match err {
            ChartError::Download(runtime::artifact::Error::Status { status: 404, .. }) => {
                ChartOutcome::Wait(
                    reason::ARTIFACT_FAILED.into(),
                    format!(
                        "Source not ready: artifact not found. Retrying in {}",
                        api::Duration::from_std(ctx.settings.requeue_dependency)
                    ),
                )
            }
            ChartError::Mutate(message) => ChartOutcome::Failed("ChartMutateError".into(), message),
            other => failed(other.to_string()),
        })
}

/// Reads the `valuesFrom` objects (each once) and composes the values.
pub(super) async fn compose_values(
    ctx: &Context,
    hr: &HelmRelease,
) -> Result<serde_json::Value, values::ValuesError> {
    let namespace = hr.namespace().unwrap_or_default();
    let references = hr.spec.values_from.clone().unwrap_or_default();
    let mut objects: HashMap<(&str, String), Option<HashMap<String, String>>> = HashMap::new();
    for reference in &references {
        let key = (values::kind_name(reference.kind), reference.name.clone());
        if objects.contains_key(&key) {
            continue;
        }
        let data =
            runtime::config_data::read(&ctx.client, &namespace, reference.kind, &reference.name)
                .await
                .map(|found| found.map(|data| data.into_iter().collect()))
                .map_err(|err| values::ValuesError {
                    kind: values::kind_name(reference.kind),
                    namespace: namespace.clone(),
                    name: reference.name.clone(),
                    key: values::values_key(reference).to_string(),
                    reason: err.to_string(),
                })?;
        objects.insert(key, data);
    }
    values::compose(
        &namespace,
        &references,
        hr.spec.values.as_ref(),
        |reference| match objects.get(&(values::kind_name(reference.kind), reference.name.clone()))
        {
            Some(Some(data)) => match data.get(values::values_key(reference)) {
                Some(text) => Lookup::Found(text.clone()),
                None => Lookup::MissingKey,
            },
            _ => Lookup::MissingObject,
        },
    )
}
