//! `spec.kubeConfig`: a HelmRelease released into another cluster. The
//! remote cluster is a control plane of the test's own; the HelmRelease, its
//! chart source and the kubeconfig Secret live in the harness's shared one.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use anyhow::Result;
use e2e::chart_repo::ChartSpec;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, PostParams};
use serde_json::json;
use support::{World, has, message, ready_with};

fn kubeconfig_secret(name: &str, key: &str, kubeconfig: &str) -> Result<Secret> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {key: kubeconfig},
    }))?)
}

/// helm, Helm's storage, the inventory, upgrades and the uninstall on
/// deletion all reach the remote cluster; nothing lands in the controller's.
/// A missing Secret is reported (and recovered from once created), a
/// credential plugin is refused.
#[tokio::test]
async fn releases_into_a_remote_cluster_through_kube_config() -> Result<()> {
    let world = World::new("hr-remote").await?;
    let remote = e2e::cluster::Cluster::start_dedicated().await?;
    let remote_client = remote.client().await?;
    let remote_config_maps: Api<ConfigMap> = Api::namespaced(remote_client.clone(), "default");
    let remote_secrets: Api<Secret> = Api::namespaced(remote_client.clone(), "default");
    let local_config_maps: Api<ConfigMap> = Api::namespaced(world.client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(world.client.clone(), world.ns());

    let chart = ChartSpec::config_maps("faraway", "1.0.0");
    world.publish("faraway", &chart).await?;
    world
        .create_release(
            "faraway",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "faraway"},
                "targetNamespace": "default",
                "kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}},
            }),
        )
        .await?;
    world
        .wait_for("faraway", "the missing Secret reported", |hr| {
            has(hr, "Ready", "False", "RESTClientError")
                && message(hr, "Ready").contains(&format!(
                    "could not get KubeConfig secret '{}/remote-kubeconfig'",
                    world.ns()
                ))
        })
        .await?;

    // The Secret appears, its kubeconfig under the second default key.
    let kubeconfig = std::fs::read_to_string(remote.kubeconfig_path())?;
    secrets
        .create(
            &PostParams::default(),
            &kubeconfig_secret("remote-kubeconfig", "value.yaml", &kubeconfig)?,
        )
        .await?;
    let installed =
        "Helm install succeeded for release default/default-faraway.v1 with chart faraway@1.0.0";
    let hr = world
        .wait_for("faraway", "the remote install", |hr| {
            ready_with(hr, installed)
        })
        .await?;
    let status = hr.status.clone().unwrap_or_default();
    assert_eq!(status.storage_namespace.as_deref(), Some("default"));
    let inventory = status.inventory.unwrap_or_default().entries;
    assert_eq!(
        inventory.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["default_default-faraway-faraway__ConfigMap"]
    );
    assert!(
        remote_secrets
            .get_opt("sh.helm.release.v1.default-faraway.v1")
            .await?
            .is_some()
    );
    assert!(
        remote_config_maps
            .get_opt("default-faraway-faraway")
            .await?
            .is_some()
    );
    assert!(
        local_config_maps
            .get_opt("default-faraway-faraway")
            .await?
            .is_none(),
        "the release must not land in the controller's cluster"
    );

    // A values change upgrades the remote release.
    world
        .patch_spec("faraway", json!({"values": {"data": {"greeting": "far"}}}))
        .await?;
    let upgraded =
        "Helm upgrade succeeded for release default/default-faraway.v2 with chart faraway@1.0.0";
    world
        .wait_for("faraway", "the remote upgrade", |hr| {
            ready_with(hr, upgraded)
        })
        .await?;
    let config_map = remote_config_maps.get("default-faraway-faraway").await?;
    assert_eq!(
        config_map
            .data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("far")
    );

    // Deletion uninstalls it there.
    world.delete_and_wait("faraway").await?;
    assert!(
        remote_config_maps
            .get_opt("default-faraway-faraway")
            .await?
            .is_none()
    );
    assert!(
        remote_secrets
            .get_opt("sh.helm.release.v1.default-faraway.v2")
            .await?
            .is_none()
    );

    // A kubeconfig that runs a program is refused for good.
    let exec = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n    certificate-authority-data: Y2E=\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch /tmp/pwned\"]\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n";
    secrets
        .create(
            &PostParams::default(),
            &kubeconfig_secret("exec-kubeconfig", "value", exec)?,
        )
        .await?;
    world
        .publish("plugin", &ChartSpec::config_maps("plugin", "1.0.0"))
        .await?;
    world
        .create_release(
            "plugin",
            json!({
                "interval": "10m",
                "chartRef": {"kind": "OCIRepository", "name": "plugin"},
                "kubeConfig": {"secretRef": {"name": "exec-kubeconfig"}},
            }),
        )
        .await?;
    world
        .wait_for("plugin", "the credential plugin refused", |hr| {
            has(hr, "Stalled", "True", "RESTClientError")
                && message(hr, "Ready").contains("--insecure-kubeconfig-exec")
        })
        .await?;
    Ok(())
}
