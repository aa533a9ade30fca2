//! Git forge providers against a loopback server standing in for each
//! forge's API: every request is recorded and checked field for field
//! against the forge's documented format (and what Flux sends).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use e2e::http_recorder::{HttpRecorder, Recorded, Reply};
use notifier::{Event, Notifier, NotifyError, ProviderIdentity, ProviderType, Target, Transport};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

const SHA: &str = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";
const ORIGIN_SHA: &str = "a0c14dc8580a23f79bc654faa79c4f62b46c2c22";
const UID: &str = "0c9c2e41-ae4c-4b8f-9ee7-1b8a2c4f0e11";
/// Flux's default status id for the test Kustomization and Provider.
const STATUS_ID: &str = "kustomization/apps/0c9c2e41";

fn reply(status: u16, body: Value) -> Reply {
    Reply::json(status, body)
}

/// A stand-in forge answering `get` to reads and `other` to the rest.
async fn answering(get: Reply, other: Reply) -> HttpRecorder {
    HttpRecorder::start_with(move |r| {
        if r.method == "GET" {
            get.clone()
        } else {
            other.clone()
        }
    })
    .await
    .unwrap()
}

/// A stand-in forge answering every request with what `respond` makes.
async fn stand_in(respond: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> HttpRecorder {
    HttpRecorder::start_with(respond).await.unwrap()
}

/// Checks that `forge` received exactly `exchange` (method, path and
/// query), each request carrying `headers`; returns the requests.
fn assert_exchange(
    forge: &HttpRecorder,
    exchange: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> Vec<Recorded> {
    let requests = forge.requests();
    assert_eq!(requests.len(), exchange.len(), "{requests:#?}");
    for (request, (method, uri)) in requests.iter().zip(exchange) {
        assert!(
            request.is(method, uri),
            "expected {method} {uri}, got {request:?}"
        );
        for (name, value) in headers {
            assert_eq!(
                request.header(name),
                Some(*value),
                "{name} of {method} {uri}"
            );
        }
    }
    requests
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

/// Posts `event` through a new notifier; it must succeed.
async fn post(provider_type: ProviderType, target: Target, event: &Event) {
    notifier(provider_type, target).post(event).await.unwrap();
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
async fn github() -> HttpRecorder {
    answering(
        reply(
            200,
            json!({"state": "pending", "statuses": [], "total_count": 0}),
        ),
        reply(201, json!({"id": 1})),
    )
    .await
}

#[tokio::test]
async fn github_enterprise_status_on_the_origin_revision() {
    let forge = github().await;
    let address = format!("{}/org/repo.git", forge.url);
    let event = event(
        "info",
        "ReconciliationSucceeded",
        json!({
            "kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{SHA}"),
            "kustomize.toolkit.fluxcd.io/originRevision": format!("v1.0@sha1:{ORIGIN_SHA}"),
            "kustomize.toolkit.fluxcd.io/commit_status": "update",
        }),
    );
    post(ProviderType::Github, target(address, "ghp_token"), &event).await;

    let requests = assert_exchange(
        &forge,
        &[
            (
                "GET",
                format!("/api/v3/repos/org/repo/commits/{ORIGIN_SHA}/status?per_page=100").as_str(),
            ),
            (
                "POST",
                format!("/api/v3/repos/org/repo/statuses/{ORIGIN_SHA}").as_str(),
            ),
        ],
        &[
            ("authorization", "Bearer ghp_token"),
            ("accept", "application/vnd.github.v3+json"),
            ("x-github-api-version", "2022-11-28"),
        ],
    );
    let create = &requests[1];
    assert_eq!(create.header("content-type"), Some("application/json"));
    assert_eq!(
        create.json(),
        json!({"state": "success", "context": STATUS_ID, "description": "reconciliation succeeded"})
    );
}

#[tokio::test]
async fn github_error_event_is_a_failure() {
    let forge = github().await;
    post(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.url), "t"),
        &status_event("error", "HealthCheckFailed"),
    )
    .await;
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
    let forge = stand_in(move |r| {
        if r.uri.contains("page=2") {
            reply(
                200,
                json!({"statuses": [{"context": STATUS_ID, "state": "success",
                                     "description": "reconciliation succeeded"}]}),
            )
        } else {
            let page = reply(
                200,
                json!({"statuses": [{"context": "ci/build", "state": "success", "description": "ok"}]}),
            );
            page.with_header(
                "link",
                format!("<{}>; rel=\"next\"", next_in_server.lock().unwrap()),
            )
        }
    })
    .await;
    *next.lock().unwrap() = format!(
        "{}/api/v3/repos/org/repo/commits/{SHA}/status?per_page=100&page=2",
        forge.url
    );
    post(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.url), "t"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
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
    let forge = answering(
        reply(
            200,
            json!({"statuses": [{"context": STATUS_ID, "state": "success",
                                 "description": "progressing"}]}),
        ),
        reply(201, json!({})),
    )
    .await;
    post(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.url), "t"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    assert_eq!(forge.requests().last().unwrap().method, "POST");
}

#[tokio::test]
async fn github_server_error_is_retried() {
    let posts = Arc::new(AtomicUsize::new(0));
    let posts_in_server = posts.clone();
    let forge = stand_in(move |r| {
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
    post(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.url), "t"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    let requests = forge.requests();
    let creates: Vec<_> = requests.iter().filter(|r| r.method == "POST").collect();
    assert_eq!(creates.len(), 2, "{requests:#?}");
    assert_eq!(creates[0].body, creates[1].body);

    // A client error is not retried.
    let forge = answering(
        reply(200, json!({"statuses": []})),
        reply(422, json!({"message": "No commit found for SHA"})),
    )
    .await;
    let err = notifier(
        ProviderType::Github,
        target(format!("{}/org/repo", forge.url), "t"),
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
        target(format!("{}/org/repo", forge.url), "t"),
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
    let mut target = target(format!("{}/org/repo", forge.url), "t");
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
    post(ProviderType::Github, target.clone(), &event).await;
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
    let forge = stand_in(|r| {
        if r.uri == "/app/installations/98765/access_tokens" {
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
    let mut target = target(format!("{}/org/repo", forge.url), "");
    target.token = None;
    target.secret = [
        ("githubAppID", b"4567".to_vec()),
        ("githubAppInstallationID", b"98765".to_vec()),
        ("githubAppPrivateKey", app_key.serialize_pem().into_bytes()),
        ("githubAppBaseURL", format!("{}/", forge.url).into_bytes()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    post(
        ProviderType::Github,
        target.clone(),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;

    let requests = forge.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    let exchange = &requests[0];
    assert!(exchange.is("POST", "/app/installations/98765/access_tokens"));
    let jwt = exchange
        .header("authorization")
        .unwrap()
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
        assert_eq!(
            request.header("authorization"),
            Some("Bearer ghs_installation")
        );
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
    let forge = stand_in(|_| reply(204, Value::Null)).await;
    let dispatch = notifier(
        ProviderType::Githubdispatch,
        target(format!("{}/org/repo", forge.url), "t"),
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
    assert_eq!(request.header("authorization"), Some("Bearer t"));
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
    let forge = answering(reply(200, json!([])), reply(201, json!({"id": 1}))).await;
    post(
        ProviderType::Gitlab,
        target(format!("{}/group/sub/project.git", forge.url), "glpat-x"),
        &status_event("error", "ReconciliationFailed"),
    )
    .await;
    let requests = assert_exchange(
        &forge,
        &[
            (
                "GET",
                format!(
                    "/api/v4/projects/group%2Fsub%2Fproject/repository/commits/{SHA}/statuses?name=kustomization%2Fapps%2F0c9c2e41"
                )
                .as_str(),
            ),
            (
                "POST",
                format!("/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}").as_str(),
            ),
        ],
        &[("private-token", "glpat-x")],
    );
    assert_eq!(
        requests[1].json(),
        json!({"state": "failed", "name": STATUS_ID, "description": "reconciliation failed"})
    );
}

#[tokio::test]
async fn gitlab_skips_an_identical_status() {
    let forge = stand_in(|_| {
        reply(
            200,
            json!([{"id": 9, "sha": SHA, "ref": "main", "status": "success", "name": STATUS_ID,
                    "description": "reconciliation succeeded"}]),
        )
    })
    .await;
    post(
        ProviderType::Gitlab,
        target(format!("{}/group/project", forge.url), "t"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    let requests = forge.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, "GET");
}

// ----------------------------------------------------------------- Gitea

#[tokio::test]
async fn gitea_status_pending_while_progressing() {
    let forge = answering(reply(200, json!([])), reply(201, json!({"id": 1}))).await;
    let mut target = target(format!("{}/org/repo", forge.url), "");
    // Flux falls back to the Secret's password.
    target.token = None;
    target.password = Some("gitea-token".into());
    post(
        ProviderType::Gitea,
        target,
        &status_event("info", "Progressing"),
    )
    .await;
    let requests = assert_exchange(
        &forge,
        &[
            (
                "GET",
                format!("/api/v1/repos/org/repo/statuses/{SHA}?limit=50&page=1").as_str(),
            ),
            (
                "POST",
                format!("/api/v1/repos/org/repo/statuses/{SHA}").as_str(),
            ),
        ],
        &[("authorization", "token gitea-token")],
    );
    assert_eq!(
        requests[1].json(),
        json!({"state": "pending", "target_url": "", "description": "progressing",
               "context": STATUS_ID})
    );
}

#[tokio::test]
async fn gitea_skips_the_latest_identical_status() {
    let forge = stand_in(|_| {
        reply(
            200,
            json!([
                {"id": 3, "status": "success", "context": STATUS_ID, "description": "reconciliation succeeded"},
                {"id": 2, "status": "failure", "context": STATUS_ID, "description": "reconciliation failed"}
            ]),
        )
    })
    .await;
    post(
        ProviderType::Gitea,
        target(format!("{}/org/repo", forge.url), "t"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    assert_eq!(forge.requests().len(), 1);
}

// ------------------------------------------------------------- Bitbucket

#[tokio::test]
async fn bitbucket_cloud_status() {
    let forge = answering(
        reply(
            404,
            json!({"type": "error", "error": {"message": "Not found"}}),
        ),
        reply(201, json!({"type": "commitstatus"})),
    )
    .await;
    post(
        ProviderType::Bitbucket,
        target(format!("{}/workspace/repo", forge.url), "jdoe:app-password"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    let key = sha1_hex(STATUS_ID);
    let statuses = format!("/2.0/repositories/workspace/repo/commit/{SHA}/statuses/build");
    let requests = assert_exchange(
        &forge,
        &[
            ("GET", format!("{statuses}/{key}").as_str()),
            ("POST", statuses.as_str()),
        ],
        &[("authorization", basic("jdoe:app-password").as_str())],
    );
    assert_eq!(
        requests[1].json(),
        json!({"key": key, "url": "https://bitbucket.org", "state": "SUCCESSFUL",
               "name": "kustomization/apps", "description": "reconciliation succeeded"})
    );
}

#[tokio::test]
async fn bitbucket_bearer_token_and_dedupe() {
    let forge = stand_in(|_| {
        reply(
            200,
            json!({"key": "k", "state": "FAILED", "description": "reconciliation failed"}),
        )
    })
    .await;
    post(
        ProviderType::Bitbucket,
        target(
            format!("{}/workspace/repo", forge.url),
            "x-token-auth:access-token",
        ),
        &status_event("error", "ReconciliationFailed"),
    )
    .await;
    let requests = forge.requests();
    assert_eq!(requests.len(), 1, "an identical status is not posted again");
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer access-token")
    );

    let err = config_error(
        ProviderType::Bitbucket,
        target(format!("{}/workspace/repo", forge.url), "no-colon"),
    );
    assert!(err.starts_with("token"), "{err}");
}

// ------------------------------------------------------ Bitbucket Server

#[tokio::test]
async fn bitbucket_server_build_status() {
    let forge = answering(reply(404, json!({"errors": []})), reply(204, Value::Null)).await;
    let address = format!("{}/bitbucket/scm/proj/repo.git", forge.url);
    post(
        ProviderType::Bitbucketserver,
        target(address.clone(), "bbs-token"),
        &status_event("info", "ReconciliationSucceeded"),
    )
    .await;
    let key = sha1_hex(STATUS_ID);
    let path = format!("/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds");
    let requests = assert_exchange(
        &forge,
        &[
            ("GET", format!("{path}?key={key}").as_str()),
            ("POST", path.as_str()),
        ],
        &[
            ("authorization", "Bearer bbs-token"),
            ("x-atlassian-token", "no-check"),
            ("x-requested-with", "XMLHttpRequest"),
        ],
    );
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
    let forge = stand_in(move |_| reply(200, existing.clone())).await;
    let mut target = target(format!("{}/scm/proj/repo.git", forge.url), "");
    target.token = None;
    target.username = Some("jdoe".into());
    target.password = Some("secret".into());
    post(
        ProviderType::Bitbucketserver,
        target.clone(),
        &status_event("error", "ReconciliationFailed"),
    )
    .await;
    let requests = forge.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("authorization"),
        Some(basic("jdoe:secret").as_str())
    );

    target.password = None;
    assert!(config_error(ProviderType::Bitbucketserver, target.clone()).starts_with("token"));
    target.token = Some("t".into());
    target.address = format!("{}/proj/repo.git", forge.url);
    assert!(config_error(ProviderType::Bitbucketserver, target.clone()).contains("scm"));
    target.address = "ssh://git@bitbucket.example.com/scm/proj/repo.git".into();
    assert!(config_error(ProviderType::Bitbucketserver, target).contains("http or https"));
}

// ---------------------------------------------------------- Azure DevOps

#[tokio::test]
async fn azure_devops_status() {
    let forge = answering(
        reply(200, json!({"count": 0, "value": []})),
        reply(201, json!({"id": 1})),
    )
    .await;
    let mut event = status_event("info", "ReconciliationSucceeded");
    event
        .metadata
        .as_mut()
        .unwrap()
        .insert("summary".into(), "prod".into());
    post(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.url), "ado-pat"),
        &event,
    )
    .await;
    let path =
        format!("/org/proj/_apis/git/repositories/repo/commits/{SHA}/statuses?api-version=6.0");
    let requests = assert_exchange(
        &forge,
        &[("GET", path.as_str()), ("POST", path.as_str())],
        &[
            ("authorization", basic(":ado-pat").as_str()),
            ("accept", "application/json;api-version=6.0"),
        ],
    );
    assert_eq!(
        requests[1].json(),
        json!({"context": {"genre": "fluxcd:prod", "name": STATUS_ID},
               "description": "reconciliation succeeded", "state": "succeeded"})
    );
}

#[tokio::test]
async fn azure_devops_dedupe_and_address_form() {
    let forge = stand_in(|_| {
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
    post(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.url), "pat"),
        &status_event("error", "ReconciliationFailed"),
    )
    .await;
    assert_eq!(
        forge.requests().len(),
        1,
        "the latest status already says so"
    );

    let err = config_error(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/repo", forge.url), "pat"),
    );
    assert!(err.starts_with("address"), "{err}");
    let err = config_error(
        ProviderType::Azuredevops,
        target(format!("{}/org/proj/_git/repo", forge.url), " "),
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
    let forge = stand_in(move |r| match (r.method.as_str(), r.uri.as_str()) {
        ("GET", "/api/v3/user") => reply(200, json!({"login": "flux-bot"})),
        ("GET", _) => reply(200, existing_in_server.lock().unwrap().clone()),
        ("POST", _) => reply(201, json!({"id": 42})),
        _ => reply(200, json!({"id": 42})),
    })
    .await;
    let comments = notifier(
        ProviderType::Githubpullrequestcomment,
        target(format!("{}/org/repo", forge.url), "t"),
    );
    comments.post(&change_request_event()).await.unwrap();
    let requests = assert_exchange(
        &forge,
        &[
            ("GET", "/api/v3/user"),
            (
                "GET",
                "/api/v3/repos/org/repo/issues/7/comments?direction=asc&per_page=100&sort=created",
            ),
            ("POST", "/api/v3/repos/org/repo/issues/7/comments"),
        ],
        &[("authorization", "Bearer t")],
    );
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
    let forge = stand_in(move |r| match (r.method.as_str(), r.uri.as_str()) {
        ("GET", "/api/v4/user") => reply(200, json!({"id": 1, "username": "flux"})),
        ("GET", _) => reply(200, note.clone()),
        _ => reply(200, json!({"id": 77})),
    })
    .await;
    post(
        ProviderType::Gitlabmergerequestcomment,
        target(format!("{}/group/project", forge.url), "glpat"),
        &change_request_event(),
    )
    .await;
    let requests = assert_exchange(
        &forge,
        &[
            ("GET", "/api/v4/user"),
            (
                "GET",
                "/api/v4/projects/group%2Fproject/merge_requests/7/notes?order_by=created_at&per_page=100&sort=asc",
            ),
            (
                "PUT",
                "/api/v4/projects/group%2Fproject/merge_requests/7/notes/77",
            ),
        ],
        &[("private-token", "glpat")],
    );
    assert_eq!(requests[2].json(), json!({"body": comment_body(&marker)}));
}

#[tokio::test]
async fn gitea_pull_request_comment_created() {
    let forge = stand_in(|r| match (r.method.as_str(), r.uri.as_str()) {
        ("GET", "/api/v1/user") => reply(200, json!({"id": 1, "login": "flux"})),
        ("GET", _) => reply(200, json!([])),
        _ => reply(201, json!({"id": 5})),
    })
    .await;
    post(
        ProviderType::Giteapullrequestcomment,
        target(format!("{}/org/repo", forge.url), "gt"),
        &change_request_event(),
    )
    .await;
    let requests = assert_exchange(
        &forge,
        &[
            ("GET", "/api/v1/user"),
            (
                "GET",
                "/api/v1/repos/org/repo/issues/7/comments?limit=100&page=1",
            ),
            ("POST", "/api/v1/repos/org/repo/issues/7/comments"),
        ],
        &[("authorization", "token gt")],
    );
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
