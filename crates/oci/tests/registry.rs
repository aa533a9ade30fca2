//! The registry client against a real registry (Debian's docker-registry from
//! the e2e harness), open and behind htpasswd basic auth.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use e2e::registry::{FLUX_CONTENT, Registry, sha256_digest};
use oci::{Credentials, Error, Options, Repository, Selector};

fn insecure() -> Options {
    Options {
        insecure: true,
        timeout: Duration::from_secs(30),
        ..Options::default()
    }
}

async fn start(auth: bool) -> Result<Registry> {
    tokio::task::spawn_blocking(move || Registry::start(auth)).await?
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_every_page_resolves_and_pulls_verified_blobs() -> Result<()> {
    let registry = start(false).await?;
    let mut digests = std::collections::BTreeMap::new();
    for tag in ["0.9.0", "1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest"] {
        let digest =
            registry.push_flux_artifact("team/app", tag, [("tag.txt", format!("{tag}\n"))])?;
        digests.insert(tag, digest);
    }
    let repository = Repository::new(
        &registry.oci_url("team/app"),
        &Credentials::Anonymous,
        &insecure(),
    )?;

    // Pages of two: the listing must follow the registry's `last` marker.
    let tags = repository.list_tags_paged(2).await?;
    ensure!(
        tags == ["0.9.0", "1.0.0", "1.1.0", "1.2.0-rc.1", "2.0.0", "latest"],
        "{tags:?}"
    );
    ensure!(repository.list_tags().await? == tags);

    let semver = repository
        .resolve(&Selector::Semver {
            range: "^1.0".into(),
            filter: None,
        })
        .await?;
    ensure!(semver.tag.as_deref() == Some("1.1.0"), "{semver:?}");
    ensure!(semver.digest == digests["1.1.0"]);
    ensure!(semver.revision() == format!("1.1.0@{}", digests["1.1.0"]));
    let filtered = repository
        .resolve(&Selector::Semver {
            range: "*".into(),
            filter: Some("^0\\.".into()),
        })
        .await?;
    ensure!(filtered.tag.as_deref() == Some("0.9.0"));
    let pinned = repository
        .resolve(&Selector::Digest(digests["2.0.0"].clone()))
        .await?;
    ensure!(pinned.tag.is_none() && pinned.revision() == digests["2.0.0"]);

    let missing = repository.resolve(&Selector::Tag("nope".into())).await;
    ensure!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
    let absent_digest = format!("sha256:{}", "0".repeat(64));
    let missing = repository.resolve(&Selector::Digest(absent_digest)).await;
    ensure!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );

    let manifest = repository.pull_manifest(&digests["1.0.0"]).await?;
    ensure!(manifest.digest == digests["1.0.0"]);
    ensure!(manifest.annotations.get(oci::ANNOTATION_REVISION) == Some(&"1.0.0".to_string()));
    let layer = manifest
        .layer(Some(FLUX_CONTENT))
        .context("the Flux content layer")?
        .clone();
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("layer.tar.gz");
    let pulled = repository.pull_blob_to(&layer, &file, 1 << 20).await?;
    let bytes = std::fs::read(&file)?;
    ensure!(pulled.digest == layer.digest && sha256_digest(&bytes) == layer.digest);
    ensure!(pulled.size == bytes.len() as u64);

    let capped = repository.pull_blob_to(&layer, &file, 10).await;
    ensure!(
        matches!(capped, Err(Error::SizeLimit { limit: 10, .. })),
        "{capped:?}"
    );
    // A descriptor lying about its size is caught while streaming.
    let mut understated = layer.clone();
    understated.size = 5;
    let capped = repository.pull_blob_to(&understated, &file, 10).await;
    ensure!(matches!(capped, Err(Error::SizeLimit { .. })), "{capped:?}");
    let overlong = repository.pull_blob_to(&understated, &file, 1 << 20).await;
    ensure!(
        matches!(&overlong, Err(Error::Registry { message, .. }) if message.contains("declares")),
        "{overlong:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_from_docker_config() -> Result<()> {
    let registry = start(true).await?;
    let digest = registry.push_flux_artifact("private/app", "v1", [("a.yaml", "a: 1\n")])?;
    let url = registry.oci_url("private/app");

    let anonymous = Repository::new(&url, &Credentials::Anonymous, &insecure())?;
    let refused = anonymous.resolve(&Selector::Tag("v1".into())).await;
    ensure!(
        matches!(refused, Err(Error::Authentication { .. })),
        "{refused:?}"
    );
    let wrong = Repository::new(&url, &Credentials::basic("flux", "wrong"), &insecure())?;
    let refused = wrong.list_tags().await;
    ensure!(
        matches!(refused, Err(Error::Authentication { .. })),
        "{refused:?}"
    );

    let credentials = Credentials::from_docker_config_json(
        registry.docker_config_json().as_bytes(),
        &registry.host(),
    )?;
    ensure!(matches!(credentials, Credentials::Basic { .. }));
    let repository = Repository::new(&url, &credentials, &insecure())?;
    ensure!(repository.list_tags().await? == ["v1"]);
    let resolved = repository.resolve(&Selector::Tag("v1".into())).await?;
    ensure!(resolved.digest == digest);
    let manifest = repository.pull_manifest(&resolved.digest).await?;
    ensure!(manifest.layers.len() == 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_registries_fail_within_the_timeout() -> Result<()> {
    let port = e2e::paths::free_port()?;
    let repository = Repository::new(
        &format!("oci://127.0.0.1:{port}/app"),
        &Credentials::Anonymous,
        &insecure(),
    )?;
    let started = std::time::Instant::now();
    let failed = repository.resolve(&Selector::Tag("latest".into())).await;
    ensure!(matches!(failed, Err(Error::Registry { .. })), "{failed:?}");
    ensure!(started.elapsed() < Duration::from_secs(30));
    Ok(())
}
