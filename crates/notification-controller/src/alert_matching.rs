//! Which Alerts an event concerns, as Flux decides it: an event source of
//! the Alert names the event's object (kind, namespace, name or `*`, then
//! `matchLabels` on the object's labels), the Alert's `eventSeverity` lets
//! the event's severity through, and the message passes the
//! `inclusionList` and `exclusionList` regular expressions.
//!
//! Everything here is pure; the labels of the involved object are fetched by
//! the caller only when a source asks for them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use api::event::{Event, Severity};
use api::notification::{Alert, CrossNamespaceObjectReference, EventSeverity, FluxKind};
use regex::Regex;

/// What one event source of an Alert says about an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceMatch<'a> {
    /// The source does not select the event's object (or severity).
    No,
    /// The source selects it.
    Yes,
    /// The source selects it if the object's labels match these.
    IfLabelsMatch(&'a BTreeMap<String, String>),
}

/// The name of a Flux kind as it appears in `involvedObject.kind`.
pub fn kind_name(kind: FluxKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{kind:?}"))
}

/// Whether an Alert of `severity` (default `info`) forwards an event of
/// `event`'s severity: `info` forwards everything, `error` only errors.
pub fn severity_allows(severity: Option<EventSeverity>, event: Severity) -> bool {
    match severity.unwrap_or(EventSeverity::Info) {
        EventSeverity::Info => true,
        EventSeverity::Error => event == Severity::Error,
    }
}

/// What `source` of an Alert in `alert_namespace` with `severity` says about
/// `event`. The source's namespace defaults to the Alert's.
pub fn source_matches<'a>(
    event: &Event,
    alert_namespace: &str,
    severity: Option<EventSeverity>,
    source: &'a CrossNamespaceObjectReference,
) -> SourceMatch<'a> {
    let object = &event.involved_object;
    let namespace = source.namespace.as_deref().unwrap_or(alert_namespace);
    if object.namespace.as_deref().unwrap_or_default() != namespace
        || object.kind.as_deref().unwrap_or_default() != kind_name(source.kind)
    {
        return SourceMatch::No;
    }
    if !severity_allows(severity, event.severity) {
        return SourceMatch::No;
    }
    if source.name != "*" && Some(source.name.as_str()) != object.name.as_deref() {
        return SourceMatch::No;
    }
    match &source.match_labels {
        None => SourceMatch::Yes,
        Some(selector) => SourceMatch::IfLabelsMatch(selector),
    }
}

/// Whether `labels` carry every key and value of `selector` (an empty
/// selector matches everything, as Kubernetes' label selectors do).
pub fn labels_match(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Whether any source of `alert` may select `event` on kind, namespace, name
/// and severity alone (before labels): a quick filter.
pub fn any_source_may_match(alert: &Alert, event: &Event) -> bool {
    let namespace = alert.metadata.namespace.as_deref().unwrap_or_default();
    alert
        .spec
        .event_sources
        .iter()
        .any(|s| source_matches(event, namespace, alert.spec.event_severity, s) != SourceMatch::No)
}

/// The verdict of an Alert's message filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageVerdict {
    /// Whether the message is forwarded.
    pub forwarded: bool,
    /// Patterns that do not compile, each with its list and the error:
    /// Flux reports each as an `InvalidConfig` event on the Alert.
    pub invalid: Vec<String>,
}

/// Applies `inclusionList` (when set, the message must match one) and
/// `exclusionList` (a match drops the message). A pattern that does not
/// compile matches nothing, as in Flux.
pub fn filter_message(alert: &Alert, message: &str) -> MessageVerdict {
    let mut verdict = MessageVerdict {
        forwarded: true,
        invalid: Vec::new(),
    };
    if let Some(inclusions) = alert.spec.inclusion_list.as_ref().filter(|l| !l.is_empty()) {
        let mut included = false;
        for pattern in inclusions {
            match compiled(pattern) {
                Ok(re) if re.is_match(message) => {
                    included = true;
                    break;
                }
                Ok(_) => {}
                Err(err) => verdict.invalid.push(format!(
                    "failed to compile inclusion regex: {pattern}: {err}"
                )),
            }
        }
        if !included {
            verdict.forwarded = false;
            return verdict;
        }
    }
    for pattern in alert.spec.exclusion_list.iter().flatten() {
        match compiled(pattern) {
            Ok(re) if re.is_match(message) => {
                verdict.forwarded = false;
                return verdict;
            }
            Ok(_) => {}
            Err(err) => verdict.invalid.push(format!(
                "failed to compile exclusion regex: {pattern}: {err}"
            )),
        }
    }
    verdict
}

/// How many compiled patterns are kept before the cache starts over.
const PATTERNS_KEPT: usize = 1024;

type PatternCache = Mutex<HashMap<String, Result<Arc<Regex>, String>>>;

/// `pattern` compiled once and kept: Alerts are few and their patterns run
/// against every event.
fn compiled(pattern: &str) -> Result<Arc<Regex>, String> {
    static CACHE: OnceLock<PatternCache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = cache.get(pattern) {
        return found.clone();
    }
    if cache.len() >= PATTERNS_KEPT {
        cache.clear();
    }
    let result = Regex::new(pattern).map(Arc::new).map_err(|e| {
        e.to_string()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string()
    });
    cache.insert(pattern.to_string(), result.clone());
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(kind: &str, ns: &str, name: &str, severity: &str, message: &str) -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": kind, "namespace": ns, "name": name,
                               "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": severity, "timestamp": "2026-12-04T10:00:00Z",
            "message": message, "reason": "ReconciliationSucceeded",
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    fn alert(spec: serde_json::Value) -> Alert {
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Alert",
            "metadata": {"name": "a", "namespace": "apps"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn source(value: serde_json::Value) -> CrossNamespaceObjectReference {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn kind_name_and_namespace_default_to_the_alerts() {
        let ev = event("Kustomization", "apps", "web", "info", "m");
        let by_name = source(json!({"kind": "Kustomization", "name": "web"}));
        assert_eq!(
            source_matches(&ev, "apps", None, &by_name),
            SourceMatch::Yes
        );
        // The source's namespace defaults to the Alert's, not the event's.
        assert_eq!(
            source_matches(&ev, "other", None, &by_name),
            SourceMatch::No
        );
        let elsewhere =
            source(json!({"kind": "Kustomization", "name": "web", "namespace": "apps"}));
        assert_eq!(
            source_matches(&ev, "other", None, &elsewhere),
            SourceMatch::Yes
        );
        let other_name = source(json!({"kind": "Kustomization", "name": "api"}));
        assert_eq!(
            source_matches(&ev, "apps", None, &other_name),
            SourceMatch::No
        );
        let other_kind = source(json!({"kind": "HelmRelease", "name": "web"}));
        assert_eq!(
            source_matches(&ev, "apps", None, &other_kind),
            SourceMatch::No
        );
        let any = source(json!({"kind": "Kustomization", "name": "*"}));
        assert_eq!(source_matches(&ev, "apps", None, &any), SourceMatch::Yes);
        let oci = event("OCIRepository", "apps", "x", "info", "m");
        let oci_source = source(json!({"kind": "OCIRepository", "name": "*"}));
        assert_eq!(
            source_matches(&oci, "apps", None, &oci_source),
            SourceMatch::Yes
        );
    }

    #[test]
    fn match_labels_defer_to_the_objects_labels() {
        let ev = event("Kustomization", "apps", "web", "info", "m");
        let labelled =
            source(json!({"kind": "Kustomization", "name": "*", "matchLabels": {"team": "a"}}));
        let SourceMatch::IfLabelsMatch(selector) = source_matches(&ev, "apps", None, &labelled)
        else {
            panic!("labels are needed");
        };
        let mut labels = BTreeMap::from([("team".to_string(), "a".to_string())]);
        assert!(labels_match(selector, &labels));
        labels.insert("team".into(), "b".into());
        assert!(!labels_match(selector, &labels));
        assert!(labels_match(&BTreeMap::new(), &labels));
    }

    #[test]
    fn error_severity_drops_info_and_trace() {
        let error_only = Some(EventSeverity::Error);
        let any = source(json!({"kind": "Kustomization", "name": "*"}));
        for (severity, expected) in [("info", false), ("trace", false), ("error", true)] {
            let ev = event("Kustomization", "apps", "web", severity, "m");
            assert_eq!(
                source_matches(&ev, "apps", error_only, &any) == SourceMatch::Yes,
                expected,
                "{severity}"
            );
            assert_eq!(source_matches(&ev, "apps", None, &any), SourceMatch::Yes);
        }
    }

    #[test]
    fn inclusion_then_exclusion() {
        let a = alert(json!({
            "providerRef": {"name": "p"}, "eventSources": [],
            "inclusionList": ["^Reconciliation", "["],
            "exclusionList": ["no changes$", "(unclosed"],
        }));
        let verdict = filter_message(&a, "Reconciliation finished");
        assert!(verdict.forwarded);
        assert!(
            verdict
                .invalid
                .iter()
                .any(|m| m.contains("exclusion regex: (unclosed")),
            "{verdict:?}"
        );
        assert!(!filter_message(&a, "Reconciliation finished, no changes").forwarded);
        let other = filter_message(&a, "Health check failed");
        assert!(!other.forwarded);
        assert!(
            other
                .invalid
                .iter()
                .any(|m| m.contains("inclusion regex: [")),
            "{other:?}"
        );
        let open = alert(json!({"providerRef": {"name": "p"}, "eventSources": []}));
        assert_eq!(
            filter_message(&open, "anything"),
            MessageVerdict {
                forwarded: true,
                invalid: vec![]
            }
        );
        // RE2 syntax: unanchored search, (?i) flags.
        let ci = alert(json!({"providerRef": {"name": "p"}, "eventSources": [],
                              "exclusionList": ["(?i)DEPENDENCY"]}));
        assert!(!filter_message(&ci, "waiting on dependency 'x'").forwarded);
    }

    #[test]
    fn quick_filter_uses_every_source() {
        let a = alert(json!({
            "providerRef": {"name": "p"},
            "eventSources": [{"kind": "GitRepository", "name": "*"}, {"kind": "Kustomization", "name": "web"}],
        }));
        assert!(any_source_may_match(
            &a,
            &event("Kustomization", "apps", "web", "info", "m")
        ));
        assert!(!any_source_may_match(
            &a,
            &event("Kustomization", "apps", "api", "info", "m")
        ));
    }
}
