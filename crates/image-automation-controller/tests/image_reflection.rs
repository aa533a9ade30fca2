//! ImageRepository and ImagePolicy end to end: the real controller binary
//! against the real control plane and a real registry (Debian's
//! docker-registry, with and without basic auth), images pushed over the
//! registry's /v2 API.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use anyhow::{Result, ensure};
use api::image::{ImagePolicy, ImageRepository};
use fixture::{Env, NamespacedObject, condition, registry};
use serde_json::json;

fn image_repository(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
           "metadata": {"name": name}, "spec": spec})
}

fn image_policy(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
           "metadata": {"name": name}, "spec": spec})
}

/// Waits for Ready=`status` with `reason` (and a message containing `message`).
async fn ready_is<K>(env: &Env, name: &str, status: &str, reason: &str, message: &str) -> Result<K>
where
    K: NamespacedObject + runtime::status::StatusObject,
{
    let (status, reason, message) = (status.to_string(), reason.to_string(), message.to_string());
    env.wait_for::<K, _>(name, move |obj| {
        let mut current = obj.status()?.clone();
        let conditions = K::conditions(&mut current).clone();
        let ready = condition(conditions.as_ref(), "Ready")?;
        (ready.status == status && ready.reason == reason && ready.message.contains(&message))
            .then(|| obj.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn scans_with_credentials_and_policies_pick_the_latest_tag() -> Result<()> {
    let env = Env::start("img-scan", &[]).await?;
    let registry = registry(true).await?;
    let repo = format!("{}/app", env.ns());
    let mut digests = std::collections::BTreeMap::new();
    for tag in [
        "1.0.0",
        "1.1.0",
        "2.0.0-rc.1",
        "sha256-abc.sig",
        "latest",
        "main-aaa-100",
        "main-bbb-200",
    ] {
        digests.insert(tag, registry.push_image(&repo, tag)?);
    }
    env.docker_secret("registry", registry).await?;
    let image = format!("{}/{repo}", registry.host());
    env.apply::<ImageRepository>(image_repository(
        "app",
        json!({"image": image, "interval": "1h", "insecure": true, "secretRef": {"name": "registry"}}),
    ))
    .await?;

    // The scan: the signature tag excluded by default; the newest tags are
    // the highest versions first, then the rest in string order.
    let scanned: ImageRepository = ready_is(
        &env,
        "app",
        "True",
        "Succeeded",
        "successful scan: found 6 tags",
    )
    .await?;
    let status = scanned.status.clone().unwrap();
    let result = status.last_scan_result.clone().unwrap();
    ensure!(result.tag_count == 6, "{result:?}");
    ensure!(
        result
            .revision
            .as_deref()
            .is_some_and(|r| r.starts_with("sha256:")),
        "{result:?}"
    );
    ensure!(
        result.latest_tags.as_deref()
            == Some(
                &[
                    "2.0.0-rc.1",
                    "1.1.0",
                    "1.0.0",
                    "main-bbb-200",
                    "main-aaa-100",
                    "latest"
                ]
                .map(String::from)[..]
            ),
        "{result:?}"
    );
    ensure!(
        status.canonical_image_name.as_deref() == Some(image.as_str()),
        "{status:?}"
    );
    ensure!(
        status.observed_exclusion_list == Some(vec![r"^.*\.sig$".to_string()]),
        "{status:?}"
    );
    ensure!(status.observed_generation == scanned.metadata.generation);
    // Kept where Flux's filesystem storage keeps them.
    let stored = std::fs::read_to_string(
        env.storage_root()
            .join(format!("imagerepository/{}/app/tags.txt", env.ns())),
    )?;
    ensure!(stored.lines().count() == 6, "{stored}");

    // Each kind of policy.
    env.apply::<ImagePolicy>(image_policy(
        "semver",
        json!({
        "imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}},
        "digestReflectionPolicy": "IfNotPresent"}),
    ))
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "numerical",
        json!({
        "imageRepositoryRef": {"name": "app"}, "policy": {"numerical": {"order": "asc"}},
        "filterTags": {"pattern": "^main-[a-z]+-(?P<ts>[0-9]+)$", "extract": "$ts"}}),
    ))
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "alphabetical",
        json!({
        "imageRepositoryRef": {"name": "app"}, "policy": {"alphabetical": {"order": "desc"}},
        "filterTags": {"pattern": "^main-"}}),
    ))
    .await?;
    let semver: ImagePolicy = ready_is(
        &env,
        "semver",
        "True",
        "Succeeded",
        &format!(
            "Latest image tag for {image} resolved to 1.1.0 with digest {}",
            digests["1.1.0"]
        ),
    )
    .await?;
    let latest = semver.status.clone().unwrap().latest_ref.unwrap();
    ensure!(
        latest.name == image
            && latest.tag == "1.1.0"
            && latest.digest.as_deref() == Some(digests["1.1.0"].as_str()),
        "{latest:?}"
    );
    let numerical: ImagePolicy = ready_is(
        &env,
        "numerical",
        "True",
        "Succeeded",
        "resolved to main-bbb-200",
    )
    .await?;
    ensure!(
        numerical
            .status
            .unwrap()
            .latest_ref
            .unwrap()
            .digest
            .is_none()
    );
    ready_is::<ImagePolicy>(
        &env,
        "alphabetical",
        "True",
        "Succeeded",
        "resolved to main-aaa-100",
    )
    .await?;

    // A new tag: a new scan on request, and the policy follows with the one before.
    let newer = registry.push_image(&repo, "1.2.0")?;
    env.request_reconcile::<ImageRepository>("app").await?;
    ready_is::<ImagePolicy>(
        &env,
        "semver",
        "True",
        "Succeeded",
        &format!(
            "resolved to 1.2.0 with digest {} (previously {image}:1.1.0@{})",
            newer, digests["1.1.0"]
        ),
    )
    .await?;
    let semver: ImagePolicy = env.api().get("semver").await?;
    let previous = semver.status.unwrap().observed_previous_ref.unwrap();
    ensure!(previous.tag == "1.1.0", "{previous:?}");

    // The tags survive a restart: no rescan is needed for the policies.
    let mut env = env;
    env.restart()?;
    env.apply::<ImagePolicy>(image_policy(
        "after-restart",
        json!({
        "imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=1.0.0"}}}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "after-restart",
        "True",
        "Succeeded",
        "resolved to 1.2.0",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_flux_reasons_and_actionable_messages() -> Result<()> {
    let env = Env::start("img-faults", &[]).await?;
    let registry = registry(true).await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    let image = format!("{}/{repo}", registry.host());

    // No credentials for a registry that wants them.
    env.apply::<ImageRepository>(image_repository(
        "anonymous",
        json!({"image": image, "interval": "1h", "insecure": true}),
    ))
    .await?;
    ready_is::<ImageRepository>(
        &env,
        "anonymous",
        "False",
        "AuthenticationFailed",
        "scan failed",
    )
    .await?;
    // Wrong credentials.
    env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wrong"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": json!({"auths": {registry.host(): {"username": "nobody", "password": "nothing"}}}).to_string()}}))
        .await?;
    env.apply::<ImageRepository>(image_repository(
        "wrong",
        json!({"image": image, "interval": "1h", "insecure": true, "secretRef": {"name": "wrong"}}),
    ))
    .await?;
    ready_is::<ImageRepository>(&env, "wrong", "False", "AuthenticationFailed", "").await?;
    // A Secret that does not exist.
    env.apply::<ImageRepository>(image_repository(
        "missing",
        json!({"image": image, "interval": "1h", "insecure": true, "secretRef": {"name": "nope"}}),
    ))
    .await?;
    ready_is::<ImageRepository>(
        &env,
        "missing",
        "False",
        "AuthenticationFailed",
        "secrets \"nope\" not found",
    )
    .await?;
    // An image with a tag: stalled, nothing to retry.
    env.apply::<ImageRepository>(image_repository(
        "tagged",
        json!({"image": format!("{image}:1.0.0"), "interval": "1h"}),
    ))
    .await?;
    let tagged: ImageRepository = ready_is(
        &env,
        "tagged",
        "False",
        "ImageURLInvalid",
        "should not include a tag; remove ':1.0.0'",
    )
    .await?;
    ensure!(
        condition(tagged.status.unwrap().conditions.as_ref(), "Stalled")
            .is_some_and(|c| c.status == "True")
    );
    // A cloud provider: refused loudly.
    env.apply::<ImageRepository>(image_repository(
        "aws",
        json!({"image": image, "interval": "1h", "provider": "aws"}),
    ))
    .await?;
    ready_is::<ImageRepository>(
        &env,
        "aws",
        "False",
        "InvalidProviderConfiguration",
        "provider 'aws' is not supported",
    )
    .await?;

    // Policies: a repository that does not exist, an invalid range, nothing matching.
    env.apply::<ImagePolicy>(image_policy(
        "no-repo",
        json!({"imageRepositoryRef": {"name": "ghost"}, "policy": {"semver": {"range": "1.x"}}}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "no-repo",
        "False",
        "DependencyNotReady",
        "referenced ImageRepository does not exist",
    )
    .await?;
    env.docker_secret("registry", registry).await?;
    env.apply::<ImageRepository>(image_repository("app", json!({"image": image, "interval": "1h", "insecure": true, "secretRef": {"name": "registry"}})))
        .await?;
    ready_is::<ImageRepository>(&env, "app", "True", "Succeeded", "found 1 tags").await?;
    env.apply::<ImagePolicy>(image_policy("bad-range", json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "not-a-range!"}}})))
        .await?;
    ready_is::<ImagePolicy>(
        &env,
        "bad-range",
        "False",
        "InvalidPolicy",
        "invalid policy",
    )
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "none",
        json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": ">=5.0.0"}}}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "none",
        "False",
        "Failure",
        "unable to determine latest version from provided list",
    )
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "bad-extract",
        json!({"imageRepositoryRef": {"name": "app"}, "policy": {"numerical": {}},
        "filterTags": {"pattern": "^(?P<n>[0-9]+)", "extract": "$ts"}}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "bad-extract",
        "False",
        "InvalidPolicy",
        "refers to the group 'ts'",
    )
    .await?;
    // Another namespace's repository without accessFrom.
    env.apply::<ImagePolicy>(image_policy("cross", json!({"imageRepositoryRef": {"name": "app", "namespace": "default"}, "policy": {"semver": {"range": "1.x"}}})))
        .await?;
    ready_is::<ImagePolicy>(&env, "cross", "False", "DependencyNotReady", "").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn large_tag_lists_are_read_page_by_page() -> Result<()> {
    let env = Env::start("img-pages", &[]).await?;
    let registry = registry(false).await?;
    let repo = format!("{}/many", env.ns());
    let digest = registry.push_image(&repo, "0.0.0")?;
    // More than one page of the controller's 1,000-tag pages.
    for i in 1..=1_200 {
        registry.tag(&repo, &digest, &format!("1.0.{i}"))?;
    }
    env.apply::<ImageRepository>(image_repository(
        "many",
        json!({"image": format!("{}/{repo}", registry.host()), "interval": "1h", "insecure": true,
               "latestTagsCount": 3}),
    ))
    .await?;
    let many: ImageRepository =
        ready_is(&env, "many", "True", "Succeeded", "found 1201 tags").await?;
    let latest = many.status.unwrap().last_scan_result.unwrap().latest_tags;
    ensure!(
        latest
            == Some(vec![
                "1.0.1200".into(),
                "1.0.1199".into(),
                "1.0.1198".into()
            ]),
        "{latest:?}"
    );
    env.apply::<ImagePolicy>(image_policy(
        "latest",
        json!({"imageRepositoryRef": {"name": "many"}, "policy": {"semver": {"range": "1.x"}}}),
    ))
    .await?;
    ready_is::<ImagePolicy>(&env, "latest", "True", "Succeeded", "resolved to 1.0.1200").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_labelled_secret_brings_its_repositories_back_at_once() -> Result<()> {
    // Retries so slow that only the Secret's watch can explain a recovery.
    let env = Env::start(
        "img-secret-watch",
        &["--min-retry-delay=10m", "--max-retry-delay=10m"],
    )
    .await?;
    let registry = registry(true).await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    let image = format!("{}/{repo}", registry.host());
    env.apply::<ImageRepository>(image_repository(
        "app",
        json!({"image": image, "interval": "1h", "insecure": true, "secretRef": {"name": "registry"}}),
    ))
    .await?;
    ready_is::<ImageRepository>(
        &env,
        "app",
        "False",
        "AuthenticationFailed",
        "secrets \"registry\" not found",
    )
    .await?;
    env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "registry", "labels": {"reconcile.fluxcd.io/watch": "Enabled"}},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": registry.docker_config_json()}}))
        .await?;
    ready_is::<ImageRepository>(&env, "app", "True", "Succeeded", "found 1 tags").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_in_other_namespaces_need_the_repositorys_access_from() -> Result<()> {
    // One controller for two namespaces, limited to this test's objects by label.
    let env = Env::start(
        "img-acl",
        &[
            "--watch-all-namespaces=true",
            "--watch-label-selector=ferroflux-e2e=img-acl",
        ],
    )
    .await?;
    let registry = registry(false).await?;
    let repo = format!("{}/app", env.ns());
    registry.push_image(&repo, "1.0.0")?;
    let image = format!("{}/{repo}", registry.host());
    let cluster = e2e::cluster::shared().await?;
    let other = cluster.test_namespace("img-acl-owner").await?;
    let labels = json!({"ferroflux-e2e": "img-acl"});
    let repositories: kube::Api<ImageRepository> =
        kube::Api::namespaced(env.client.clone(), other.name());
    let mut shared = image_repository(
        "shared",
        json!({"image": image, "interval": "1h", "insecure": true,
        "accessFrom": {"namespaceSelectors": [{"matchLabels": {"images": "allowed"}}]}}),
    );
    shared["metadata"]["labels"] = labels.clone();
    repositories
        .patch(
            "shared",
            &kube::api::PatchParams::apply("e2e").force(),
            &kube::api::Patch::Apply(shared),
        )
        .await?;
    e2e::wait::for_object(
        &repositories,
        "shared",
        fixture::WAIT,
        std::time::Duration::from_millis(200),
        |r: &ImageRepository| {
            let ready = condition(r.status.as_ref()?.conditions.as_ref(), "Ready")?;
            (ready.status == "True").then_some(())
        },
        || env.log_tail(40),
    )
    .await?;
    let mut user = image_policy(
        "user",
        json!({
        "imageRepositoryRef": {"name": "shared", "namespace": other.name()}, "policy": {"semver": {"range": "1.x"}}}),
    );
    user["metadata"]["labels"] = labels;
    env.apply::<ImagePolicy>(user).await?;
    ready_is::<ImagePolicy>(
        &env,
        "user",
        "False",
        "AccessDenied",
        "can't be accessed due to missing ACL labels",
    )
    .await?;
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
        kube::Api::all(env.client.clone());
    namespaces
        .patch(
            env.ns(),
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"images": "allowed"}}})),
        )
        .await?;
    ready_is::<ImagePolicy>(&env, "user", "True", "Succeeded", "resolved to 1.0.0").await?;
    other.delete().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn build_time_policies_pick_the_image_built_last() -> Result<()> {
    let env = Env::start("img-built", &[]).await?;
    let registry = registry(false).await?;
    let repo = format!("{}/app", env.ns());
    // Tag names say nothing about age: only the images' configs do.
    registry.push_image_built(&repo, "main-zzz", Some("2024-01-01T00:00:00Z"))?;
    let newest = registry.push_image_built(&repo, "main-aaa", Some("2025-03-01T12:00:00Z"))?;
    registry.push_image_built(&repo, "main-mmm", Some("2024-06-01T00:00:00Z"))?;
    registry.push_image_built(&repo, "release-1", Some("2026-01-01T00:00:00Z"))?;
    registry.push_image(&repo, "main-undated")?;
    let image = format!("{}/{repo}", registry.host());
    env.apply::<ImageRepository>(image_repository(
        "app",
        json!({"image": image, "interval": "1h", "insecure": true}),
    ))
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "newest",
        json!({"imageRepositoryRef": {"name": "app"}, "policy": {"buildTime": {}},
               "filterTags": {"pattern": "^main-"}, "digestReflectionPolicy": "IfNotPresent"}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "newest",
        "True",
        "Succeeded",
        &format!("resolved to main-aaa with digest {newest}"),
    )
    .await?;
    // A newer build under an old-looking name takes over after the next scan.
    registry.push_image_built(&repo, "main-0", Some("2025-09-09T09:09:09Z"))?;
    env.request_reconcile::<ImageRepository>("app").await?;
    ready_is::<ImagePolicy>(&env, "newest", "True", "Succeeded", "resolved to main-0").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn service_account_pull_secrets_exclusions_and_suspend() -> Result<()> {
    let env = Env::start("img-sa", &[]).await?;
    let registry = registry(true).await?;
    let repo = format!("{}/app", env.ns());
    for tag in ["1.0.0", "1.1.0", "1.1.0-debug", "nightly"] {
        registry.push_image(&repo, tag)?;
    }
    env.docker_secret("pull", registry).await?;
    env.apply::<k8s_openapi::api::core::v1::ServiceAccount>(json!({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "puller"},
        "imagePullSecrets": [{"name": "pull"}]}))
        .await?;
    let image = format!("{}/{repo}", registry.host());
    // Credentials from the ServiceAccount; its own exclusions replace the default.
    env.apply::<ImageRepository>(image_repository(
        "app",
        json!({"image": image, "interval": "1h", "insecure": true, "serviceAccountName": "puller",
               "exclusionList": ["-debug$", "^nightly$"]}),
    ))
    .await?;
    let scanned: ImageRepository =
        ready_is(&env, "app", "True", "Succeeded", "found 2 tags").await?;
    ensure!(
        scanned.status.unwrap().observed_exclusion_list
            == Some(vec!["-debug$".to_string(), "^nightly$".to_string()])
    );
    // Suspended: a requested scan does not happen.
    let repositories = env.api::<ImageRepository>();
    repositories
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    registry.push_image(&repo, "1.2.0")?;
    env.request_reconcile::<ImageRepository>("app").await?;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let repository = repositories.get("app").await?;
    let result = repository.status.unwrap().last_scan_result.unwrap();
    ensure!(result.tag_count == 2, "scanned while suspended: {result:?}");
    // Resumed: the next scan finds the new tag.
    repositories
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"suspend": false}})),
        )
        .await?;
    ready_is::<ImageRepository>(&env, "app", "True", "Succeeded", "found 3 tags").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn digests_follow_a_moved_tag_and_a_new_latest_image_is_announced() -> Result<()> {
    let env = Env::start("img-always", &[]).await?;
    let registry = registry(false).await?;
    let repo = format!("{}/app", env.ns());
    let first = registry.push_image_built(&repo, "1.0.0", Some("2024-01-01T00:00:00Z"))?;
    let image = format!("{}/{repo}", registry.host());
    env.apply::<ImageRepository>(image_repository(
        "app",
        json!({"image": image, "interval": "1h", "insecure": true}),
    ))
    .await?;
    env.apply::<ImagePolicy>(image_policy(
        "always",
        json!({"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}},
               "digestReflectionPolicy": "Always", "interval": "1s"}),
    ))
    .await?;
    ready_is::<ImagePolicy>(
        &env,
        "always",
        "True",
        "Succeeded",
        &format!("with digest {first}"),
    )
    .await?;
    // The tag is pushed again with another image: no new tag, a new digest.
    let moved = registry.push_image_built(&repo, "1.0.0", Some("2025-01-01T00:00:00Z"))?;
    ensure!(moved != first);
    ready_is::<ImagePolicy>(
        &env,
        "always",
        "True",
        "Succeeded",
        &format!("resolved to 1.0.0 with digest {moved} (previously {image}:1.0.0@{first})"),
    )
    .await?;
    // Each new latest image is an event on the policy.
    let events: kube::Api<k8s_openapi::api::events::v1::Event> = env.api();
    let deadline = std::time::Instant::now() + fixture::WAIT;
    loop {
        let notes: Vec<String> = events
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("always"))
            .filter_map(|e| e.note)
            .collect();
        if notes.iter().any(|n| n.contains(&moved)) {
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no event for the new digest: {notes:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_never_answers_times_out() -> Result<()> {
    let env = Env::start("img-timeout", &[]).await?;
    // Accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = silent.local_addr()?.port();
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for stream in silent.incoming().flatten() {
            open.push(stream);
        }
    });
    env.apply::<ImageRepository>(image_repository(
        "silent",
        json!({"image": format!("127.0.0.1:{port}/app"), "interval": "1h", "timeout": "2s", "insecure": true}),
    ))
    .await?;
    ready_is::<ImageRepository>(
        &env,
        "silent",
        "False",
        "ReadOperationFailed",
        "timed out after 2s",
    )
    .await?;
    Ok(())
}
