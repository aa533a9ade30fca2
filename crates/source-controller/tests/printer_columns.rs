//! What users see in `kubectl get gitrepo,helmrepo,hc,ocirepo`: Flux's
//! printer columns, in Flux's order, filled with the real values of sources
//! the real source-controller made Ready (Git server, HTTP chart repository,
//! registry), printed by the real kubectl.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use api::source::{GitRepository, HelmChart, HelmRepository, OCIRepository};
use e2e::chart_repo::{ChartRepo, ChartSpec};
use e2e::registry::Registry;
use fixture::{Env, NamespacedObject, condition, git_source, object};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

/// Waits until `K`'s Ready condition is True at the current generation with
/// exactly `message`, and an artifact is recorded; returns the object.
async fn ready_with<K>(env: &Env, name: &str, message: impl Fn(&K) -> Option<String>) -> Result<K>
where
    K: NamespacedObject + SourceStatus,
{
    env.wait_for::<K, _>(name, WAIT, |obj| {
        let (conditions, observed, has_artifact) = obj.source_status()?;
        let ready = condition(Some(conditions), "Ready")?;
        (ready.status == "True"
            && has_artifact
            && observed == obj.meta().generation
            && Some(&ready.message) == message(obj).as_ref())
        .then(|| obj.clone())
    })
    .await
}

type Conditions = Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>;

/// The parts of a source's status the wait looks at: conditions,
/// `observedGeneration`, whether `artifact` is set.
trait SourceStatus {
    fn source_status(&self) -> Option<(&Conditions, Option<i64>, bool)>;
}

macro_rules! source_status {
    ($($kind:ty),*) => {$(
        impl SourceStatus for $kind {
            fn source_status(&self) -> Option<(&Conditions, Option<i64>, bool)> {
                let status = self.status.as_ref()?;
                Some((
                    status.conditions.as_ref()?,
                    status.observed_generation,
                    status.artifact.is_some(),
                ))
            }
        }
    )*};
}
source_status!(GitRepository, HelmRepository, HelmChart, OCIRepository);

/// One table of `kubectl get` output: header cells and row cells, cut at the
/// header's column offsets (kubectl aligns every cell under its header, and a
/// header like `SOURCE KIND` holds a single space while columns are separated
/// by at least three).
#[derive(Debug)]
struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn parse_tables(output: &str) -> Result<Vec<Table>> {
    let mut tables = Vec::new();
    for block in output.split("\n\n").filter(|b| !b.trim().is_empty()) {
        let mut lines = block.lines().filter(|l| !l.trim().is_empty());
        let header = lines.next().context("empty table")?;
        let mut starts = Vec::new();
        let mut headers = Vec::new();
        let mut offset = 0;
        for cell in header.split("  ").filter(|c| !c.trim().is_empty()) {
            let start = offset + header[offset..].find(cell).context("header cell")?;
            starts.push(start);
            headers.push(cell.trim().to_string());
            offset = start + cell.len();
        }
        let rows = lines
            .map(|line| {
                starts
                    .iter()
                    .enumerate()
                    .map(|(i, &start)| {
                        let end = starts.get(i + 1).copied().unwrap_or(line.len());
                        line.get(start..end.min(line.len()))
                            .unwrap_or_default()
                            .trim()
                            .to_string()
                    })
                    .collect()
            })
            .collect();
        tables.push(Table { headers, rows });
    }
    Ok(tables)
}

/// Runs the harness's kubectl with the control plane's kubeconfig and a
/// fresh discovery cache (the CRDs may have been installed moments ago).
fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    let cache = tempfile::tempdir()?;
    let output = e2e::process::run(
        Command::new(e2e::packages::kubectl_kustomize()?)
            .env("KUBECONFIG", kubeconfig)
            .arg(format!("--cache-dir={}", cache.path().display()))
            .args(args),
    )?;
    Ok(String::from_utf8(output.stdout)?)
}

/// kubectl's human duration (`5s`, `2m3s`, `10m`, `3h`, `2d`).
fn is_age(cell: &str) -> bool {
    cell.starts_with(|c: char| c.is_ascii_digit())
        && cell.ends_with(['s', 'm', 'h', 'd', 'y'])
        && cell
            .chars()
            .all(|c| c.is_ascii_digit() || "smhdy".contains(c))
}

/// The single row of the table whose NAME is `name`, with AGE checked and
/// replaced by `<age>` so whole rows compare exactly.
fn row_named<'t>(tables: &'t [Table], name: &str) -> Result<(&'t Table, Vec<String>)> {
    let table = tables
        .iter()
        .find(|t| {
            t.rows
                .iter()
                .any(|r| r.first().map(String::as_str) == Some(name))
        })
        .with_context(|| format!("no row {name} in {tables:#?}"))?;
    ensure!(table.rows.len() == 1, "one object per kind: {table:#?}");
    let mut row = table.rows[0].clone();
    let age = table
        .headers
        .iter()
        .position(|h| h == "AGE")
        .context("AGE column")?;
    ensure!(is_age(&row[age]), "AGE of {name}: {:?}", row[age]);
    row[age] = "<age>".to_string();
    Ok((table, row))
}

#[tokio::test(flavor = "multi_thread")]
async fn kubectl_get_shows_flux_columns_with_real_values() -> Result<()> {
    let env = Env::start("printer-columns", &[]).await?;
    env.wait_served::<GitRepository>(WAIT).await?;
    env.wait_served::<HelmRepository>(WAIT).await?;
    env.wait_served::<HelmChart>(WAIT).await?;
    env.wait_served::<OCIRepository>(WAIT).await?;

    // GitRepository from the Git server, over HTTP with basic auth.
    let repo = git_source(
        &env,
        "app",
        &[(
            "deploy/app.yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n".to_vec(),
        )],
    )
    .await?;
    let commit = repo.head("main")?;

    // HelmRepository from the HTTP chart repository, and a HelmChart from it.
    let (charts, registry) = tokio::task::spawn_blocking(|| {
        anyhow::Ok((ChartRepo::start(false)?, Registry::start(false)?))
    })
    .await??;
    charts.add_chart(&ChartSpec::config_maps("podinfo", "6.1.0"))?;
    env.create::<HelmRepository>(object(
        "HelmRepository",
        "charts",
        json!({"url": charts.url(), "interval": "1h"}),
    ))
    .await?;
    env.create::<HelmChart>(object(
        "HelmChart",
        "podinfo",
        json!({"chart": "podinfo", "version": "6.x", "interval": "1h",
               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    ))
    .await?;

    // OCIRepository from the registry, a Flux artifact pushed as `latest`.
    let oci_repo = format!("{}/app", env.ns());
    let digest = registry.push_flux_artifact(
        &oci_repo,
        "latest",
        [("deploy/app.yaml", "kind: Namespace\n")],
    )?;
    env.create::<OCIRepository>(object(
        "OCIRepository",
        "app",
        json!({"url": registry.oci_url(&oci_repo), "interval": "1h", "insecure": true}),
    ))
    .await?;

    let git_message = format!("stored artifact for revision 'main@sha1:{commit}'");
    let chart_message = "pulled 'podinfo' chart with version '6.1.0'".to_string();
    let oci_message = format!("stored artifact for digest 'latest@{digest}'");
    ready_with::<GitRepository>(&env, "app", |_| Some(git_message.clone())).await?;
    ready_with::<HelmChart>(&env, "podinfo", |_| Some(chart_message.clone())).await?;
    ready_with::<OCIRepository>(&env, "app", |_| Some(oci_message.clone())).await?;
    // The index revision is its digest; the message names it.
    let index_message = |repo: &HelmRepository| {
        let revision = &repo.status.as_ref()?.artifact.as_ref()?.revision;
        revision
            .starts_with("sha256:")
            .then(|| format!("stored artifact: revision '{revision}'"))
    };
    let helm_repository = ready_with::<HelmRepository>(&env, "charts", index_message).await?;
    let index_message = index_message(&helm_repository).context("index message")?;

    let kubeconfig = e2e::cluster::shared().await?.kubeconfig_path();
    let plain = kubectl(
        kubeconfig,
        &["get", "gitrepo,helmrepo,hc,ocirepo", "-n", env.ns()],
    )?;
    let tables = parse_tables(&plain)?;
    ensure!(tables.len() == 4, "four tables, one per kind:\n{plain}");

    let url_columns = ["NAME", "URL", "AGE", "READY", "STATUS"];
    // Each kind's row in its own column order, AGE as `<age>`. Flux's
    // OCIRepository prints AGE last.
    let age_ready = |status: String| ["<age>".to_string(), "True".to_string(), status];
    let expected: [(&str, &[&str], Vec<String>); 4] = [
        (
            "gitrepository.source.toolkit.fluxcd.io/app",
            &url_columns,
            [
                vec![repo.http_url().to_string()],
                age_ready(git_message).to_vec(),
            ]
            .concat(),
        ),
        (
            "helmrepository.source.toolkit.fluxcd.io/charts",
            &url_columns,
            [vec![charts.url()], age_ready(index_message).to_vec()].concat(),
        ),
        (
            "helmchart.source.toolkit.fluxcd.io/podinfo",
            &[
                "NAME",
                "CHART",
                "VERSION",
                "SOURCE KIND",
                "SOURCE NAME",
                "AGE",
                "READY",
                "STATUS",
            ],
            [
                vec![
                    "podinfo".to_string(),
                    "6.x".to_string(),
                    "HelmRepository".to_string(),
                    "charts".to_string(),
                ],
                age_ready(chart_message).to_vec(),
            ]
            .concat(),
        ),
        (
            "ocirepository.source.toolkit.fluxcd.io/app",
            &["NAME", "URL", "READY", "STATUS", "AGE"],
            vec![
                registry.oci_url(&oci_repo),
                "True".to_string(),
                oci_message,
                "<age>".to_string(),
            ],
        ),
    ];
    for (name, headers, values) in &expected {
        let (table, row) = row_named(&tables, name)?;
        ensure!(
            table.headers == *headers,
            "columns of {name}: {:?}\n{plain}",
            table.headers
        );
        let mut want = vec![name.to_string()];
        want.extend(values.iter().cloned());
        ensure!(
            row == want,
            "row of {name}:\n{row:?}\n!=\n{want:?}\n{plain}"
        );
    }

    // Flux marks none of these columns wide-only (priority 1): `-o wide`
    // prints the very same columns and values.
    let wide = kubectl(
        kubeconfig,
        &[
            "get",
            "gitrepo,helmrepo,hc,ocirepo",
            "-n",
            env.ns(),
            "-o",
            "wide",
        ],
    )?;
    let wide_tables = parse_tables(&wide)?;
    ensure!(wide_tables.len() == 4, "four tables, one per kind:\n{wide}");
    for (name, _, _) in &expected {
        let (plain_table, plain_row) = row_named(&tables, name)?;
        let (wide_table, wide_row) = row_named(&wide_tables, name)?;
        if wide_table.headers != plain_table.headers || wide_row != plain_row {
            bail!("-o wide differs for {name}:\n{wide}\nplain:\n{plain}");
        }
    }
    Ok(())
}
