//! e2e: Alert and Provider are stored as `v1` and still served as the
//! deprecated `v1beta3`, as in Flux; `v1` adds the `mastodon` Provider type,
//! which posts a status through Mastodon's REST API (a loopback recorder
//! stands in for the Mastodon server).

mod fixture;

use anyhow::{Context, Result, ensure};
use fixture::{Env, Recorder};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

/// `kind` at `notification.toolkit.fluxcd.io/<version>`, in the test namespace.
fn api_at(env: &Env, version: &str, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(api::notification::GROUP, version, kind);
    Api::namespaced_with(env.client.clone(), env.ns(), &ApiResource::from_gvk(&gvk))
}

async fn apply_at(env: &Env, version: &str, object: Value) -> Result<DynamicObject> {
    let kind = object["kind"].as_str().context("kind")?.to_string();
    let name = object["metadata"]["name"]
        .as_str()
        .context("name")?
        .to_string();
    api_at(env, version, &kind)
        .patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(object),
        )
        .await
        .with_context(|| format!("applying {version} {kind} {name}"))
}

#[tokio::test]
async fn v1beta3_objects_are_served_stored_as_v1_and_delivered() -> Result<()> {
    let env = Env::start("nc-v1beta3", &[]).await?;
    let recorder = Recorder::start().await?;
    let v1beta3 = "notification.toolkit.fluxcd.io/v1beta3";
    apply_at(
        &env,
        "v1beta3",
        json!({"apiVersion": v1beta3, "kind": "Provider", "metadata": {"name": "hook"},
               "spec": {"type": "generic", "address": format!("{}/hook", recorder.url),
                        "interval": "5m", "proxy": "http://127.0.0.1:1"}}),
    )
    .await?;
    apply_at(
        &env,
        "v1beta3",
        json!({"apiVersion": v1beta3, "kind": "Alert", "metadata": {"name": "all"},
               "spec": {"providerRef": {"name": "hook"}, "summary": "old field",
                        "eventSources": [{"kind": "Kustomization", "name": "*"}]}}),
    )
    .await?;

    // Read as v1 (the stored version): the fields v1 dropped are gone, as
    // the API server prunes them for Flux too; so the dead proxy above is
    // not used and the summary is not sent.
    let provider = env.api::<api::notification::Provider>().get("hook").await?;
    ensure!(provider.spec.r#type == api::notification::ProviderType::Generic);
    let stored = api_at(&env, "v1beta3", "Provider").get("hook").await?;
    ensure!(
        stored.data["spec"].get("proxy").is_none() && stored.data["spec"].get("interval").is_none(),
        "v1beta3 fields v1 lacks were stored: {}",
        stored.data
    );
    let alert = api_at(&env, "v1", "Alert").get("all").await?;
    ensure!(
        alert.data["spec"].get("summary").is_none(),
        "{}",
        alert.data
    );

    let request = env
        .deliver_web_event(&recorder, "info", "Reconciliation finished", |r| {
            r.path() == "/hook"
        })
        .await?;
    let body = request.json();
    ensure!(
        body["metadata"] == json!({"revision": "main@sha1:1234"}),
        "{body}"
    );

    // mastodon is a v1 type only.
    let refused = apply_at(
        &env,
        "v1beta3",
        json!({"apiVersion": v1beta3, "kind": "Provider", "metadata": {"name": "m"},
               "spec": {"type": "mastodon", "address": "https://mastodon.example"}}),
    )
    .await;
    let message = format!("{:#}", refused.err().context("v1beta3 accepted mastodon")?);
    ensure!(message.contains("spec.type"), "{message}");
    Ok(())
}

#[tokio::test]
async fn mastodon_provider_posts_a_status() -> Result<()> {
    let env = Env::start("nc-mastodon", &[]).await?;
    let recorder = Recorder::start().await?;
    env.secret("mastodon", json!({"token": "access-token"}), json!({}))
        .await?;
    env.provider(
        "mastodon",
        "mastodon",
        &format!("{}/?visibility=unlisted", recorder.url),
        json!({"secretRef": {"name": "mastodon"}}),
    )
    .await?;
    env.alert(
        "mastodon",
        "mastodon",
        json!({"eventMetadata": {"cluster": "prod-1"}}),
    )
    .await?;
    let ns = env.ns().to_string();
    let request = env
        .deliver_web_event(&recorder, "error", "Health check failed", |_| true)
        .await?;
    ensure!(request.method == "POST");
    ensure!(request.path() == "/api/v1/statuses", "{}", request.path());
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    ensure!(header("authorization") == Some("Bearer access-token"));
    ensure!(
        header("idempotency-key").is_some_and(|k| k.len() == 64),
        "{:?}",
        request.headers
    );
    let body = request.json();
    ensure!(body["visibility"] == "unlisted", "{body}");
    let status = body["status"].as_str().context("status")?;
    let expected = format!("🚨 kustomization/web.{ns}\nHealth check failed (");
    ensure!(status.starts_with(&expected), "{status}");
    ensure!(
        status.ends_with("\ncluster: prod-1\nrevision: main@sha1:1234"),
        "{status}"
    );
    Ok(())
}
