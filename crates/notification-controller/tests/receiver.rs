//! The Receiver webhook server against the real control plane: the server
//! runs in the test process (`ReceiverServer::new(...).serve(...)`), fed by
//! a real Receiver informer; Receivers, Secrets and GitRepositories are
//! real objects. The Receiver reconciler is not part of these tests, so
//! each test writes the Receiver's `status.webhookPath` and Ready condition
//! itself, as that reconciler would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use api::notification::Receiver;
use api::source::GitRepository;
use aws_lc_rs::hmac;
use e2e::cluster::TestNamespace;
use e2e::objects::NamespacedObject;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use notification_controller::receiver_server::{MAX_BODY_BYTES, ReceiverServer, webhook_path};
use runtime::metrics::Metrics;
use runtime::reconcile_request::REQUESTED_AT;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "a-receiver-token-0123456789";

/// A test's namespace, with a Receiver server watching it.
struct Env {
    namespace: TestNamespace,
    client: Client,
    store: Store<Receiver>,
    url: String,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Env {
    async fn start(test: &str, no_cross_namespace_refs: bool) -> Result<Env> {
        let cluster = e2e::cluster::shared().await?;
        let namespace = cluster.test_namespace(test).await?;
        let client = cluster.client().await?;
        let shutdown = CancellationToken::new();

        let (store, writer) = reflector::store::<Receiver>();
        let receivers = Api::<Receiver>::namespaced(client.clone(), namespace.name());
        let informer = watcher(receivers, watcher::Config::default())
            .reflect(writer)
            .applied_objects()
            .for_each(|_| futures::future::ready(()));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = informer => {}
                () = stop.cancelled() => {}
            }
        });

        let metrics = Arc::new(Metrics::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let server = ReceiverServer::new(
            client.clone(),
            store.clone(),
            metrics.clone(),
            no_cross_namespace_refs,
        );
        tokio::spawn(server.serve(listener, shutdown.clone()));
        Ok(Env {
            namespace,
            client,
            store,
            url,
            metrics,
            http: reqwest::Client::new(),
            shutdown,
        })
    }

    fn ns(&self) -> &str {
        self.namespace.name()
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), self.ns())
    }

    async fn apply<K: NamespacedObject>(&self, object: Value) -> Result<K> {
        e2e::objects::apply(&self.api(), object).await
    }

    async fn token_secret(&self, name: &str) -> Result<()> {
        self.apply::<Secret>(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name},
            "stringData": {"token": TOKEN},
        }))
        .await
        .map(|_| ())
    }

    async fn git_repository(&self, name: &str, labels: Value) -> Result<()> {
        self.apply::<GitRepository>(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "labels": labels},
            "spec": {"url": format!("https://git.example.invalid/{name}"), "interval": "10m"},
        }))
        .await
        .map(|_| ())
    }

    /// Creates the Receiver `name` with `spec` (its Secret `<name>-token`
    /// too), marks it Ready with its webhook path as the Receiver
    /// reconciler does, waits for the server's informer to see it and
    /// returns the path.
    async fn receiver(&self, name: &str, mut spec: Value) -> Result<String> {
        let secret = format!("{name}-token");
        self.token_secret(&secret).await?;
        spec["secretRef"] = json!({"name": secret});
        self.apply::<Receiver>(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": name},
            "spec": spec,
        }))
        .await?;
        let path = webhook_path(TOKEN, name, self.ns());
        self.api::<Receiver>()
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {
                    "webhookPath": path,
                    "observedGeneration": 1,
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "Succeeded",
                        "message": format!("Receiver initialized for path: {path}"),
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }],
                }})),
            )
            .await
            .with_context(|| format!("writing the status of Receiver {name}"))?;
        self.wait_for_store(|r| {
            r.meta().name.as_deref() == Some(name)
                && r.status.as_ref().and_then(|s| s.webhook_path.as_deref()) == Some(path.as_str())
        })
        .await?;
        Ok(path)
    }

    async fn wait_for_store(&self, found: impl Fn(&Receiver) -> bool) -> Result<()> {
        for _ in 0..200 {
            if self.store.state().iter().any(|r| found(r)) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the Receiver informer never saw the expected Receiver")
    }

    async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<(u16, String)> {
        let mut request = self.http.post(format!("{}{path}", self.url)).body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }

    async fn requested_at(&self, name: &str) -> Result<Option<String>> {
        let repo = self.api::<GitRepository>().get(name).await?;
        Ok(repo
            .metadata
            .annotations
            .unwrap_or_default()
            .get(REQUESTED_AT)
            .cloned())
    }
}

fn github_signature(body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, TOKEN.as_bytes());
    format!("sha256={}", hex::encode(hmac::sign(&key, body).as_ref()))
}

/// A GitHub push event, as GitHub delivers it (trimmed).
fn push_event(after: &str) -> Vec<u8> {
    json!({
        "ref": "refs/heads/main",
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "repository": {"full_name": "org/app", "clone_url": "https://github.com/org/app.git"},
        "pusher": {"name": "dev"},
    })
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn github_push_annotates_the_git_repository_only_when_signed_with_the_token() -> Result<()> {
    let env = Env::start("receiver-github", false).await?;
    env.git_repository("app", json!({})).await?;
    let path = env
        .receiver(
            "github",
            json!({
                "type": "github",
                "events": ["push"],
                "resources": [{"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    assert_eq!(
        path,
        format!(
            "/hook/{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                format!("{TOKEN}github{}", env.ns()).as_bytes()
            ))
        )
    );

    // Signed with another secret: refused, nothing annotated.
    let body = push_event("1111111111111111111111111111111111111111");
    let forged = {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"not-the-token");
        format!("sha256={}", hex::encode(hmac::sign(&key, &body).as_ref()))
    };
    let github = |signature: String| {
        vec![
            ("X-GitHub-Event", "push".to_string()),
            (
                "X-GitHub-Delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string(),
            ),
            ("Content-Type", "application/json".to_string()),
            ("X-Hub-Signature-256", signature),
        ]
    };
    let send = |pairs: Vec<(&'static str, String)>, body: Vec<u8>| {
        let env = &env;
        let path = path.clone();
        async move {
            let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.post(&path, &refs, body).await
        }
    };
    let (status, text) = send(github(forged), body.clone()).await?;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("X-Hub-Signature-256"), "{text}");
    // No signature at all.
    let unsigned: Vec<_> = github(String::new())
        .into_iter()
        .filter(|(k, _)| *k != "X-Hub-Signature-256")
        .collect();
    assert_eq!(send(unsigned, body.clone()).await?.0, 401);
    assert_eq!(env.requested_at("app").await?, None);

    // GitHub's ping when the webhook is created: verified, nothing to reconcile.
    let ping = br#"{"zen":"Design for failure.","hook_id":1}"#.to_vec();
    let mut ping_headers = github(github_signature(&ping));
    ping_headers[0].1 = "ping".into();
    let (status, text) = send(ping_headers, ping).await?;
    assert_eq!(status, 200, "{text}");
    assert_eq!(env.requested_at("app").await?, None);

    // Properly signed: the GitRepository is asked to reconcile.
    let (status, text) = send(github(github_signature(&body)), body.clone()).await?;
    assert_eq!(status, 200, "{text}");
    let first = env
        .requested_at("app")
        .await?
        .context("the push did not annotate the GitRepository")?;
    // Go's time.Time format, as Flux writes it.
    assert!(first.ends_with(" +0000 UTC"), "{first}");

    // An event spec.events does not list: refused, annotation untouched.
    let mut release = github(github_signature(&body));
    release[0].1 = "release".into();
    let (status, text) = send(release, body.clone()).await?;
    assert_eq!(status, 400, "{text}");
    assert_eq!(
        env.requested_at("app").await?.as_deref(),
        Some(first.as_str())
    );

    // The next push changes the token.
    let next = push_event("2222222222222222222222222222222222222222");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (status, text) = send(github(github_signature(&next)), next).await?;
    assert_eq!(status, 200, "{text}");
    let second = env.requested_at("app").await?.context("annotation gone")?;
    assert_ne!(first, second);

    // A wrong signature after that leaves the annotation as it is.
    let (status, _) = send(github("sha256=00".into()), body.clone()).await?;
    assert_eq!(status, 401);
    assert_eq!(env.requested_at("app").await?, Some(second));

    // The requests are counted under Flux's metric names.
    let text = env.metrics.encode()?;
    for code in ["200", "400", "401"] {
        let line = format!(
            r#"gotk_receiver_http_request_duration_seconds_count{{service="",handler="/hook/",method="POST",code="{code}"}}"#
        );
        assert!(text.contains(&line), "{line} missing in\n{text}");
    }
    assert!(text.contains(r#"gotk_receiver_http_request_duration_seconds_count{service="",handler="/hook/",method="POST",code="401"} 3"#), "{text}");
    Ok(())
}

#[tokio::test]
async fn bad_requests_are_answered_without_annotating() -> Result<()> {
    let env = Env::start("receiver-bad-input", false).await?;
    env.git_repository("app", json!({})).await?;
    let resources = json!([{"kind": "GitRepository", "name": "app"}]);
    let generic = env
        .receiver(
            "generic",
            json!({"type": "generic", "resources": resources}),
        )
        .await?;
    let dockerhub = env
        .receiver(
            "dockerhub",
            json!({"type": "dockerhub", "resources": resources}),
        )
        .await?;
    let github = env
        .receiver("github", json!({"type": "github", "resources": resources}))
        .await?;

    // An unknown path, and paths outside /hook/.
    let unknown = webhook_path("another-token", "generic", env.ns());
    let (status, text) = env.post(&unknown, &[], b"{}".to_vec()).await?;
    assert_eq!(status, 404, "{text}");
    assert_eq!(env.post("/", &[], Vec::new()).await?.0, 404);
    assert_eq!(env.post("/hook/", &[], Vec::new()).await?.0, 404);

    // A DockerHub payload that is not one.
    let (status, text) = env
        .post(
            &dockerhub,
            &[("Content-Type", "application/json")],
            b"{\"push_data\": [".to_vec(),
        )
        .await?;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("cannot decode the DockerHub webhook payload"),
        "{text}"
    );

    // A signed GitHub delivery whose JSON is broken.
    let broken = b"{\"ref\": ".to_vec();
    let signature = github_signature(&broken);
    let (status, text) = env
        .post(
            &github,
            &[
                ("X-GitHub-Event", "push"),
                ("Content-Type", "application/json"),
                ("X-Hub-Signature-256", &signature),
            ],
            broken,
        )
        .await?;
    assert_eq!(status, 400, "{text}");

    // A body over the cap.
    let (status, text) = env
        .post(&generic, &[], vec![b'x'; MAX_BODY_BYTES + 1])
        .await?;
    assert_eq!(status, 413, "{text}");
    assert_eq!(env.requested_at("app").await?, None);

    // A suspended Receiver answers 503 and annotates nothing.
    env.api::<Receiver>()
        .patch(
            "generic",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    env.wait_for_store(|r| {
        r.meta().name.as_deref() == Some("generic") && r.spec.suspend == Some(true)
    })
    .await?;
    let (status, text) = env.post(&generic, &[], Vec::new()).await?;
    assert_eq!(status, 503, "{text}");
    assert_eq!(env.requested_at("app").await?, None);

    // The payload a DockerHub push really carries is accepted.
    let push = json!({
        "callback_url": "https://registry.hub.docker.com/u/org/app/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "6.1.0"},
        "repository": {"repo_name": "org/app", "repo_url": "https://registry.hub.docker.com/u/org/app/", "name": "app", "namespace": "org"},
    });
    let (status, text) = env
        .post(
            &dockerhub,
            &[("Content-Type", "application/json")],
            push.to_string().into_bytes(),
        )
        .await?;
    assert_eq!(status, 200, "{text}");
    assert!(env.requested_at("app").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn wildcard_labels_and_cel_filters_choose_the_objects() -> Result<()> {
    let env = Env::start("receiver-select", false).await?;
    env.git_repository("a-one", json!({"team": "a"})).await?;
    env.git_repository("a-two", json!({"team": "a"})).await?;
    env.git_repository("b-one", json!({"team": "b"})).await?;
    env.git_repository("b-two", json!({"team": "b"})).await?;
    let path = env
        .receiver(
            "select",
            json!({
                "type": "generic",
                "resources": [
                    // Every team-a repository...
                    {"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                     "name": "*", "matchLabels": {"team": "a"}},
                    // ...and b-two only when the request says so (its own filter).
                    {"kind": "GitRepository", "name": "b-two", "filter": "req.include_b == true"},
                ],
                // ...except the ones the request names.
                "resourceFilter": "!(res.metadata.name in req.skip)",
            }),
        )
        .await?;
    let body = json!({"skip": ["a-two"], "include_b": false})
        .to_string()
        .into_bytes();
    let (status, text) = env
        .post(&path, &[("Content-Type", "application/json")], body)
        .await?;
    assert_eq!(status, 200, "{text}");
    let env = &env;
    let annotated = |name: &'static str| async move { env.requested_at(name).await };
    assert!(
        annotated("a-one").await?.is_some(),
        "a-one: labelled and not skipped"
    );
    assert_eq!(
        annotated("a-two").await?,
        None,
        "a-two: excluded by resourceFilter"
    );
    assert_eq!(
        annotated("b-one").await?,
        None,
        "b-one: not labelled team=a"
    );
    assert_eq!(
        annotated("b-two").await?,
        None,
        "b-two: its own filter is false"
    );

    let body = json!({"skip": [], "include_b": true})
        .to_string()
        .into_bytes();
    let (status, text) = env
        .post(&path, &[("Content-Type", "application/json")], body)
        .await?;
    assert_eq!(status, 200, "{text}");
    assert!(annotated("a-two").await?.is_some());
    assert!(annotated("b-two").await?.is_some());
    assert_eq!(annotated("b-one").await?, None);

    // A JSON body the filters cannot read.
    let (status, text) = env
        .post(
            &path,
            &[("Content-Type", "application/json")],
            b"not json".to_vec(),
        )
        .await?;
    assert_eq!(status, 400, "{text}");
    Ok(())
}

#[tokio::test]
async fn cross_namespace_resources_are_refused_with_no_cross_namespace_refs() -> Result<()> {
    let env = Env::start("receiver-cross-ns", true).await?;
    let cluster = e2e::cluster::shared().await?;
    let other = cluster.test_namespace("receiver-cross-ns-other").await?;
    Api::<GitRepository>::namespaced(env.client.clone(), other.name())
        .patch(
            "app",
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "app"},
                "spec": {"url": "https://git.example.invalid/app", "interval": "10m"},
            })),
        )
        .await?;
    env.git_repository("local", json!({})).await?;
    let path = env
        .receiver(
            "cross",
            json!({
                "type": "generic",
                "resources": [
                    {"kind": "GitRepository", "name": "app", "namespace": other.name()},
                    {"kind": "GitRepository", "name": "local"},
                ],
            }),
        )
        .await?;
    let (status, text) = env.post(&path, &[], Vec::new()).await?;
    assert_eq!(status, 500, "{text}");
    assert!(
        text.contains("cross-namespace references are not allowed"),
        "{text}"
    );
    // The allowed one is still reconciled; the other is not touched.
    assert!(env.requested_at("local").await?.is_some());
    let remote = Api::<GitRepository>::namespaced(env.client.clone(), other.name())
        .get("app")
        .await?;
    let annotations: BTreeMap<String, String> = remote.metadata.annotations.unwrap_or_default();
    assert!(!annotations.contains_key(REQUESTED_AT), "{annotations:?}");
    Ok(())
}
