//! What a commit status is made of: which events get one, the commit it is
//! set on, its id (Flux's default or the Provider's `commitStatusExpr`), its
//! state and description.

use std::collections::BTreeMap;
use std::sync::Arc;

use api::event::{
    ANNOTATION_PREFIX, COMMIT_STATUS_UPDATE, METADATA_COMMIT, METADATA_COMMIT_STATUS,
    METADATA_ORIGIN_REVISION, METADATA_REVISION, Severity,
};
use api::notification::ProviderType;
use serde_json::{Value, json};

use super::invalid;
use crate::{Event, NotifyError, Target, type_name};

// The reason Flux's controllers give while a reconciliation is under way.
use api::meta::reason::PROGRESSING as PROGRESSING_REASON;

/// The event's metadata as Flux's notifiers see it: keys under
/// `event.toolkit.fluxcd.io/` (object annotations) with the prefix removed,
/// then plain keys (an Alert's `eventMetadata`, or an event already
/// combined), then the involved object's controller keys (`<group>/<key>`)
/// with the prefix removed, each overriding the one before (RFC 0008).
/// An event that is already combined comes out unchanged.
pub fn flux_metadata(event: &Event) -> BTreeMap<String, String> {
    let Some(metadata) = &event.metadata else {
        return BTreeMap::new();
    };
    let group_prefix = event
        .involved_object
        .api_version
        .as_deref()
        .and_then(|v| v.split_once('/'))
        .map(|(group, _)| format!("{group}/"));
    let mut combined = BTreeMap::new();
    for (key, value) in metadata {
        if let Some(key) = key.strip_prefix(ANNOTATION_PREFIX) {
            combined.insert(key.to_string(), value.clone());
        }
    }
    for (key, value) in metadata {
        if !key.contains('/') {
            combined.insert(key.clone(), value.clone());
        }
    }
    if let Some(prefix) = &group_prefix {
        for (key, value) in metadata {
            if let Some(key) = key.strip_prefix(prefix.as_str()) {
                combined.insert(key.to_string(), value.clone());
            }
        }
    }
    combined
}

/// The commit SHA a revision names, as Flux's `parseRevision` reads it:
/// `main@sha1:<sha>`, `sha1:<sha>`, `main/<sha>`, `<sha>`; a full 40
/// character SHA-1 is required.
pub fn commit_sha(revision: &str) -> Option<String> {
    let hash = match revision.rfind(':') {
        Some(i) => &revision[i + 1..],
        None => revision.rsplit('/').next().unwrap_or(revision),
    };
    (hash.len() == 40 && hash.bytes().all(|b| b.is_ascii_hexdigit())).then(|| hash.to_string())
}

/// An event reason as Flux describes it in a status: `ReconciliationFailed`
/// → `reconciliation failed`.
pub fn describe_reason(reason: &str) -> String {
    split_camel_case(reason).join(" ").to_lowercase()
}

/// Splits at changes of character class (lower, upper, digit, other),
/// keeping an upper-case letter with the lower-case run it starts
/// (`PDFLoader` → `PDF`, `Loader`).
fn split_camel_case(src: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_ascii_digit() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0;
    for c in src.chars() {
        let current = class(c);
        match runs.last_mut() {
            Some(run) if current == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = current;
    }
    for i in 0..runs.len().saturating_sub(1) {
        let starts_upper = runs[i].first().is_some_and(|c| c.is_uppercase());
        let next_lower = runs[i + 1].first().is_some_and(|c| c.is_lowercase());
        if starts_upper
            && next_lower
            && let Some(moved) = runs[i].pop()
        {
            runs[i + 1].insert(0, moved);
        }
    }
    runs.into_iter()
        .filter(|run| !run.is_empty())
        .map(|run| run.into_iter().collect())
        .collect()
}

/// Flux's default commit status id: lower(`<kind>/<name>/<first segment of
/// the Provider UID>`), unique per cluster and object.
pub fn default_status_id(provider_uid: &str, event: &Event) -> String {
    let uid_head = provider_uid.split('-').next().unwrap_or_default();
    let kind = event.involved_object.kind.as_deref().unwrap_or_default();
    let name = event.involved_object.name.as_deref().unwrap_or_default();
    format!("{kind}/{name}/{uid_head}").to_lowercase()
}

/// How a Provider names its commit statuses.
pub(super) enum StatusId {
    /// Flux's default.
    Default,
    /// `spec.commitStatusExpr`, compiled.
    Expression(String),
}

impl StatusId {
    /// The Provider's naming, its expression checked by compiling it.
    pub fn new(target: &Target) -> Result<Self, NotifyError> {
        match target.commit_status_expr.as_deref().map(str::trim) {
            Some(expression) if !expression.is_empty() => {
                environment().compile(expression).map_err(|err| {
                    invalid(
                        "spec.commitStatusExpr",
                        format!("'{expression}' does not compile: {err}"),
                    )
                })?;
                Ok(StatusId::Expression(expression.to_string()))
            }
            _ => Ok(StatusId::Default),
        }
    }

    /// The id of the status `event` sets.
    fn evaluate(
        &self,
        provider_type: ProviderType,
        target: &Target,
        event: &Event,
        metadata: &BTreeMap<String, String>,
    ) -> Result<String, NotifyError> {
        let expression = match self {
            StatusId::Default => return Ok(default_status_id(&target.provider.uid, event)),
            StatusId::Expression(expression) => expression,
        };
        let failed =
            |message: String| invalid("spec.commitStatusExpr", format!("'{expression}' {message}"));
        let env = environment();
        let program = env
            .compile(expression)
            .map_err(|err| failed(format!("does not compile: {err}")))?;
        let mut context = cel::Context::with_env(env);
        context
            .add_variable("event", event_value(event, metadata))
            .map_err(|err| failed(err.to_string()))?;
        context
            .add_variable("provider", provider_value(provider_type, target))
            .map_err(|err| failed(err.to_string()))?;
        match program.execute(&context) {
            Ok(cel::Value::String(id)) if !id.is_empty() => Ok(id.to_string()),
            Ok(cel::Value::String(_)) => Err(failed("returned an empty string".to_string())),
            Ok(other) => Err(failed(format!("returned {other:?}, not a string"))),
            Err(err) => Err(failed(format!("failed for this event: {err}"))),
        }
    }
}

fn environment() -> Arc<cel::Env> {
    Arc::new(cel::Env::stdlib().with_optional_support(true))
}

/// `event` as Flux hands it to the expression: its JSON form with the
/// combined metadata.
fn event_value(event: &Event, metadata: &BTreeMap<String, String>) -> Value {
    let mut value = serde_json::to_value(event).unwrap_or(Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("metadata".to_string(), json!(metadata));
    }
    value
}

/// `provider` as far as the notifier knows it: its identity, type and
/// expression (other spec fields are not passed down, so an expression
/// reading them fails with an error naming the key).
fn provider_value(provider_type: ProviderType, target: &Target) -> Value {
    json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Provider",
        "metadata": {
            "name": target.provider.name,
            "namespace": target.provider.namespace,
            "uid": target.provider.uid,
        },
        "spec": {
            "type": type_name(provider_type),
            "commitStatusExpr": target.commit_status_expr.clone().unwrap_or_default(),
        },
    })
}

/// The state a commit status is set to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StatusState {
    /// An `info` event.
    Success,
    /// An `error` event.
    Failure,
    /// A `Progressing` event (Gitea only).
    Pending,
}

impl StatusState {
    /// The state as a forge spells it, given its spellings of
    /// `[success, failure, pending]`.
    pub fn spelled(self, [success, failure, pending]: [&'static str; 3]) -> &'static str {
        match self {
            StatusState::Success => success,
            StatusState::Failure => failure,
            StatusState::Pending => pending,
        }
    }
}

/// One event prepared as a commit status.
#[derive(Clone, Debug)]
pub(super) struct StatusEvent {
    /// The commit the status is set on.
    pub sha: String,
    /// The status id (GitHub/Gitea context, GitLab name, ...).
    pub id: String,
    /// The state.
    pub state: StatusState,
    /// The event reason in words.
    pub description: String,
    /// lower(`<kind>/<name>`), what Bitbucket shows as the status name.
    pub object_name: String,
    /// The combined metadata (Azure DevOps reads `summary`).
    pub metadata: BTreeMap<String, String>,
}

impl StatusEvent {
    /// `event` as a commit status, or `Skipped` when Flux posts none for it.
    pub fn from_event(
        provider_type: ProviderType,
        target: &Target,
        id: &StatusId,
        event: &Event,
        pending_on_progressing: bool,
    ) -> Result<Self, NotifyError> {
        let metadata = flux_metadata(event);
        let update =
            metadata.get(METADATA_COMMIT_STATUS).map(String::as_str) == Some(COMMIT_STATUS_UPDATE);
        let commit = metadata
            .get(METADATA_COMMIT)
            .filter(|c| !c.is_empty())
            .cloned();
        if !update && commit.is_none() {
            return Err(NotifyError::Skipped(format!(
                "event has no '{METADATA_COMMIT_STATUS}: {COMMIT_STATUS_UPDATE}' or '{METADATA_COMMIT}' \
                 metadata, so it sets no commit status"
            )));
        }
        let progressing = event.reason == PROGRESSING_REASON;
        if progressing && !pending_on_progressing {
            return Err(NotifyError::Skipped(format!(
                "{} posts no commit status for '{PROGRESSING_REASON}' events",
                type_name(provider_type)
            )));
        }
        // The annotated commit, else the origin revision, else the revision.
        let (key, revision) = [METADATA_COMMIT, METADATA_ORIGIN_REVISION, METADATA_REVISION]
            .into_iter()
            .find_map(|key| metadata.get(key).map(|value| (key, value)))
            .ok_or_else(|| {
                NotifyError::Skipped(format!(
                    "event has no '{METADATA_REVISION}' metadata to set a commit status on"
                ))
            })?;
        let sha = commit_sha(revision).ok_or_else(|| {
            NotifyError::Skipped(format!(
                "failed to extract a commit hash from the '{key}' metadata '{revision}'"
            ))
        })?;
        let state = if progressing {
            StatusState::Pending
        } else {
            match event.severity {
                Severity::Info => StatusState::Success,
                Severity::Error => StatusState::Failure,
                Severity::Trace => {
                    return Err(NotifyError::Skipped(
                        "trace events set no commit status".to_string(),
                    ));
                }
            }
        };
        let kind = event.involved_object.kind.as_deref().unwrap_or_default();
        let name = event.involved_object.name.as_deref().unwrap_or_default();
        Ok(Self {
            sha,
            id: id.evaluate(provider_type, target, event, &metadata)?,
            state,
            description: describe_reason(&event.reason),
            object_name: format!("{kind}/{name}").to_lowercase(),
            metadata,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(metadata: Value) -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "Apps",
                               "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": "info", "timestamp": "2026-12-04T10:00:00Z",
            "message": "m", "reason": "ReconciliationSucceeded",
            "metadata": metadata, "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    #[test]
    fn extracts_the_sha_as_flux() {
        let sha = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";
        for revision in [
            format!("main@sha1:{sha}"),
            format!("feature/branch@sha1:{sha}"),
            format!("sha1:{sha}"),
            format!("main/{sha}"),
            sha.to_string(),
        ] {
            assert_eq!(commit_sha(&revision).as_deref(), Some(sha), "{revision}");
        }
        assert_eq!(commit_sha("main@sha1:abc"), None);
        assert_eq!(commit_sha("v1.0.0"), None);
    }

    #[test]
    fn describes_reasons() {
        assert_eq!(
            describe_reason("ReconciliationSucceeded"),
            "reconciliation succeeded"
        );
        assert_eq!(describe_reason("HealthCheckFailed"), "health check failed");
        assert_eq!(describe_reason("PDFLoader"), "pdf loader");
        assert_eq!(describe_reason("HTTPServerFailed"), "http server failed");
        assert_eq!(describe_reason("Progressing"), "progressing");
        assert_eq!(describe_reason("v2Beta"), "v 2 beta");
        assert_eq!(describe_reason("info"), "info");
    }

    #[test]
    fn combines_metadata_with_controller_keys_winning() {
        let combined = flux_metadata(&event(json!({
            "event.toolkit.fluxcd.io/revision": "annotation",
            "event.toolkit.fluxcd.io/change_request": "7",
            "summary": "prod",
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:x",
            "other.group/ignored": "x",
        })));
        assert_eq!(combined["revision"], "main@sha1:x");
        assert_eq!(combined["change_request"], "7");
        assert_eq!(combined["summary"], "prod");
        assert!(!combined.contains_key("ignored"));
    }

    #[test]
    fn default_id_uses_the_first_uid_segment() {
        let id = default_status_id("0c9c2e41-ae4c-4b8f-9ee7-1b8a2c4f0e11", &event(json!({})));
        assert_eq!(id, "kustomization/apps/0c9c2e41");
    }
}
