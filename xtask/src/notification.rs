//! What the demo, `cargo xtask bench notification` and the e2e tests use
//! around notification-controller on a [`Stack`]: Providers, Alerts and
//! Receivers in `flux-system` and GitHub push webhooks signed as GitHub
//! signs them. The services notifications go to (Slack, GitHub's API, a
//! generic webhook) are played by `e2e::http_recorder`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::notification::Receiver;
use e2e::git_server::Repo;
use e2e::http_recorder::HttpRecorder;
use hmac::{Hmac, KeyInit, Mac};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::demo::{SYSTEM_NAMESPACE, Stack, condition};

/// The `notification.toolkit.fluxcd.io` version of Providers and Alerts.
const ALERTS_API_VERSION: &str = "notification.toolkit.fluxcd.io/v1";
/// The version of Receivers.
const RECEIVERS_API_VERSION: &str = "notification.toolkit.fluxcd.io/v1";
/// How long notification-controller may take to see a new object.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

/// GitHub's `X-Hub-Signature-256` of `body` for a webhook whose secret is
/// `secret`: `sha256=` and the hex HMAC-SHA256.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length: new_from_slice cannot fail here.
    let hex = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("sha256={hex}")
}

/// The body GitHub sends for a push of `after` (on top of `before`) to
/// `refs/heads/<branch>` of `owner/repo` (the fields of GitHub's `push`
/// event a receiver reads, and the usual others).
pub fn github_push_payload(
    owner_repo: &str,
    clone_url: &str,
    branch: &str,
    before: &str,
    after: &str,
) -> Vec<u8> {
    let name = owner_repo.rsplit('/').next().unwrap_or(owner_repo);
    let owner = owner_repo.split('/').next().unwrap_or(owner_repo);
    json!({
        "ref": format!("refs/heads/{branch}"),
        "before": before,
        "after": after,
        "created": false,
        "deleted": false,
        "forced": false,
        "compare": format!("https://github.com/{owner_repo}/compare/{}...{}",
            before.get(..12).unwrap_or(before), after.get(..12).unwrap_or(after)),
        "repository": {
            "name": name,
            "full_name": owner_repo,
            "owner": {"login": owner, "name": owner},
            "clone_url": clone_url,
            "default_branch": branch,
        },
        "pusher": {"name": "developer", "email": "developer@example.com"},
        "sender": {"login": "developer"},
        "head_commit": {"id": after, "message": "a change", "distinct": true},
    })
    .to_string()
    .into_bytes()
}

/// What notification-controller's webhook server answered.
#[derive(Debug)]
pub struct WebhookAnswer {
    /// The HTTP status.
    pub status: u16,
    /// The one-line reason in the body.
    pub body: String,
}

/// POSTs `body` to `url` as GitHub delivers a webhook: JSON, the event
/// name in `X-GitHub-Event`, the body's HMAC-SHA256 keyed with `secret` in
/// `X-Hub-Signature-256`.
pub async fn send_github_webhook(
    http: &reqwest::Client,
    url: &str,
    event: &str,
    secret: &str,
    body: Vec<u8>,
) -> Result<WebhookAnswer> {
    let signature = github_signature(secret, &body);
    let delivery = format!("{:016x}", rand_u64());
    let response = http
        .post(url)
        .header("Content-Type", "application/json")
        .header("User-Agent", "GitHub-Hookshot/ferroflux")
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", delivery)
        .header("X-GitHub-Hook-ID", "1")
        .header("X-Hub-Signature-256", signature)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    Ok(WebhookAnswer {
        status: response.status().as_u16(),
        body: response.text().await.unwrap_or_default(),
    })
}

/// A number that differs between calls (delivery ids need not be secret).
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish()
}

impl Stack {
    /// Pushes a commit of `files` to `main` of `repo` without telling
    /// source-controller (a developer's `git push`); returns its sha.
    pub async fn push(
        &self,
        repo: &Repo,
        files: &[(&str, String)],
        message: &str,
    ) -> Result<String> {
        tokio::task::block_in_place(|| {
            repo.commit(files.iter().map(|(p, c)| (*p, c.as_str())), &[], message)
        })
    }

    /// A Secret `name` in `flux-system` with `data` as its string data.
    pub async fn secret(&self, name: &str, data: Value) -> Result<()> {
        self.apply_in_system_namespace(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name}, "stringData": data,
        }))
        .await
    }

    /// A Provider `name` of `type_` posting to `address`, with more `spec`
    /// fields (`secretRef`, `channel`, ...).
    pub async fn provider(
        &self,
        name: &str,
        type_: &str,
        address: &str,
        spec: Value,
    ) -> Result<()> {
        let mut full = json!({"type": type_, "address": address});
        merge(&mut full, spec);
        self.apply_in_system_namespace(json!({
            "apiVersion": ALERTS_API_VERSION, "kind": "Provider",
            "metadata": {"name": name}, "spec": full,
        }))
        .await
    }

    /// An Alert `name` sending the events of `event_sources` of at least
    /// `severity` (`info` or `error`) to Provider `provider`.
    pub async fn alert(
        &self,
        name: &str,
        provider: &str,
        severity: &str,
        event_sources: Value,
    ) -> Result<()> {
        self.apply_in_system_namespace(json!({
            "apiVersion": ALERTS_API_VERSION, "kind": "Alert",
            "metadata": {"name": name},
            "spec": {"providerRef": {"name": provider}, "eventSeverity": severity,
                "eventSources": event_sources},
        }))
        .await
    }

    /// Waits until notification-controller acts on the Alerts created so
    /// far: it learns of them through a watch, so an event posted right
    /// after an Alert's creation could find no Alert. A probe Alert made
    /// after them reaching its Provider means the earlier ones are in its
    /// store too (one watch, in order); the probe is deleted afterwards.
    pub async fn alerts_in_effect(&self) -> Result<()> {
        const PROBE: &str = "ferroflux-probe";
        let recorder = HttpRecorder::start().await?;
        self.provider(PROBE, "generic", &recorder.url, json!({}))
            .await?;
        self.alert(
            PROBE,
            PROBE,
            "info",
            json!([{"kind": "Kustomization", "name": PROBE}]),
        )
        .await?;
        let http = reqwest::Client::new();
        let url = self.events_url()?;
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        for attempt in 0.. {
            let event = kustomization_event(PROBE, "info", &format!("probe {attempt}"), "Info");
            let response = http
                .post(&url)
                .json(&event)
                .timeout(Duration::from_secs(10))
                .send()
                .await?;
            if response.status().as_u16() != 202 {
                bail!(
                    "notification-controller refused a probe event: {}",
                    response.status()
                );
            }
            if recorder
                .wait_for(Duration::from_millis(500), |_| true)
                .await
                .is_some()
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "notification-controller did not act on a new Alert in {SETTLE_TIMEOUT:?}\n{}",
                    self.logs(30)
                );
            }
        }
        for kind in ["Alert", "Provider"] {
            self.delete_in_system_namespace(ALERTS_API_VERSION, kind, PROBE)
                .await?;
        }
        Ok(())
    }

    async fn delete_in_system_namespace(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<()> {
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group, version, kind,
        ));
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), SYSTEM_NAMESPACE, &resource);
        api.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {kind} {SYSTEM_NAMESPACE}/{name}"))?;
        Ok(())
    }

    /// A GitHub Receiver `name` for `push` events, authenticated by `token`
    /// (Secret `<name>-token`), asking for a reconciliation of the
    /// `resources` (kind, name) in `flux-system`. Waits until it is Ready
    /// and the webhook server answers GitHub's `ping` on its path (as GitHub
    /// pings a new webhook); returns the webhook URL.
    pub async fn github_receiver(
        &self,
        name: &str,
        token: &str,
        resources: &[(&str, &str)],
    ) -> Result<String> {
        let secret = format!("{name}-token");
        self.secret(&secret, json!({"token": token})).await?;
        let resources: Vec<Value> = resources
            .iter()
            .map(|(kind, name)| json!({"kind": kind, "name": name}))
            .collect();
        self.apply_in_system_namespace(json!({
            "apiVersion": RECEIVERS_API_VERSION, "kind": "Receiver",
            "metadata": {"name": name},
            "spec": {"type": "github", "events": ["ping", "push"],
                "secretRef": {"name": secret}, "resources": resources},
        }))
        .await?;
        let api: Api<Receiver> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        let path = self
            .poll(&api, name, |receiver: &Receiver| {
                let status = receiver.status.as_ref()?;
                let ready = condition(status.conditions.as_ref(), "Ready")?;
                (ready.status == "True").then(|| status.webhook_path.clone())?
            })
            .await?;
        let url = self.webhook_url(&path)?;
        let http = reqwest::Client::new();
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        loop {
            let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1,
                "hook": {"type": "Repository", "events": ["push"]}})
            .to_string()
            .into_bytes();
            let answer = send_github_webhook(&http, &url, "ping", token, ping).await?;
            match answer.status {
                200 => return Ok(url),
                // Not in the webhook server's store yet, or not Ready there yet.
                404 | 503 if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                status => bail!(
                    "Receiver {name} answered a signed ping with {status}: {}\n{}",
                    answer.body,
                    self.logs(30)
                ),
            }
        }
    }
}

/// An event about Kustomization `flux-system/<name>` in Flux's wire format,
/// as kustomize-controller posts it.
pub fn kustomization_event(name: &str, severity: &str, message: &str, reason: &str) -> Value {
    json!({
        "involvedObject": {
            "kind": "Kustomization", "namespace": SYSTEM_NAMESPACE, "name": name,
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        },
        "severity": severity,
        "timestamp": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "message": message,
        "reason": reason,
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-0",
    })
}

fn merge(into: &mut Value, from: Value) {
    if let (Value::Object(into), Value::Object(from)) = (into, from) {
        into.extend(from);
    }
}

/// A one-ConfigMap kustomization at `app/`: ConfigMap `name` with
/// `data.level`, so a new commit is a new `level`.
pub fn one_config_map_app(name: &str, level: &str) -> Vec<(String, String)> {
    vec![
        (
            "app/kustomization.yaml".to_owned(),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- configmap.yaml\n".to_owned(),
        ),
        ("app/configmap.yaml".to_owned(), config_map_manifest(name, level)),
    ]
}

/// ConfigMap `name` with `data.level`.
pub fn config_map_manifest(name: &str, level: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  level: {level}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_github_documents() {
        // GitHub's "Validating webhook deliveries" example: secret
        // "It's a Secret to Everybody", payload "Hello, World!".
        assert_eq!(
            github_signature("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn push_payload_names_the_branch_and_commits() {
        let body = github_push_payload("org/podinfo", "http://git/podinfo", "main", "a", "b");
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(json["ref"], "refs/heads/main");
        assert_eq!(json["after"], "b");
        assert_eq!(json["repository"]["full_name"], "org/podinfo");
        assert_eq!(json["repository"]["name"], "podinfo");
    }
}
