//! An event's metadata on its way through the server, as Flux handles it:
//! cleaned on arrival (only keys of the event API group or of the involved
//! object's group are kept, an artifact's checksum and digest dropped),
//! keyed for rate limiting, stripped of the internal `token`, and combined
//! with the Alert's metadata for each Provider (RFC 0008's precedence).

use std::collections::BTreeMap;

use api::event::{
    ANNOTATION_PREFIX, COMMIT_STATUS_UPDATE, Event, METADATA_CHANGE_REQUEST, METADATA_CHECKSUM,
    METADATA_COMMIT, METADATA_COMMIT_STATUS, METADATA_DIGEST, METADATA_ORIGIN_REVISION,
    METADATA_REVISION, METADATA_TOKEN,
};
use api::notification::{Alert, ProviderType};
use sha2::{Digest, Sha256};

/// The API group of the event's involved object (`""` for the core group).
pub fn object_group(event: &Event) -> &str {
    match event.involved_object.api_version.as_deref() {
        Some(api_version) => api_version
            .split_once('/')
            .map(|(group, _)| group)
            .unwrap_or_default(),
        None => "",
    }
}

/// Keeps only what alerting uses: keys prefixed with the event API group
/// (`event.toolkit.fluxcd.io/`, the object's annotations) or the object's
/// group, less its checksum and digest.
pub fn clean(event: &mut Event) {
    let object_prefix = format!("{}/", object_group(event));
    let excluded = [
        format!("{object_prefix}{METADATA_CHECKSUM}"),
        format!("{object_prefix}{METADATA_DIGEST}"),
    ];
    let kept: BTreeMap<String, String> = event
        .metadata
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|(key, _)| !excluded.iter().any(|e| e.eq_ignore_ascii_case(key)))
        .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX) || key.starts_with(&object_prefix))
        .collect();
    event.metadata = Some(kept);
}

/// The identity of an event for rate limiting (Flux's `EventKey`): the
/// SHA-256 of the object's name, namespace and kind, the message, and the
/// origin revision, revision and token the object's controller sent.
pub fn rate_limit_key(event: &Event) -> String {
    let object = &event.involved_object;
    let mut parts = vec![
        "event".to_string(),
        format!("name={}", object.name.as_deref().unwrap_or_default()),
        format!(
            "namespace={}",
            object.namespace.as_deref().unwrap_or_default()
        ),
        format!("kind={}", object.kind.as_deref().unwrap_or_default()),
        format!("message={}", event.message),
    ];
    let group = object_group(event);
    for key in [METADATA_ORIGIN_REVISION, METADATA_REVISION, METADATA_TOKEN] {
        if let Some(value) = event.metadata_value(&format!("{group}/{key}")) {
            parts.push(format!("{key}={value}"));
        }
    }
    hex::encode(Sha256::digest(parts.join("/").as_bytes()))
}

/// Drops the metadata only the rate limiter uses (the object's `token`).
pub fn exclude_internal(event: &mut Event) {
    let key = format!("{}/{METADATA_TOKEN}", object_group(event));
    if let Some(metadata) = event.metadata.as_mut() {
        metadata.remove(&key);
    }
}

/// A key set by more than one source, and the sources, lowest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    /// The metadata key.
    pub key: String,
    /// Where it came from.
    pub sources: Vec<&'static str>,
}

const FROM_ANNOTATIONS: &str = "involved object annotations";
const FROM_EVENT_METADATA: &str = "Alert object .spec.eventMetadata";
const FROM_CONTROLLER: &str = "involved object controller metadata";

/// The metadata a Provider receives for `event` through `alert`, from lowest
/// to highest precedence: the object's `event.toolkit.fluxcd.io/*`
/// annotations, `spec.eventMetadata`, then the object controller's `<group>/*` keys, each without its prefix. Keys
/// set by more than one source are returned as conflicts (the higher one
/// wins). When nothing is set, the event keeps its metadata, as in Flux.
pub fn combine(event: &mut Event, alert: &Alert) -> Vec<KeyConflict> {
    let mut combined: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<&'static str>> = BTreeMap::new();
    let mut set = |key: &str, value: &str, source: &'static str| {
        combined.insert(key.to_string(), value.to_string());
        sources.entry(key.to_string()).or_default().push(source);
    };
    let original = event.metadata.clone().unwrap_or_default();
    for (key, value) in &original {
        if let Some(key) = key.strip_prefix(ANNOTATION_PREFIX) {
            set(key, value, FROM_ANNOTATIONS);
        }
    }
    for (key, value) in alert.spec.event_metadata.iter().flatten() {
        set(key, value, FROM_EVENT_METADATA);
    }
    let object_prefix = format!("{}/", object_group(event));
    for (key, value) in &original {
        if let Some(key) = key.strip_prefix(&object_prefix) {
            set(key, value, FROM_CONTROLLER);
        }
    }
    let conflicts = sources
        .into_iter()
        .filter(|(_, from)| from.len() > 1)
        .map(|(key, sources)| KeyConflict { key, sources })
        .collect();
    if !combined.is_empty() {
        event.metadata = Some(combined);
    }
    conflicts
}

/// Provider types that set commit statuses.
pub fn is_commit_status_provider(provider_type: ProviderType) -> bool {
    matches!(
        provider_type,
        ProviderType::Github
            | ProviderType::Gitlab
            | ProviderType::Gitea
            | ProviderType::Bitbucketserver
            | ProviderType::Bitbucket
            | ProviderType::Azuredevops
    )
}

/// Provider types that comment on pull or merge requests.
pub fn is_change_request_provider(provider_type: ProviderType) -> bool {
    matches!(
        provider_type,
        ProviderType::Githubpullrequestcomment
            | ProviderType::Gitlabmergerequestcomment
            | ProviderType::Giteapullrequestcomment
    )
}

/// Why an event is not for a Provider of some type (Flux drops it quietly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotForProvider {
    /// A commit status update, and the Provider sets no commit statuses.
    CommitStatusUpdate,
    /// A commit status Provider, and the event names no commit.
    NoCommit,
    /// A change request Provider, and the event names no change request.
    NoChangeRequest,
}

/// Whether the (cleaned) `event` is for a Provider of `provider_type`.
pub fn check_provider_fit(
    event: &Event,
    provider_type: ProviderType,
) -> Result<(), NotForProvider> {
    let group = object_group(event);
    let status_update = event.metadata_value(&format!("{group}/{METADATA_COMMIT_STATUS}"))
        == Some(COMMIT_STATUS_UPDATE);
    let has = |key: &str| {
        event
            .metadata_value(&format!("{ANNOTATION_PREFIX}{key}"))
            .is_some_and(|v| !v.is_empty())
    };
    let commit_status = is_commit_status_provider(provider_type);
    if !commit_status && status_update {
        return Err(NotForProvider::CommitStatusUpdate);
    }
    if commit_status && !status_update && !has(METADATA_COMMIT) {
        return Err(NotForProvider::NoCommit);
    }
    if is_change_request_provider(provider_type) && !has(METADATA_CHANGE_REQUEST) {
        return Err(NotForProvider::NoChangeRequest);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(metadata: serde_json::Value) -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "web",
                               "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": "info", "timestamp": "2026-12-04T10:00:00Z",
            "message": "Reconciliation finished", "reason": "ReconciliationSucceeded",
            "metadata": metadata,
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    fn alert(spec: serde_json::Value) -> Alert {
        let mut spec = spec;
        spec["providerRef"] = json!({"name": "p"});
        spec["eventSources"] = json!([]);
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Alert",
            "metadata": {"name": "a", "namespace": "apps"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn cleaning_keeps_the_event_and_object_groups() {
        let mut ev = event(json!({
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
            "kustomize.toolkit.fluxcd.io/checksum": "c",
            "kustomize.toolkit.fluxcd.io/Digest": "d",
            "event.toolkit.fluxcd.io/env": "prod",
            "source.toolkit.fluxcd.io/revision": "other group",
            "plain": "x",
        }));
        clean(&mut ev);
        let keys: Vec<&String> = ev.metadata.as_ref().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "event.toolkit.fluxcd.io/env",
                "kustomize.toolkit.fluxcd.io/revision"
            ]
        );
        let mut bare = event(serde_json::Value::Null);
        clean(&mut bare);
        assert_eq!(bare.metadata, Some(BTreeMap::new()));
    }

    #[test]
    fn rate_limit_key_is_object_message_and_revisions() {
        let base = event(json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"}));
        let key = rate_limit_key(&base);
        // sha256 of Flux's joined components.
        let expected = hex::encode(Sha256::digest(
            b"event/name=web/namespace=apps/kind=Kustomization/message=Reconciliation finished/revision=main@sha1:abc",
        ));
        assert_eq!(key, expected);
        let same = event(
            json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                                "event.toolkit.fluxcd.io/env": "prod"}),
        );
        assert_eq!(rate_limit_key(&same), key, "other metadata does not count");
        let newer = event(json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:def"}));
        assert_ne!(rate_limit_key(&newer), key);
        let token = event(
            json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                                 "kustomize.toolkit.fluxcd.io/token": "t1"}),
        );
        assert_ne!(rate_limit_key(&token), key);
        let mut other_message = base.clone();
        other_message.message = "Health check failed".into();
        assert_ne!(rate_limit_key(&other_message), key);
        let origin = event(
            json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                                  "kustomize.toolkit.fluxcd.io/originRevision": "o"}),
        );
        assert_ne!(rate_limit_key(&origin), key);
    }

    #[test]
    fn metadata_precedence_as_rfc_0008() {
        let mut ev = event(json!({
            "event.toolkit.fluxcd.io/env": "from-annotation",
            "event.toolkit.fluxcd.io/team": "a",
            "event.toolkit.fluxcd.io/summary": "annotation summary",
            "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
            "kustomize.toolkit.fluxcd.io/token": "t",
        }));
        exclude_internal(&mut ev);
        let a = alert(json!({
            "eventMetadata": {"env": "prod", "cluster": "c1", "revision": "alert",
                              "summary": "from the alert"},
        }));
        let conflicts = combine(&mut ev, &a);
        let metadata = ev.metadata.unwrap();
        assert_eq!(
            metadata,
            BTreeMap::from([
                ("cluster".to_string(), "c1".to_string()),
                ("env".to_string(), "prod".to_string()),
                ("revision".to_string(), "main@sha1:abc".to_string()),
                ("summary".to_string(), "from the alert".to_string()),
                ("team".to_string(), "a".to_string()),
            ])
        );
        let keys: Vec<&str> = conflicts.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["env", "revision", "summary"]);
        assert_eq!(conflicts[1].sources, [FROM_EVENT_METADATA, FROM_CONTROLLER]);
    }

    #[test]
    fn nothing_to_combine_keeps_the_metadata() {
        let mut ev = event(json!({}));
        assert!(combine(&mut ev, &alert(json!({}))).is_empty());
        assert_eq!(ev.metadata, Some(BTreeMap::new()));
    }

    #[test]
    fn provider_fit() {
        let update = event(
            json!({"kustomize.toolkit.fluxcd.io/commit_status": "update",
                                  "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"}),
        );
        let plain = event(json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"}));
        let commit = event(json!({"event.toolkit.fluxcd.io/commit": "abc"}));
        let pr = event(json!({"event.toolkit.fluxcd.io/change_request": "7"}));
        assert_eq!(
            check_provider_fit(&update, ProviderType::Slack),
            Err(NotForProvider::CommitStatusUpdate)
        );
        assert_eq!(check_provider_fit(&plain, ProviderType::Slack), Ok(()));
        assert_eq!(check_provider_fit(&update, ProviderType::Github), Ok(()));
        assert_eq!(
            check_provider_fit(&plain, ProviderType::Github),
            Err(NotForProvider::NoCommit)
        );
        assert_eq!(check_provider_fit(&commit, ProviderType::Gitlab), Ok(()));
        assert_eq!(
            check_provider_fit(&plain, ProviderType::Githubpullrequestcomment),
            Err(NotForProvider::NoChangeRequest)
        );
        assert_eq!(
            check_provider_fit(&pr, ProviderType::Giteapullrequestcomment),
            Ok(())
        );
    }

    #[test]
    fn core_group_objects() {
        let mut ev: Event = serde_json::from_value(json!({
            "involvedObject": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"},
            "severity": "info", "timestamp": "2026-12-04T10:00:00Z", "message": "m",
            "reason": "r", "reportingController": "c",
            "metadata": {"/revision": "1", "v1/revision": "no"}
        }))
        .unwrap();
        assert_eq!(object_group(&ev), "");
        clean(&mut ev);
        assert_eq!(ev.metadata.as_ref().unwrap().len(), 1);
    }
}
