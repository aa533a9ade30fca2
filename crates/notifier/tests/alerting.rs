//! Alerting providers against a loopback HTTP(S) server that records every
//! request: each request's method, path, headers and JSON body are checked
//! field for field against the format Flux's notification-controller sends.
//! The proxy test goes through a real tinyproxy; TLS tests use a real
//! rustls server with a CA made for the test.
// Test helpers outside #[test] fns fail loudly by design.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use e2e::http_recorder::{HttpRecorder as Server, Recorded};
use hmac::{Hmac, KeyInit, Mac};
use notifier::{Event, Notifier, NotifyError, ProviderType, Target, Transport};
use serde_json::{Value, json};
use sha1::Digest as _;

// ---------------------------------------------------------------------------
// The recording server: e2e's HttpRecorder; TLS with certificates made here.

/// A CA, a serving certificate for 127.0.0.1 and a client certificate, all
/// made for the test.
struct TestTls {
    ca_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
    server_cert: rustls::pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
    server_cert_pem: String,
    server_key_pem: String,
    client_identity_pem: String,
}

impl TestTls {
    fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "ferroflux-notifier-test-ca");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, &ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "notification-controller");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &issuer).unwrap();

        Self {
            ca_pem: ca_cert.pem(),
            ca_der: ca_cert.der().clone(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
            client_identity_pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        }
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(self.server_key.clone().into());
        builder
            .with_single_cert(vec![self.server_cert.clone()], key)
            .unwrap()
    }
}

// ---------------------------------------------------------------------------
// Fixtures.

const UID: &str = "5f2c1a9e-7b1d-4c8e-9a0f-3d2b1c4e5f60";
const TIME: &str = "2026-12-04T10:00:00Z";
const TIME_UNIX: i64 = 1_796_378_400;

fn event(severity: &str, reason: &str, message: &str, metadata: Value) -> Event {
    serde_json::from_value(json!({
        "involvedObject": {
            "kind": "Kustomization",
            "namespace": "flux-system",
            "name": "apps",
            "uid": UID,
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        },
        "severity": severity,
        "timestamp": TIME,
        "message": message,
        "reason": reason,
        "metadata": metadata,
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7d9f",
    }))
    .unwrap()
}

const ERROR_MESSAGE: &str = "Health check failed after 30s: timeout waiting for: [Deployment/apps/web status: 'InProgress']";
const INFO_MESSAGE: &str = "Applied revision: main@sha1:4f1e2d3c";

/// A failed health check, with a summary from the Alert.
fn error_event() -> Event {
    event(
        "error",
        "HealthCheckFailed",
        ERROR_MESSAGE,
        json!({"revision": "main@sha1:4f1e2d3c", "summary": "prod cluster"}),
    )
}

fn info_event() -> Event {
    event(
        "info",
        "ReconciliationSucceeded",
        INFO_MESSAGE,
        json!({"revision": "main@sha1:4f1e2d3c"}),
    )
}

fn target(address: &str) -> Target {
    Target {
        address: address.to_string(),
        ..Target::default()
    }
}

fn notifier(provider: ProviderType, target: Target) -> Notifier {
    Notifier::new(provider, target, &Transport::default()).unwrap()
}

async fn send(provider: ProviderType, target: Target, event: &Event) {
    notifier(provider, target).post(event).await.unwrap();
}

/// Sends `event` through `provider` to a new recording server at `path`,
/// the target set up by `setup`; returns the one request the server got.
async fn send_one(
    provider: ProviderType,
    path: &str,
    event: &Event,
    setup: impl FnOnce(&mut Target),
) -> Recorded {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}{path}", server.url));
    setup(&mut t);
    send(provider, t, event).await;
    server.only_request().unwrap()
}

/// Posts `event`, which the provider must skip (nothing sent, nothing wrong).
async fn skipped(provider: ProviderType, target: Target, event: &Event) {
    match notifier(provider, target).post(event).await {
        Err(NotifyError::Skipped(_)) => {}
        other => panic!("{provider:?}: expected the event skipped, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// generic, generic-hmac.

#[tokio::test]
async fn generic_posts_the_event_with_gotk_component_and_secret_headers() {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}/hooks/flux", server.url));
    t.headers = BTreeMap::from([("X-Tenant".to_string(), "team-a".to_string())]);
    let event = error_event();
    send(ProviderType::Generic, t, &event).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/hooks/flux");
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.header("gotk-component"),
        Some("kustomize-controller")
    );
    assert_eq!(request.header("x-tenant"), Some("team-a"));
    assert_eq!(request.header("x-signature"), None);
    assert_eq!(
        request.json(),
        json!({
            "involvedObject": {
                "kind": "Kustomization",
                "namespace": "flux-system",
                "name": "apps",
                "uid": UID,
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            },
            "severity": "error",
            "timestamp": TIME,
            "message": ERROR_MESSAGE,
            "reason": "HealthCheckFailed",
            "metadata": {"revision": "main@sha1:4f1e2d3c", "summary": "prod cluster"},
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-7d9f",
        })
    );
}

#[tokio::test]
async fn generic_hmac_signs_the_exact_body_with_the_token() {
    let request = send_one(ProviderType::GenericHmac, "", &info_event(), |t| {
        t.token = Some("s3cr3t-hmac-key".to_string());
    })
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/");
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"s3cr3t-hmac-key").unwrap();
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(request.header("x-signature"), Some(expected.as_str()));
    assert_eq!(
        request.header("gotk-component"),
        Some("kustomize-controller")
    );
    assert_eq!(request.json()["reason"], "ReconciliationSucceeded");
}

#[tokio::test]
async fn generic_forwards_commit_status_updates_that_chat_providers_skip() {
    let server = Server::start().await.unwrap();
    let update = event(
        "info",
        "Progressing",
        "Health check passed",
        json!({"commit_status": "update", "revision": "main@sha1:4f1e2d3c"}),
    );
    skipped(ProviderType::Slack, target(&server.url), &update).await;
    skipped(ProviderType::Msteams, target(&server.url), &update).await;
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
    send(ProviderType::Generic, target(&server.url), &update).await;
    assert_eq!(
        server.only_request().unwrap().json()["metadata"]["commit_status"],
        "update"
    );
}

// ---------------------------------------------------------------------------
// Slack, Discord, Rocket.

#[tokio::test]
async fn slack_incoming_webhook() {
    let request = send_one(
        ProviderType::Slack,
        "/services/T000/B000/XXXX",
        &error_event(),
        |_| {},
    )
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/services/T000/B000/XXXX");
    assert_eq!(request.header("authorization"), None);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "channel": "",
            "username": "kustomize-controller",
            "icon_url": "",
            "icon_emoji": "",
            "attachments": [{
                "color": "danger",
                "author_name": "kustomization/apps.flux-system",
                "text": ERROR_MESSAGE,
                "mrkdwn_in": ["text"],
                "fields": [
                    {"title": "revision", "value": "main@sha1:4f1e2d3c", "short": false},
                    {"title": "summary", "value": "prod cluster", "short": false},
                ],
            }],
        })
    );
}

#[tokio::test]
async fn slack_bot_token_chat_post_message() {
    let server = Server::start_replying(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#)
        .await
        .unwrap();
    let mut t = target(&format!("{}/api/chat.postMessage", server.url));
    t.token = Some("xoxb-123-456".to_string());
    t.channel = Some("general".to_string());
    t.username = Some("flux".to_string());
    send(ProviderType::Slack, t.clone(), &info_event()).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.uri, "/api/chat.postMessage");
    assert_eq!(request.header("authorization"), Some("Bearer xoxb-123-456"));
    let body = request.json();
    assert_eq!(body["channel"], "general");
    assert_eq!(body["username"], "flux");
    assert_eq!(body["attachments"][0]["color"], "good");
    assert_eq!(body["attachments"][0]["text"], INFO_MESSAGE);
    assert_eq!(
        body["attachments"][0]["fields"],
        json!([{"title": "revision", "value": "main@sha1:4f1e2d3c", "short": false}])
    );

    // The Web API refuses with 200 and ok=false: an error, not retried.
    server.reply_next(200, r#"{"ok":false,"error":"channel_not_found"}"#);
    let err = notifier(ProviderType::Slack, t)
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("channel_not_found"), "{err}");
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn discord_uses_the_slack_compatible_endpoint() {
    let request = send_one(
        ProviderType::Discord,
        "/api/webhooks/1234/tok3n",
        &info_event(),
        |t| {
            t.username = Some("flux-bot".to_string());
        },
    )
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/api/webhooks/1234/tok3n/slack");
    assert_eq!(
        request.json(),
        json!({
            "channel": "",
            "username": "flux-bot",
            "icon_url": "",
            "icon_emoji": "",
            "attachments": [{
                "color": "good",
                "author_name": "kustomization/apps.flux-system",
                "text": INFO_MESSAGE,
                "mrkdwn_in": ["text"],
                "fields": [{"title": "revision", "value": "main@sha1:4f1e2d3c", "short": false}],
            }],
        })
    );
}

#[tokio::test]
async fn rocket_uses_rocket_colours() {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}/hooks/abc/def", server.url));
    t.channel = Some("#flux".to_string());
    send(ProviderType::Rocket, t, &error_event()).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.uri, "/hooks/abc/def");
    let body = request.json();
    assert_eq!(body["channel"], "#flux");
    assert_eq!(
        body["username"], "",
        "Rocket has no username default in Flux"
    );
    assert_eq!(body["attachments"][0]["color"], "#FF0000");
    assert_eq!(
        body["attachments"][0]["author_name"],
        "kustomization/apps.flux-system"
    );
    send(ProviderType::Rocket, target(&server.url), &info_event()).await;
    assert_eq!(
        server.requests()[1].json()["attachments"][0]["color"],
        "#0076D7"
    );
}

// ---------------------------------------------------------------------------
// Microsoft Teams, Google Chat, Webex, Matrix, Lark, Telegram, Zulip, Zoom.

#[tokio::test]
async fn msteams_workflow_gets_an_adaptive_card() {
    let request = send_one(
        ProviderType::Msteams,
        "/workflows/abc/triggers/manual/paths/invoke?sig=x",
        &error_event(),
        |_| {},
    )
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.uri,
        "/workflows/abc/triggers/manual/paths/invoke?sig=x"
    );
    assert_eq!(
        request.json(),
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": [{
                        "type": "Container",
                        "items": [
                            {"type": "TextBlock", "text": "kustomization/apps.flux-system", "size": "large", "weight": "bolder", "wrap": true},
                            {"type": "TextBlock", "text": ERROR_MESSAGE, "wrap": true, "color": "attention"},
                            {"type": "FactSet", "facts": [
                                {"title": "summary", "value": "prod cluster"},
                                {"title": "revision", "value": "main@sha1:4f1e2d3c"},
                            ]},
                        ],
                    }],
                    "msteams": {"width": "Full"},
                },
            }],
        })
    );
}

#[tokio::test]
async fn google_chat_card() {
    let request = send_one(
        ProviderType::Googlechat,
        "/v1/spaces/AAA/messages?key=k&token=t",
        &error_event(),
        |_| {},
    )
    .await;
    assert_eq!(request.uri, "/v1/spaces/AAA/messages?key=k&token=t");
    let kv = |k: &str, v: &str| json!({"textParagraph": null, "keyValue": {"topLabel": k, "content": v, "contentMultiline": false, "bottomLabel": null, "icon": null}});
    assert_eq!(
        request.json(),
        json!({
            "cards": [{
                "header": {
                    "title": "kustomization/apps.flux-system",
                    "subtitle": "kustomize-controller",
                    "imageUrl": null,
                    "imageStyle": null,
                },
                "sections": [
                    {"header": "", "widgets": [{"textParagraph": {"text": format!("<font color=\"#ff0000\">{ERROR_MESSAGE}</font>")}, "keyValue": null}]},
                    {"header": "", "widgets": [kv("revision", "main@sha1:4f1e2d3c"), kv("summary", "prod cluster")]},
                ],
            }],
        })
    );
}

#[tokio::test]
async fn webex_markdown_to_the_room() {
    let request = send_one(ProviderType::Webex, "/v1/messages", &info_event(), |t| {
        t.channel = Some("Y2lzY29zcGFyazovL3VzL1JPT00v".to_string());
        t.token = Some("webex-bot-token".to_string());
    })
    .await;
    assert_eq!(request.uri, "/v1/messages");
    assert_eq!(
        request.header("authorization"),
        Some("Bearer webex-bot-token")
    );
    assert_eq!(
        request.json(),
        json!({
            "roomId": "Y2lzY29zcGFyazovL3VzL1JPT00v",
            "markdown": format!("✅ **kustomization/apps.flux-system**\n{INFO_MESSAGE}\n>**revision**: main@sha1:4f1e2d3c\n"),
        })
    );
}

#[tokio::test]
async fn matrix_puts_a_room_message_with_an_event_transaction_id() {
    let server = Server::start().await.unwrap();
    let mut t = target(&server.url);
    t.channel = Some("!abcdef:matrix.example.org".to_string());
    t.token = Some("syt_token".to_string());
    let event = error_event();
    send(ProviderType::Matrix, t, &event).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.method, "PUT");
    let txn = hex::encode(sha1::Sha1::digest(serde_json::to_vec(&event).unwrap()));
    assert_eq!(
        request.uri,
        format!("/_matrix/client/r0/rooms/!abcdef:matrix.example.org/send/m.room.message/{txn}")
    );
    assert_eq!(request.header("authorization"), Some("Bearer syt_token"));
    assert_eq!(
        request.json(),
        json!({
            "body": format!("🚨 kustomization/apps.flux-system\n{ERROR_MESSAGE}\n- revision: main@sha1:4f1e2d3c\n- summary: prod cluster\n"),
            "msgtype": "m.text",
        })
    );
}

#[tokio::test]
async fn lark_interactive_card() {
    let request = send_one(
        ProviderType::Lark,
        "/open-apis/bot/v2/hook/uuid",
        &info_event(),
        |_| {},
    )
    .await;
    assert_eq!(request.uri, "/open-apis/bot/v2/hook/uuid");
    assert_eq!(
        request.json(),
        json!({
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {
                    "title": {"tag": "plain_text", "content": "💫 kustomization/apps.flux-system"},
                    "template": "turquoise",
                },
                "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": format!("**{INFO_MESSAGE}**\n\nrevision: main@sha1:4f1e2d3c\n")}}],
            },
        })
    );
}

#[tokio::test]
async fn telegram_send_message_markdown_v2_with_thread() {
    let request = send_one(ProviderType::Telegram, "", &error_event(), |t| {
        t.channel = Some("-100123456:42".to_string());
        t.token = Some("123456:ABC-def".to_string());
    })
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/bot123456:ABC-def/sendMessage");
    assert_eq!(
        request.json(),
        json!({
            "chat_id": "-100123456",
            "message_thread_id": "42",
            "text": "*🚨 kustomization/apps/flux\\-system*\n\
                     Health check failed after 30s: timeout waiting for: \\[Deployment/apps/web status: 'InProgress'\\]\n\
                     \\- *revision*: main@sha1:4f1e2d3c\n\
                     \\- *summary*: prod cluster\n",
            "parse_mode": "MarkdownV2",
        })
    );
}

#[tokio::test]
async fn telegram_errors_do_not_show_the_bot_token() {
    let server = Server::start_replying(401, "Unauthorized").await.unwrap();
    let mut t = target(&server.url);
    t.channel = Some("@flux".to_string());
    t.token = Some("987654:SECRET".to_string());
    let err = notifier(ProviderType::Telegram, t)
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(
        matches!(err, NotifyError::Status { status: 401, .. }),
        "{err}"
    );
    assert!(!err.to_string().contains("SECRET"), "{err}");
    assert_eq!(server.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn zulip_form_encoded_stream_message_with_basic_auth() {
    let request = send_one(ProviderType::Zulip, "/ignored/path", &error_event(), |t| {
        t.channel = Some("flux/prod alerts".to_string());
        t.username = Some("flux-bot@zulip.example.com".to_string());
        t.password = Some("api-key".to_string());
    })
    .await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/api/v1/messages");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "flux-bot@zulip.example.com:api-key"
        )
    );
    assert_eq!(request.header("authorization"), Some(basic.as_str()));
    let form: Vec<(String, String)> = form_urlencoded::parse(&request.body).into_owned().collect();
    assert_eq!(
        form,
        [
            (
                "content".to_string(),
                format!(
                    "## Flux Status\n\n⚠️ Kustomization/flux-system/apps\n\n{ERROR_MESSAGE}\n\nMetadata:\n\
                     * `revision`: main@sha1:4f1e2d3c\n* `summary`: prod cluster\n"
                )
            ),
            ("to".to_string(), "flux".to_string()),
            ("topic".to_string(), "prod alerts".to_string()),
            ("type".to_string(), "stream".to_string()),
        ]
    );
}

#[tokio::test]
async fn zoom_full_format_with_raw_verification_token() {
    let request = send_one(
        ProviderType::Zoom,
        "/inbound/webhook/abc",
        &info_event(),
        |t| {
            t.token = Some("zoom-verification".to_string());
        },
    )
    .await;
    assert_eq!(request.uri, "/inbound/webhook/abc?format=full");
    assert_eq!(request.header("authorization"), Some("zoom-verification"));
    assert_eq!(
        request.json(),
        json!({
            "content": {
                "head": {"text": "kustomization/apps.flux-system", "sub_head": {"text": "info"}},
                "body": [
                    {"type": "message", "text": INFO_MESSAGE},
                    {"type": "fields", "items": [{"key": "revision", "value": "main@sha1:4f1e2d3c"}]},
                ],
            },
        })
    );
}

// ---------------------------------------------------------------------------
// Incident and observability services.

#[tokio::test]
async fn opsgenie_alert_with_genie_key() {
    let request = send_one(ProviderType::Opsgenie, "/v2/alerts", &error_event(), |t| {
        t.token = Some("genie-api-key".to_string());
    })
    .await;
    assert_eq!(request.uri, "/v2/alerts");
    assert_eq!(
        request.header("authorization"),
        Some("GenieKey genie-api-key")
    );
    assert_eq!(
        request.json(),
        json!({
            "message": "Kustomization/apps",
            "description": ERROR_MESSAGE,
            "details": {"revision": "main@sha1:4f1e2d3c", "severity": "error", "summary": "prod cluster"},
        })
    );
}

#[tokio::test]
async fn pagerduty_triggers_on_errors_and_resolves_with_a_change_event_on_info() {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}/ignored", server.url));
    t.channel = Some("R0UTINGKEY".to_string());
    send(ProviderType::Pagerduty, t.clone(), &error_event()).await;

    let trigger = server.only_request().unwrap();
    assert_eq!(trigger.method, "POST");
    assert_eq!(trigger.uri, "/v2/enqueue");
    assert_eq!(
        trigger.json(),
        json!({
            "routing_key": "R0UTINGKEY",
            "event_action": "trigger",
            "dedup_key": UID,
            "payload": {
                "summary": "health check failed: kustomization/apps",
                "source": "Flux kustomize-controller",
                "severity": "error",
                "timestamp": TIME,
                "component": "apps",
                "group": "Kustomization",
                "custom_details": {
                    "message": ERROR_MESSAGE,
                    "metadata": {"revision": "main@sha1:4f1e2d3c", "summary": "prod cluster"},
                },
            },
        })
    );

    send(ProviderType::Pagerduty, t.clone(), &info_event()).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].uri, "/v2/enqueue");
    assert_eq!(
        requests[1].json(),
        json!({"routing_key": "R0UTINGKEY", "event_action": "resolve", "dedup_key": UID})
    );
    assert_eq!(requests[2].uri, "/v2/change/enqueue");
    assert_eq!(
        requests[2].json(),
        json!({
            "routing_key": "R0UTINGKEY",
            "payload": {
                "source": "Flux kustomize-controller",
                "summary": "reconciliation succeeded: kustomization/apps",
                "timestamp": TIME,
                "custom_details": {"message": INFO_MESSAGE, "metadata": {"revision": "main@sha1:4f1e2d3c"}},
            },
        })
    );

    // Progressing events page nobody.
    let progressing = event(
        "info",
        "Progressing",
        "Reconciliation in progress",
        json!({}),
    );
    skipped(ProviderType::Pagerduty, t, &progressing).await;
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn alertmanager_firing_alert_with_basic_auth() {
    let request = send_one(
        ProviderType::Alertmanager,
        "/api/v2/alerts",
        &error_event(),
        |t| {
            t.username = Some("am".to_string());
            t.password = Some("pw".to_string());
            t.token = Some("ignored-when-basic-auth-is-set".to_string());
        },
    )
    .await;
    assert_eq!(request.uri, "/api/v2/alerts");
    assert_eq!(request.header("authorization"), Some("Basic YW06cHc="));
    assert_eq!(
        request.json(),
        json!([{
            "status": "firing",
            "labels": {
                "alertname": "FluxKustomizationHealthcheckfailed",
                "kind": "Kustomization",
                "name": "apps",
                "namespace": "flux-system",
                "reason": "HealthCheckFailed",
                "reportingcontroller": "kustomize-controller",
                "revision": "main@sha1:4f1e2d3c",
                "severity": "error",
            },
            "annotations": {"message": ERROR_MESSAGE, "summary": "prod cluster"},
            "startsAt": TIME,
            "endsAt": "0001-01-01T00:00:00Z",
        }])
    );
}

#[tokio::test]
async fn grafana_graphite_annotation_with_bearer_token() {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}/api/annotations/graphite", server.url));
    t.token = Some("glsa_token".to_string());
    let event = event(
        "info",
        "ReconciliationSucceeded",
        INFO_MESSAGE,
        json!({"revision": "main@sha1:4f1e2d3c", "url": "https://x:8080"}),
    );
    send(ProviderType::Grafana, t, &event).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.uri, "/api/annotations/graphite");
    assert_eq!(request.header("authorization"), Some("Bearer glsa_token"));
    assert_eq!(
        request.json(),
        json!({
            "when": TIME_UNIX,
            "text": "kustomization/apps.flux-system",
            "tags": [
                "flux",
                "kustomize-controller",
                "revision: main@sha1|4f1e2d3c",
                "url: https|//x|8080",
                "kind: Kustomization",
                "name: apps",
                "namespace: flux-system",
            ],
        })
    );
}

#[tokio::test]
async fn datadog_event_with_api_key() {
    let request = send_one(
        ProviderType::Datadog,
        "/some/path?x=1",
        &error_event(),
        |t| {
            t.token = Some("dd-api-key".to_string());
        },
    )
    .await;
    assert_eq!(request.uri, "/api/v1/events");
    assert_eq!(request.header("dd-api-key"), Some("dd-api-key"));
    assert_eq!(request.header("accept"), Some("application/json"));
    assert_eq!(
        request.json(),
        json!({
            "alert_type": "error",
            "date_happened": TIME_UNIX,
            "source_type_name": "fluxcd",
            "tags": [
                "flux_reporting_controller:kustomize-controller",
                "flux_reason:healthcheckfailed",
                "kube_kind:kustomization",
                "kube_name:apps",
                "kube_namespace:flux-system",
                "revision:main@sha1:4f1e2d3c",
                "summary:prod cluster",
            ],
            "text": ERROR_MESSAGE,
            "title": "Events from the Kustomization apps/flux-system",
        })
    );
}

#[tokio::test]
async fn incident_io_fires_and_resolves_by_object_uid() {
    let server = Server::start().await.unwrap();
    let mut t = target(&format!("{}/v2/alert_events/http/01ABC", server.url));
    t.token = Some("inc-token".to_string());
    send(ProviderType::IncidentIo, t.clone(), &error_event()).await;
    send(ProviderType::IncidentIo, t, &info_event()).await;

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].uri, "/v2/alert_events/http/01ABC");
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer inc-token")
    );
    assert_eq!(
        requests[0].json(),
        json!({
            "title": "kustomization/apps.flux-system: HealthCheckFailed",
            "status": "firing",
            "deduplication_key": UID,
            "description": ERROR_MESSAGE,
            "metadata": {
                "reason": "HealthCheckFailed",
                "reportingController": "kustomize-controller",
                "revision": "main@sha1:4f1e2d3c",
                "severity": "error",
                "summary": "prod cluster",
            },
        })
    );
    assert_eq!(requests[1].json()["status"], "resolved");
    assert_eq!(requests[1].json()["deduplication_key"], UID);

    let progressing = event(
        "info",
        "Progressing",
        "Reconciliation in progress",
        json!({}),
    );
    let mut t = target(&format!("{}/v2/alert_events/http/01ABC", server.url));
    t.token = Some("inc-token".to_string());
    skipped(ProviderType::IncidentIo, t, &progressing).await;
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn sentry_envelopes_errors_as_events_and_info_as_transactions() {
    let server = Server::start_replying(200, r#"{"id":"x"}"#).await.unwrap();
    let dsn = format!("http://publickey@{}/42", server.addr);
    let mut t = target(&dsn);
    t.channel = Some("production".to_string());
    send(ProviderType::Sentry, t.clone(), &error_event()).await;

    let request = server.only_request().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(request.uri, "/api/42/envelope/");
    assert_eq!(
        request.header("content-type"),
        Some("application/x-sentry-envelope")
    );
    let auth = request.header("x-sentry-auth").unwrap();
    assert!(
        auth.starts_with("Sentry sentry_version=7, sentry_client="),
        "{auth}"
    );
    assert!(auth.ends_with(", sentry_key=publickey"), "{auth}");
    let text = request.text();
    let lines: Vec<&str> = text.trim_end().split('\n').collect();
    assert_eq!(lines.len(), 3, "{text}");
    let header: Value = serde_json::from_str(lines[0]).unwrap();
    let item_header: Value = serde_json::from_str(lines[1]).unwrap();
    let item: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(header["dsn"], dsn.as_str());
    assert_eq!(header["event_id"], item["event_id"]);
    assert_eq!(item["event_id"].as_str().unwrap().len(), 32);
    assert_eq!(
        item_header,
        json!({"type": "event", "length": lines[2].len()})
    );
    assert_eq!(item["level"], "error");
    assert_eq!(item["message"], ERROR_MESSAGE);
    assert_eq!(item["server_name"], "kustomize-controller");
    assert_eq!(item["transaction"], "Kustomization: flux-system/apps");
    assert_eq!(item["environment"], "production");
    assert_eq!(item["timestamp"], TIME);
    assert_eq!(
        item["extra"],
        json!({"revision": "main@sha1:4f1e2d3c", "summary": "prod cluster"})
    );

    send(ProviderType::Sentry, t.clone(), &info_event()).await;
    let text = server.requests()[1].text();
    let lines: Vec<&str> = text.trim_end().split('\n').collect();
    let item_header: Value = serde_json::from_str(lines[1]).unwrap();
    let item: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(item_header["type"], "transaction");
    assert_eq!(item["type"], "transaction");
    assert_eq!(item["transaction"], "Kustomization: flux-system/apps");
    assert_eq!(item["contexts"]["trace"]["op"], "event");
    assert_eq!(
        item["spans"][0]["span_id"],
        item["contexts"]["trace"]["span_id"]
    );
    assert_eq!(
        item["tags"],
        json!({
            "flux_involved_object_kind": "Kustomization",
            "flux_involved_object_name": "apps",
            "flux_involved_object_namespace": "flux-system",
            "flux_reason": "ReconciliationSucceeded",
            "flux_reporting_controller": "kustomize-controller",
            "flux_reporting_instance": "kustomize-controller-7d9f",
            "revision": "main@sha1:4f1e2d3c",
        })
    );
    assert_eq!(item["start_timestamp"], TIME);

    // Trace events are not sent.
    skipped(
        ProviderType::Sentry,
        t,
        &event("trace", "Progressing", "m", json!({})),
    )
    .await;
    assert_eq!(server.requests().len(), 2);
}

// ---------------------------------------------------------------------------
// Validation and unsupported types.

fn invalid_config(provider: ProviderType, target: Target) -> String {
    match Notifier::new(provider, target, &Transport::default()) {
        Err(NotifyError::InvalidConfig(message)) => message,
        Err(other) => panic!("{provider:?}: expected InvalidConfig, got {other}"),
        Ok(_) => panic!("{provider:?}: expected InvalidConfig, got a notifier"),
    }
}

#[test]
fn configurations_flux_refuses_are_refused_naming_the_field() {
    let with = |address: &str, token: Option<&str>, channel: Option<&str>| Target {
        address: address.to_string(),
        token: token.map(str::to_string),
        channel: channel.map(str::to_string),
        ..Target::default()
    };
    let cases: Vec<(ProviderType, Target, &str)> = vec![
        (ProviderType::Generic, with("", None, None), "address"),
        (
            ProviderType::Generic,
            with("not a url", None, None),
            "address",
        ),
        (
            ProviderType::GenericHmac,
            with("https://h.example", None, None),
            "token",
        ),
        (ProviderType::Slack, with("::", None, None), "address"),
        (ProviderType::Discord, with("", None, None), "address"),
        (
            ProviderType::Msteams,
            with("ftp://teams.example", None, None),
            "address",
        ),
        (
            ProviderType::Telegram,
            with("", Some("t"), None),
            "spec.channel",
        ),
        (ProviderType::Telegram, with("", None, Some("@c")), "token"),
        (
            ProviderType::Opsgenie,
            with("https://api.opsgenie.com/v2/alerts", None, None),
            "token",
        ),
        (
            ProviderType::Datadog,
            with("https://api.datadoghq.com", None, None),
            "token",
        ),
        (
            ProviderType::Zoom,
            with("https://zoom.example/hook", None, None),
            "token",
        ),
        (
            ProviderType::IncidentIo,
            with("https://api.incident.io/v2/x", None, None),
            "token",
        ),
        (
            ProviderType::Zulip,
            with("https://zulip.example", None, Some("no-topic")),
            "spec.channel",
        ),
        (
            ProviderType::Zulip,
            with("https://zulip.example", None, None),
            "spec.channel",
        ),
        (
            ProviderType::Sentry,
            with("https://sentry.example/1", None, None),
            "public key",
        ),
        (ProviderType::Sentry, with("", None, None), "address"),
        (
            ProviderType::Pagerduty,
            with("", None, Some("key")),
            "address",
        ),
    ];
    for (provider, target, field) in cases {
        let message = invalid_config(provider, target);
        assert!(
            message.contains(field),
            "{provider:?}: '{message}' does not name {field}"
        );
    }
}

#[test]
fn otel_is_left_out_and_unsupported() {
    // Flux's OTel notifier needs the Alert (its name, namespace and UID make
    // the trace), which a Provider's Target does not carry.
    let t = Target {
        address: "https://otel-collector.example:4318/v1/traces".to_string(),
        ..Target::default()
    };
    match Notifier::new(ProviderType::Otel, t, &Transport::default()) {
        Err(err @ NotifyError::Unsupported(_)) => {
            assert!(err.is_permanent());
            assert!(err.to_string().contains("'otel'"), "{err}");
        }
        Err(other) => panic!("otel: {other}"),
        Ok(_) => panic!("otel should be unsupported"),
    }
}

// ---------------------------------------------------------------------------
// Retries, proxy, TLS.

#[tokio::test]
async fn a_server_error_is_retried_then_succeeds() {
    let server = Server::start().await.unwrap();
    server.reply_next(500, "try again");
    send(ProviderType::Generic, target(&server.url), &info_event()).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn a_client_error_is_not_retried() {
    let server = Server::start_replying(400, "invalid payload")
        .await
        .unwrap();
    let err = notifier(ProviderType::Slack, target(&server.url))
        .post(&info_event())
        .await
        .unwrap_err();
    match &err {
        NotifyError::Status { status, body, .. } => {
            assert_eq!(*status, 400);
            assert!(body.contains("invalid payload"), "{err}");
        }
        other => panic!("expected a status error, got {other}"),
    }
    assert!(!err.is_permanent());
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn the_proxy_option_sends_through_the_proxy() {
    let proxy = tokio::task::spawn_blocking(|| e2e::proxy::HttpProxy::start(false))
        .await
        .unwrap()
        .unwrap();
    let tls = TestTls::generate();
    let server = Server::start_tls(tls.server_config(false)).await.unwrap();
    let transport = Transport {
        proxy: Some(proxy.address()),
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..Transport::default()
    };
    let notifier = Notifier::new(
        ProviderType::Slack,
        target(&format!("{}/services/T/B/X", server.url)),
        &transport,
    )
    .unwrap();
    notifier.post(&info_event()).await.unwrap();

    assert!(
        proxy.connect_requested(&server.addr.to_string()),
        "the proxy saw no CONNECT to {}: {}",
        server.addr,
        proxy.log()
    );
    assert_eq!(server.only_request().unwrap().uri, "/services/T/B/X");
}

#[tokio::test]
async fn a_custom_ca_is_trusted_and_nothing_else_is() {
    let tls = TestTls::generate();
    let server = Server::start_tls(tls.server_config(false)).await.unwrap();
    let address = format!("{}/hook", server.url);

    let untrusted = notifier(ProviderType::Generic, target(&address))
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(
        matches!(untrusted, NotifyError::Transport { .. }),
        "{untrusted}"
    );
    assert!(server.requests().is_empty());

    let transport = Transport {
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..Transport::default()
    };
    Notifier::new(ProviderType::Generic, target(&address), &transport)
        .unwrap()
        .post(&info_event())
        .await
        .unwrap();
    assert_eq!(server.only_request().unwrap().uri, "/hook");
}

#[tokio::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let tls = TestTls::generate();
    let server = Server::start_tls(tls.server_config(true)).await.unwrap();
    let address = format!("{}/mtls", server.url);
    let ca_only = Transport {
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..Transport::default()
    };
    let refused = Notifier::new(ProviderType::Generic, target(&address), &ca_only)
        .unwrap()
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, NotifyError::Transport { .. }),
        "{refused}"
    );
    assert!(server.requests().is_empty());

    let with_identity = Transport {
        client_identity_pem: Some(tls.client_identity_pem.clone().into_bytes()),
        ..ca_only
    };
    Notifier::new(ProviderType::Generic, target(&address), &with_identity)
        .unwrap()
        .post(&info_event())
        .await
        .unwrap();
    assert_eq!(server.only_request().unwrap().uri, "/mtls");
}

// ---------------------------------------------------------------------------
// NATS, against a real nats-server.

async fn nats_server(options: e2e::nats::NatsOptions) -> e2e::nats::NatsServer {
    tokio::task::spawn_blocking(move || e2e::nats::NatsServer::start_with(&options))
        .await
        .unwrap()
        .unwrap()
}

fn nats_target(server: &e2e::nats::NatsServer, subject: &str) -> Target {
    let mut t = target(&server.url());
    t.channel = Some(subject.to_string());
    if let Some(c) = server.credentials() {
        t.username = Some(c.username.clone());
        t.password = Some(c.password.clone());
    }
    t
}

/// A subscriber on `subject`, connected as the server's user.
async fn nats_subscriber(
    server: &e2e::nats::NatsServer,
    subject: &str,
    tls_ca: Option<&str>,
) -> async_nats::Subscriber {
    let mut options = async_nats::ConnectOptions::new();
    if let Some(c) = server.credentials() {
        options = options.user_and_password(c.username.clone(), c.password.clone());
    }
    if let Some(ca) = tls_ca {
        let dir = std::env::temp_dir().join(format!("nats-ca-{}", server.port()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.crt");
        std::fs::write(&file, ca).unwrap();
        options = options.add_root_certificates(file);
    }
    let client = options.connect(server.url()).await.unwrap();
    let subscriber = client.subscribe(subject.to_string()).await.unwrap();
    client.flush().await.unwrap();
    subscriber
}

#[tokio::test]
async fn nats_publishes_the_event_json_to_the_subject() {
    use futures::StreamExt as _;
    let server = nats_server(e2e::nats::NatsOptions {
        auth: true,
        ..Default::default()
    })
    .await;
    let mut subscriber = nats_subscriber(&server, "flux.events", None).await;
    let event = error_event();
    send(
        ProviderType::Nats,
        nats_target(&server, "flux.events"),
        &event,
    )
    .await;

    let message = tokio::time::timeout(std::time::Duration::from_secs(10), subscriber.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.subject.as_str(), "flux.events");
    let published: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(published, serde_json::to_value(&event).unwrap());
    assert_eq!(published["involvedObject"]["kind"], "Kustomization");

    // Commit status updates are for forges: nothing is published.
    let update = event_with_commit_status_update();
    skipped(
        ProviderType::Nats,
        nats_target(&server, "flux.events"),
        &update,
    )
    .await;
    send(
        ProviderType::Nats,
        nats_target(&server, "flux.events"),
        &info_event(),
    )
    .await;
    let next = tokio::time::timeout(std::time::Duration::from_secs(10), subscriber.next())
        .await
        .unwrap()
        .unwrap();
    let next: Value = serde_json::from_slice(&next.payload).unwrap();
    assert_eq!(
        next["reason"], "ReconciliationSucceeded",
        "the update was skipped"
    );
}

fn event_with_commit_status_update() -> Event {
    event(
        "info",
        "Progressing",
        "Health check passed",
        json!({"commit_status": "update"}),
    )
}

#[tokio::test]
async fn nats_reports_wrong_credentials_and_refused_publishes() {
    let server = nats_server(e2e::nats::NatsOptions {
        auth: true,
        publish_allow: Some("flux.>".to_string()),
        ..Default::default()
    })
    .await;

    let mut wrong = nats_target(&server, "flux.events");
    wrong.password = Some("not-the-password".to_string());
    let err = notifier(ProviderType::Nats, wrong)
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Transport { .. }), "{err}");
    assert!(err.to_string().to_lowercase().contains("author"), "{err}");
    assert!(!err.to_string().contains("not-the-password"), "{err}");

    let err = notifier(ProviderType::Nats, nats_target(&server, "other.events"))
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .to_lowercase()
            .contains("permissions violation"),
        "{err}"
    );
    notifier(ProviderType::Nats, nats_target(&server, "flux.allowed"))
        .post(&info_event())
        .await
        .unwrap();
}

#[tokio::test]
async fn nats_over_tls_trusts_the_provider_ca() {
    use futures::StreamExt as _;
    let tls = TestTls::generate();
    let server = nats_server(e2e::nats::NatsOptions {
        tls: Some((tls.server_cert_pem.clone(), tls.server_key_pem.clone())),
        ..Default::default()
    })
    .await;
    let mut subscriber = nats_subscriber(&server, "flux.tls", Some(&tls.ca_pem)).await;

    let err = notifier(ProviderType::Nats, nats_target(&server, "flux.tls"))
        .post(&info_event())
        .await
        .unwrap_err();
    assert!(matches!(err, NotifyError::Transport { .. }), "{err}");

    let transport = Transport {
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..Transport::default()
    };
    Notifier::new(
        ProviderType::Nats,
        nats_target(&server, "flux.tls"),
        &transport,
    )
    .unwrap()
    .post(&info_event())
    .await
    .unwrap();
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), subscriber.next())
        .await
        .unwrap()
        .unwrap();
    let published: Value = serde_json::from_slice(&message.payload).unwrap();
    assert_eq!(published["reason"], "ReconciliationSucceeded");
}

#[test]
fn nats_refuses_a_proxy_and_needs_a_subject() {
    let mut t = target("nats://127.0.0.1:4222");
    let message = invalid_config(ProviderType::Nats, t.clone());
    assert!(message.contains("spec.channel"), "{message}");
    t.channel = Some("flux.events".to_string());
    let proxied = Transport {
        proxy: Some("http://127.0.0.1:3128".to_string()),
        ..Transport::default()
    };
    match Notifier::new(ProviderType::Nats, t, &proxied) {
        Err(NotifyError::InvalidConfig(message)) => assert!(message.contains("proxy"), "{message}"),
        other => panic!("expected the proxy refused, got {other:?}"),
    }
    let message = invalid_config(ProviderType::Nats, target(""));
    assert!(message.contains("address"), "{message}");
}

// ---------------------------------------------------------------------------
// Azure Event Hubs.

#[tokio::test]
async fn azure_event_hub_sas_connection_string_over_rest() {
    let tls = TestTls::generate();
    let server = Server::start_tls(tls.server_config(false)).await.unwrap();
    let connection_string = format!(
        "Endpoint=sb://{}/;SharedAccessKeyName=flux-send;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=flux-events",
        server.addr
    );
    let transport = Transport {
        ca_pem: Some(tls.ca_pem.clone().into_bytes()),
        ..Transport::default()
    };
    let event = error_event();
    Notifier::new(
        ProviderType::Azureeventhub,
        target(&connection_string),
        &transport,
    )
    .unwrap()
    .post(&event)
    .await
    .unwrap();

    let request = server.only_request().unwrap();
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.uri,
        "/flux-events/messages?timeout=60&api-version=2014-01"
    );
    assert_eq!(
        request.header("content-type"),
        Some("application/atom+xml;type=entry;charset=utf-8")
    );
    assert_eq!(request.json(), serde_json::to_value(&event).unwrap());

    // The SAS token, checked by signing again with the key as Azure documents.
    let auth = request.header("authorization").unwrap();
    let fields: BTreeMap<String, String> = form_urlencoded::parse(
        auth.strip_prefix("SharedAccessSignature ")
            .unwrap()
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let resource = format!("https://{}/flux-events", server.addr);
    assert_eq!(fields["sr"], resource);
    assert_eq!(fields["skn"], "flux-send");
    let expiry: i64 = fields["se"].parse().unwrap();
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    assert!(
        (now + 3500..=now + 3700).contains(&expiry),
        "{expiry} vs {now}"
    );
    let encoded: String = form_urlencoded::byte_serialize(resource.as_bytes()).collect();
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(b"c2VjcmV0LWtleQ==").unwrap();
    mac.update(format!("{encoded}\n{expiry}").as_bytes());
    let expected = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        mac.finalize().into_bytes(),
    );
    assert_eq!(fields["sig"], expected);
}

#[test]
fn azure_event_hub_without_a_token_needs_workload_identity_which_is_unsupported() {
    let mut t = target("flux-events");
    t.channel = Some("my-namespace".to_string());
    match Notifier::new(ProviderType::Azureeventhub, t, &Transport::default()) {
        Err(err @ NotifyError::Unsupported(_)) => {
            assert!(err.to_string().contains("workload identity"), "{err}")
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
}
