//! Git forge providers against a loopback server standing in for each
//! forge's API: every request is recorded and checked field for field
//! against the forge's documented format (and what Flux sends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use notifier::{Event, Notifier, NotifyError, ProviderIdentity, ProviderType, Target, Transport};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const SHA: &str = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";
const ORIGIN_SHA: &str = "a0c14dc8580a23f79bc654faa79c4f62b46c2c22";
const UID: &str = "0c9c2e41-ae4c-4b8f-9ee7-1b8a2c4f0e11";
/// Flux's default status id for the test Kustomization and Provider.
const STATUS_ID: &str = "kustomization/apps/0c9c2e41";

/// One request the stand-in forge received.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    /// Path and query, as sent (percent-encoding kept).
    target: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn is(&self, method: &str, target: &str) -> bool {
        self.method == method && self.target == target
    }
}

/// What the stand-in answers.
struct Reply {
    status: u16,
    body: Value,
    headers: Vec<(&'static str, String)>,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply {
        status,
        body,
        headers: Vec::new(),
    }
}

type Responder = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A loopback HTTP server recording every request.
struct StandIn {
    base: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl StandIn {
    async fn start(respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let state = (requests.clone(), Arc::new(respond) as Responder);
        let app = Router::new().fallback(record).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { base, requests }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

async fn record(
    State((requests, respond)): State<(Arc<Mutex<Vec<Recorded>>>, Responder)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_default(),
        headers,
        body: body.to_vec(),
    };
    requests.lock().unwrap().push(recorded.clone());
    let answer = respond(&recorded);
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap(),
        answer.body.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    for (name, value) in answer.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// A Kustomization event as kustomize-controller posts it.
fn event(severity: &str, reason: &str, metadata: Value) -> Event {
    serde_json::from_value(json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps",
                           "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
                           "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": severity,
        "timestamp": "2026-12-04T10:00:00Z",
        "message": "Applied revision: main@sha1:5394cb7f",
        "reason": reason,
        "metadata": metadata,
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp"
    }))
    .unwrap()
}

/// A commit status update event for [`SHA`].
fn status_event(severity: &str, reason: &str) -> Event {
    event(
        severity,
        reason,
        json!({
            "kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
            "kustomize.toolkit.fluxcd.io/commit_status": "update",
        }),
    )
}

fn target(address: String, token: &str) -> Target {
    Target {
        address,
        token: Some(token.to_string()),
        provider: ProviderIdentity {
            name: "forge".into(),
            namespace: "flux-system".into(),
            uid: UID.into(),
        },
        ..Default::default()
    }
}

fn notifier(provider_type: ProviderType, target: Target) -> Notifier {
    Notifier::new(provider_type, target, &Transport::default()).unwrap()
}

fn config_error(provider_type: ProviderType, target: Target) -> String {
    match Notifier::new(provider_type, target, &Transport::default()) {
        Err(NotifyError::InvalidConfig(message)) => message,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

fn sha1_hex(s: &str) -> String {
    hex::encode(Sha1::digest(s.as_bytes()))
}

// ---------------------------------------------------------------- GitHub

/// GitHub answering an empty combined status and accepting statuses.
async fn github() -> StandIn {
    StandIn::start(|r| {
        if r.method == "GET" {
            reply(
                200,
                json!({"state": "pending", "statuses": [], "total_count": 0}),
            )
        } else {
            reply(201, json!({"id": 1}))
        }
    })
    .await
}

#[tokio::test]
async fn github_enterprise_status_on_the_origin_revision() {
    let forge = github().await;
    let address = format!("{}/org/repo.git", forge.base);
    let event = event(
        "info",
        "ReconciliationSucceeded",
        json!({
            "kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
            "kustomize.toolkit.fluxcd.io/originRevision": format!("v1.0@sha1:{ORIGIN_SHA}"),
            "kustomize.toolkit.fluxcd.io/commit_status": "update",
        }),
    );
    notifier(ProviderType::Github, target(address, "ghp_token"))
        .post(&event)
        .await
        .unwrap();

    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let list = &requests[0];
    assert!(
        list.is(
            "GET",
            &format!("/api/v3/repos/org/repo/commits/{ORIGIN_SHA}/status?per_page=100")
        ),
        "{list:?}"
    );
    let create = &requests[1];
    assert!(
        create.is(
            "POST",
            &format!("/api/v3/repos/org/repo/statuses/{ORIGIN_SHA}")
        ),
        "{create:?}"
    );
    for request in &requests {
        assert_eq!(request.header("authorization"), "Bearer ghp_token");
        assert_eq!(request.header("accept"), "application/vnd.github.v3+json");
        assert_eq!(request.header("x-github-api-version"), "2022-11-28");
    }
    assert_eq!(create.header("content-type"), "application/json");
    assert_eq!(
        create.json(),
        json!({"state": "success", "context": STATUS_ID, "description": "reconciliation succeeded"})
    );
}

#[tokio::test]
async fn github_error_event_is_a_failure() {
    let forge = github().await;
    notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("error", "HealthCheckFailed"))
    .await
    .unwrap();
    let requests = forge.requests();
    let create = requests.last().unwrap();
    assert!(create.is("POST", &format!("/api/v3/repos/org/repo/statuses/{SHA}")));
    assert_eq!(
        create.json(),
        json!({"state": "failure", "context": STATUS_ID, "description": "health check failed"})
    );
}

#[tokio::test]
async fn github_follows_status_pages_and_dedupes() {
    let next: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let next_in_server = next.clone();
    let forge = StandIn::start(move |r| {
        if r.target.contains("page=2") {
            reply(
                200,
                json!({"statuses": [{"context": STATUS_ID, "state": "success",
                                     "description": "reconciliation succeeded"}]}),
            )
        } else {
            let mut page = reply(
                200,
                json!({"statuses": [{"context": "ci/build", "state": "success", "description": "ok"}]}),
            );
            page.headers.push((
                "link",
                format!("<{}>; rel=\"next\"", next_in_server.lock().unwrap()),
            ));
            page
        }
    })
    .await;
    *next.lock().unwrap() = format!(
        "{}/api/v3/repos/org/repo/commits/{SHA}/status?per_page=100&page=2",
        forge.base
    );
    notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(
        requests.len(),
        2,
        "only the two pages are read: {requests:#?}"
    );
    assert!(requests[1].is(
        "GET",
        &format!("/api/v3/repos/org/repo/commits/{SHA}/status?per_page=100&page=2")
    ));

    // A different description is a new status.
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(
                200,
                json!({"statuses": [{"context": STATUS_ID, "state": "success",
                                     "description": "progressing"}]}),
            )
        } else {
            reply(201, json!({}))
        }
    })
    .await;
    notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    assert_eq!(forge.requests().last().unwrap().method, "POST");
}

#[tokio::test]
async fn github_server_error_is_retried() {
    let posts = Arc::new(AtomicUsize::new(0));
    let posts_in_server = posts.clone();
    let forge = StandIn::start(move |r| {
        if r.method == "GET" {
            return reply(200, json!({"statuses": []}));
        }
        if posts_in_server.fetch_add(1, Ordering::SeqCst) == 0 {
            reply(500, json!({"message": "Server Error"}))
        } else {
            reply(201, json!({}))
        }
    })
    .await;
    notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    let requests = forge.requests();
    let creates: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(creates.len(), 2, "{requests:#?}");
    assert_eq!(creates[0].body, creates[1].body);

    // A client error is not retried.
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(200, json!({"statuses": []}))
        } else {
            reply(422, json!({"message": "No commit found for SHA"}))
        }
    })
    .await;
    let err = notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap_err();
    assert!(
        matches!(err, NotifyError::Status { status: 422, .. }),
        "{err}"
    );
    assert_eq!(forge.requests().len(), 2);
}

#[tokio::test]
async fn events_flux_posts_no_status_for_are_skipped() {
    let forge = github().await;
    let github = notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.base), "t"),
    );
    let revision = format!("main@sha1:{SHA}");
    let cases = [
        // No commit_status: update.
        event(
            "info",
            "ReconciliationSucceeded",
            json!({"kustomize.toolkit.fluxcd.io/revision": revision}),
        ),
        // No revision.
        event(
            "info",
            "ReconciliationSucceeded",
            json!({"kustomize.toolkit.fluxcd.io/commit_status": "update"}),
        ),
        // A revision without a full commit SHA.
        event(
            "info",
            "ReconciliationSucceeded",
            json!({"kustomize.toolkit.fluxcd.io/revision": "latest@sha256:abc",
                   "kustomize.toolkit.fluxcd.io/commit_status": "update"}),
        ),
        // Progressing: GitHub gets no status (Gitea gets pending).
        status_event("info", "Progressing"),
        // Trace events have no state.
        status_event("trace", "ReconciliationSucceeded"),
    ];
    for event in cases {
        let result = github.post(&event).await;
        assert!(
            matches!(result, Err(NotifyError::Skipped(_))),
            "{result:?} for {:?}",
            event.metadata
        );
    }
    assert!(forge.requests().is_empty());
}

#[tokio::test]
async fn commit_status_expr_names_the_status() {
    let forge = github().await;
    let mut target = target(format!("{}/org/repo", forge.base), "t");
    target.commit_status_expr = Some(
        "event.involvedObject.kind + '/' + event.metadata.env + '/' + event.involvedObject.name \
         + '/' + provider.metadata.name"
            .into(),
    );
    let mut event = status_event("info", "ReconciliationSucceeded");
    // An Alert's eventMetadata reaches the event as a plain key.
    event
        .metadata
        .as_mut()
        .unwrap()
        .insert("env".into(), "prod".into());
    notifier(ProviderType::Github, target.clone())
        .post(&event)
        .await
        .unwrap();
    let requests = forge.requests();
    assert_eq!(
        requests.last().unwrap().json()["context"],
        "Kustomization/prod/apps/forge"
    );

    // A key the event lacks fails loudly, naming the field.
    let without_env = status_event("info", "ReconciliationSucceeded");
    let err = notifier(ProviderType::Github, target.clone())
        .post(&without_env)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NotifyError::InvalidConfig(m) if m.contains("spec.commitStatusExpr")),
        "{err}"
    );

    // Syntax errors and non-commit-status types are refused up front.
    target.commit_status_expr = Some("event.involvedObject.kind +".into());
    assert!(config_error(ProviderType::Github, target.clone()).contains("spec.commitStatusExpr"));
    target.commit_status_expr = Some("'x'".into());
    assert!(config_error(ProviderType::Githubdispatch, target).contains("spec.commitStatusExpr"));
}

// ---------------------------------------------------------- GitHub App

#[tokio::test]
async fn github_app_installation_token() {
    // A key made for this test: RSA, as GitHub issues them.
    let app_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let forge = StandIn::start(|r| {
        if r.target == "/app/installations/98765/access_tokens" {
            reply(
                201,
                json!({"token": "ghs_installation", "expires_at": "2026-12-04T11:00:00Z"}),
            )
        } else if r.method == "GET" {
            reply(200, json!({"statuses": []}))
        } else {
            reply(201, json!({}))
        }
    })
    .await;
    let mut target = target(format!("{}/org/repo", forge.base), "");
    target.token = None;
    target.secret = [
        ("githubAppID", b"4567".to_vec()),
        ("githubAppInstallationID", b"98765".to_vec()),
        ("githubAppPrivateKey", app_key.serialize_pem().into_bytes()),
        ("githubAppBaseURL", format!("{}/", forge.base).into_bytes()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    notifier(ProviderType::Github, target.clone())
        .post(&status_event("info", "ReconciliationSucceeded"))
        .await
        .unwrap();

    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let exchange = &requests[0];
    assert!(exchange.is("POST", "/app/installations/98765/access_tokens"));
    let jwt = exchange
        .header("authorization")
        .strip_prefix("Bearer ")
        .unwrap();
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(app_key.public_key_pem().as_bytes()).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&["4567"]);
    validation.set_required_spec_claims(&["exp", "iat", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &validation)
        .unwrap()
        .claims;
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!(lifetime <= 600, "GitHub refuses JWTs valid over 10 minutes");
    for request in &requests[1..] {
        assert_eq!(request.header("authorization"), "Bearer ghs_installation");
    }

    // Incomplete app keys name the missing one.
    let mut missing = target.clone();
    missing.secret.remove("githubAppInstallationID");
    assert!(config_error(ProviderType::Github, missing).contains("githubAppInstallationID"));
    let mut bad_key = target.clone();
    bad_key
        .secret
        .insert("githubAppPrivateKey".into(), b"not a key".to_vec());
    assert!(config_error(ProviderType::Github, bad_key).contains("githubAppPrivateKey"));
    let mut nothing = target;
    nothing.secret.clear();
    assert!(config_error(ProviderType::Github, nothing).starts_with("token"));
}

// ------------------------------------------------------ GitHub dispatch

#[tokio::test]
async fn github_dispatch_sends_the_event() {
    let forge = StandIn::start(|_| reply(204, Value::Null)).await;
    let dispatch = notifier(
        ProviderType::Githubdispatch,
        target(format!("{}/org/repo", forge.base), "t"),
    );
    let event = event(
        "info",
        "ReconciliationSucceeded",
        json!({"kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
               "summary": "staging (us-west-2)"}),
    );
    dispatch.post(&event).await.unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert!(request.is("POST", "/api/v3/repos/org/repo/dispatches"));
    assert_eq!(request.header("authorization"), "Bearer t");
    let body = request.json();
    assert_eq!(body["event_type"], "Kustomization/apps.flux-system");
    let payload = &body["client_payload"];
    assert_eq!(payload["involvedObject"]["kind"], "Kustomization");
    assert_eq!(payload["reason"], "ReconciliationSucceeded");
    assert_eq!(payload["message"], "Applied revision: main@sha1:5394cb7f");
    // Metadata as Flux's notifiers see it: controller prefix removed.
    assert_eq!(
        payload["metadata"],
        json!({"revision": format!("main@sha1:{SHA}"), "summary": "staging (us-west-2)"})
    );

    // Commit status updates are for commit status providers only.
    let result = dispatch
        .post(&status_event("info", "ReconciliationSucceeded"))
        .await;
    assert!(matches!(result, Err(NotifyError::Skipped(_))));
    assert_eq!(forge.requests().len(), 1);
}

// ---------------------------------------------------------------- GitLab

#[tokio::test]
async fn gitlab_self_managed_status() {
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(200, json!([]))
        } else {
            reply(201, json!({"id": 1}))
        }
    })
    .await;
    notifier(
        ProviderType::Gitlab,
        target(format!("{}/group/sub/project.git", forge.base), "glpat-x"),
    )
    .post(&status_event("error", "ReconciliationFailed"))
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].is(
        "GET",
        &format!(
            "/api/v4/projects/group%2Fsub%2Fproject/repository/commits/{SHA}/statuses?name=kustomization%2Fapps%2F0c9c2e41"
        )
    ));
    assert!(requests[1].is(
        "POST",
        &format!("/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}")
    ));
    for request in &requests {
        assert_eq!(request.header("private-token"), "glpat-x");
    }
    assert_eq!(
        requests[1].json(),
        json!({"state": "failed", "name": STATUS_ID, "description": "reconciliation failed"})
    );
}

#[tokio::test]
async fn gitlab_skips_an_identical_status() {
    let forge = StandIn::start(|_| {
        reply(
            200,
            json!([{"id": 9, "sha": SHA, "ref": "main", "status": "success", "name": STATUS_ID,
                    "description": "reconciliation succeeded"}]),
        )
    })
    .await;
    notifier(
        ProviderType::Gitlab,
        target(format!("{}/group/project", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
}

// ----------------------------------------------------------------- Gitea

#[tokio::test]
async fn gitea_status_pending_while_progressing() {
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(200, json!([]))
        } else {
            reply(201, json!({"id": 1}))
        }
    })
    .await;
    let mut target = target(format!("{}/org/repo", forge.base), "");
    // Flux falls back to the Secret's password.
    target.token = None;
    target.password = Some("gitea-token".into());
    notifier(ProviderType::Gitea, target)
        .post(&status_event("info", "Progressing"))
        .await
        .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].is(
        "GET",
        &format!("/api/v1/repos/org/repo/statuses/{SHA}?limit=50&page=1")
    ));
    assert!(requests[1].is("POST", &format!("/api/v1/repos/org/repo/statuses/{SHA}")));
    for request in &requests {
        assert_eq!(request.header("authorization"), "token gitea-token");
    }
    assert_eq!(
        requests[1].json(),
        json!({"state": "pending", "target_url": "", "description": "progressing",
               "context": STATUS_ID})
    );
}

#[tokio::test]
async fn gitea_skips_the_latest_identical_status() {
    let forge = StandIn::start(|_| {
        reply(
            200,
            json!([
                {"id": 3, "status": "success", "context": STATUS_ID, "description": "reconciliation succeeded"},
                {"id": 2, "status": "failure", "context": STATUS_ID, "description": "reconciliation failed"}
            ]),
        )
    })
    .await;
    notifier(
        ProviderType::Gitea,
        target(format!("{}/org/repo", forge.base), "t"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    assert_eq!(forge.requests().len(), 1);
}

// ------------------------------------------------------------- Bitbucket

#[tokio::test]
async fn bitbucket_cloud_status() {
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(
                404,
                json!({"type": "error", "error": {"message": "Not found"}}),
            )
        } else {
            reply(201, json!({"type": "commitstatus"}))
        }
    })
    .await;
    notifier(
        ProviderType::Bitbucket,
        target(
            format!("{}/workspace/repo", forge.base),
            "jdoe:app-password",
        ),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    let key = sha1_hex(STATUS_ID);
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].is(
        "GET",
        &format!("/2.0/repositories/workspace/repo/commit/{SHA}/statuses/build/{key}")
    ));
    assert!(requests[1].is(
        "POST",
        &format!("/2.0/repositories/workspace/repo/commit/{SHA}/statuses/build")
    ));
    for request in &requests {
        assert_eq!(request.header("authorization"), basic("jdoe:app-password"));
    }
    assert_eq!(
        requests[1].json(),
        json!({"key": key, "url": "https://bitbucket.org", "state": "SUCCESSFUL",
               "name": "kustomization/apps", "description": "reconciliation succeeded"})
    );
}

#[tokio::test]
async fn bitbucket_bearer_token_and_dedupe() {
    let forge = StandIn::start(|_| {
        reply(
            200,
            json!({"key": "k", "state": "FAILED", "description": "reconciliation failed"}),
        )
    })
    .await;
    notifier(
        ProviderType::Bitbucket,
        target(
            format!("{}/workspace/repo", forge.base),
            "x-token-auth:access-token",
        ),
    )
    .post(&status_event("error", "ReconciliationFailed"))
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 1, "an identical status is not posted again");
    assert_eq!(requests[0].header("authorization"), "Bearer access-token");

    let err = config_error(
        ProviderType::Bitbucket,
        target(format!("{}/workspace/repo", forge.base), "no-colon"),
    );
    assert!(err.starts_with("token"), "{err}");
}

// ------------------------------------------------------ Bitbucket Server

#[tokio::test]
async fn bitbucket_server_build_status() {
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(404, json!({"errors": []}))
        } else {
            reply(204, Value::Null)
        }
    })
    .await;
    let address = format!("{}/bitbucket/scm/proj/repo.git", forge.base);
    notifier(
        ProviderType::Bitbucketserver,
        target(address.clone(), "bbs-token"),
    )
    .post(&status_event("info", "ReconciliationSucceeded"))
    .await
    .unwrap();
    let key = sha1_hex(STATUS_ID);
    let path = format!("/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds");
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].is("GET", &format!("{path}?key={key}")));
    assert!(requests[1].is("POST", &path));
    for request in &requests {
        assert_eq!(request.header("authorization"), "Bearer bbs-token");
        assert_eq!(request.header("x-atlassian-token"), "no-check");
        assert_eq!(request.header("x-requested-with"), "XMLHttpRequest");
    }
    assert_eq!(
        requests[1].json(),
        json!({"key": key, "state": "SUCCESSFUL", "url": address,
               "description": "reconciliation succeeded",
               "name": "kustomization/apps [reconciliation succeeded]"})
    );
}

#[tokio::test]
async fn bitbucket_server_basic_auth_and_dedupe() {
    let key = sha1_hex(STATUS_ID);
    let existing = json!({"key": key, "state": "FAILED", "description": "reconciliation failed",
                          "name": "kustomization/apps [reconciliation failed]"});
    let forge = StandIn::start(move |_| reply(200, existing.clone())).await;
    let mut target = target(format!("{}/scm/proj/repo.git", forge.base), "");
    target.token = None;
    target.username = Some("jdoe".into());
    target.password = Some("secret".into());
    notifier(ProviderType::Bitbucketserver, target.clone())
        .post(&status_event("error", "ReconciliationFailed"))
        .await
        .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("authorization"), basic("jdoe:secret"));

    target.password = None;
    assert!(config_error(ProviderType::Bitbucketserver, target.clone()).starts_with("token"));
    target.token = Some("t".into());
    target.address = format!("{}/proj/repo.git", forge.base);
    assert!(config_error(ProviderType::Bitbucketserver, target.clone()).contains("scm"));
    target.address = "ssh://git@bitbucket.example.com/scm/proj/repo.git".into();
    assert!(config_error(ProviderType::Bitbucketserver, target).contains("http or https"));
}

// ---------------------------------------------------------- Azure DevOps

#[tokio::test]
async fn azure_devops_status() {
    let forge = StandIn::start(|r| {
        if r.method == "GET" {
            reply(200, json!({"count": 0, "value": []}))
        } else {
            reply(201, json!({"id": 1}))
        }
    })
    .await;
    let mut event = status_event("info", "ReconciliationSucceeded");
    event
        .metadata
        .as_mut()
        .unwrap()
        .insert("summary".into(), "prod".into());
    notifier(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.base), "ado-pat"),
    )
    .post(&event)
    .await
    .unwrap();
    let path =
        format!("/org/proj/_apis/git/repositories/repo/commits/{SHA}/statuses?api-version=6.0");
    let requests = forge.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(requests[0].is("GET", &path));
    assert!(requests[1].is("POST", &path));
    for request in &requests {
        assert_eq!(request.header("authorization"), basic(":ado-pat"));
        assert_eq!(request.header("accept"), "application/json;api-version=6.0");
    }
    assert_eq!(
        requests[1].json(),
        json!({"context": {"genre": "fluxcd:prod", "name": STATUS_ID},
               "description": "reconciliation succeeded", "state": "succeeded"})
    );
}

#[tokio::test]
async fn azure_devops_dedupe_and_address_form() {
    let forge = StandIn::start(|_| {
        reply(
            200,
            json!({"count": 2, "value": [
                {"state": "error", "description": "reconciliation failed",
                 "context": {"genre": "fluxcd", "name": STATUS_ID}},
                {"state": "succeeded", "description": "reconciliation succeeded",
                 "context": {"genre": "fluxcd", "name": STATUS_ID}}
            ]}),
        )
    })
    .await;
    notifier(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.base), "pat"),
    )
    .post(&status_event("error", "ReconciliationFailed"))
    .await
    .unwrap();
    assert_eq!(
        forge.requests().len(),
        1,
        "the latest status already says so"
    );

    let err = config_error(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/repo", forge.base), "pat"),
    );
    assert!(err.starts_with("address"), "{err}");
    let err = config_error(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.base), " "),
    );
    assert!(err.starts_with("token"), "{err}");
}

// ---------------------------------------------- change request comments

fn change_request_event() -> Event {
    event(
        "error",
        "HealthCheckFailed",
        json!({
            "event.toolkit.fluxcd.io/change_request": "7",
            "kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
        }),
    )
}

const PR_MARKER: &str = "<!-- flux-pr-comment-key:0c9c2e41-ae4c-4b8f-9ee7-1b8a2c4f0e11/Kustomization/flux-system/apps -->";

fn comment_body(marker: &str) -> String {
    format!(
        "{marker}\n\n## Flux Status\n\n⚠️ Kustomization/flux-system/apps\n\n\
         Applied revision: main@sha1:5394cb7f\n\nMetadata:\n\
         * `revision`: main@sha1:{SHA}\n"
    )
}

#[tokio::test]
async fn github_pull_request_comment_created_then_updated() {
    let existing = Arc::new(Mutex::new(json!([])));
    let existing_in_server = existing.clone();
    let forge = StandIn::start(move |r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", "/api/v3/user") => reply(200, json!({"login": "flux-bot"})),
        ("GET", _) => reply(200, existing_in_server.lock().unwrap().clone()),
        ("POST", _) => reply(201, json!({"id": 42})),
        _ => reply(200, json!({"id": 42})),
    })
    .await;
    let comments = notifier(
        ProviderType::Githubpullrequestcomment,
        target(format!("{}/org/repo", forge.base), "t"),
    );
    comments.post(&change_request_event()).await.unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[0].is("GET", "/api/v3/user"));
    assert!(requests[1].is(
        "GET",
        "/api/v3/repos/org/repo/issues/7/comments?direction=asc&per_page=100&sort=created"
    ));
    assert!(requests[2].is("POST", "/api/v3/repos/org/repo/issues/7/comments"));
    assert_eq!(requests[2].json(), json!({"body": comment_body(PR_MARKER)}));

    // Another user's comment with the marker is left alone; ours is edited.
    *existing.lock().unwrap() = json!([
        {"id": 41, "body": format!("{PR_MARKER} quoted"), "user": {"login": "someone"}},
        {"id": 42, "body": comment_body(PR_MARKER), "user": {"login": "flux-bot"}}
    ]);
    comments.post(&change_request_event()).await.unwrap();
    let requests = forge.requests();
    let edit = requests.last().unwrap();
    assert!(
        edit.is("PATCH", "/api/v3/repos/org/repo/issues/comments/42"),
        "{edit:?}"
    );
    assert_eq!(edit.json(), json!({"body": comment_body(PR_MARKER)}));

    // No change_request: nothing to comment on.
    let result = comments
        .post(&status_event("info", "ReconciliationSucceeded"))
        .await;
    assert!(matches!(result, Err(NotifyError::Skipped(_))), "{result:?}");
}

#[tokio::test]
async fn gitlab_merge_request_note_updated_in_place() {
    let marker = PR_MARKER.replace("flux-pr-comment-key", "flux-mr-comment-key");
    let note = json!([{"id": 77, "body": comment_body(&marker), "author": {"username": "flux"}}]);
    let forge = StandIn::start(move |r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", "/api/v4/user") => reply(200, json!({"id": 1, "username": "flux"})),
        ("GET", _) => reply(200, note.clone()),
        _ => reply(200, json!({"id": 77})),
    })
    .await;
    notifier(
        ProviderType::Gitlabmergerequestcomment,
        target(format!("{}/group/project", forge.base), "glpat"),
    )
    .post(&change_request_event())
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[1].is(
        "GET",
        "/api/v4/projects/group%2Fproject/merge_requests/7/notes?order_by=created_at&per_page=100&sort=asc"
    ));
    assert!(requests[2].is(
        "PUT",
        "/api/v4/projects/group%2Fproject/merge_requests/7/notes/77"
    ));
    assert_eq!(requests[2].header("private-token"), "glpat");
    assert_eq!(requests[2].json(), json!({"body": comment_body(&marker)}));
}

#[tokio::test]
async fn gitea_pull_request_comment_created() {
    let forge = StandIn::start(|r| match (r.method.as_str(), r.target.as_str()) {
        ("GET", "/api/v1/user") => reply(200, json!({"id": 1, "login": "flux"})),
        ("GET", _) => reply(200, json!([])),
        _ => reply(201, json!({"id": 5})),
    })
    .await;
    notifier(
        ProviderType::Giteapullrequestcomment,
        target(format!("{}/org/repo", forge.base), "gt"),
    )
    .post(&change_request_event())
    .await
    .unwrap();
    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(requests[1].is(
        "GET",
        "/api/v1/repos/org/repo/issues/7/comments?limit=100&page=1"
    ));
    assert!(requests[2].is("POST", "/api/v1/repos/org/repo/issues/7/comments"));
    assert_eq!(requests[2].header("authorization"), "token gt");
    assert_eq!(requests[2].json(), json!({"body": comment_body(PR_MARKER)}));
}

// ------------------------------------------------------------ validation

#[test]
fn refuses_what_flux_refuses() {
    let github = |address: &str, token: &str| target(address.to_string(), token);
    let err = config_error(ProviderType::Github, github("https://github.com/org", "t"));
    assert!(err.starts_with("address"), "{err}");
    let err = config_error(ProviderType::Github, github("", "t"));
    assert!(err.starts_with("address"), "{err}");
    let err = config_error(ProviderType::Gitlab, github("https://gitlab.com/g/p", ""));
    assert!(err.starts_with("token"), "{err}");
    let err = config_error(ProviderType::Gitea, github("https://gitea.io/a/b/c", "t"));
    assert!(err.starts_with("address"), "{err}");
    let mut no_uid = github("https://github.com/org/repo", "t");
    no_uid.provider.uid.clear();
    let err = config_error(ProviderType::Githubpullrequestcomment, no_uid);
    assert!(err.starts_with("metadata.uid"), "{err}");
    assert!(
        Notifier::new(
            ProviderType::Github,
            github("git@github.com:org/repo.git", "t"),
            &Transport::default()
        )
        .is_ok()
    );
}
