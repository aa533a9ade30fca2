//! An accepted event on its way to the Providers: the Alerts it matches
//! ([`crate::alert_matching`], with the involved object's labels read when
//! a source has `matchLabels`), then for each Alert its Provider and
//! Secrets read, the metadata combined, and the notification posted in a
//! task of its own, so that a slow or unreachable Provider never holds up
//! the others. Every failure ends in a log line, a Warning event on the
//! Alert (Flux's reasons) and a count in `gotk_event_dispatch_total`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::event::Event;
use api::notification::{Alert, Provider};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, ResourceExt};
use notifier::{Notifier, NotifyError, Target, Transport};
use runtime::events::EventRecorder;
use tracing::{debug, info, warn};

use crate::alert_matching::{self, SourceMatch};
use crate::event_metadata::{self, NotForProvider};
use crate::metrics::{DispatchResult, EventMetrics};
use crate::provider_config;

/// Event reasons on Alerts, as Flux's.
pub mod reason {
    /// A notification could not be prepared or sent.
    pub const NOTIFICATION_DISPATCH_FAILED: &str = "NotificationDispatchFailed";
    /// An inclusion or exclusion pattern does not compile.
    pub const INVALID_CONFIG: &str = "InvalidConfig";
    /// The involved object could not be read to match `matchLabels`.
    pub const SOURCE_FETCH_FAILED: &str = "SourceFetchFailed";
    /// Metadata keys set by more than one source.
    pub const METADATA_APPEND_FAILED: &str = "MetadataAppendFailed";
}

/// How long a dispatch waits for the first list of Alerts and Providers.
const STORE_WAIT: Duration = Duration::from_secs(30);
/// How many ready notifiers are kept (one HTTP client each).
const NOTIFIERS_KEPT: usize = 256;

/// Everything dispatching needs, shared by every event.
pub struct Dispatcher {
    client: Client,
    recorder: EventRecorder,
    alerts: Store<Alert>,
    providers: Store<Provider>,
    metrics: EventMetrics,
    no_cross_namespace_refs: bool,
    notifiers: Mutex<HashMap<String, Arc<Notifier>>>,
}

/// `Kind/namespace/name` of an event's object, as Flux writes it.
fn involved(event: &Event) -> String {
    let o = &event.involved_object;
    format!(
        "{}/{}/{}",
        o.kind.as_deref().unwrap_or_default(),
        o.namespace.as_deref().unwrap_or_default(),
        o.name.as_deref().unwrap_or_default()
    )
}

fn key_of(alert: &Alert) -> String {
    format!(
        "{}/{}",
        alert.namespace().unwrap_or_default(),
        alert.name_any()
    )
}

impl Dispatcher {
    /// A dispatcher reading Alerts and Providers from their stores.
    pub fn new(
        client: Client,
        recorder: EventRecorder,
        alerts: Store<Alert>,
        providers: Store<Provider>,
        metrics: EventMetrics,
        no_cross_namespace_refs: bool,
    ) -> Self {
        Self {
            client,
            recorder,
            alerts,
            providers,
            metrics,
            no_cross_namespace_refs,
            notifiers: Mutex::new(HashMap::new()),
        }
    }

    /// Sends `event` (its metadata cleaned) to the Providers of every Alert
    /// it matches. Returns once every notification is prepared; they are
    /// posted in tasks of their own.
    pub async fn dispatch(self: Arc<Self>, mut event: Event) {
        let listed = async {
            let _ = self.alerts.wait_until_ready().await;
            let _ = self.providers.wait_until_ready().await;
        };
        if tokio::time::timeout(STORE_WAIT, listed).await.is_err() {
            warn!("Alerts and Providers not listed yet; matching against what is known");
        }
        event_metadata::exclude_internal(&mut event);
        let object = involved(&event);
        let alerts = self.matching_alerts(&event).await;
        if alerts.is_empty() {
            info!(object = %object, "discarding event, no alerts found for the involved object");
            return;
        }
        info!(object = %object, message = %event.message, "dispatching event");
        for alert in alerts {
            match self.prepare(&event, &alert).await {
                Ok(Some(notification)) => {
                    tokio::spawn(self.clone().post(alert, notification));
                }
                Ok(None) => {}
                Err(failure) => {
                    warn!(alert = %key_of(&alert), object = %object, error = %failure.message,
                          "failed to dispatch notification");
                    self.recorder
                        .warning(
                            alert.as_ref(),
                            reason::NOTIFICATION_DISPATCH_FAILED,
                            &format!(
                                "failed to dispatch notification for {object}: {}",
                                failure.message
                            ),
                        )
                        .await;
                    self.count(&alert, &failure.provider_type, DispatchResult::Failed);
                }
            }
        }
    }

    /// The Alerts whose sources, severity and message filters let `event`
    /// through; suspended Alerts are skipped.
    async fn matching_alerts(&self, event: &Event) -> Vec<Arc<Alert>> {
        let mut labels: Option<Result<BTreeMap<String, String>, String>> = None;
        let mut matched = Vec::new();
        let mut alerts = self.alerts.state();
        // One order for every event: Flux lists Alerts by namespace and name.
        alerts.sort_by_key(|a| key_of(a));
        for alert in alerts {
            if alert.spec.suspend == Some(true)
                || !alert_matching::any_source_may_match(&alert, event)
            {
                continue;
            }
            if !self.sources_match(&alert, event, &mut labels).await {
                continue;
            }
            let verdict = alert_matching::filter_message(&alert, &event.message);
            for invalid in &verdict.invalid {
                warn!(alert = %key_of(&alert), "{invalid}");
                self.recorder
                    .warning(alert.as_ref(), reason::INVALID_CONFIG, invalid)
                    .await;
            }
            if verdict.forwarded {
                matched.push(alert);
            }
        }
        matched
    }

    /// Whether a source of `alert` selects `event`, reading the object's
    /// labels (once per event) when a source needs them.
    async fn sources_match(
        &self,
        alert: &Arc<Alert>,
        event: &Event,
        labels: &mut Option<Result<BTreeMap<String, String>, String>>,
    ) -> bool {
        let namespace = alert.namespace().unwrap_or_default();
        for source in &alert.spec.event_sources {
            match alert_matching::source_matches(
                event,
                &namespace,
                alert.spec.event_severity,
                source,
            ) {
                SourceMatch::No => {}
                SourceMatch::Yes => return true,
                SourceMatch::IfLabelsMatch(selector) => {
                    if labels.is_none() {
                        *labels = Some(self.object_labels(event).await);
                    }
                    match labels.as_ref() {
                        Some(Ok(found)) if alert_matching::labels_match(selector, found) => {
                            return true;
                        }
                        Some(Ok(_)) | None => {}
                        Some(Err(err)) => {
                            warn!(alert = %key_of(alert), error = %err, "error getting the involved object");
                            self.recorder
                                .warning(
                                    alert.as_ref(),
                                    reason::SOURCE_FETCH_FAILED,
                                    &format!(
                                        "error getting source object {}: {err}",
                                        involved(event)
                                    ),
                                )
                                .await;
                            return false;
                        }
                    }
                }
            }
        }
        false
    }

    /// The labels of the event's object, read from the API server.
    async fn object_labels(&self, event: &Event) -> Result<BTreeMap<String, String>, String> {
        let object = &event.involved_object;
        let api_version = object
            .api_version
            .as_deref()
            .filter(|v| !v.is_empty())
            .ok_or("the event's involvedObject has no apiVersion")?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let kind = object.kind.as_deref().unwrap_or_default();
        let name = object.name.as_deref().unwrap_or_default();
        let namespace = object.namespace.as_deref().unwrap_or_default();
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let meta = api
            .get_metadata(name)
            .await
            .map_err(|e| provider_config::short_kube_error(&e))?;
        Ok(meta.metadata.labels.unwrap_or_default())
    }

    /// The notification of `event` through `alert`: `None` when the
    /// Provider is suspended or the event is not for its type.
    async fn prepare(&self, event: &Event, alert: &Alert) -> Result<Option<Notification>, Failure> {
        let alert_namespace = alert.namespace().unwrap_or_default();
        let fail = |provider_type: &str, message: String| Failure {
            provider_type: provider_type.to_string(),
            message,
        };
        let event_namespace = event
            .involved_object
            .namespace
            .as_deref()
            .unwrap_or_default();
        if self.no_cross_namespace_refs && event_namespace != alert_namespace {
            return Err(fail(
                "",
                format!(
                    "discarding event, access denied to cross-namespace sources: alert '{}' can't process event from '{}', cross-namespace references have been blocked",
                    key_of(alert),
                    involved(event)
                ),
            ));
        }
        let provider_name = &alert.spec.provider_ref.name;
        let provider = self
            .provider(&alert_namespace, provider_name)
            .await
            .map_err(|e| fail("", format!("failed to read provider: {e}")))?;
        let provider_type = notifier::type_name(provider.spec.r#type);
        if provider.spec.suspend == Some(true) {
            debug!(alert = %key_of(alert), provider = %provider_name, "provider is suspended");
            return Ok(None);
        }
        if let Err(why) = event_metadata::check_provider_fit(event, provider.spec.r#type) {
            let what = match why {
                NotForProvider::CommitStatusUpdate => {
                    "a commit status update, for commit status providers only"
                }
                NotForProvider::NoCommit => {
                    "event dropped for commit status providers due to missing commit metadata key"
                }
                NotForProvider::NoChangeRequest => {
                    "event dropped for change request providers due to missing change request metadata key"
                }
            };
            debug!(alert = %key_of(alert), provider = %provider_name, "{what}");
            self.count(alert, &provider_type, DispatchResult::Skipped);
            return Ok(None);
        }
        let mut notification = event.clone();
        let conflicts = event_metadata::combine(&mut notification, alert);
        if !conflicts.is_empty() {
            let keys: Vec<String> = conflicts
                .iter()
                .map(|c| format!("{} ({})", c.key, c.sources.join(", ")))
                .collect();
            let message = format!(
                "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information): {}",
                keys.join("; ")
            );
            info!(alert = %key_of(alert), "warning: {message}");
            self.recorder
                .warning(alert, reason::METADATA_APPEND_FAILED, &message)
                .await;
        }
        let secrets = provider_config::fetch_secrets(&self.client, &provider)
            .await
            .map_err(|e| fail(&provider_type, e))?;
        let (target, transport) = provider_config::build(&provider, &secrets).map_err(|e| {
            fail(
                &provider_type,
                format!("failed to initialize notifier for provider '{provider_name}': {e}"),
            )
        })?;
        let token = target.token.clone().filter(|t| !t.is_empty());
        let notifier = self.notifier(&provider, target, &transport).map_err(|e| {
            fail(
                &provider_type,
                format!("failed to initialize notifier for provider '{provider_name}': {e}"),
            )
        })?;
        Ok(Some(Notification {
            event: notification,
            notifier,
            provider_type,
            token,
        }))
    }

    /// The Provider `namespace/name`, from the store or else the API server
    /// (a Provider created a moment ago).
    async fn provider(&self, namespace: &str, name: &str) -> Result<Arc<Provider>, String> {
        if let Some(found) = self.providers.get(&ObjectRef::new(name).within(namespace)) {
            return Ok(found);
        }
        let api: Api<Provider> = Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(provider)) => Ok(Arc::new(provider)),
            Ok(None) => Err(format!("Provider '{namespace}/{name}' not found")),
            Err(e) => Err(provider_config::short_kube_error(&e)),
        }
    }

    /// A notifier for these settings, built once and kept while they last.
    fn notifier(
        &self,
        provider: &Provider,
        target: Target,
        transport: &Transport,
    ) -> Result<Arc<Notifier>, NotifyError> {
        use sha2::{Digest, Sha256};
        let key = hex::encode(Sha256::digest(
            format!("{:?}|{target:?}|{transport:?}", provider.spec.r#type).as_bytes(),
        ));
        let mut notifiers = self.notifiers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = notifiers.get(&key) {
            return Ok(found.clone());
        }
        let notifier = Arc::new(Notifier::new(provider.spec.r#type, target, transport)?);
        if notifiers.len() >= NOTIFIERS_KEPT {
            notifiers.clear();
        }
        notifiers.insert(key, notifier.clone());
        Ok(notifier)
    }

    /// Posts one notification; a failure (after the notifier's retries) is
    /// logged, recorded on the Alert and counted.
    async fn post(self: Arc<Self>, alert: Arc<Alert>, notification: Notification) {
        let object = involved(&notification.event);
        match notification.notifier.post(&notification.event).await {
            Ok(()) => {
                debug!(alert = %key_of(&alert), object = %object, "notification sent");
                self.count(&alert, &notification.provider_type, DispatchResult::Sent);
            }
            Err(NotifyError::Skipped(why)) => {
                debug!(alert = %key_of(&alert), object = %object, reason = %why, "notification skipped");
                self.count(&alert, &notification.provider_type, DispatchResult::Skipped);
            }
            Err(err) => {
                let message = mask(&err.to_string(), notification.token.as_deref());
                warn!(alert = %key_of(&alert), object = %object, error = %message, "failed to send notification");
                self.recorder
                    .warning(
                        alert.as_ref(),
                        reason::NOTIFICATION_DISPATCH_FAILED,
                        &format!("failed to send notification for {object}: {message}"),
                    )
                    .await;
                self.count(&alert, &notification.provider_type, DispatchResult::Failed);
            }
        }
    }

    fn count(&self, alert: &Alert, provider_type: &str, result: DispatchResult) {
        self.metrics.dispatched(
            &alert.namespace().unwrap_or_default(),
            &alert.name_any(),
            provider_type,
            result,
        );
    }
}

/// A notification ready to post.
struct Notification {
    event: Event,
    notifier: Arc<Notifier>,
    provider_type: String,
    token: Option<String>,
}

/// Why a notification could not be prepared.
struct Failure {
    provider_type: String,
    message: String,
}

/// `text` with every occurrence of `token` masked, as Flux masks tokens in
/// errors (some services take them in the URL).
fn mask(text: &str, token: Option<&str>) -> String {
    match token {
        Some(token) if !token.is_empty() => text.replace(token, "*****"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_masked() {
        assert_eq!(
            mask("POST https://api/bot123:abc/send: 500", Some("123:abc")),
            "POST https://api/bot*****/send: 500"
        );
        assert_eq!(mask("plain", None), "plain");
        assert_eq!(mask("plain", Some("")), "plain");
    }
}
