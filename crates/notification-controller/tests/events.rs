//! e2e: the real notification-controller binary on the real control plane,
//! events POSTed in Flux's wire format, loopback recorders standing in for
//! the Providers' services.

mod fixture;

use std::time::{Duration, Instant};

use anyhow::Result;
use fixture::{Env, Recorder, kustomization_event};
use serde_json::json;

#[tokio::test]
async fn generic_provider_gets_the_event_with_the_alerts_metadata() -> Result<()> {
    let env = Env::start("nc-generic", &[]).await?;
    let recorder = Recorder::start().await?;
    env.secret(
        "hook",
        json!({"address": format!("{}/hook", recorder.url), "headers": "X-Team: ops\n"}),
        json!({}),
    )
    .await?;
    // The Secret's address wins over spec.address.
    env.provider(
        "webhook",
        "generic",
        "http://127.0.0.1:1/unused",
        json!({"secretRef": {"name": "hook"}}),
    )
    .await?;
    env.alert(
        "all",
        "webhook",
        json!({"eventMetadata": {"env": "prod", "team": "from-alert"}}),
    )
    .await?;
    let ns = env.ns().to_string();
    let (sent, request) = env
        .deliver(
            &recorder,
            |i| {
                kustomization_event(
                    &ns,
                    "web",
                    "info",
                    &format!("Reconciliation finished in 1.2s, next run in 10m0s ({i})"),
                    json!({
                        "kustomize.toolkit.fluxcd.io/revision": "main@sha1:1234abcd",
                        "kustomize.toolkit.fluxcd.io/token": "t-1",
                        "kustomize.toolkit.fluxcd.io/checksum": "c0ffee",
                        "event.toolkit.fluxcd.io/team": "from-annotation",
                        "event.toolkit.fluxcd.io/owner": "alice",
                        "source.toolkit.fluxcd.io/revision": "other group",
                    }),
                )
            },
            |r| r.path() == "/hook",
        )
        .await?;

    assert_eq!(request.method, "POST");
    assert_eq!(
        request.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    assert_eq!(
        request.headers.get("gotk-component").map(String::as_str),
        Some("kustomize-controller")
    );
    assert_eq!(
        request.headers.get("x-team").map(String::as_str),
        Some("ops")
    );
    let body = request.json();
    // Flux's event, field for field, with the metadata combined as Flux
    // does: annotations < eventMetadata < controller metadata, prefixes
    // stripped, token/checksum and other groups' keys dropped.
    for field in [
        "involvedObject",
        "severity",
        "timestamp",
        "message",
        "reason",
        "reportingController",
        "reportingInstance",
    ] {
        assert_eq!(body[field], sent[field], "{field}: {body}");
    }
    assert_eq!(
        body["metadata"],
        json!({"env": "prod", "owner": "alice", "revision": "main@sha1:1234abcd", "team": "from-alert"}),
        "{body}"
    );

    // Counted as Flux's go-http-metrics does, and as a sent notification.
    let accepted = env
        .metric(r#"gotk_event_http_request_duration_seconds_count{service="",handler="/",method="POST",code="202"}"#)
        .await?;
    assert!(accepted >= 1.0, "{}", env.metrics().await?);
    let sent_count = env
        .metric(&format!(
            r#"gotk_event_dispatch_total{{name="all",namespace="{ns}",provider_type="generic",result="sent"}}"#
        ))
        .await?;
    assert!(sent_count >= 1.0, "{}", env.metrics().await?);
    // The Alert's deprecated-free metadata raised a conflict warning (team).
    let (kind, note) = env
        .wait_for_event("Alert", "all", "MetadataAppendFailed", "team")
        .await?;
    assert_eq!(kind, "Warning");
    assert!(note.contains("metadata key conflicts detected"), "{note}");
    Ok(())
}

#[tokio::test]
async fn severity_exclusion_and_suspend_filter_events() -> Result<()> {
    let env = Env::start("nc-filters", &[]).await?;
    let recorder = Recorder::start().await?;
    env.provider(
        "errors",
        "generic",
        &format!("{}/errors", recorder.url),
        json!({}),
    )
    .await?;
    env.provider(
        "all",
        "generic",
        &format!("{}/all", recorder.url),
        json!({}),
    )
    .await?;
    env.alert("errors", "errors", json!({"eventSeverity": "error"}))
        .await?;
    env.alert(
        "all",
        "all",
        json!({"exclusionList": ["no changes$", "^Dependency '.*' is not ready"]}),
    )
    .await?;
    let ns = env.ns().to_string();
    // Both Alerts are live once an error event reaches each (the two reach
    // the controller's store at different moments).
    for path in ["/errors", "/all"] {
        env.deliver(
            &recorder,
            |i| {
                kustomization_event(
                    &ns,
                    "web",
                    "error",
                    &format!("Health check failed ({path} {i})"),
                    json!({}),
                )
            },
            |r| r.path() == path,
        )
        .await?;
    }
    recorder
        .wait_for(Duration::from_secs(10), |r| {
            r.path() == "/all" && String::from_utf8_lossy(&r.body).contains("Health check failed")
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("the error event did not reach /all"))?;

    for (message, severity) in [
        ("Reconciliation finished, no changes", "info"),
        ("Dependency 'apps/db' is not ready", "info"),
        ("Applied revision main@sha1:5678", "info"),
    ] {
        assert_eq!(
            env.post_event(&kustomization_event(
                &ns,
                "web",
                severity,
                message,
                json!({})
            ))
            .await?
            .status,
            202
        );
    }
    recorder
        .wait_for(Duration::from_secs(10), |r| {
            r.path() == "/all" && String::from_utf8_lossy(&r.body).contains("Applied revision")
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("the info event did not reach /all"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // eventSeverity: error drops info events; the exclusion list drops matches.
    assert!(
        recorder
            .requests()
            .iter()
            .all(|r| r.path() != "/errors" || r.json()["severity"] == "error")
    );
    assert!(recorder.containing("no changes").is_empty());
    assert!(recorder.containing("is not ready").is_empty());

    // A suspended Alert forwards nothing; the other one carries on.
    env.alert("all", "all", json!({"suspend": true})).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let message = "Reconciliation failed after suspend";
    env.post_event(&kustomization_event(
        &ns,
        "web",
        "error",
        message,
        json!({}),
    ))
    .await?;
    recorder
        .wait_for(Duration::from_secs(10), |r| {
            r.path() == "/errors" && String::from_utf8_lossy(&r.body).contains(message)
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("the error event did not reach /errors"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        recorder
            .containing(message)
            .iter()
            .all(|r| r.path() == "/errors")
    );

    // A suspended Provider too.
    env.provider(
        "errors",
        "generic",
        &format!("{}/errors", recorder.url),
        json!({"suspend": true}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let message = "Reconciliation failed with the provider suspended";
    env.post_event(&kustomization_event(
        &ns,
        "web",
        "error",
        message,
        json!({}),
    ))
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(recorder.containing(message).is_empty());
    Ok(())
}

#[tokio::test]
async fn bad_input_is_refused_with_its_cause() -> Result<()> {
    let env = Env::start("nc-bad-input", &[]).await?;
    let malformed = env.post("{\"involvedObject\": ").await?;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed
            .body
            .starts_with("decoding the request body failed:"),
        "{}",
        malformed.body
    );
    assert_eq!(malformed.body.trim_end().lines().count(), 1);

    let mut event = kustomization_event(env.ns(), "web", "info", "m", json!({}));
    event.as_object_mut().map(|o| o.remove("severity"));
    let missing = env.post_event(&event).await?;
    assert_eq!(missing.status, 400);
    assert!(missing.body.contains("severity"), "{}", missing.body);
    let mut event = kustomization_event(env.ns(), "web", "debug", "m", json!({}));
    event["severity"] = json!("debug");
    let unknown = env.post_event(&event).await?;
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("debug"), "{}", unknown.body);

    // Flux's cap: 3 MiB.
    let mut big = kustomization_event(env.ns(), "web", "info", "", json!({}));
    big["message"] = json!("x".repeat(3 * 1024 * 1024));
    let oversized = env.post_event(&big).await?;
    assert_eq!(oversized.status, 413);
    assert!(oversized.body.contains("3145728"), "{}", oversized.body);

    let get = reqwest::get(env.events_url()).await?;
    assert_eq!(get.status().as_u16(), 405);

    for code in ["400", "413"] {
        let count = env
            .metric(&format!(
                r#"gotk_event_http_request_duration_seconds_count{{service="",handler="/",method="POST",code="{code}"}}"#
            ))
            .await?;
        assert!(count >= 1.0, "code {code}: {}", env.metrics().await?);
    }
    Ok(())
}

#[tokio::test]
async fn duplicates_are_rate_limited_and_a_flood_is_absorbed() -> Result<()> {
    let env = Env::start("nc-rate-limit", &["--rate-limit-interval=3s"]).await?;
    let ns = env.ns().to_string();
    let event = kustomization_event(
        &ns,
        "web",
        "info",
        "Reconciliation finished",
        json!({"kustomize.toolkit.fluxcd.io/revision": "main@sha1:aaaa"}),
    );
    let first = env.post_event(&event).await?;
    assert_eq!(first.status, 202, "{}", first.body);
    let second = env.post_event(&event).await?;
    assert_eq!(second.status, 429, "{}", second.body);
    assert_eq!(
        second.headers.get("x-ratelimit-limit").map(String::as_str),
        Some("1")
    );
    assert!(
        second
            .headers
            .get("retry-after")
            .is_some_and(|v| v.ends_with(" UTC")),
        "{:?}",
        second.headers
    );
    // Other metadata does not make it new; a new revision or token does.
    let mut annotated = event.clone();
    annotated["metadata"]["event.toolkit.fluxcd.io/env"] = json!("prod");
    assert_eq!(env.post_event(&annotated).await?.status, 429);
    let mut newer = event.clone();
    newer["metadata"]["kustomize.toolkit.fluxcd.io/revision"] = json!("main@sha1:bbbb");
    assert_eq!(env.post_event(&newer).await?.status, 202);
    let mut tokened = event.clone();
    tokened["metadata"]["kustomize.toolkit.fluxcd.io/token"] = json!("retry-2");
    assert_eq!(env.post_event(&tokened).await?.status, 202);
    let limited = env
        .metric(r#"gotk_event_http_request_duration_seconds_count{service="",handler="/",method="POST",code="429"}"#)
        .await?;
    assert_eq!(limited, 2.0, "{}", env.metrics().await?);
    // After the interval the same event is news again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(env.post_event(&event).await?.status, 202);

    // A flood of distinct events: all answered, and quickly.
    let started = Instant::now();
    let mut posts = Vec::new();
    for i in 0..400 {
        let env_events = env.events_url();
        let body = serde_json::to_vec(&kustomization_event(
            &ns,
            "web",
            "info",
            &format!("flood {i}"),
            json!({}),
        ))?;
        posts.push(tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(env_events)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await?;
            anyhow::Ok(response.status().as_u16())
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for post in posts {
        *statuses.entry(post.await??).or_insert(0) += 1;
    }
    assert_eq!(statuses.get(&202), Some(&400), "{statuses:?}");
    let probe_started = Instant::now();
    let probe = env
        .post_event(&kustomization_event(
            &ns,
            "web",
            "info",
            "after the flood",
            json!({}),
        ))
        .await?;
    assert_eq!(probe.status, 202);
    assert!(
        probe_started.elapsed() < Duration::from_secs(1),
        "{:?}",
        probe_started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn provider_errors_are_retried_then_reported_and_do_not_hold_up_others() -> Result<()> {
    let env = Env::start("nc-provider-500", &[]).await?;
    let failing = Recorder::start().await?;
    let healthy = Recorder::start().await?;
    env.provider(
        "down",
        "generic",
        &format!("{}/down", failing.url),
        json!({"timeout": "2s"}),
    )
    .await?;
    env.provider("up", "generic", &format!("{}/up", healthy.url), json!({}))
        .await?;
    env.alert("to-down", "down", json!({})).await?;
    env.alert("to-up", "up", json!({})).await?;
    let ns = env.ns().to_string();
    // Both live (the failing service answers 200 for now).
    env.deliver(
        &failing,
        |i| kustomization_event(&ns, "web", "info", &format!("probe {i}"), json!({})),
        |_| true,
    )
    .await?;
    env.deliver(
        &healthy,
        |i| kustomization_event(&ns, "web", "info", &format!("probe up {i}"), json!({})),
        |_| true,
    )
    .await?;

    failing.set_status(500);
    let message = "Health check failed after 30s";
    let posted = Instant::now();
    assert_eq!(
        env.post_event(&kustomization_event(
            &ns,
            "web",
            "error",
            message,
            json!({})
        ))
        .await?
        .status,
        202
    );
    let reached_up = healthy
        .wait_for(Duration::from_secs(10), |r| {
            String::from_utf8_lossy(&r.body).contains(message)
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("the healthy provider got nothing"))?;
    // The healthy Provider is not held up by the failing one's retries.
    assert!(reached_up.at.duration_since(posted) < Duration::from_secs(2));

    let (kind, note) = env
        .wait_for_event(
            "Alert",
            "to-down",
            "NotificationDispatchFailed",
            "failed to send notification for Kustomization",
        )
        .await?;
    assert_eq!(kind, "Warning");
    assert!(note.contains(&format!("Kustomization/{ns}/web")), "{note}");
    assert!(note.contains("500"), "{note}");
    // Retried with backoff before giving up.
    let attempts = failing.containing(message);
    assert!(attempts.len() >= 2, "{} attempts", attempts.len());
    assert!(attempts.last().map(|a| a.at) > attempts.first().map(|a| a.at));
    let failed = env
        .metric(&format!(
            r#"gotk_event_dispatch_total{{name="to-down",namespace="{ns}",provider_type="generic",result="failed"}}"#
        ))
        .await?;
    assert_eq!(failed, 1.0, "{}", env.metrics().await?);
    Ok(())
}

#[tokio::test]
async fn refusals_are_warning_events_on_the_alert() -> Result<()> {
    let env = Env::start("nc-refusals", &["--no-cross-namespace-refs=true"]).await?;
    let ns = env.ns().to_string();
    env.provider("hub", "otel", "https://example.invalid/hub", json!({}))
        .await?;
    env.alert("unsupported", "hub", json!({})).await?;
    let mut seen = false;
    for i in 0..30 {
        tokio::time::sleep(Duration::from_secs(i.min(1))).await;
        env.post_event(&kustomization_event(
            &ns,
            "web",
            "info",
            &format!("to the hub {i}"),
            json!({}),
        ))
        .await?;
        if env
            .has_event("Alert", "unsupported", "NotificationDispatchFailed")
            .await?
        {
            seen = true;
            break;
        }
    }
    assert!(seen, "{}", env.log_tail(40));
    let (_, note) = env
        .wait_for_event("Alert", "unsupported", "NotificationDispatchFailed", "otel")
        .await?;
    assert!(
        note.contains("failed to initialize notifier for provider 'hub'"),
        "{note}"
    );
    assert!(
        note.contains("provider type 'otel' is not supported"),
        "{note}"
    );

    // An Alert watching another namespace, with cross-namespace references blocked.
    let recorder = Recorder::start().await?;
    env.provider("hook", "generic", &recorder.url, json!({}))
        .await?;
    env.alert(
        "elsewhere",
        "hook",
        json!({"eventSources": [{"kind": "Kustomization", "name": "*", "namespace": "other"}]}),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.post_event(&kustomization_event(
        "other",
        "web",
        "info",
        "from another namespace",
        json!({}),
    ))
    .await?;
    let (_, note) = env
        .wait_for_event(
            "Alert",
            "elsewhere",
            "NotificationDispatchFailed",
            "cross-namespace references have been blocked",
        )
        .await?;
    assert!(note.contains("Kustomization/other/web"), "{note}");
    assert!(recorder.requests().is_empty());

    // A pattern that does not compile is reported, not ignored.
    env.alert("bad-regex", "hook", json!({"inclusionList": ["(unclosed"]}))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.post_event(&kustomization_event(
        &ns,
        "web",
        "info",
        "checked against a bad pattern",
        json!({}),
    ))
    .await?;
    let (_, note) = env
        .wait_for_event(
            "Alert",
            "bad-regex",
            "InvalidConfig",
            "failed to compile inclusion regex: (unclosed",
        )
        .await?;
    assert!(!note.is_empty());
    Ok(())
}

#[tokio::test]
async fn match_labels_select_objects_by_their_labels() -> Result<()> {
    let env = Env::start("nc-labels", &[]).await?;
    let recorder = Recorder::start().await?;
    for (name, team) in [("web", "a"), ("api", "b")] {
        env.apply::<api::kustomize::Kustomization>(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "labels": {"team": team}},
            "spec": {"interval": "10m", "prune": true, "path": "./",
                     "sourceRef": {"kind": "GitRepository", "name": "repo"}},
        }))
        .await?;
    }
    env.provider("hook", "generic", &recorder.url, json!({}))
        .await?;
    env.alert("team-a", "hook", json!({"eventSources": [{"kind": "Kustomization", "name": "*", "matchLabels": {"team": "a"}}]}))
        .await?;
    let ns = env.ns().to_string();
    env.deliver(
        &recorder,
        |i| kustomization_event(&ns, "web", "info", &format!("team a {i}"), json!({})),
        |_| true,
    )
    .await?;
    env.post_event(&kustomization_event(
        &ns,
        "api",
        "info",
        "team b event",
        json!({}),
    ))
    .await?;
    env.post_event(&kustomization_event(
        &ns,
        "web",
        "info",
        "team a again",
        json!({}),
    ))
    .await?;
    recorder
        .wait_for(Duration::from_secs(10), |r| {
            String::from_utf8_lossy(&r.body).contains("team a again")
        })
        .await
        .ok_or_else(|| anyhow::anyhow!("team a's second event did not arrive"))?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(recorder.containing("team b event").is_empty());

    // An object that cannot be read cannot match: SourceFetchFailed.
    env.post_event(&kustomization_event(
        &ns,
        "missing",
        "info",
        "about a missing object",
        json!({}),
    ))
    .await?;
    env.wait_for_event(
        "Alert",
        "team-a",
        "SourceFetchFailed",
        &format!("Kustomization/{ns}/missing"),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn slack_provider_gets_slacks_format() -> Result<()> {
    let env = Env::start("nc-slack", &[]).await?;
    let recorder = Recorder::start().await?;
    env.provider(
        "slack",
        "slack",
        &format!("{}/services/T000/B000/XXXX", recorder.url),
        json!({"channel": "ops", "username": "flux-bot"}),
    )
    .await?;
    env.alert(
        "slack",
        "slack",
        json!({"eventMetadata": {"cluster": "prod-1"}}),
    )
    .await?;
    let ns = env.ns().to_string();
    let request = env
        .deliver_web_event(&recorder, "error", "Health check failed", |_| true)
        .await?;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path(), "/services/T000/B000/XXXX");
    let body = request.json();
    assert_eq!(body["channel"], "ops");
    assert_eq!(body["username"], "flux-bot");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["color"], "danger");
    assert_eq!(attachment["author_name"], format!("kustomization/web.{ns}"));
    assert!(
        attachment["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("Health check failed")),
        "{body}"
    );
    let fields = attachment["fields"].as_array().cloned().unwrap_or_default();
    let titles: Vec<&str> = fields.iter().filter_map(|f| f["title"].as_str()).collect();
    assert_eq!(titles, ["cluster", "revision"], "{body}");
    assert_eq!(fields[1]["value"], "main@sha1:1234");
    Ok(())
}
