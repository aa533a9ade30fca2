//! e2e: the Receiver controller publishes each Receiver's webhook path from
//! its token Secret (and follows the Secret), and the webhook server of the
//! same process serves that path.

mod fixture;

use std::time::Duration;

use anyhow::Result;
use api::notification::Receiver;
use api::source::GitRepository;
use e2e::objects::condition;
use fixture::Env;
use notification_controller::receiver_server::webhook_path;
use serde_json::json;

const WATCHED: &str = "reconcile.fluxcd.io/watch";

#[tokio::test]
async fn receiver_gets_its_webhook_path_from_its_token() -> Result<()> {
    let env = Env::start("nc-receiver", &[]).await?;
    let ns = env.ns().to_string();
    env.apply::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app"},
        "spec": {"interval": "10m", "url": "https://example.invalid/app.git"},
    }))
    .await?;
    env.apply::<Receiver>(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "hook"},
        "spec": {"type": "generic", "secretRef": {"name": "hook-token"},
                 "resources": [{"kind": "GitRepository", "name": "app"}]},
    }))
    .await?;

    // No Secret yet: TokenNotFound, retried.
    let (reason, message) = env
        .wait_for::<Receiver, _>("hook", |r| {
            let ready = condition(r.status.as_ref()?.conditions.as_ref(), "Ready")?;
            (ready.status == "False").then(|| (ready.reason.clone(), ready.message.clone()))
        })
        .await?;
    assert_eq!(reason, "TokenNotFound");
    assert!(message.contains(&format!("'{ns}/hook-token'")), "{message}");

    env.secret(
        "hook-token",
        json!({"token": "s3cret"}),
        json!({WATCHED: "Enabled"}),
    )
    .await?;
    let expected = webhook_path("s3cret", "hook", &ns);
    let receiver = env
        .wait_for::<Receiver, _>("hook", |r| {
            let status = r.status.as_ref()?;
            (status.webhook_path.as_deref() == Some(expected.as_str())).then(|| r.clone())
        })
        .await?;
    let status = receiver.status.clone().unwrap_or_default();
    let ready = condition(status.conditions.as_ref(), "Ready")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no Ready condition"))?;
    assert_eq!(ready.status, "True");
    assert_eq!(ready.reason, "Succeeded");
    assert_eq!(
        ready.message,
        format!("Receiver initialized for path: {expected}")
    );
    assert!(condition(status.conditions.as_ref(), "Reconciling").is_none());
    assert_eq!(status.observed_generation, receiver.metadata.generation);
    assert!(
        receiver
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "finalizers.fluxcd.io")
    );

    // The webhook server of the same process answers on that path.
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}{expected}", env.receiver_port))
        .header("Content-Type", "application/json")
        .body("{}")
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    assert!(response.status().is_success(), "{}", response.status());
    env.wait_for::<GitRepository, _>("app", |repo| {
        repo.metadata
            .annotations
            .as_ref()?
            .get("reconcile.fluxcd.io/requestedAt")
            .cloned()
    })
    .await?;

    // A new token in the (watched) Secret is a new path, without waiting for the interval.
    env.secret(
        "hook-token",
        json!({"token": "rotated"}),
        json!({WATCHED: "Enabled"}),
    )
    .await?;
    let rotated = webhook_path("rotated", "hook", &ns);
    env.wait_for::<Receiver, _>("hook", |r| {
        (r.status.as_ref()?.webhook_path.as_deref() == Some(rotated.as_str())).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn receiver_with_a_filter_that_is_not_cel_stalls() -> Result<()> {
    let env = Env::start("nc-receiver-cel", &[]).await?;
    env.secret("token", json!({"token": "t"}), json!({}))
        .await?;
    env.apply::<Receiver>(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
        "metadata": {"name": "hook"},
        "spec": {"type": "generic", "secretRef": {"name": "token"},
                 "resourceFilter": "res.metadata.name ==",
                 "resources": [{"kind": "GitRepository", "name": "*"}]},
    }))
    .await?;
    let (reason, message) = env
        .wait_for::<Receiver, _>("hook", |r| {
            let stalled = condition(r.status.as_ref()?.conditions.as_ref(), "Stalled")?;
            (stalled.status == "True").then(|| (stalled.reason.clone(), stalled.message.clone()))
        })
        .await?;
    assert_eq!(reason, "ValidationFailed");
    assert!(message.contains("spec.resourceFilter"), "{message}");
    let (kind, _) = env
        .wait_for_event("Receiver", "hook", "Failed", "spec.resourceFilter")
        .await?;
    assert_eq!(kind, "Warning");
    Ok(())
}

#[tokio::test]
async fn webhook_metrics_carry_the_path_with_export_http_path_metrics() -> Result<()> {
    let env = Env::start("nc-receiver-paths", &["--export-http-path-metrics=true"]).await?;
    let path = "/hook/0000000000000000000000000000000000000000000000000000000000000000";
    let response = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}{path}", env.receiver_port))
        .body("{}")
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    // Nobody listens there: 404 (503 while the Receiver store starts).
    assert!(
        [404, 503].contains(&response.status().as_u16()),
        "{}",
        response.status()
    );
    let metrics = env.metrics().await?;
    let label = format!(
        r#"gotk_receiver_http_request_duration_seconds_count{{service="",handler="{path}",method="POST""#
    );
    assert!(metrics.contains(&label), "{label} missing in\n{metrics}");
    assert!(
        !metrics.contains(r#"handler="/hook/",method="POST""#),
        "{metrics}"
    );
    Ok(())
}
