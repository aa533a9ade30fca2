//! OCIRepository end to end: the real source-controller binary against the
//! real control plane and a real registry (Debian's docker-registry), with
//! artifacts pushed over the registry's /v2 API the way `flux push artifact`
//! does.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::OCIRepository;
use e2e::registry::{FLUX_CONFIG, FLUX_CONTENT, Registry, sha256_digest};
use fixture::{Env, condition, download, fetch_artifact, files_under};
use kube::api::DeleteParams;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const HELM_CHART_CONTENT: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

/// The registries all tests of this binary share: one open, one behind
/// htpasswd basic auth. Each test uses repositories named after its namespace.
async fn registry(auth: bool) -> Result<&'static Registry> {
    Registry::shared(auth, false).await
}

/// A test's namespace and controller, and the registry it pushes to, once
/// the apiserver serves OCIRepositories.
async fn start(test: &str, auth: bool) -> Result<(Env, &'static Registry)> {
    let env = Env::start(test, &[]).await?;
    let registry = registry(auth).await?;
    env.wait_served::<OCIRepository>(WAIT).await?;
    Ok((env, registry))
}

fn oci_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name},
        "spec": spec,
    })
}

const APP_YAML: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n";

#[tokio::test(flavor = "multi_thread")]
async fn tag_pull_serves_the_artifact_and_follows_the_tag() -> Result<()> {
    let (env, registry) = start("oci-tag", false).await?;
    let repo = format!("{}/app", env.ns());
    let first = registry.push_flux_artifact(
        &repo,
        "latest",
        [("deploy/app.yaml", APP_YAML), ("README.md", "hello\n")],
    )?;
    env.create::<OCIRepository>(oci_repository(
        "app",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true}),
    ))
    .await?;

    let revision = format!("latest@{first}");
    let obj = env.ready_at::<OCIRepository>("app", &revision).await?;
    let status = obj.status.clone().context("status")?;
    let artifact = status.artifact.clone().context("artifact")?;
    let ready = condition(status.conditions.as_ref(), "Ready").context("Ready")?;
    ensure!(ready.reason == "Succeeded", "{ready:?}");
    ensure!(
        ready.message == format!("stored artifact for digest '{revision}'"),
        "{ready:?}"
    );
    ensure!(
        condition(status.conditions.as_ref(), "ArtifactInStorage")
            .is_some_and(|c| c.status == "True")
    );
    ensure!(
        artifact.path == format!("ocirepository/{}/app/{first}.tar.gz", env.ns()),
        "{artifact:?}"
    );
    ensure!(
        status.url
            == Some(format!(
                "http://127.0.0.1:{}/ocirepository/{}/app/latest.tar.gz",
                env.controller.storage_port,
                env.ns()
            )),
        "{:?}",
        status.url
    );
    let metadata = artifact.metadata.clone().context("artifact metadata")?;
    ensure!(
        metadata.get("org.opencontainers.image.revision") == Some(&"latest".to_string()),
        "{metadata:?}"
    );
    ensure!(metadata.contains_key("org.opencontainers.image.source"));
    ensure!(metadata.contains_key("org.opencontainers.image.created"));

    // What consumers see: the served file hashes to the announced digest.
    let bytes = download(&artifact.url).await?;
    ensure!(sha256_digest(&bytes) == artifact.digest, "digest mismatch");
    ensure!(artifact.size == Some(bytes.len() as i64));
    ensure!(download(status.url.as_deref().context("url")?).await? == bytes);
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path()) == ["README.md", "deploy/app.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );

    // Flux's NewArtifact event, with where the content came from.
    env.wait_for_event(
        "NewArtifact",
        &format!(
            "stored artifact with revision '{revision}' from '{}', origin source 'https://example.invalid/ferroflux-e2e', origin revision 'latest'",
            registry.oci_url(&repo)
        ),
    )
    .await?;

    // Nothing changed upstream: a reconcile request is handled without a new artifact.
    let token = env.request_reconcile::<OCIRepository>("app").await?;
    let obj = env
        .wait_for::<OCIRepository, _>("app", WAIT, |repo| {
            let status = repo.status.as_ref()?;
            (status
                .reconcile_request
                .last_handled_reconcile_at
                .as_deref()
                == Some(token.as_str()))
            .then(|| repo.clone())
        })
        .await?;
    ensure!(
        obj.status.as_ref().and_then(|s| s.artifact.as_ref()) == Some(&artifact),
        "the artifact changed although the digest did not"
    );

    // A new push to the tag is picked up on a reconcile request, long before the interval.
    let second = registry.push_flux_artifact(
        &repo,
        "latest",
        [
            ("deploy/app.yaml", APP_YAML),
            ("deploy/extra.yaml", "kind: Namespace\n"),
        ],
    )?;
    ensure!(second != first);
    let token = env.request_reconcile::<OCIRepository>("app").await?;
    let obj = env
        .ready_at::<OCIRepository>("app", &format!("latest@{second}"))
        .await?;
    let status = obj.status.context("status")?;
    ensure!(
        status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str()),
        "{:?}",
        status.reconcile_request
    );
    let artifact = status.artifact.context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path()) == ["deploy/app.yaml", "deploy/extra.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn semver_filter_and_digest_references() -> Result<()> {
    let (env, registry) = start("oci-semver", false).await?;
    let repo = format!("{}/manifests", env.ns());
    let mut digests = std::collections::BTreeMap::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest"] {
        let digest =
            registry.push_flux_artifact(&repo, tag, [("version.txt", format!("{tag}\n"))])?;
        digests.insert(tag, digest);
    }
    let url = registry.oci_url(&repo);
    env.create::<OCIRepository>(oci_repository(
        "range",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"semver": ">=1.0.0 <2.0.0", "tag": "2.0.0"}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "filtered",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"semver": "*", "semverFilter": "^1\\.0"}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "pinned",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"digest": digests["2.0.0"], "tag": "1.0.0"}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "bad-range",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"semver": "not a range"}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "no-match",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"semver": ">=3.0.0"}}),
    ))
    .await?;

    env.ready_at::<OCIRepository>("range", &format!("1.1.0@{}", digests["1.1.0"]))
        .await?;
    env.ready_at::<OCIRepository>("filtered", &format!("1.0.0@{}", digests["1.0.0"]))
        .await?;
    let pinned = env
        .ready_at::<OCIRepository>("pinned", &digests["2.0.0"])
        .await?;
    let artifact = pinned
        .status
        .and_then(|s| s.artifact)
        .context("pinned artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(std::fs::read_to_string(unpacked.path().join("version.txt"))? == "2.0.0\n");

    let bad = env
        .failing::<OCIRepository>(
            "bad-range",
            "ReadOperationFailed",
            &format!(
                "failed to determine the artifact tag for '{url}': semver 'not a range' parse error"
            ),
        )
        .await?;
    let status = bad.status.context("status")?;
    ensure!(
        condition(status.conditions.as_ref(), "Stalled").is_some_and(|c| c.status == "True"),
        "an invalid range cannot succeed without a spec change: {:?}",
        status.conditions
    );
    env.failing::<OCIRepository>(
        "no-match",
        "ReadOperationFailed",
        &format!(
            "failed to determine the artifact tag for '{url}': no match found for semver: >=3.0.0"
        ),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dockerconfigjson_credentials_and_refused_ones() -> Result<()> {
    let (env, registry) = start("oci-auth", true).await?;
    let repo = format!("{}/private", env.ns());
    let digest = registry.push_flux_artifact(&repo, "v1", [("app.yaml", APP_YAML)])?;
    let wrong = json!({"auths": {registry.host(): {"username": "flux", "password": "wrong"}}});
    env.secret(
        "registry-auth",
        &[(".dockerconfigjson", &wrong.to_string())],
    )
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "private",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}, "secretRef": {"name": "registry-auth"}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "anonymous",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true, "ref": {"tag": "v1"}}),
    ))
    .await?;

    let refused = env
        .failing::<OCIRepository>("private", "OCIArtifactPullFailed", "authentication to")
        .await?;
    let status = refused.status.context("status")?;
    ensure!(
        condition(status.conditions.as_ref(), "FetchFailed")
            .is_some_and(|c| c.status == "True" && c.reason == "OCIArtifactPullFailed"),
        "{:?}",
        status.conditions
    );
    ensure!(status.artifact.is_none());
    env.failing::<OCIRepository>("anonymous", "OCIArtifactPullFailed", "authentication to")
        .await?;

    // The right credentials (as `kubectl create secret docker-registry` writes them) recover it.
    env.secret(
        "registry-auth",
        &[(".dockerconfigjson", &registry.docker_config_json())],
    )
    .await?;
    env.request_reconcile::<OCIRepository>("private").await?;
    let obj = env
        .ready_at::<OCIRepository>("private", &format!("v1@{digest}"))
        .await?;
    let status = obj.status.context("status")?;
    ensure!(
        condition(status.conditions.as_ref(), "FetchFailed").is_none(),
        "{:?}",
        status.conditions
    );
    let artifact = status.artifact.context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["app.yaml"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_artifacts_and_missing_tags_keep_the_last_good_artifact() -> Result<()> {
    let (env, registry) = start("oci-faults", false).await?;
    let repo = format!("{}/app", env.ns());
    let good = registry.push_flux_artifact(&repo, "stable", [("app.yaml", APP_YAML)])?;
    let url = registry.oci_url(&repo);
    env.create::<OCIRepository>(oci_repository(
        "app",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"tag": "stable"},
               "layerSelector": {"mediaType": FLUX_CONTENT}}),
    ))
    .await?;
    env.create::<OCIRepository>(oci_repository(
        "missing",
        json!({"url": url, "interval": "1h", "insecure": true, "ref": {"tag": "nope"}}),
    ))
    .await?;
    let closed = e2e::paths::free_port()?;
    env.create::<OCIRepository>(oci_repository(
        "unreachable",
        json!({"url": format!("oci://127.0.0.1:{closed}/app"), "interval": "1h", "insecure": true, "timeout": "5s"}),
    ))
    .await?;
    let obj = env
        .ready_at::<OCIRepository>("app", &format!("stable@{good}"))
        .await?;
    let good_artifact = obj
        .status
        .and_then(|s| s.artifact)
        .context("good artifact")?;

    env.failing::<OCIRepository>(
        "missing",
        "OCIArtifactPullFailed",
        &format!(
            "failed to determine artifact digest: '{}:nope' not found",
            registry.oci_url(&repo).trim_start_matches("oci://")
        ),
    )
    .await?;

    env.failing::<OCIRepository>(
        "unreachable",
        "OCIArtifactPullFailed",
        // Whatever may have taken the port since, no digest can be resolved there.
        "failed to determine artifact digest: ",
    )
    .await?;

    // The tag moves to a Helm chart: not the layer this object selects.
    let chart = e2e::registry::gzip(&e2e::registry::tar_of([("chart/Chart.yaml", "name: x\n")])?)?;
    registry.push_manifest_of(
        &repo,
        "stable",
        ("application/vnd.cncf.helm.config.v1+json", b"{}"),
        &[(HELM_CHART_CONTENT, &chart)],
        None,
    )?;
    env.request_reconcile::<OCIRepository>("app").await?;
    let failed = env
        .failing::<OCIRepository>(
            "app",
            "OCIArtifactLayerOperationFailed",
            &format!("failed to find layer with media type '{FLUX_CONTENT}' in artifact"),
        )
        .await?;
    let status = failed.status.context("status")?;
    ensure!(
        status.artifact.as_ref() == Some(&good_artifact),
        "{status:?}"
    );
    ensure!(
        condition(status.conditions.as_ref(), "ArtifactInStorage")
            .is_some_and(|c| c.status == "True")
    );
    ensure!(sha256_digest(&download(&good_artifact.url).await?) == good_artifact.digest);

    // The tag moves to something with the right media type that is no tarball.
    registry.push_manifest_of(
        &repo,
        "stable",
        (FLUX_CONFIG, b"{}"),
        &[(FLUX_CONTENT, b"this is not gzip")],
        None,
    )?;
    env.request_reconcile::<OCIRepository>("app").await?;
    let failed = env
        .failing::<OCIRepository>(
            "app",
            "OCIArtifactLayerOperationFailed",
            "failed to extract layer contents from artifact",
        )
        .await?;
    ensure!(failed.status.and_then(|s| s.artifact).as_ref() == Some(&good_artifact));

    // A good artifact again: back to Ready.
    let fixed = registry.push_flux_artifact(&repo, "stable", [("fixed.yaml", APP_YAML)])?;
    env.request_reconcile::<OCIRepository>("app").await?;
    env.ready_at::<OCIRepository>("app", &format!("stable@{fixed}"))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_stores_the_layer_as_is_and_deletion_removes_artifacts() -> Result<()> {
    let (env, registry) = start("oci-copy", false).await?;
    let repo = format!("{}/bundle", env.ns());
    let digest = registry.push_flux_artifact(
        &repo,
        "v1",
        [
            ("deploy/app.yaml", APP_YAML),
            ("logo.png", "not really a png"),
        ],
    )?;
    let (_, manifest) = registry.manifest(&repo, "v1")?;
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .context("layer digest")?
        .to_string();
    let selector = json!({"mediaType": FLUX_CONTENT, "operation": "copy"});
    env.create::<OCIRepository>(oci_repository(
        "bundle",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}, "layerSelector": selector}),
    ))
    .await?;
    let obj = env
        .ready_at::<OCIRepository>("bundle", &format!("v1@{digest}"))
        .await?;
    let status = obj.status.context("status")?;
    let artifact = status.artifact.context("artifact")?;
    ensure!(
        artifact.digest == layer_digest,
        "copy stores the layer unchanged: {} != {layer_digest}",
        artifact.digest
    );
    ensure!(sha256_digest(&download(&artifact.url).await?) == layer_digest);
    ensure!(
        serde_json::to_value(&status.observed_layer_selector)? == selector,
        "{:?}",
        status.observed_layer_selector
    );
    // Unchanged: the default excludes (*.png) apply only when re-archiving.
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(files_under(unpacked.path()) == ["deploy/app.yaml", "logo.png"]);

    let dir = env
        .controller
        .storage_root()
        .join(format!("ocirepository/{}/bundle", env.ns()));
    ensure!(
        dir.join(artifact.path.rsplit('/').next().context("file")?)
            .is_file()
    );
    env.api::<OCIRepository>()
        .delete("bundle", &DeleteParams::default())
        .await?;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let gone = env
            .api::<OCIRepository>()
            .get_opt("bundle")
            .await?
            .is_none();
        if gone && !dir.exists() {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "artifacts not removed (object gone: {gone}, {} exists)\n{}",
            dir.display(),
            env.controller.log_tail(40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn extract_applies_ignore_rules() -> Result<()> {
    let (env, registry) = start("oci-ignore", false).await?;
    let repo = format!("{}/site", env.ns());
    let digest = registry.push_flux_artifact(
        &repo,
        "v1",
        [
            ("deploy/app.yaml", APP_YAML),
            ("deploy/secret.enc.yaml", "sops: {}\n"),
            ("docs/README.md", "docs\n"),
        ],
    )?;
    env.create::<OCIRepository>(oci_repository(
        "site",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}, "ignore": "docs/\n*.enc.yaml\n"}),
    ))
    .await?;
    let obj = env
        .ready_at::<OCIRepository>("site", &format!("v1@{digest}"))
        .await?;
    let status = obj.status.context("status")?;
    ensure!(status.observed_ignore.as_deref() == Some("docs/\n*.enc.yaml\n"));
    let artifact = status.artifact.context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    ensure!(
        files_under(unpacked.path()) == ["deploy/app.yaml"],
        "{:?}",
        files_under(unpacked.path())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn suspended_objects_are_left_alone_until_resumed() -> Result<()> {
    let (env, registry) = start("oci-suspend", false).await?;
    let repo = format!("{}/paused", env.ns());
    let digest = registry.push_flux_artifact(&repo, "v1", [("app.yaml", APP_YAML)])?;
    env.create::<OCIRepository>(oci_repository(
        "paused",
        json!({"url": registry.oci_url(&repo), "interval": "1h", "insecure": true,
               "ref": {"tag": "v1"}, "suspend": true}),
    ))
    .await?;
    // As in Flux, the finalizer goes on first; a suspended object gets nothing else.
    let obj = env
        .wait_for::<OCIRepository, _>("paused", WAIT, |repo| {
            repo.metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == "finalizers.fluxcd.io"))
                .then(|| repo.clone())
        })
        .await?;
    // (The CRD defaults an empty status to observedGeneration -1.)
    let status = obj.status.unwrap_or_default();
    ensure!(
        status.conditions.is_none() && status.artifact.is_none(),
        "{status:?}"
    );

    env.api::<OCIRepository>()
        .patch(
            "paused",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    env.ready_at::<OCIRepository>("paused", &format!("v1@{digest}"))
        .await?;
    Ok(())
}
