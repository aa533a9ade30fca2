//! The Helm chart in charts/ferroflux: lints, installs into the real control
//! plane with the real helm, and renders what its values say. (No kubelet runs
//! the controller Pods; the objects themselves are what is checked.)

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use anyhow::Result;
use e2e::packages::Helm;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;

fn chart_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/ferroflux")
}

#[test]
fn chart_lints_and_bundles_every_crd() -> Result<()> {
    let helm = Helm::new()?;
    let chart = chart_dir();
    helm.run(["lint", "--strict", &chart.to_string_lossy()])?;
    let rendered = helm.run(["template", "ff", &chart.to_string_lossy(), "--include-crds"])?;
    let crds = rendered.matches("kind: CustomResourceDefinition").count();
    assert_eq!(crds, 14, "the chart should carry all 14 generated CRDs");
    Ok(())
}

#[test]
fn values_switch_controllers_off() -> Result<()> {
    let helm = Helm::new()?;
    let chart = chart_dir();
    let rendered = helm.run([
        "template",
        "ff",
        &chart.to_string_lossy(),
        "--set",
        "controllers.helm.enabled=false",
        "--set",
        "controllers.kustomize.defaultServiceAccount=default",
    ])?;
    assert!(!rendered.contains("name: helm-controller"), "{rendered}");
    let without_notifications = helm.run([
        "template",
        "ff",
        &chart.to_string_lossy(),
        "--set",
        "controllers.notification.enabled=false",
    ])?;
    assert!(
        !without_notifications.contains("--events-addr"),
        "no events are posted to a notification-controller that is not installed"
    );
    assert!(rendered.contains("name: kustomize-controller"));
    assert!(rendered.contains("--default-service-account=default"));
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
    let args = source
        .spec
        .and_then(|s| s.template.spec)
        .map(|p| p.containers[0].args.clone().unwrap_or_default())
        .unwrap_or_default();
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
