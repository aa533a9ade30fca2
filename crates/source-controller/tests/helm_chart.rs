//! HelmChart end to end: charts built from a path in a GitRepository (with a
//! local, an HTTP-repository and an OCI dependency, values files merged,
//! reconcileStrategy Revision), values files on charts from an HTTP HelmRepository, charts from
//! an OCI HelmRepository, and the failures Flux reports with its reasons. The
//! served archives are checked by digest and rendered with the real helm.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use api::source::{GitRepository, HelmChart, HelmChartStatus, HelmRepository};
use e2e::chart_repo::{ChartRepo, ChartSpec};
use e2e::registry::Registry;
use fixture::{Env, condition, download, fetch_artifact, git_source, object};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

/// Waits until the chart is Ready at its generation with artifact `revision`.
async fn ready_at(env: &Env, name: &str, revision: &str) -> Result<HelmChartStatus> {
    env.wait_for::<HelmChart, _>(name, WAIT, |chart| {
        let status = chart.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "True"
            && status.observed_generation == chart.metadata.generation
            && status.artifact.as_ref()?.revision == revision)
            .then(|| status.clone())
    })
    .await
}

/// Waits until Ready=False with `reason` and exactly `message`.
async fn failing(env: &Env, name: &str, reason: &str, message: &str) -> Result<HelmChartStatus> {
    env.wait_for::<HelmChart, _>(name, WAIT, |chart| {
        let status = chart.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (ready.status == "False" && ready.reason == reason && ready.message == message)
            .then(|| status.clone())
    })
    .await
}

/// The `Ready` message, checked to be repeated on `ArtifactInStorage` with
/// the same reason (`ChartPullSucceeded` or `ChartPackageSucceeded`).
fn ready_message(status: &HelmChartStatus) -> Option<&str> {
    let ready = condition(status.conditions.as_ref(), "Ready")?;
    let stored = condition(status.conditions.as_ref(), "ArtifactInStorage")?;
    let reason = if ready.message.starts_with("packaged") {
        "ChartPackageSucceeded"
    } else {
        "ChartPullSucceeded"
    };
    (ready.reason == reason && stored.reason == reason && stored.message == ready.message)
        .then_some(ready.message.as_str())
}

/// The served archive: its sha256 is the artifact digest; returns its bytes.
async fn served_archive(status: &HelmChartStatus) -> Result<Vec<u8>> {
    let artifact = status.artifact.as_ref().context("artifact")?;
    let bytes = download(&artifact.url).await?;
    ensure!(
        runtime::artifact::sha256_digest(&bytes) == artifact.digest,
        "served bytes do not match {}",
        artifact.digest
    );
    Ok(bytes)
}

/// `helm template` of a packaged chart, with the real helm.
fn helm_template(archive: &[u8]) -> Result<String> {
    let helm = e2e::packages::Helm::new()?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("chart.tgz");
    std::fs::write(&path, archive)?;
    helm.run(["template".as_ref(), "release".as_ref(), path.as_os_str()])
}

fn parse_yaml(bytes: &[u8]) -> Result<serde_json::Value> {
    Ok(serde_saphyr::from_str(&String::from_utf8_lossy(bytes))?)
}

const APP_CHART: &str = "apiVersion: v2\nname: app\nversion: 1.0.0\n";
const APP_TEMPLATE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-app\ndata:\n  greeting: {{ .Values.greeting | quote }}\n  size: {{ .Values.nested.size | quote }}\n  colour: {{ .Values.nested.colour | quote }}\n  label: {{ include \"lib.label\" . | quote }}\n";
const LIB_CHART: &str = "apiVersion: v2\nname: lib\nversion: 0.1.2\ntype: library\n";
const LIB_HELPER: &str = "{{- define \"lib.label\" -}}from-lib{{- end -}}\n";

/// A registry with auth and the `type: oci` HelmRepository "oci-charts" for
/// its `charts` repository (dockerconfigjson Secret, plain HTTP).
async fn oci_charts(env: &Env) -> Result<Registry> {
    let registry = tokio::task::spawn_blocking(|| Registry::start(true)).await??;
    env.secret(
        "registry-auth",
        &[(".dockerconfigjson", registry.docker_config_json().as_str())],
    )
    .await?;
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "oci-charts",
        json!({"url": registry.oci_url("charts"), "type": "oci", "insecure": true,
               "interval": "1h", "secretRef": {"name": "registry-auth"}}),
    ))
    .await?;
    Ok(registry)
}

/// Packages `chart` with helm and pushes it with `helm push`.
fn push_chart(registry: &Registry, chart: &ChartSpec) -> Result<()> {
    let work = tempfile::tempdir()?;
    let tgz = e2e::chart_repo::package_chart(chart, work.path())?;
    registry.push_chart(&tgz)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_from_git_with_dependencies_and_values_follows_revisions() -> Result<()> {
    let env = Env::start("hc-git", &[]).await?;
    // The remote dependency lives in an HTTP repository behind basic auth; the
    // HelmRepository with that URL lends its credentials.
    let charts = tokio::task::spawn_blocking(|| ChartRepo::start(true)).await??;
    for version in ["1.0.0", "1.2.0", "2.0.0"] {
        charts.add_chart(&ChartSpec::config_maps("remote", version))?;
    }
    env.secret(
        "repo-auth",
        &[
            ("username", charts.username().context("username")?),
            ("password", charts.password().context("password")?),
        ],
    )
    .await?;
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "remote-charts",
        json!({"url": charts.url(), "interval": "1h", "secretRef": {"name": "repo-auth"}}),
    ))
    .await?;
    // And one from an OCI registry, through a `type: oci` HelmRepository.
    let registry = oci_charts(&env).await?;
    for version in ["0.2.0", "0.3.0"] {
        push_chart(&registry, &ChartSpec::config_maps("ocidep", version))?;
    }

    let chart_yaml = format!(
        "{APP_CHART}dependencies:\n- name: lib\n  version: \"~0.1.0\"\n  repository: file://../lib\n- name: remote\n  version: \"1.x\"\n  repository: {}/\n- name: ocidep\n  version: \"0.x\"\n  repository: {}\n",
        charts.url(),
        registry.oci_url("charts")
    );
    let repo = git_source(
        &env,
        "source",
        &[
            ("charts/app/Chart.yaml", chart_yaml.into()),
            (
                "charts/app/values.yaml",
                "greeting: hello\nnested:\n  size: small\n  colour: red\n".into(),
            ),
            ("charts/app/templates/cm.yaml", APP_TEMPLATE.into()),
            ("charts/lib/Chart.yaml", LIB_CHART.into()),
            ("charts/lib/templates/_helpers.tpl", LIB_HELPER.into()),
            ("env/prod.yaml", "nested:\n  size: large\n".into()),
        ],
    )
    .await?;
    let first = repo.head("main")?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "app",
        json!({"chart": "./charts/app", "interval": "1h", "reconcileStrategy": "Revision",
               "sourceRef": {"kind": "GitRepository", "name": "source"},
               "valuesFiles": ["charts/app/values.yaml", "env/prod.yaml"]}),
    ))
    .await?;

    // Version: chart version + first 12 of the commit + the generation (values files).
    let revision = format!("1.0.0+{}.1", &first[..12]);
    let status = ready_at(&env, "app", &revision).await?;
    let artifact = status.artifact.clone().context("artifact")?;
    ensure!(
        artifact.path == format!("helmchart/{}/app/app-{revision}.tgz", env.ns()),
        "{artifact:?}"
    );
    ensure!(
        ready_message(&status)
            == Some(
                format!("packaged 'app' chart with version '{revision}' and merged values files [charts/app/values.yaml env/prod.yaml]")
                    .as_str()
            ),
        "{status:?}"
    );
    ensure!(status.observed_chart_name.as_deref() == Some("app"));
    ensure!(
        status.observed_source_artifact_revision.as_deref()
            == Some(format!("main@sha1:{first}").as_str())
    );
    let archive = served_archive(&status).await?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    let root = unpacked.path().join("app");
    let values = parse_yaml(&std::fs::read(root.join("values.yaml"))?)?;
    ensure!(
        values == json!({"greeting": "hello", "nested": {"size": "large", "colour": "red"}}),
        "{values}"
    );
    let chart_meta = parse_yaml(&std::fs::read(root.join("Chart.yaml"))?)?;
    ensure!(chart_meta["version"] == revision.as_str(), "{chart_meta}");
    ensure!(root.join("charts/lib-0.1.2.tgz").is_file());
    ensure!(root.join("charts/remote-1.2.0.tgz").is_file());
    ensure!(root.join("charts/ocidep-0.3.0.tgz").is_file());
    // The real helm loads it: the local library and the remote chart render.
    let rendered = tokio::task::spawn_blocking(move || helm_template(&archive)).await??;
    ensure!(rendered.contains("size: \"large\""), "{rendered}");
    ensure!(rendered.contains("label: \"from-lib\""), "{rendered}");
    ensure!(rendered.contains("name: release-remote"), "{rendered}");
    ensure!(rendered.contains("name: release-ocidep"), "{rendered}");

    // A new commit is a new artifact with reconcileStrategy Revision, picked
    // up through the GitRepository alone.
    let second = repo.commit(
        [("charts/app/templates/extra.yaml", "# nothing rendered\n")],
        &[],
        "add a file",
    )?;
    env.request_reconcile::<GitRepository>("source").await?;
    let revision = format!("1.0.0+{}.1", &second[..12]);
    let status = ready_at(&env, "app", &revision).await?;
    served_archive(&status).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_failures_carry_flux_reasons() -> Result<()> {
    let env = Env::start("hc-faults", &[]).await?;
    git_source(
        &env,
        "source",
        &[
            (
                "charts/app/Chart.yaml",
                format!("{APP_CHART}dependencies:\n- name: lib\n  version: \"~0.1.0\"\n  repository: file://../lib\n").into(),
            ),
            (
                "charts/app/values.yaml",
                "greeting: hello\nnested:\n  size: small\n  colour: red\n".into(),
            ),
            ("charts/app/templates/cm.yaml", APP_TEMPLATE.into()),
            ("charts/app/values-prod.yaml", "greeting: prod\n".into()),
            ("charts/lib/Chart.yaml", LIB_CHART.into()),
            ("charts/lib/templates/_helpers.tpl", LIB_HELPER.into()),
            (
                "charts/bad-dep/Chart.yaml",
                "apiVersion: v2\nname: bad-dep\nversion: 0.1.0\ndependencies:\n- name: lib\n  version: \"2.x\"\n  repository: file://../lib\n".into(),
            ),
        ],
    )
    .await?;
    let git_chart = |chart: &str, extra: serde_json::Value| {
        let mut spec = json!({"chart": chart, "interval": "1h",
                              "sourceRef": {"kind": "GitRepository", "name": "source"}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        spec
    };
    env.create::<HelmChart>(object(
        "HelmChart",
        "missing-values",
        git_chart(
            "charts/app",
            json!({"valuesFiles": ["charts/app/values-prod.yaml", "charts/app/nope.yaml"]}),
        ),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "missing-path",
        git_chart("charts/nope", json!({})),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "ignored-values",
        git_chart(
            "charts/app",
            json!({"valuesFiles": ["charts/app/values.yaml", "charts/app/nope.yaml", "charts/app/values-prod.yaml"],
                   "ignoreMissingValuesFiles": true}),
        ),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "bad-dep",
        git_chart("charts/bad-dep", json!({})),
    ))
    .await?;

    let status = failing(
        &env,
        "missing-values",
        "ValuesFilesError",
        "values files merge error: no values file found at path '/charts/app/nope.yaml' (reference 'charts/app/nope.yaml')",
    )
    .await?;
    let stalled = condition(status.conditions.as_ref(), "Stalled").context("Stalled")?;
    ensure!(stalled.status == "True" && stalled.reason == "ValuesFilesError");
    let build_failed =
        condition(status.conditions.as_ref(), "BuildFailed").context("BuildFailed")?;
    ensure!(build_failed.status == "True");
    ensure!(status.artifact.is_none());

    let status = env
        .wait_for::<HelmChart, _>("missing-path", WAIT, |chart| {
            let status = chart.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (ready.status == "False"
                && ready.reason == "ChartReferenceError"
                && ready.message.starts_with(
                    "chart reference error: stat charts/nope: no such file or directory",
                ))
            .then(|| status.clone())
        })
        .await?;
    let fetch_failed =
        condition(status.conditions.as_ref(), "FetchFailed").context("FetchFailed")?;
    ensure!(fetch_failed.reason == "ChartReferenceError");

    failing(
        &env,
        "bad-dep",
        "DependencyBuildError",
        "dependency build error: failed to add local dependency 'lib': can't get a valid version for constraint '2.x'",
    )
    .await?;

    // Missing files are skipped when asked to; only the merged ones are observed.
    let status = ready_at(&env, "ignored-values", "1.0.0+1").await?;
    ensure!(
        status.observed_values_files
            == Some(vec![
                "charts/app/values.yaml".to_string(),
                "charts/app/values-prod.yaml".to_string()
            ]),
        "{status:?}"
    );
    let archive = served_archive(&status).await?;
    let artifact = status.artifact.clone().context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    let values = parse_yaml(&std::fs::read(unpacked.path().join("app/values.yaml"))?)?;
    ensure!(
        values == json!({"greeting": "prod", "nested": {"size": "small", "colour": "red"}}),
        "{values}"
    );
    ensure!(unpacked.path().join("app/charts/lib-0.1.2.tgz").is_file());
    let rendered = tokio::task::spawn_blocking(move || helm_template(&archive)).await??;
    ensure!(rendered.contains("greeting: \"prod\""), "{rendered}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_version_strategy_and_packaged_charts_from_git() -> Result<()> {
    let env = Env::start("hc-strategy", &[]).await?;
    let work = tempfile::tempdir()?;
    let packaged =
        e2e::chart_repo::package_chart(&ChartSpec::config_maps("pkg", "0.5.0"), work.path())?;
    let packaged = std::fs::read(packaged)?;
    let repo = git_source(
        &env,
        "source",
        &[
            ("charts/lib/Chart.yaml", LIB_CHART.into()),
            ("charts/lib/templates/_helpers.tpl", LIB_HELPER.into()),
            ("packaged/pkg-0.5.0.tgz", packaged.clone()),
        ],
    )
    .await?;
    let git_chart = |chart: &str| {
        json!({"chart": chart, "interval": "1h",
               "sourceRef": {"kind": "GitRepository", "name": "source"}})
    };
    env.create::<HelmChart>(object("HelmChart", "lib", git_chart("charts/lib")))
        .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "packaged",
        git_chart("packaged/pkg-0.5.0.tgz"),
    ))
    .await?;

    // A packaged chart nothing changes is served as it is in the source.
    let status = ready_at(&env, "packaged", "0.5.0").await?;
    ensure!(ready_message(&status) == Some("pulled 'pkg' chart with version '0.5.0'"));
    ensure!(served_archive(&status).await? == packaged);

    // reconcileStrategy ChartVersion: a new commit that keeps the chart
    // version is observed, but makes no new artifact.
    let first = ready_at(&env, "lib", "0.1.2").await?;
    ensure!(
        ready_message(&first) == Some("packaged 'lib' chart with version '0.1.2'"),
        "{first:?}"
    );
    let first_artifact = first.artifact.clone().context("artifact")?;
    let second = repo.commit([("charts/lib/README.md", "docs\n")], &[], "docs")?;
    env.request_reconcile::<GitRepository>("source").await?;
    let observed = format!("main@sha1:{second}");
    let status = env
        .wait_for::<HelmChart, _>("lib", WAIT, |chart| {
            let status = chart.status.as_ref()?;
            (status.observed_source_artifact_revision.as_deref() == Some(observed.as_str()))
                .then(|| status.clone())
        })
        .await?;
    ensure!(status.artifact == Some(first_artifact), "{status:?}");
    // A new chart version does.
    repo.commit(
        [("charts/lib/Chart.yaml", LIB_CHART.replace("0.1.2", "0.1.3"))],
        &[],
        "bump",
    )?;
    env.request_reconcile::<GitRepository>("source").await?;
    let status = ready_at(&env, "lib", "0.1.3").await?;
    served_archive(&status).await?;

    // A spec that no longer builds stays failed on later reconciliations; the
    // older artifact does not make it Ready again.
    env.api::<HelmChart>()
        .patch(
            "lib",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"chart": "charts/gone"}})),
        )
        .await?;
    let message = format!(
        "chart reference error: stat charts/gone: no such file or directory in GitRepository artifact 'main@sha1:{}'",
        repo.head("main")?
    );
    let status = failing(&env, "lib", "ChartReferenceError", &message).await?;
    // The artifact still served keeps its build summary.
    let stored = condition(status.conditions.as_ref(), "ArtifactInStorage").context("stored")?;
    ensure!(
        stored.reason == "ChartPackageSucceeded"
            && stored.message == "packaged 'lib' chart with version '0.1.3'",
        "{stored:?}"
    );
    let token = env.request_reconcile::<HelmChart>("lib").await?;
    env.wait_for::<HelmChart, _>("lib", WAIT, |chart| {
        let status = chart.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (status
            .reconcile_request
            .last_handled_reconcile_at
            .as_deref()
            == Some(token.as_str())
            && ready.status == "False"
            && ready.message == message)
            .then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn values_files_on_a_repository_chart() -> Result<()> {
    let env = Env::start("hc-values", &[]).await?;
    let charts = tokio::task::spawn_blocking(|| ChartRepo::start(false)).await??;
    charts.add_chart(
        &ChartSpec::config_maps("podinfo", "6.1.0")
            .values("data:\n  greeting: hello\n  size: small\n")
            .file("values-prod.yaml", "data:\n  size: large\n"),
    )?;
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "charts",
        json!({"url": charts.url(), "interval": "1h"}),
    ))
    .await?;
    let chart = |version: &str, values: serde_json::Value| {
        json!({"chart": "podinfo", "version": version, "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "charts"},
               "valuesFiles": values})
    };
    env.create::<HelmChart>(object(
        "HelmChart",
        "merged",
        chart("6.x", json!(["values.yaml", "values-prod.yaml"])),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "missing-values",
        chart("6.x", json!(["values-nope.yaml"])),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "missing-version",
        chart("9.x", json!([])),
    ))
    .await?;

    // Values files make the generation part of the version.
    let status = ready_at(&env, "merged", "6.1.0+1").await?;
    ensure!(
        ready_message(&status)
            == Some(
                "packaged 'podinfo' chart with version '6.1.0+1' and merged values files [values.yaml values-prod.yaml]"
            ),
        "{status:?}"
    );
    served_archive(&status).await?;
    let artifact = status.artifact.clone().context("artifact")?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    let values = parse_yaml(&std::fs::read(unpacked.path().join("podinfo/values.yaml"))?)?;
    ensure!(
        values == json!({"data": {"greeting": "hello", "size": "large"}}),
        "{values}"
    );
    failing(
        &env,
        "missing-values",
        "ValuesFilesError",
        "values files merge error: no values file found at path 'values-nope.yaml'",
    )
    .await?;
    failing(
        &env,
        "missing-version",
        "ChartReferenceError",
        "chart reference error: failed to get chart version for remote reference: no 'podinfo' chart with version matching '9.x' found",
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chart_from_oci_repository_picks_the_newest_matching_tag() -> Result<()> {
    let env = Env::start("hc-oci", &[]).await?;
    let registry = oci_charts(&env).await?;
    let push = |registry: &Registry, version: &str| {
        push_chart(
            registry,
            &ChartSpec::config_maps("podinfo", version)
                .file("values-prod.yaml", "data:\n  size: large\n"),
        )
    };
    for version in ["6.0.0", "6.1.0", "6.2.0-rc.1", "7.0.0"] {
        push(&registry, version)?;
    }
    let chart = |version: &str, values: serde_json::Value| {
        json!({"chart": "podinfo", "version": version, "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "oci-charts"},
               "valuesFiles": values})
    };
    env.create::<HelmChart>(object("HelmChart", "podinfo", chart("6.x", json!([]))))
        .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "exact-with-values",
        chart("7.0.0", json!(["values.yaml", "values-prod.yaml"])),
    ))
    .await?;
    env.create::<HelmChart>(object("HelmChart", "missing", chart("9.x", json!([]))))
        .await?;

    // Pre-releases do not satisfy a plain range.
    let status = ready_at(&env, "podinfo", "6.1.0").await?;
    ensure!(ready_message(&status) == Some("pulled 'podinfo' chart with version '6.1.0'"));
    let artifact = status.artifact.clone().context("artifact")?;
    ensure!(artifact.path == format!("helmchart/{}/podinfo/podinfo-6.1.0.tgz", env.ns()));
    // Stored as pulled: the served file is the pushed layer, digest checked.
    served_archive(&status).await?;
    let unpacked = fetch_artifact(&artifact.url, &artifact.digest).await?;
    let meta = parse_yaml(&std::fs::read(unpacked.path().join("podinfo/Chart.yaml"))?)?;
    ensure!(meta["version"] == "6.1.0", "{meta}");

    let status = ready_at(&env, "exact-with-values", "7.0.0+1").await?;
    let archive = served_archive(&status).await?;
    let rendered = tokio::task::spawn_blocking(move || helm_template(&archive)).await??;
    ensure!(rendered.contains("size: \"large\""), "{rendered}");
    ensure!(rendered.contains("chartVersion: \"7.0.0+1\""), "{rendered}");

    failing(
        &env,
        "missing",
        "ChartReferenceError",
        "chart reference error: failed to get chart version for remote reference: could not locate a version matching provided version string 9.x",
    )
    .await?;

    // A newer matching version is picked up on the next reconciliation.
    push(&registry, "6.3.0")?;
    env.request_reconcile::<HelmChart>("podinfo").await?;
    ready_at(&env, "podinfo", "6.3.0").await?;

    // A cloud `provider` on the OCI HelmRepository stalls its charts, naming
    // it, rather than pulling anonymously and failing as unauthorised.
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "on-aws",
        json!({"url": registry.oci_url("charts"), "type": "oci", "insecure": true,
               "provider": "aws"}),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "via-aws",
        json!({"chart": "podinfo", "version": "6.x", "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "on-aws"}}),
    ))
    .await?;
    let status = failing(
        &env,
        "via-aws",
        "InvalidProviderConfiguration",
        "provider 'aws' is not supported; use 'generic' with a secretRef",
    )
    .await?;
    let stalled = condition(status.conditions.as_ref(), "Stalled").context("Stalled")?;
    ensure!(stalled.status == "True", "{stalled:?}");
    Ok(())
}

/// `--helm-cache-max-size`: HelmCharts of one HelmRepository read its parsed
/// index from memory after the first, counted in `gotk_cache_events_total`
/// as Flux counts them.
#[tokio::test(flavor = "multi_thread")]
async fn helm_index_cache_serves_repeated_reads() -> Result<()> {
    let env = Env::start(
        "hc-cache",
        &["--helm-cache-max-size=10", "--helm-cache-ttl=10m"],
    )
    .await?;
    let charts = tokio::task::spawn_blocking(|| ChartRepo::start(false)).await??;
    charts.add_chart(&ChartSpec::config_maps("podinfo", "6.1.0"))?;
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "charts",
        json!({"url": charts.url(), "interval": "1h"}),
    ))
    .await?;
    let chart = json!({"chart": "podinfo", "version": "6.x", "interval": "1h",
                       "sourceRef": {"kind": "HelmRepository", "name": "charts"}});
    env.create::<HelmChart>(object("HelmChart", "first", chart.clone()))
        .await?;
    ready_at(&env, "first", "6.1.0").await?;
    env.create::<HelmChart>(object("HelmChart", "second", chart))
        .await?;
    ready_at(&env, "second", "6.1.0").await?;

    let metrics = download(&format!(
        "http://127.0.0.1:{}/metrics",
        env.controller.metrics_port
    ))
    .await?;
    let metrics = String::from_utf8(metrics)?;
    let count = |event: &str, name: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with("gotk_cache_events_total{")
                    && l.contains(&format!("event_type=\"{event}\""))
                    && l.contains(&format!("name=\"{name}\""))
                    && l.contains(&format!("namespace=\"{}\"", env.ns()))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    ensure!(count("cache_miss", "first") >= 1.0, "{metrics}");
    ensure!(count("cache_hit", "second") >= 1.0, "{metrics}");
    Ok(())
}
