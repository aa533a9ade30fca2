//! Events for Flux objects: a Kubernetes event (`Normal` on progress,
//! `Warning` on failure, with Flux's reason strings) and, when
//! `--events-addr` is set, the same event in Flux's wire format POSTed to
//! notification-controller, as Flux's controllers do.
//!
//! Metadata keys are given bare (`revision`) and sent with the object's API
//! group as prefix (`kustomize.toolkit.fluxcd.io/revision`), together with
//! the object's `event.toolkit.fluxcd.io/*` annotations. Posting happens in
//! the background: a slow or absent notification-controller never holds up
//! a reconciliation.

mod kubernetes;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use api::event::{ANNOTATION_PREFIX, Event as FluxEvent, Severity};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Client;
use kube::Resource;
use tokio::sync::Semaphore;
use tracing::warn;

/// Flux's event client: a 5 s timeout per attempt...
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// ...and up to 4 retries after the first attempt (go-retryablehttp's default)...
const POST_RETRIES: u32 = 4;
/// ...waiting 1 s, then twice as long each time, at most 30 s.
const FIRST_RETRY_WAIT: Duration = Duration::from_secs(1);
const MAX_RETRY_WAIT: Duration = Duration::from_secs(30);
/// Events posted at once; more wait their turn rather than open a
/// connection each during a mass reconciliation.
const POSTS_IN_FLIGHT: usize = 8;

/// Publishes events on behalf of one controller.
#[derive(Clone)]
pub struct EventRecorder {
    kube_events: Arc<kubernetes::KubeEvents>,
    controller: String,
    instance: Option<String>,
    webhook: Option<Arc<Webhook>>,
}

/// notification-controller's event endpoint and the client posting to it.
struct Webhook {
    url: reqwest::Url,
    client: reqwest::Client,
    in_flight: Semaphore,
    retry_wait: Duration,
}

impl EventRecorder {
    /// A recorder reporting as `controller` (e.g. `source-controller`),
    /// writing Kubernetes events only.
    pub fn new(client: Client, controller: &str) -> Self {
        let instance = reporting_instance();
        Self {
            kube_events: Arc::new(kubernetes::KubeEvents::new(
                client,
                controller,
                instance.as_deref(),
            )),
            controller: controller.to_string(),
            instance,
            webhook: None,
        }
    }

    /// The same recorder, also posting each event to `events_addr`
    /// (`--events-addr`; empty: Kubernetes events only).
    pub fn posting_to(mut self, events_addr: &str) -> Result<Self, crate::Error> {
        self.webhook = Webhook::new(events_addr, FIRST_RETRY_WAIT)?.map(Arc::new);
        Ok(self)
    }

    /// A `Normal` event.
    pub async fn normal<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: &str,
    ) {
        self.publish(obj, Severity::Info, reason, message, &[])
            .await;
    }

    /// A `Warning` event.
    pub async fn warning<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        reason: &str,
        message: &str,
    ) {
        self.publish(obj, Severity::Error, reason, message, &[])
            .await;
    }

    /// An event of `severity` with `metadata` (bare keys such as
    /// `revision`, `commit_status`). A trace event is a `Normal` Kubernetes
    /// event only, never posted (as Flux).
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        severity: Severity,
        reason: &str,
        message: &str,
        metadata: &[(&str, &str)],
    ) {
        // The events API caps the note at 1 kB.
        let note = truncate(message, 1024);
        let kube_event = kubernetes::Note {
            warning: severity == Severity::Error,
            reason,
            note: &note,
        };
        let reference = obj.object_ref(&());
        // An event that cannot be written must never fail a reconciliation.
        if let Err(err) = self.kube_events.publish(&reference, &kube_event).await {
            warn!(%reason, error = %err, "failed to publish event");
        }
        let Some(webhook) = &self.webhook else {
            return;
        };
        if severity == Severity::Trace {
            return;
        }
        let flux_event = FluxEvent {
            involved_object: reference,
            severity,
            timestamp: Time(k8s_openapi::jiff::Timestamp::now()),
            message: truncate(message, api::event::MAX_MESSAGE_LENGTH),
            reason: reason.to_string(),
            metadata: event_metadata(obj, metadata),
            reporting_controller: self.controller.clone(),
            reporting_instance: self.instance.clone(),
            action: None,
            related_object: None,
        };
        let webhook = webhook.clone();
        tokio::spawn(async move { webhook.post(&flux_event).await });
    }
}

impl Webhook {
    fn new(address: &str, retry_wait: Duration) -> Result<Option<Self>, crate::Error> {
        if address.is_empty() {
            return Ok(None);
        }
        let invalid = |reason: String| crate::Error::InvalidFlag {
            flag: "--events-addr",
            value: address.to_string(),
            reason,
        };
        let url = reqwest::Url::parse(address).map_err(|e| invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(
                "the address must be an http:// or https:// URL".into(),
            ));
        }
        let client = env_proxy::client_builder()
            .timeout(POST_TIMEOUT)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Some(Self {
            url,
            client,
            in_flight: Semaphore::new(POSTS_IN_FLIGHT),
            retry_wait,
        }))
    }

    /// POSTs `event`, retrying connection failures and server errors; a 429
    /// is notification-controller saying it has seen this event already.
    async fn post(&self, event: &FluxEvent) {
        let Ok(_permit) = self.in_flight.acquire().await else {
            return;
        };
        let mut wait = self.retry_wait;
        for attempt in 0..=POST_RETRIES {
            let outcome = self.client.post(self.url.clone()).json(event).send().await;
            let retry = match &outcome {
                Ok(response) => {
                    let status = response.status();
                    status.is_server_error() && status != reqwest::StatusCode::NOT_IMPLEMENTED
                }
                Err(_) => true,
            };
            if !retry {
                if let Ok(response) = &outcome {
                    let status = response.status();
                    if !status.is_success() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
                        warn!(url = %self.url, %status, reason = %event.reason, "notification-controller refused the event");
                    }
                }
                return;
            }
            if attempt == POST_RETRIES {
                let cause = match outcome {
                    Ok(response) => response.status().to_string(),
                    Err(err) => err.to_string(),
                };
                warn!(url = %self.url, error = %cause, reason = %event.reason, "failed to post event to notification-controller");
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(MAX_RETRY_WAIT);
        }
    }
}

/// `metadata` with the object's group as key prefix, plus the object's
/// `event.toolkit.fluxcd.io/*` annotations; `None` when empty.
fn event_metadata<K: Resource<DynamicType = ()>>(
    obj: &K,
    metadata: &[(&str, &str)],
) -> Option<BTreeMap<String, String>> {
    let group = K::group(&());
    let mut all: BTreeMap<String, String> = metadata
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| (format!("{group}/{key}"), (*value).to_string()))
        .collect();
    if let Some(annotations) = &obj.meta().annotations {
        for (key, value) in annotations {
            if key.starts_with(ANNOTATION_PREFIX) {
                all.insert(key.clone(), value.clone());
            }
        }
    }
    (!all.is_empty()).then_some(all)
}

/// The pod's name (Flux sends the hostname, which is the pod's name).
fn reporting_instance() -> Option<String> {
    std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use api::kustomize::Kustomization;
    use axum::http::StatusCode;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate(&"x".repeat(2000), 1024).len(), 1024);
    }

    fn kustomization() -> Kustomization {
        let mut ks: Kustomization = serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "annotations": {
                "event.toolkit.fluxcd.io/cluster": "prod", "other.io/x": "no"}},
            "spec": {"interval": "5m", "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": "repo"}}
        }))
        .unwrap();
        ks.metadata.uid = Some("uid-1".into());
        ks
    }

    #[test]
    fn metadata_carries_the_group_and_event_annotations() {
        let metadata = event_metadata(
            &kustomization(),
            &[("revision", "main@sha1:abc"), ("originRevision", "")],
        )
        .unwrap();
        assert_eq!(
            metadata,
            BTreeMap::from([
                (
                    "event.toolkit.fluxcd.io/cluster".to_string(),
                    "prod".to_string()
                ),
                (
                    "kustomize.toolkit.fluxcd.io/revision".to_string(),
                    "main@sha1:abc".to_string()
                ),
            ])
        );
    }

    #[test]
    fn refuses_an_address_that_is_not_a_url() {
        assert!(Webhook::new("", FIRST_RETRY_WAIT).unwrap().is_none());
        assert!(Webhook::new("notification-controller:9090", FIRST_RETRY_WAIT).is_err());
        assert!(
            Webhook::new("http://notification-controller./", FIRST_RETRY_WAIT)
                .unwrap()
                .is_some()
        );
    }

    /// A loopback endpoint answering with `statuses` in turn (then 202),
    /// keeping every body it received.
    async fn endpoint(statuses: Vec<StatusCode>) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let answers = Arc::new(Mutex::new(statuses));
        let seen = received.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let seen = seen.clone();
                let answers = answers.clone();
                async move {
                    seen.lock().unwrap().push(body);
                    let mut answers = answers.lock().unwrap();
                    if answers.is_empty() {
                        StatusCode::ACCEPTED
                    } else {
                        answers.remove(0)
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}/"), received)
    }

    fn flux_event() -> FluxEvent {
        FluxEvent {
            involved_object: kustomization().object_ref(&()),
            severity: Severity::Error,
            timestamp: Time(k8s_openapi::jiff::Timestamp::now()),
            message: "apply failed".into(),
            reason: "ReconciliationFailed".into(),
            metadata: event_metadata(&kustomization(), &[("revision", "main@sha1:abc")]),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: Some("kustomize-controller-0".into()),
            action: None,
            related_object: None,
        }
    }

    #[tokio::test]
    async fn posts_flux_json_and_retries_server_errors() {
        let (url, received) = endpoint(vec![
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::BAD_GATEWAY,
        ])
        .await;
        let webhook = Webhook::new(&url, Duration::from_millis(10))
            .unwrap()
            .unwrap();
        webhook.post(&flux_event()).await;
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 3, "two server errors, then accepted");
        let body = &received[2];
        assert_eq!(body["involvedObject"]["kind"], "Kustomization");
        assert_eq!(
            body["involvedObject"]["apiVersion"],
            "kustomize.toolkit.fluxcd.io/v1"
        );
        assert_eq!(body["involvedObject"]["uid"], "uid-1");
        assert_eq!(body["severity"], "error");
        assert_eq!(body["reason"], "ReconciliationFailed");
        assert_eq!(body["reportingController"], "kustomize-controller");
        assert_eq!(
            body["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
            "main@sha1:abc"
        );
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[tokio::test]
    async fn a_duplicate_is_not_retried() {
        let (url, received) = endpoint(vec![StatusCode::TOO_MANY_REQUESTS]).await;
        let webhook = Webhook::new(&url, Duration::from_millis(10))
            .unwrap()
            .unwrap();
        webhook.post(&flux_event()).await;
        assert_eq!(received.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn gives_up_after_four_retries() {
        let (url, received) = endpoint(vec![StatusCode::SERVICE_UNAVAILABLE; 10]).await;
        let webhook = Webhook::new(&url, Duration::from_millis(1))
            .unwrap()
            .unwrap();
        webhook.post(&flux_event()).await;
        assert_eq!(received.lock().unwrap().len(), 5);
    }
}
