//! Bucket end to end: the real source-controller binary against the real
//! control plane and a real S3 server (versitygw, POSIX backend, built from
//! its Go module), objects written with SigV4-signed requests.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::{Bucket, HelmChart};
use e2e::s3::S3Server;
use fixture::{Env, condition, fetch_artifact, files_under, object};
use serde_json::json;
use sha2::{Digest, Sha256};

const WAIT: Duration = Duration::from_secs(90);

/// A test's namespace and controller, the shared S3 server (HTTPS when
/// `tls`) and what [`prepare`] makes there.
async fn start(test: &str, tls: bool) -> Result<(Env, &'static S3Server, String)> {
    let env = Env::start(test, &[]).await?;
    let s3 = S3Server::shared(tls).await?;
    let bucket = prepare(&env, s3).await?;
    Ok((env, s3, bucket))
}

/// A bucket on `s3` named after the namespace (returned) and the Secret
/// `s3-auth` with the server's keys, once Buckets are served.
async fn prepare(env: &Env, s3: &S3Server) -> Result<String> {
    let bucket = env.ns().to_string();
    s3.create_bucket(&bucket).await?;
    env.secret(
        "s3-auth",
        &[
            ("accesskey", s3.access_key()),
            ("secretkey", s3.secret_key()),
        ],
    )
    .await?;
    env.wait_served::<Bucket>(WAIT).await?;
    Ok(bucket)
}

/// Flux's revision of an index: sha256 of `"<key> <etag>\n"` in key order.
fn revision(index: &[(&str, &str)]) -> String {
    let mut sorted = index.to_vec();
    sorted.sort();
    let mut hasher = Sha256::new();
    for (key, etag) in sorted {
        hasher.update(format!("{key} {etag}\n"));
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// Requests a reconcile and waits until it was handled; returns the object.
async fn reconciled(env: &Env, name: &str) -> Result<Bucket> {
    let token = env.request_reconcile::<Bucket>(name).await?;
    env.wait_for::<Bucket, _>(name, WAIT, |bucket| {
        let status = bucket.status.as_ref()?;
        (status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str()))
        .then(|| bucket.clone())
    })
    .await
}

const APP_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

#[tokio::test(flavor = "multi_thread")]
async fn prefix_and_ignore_rules_shape_the_index_and_the_artifact() -> Result<()> {
    let (env, s3, bucket) = start("bucket-index", false).await?;
    let app = s3
        .put_object(&bucket, "apps/app.yaml", APP_YAML.as_bytes())
        .await?;
    let cm = s3
        .put_object(&bucket, "apps/sub/cm.yaml", b"kind: ConfigMap\n")
        .await?;
    s3.put_object(&bucket, "apps/README.md", b"# left out by spec.ignore\n")
        .await?;
    s3.put_object(&bucket, "apps/skip/x.yaml", b"left out by .sourceignore\n")
        .await?;
    s3.put_object(&bucket, "other/y.yaml", b"outside the prefix\n")
        .await?;
    // The bucket's root .sourceignore applies, even with a prefix.
    s3.put_object(&bucket, ".sourceignore", b"apps/skip/\n")
        .await?;
    env.create::<Bucket>(object(
        "Bucket",
        "app",
        json!({"endpoint": s3.endpoint(), "insecure": true, "bucketName": bucket,
               "prefix": "apps/", "ignore": "*.md\n", "interval": "1h",
               "secretRef": {"name": "s3-auth"}}),
    ))
    .await?;

    let first = revision(&[("apps/app.yaml", &app), ("apps/sub/cm.yaml", &cm)]);
    let obj = env.ready_at::<Bucket>("app", &first).await?;
    let status = obj.status.clone().context("status")?;
    let artifact = status.artifact.clone().context("artifact")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(ready.reason == "Succeeded", "{ready:?}");
    ensure!(
        ready.message == format!("stored artifact: revision '{first}'"),
        "{ready:?}"
    );
    let stored = condition(status.conditions.as_ref(), "ArtifactInStorage").context("AIS")?;
    ensure!(
        stored.status == "True" && stored.message == ready.message,
        "{stored:?}"
    );
    let hex = first.trim_start_matches("sha256:");
    ensure!(
        artifact.path == format!("bucket/{}/app/{hex}.tar.gz", env.ns()),
        "{artifact:?}"
    );
    ensure!(
        status.url
            == Some(format!(
                "http://127.0.0.1:{}/bucket/{}/app/latest.tar.gz",
                env.controller.storage_port,
                env.ns()
            )),
        "{:?}",
        status.url
    );
    ensure!(status.observed_ignore.as_deref() == Some("*.md\n"));
    // Keys keep their prefix; the fetched .sourceignore goes in, as in Flux.
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path()) == [".sourceignore", "apps/app.yaml", "apps/sub/cm.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );
    ensure!(std::fs::read_to_string(unpacked.path().join("apps/app.yaml"))? == APP_YAML);
    env.wait_for_event(
        "NewArtifact",
        &format!("stored artifact with 2 fetched files from '{bucket}' bucket"),
    )
    .await?;

    // Unchanged objects: same revision, the same artifact, nothing written.
    let again = reconciled(&env, "app").await?;
    ensure!(
        again.status.as_ref().and_then(|s| s.artifact.as_ref()) == Some(&artifact),
        "the artifact changed although the bucket did not"
    );
    // An object outside the index changes nothing either.
    s3.put_object(&bucket, "apps/skip/x.yaml", b"still ignored\n")
        .await?;
    let again = reconciled(&env, "app").await?;
    ensure!(again.status.as_ref().and_then(|s| s.artifact.as_ref()) == Some(&artifact));

    // A changed object: a new revision and artifact.
    let changed = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  v: \"2\"\n";
    let app2 = s3
        .put_object(&bucket, "apps/app.yaml", changed.as_bytes())
        .await?;
    ensure!(app2 != app, "the server kept the ETag of changed content");
    let second = revision(&[("apps/app.yaml", &app2), ("apps/sub/cm.yaml", &cm)]);
    env.request_reconcile::<Bucket>("app").await?;
    let obj = env.ready_at::<Bucket>("app", &second).await?;
    let artifact2 = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let unpacked = fetch_artifact(&artifact2.url, &artifact2.digest).await?;
    ensure!(std::fs::read_to_string(unpacked.path().join("apps/app.yaml"))? == changed);

    // A removed object leaves the index.
    s3.delete_object(&bucket, "apps/sub/cm.yaml").await?;
    env.request_reconcile::<Bucket>("app").await?;
    let third = revision(&[("apps/app.yaml", &app2)]);
    let obj = env.ready_at::<Bucket>("app", &third).await?;
    let artifact3 = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let unpacked = fetch_artifact(&artifact3.url, &artifact3.digest).await?;
    ensure!(
        files_under(unpacked.path()) == [".sourceignore", "apps/app.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_carry_fluxs_reasons_and_keep_the_last_artifact() -> Result<()> {
    let (env, s3, bucket) = start("bucket-fail", false).await?;
    let etag = s3
        .put_object(&bucket, "app.yaml", APP_YAML.as_bytes())
        .await?;
    let spec = |bucket: &str, secret: &str| {
        json!({"endpoint": s3.endpoint(), "insecure": true, "bucketName": bucket,
               "interval": "1h", "secretRef": {"name": secret}})
    };

    // A wrong secret key: the server refuses the signature. (An unknown
    // access key is a 404 on versitygw, which Flux too reads as a missing bucket.)
    env.secret(
        "wrong",
        &[
            ("accesskey", s3.access_key()),
            ("secretkey", "not-the-secret"),
        ],
    )
    .await?;
    env.create::<Bucket>(object("Bucket", "wrong-keys", spec(&bucket, "wrong")))
        .await?;
    let obj = env
        .failing::<Bucket>(
            "wrong-keys",
            "BucketOperationFailed",
            &format!("failed to confirm existence of '{bucket}' bucket: Access Denied."),
        )
        .await?;
    let status = obj.status.context("status")?;
    let fetch = condition(status.conditions.as_ref(), "FetchFailed").context("FetchFailed")?;
    ensure!(
        fetch.status == "True" && fetch.reason == "BucketOperationFailed",
        "{fetch:?}"
    );
    ensure!(condition(status.conditions.as_ref(), "Stalled").is_none());

    // A Secret without the keys Flux requires.
    env.secret("incomplete", &[("accesskey", "only")]).await?;
    env.create::<Bucket>(object(
        "Bucket",
        "no-secret-key",
        spec(&bucket, "incomplete"),
    ))
    .await?;
    env.failing::<Bucket>(
        "no-secret-key",
        "AuthenticationFailed",
        "invalid 'incomplete' secret data: required fields 'accesskey' and 'secretkey'",
    )
    .await?;

    // A bucket that does not exist.
    env.create::<Bucket>(object(
        "Bucket",
        "missing",
        spec("no-such-bucket", "s3-auth"),
    ))
    .await?;
    env.failing::<Bucket>(
        "missing",
        "BucketOperationFailed",
        "bucket 'no-such-bucket' not found",
    )
    .await?;

    // The endpoint is down: nothing listens on the port.
    let down = e2e::paths::free_port()?;
    env.create::<Bucket>(object(
        "Bucket",
        "down",
        json!({"endpoint": format!("127.0.0.1:{down}"), "insecure": true,
               "bucketName": bucket, "interval": "1h", "secretRef": {"name": "s3-auth"}}),
    ))
    .await?;
    let obj = env.failing::<Bucket>(
        "down",
        "BucketOperationFailed",
        &format!("failed to confirm existence of '{bucket}' bucket: HEAD \"http://127.0.0.1:{down}/{bucket}/\": "),
    )
    .await?;
    let message = condition(
        obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
        "Ready",
    )
    .context("Ready")?
    .message
    .clone();
    ensure!(
        !message.contains("X-Amz-") && !message.contains(s3.access_key()),
        "the message leaks the presigned URL: {message}"
    );

    // Cloud providers stall, naming the provider.
    env.create::<Bucket>(object(
        "Bucket",
        "aws",
        json!({"provider": "aws", "endpoint": "s3.amazonaws.com", "bucketName": bucket,
               "interval": "1h"}),
    ))
    .await?;
    let obj = env
        .failing::<Bucket>("aws", "InvalidProviderConfiguration", "provider 'aws'")
        .await?;
    let stalled = condition(
        obj.status.as_ref().and_then(|s| s.conditions.as_ref()),
        "Stalled",
    )
    .context("Stalled")?;
    ensure!(
        stalled.status == "True" && stalled.reason == "InvalidProviderConfiguration",
        "{stalled:?}"
    );

    // A good Bucket whose credentials then go bad keeps serving its artifact.
    env.secret(
        "rotating",
        &[
            ("accesskey", s3.access_key()),
            ("secretkey", s3.secret_key()),
        ],
    )
    .await?;
    env.create::<Bucket>(object("Bucket", "kept", spec(&bucket, "rotating")))
        .await?;
    let good = env
        .ready_at::<Bucket>("kept", &revision(&[("app.yaml", &etag)]))
        .await?;
    let artifact = good.status.and_then(|s| s.artifact).context("artifact")?;
    env.secret(
        "rotating",
        &[
            ("accesskey", s3.access_key()),
            ("secretkey", "not-the-secret"),
        ],
    )
    .await?;
    env.request_reconcile::<Bucket>("kept").await?;
    let obj = env
        .failing::<Bucket>(
            "kept",
            "BucketOperationFailed",
            "failed to confirm existence",
        )
        .await?;
    let status = obj.status.context("status")?;
    ensure!(
        status.artifact.as_ref() == Some(&artifact),
        "{:?}",
        status.artifact
    );
    ensure!(
        condition(status.conditions.as_ref(), "ArtifactInStorage")
            .is_some_and(|c| c.status == "True")
    );
    fetch_artifact(&artifact.url, &artifact.digest).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn https_endpoints_need_the_ca_of_the_cert_secret() -> Result<()> {
    let (env, s3, bucket) = start("bucket-tls", true).await?;
    let etag = s3
        .put_object(&bucket, "app.yaml", APP_YAML.as_bytes())
        .await?;
    env.secret("s3-ca", &[("ca.crt", s3.ca_pem().context("CA")?)])
        .await?;
    let spec = json!({"endpoint": s3.endpoint(), "bucketName": bucket, "interval": "1h",
                      "secretRef": {"name": "s3-auth"}});

    // Without the CA the server's certificate is not trusted.
    env.create::<Bucket>(object("Bucket", "untrusted", spec.clone()))
        .await?;
    env.failing::<Bucket>(
        "untrusted",
        "BucketOperationFailed",
        &format!("failed to confirm existence of '{bucket}' bucket: HEAD \"https://"),
    )
    .await?;

    let mut trusted = spec;
    trusted["certSecretRef"] = json!({"name": "s3-ca"});
    env.create::<Bucket>(object("Bucket", "trusted", trusted))
        .await?;
    let obj = env
        .ready_at::<Bucket>("trusted", &revision(&[("app.yaml", &etag)]))
        .await?;
    let artifact = obj.status.and_then(|s| s.artifact).context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["app.yaml"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn helm_chart_is_packaged_from_a_bucket() -> Result<()> {
    let (env, s3, bucket) = start("bucket-chart", false).await?;
    let files: [(&str, &str); 3] = [
        (
            "charts/podinfo/Chart.yaml",
            "apiVersion: v2\nname: podinfo\nversion: 6.1.0\n",
        ),
        ("charts/podinfo/values.yaml", "replicas: 1\n"),
        (
            "charts/podinfo/templates/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo\n",
        ),
    ];
    let mut index = Vec::new();
    for (key, content) in files {
        index.push((key, s3.put_object(&bucket, key, content.as_bytes()).await?));
    }
    env.create::<Bucket>(object(
        "Bucket",
        "charts",
        json!({"endpoint": s3.endpoint(), "insecure": true, "bucketName": bucket,
               "interval": "1h", "secretRef": {"name": "s3-auth"}}),
    ))
    .await?;
    let index: Vec<(&str, &str)> = index.iter().map(|(k, e)| (*k, e.as_str())).collect();
    let source_revision = revision(&index);
    env.ready_at::<Bucket>("charts", &source_revision).await?;

    env.create::<HelmChart>(object(
        "HelmChart",
        "podinfo",
        json!({"chart": "charts/podinfo", "interval": "1h", "reconcileStrategy": "Revision",
               "sourceRef": {"kind": "Bucket", "name": "charts"}}),
    ))
    .await?;
    // Flux's build metadata for a Bucket: the first 12 of the digest.
    let version = format!("6.1.0+{}", &source_revision["sha256:".len()..][..12]);
    let chart = env
        .wait_for::<HelmChart, _>("podinfo", WAIT, |chart| {
            let status = chart.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (ready.status == "True" && status.artifact.as_ref()?.revision == version)
                .then(|| chart.clone())
        })
        .await?;
    let status = chart.status.context("status")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(ready.reason == "ChartPackageSucceeded", "{ready:?}");
    ensure!(
        ready.message == format!("packaged 'podinfo' chart with version '{version}'"),
        "{ready:?}"
    );
    ensure!(status.observed_source_artifact_revision.as_deref() == Some(source_revision.as_str()));
    let artifact = status.artifact.context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path())
            == [
                "podinfo/Chart.yaml",
                "podinfo/templates/cm.yaml",
                "podinfo/values.yaml"
            ],
        "{:?}",
        files_under(unpacked.path())
    );

    // A new object in the bucket: a new source revision, a new chart version.
    let extra = s3
        .put_object(
            &bucket,
            "charts/podinfo/templates/extra.yaml",
            b"kind: ConfigMap\n",
        )
        .await?;
    let mut index2 = index.clone();
    index2.push(("charts/podinfo/templates/extra.yaml", &extra));
    let revision2 = revision(&index2);
    env.request_reconcile::<Bucket>("charts").await?;
    env.ready_at::<Bucket>("charts", &revision2).await?;
    let version2 = format!("6.1.0+{}", &revision2["sha256:".len()..][..12]);
    env.wait_for::<HelmChart, _>("podinfo", WAIT, |chart| {
        (chart.status.as_ref()?.artifact.as_ref()?.revision == version2).then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_secret_routes_requests_through_the_proxy() -> Result<()> {
    let (env, s3, bucket) = start("bucket-proxy", true).await?;
    let etag = s3
        .put_object(&bucket, "app.yaml", APP_YAML.as_bytes())
        .await?;
    let proxy = tokio::task::spawn_blocking(|| e2e::proxy::HttpProxy::start(true)).await??;
    env.secret("s3-ca", &[("ca.crt", s3.ca_pem().context("CA")?)])
        .await?;
    env.secret(
        "proxy",
        &[
            ("address", &proxy.address()),
            ("username", proxy.username().context("user")?),
            ("password", proxy.password().context("password")?),
        ],
    )
    .await?;
    env.secret(
        "bad-proxy",
        &[
            ("address", &proxy.address()),
            ("username", proxy.username().context("user")?),
            ("password", "wrong"),
        ],
    )
    .await?;
    let spec = |proxy_secret: &str| {
        json!({"endpoint": s3.endpoint(), "bucketName": bucket, "interval": "1h",
               "secretRef": {"name": "s3-auth"}, "certSecretRef": {"name": "s3-ca"},
               "proxySecretRef": {"name": proxy_secret}})
    };

    env.create::<Bucket>(object("Bucket", "proxied", spec("proxy")))
        .await?;
    env.ready_at::<Bucket>("proxied", &revision(&[("app.yaml", &etag)]))
        .await?;
    ensure!(
        proxy.connect_requested(&s3.endpoint()),
        "no CONNECT {} in the proxy's log:\n{}",
        s3.endpoint(),
        proxy.log()
    );

    // The proxy refuses wrong credentials: the request fails, naming the
    // bucket and the proxy (never its credentials).
    env.create::<Bucket>(object("Bucket", "refused", spec("bad-proxy")))
        .await?;
    env.failing::<Bucket>(
        "refused",
        "BucketOperationFailed",
        &format!("failed to confirm existence of '{bucket}' bucket: HEAD \"https://"),
    )
    .await?;
    env.failing::<Bucket>(
        "refused",
        "BucketOperationFailed",
        &format!("(through proxy {})", proxy.address()),
    )
    .await?;

    // A proxy Secret without an address is refused before any request.
    env.secret("no-address", &[("username", "u")]).await?;
    env.create::<Bucket>(object("Bucket", "no-address", spec("no-address")))
        .await?;
    env.failing::<Bucket>(
        "no-address",
        "AuthenticationFailed",
        "key 'address' is missing",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_region_the_buckets_own_is_used() -> Result<()> {
    let env = Env::start("bucket-region", &[]).await?;
    let s3 = tokio::task::spawn_blocking(|| S3Server::start_in(false, "eu-west-3")).await??;
    let bucket = prepare(&env, &s3).await?;
    let etag = s3
        .put_object(&bucket, "app.yaml", APP_YAML.as_bytes())
        .await?;
    let spec = json!({"endpoint": s3.endpoint(), "insecure": true, "bucketName": bucket,
                      "interval": "1h", "secretRef": {"name": "s3-auth"}});
    let expected = revision(&[("app.yaml", &etag)]);

    // Requests signed for us-east-1 are refused; the server's region is found.
    env.create::<Bucket>(object("Bucket", "found", spec.clone()))
        .await?;
    env.ready_at::<Bucket>("found", &expected).await?;
    let mut named = spec;
    named["region"] = json!("eu-west-3");
    env.create::<Bucket>(object("Bucket", "named", named))
        .await?;
    env.ready_at::<Bucket>("named", &expected).await?;
    Ok(())
}
