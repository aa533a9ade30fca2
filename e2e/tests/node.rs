//! The opt-in worker node: a Pod from an image in the node's registry runs
//! and turns Ready through its readiness probe, another Pod reaches it
//! through its Service's ClusterIP and through cluster DNS names, the host
//! reaches the ClusterIP through kube-proxy, and stopping the node leaves
//! nothing behind.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::{Pod, Service, ServiceAccount};
use kube::Api;
use kube::api::PostParams;

/// Polls `check` every 250 ms until it returns `Some` or `timeout` passes.
async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!("{what}: not true after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

#[tokio::test]
async fn pods_run_serve_through_services_and_resolve_cluster_dns() -> Result<()> {
    let started = Instant::now();
    let nodes = e2e::node::shared_with_node().await?;
    let start_took = started.elapsed();
    let cluster = nodes.cluster();
    let namespace = cluster.test_namespace("node").await?;
    let ns = namespace.name();
    let client = cluster.client().await?;
    let image = nodes.web_image();

    // The ServiceAccount admission needs the namespace's `default` account.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    eventually(
        "the default ServiceAccount",
        Duration::from_secs(30),
        async || Ok(accounts.get_opt("default").await?.map(|_| ())),
    )
    .await?;

    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let server: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web", "labels": { "app": "web" } },
        "spec": {
            "containers": [{
                "name": "web",
                "image": image,
                "args": ["serve", ":8080"],
                "ports": [{ "containerPort": 8080 }],
                "readinessProbe": {
                    "httpGet": { "path": "/healthz", "port": 8080 },
                    "periodSeconds": 1,
                },
            }],
        },
    }))?;
    pods.create(&PostParams::default(), &server).await?;
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "web" },
        "spec": {
            "selector": { "app": "web" },
            "ports": [{ "port": 80, "targetPort": 8080 }],
        },
    }))?;
    let service = services.create(&PostParams::default(), &service).await?;
    let cluster_ip = service
        .spec
        .and_then(|spec| spec.cluster_ip)
        .context("the Service has no ClusterIP")?;

    let ready = eventually("the web Pod Ready", Duration::from_secs(90), async || {
        let pod = pods.get("web").await?;
        Ok(pod_ready(&pod).then_some(pod))
    })
    .await?;
    assert_eq!(
        ready.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some("ferroflux-node"),
        "scheduled onto the node"
    );

    // From the host: the ClusterIP through kube-proxy's rules.
    let from_host = eventually(
        "the ClusterIP from the host",
        Duration::from_secs(30),
        async || {
            let response = reqwest::Client::new()
                .get(format!("http://{cluster_ip}/"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            Ok(match response {
                Ok(response) if response.status().is_success() => Some(response.text().await?),
                _ => None,
            })
        },
    )
    .await?;
    assert_eq!(from_host, "hello from web");

    // From another Pod: the ClusterIP, the Service's short and full names,
    // and the apiserver's Service name.
    let full = format!("web.{ns}.svc.cluster.local");
    let targets = [
        format!("http://{cluster_ip}/"),
        "http://web/".to_string(),
        format!("http://{full}/"),
        full.clone(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ];
    let client_pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "check" },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "check",
                "image": image,
                "args": std::iter::once("check".to_string()).chain(targets.iter().cloned()).collect::<Vec<_>>(),
            }],
        },
    }))?;
    pods.create(&PostParams::default(), &client_pod).await?;
    let finished = eventually(
        "the check Pod to finish",
        Duration::from_secs(120),
        async || {
            let pod = pods.get("check").await?;
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone());
            Ok(matches!(phase.as_deref(), Some("Succeeded" | "Failed")).then_some(pod))
        },
    )
    .await?;
    let status = finished.status.as_ref().unwrap();
    let message = status
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| c.state.as_ref()?.terminated.as_ref()?.message.clone())
        .unwrap_or_default();
    assert_eq!(status.phase.as_deref(), Some("Succeeded"), "{message}");
    let results: Vec<&str> = message.lines().collect();
    assert_eq!(results[0], format!("http://{cluster_ip}/=hello from web"));
    assert_eq!(results[1], "http://web/=hello from web");
    assert_eq!(results[2], format!("http://{full}/=hello from web"));
    assert_eq!(results[3], format!("{full}={cluster_ip}"));
    assert_eq!(results[4], "kubernetes.default.svc.cluster.local=10.0.0.1");
    eprintln!(
        "node start {start_took:.1?}; whole test {:.1?}",
        started.elapsed()
    );
    Ok(())
}
