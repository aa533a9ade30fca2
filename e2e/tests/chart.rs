//! The Helm chart in charts/ferroflux: lints, renders what its values say
//! (compared with golden files), refuses values its schema does not allow,
//! and installs into the real control plane with the real helm, where the
//! API server's authorizer is asked what each controller's ServiceAccount
//! may do. (No kubelet runs the controller Pods here; the objects themselves
//! are what is checked.)
//!
//! The golden files in `tests/chart/` are `helm template` of the default
//! values and of the chart's `ci/lockdown-values.yaml`; after a deliberate
//! change to the chart, rewrite them with
//! `FERROFLUX_UPDATE_GOLDEN=1 cargo test -p ferroflux-e2e --test chart` and
//! review the diff.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;
use e2e::packages::Helm;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::Api;
use kube::api::PostParams;

fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/ferroflux")
}

fn chart() -> String {
    chart_dir().to_string_lossy().into_owned()
}

/// `helm template ferroflux <chart> ARGS…`: the manifests of a release `ferroflux`.
fn template(args: &[&str]) -> Result<String> {
    let chart = chart();
    let mut all = vec!["template", "ferroflux", chart.as_str()];
    all.extend_from_slice(args);
    Helm::new()?.run(all)
}

#[test]
fn chart_lints_and_bundles_every_crd() -> Result<()> {
    let helm = Helm::new()?;
    helm.run(["lint", "--strict", &chart()])?;
    let rendered = template(&["--include-crds"])?;
    let crds = rendered.matches("kind: CustomResourceDefinition").count();
    assert_eq!(crds, 14, "the chart should carry all 14 generated CRDs");
    Ok(())
}

/// The chart's `crds/` holds exactly the generated files of `crds/`, byte
/// for byte (it links there; a copy left behind would drift).
#[test]
fn chart_crds_are_the_generated_crds() -> Result<()> {
    let files = |dir: &Path| -> Result<Vec<(String, Vec<u8>)>> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.push((name, std::fs::read(&path)?));
        }
        files.sort();
        Ok(files)
    };
    let generated = files(&chart_dir().join("../../crds"))?;
    assert_eq!(generated.len(), 14);
    assert!(
        files(&chart_dir().join("crds"))? == generated,
        "charts/ferroflux/crds differs from crds/"
    );
    Ok(())
}

/// `helm template` of `values` (extra `helm template` arguments) equals the
/// golden file `tests/chart/<name>.yaml`, or rewrites it under
/// `FERROFLUX_UPDATE_GOLDEN=1`; returns the rendered manifests.
fn assert_golden(name: &str, values: &[&str]) -> Result<String> {
    let mut args = vec!["--namespace", "flux-system"];
    args.extend_from_slice(values);
    let rendered = template(&args)?;
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/chart/{name}.yaml"));
    if std::env::var_os("FERROFLUX_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap())?;
        std::fs::write(&golden, &rendered)?;
        return Ok(rendered);
    }
    let expected = std::fs::read_to_string(&golden)?;
    if rendered != expected {
        let first = rendered
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(rendered.lines().count().min(expected.lines().count()));
        panic!(
            "helm template differs from {} from line {} on:\n  rendered: {:?}\n  golden:   {:?}\n\
             after a deliberate change: FERROFLUX_UPDATE_GOLDEN=1 cargo test -p ferroflux-e2e --test chart",
            golden.display(),
            first + 1,
            rendered.lines().nth(first),
            expected.lines().nth(first),
        );
    }
    Ok(rendered)
}

#[test]
fn default_values_render_the_golden_manifests() -> Result<()> {
    assert_golden("default", &[]).map(drop)
}

#[test]
fn lockdown_values_render_the_golden_manifests() -> Result<()> {
    let lockdown = chart_dir().join("ci/lockdown-values.yaml");
    let rendered = assert_golden("lockdown", &["--values", &lockdown.to_string_lossy()])?;
    // Flux's three lockdown flags, each where Flux sets it.
    assert_eq!(
        rendered.matches("--no-cross-namespace-refs=true").count(),
        5
    );
    assert_eq!(rendered.matches("--no-remote-bases=true").count(), 1);
    assert_eq!(
        rendered
            .matches("--default-service-account=default")
            .count(),
        2
    );
    Ok(())
}

#[test]
fn the_schema_refuses_bad_values() -> Result<()> {
    let helm = Helm::new()?;
    for (value, complaint) in [
        (
            "controllers.source.concurrent=0",
            "/controllers/source/concurrent",
        ),
        ("logEncoding=xml", "/logEncoding"),
        ("image.digest=latest", "/image/digest"),
        (
            "controllers.helm.defaultSerivceAccount=x",
            "defaultSerivceAccount",
        ),
        (
            "controllers.kustomize.defaultServiceAccount=Not_A_Name",
            "/controllers/kustomize/defaultServiceAccount",
        ),
    ] {
        let refused = template(&["--set", value]);
        let err = format!("{:#}", refused.expect_err(value));
        assert!(
            err.contains("schema") && err.contains(complaint),
            "{value}: {err}"
        );
        let linted = helm.run(["lint", "--strict", &chart(), "--set", value]);
        assert!(linted.is_err(), "helm lint took {value}");
    }
    Ok(())
}

/// Every key of values.yaml has its row in the README's values table
/// (`controllers.*.x` rows stand for each controller; `resources` is one row).
#[test]
fn the_readme_documents_every_value() -> Result<()> {
    let readme = std::fs::read_to_string(chart_dir().join("README.md"))?;
    let documented: BTreeSet<String> = readme
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_string()))
        .collect();
    let values: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(chart_dir().join("values.yaml"))?)?;
    let mut keys = Vec::new();
    leaf_keys(&values, String::new(), &mut keys);
    assert!(keys.len() > 30, "{keys:?}");
    let generic = |key: &str| {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["controllers", _, rest @ ..] => format!("controllers.*.{}", rest.join(".")),
            _ => key.to_string(),
        }
    };
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !documented.contains(*k) && !documented.contains(&generic(k)))
        .collect();
    assert!(
        missing.is_empty(),
        "values.yaml keys missing from charts/ferroflux/README.md: {missing:?}"
    );
    let stale: Vec<&String> = documented
        .iter()
        .filter(|d| !keys.iter().any(|k| k == *d || generic(k) == **d))
        .collect();
    assert!(
        stale.is_empty(),
        "README rows for keys values.yaml lacks: {stale:?}"
    );
    Ok(())
}

fn leaf_keys(value: &serde_json::Value, prefix: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if !map.is_empty() && !prefix.ends_with("resources") => {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                leaf_keys(child, path, out);
            }
        }
        _ => out.push(prefix),
    }
}

#[test]
fn values_switch_controllers_off() -> Result<()> {
    let rendered = template(&[
        "--set",
        "controllers.helm.enabled=false",
        "--set",
        "controllers.kustomize.defaultServiceAccount=default",
    ])?;
    assert!(!rendered.contains("name: helm-controller"), "{rendered}");
    assert!(
        !rendered.contains("ferroflux-helm-controller"),
        "{rendered}"
    );
    let without_notifications = template(&["--set", "controllers.notification.enabled=false"])?;
    assert!(
        !without_notifications.contains("--events-addr"),
        "no events are posted to a notification-controller that is not installed"
    );
    assert!(!without_notifications.contains("name: webhook-receiver"));
    assert!(rendered.contains("name: kustomize-controller"));
    assert!(rendered.contains("--default-service-account=default"));
    let appliers_off = template(&[
        "--set",
        "controllers.helm.enabled=false",
        "--set",
        "controllers.kustomize.enabled=false",
    ])?;
    assert!(
        !appliers_off.contains("cluster-reconciler"),
        "no binding without subjects"
    );
    Ok(())
}

#[tokio::test]
async fn chart_installs_into_a_real_cluster() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let ns = cluster.test_namespace("chart").await?;
    let helm = Helm::new()?;
    let chart = chart_dir();
    let kubeconfig = cluster.kubeconfig_path().to_string_lossy().into_owned();
    let release = ns.name().to_string();
    // The CRDs are already installed by the harness; installing them again
    // from the chart would conflict with their field manager.
    helm.run([
        "install",
        &release,
        &chart.to_string_lossy(),
        "--namespace",
        ns.name(),
        "--kubeconfig",
        &kubeconfig,
        "--skip-crds",
    ])?;

    let deployments: Api<Deployment> = Api::namespaced(cluster.client().await?, ns.name());
    let source = deployments.get("source-controller").await?;
    let container = source
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].clone())
        .unwrap_or_default();
    // The one image runs the controller its Deployment names, under Flux's
    // restrictions, probed on the health port.
    assert_eq!(
        container.command,
        Some(vec!["source-controller".to_string()])
    );
    let security = container.security_context.clone().unwrap_or_default();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.and_then(|c| c.drop),
        Some(vec!["ALL".to_string()])
    );
    for (probe, path) in [
        (&container.liveness_probe, "/healthz"),
        (&container.readiness_probe, "/readyz"),
    ] {
        let get = probe.clone().and_then(|p| p.http_get).unwrap();
        assert_eq!(get.path.as_deref(), Some(path));
        assert_eq!(
            get.port,
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String("healthz".into())
        );
    }
    let args = container.args.clone().unwrap_or_default();
    for expected in [
        "--storage-path=/data",
        "--enable-leader-election=true",
        "--concurrent=2",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing from {args:?}"
        );
    }
    for name in [
        "kustomize-controller",
        "helm-controller",
        "image-automation-controller",
        "notification-controller",
    ] {
        deployments.get(name).await?;
    }
    // Every other controller posts its events to notification-controller's
    // Service, which listens for events and Receivers' webhooks.
    let events_url =
        "--events-addr=http://notification-controller.$(RUNTIME_NAMESPACE).svc.cluster.local./";
    assert!(args.iter().any(|a| a == events_url), "{args:?}");
    let notification = deployments.get("notification-controller").await?;
    let container = notification
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].clone())
        .unwrap_or_default();
    let notification_args = container.args.clone().unwrap_or_default();
    for expected in ["--events-addr=:9090", "--receiverAddr=:9292"] {
        assert!(
            notification_args.iter().any(|a| a == expected),
            "{expected} missing from {notification_args:?}"
        );
    }
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(cluster.client().await?, ns.name());
    for (service, target) in [
        ("notification-controller", "http"),
        ("webhook-receiver", "http-webhook"),
    ] {
        let port = services
            .get(service)
            .await?
            .spec
            .and_then(|s| s.ports)
            .and_then(|p| p.into_iter().next())
            .ok_or_else(|| anyhow::anyhow!("{service} has no port"))?;
        assert_eq!(port.port, 80, "{service}");
        assert_eq!(
            port.target_port,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(target.into())),
            "{service}"
        );
    }
    // The image controllers keep scanned tags on a writable volume (the root
    // file system is read-only).
    let images = deployments.get("image-automation-controller").await?;
    let pod = images
        .spec
        .and_then(|s| s.template.spec)
        .unwrap_or_default();
    let container = &pod.containers[0];
    assert!(
        container
            .args
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|a| a == "--storage-path=/data"),
        "{:?}",
        container.args
    );
    assert!(
        container
            .volume_mounts
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|m| m.mount_path == "/data"),
        "{:?}",
        container.volume_mounts
    );

    // What the API server's authorizer lets each controller's ServiceAccount
    // do, from the chart's ClusterRoles and bindings.
    let client = cluster.client().await?;
    let may =
        |account: &'static str, verb: &'static str, group: &'static str, resource: &'static str| {
            let client = client.clone();
            let namespace = ns.name().to_string();
            async move {
                let (resource, subresource) = match resource.split_once('/') {
                    Some((r, s)) => (r, Some(s.to_string())),
                    None => (resource, None),
                };
                let review = SubjectAccessReview {
                    spec: SubjectAccessReviewSpec {
                        user: Some(format!("system:serviceaccount:{namespace}:{account}")),
                        groups: Some(vec![
                            "system:serviceaccounts".into(),
                            format!("system:serviceaccounts:{namespace}"),
                            "system:authenticated".into(),
                        ]),
                        resource_attributes: Some(ResourceAttributes {
                            namespace: Some("tenant".into()),
                            verb: Some(verb.into()),
                            group: Some(group.into()),
                            resource: Some(resource.into()),
                            subresource,
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let reviewed = Api::<SubjectAccessReview>::all(client)
                    .create(&PostParams::default(), &review)
                    .await?;
                anyhow::Ok(reviewed.status.is_some_and(|s| s.allowed))
            }
        };
    let source = "source.toolkit.fluxcd.io";
    for (account, verb, group, resource, allowed) in [
        (
            "source-controller",
            "patch",
            source,
            "gitrepositories/status",
            true,
        ),
        ("source-controller", "list", "", "secrets", true),
        (
            "source-controller",
            "create",
            "events.k8s.io",
            "events",
            true,
        ),
        (
            "source-controller",
            "create",
            source,
            "gitrepositories",
            false,
        ),
        ("source-controller", "update", "", "secrets", false),
        (
            "source-controller",
            "patch",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations",
            false,
        ),
        ("source-controller", "create", "apps", "deployments", false),
        (
            "kustomize-controller",
            "patch",
            "kustomize.toolkit.fluxcd.io",
            "kustomizations/status",
            true,
        ),
        (
            "kustomize-controller",
            "get",
            source,
            "externalartifacts",
            true,
        ),
        (
            "kustomize-controller",
            "impersonate",
            "",
            "serviceaccounts",
            true,
        ),
        // The opt-in cluster-admin binding of the appliers, on by default as in Flux.
        (
            "kustomize-controller",
            "create",
            "apps",
            "deployments",
            true,
        ),
        ("helm-controller", "create", source, "helmcharts", true),
        ("helm-controller", "delete", source, "ocirepositories", true),
        ("helm-controller", "delete", "", "secrets", true),
        (
            "image-automation-controller",
            "update",
            "image.toolkit.fluxcd.io",
            "imagepolicies/status",
            true,
        ),
        (
            "image-automation-controller",
            "get",
            source,
            "gitrepositories",
            true,
        ),
        (
            "image-automation-controller",
            "patch",
            source,
            "gitrepositories",
            false,
        ),
        (
            "image-automation-controller",
            "create",
            "apps",
            "deployments",
            false,
        ),
        (
            "notification-controller",
            "patch",
            "helm.toolkit.fluxcd.io",
            "helmreleases",
            true,
        ),
        (
            "notification-controller",
            "delete",
            "helm.toolkit.fluxcd.io",
            "helmreleases",
            false,
        ),
        (
            "notification-controller",
            "impersonate",
            "",
            "serviceaccounts",
            false,
        ),
    ] {
        assert_eq!(
            may(account, verb, group, resource).await?,
            allowed,
            "{account} {verb} {group}/{resource}"
        );
    }

    helm.run([
        "uninstall",
        &release,
        "--namespace",
        ns.name(),
        "--kubeconfig",
        &kubeconfig,
    ])?;
    ns.delete().await
}
