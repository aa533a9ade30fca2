//! notification-controller end to end with the other controllers, all real
//! processes on a control plane of the test's own ([`Stack`]):
//! source-controller and kustomize-controller post their events to
//! notification-controller (`--events-addr`), which sends them on through
//! Alerts; a Receiver turns a GitHub push webhook into a fetch. GitHub and
//! Slack stand-ins are loopback [`Recorder`]s; each request they get is
//! checked against GitHub's and Slack's documented formats.
//!
//! One stack for the three scenarios (a control plane each would triple the
//! run), each in a function of its own:
//! 1. a GitHub-format signed push webhook → GitRepository fetched and
//!    Kustomization applied (the GitRepository polls every 60m, so only the
//!    webhook explains the new revision; a forged signature changes nothing);
//! 2. commit status posted to GitHub (Enterprise, `/api/v3`) for each
//!    revision the Kustomization applied;
//! 3. an Alert for a failing Kustomization → the Slack message.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use api::kustomize::Kustomization;
use api::notification::Provider;
use api::source::GitRepository;
use e2e::git_server::Repo;
use e2e::http_recorder::{HttpRecorder as Recorder, Recorded, Reply};
use kube::api::Api;
use serde_json::json;
use xtask::demo::{ControllerBinaries, Optional, SYSTEM_NAMESPACE, Stack};
use xtask::notification::{
    config_map_manifest, github_push_payload, github_signature, one_config_map_app,
    send_github_webhook,
};

const APP: &str = "podinfo";
/// The GitHub repository the commit statuses go to.
const GITHUB_REPO: &str = "org/podinfo";
const GITHUB_TOKEN: &str = "ghp_e2eTokenForTheStandIn0123456789";
const WEBHOOK_SECRET: &str = "webhook-secret-for-the-e2e-test";
/// Slack's incoming-webhook path shape.
const SLACK_PATH: &str = "/services/T0001/B0001/e2eSlackHookSecret";
/// The ConfigMap the test application applies.
const APP_CONFIG_MAP: &str = "podinfo-config";
const WAIT: Duration = Duration::from_secs(120);

#[test]
fn webhook_to_applied_commit_status_and_slack_alert() {
    let binaries = ControllerBinaries::build_with(
        false,
        Optional {
            image_automation: false,
            notification: true,
        },
    )
    .expect("building the controllers");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stack = Stack::start(&binaries, &[])
            .await
            .expect("starting the stack");
        // GitHub's API: the combined status of a commit (none yet), and the
        // created status.
        let github = Recorder::start_with(|request| {
            let api = format!("/api/v3/repos/{GITHUB_REPO}/");
            match (request.method.as_str(), request.path()) {
                ("GET", path) if path.starts_with(&format!("{api}commits/")) => Reply::json(
                    200,
                    json!({"state": "pending", "statuses": [], "total_count": 0}),
                ),
                ("POST", path) if path.starts_with(&format!("{api}statuses/")) => {
                    Reply::json(201, json!({"id": 1, "state": "success"}))
                }
                _ => Reply::json(404, json!({"message": "Not Found"})),
            }
        })
        .await
        .unwrap();
        let slack = Recorder::start().await.unwrap();

        // Providers and Alerts first, so that no event of the app is missed.
        stack
            .secret("github-token", json!({"token": GITHUB_TOKEN}))
            .await
            .unwrap();
        stack
            .provider(
                "github",
                "github",
                &format!("{}/{GITHUB_REPO}", github.url),
                json!({"secretRef": {"name": "github-token"}}),
            )
            .await
            .unwrap();
        stack
            .alert(
                "github-status",
                "github",
                "info",
                json!([{"kind": "Kustomization", "name": APP}]),
            )
            .await
            .unwrap();
        stack
            .provider(
                "slack",
                "slack",
                &format!("{}{SLACK_PATH}", slack.url),
                json!({"channel": "#deployments"}),
            )
            .await
            .unwrap();
        stack
            .alert(
                "slack-failures",
                "slack",
                "error",
                json!([{"kind": "Kustomization", "name": "*"}]),
            )
            .await
            .unwrap();
        stack.alerts_in_effect().await.unwrap();

        let repo = stack
            .create_repo(APP, one_config_map_app(APP_CONFIG_MAP, "info"))
            .await
            .unwrap();
        let first = repo.head("main").unwrap();
        stack.git_repository(APP, &repo, "60m").await.unwrap();
        stack
            .kustomization(
                APP,
                json!({"interval": "60m", "path": "./app", "prune": true,
                    "targetNamespace": SYSTEM_NAMESPACE,
                    "sourceRef": {"kind": "GitRepository", "name": APP}}),
            )
            .await
            .unwrap();
        stack
            .applied(APP, &format!("main@sha1:{first}"))
            .await
            .unwrap();

        let second = webhook_to_applied(&stack, &repo, &first).await;
        commit_statuses(&stack, &github, &[&first, &second]).await;
        failing_kustomization_to_slack(&stack, &slack).await;
    });
}

/// A push, then GitHub's signed push webhook to a Receiver of the
/// GitRepository: the new commit fetched and applied. Returns its sha.
async fn webhook_to_applied(stack: &Stack, repo: &Repo, before: &str) -> String {
    let url = stack
        .github_receiver(APP, WEBHOOK_SECRET, &[("GitRepository", APP)])
        .await
        .unwrap();
    let path = url.split_once("127.0.0.1:").unwrap().1;
    assert!(
        path.split_once('/').unwrap().1.starts_with("hook/"),
        "{url}"
    );

    let after = stack
        .push(
            repo,
            &[(
                "app/configmap.yaml",
                config_map_manifest(APP_CONFIG_MAP, "debug"),
            )],
            "debug logging",
        )
        .await
        .unwrap();
    let sources: Api<GitRepository> = Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let requested_at = |repo: &GitRepository| {
        repo.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt").cloned())
    };
    // Without the webhook, nothing fetches the push (the source polls every 60m).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let source = sources.get(APP).await.unwrap();
    let artifact = source.status.as_ref().and_then(|s| s.artifact.as_ref());
    assert_eq!(
        artifact.map(|a| a.revision.as_str()),
        Some(format!("main@sha1:{before}").as_str())
    );
    assert_eq!(requested_at(&source), None);

    let http = reqwest::Client::new();
    let body = github_push_payload("org/podinfo", repo.http_url(), "main", before, &after);
    // A forgery (another secret's signature, or none) is refused and changes nothing.
    let forged = send_github_webhook(&http, &url, "push", "not-the-secret", body.clone())
        .await
        .unwrap();
    assert_eq!(forged.status, 401, "{forged:?}");
    let unsigned = http
        .post(&url)
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    assert_eq!(requested_at(&sources.get(APP).await.unwrap()), None);

    // The real delivery; its signature is GitHub's: sha256= and the hex
    // HMAC-SHA256 of the body keyed with the webhook secret.
    assert!(github_signature(WEBHOOK_SECRET, &body).starts_with("sha256="));
    let sent = Instant::now();
    let answer = send_github_webhook(&http, &url, "push", WEBHOOK_SECRET, body)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let revision = format!("main@sha1:{after}");
    let (_, _) = stack.applied(APP, &revision).await.unwrap();
    let took = sent.elapsed();
    eprintln!("webhook → {revision} applied in {took:.2?}");
    assert!(took < WAIT, "{took:?}");
    let source = sources.get(APP).await.unwrap();
    assert!(
        requested_at(&source).is_some(),
        "the Receiver did not annotate the GitRepository: {source:?}"
    );
    assert_eq!(
        source
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .map(|a| a.revision.as_str()),
        Some(revision.as_str())
    );
    // The ConfigMap of the new commit is in the cluster.
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let applied = config_maps.get("podinfo-config").await.unwrap();
    assert_eq!(
        applied
            .data
            .unwrap_or_default()
            .get("level")
            .map(String::as_str),
        Some("debug")
    );
    after
}

/// kustomize-controller's "Reconciliation finished" event (with the
/// revision and `commit_status: update`) reached the `github` Provider:
/// for each sha, the combined status read, then a status created, as
/// GitHub's REST API documents them (`GET /repos/{owner}/{repo}/commits/{ref}/status`,
/// `POST /repos/{owner}/{repo}/statuses/{sha}` with `state`, `context`,
/// `description`), under `/api/v3` (GitHub Enterprise: the host is not
/// github.com), with the Secret's token as bearer.
async fn commit_statuses(stack: &Stack, github: &Recorder, shas: &[&str]) {
    let providers: Api<Provider> = Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let uid = providers.get("github").await.unwrap().metadata.uid.unwrap();
    // Flux's status id: <kind>/<name>/<first segment of the Provider's UID>, lower case.
    let context = format!("kustomization/{APP}/{}", uid.split('-').next().unwrap());
    for sha in shas {
        let statuses_path = format!("/api/v3/repos/{GITHUB_REPO}/statuses/{sha}");
        let post = github
            .wait_for(WAIT, |r| r.is("POST", &statuses_path))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no commit status for {sha}; GitHub got {:#?}\n{}",
                    summary(&github.requests()),
                    stack.logs(40)
                )
            });
        assert_eq!(
            post.header("authorization").unwrap_or_default(),
            format!("Bearer {GITHUB_TOKEN}")
        );
        assert!(
            post.header("accept")
                .unwrap_or_default()
                .starts_with("application/vnd.github"),
            "{post:?}"
        );
        assert!(
            post.header("content-type")
                .unwrap_or_default()
                .starts_with("application/json"),
            "{post:?}"
        );
        assert_eq!(
            post.json(),
            json!({"state": "success", "context": context,
                "description": "reconciliation succeeded"}),
            "{post:?}"
        );
        // Before creating it, the latest status of the context was read
        // (Flux posts only when it changed).
        let get = github
            .requests()
            .into_iter()
            .find(|r| {
                r.is(
                    "GET",
                    &format!("/api/v3/repos/{GITHUB_REPO}/commits/{sha}/status?per_page=100"),
                )
            })
            .unwrap_or_else(|| panic!("no combined status read for {sha}"));
        assert!(get.at <= post.at);
        assert_eq!(
            get.header("authorization").unwrap_or_default(),
            format!("Bearer {GITHUB_TOKEN}")
        );
    }
    // Only the finished reconciliations of podinfo's revisions got a status.
    for request in github.requests() {
        assert!(
            shas.iter().any(|sha| request.uri.contains(sha)),
            "a status for another commit: {request:?}"
        );
        assert!(
            request
                .uri
                .starts_with(&format!("/api/v3/repos/{GITHUB_REPO}/")),
            "{request:?}"
        );
    }
}

/// A Kustomization whose path is not in the artifact fails; the
/// `slack-failures` Alert (severity error) sends kustomize-controller's
/// error event to the Slack Provider in Slack's format: `channel`,
/// `username` (the reporting controller), one attachment coloured `danger`
/// with the object as author, the message as text and the metadata as
/// fields. Successes before it (severity info) were not sent.
async fn failing_kustomization_to_slack(stack: &Stack, slack: &Recorder) {
    assert_eq!(
        slack.requests().len(),
        0,
        "Slack got info events: {:#?}",
        summary(&slack.requests())
    );
    stack
        .kustomization(
            "broken",
            json!({"interval": "60m", "path": "./not-there", "prune": true,
                "targetNamespace": SYSTEM_NAMESPACE,
                "sourceRef": {"kind": "GitRepository", "name": APP}}),
        )
        .await
        .unwrap();
    let message = slack
        .wait_for(WAIT, |_| true)
        .await
        .unwrap_or_else(|| panic!("nothing reached Slack\n{}", stack.logs(40)));
    assert_eq!(message.method, "POST");
    assert_eq!(message.uri, SLACK_PATH);
    assert!(
        message
            .header("content-type")
            .unwrap_or_default()
            .starts_with("application/json"),
        "{message:?}"
    );
    assert_eq!(message.header("authorization"), None, "no token, no auth");
    let body = message.json();
    assert_eq!(body["channel"], "#deployments", "{body:#}");
    assert_eq!(body["username"], "kustomize-controller", "{body:#}");
    let attachments = body["attachments"].as_array().expect("attachments");
    assert_eq!(attachments.len(), 1, "{body:#}");
    let attachment = &attachments[0];
    assert_eq!(attachment["color"], "danger", "{body:#}");
    assert_eq!(
        attachment["author_name"],
        format!("kustomization/broken.{SYSTEM_NAMESPACE}"),
        "{body:#}"
    );
    assert_eq!(attachment["mrkdwn_in"], json!(["text"]), "{body:#}");
    let text = attachment["text"].as_str().unwrap();
    assert!(
        text.contains("kustomization path not found") && text.contains("not-there"),
        "{body:#}"
    );
    // The metadata, prefix stripped, as fields; the revision that failed among them.
    let ks: Api<Kustomization> = Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let broken = ks.get("broken").await.unwrap();
    let attempted = broken
        .status
        .as_ref()
        .and_then(|s| s.last_attempted_revision.clone())
        .unwrap_or_default();
    let fields = attachment["fields"].as_array().expect("fields");
    for field in fields {
        assert_eq!(field["short"], json!(false), "{body:#}");
        assert!(
            field["title"].is_string() && field["value"].is_string(),
            "{body:#}"
        );
    }
    assert!(
        fields
            .iter()
            .any(|f| f["title"] == "revision" && f["value"] == attempted.as_str()),
        "no revision {attempted:?} field: {body:#}"
    );
    // Every Slack message is about the failure.
    for request in slack.requests() {
        let body = request.json();
        assert_eq!(body["attachments"][0]["color"], "danger", "{body:#}");
        assert_eq!(
            body["attachments"][0]["author_name"],
            format!("kustomization/broken.{SYSTEM_NAMESPACE}")
        );
    }
}

fn summary(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r.method,
                r.uri,
                String::from_utf8_lossy(&r.body)
            )
        })
        .collect()
}
