//! What the HelmRelease e2e tests share: a namespace per test on the shared
//! control plane, the helm-controller binary watching only it, a chart
//! repository, and helpers to publish charts and wait for conditions.

#![allow(dead_code)] // Each test binary uses a different subset.

pub mod sources;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::helm::HelmRelease;
use api::source::OCIRepository;
use e2e::chart_repo::{ChartRepo, ChartSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

/// The controller binary running against one test namespace; killed when
/// dropped and when the test process dies.
pub struct Controller {
    service: e2e::process::Service,
    _dir: tempfile::TempDir,
}

impl Controller {
    pub fn start(kubeconfig: &Path, namespace: &str) -> Result<Self> {
        Self::start_with(kubeconfig, namespace, &[])
    }

    /// [`Controller::start`] with more flags.
    ///
    /// Chart digest tracking is off unless `extra_args` set the gate: the
    /// charts [`World::publish`] stands in for OCIRepositories, which would
    /// otherwise be installed as `<version>+<digest>`, and these tests are
    /// about the release mechanics, asserting plain versions. Tracking is
    /// tested with the real source-controller (`with_source_controller.rs`).
    pub fn start_with(kubeconfig: &Path, namespace: &str, extra_args: &[&str]) -> Result<Self> {
        const NO_TRACKING: &str = "DisableChartDigestTracking=true";
        let mut extra_args: Vec<String> = extra_args.iter().map(|a| a.to_string()).collect();
        if !extra_args
            .iter()
            .any(|a| a.contains("DisableChartDigestTracking"))
        {
            match extra_args
                .iter_mut()
                .find(|a| a.starts_with("--feature-gates="))
            {
                Some(gates) => gates.push_str(&format!(",{NO_TRACKING}")),
                None => extra_args.push(format!("--feature-gates={NO_TRACKING}")),
            }
        }
        let dir = tempfile::tempdir()?;
        let health = e2e::paths::free_port()?;
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_helm-controller"));
        cmd.args([
            "--watch-all-namespaces=false",
            "--metrics-addr=127.0.0.1:0",
            "--log-encoding=console",
            "--requeue-dependency=2s",
            "--min-retry-delay=500ms",
            "--max-retry-delay=5s",
        ])
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--helm-path")
        .arg(e2e::packages::helm()?)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--chart-cache-dir")
        .arg(dir.path().join("charts"))
        .args(extra_args)
        .env("RUNTIME_NAMESPACE", namespace)
        .env("KUBECONFIG", kubeconfig)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "info,helm_controller=debug,kube=warn");
        let mut service =
            e2e::process::start("helm-controller", cmd, &dir.path().join("controller.log"))?;
        service.wait_for_port(health, Duration::from_secs(60))?;
        Ok(Self { service, _dir: dir })
    }

    /// Flux's own helm-controller ([`e2e::gobuild::flux_controller`]) watching
    /// only `namespace`, with the flags of its Deployment in Flux's manifests
    /// adapted to loopback: no leader election (one instance), no events
    /// address (Kubernetes events only), metrics and health on free ports.
    pub fn start_flux(kubeconfig: &Path, namespace: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let health = e2e::paths::free_port()?;
        let mut cmd = Command::new(e2e::gobuild::flux_controller("helm-controller")?);
        cmd.args([
            "--watch-all-namespaces=false",
            "--log-level=debug",
            "--log-encoding=console",
            "--metrics-addr=127.0.0.1:0",
            "--requeue-dependency=2s",
        ])
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .env("RUNTIME_NAMESPACE", namespace)
        .env("KUBECONFIG", kubeconfig);
        let mut service = e2e::process::start(
            "flux-helm-controller",
            cmd,
            &dir.path().join("controller.log"),
        )?;
        service.wait_for_port(health, Duration::from_secs(60))?;
        Ok(Self { service, _dir: dir })
    }

    /// SIGTERM, as the kubelet sends it; waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        self.service.terminate(timeout)
    }

    /// SIGKILL, like `kill -9`.
    pub fn kill(&mut self) {
        self.service.kill();
    }

    pub fn log(&self) -> String {
        e2e::process::tail(self.service.log_path(), 200)
    }
}

/// One test's world: a namespace, the controller, a chart repository.
pub struct World {
    pub client: kube::Client,
    pub namespace: e2e::cluster::TestNamespace,
    pub controller: Controller,
    pub repo: ChartRepo,
    pub kubeconfig: PathBuf,
}

impl World {
    pub async fn new(name: &str) -> Result<Self> {
        Self::with_args(name, &[]).await
    }

    /// [`World::new`] with more controller flags.
    pub async fn with_args(name: &str, extra_args: &[&str]) -> Result<Self> {
        Self::with_controller(name, |kubeconfig, namespace| {
            Controller::start_with(kubeconfig, namespace, extra_args)
        })
        .await
    }

    /// [`World::new`] with the controller `start` starts for the kubeconfig
    /// and namespace (Flux's own, for the swap tests).
    pub async fn with_controller(
        name: &str,
        start: impl FnOnce(&Path, &str) -> Result<Controller>,
    ) -> Result<Self> {
        let cluster = e2e::cluster::shared().await?;
        let namespace = cluster.test_namespace(name).await?;
        let kubeconfig = cluster.kubeconfig_path().to_path_buf();
        let controller = start(&kubeconfig, namespace.name())?;
        Ok(Self {
            client: cluster.client().await?,
            namespace,
            controller,
            repo: ChartRepo::start(false)?,
            kubeconfig,
        })
    }

    pub fn ns(&self) -> &str {
        self.namespace.name()
    }

    pub fn releases(&self) -> Api<HelmRelease> {
        Api::namespaced(self.client.clone(), self.ns())
    }

    pub fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), self.ns())
    }

    /// Publishes `chart` and points the OCIRepository `name` at it, the way
    /// source-controller would after pulling it.
    pub async fn publish(&self, name: &str, chart: &ChartSpec) -> Result<()> {
        let tgz = self.repo.add_chart(chart)?;
        let bytes = std::fs::read(&tgz)?;
        let digest = runtime::artifact::sha256_digest(&bytes);
        let file = tgz
            .file_name()
            .and_then(|f| f.to_str())
            .context("chart file name")?
            .to_string();
        let api: Api<OCIRepository> = Api::namespaced(self.client.clone(), self.ns());
        if api.get_opt(name).await?.is_none() {
            let repository: OCIRepository = serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "OCIRepository",
                "metadata": {"name": name},
                "spec": {"url": format!("oci://127.0.0.1:5000/charts/{name}"), "interval": "10m"}
            }))?;
            api.create(&PostParams::default(), &repository).await?;
        }
        let generation = api.get(name).await?.metadata.generation;
        let manifest_digest = format!("sha256:{}", &digest["sha256:".len()..]);
        let status = json!({"status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "reason": "Succeeded",
                "message": "stored artifact", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "artifact": {
                "url": format!("{}/{file}", self.repo.url()),
                "path": format!("ocirepository/{}/{name}/{file}", self.ns()),
                "revision": format!("{}@{manifest_digest}", chart.version()),
                "digest": digest,
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "size": bytes.len(),
            }
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }

    pub async fn create_release(&self, name: &str, spec: Value) -> Result<()> {
        let hr: HelmRelease = serde_json::from_value(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": name},
            "spec": spec,
        }))?;
        self.releases().create(&PostParams::default(), &hr).await?;
        Ok(())
    }

    pub async fn patch_spec(&self, name: &str, spec: Value) -> Result<()> {
        self.releases()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await?;
        Ok(())
    }

    /// Waits until `check` accepts the HelmRelease.
    pub async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&HelmRelease) -> bool,
    ) -> Result<HelmRelease> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let hr = self.releases().get(name).await?;
            if check(&hr) {
                return Ok(hr);
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {what}; status:\n{}\ncontroller log:\n{}",
                    serde_json::to_string_pretty(&hr.status).unwrap_or_default(),
                    self.controller.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Deletes the HelmRelease `name` and waits until it is gone (its
    /// finalizer removed after the uninstall).
    pub async fn delete_and_wait(&self, name: &str) -> Result<()> {
        self.releases()
            .delete(name, &kube::api::DeleteParams::default())
            .await?;
        self.wait_until_gone(&self.releases(), name, Duration::from_secs(120))
            .await
    }

    /// Waits until the object `name` of `api` is gone (its finalizers
    /// done), for at most `timeout`.
    pub async fn wait_until_gone<K>(
        &self,
        api: &Api<K>,
        name: &str,
        timeout: Duration,
    ) -> Result<()>
    where
        K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let deadline = Instant::now() + timeout;
        while api.get_opt(name).await?.is_some() {
            if Instant::now() > deadline {
                bail!(
                    "{} {name} not deleted; log:\n{}",
                    K::kind(&()),
                    self.controller.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(())
    }

    /// `Helm <action> succeeded for release <ns>/<release>.v<revision> with
    /// chart <chart>`: the message of a successful action.
    pub fn succeeded(&self, action: &str, release: &str, revision: u32, chart: &str) -> String {
        format!(
            "Helm {action} succeeded for release {}/{release}.v{revision} with chart {chart}",
            self.ns()
        )
    }

    /// Publishes `chart` as the OCIRepository `name`, creates the
    /// HelmRelease `name` from it (plus `spec`) and waits for its install.
    pub async fn install(&self, name: &str, chart: &ChartSpec, spec: Value) -> Result<HelmRelease> {
        self.publish(name, chart).await?;
        let mut full = json!({
            "interval": "10m",
            "chartRef": {"kind": "OCIRepository", "name": name}
        });
        if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), spec) {
            full.extend(extra);
        }
        self.create_release(name, full).await?;
        let installed = self.succeeded(
            "install",
            name,
            1,
            &format!("{}@{}", chart.name(), chart.version()),
        );
        self.wait_for(name, "the install", |hr| ready_with(hr, &installed))
            .await
    }

    /// The value of `key` in ConfigMap `name`.
    pub async fn config_value(&self, name: &str, key: &str) -> Result<String> {
        self.config_maps()
            .get(name)
            .await?
            .data
            .unwrap_or_default()
            .remove(key)
            .with_context(|| format!("ConfigMap {name} has no {key}"))
    }

    /// Waits until an event with `reason` whose message `message` accepts
    /// is written: the controller writes events in the background, after
    /// the status that follows them may already be visible.
    pub async fn wait_for_event(&self, reason: &str, message: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let events = self.events().await?;
            if events.iter().any(|(r, m)| r == reason && message(m)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for a {reason} event; events: {events:?}\ncontroller log:\n{}",
                    self.controller.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    pub async fn events(&self) -> Result<Vec<(String, String)>> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), self.ns());
        Ok(api
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(|e| (e.reason.unwrap_or_default(), e.message.unwrap_or_default()))
            .collect())
    }
}

pub fn condition<'a>(
    hr: &'a HelmRelease,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    hr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// The message of condition `type_` (empty when absent).
pub fn message(hr: &HelmRelease, type_: &str) -> String {
    condition(hr, type_)
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

pub fn has(hr: &HelmRelease, type_: &str, status: &str, reason: &str) -> bool {
    condition(hr, type_).is_some_and(|c| c.status == status && c.reason == reason)
}

/// Ready with `message`, and settled (no reconciliation under way).
pub fn ready_with(hr: &HelmRelease, message: &str) -> bool {
    condition(hr, "Ready").is_some_and(|c| c.status == "True" && c.message == message)
        && condition(hr, "Reconciling").is_none()
        && hr.status.as_ref().and_then(|s| s.observed_generation) == hr.metadata.generation
}
