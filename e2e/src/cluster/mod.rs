//! A real Kubernetes control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager built from their Go modules ([`crate::gobuild`]),
//! with the workspace's CRDs installed.
//!
//! Tests call [`shared`]: once per test binary it either connects to the
//! control plane named by `$FERROFLUX_KUBECONFIG` (say the one
//! `cargo xtask cluster up` runs, so that all test binaries share it) or
//! starts its own, which dies with the test binary. `cargo xtask cluster`
//! runs the same control plane as long-lived processes ([`detached`]).
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let cluster = e2e::cluster::shared().await?;
//! let namespace = cluster.test_namespace("my-test").await?;
//! let client = cluster.client().await?;
//! // … create objects in namespace.name() …
//! # Ok(()) }
//! ```

pub(crate) mod control_plane;
mod crds;
pub mod detached;
mod kubeconfig;
mod pki;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use tokio::sync::OnceCell;

pub(crate) use control_plane::Layout;
pub use control_plane::{Component, Ports};
pub use crds::{install_crds, is_established, read_crds, workspace_crds_dir};
pub use kubeconfig::load as load_kubeconfig;
pub(crate) use pki::NODE_NAME;

use control_plane::{ControlPlane, Supervision, is_ready};

/// Names the kubeconfig of an already running control plane for the tests to use.
pub const KUBECONFIG_ENV: &str = "FERROFLUX_KUBECONFIG";

/// The label every [`TestNamespace`] carries, valued with the test's prefix.
pub const TEST_NAMESPACE_LABEL: &str = "e2e.ferroflux.dev/test";

/// A control plane the tests can talk to.
#[derive(Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    config: kube::Config,
    /// The processes, when this test binary started them; `None` when reusing
    /// a control plane started elsewhere.
    control_plane: Option<ControlPlane>,
    /// The directory of a [`Cluster::start_dedicated`] control plane, removed
    /// on drop (declared after `control_plane` so the processes stop first).
    _dedicated_dir: Option<tempfile::TempDir>,
}

/// The control plane shared by all tests of this test binary.
///
/// The first caller connects or starts it (other callers wait); a failure is
/// remembered and returned to every later caller instead of retrying.
pub async fn shared() -> Result<&'static Cluster> {
    static SHARED: OnceCell<std::result::Result<Cluster, String>> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async { Cluster::for_tests().await.map_err(|err| format!("{err:#}")) })
        .await
        .as_ref()
        .map_err(|err| anyhow!("the test control plane is unavailable: {err}"))
}

impl Cluster {
    /// Connects to `$FERROFLUX_KUBECONFIG` if set, else starts a control plane
    /// tied to this process; installs the workspace's CRDs either way.
    async fn for_tests() -> Result<Self> {
        let cluster = match std::env::var_os(KUBECONFIG_ENV) {
            Some(path) if !path.is_empty() => Self::connect(Path::new(&path))
                .await
                .with_context(|| format!("{KUBECONFIG_ENV}={}", path.to_string_lossy()))?,
            _ => Self::start_tied().await?,
        };
        let client = cluster.client().await?;
        install_crds(&client, &workspace_crds_dir()).await?;
        Ok(cluster)
    }

    /// Uses the running control plane described by the kubeconfig at `path`.
    pub async fn connect(path: &Path) -> Result<Self> {
        let config = kubeconfig::load(path).await?;
        let client = kube::Client::try_from(config.clone())?;
        let ready = tokio::time::timeout(Duration::from_secs(10), is_ready(&client)).await;
        if !matches!(ready, Ok(true)) {
            bail!(
                "the control plane at {} is not ready (is it running? `cargo xtask cluster status`)",
                config.cluster_url
            );
        }
        Ok(Self {
            kubeconfig: path.to_path_buf(),
            config,
            control_plane: None,
            _dedicated_dir: None,
        })
    }

    /// Starts a control plane whose processes die with this process, in a
    /// per-process directory under the system temp dir.
    async fn start_tied() -> Result<Self> {
        let binaries = tokio::task::spawn_blocking(crate::gobuild::control_plane_binaries)
            .await
            .context("the Go build task panicked")??;
        remove_dead_test_dirs();
        let run_dir = std::env::temp_dir().join(format!("{TEST_DIR_PREFIX}{}", std::process::id()));
        if run_dir.exists() {
            std::fs::remove_dir_all(&run_dir)
                .with_context(|| format!("removing {}", run_dir.display()))?;
        }
        let layout = Layout {
            log_dir: run_dir.join("logs"),
            kubeconfig: run_dir.join("kubeconfig"),
            run_dir,
        };
        let ports = Ports::free()?;
        let control_plane =
            ControlPlane::start(&binaries, &layout, ports, Supervision::Tied, None).await?;
        let config = kubeconfig::load(&layout.kubeconfig).await?;
        Ok(Self {
            kubeconfig: layout.kubeconfig,
            config,
            control_plane: Some(control_plane),
            _dedicated_dir: None,
        })
    }

    /// Starts a control plane of the caller's own, with the workspace's CRDs:
    /// for a test that disturbs it (say [`Cluster::restart_apiserver`]) and
    /// must not share it, or for a demo that must leave nothing behind. Its
    /// processes die with this process or when the value is dropped, and its
    /// directory (under the system temp dir) is removed on drop.
    pub async fn start_dedicated() -> Result<Self> {
        Self::start_dedicated_for(None).await
    }

    /// [`Cluster::start_dedicated`], ready for a worker node at `node_ip`
    /// when given (see [`crate::node`]).
    pub(crate) async fn start_dedicated_for(node_ip: Option<std::net::Ipv4Addr>) -> Result<Self> {
        let binaries = tokio::task::spawn_blocking(crate::gobuild::control_plane_binaries)
            .await
            .context("the Go build task panicked")??;
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-dedicated-cluster-")
            .tempdir()
            .context("creating the control plane's directory")?;
        let layout = Layout {
            log_dir: dir.path().join("logs"),
            kubeconfig: dir.path().join("kubeconfig"),
            run_dir: dir.path().join("run"),
        };
        let ports = Ports::free()?;
        let control_plane =
            ControlPlane::start(&binaries, &layout, ports, Supervision::Tied, node_ip).await?;
        let config = kubeconfig::load(&layout.kubeconfig).await?;
        let cluster = Self {
            kubeconfig: layout.kubeconfig,
            config,
            control_plane: Some(control_plane),
            _dedicated_dir: Some(dir),
        };
        install_crds(&cluster.client().await?, &workspace_crds_dir()).await?;
        Ok(cluster)
    }

    /// Kills kube-apiserver and starts it again (same flags, certificates and
    /// etcd data), returning once it is ready. Only for a control plane this
    /// process started; never do it to [`shared`], which other tests use.
    pub async fn restart_apiserver(&mut self) -> Result<()> {
        let client = self.client().await?;
        let plane = self.control_plane.as_mut().context(
            "this control plane was started elsewhere; it cannot be restarted from here",
        )?;
        plane.restart_apiserver(&client).await
    }

    /// The directory holding the logs of each component (`<name>.log`), when
    /// this process started the control plane.
    pub fn log_dir(&self) -> Option<PathBuf> {
        self.control_plane
            .as_ref()
            .map(|_| self.kubeconfig.with_file_name("logs"))
    }

    /// The directory holding the certificates and the node components'
    /// kubeconfigs, when this process started the control plane.
    pub(crate) fn layout(&self) -> Option<&Layout> {
        self.control_plane.as_ref().map(|plane| plane.layout())
    }

    /// The admin kubeconfig (CA and client credentials embedded).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Name and pid of each process, when this test binary started them.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.control_plane
            .iter()
            .flat_map(|plane| &plane.services)
            .map(|service| (service.name().to_string(), service.pid()))
            .collect()
    }

    /// The apiserver's URL.
    pub fn url(&self) -> String {
        self.config.cluster_url.to_string()
    }

    /// The client configuration (admin identity).
    pub fn config(&self) -> &kube::Config {
        &self.config
    }

    /// A new admin client. Made per call because a client belongs to the tokio
    /// runtime that created it, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Result<kube::Client> {
        kube::Client::try_from(self.config.clone()).context("building a kube client")
    }

    /// Creates a fresh namespace `<prefix>-<random>`, deleted (best-effort)
    /// when the returned value is dropped.
    pub async fn test_namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let client = self.client().await?;
        let api: Api<Namespace> = Api::all(client);
        let prefix = namespace_prefix(prefix);
        let name = format!("{prefix}-{}", random_suffix());
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some([(TEST_NAMESPACE_LABEL.to_string(), prefix.clone())].into()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        api.create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("creating test namespace {name}"))?;
        Ok(TestNamespace {
            name,
            config: self.config.clone(),
            deleted: false,
        })
    }
}

/// Temp-dir entries of tied control planes: `ferroflux-cluster-<pid>`.
const TEST_DIR_PREFIX: &str = "ferroflux-cluster-";

/// Removes the directories of tied control planes whose test binary is gone
/// (their processes died with it; the files stay behind).
fn remove_dead_test_dirs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(TEST_DIR_PREFIX))
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !detached::pid_alive(pid) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A namespace for one test. Dropping it deletes the namespace without waiting
/// for it to finalise; [`TestNamespace::delete`] does the same explicitly.
#[derive(Debug)]
pub struct TestNamespace {
    name: String,
    config: kube::Config,
    deleted: bool,
}

impl TestNamespace {
    /// The namespace's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now, reporting failures.
    pub async fn delete(mut self) -> Result<()> {
        self.deleted = true;
        delete_namespace(self.config.clone(), &self.name).await
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        // Drop cannot await, and the test's runtime may be shutting down: use a
        // short-lived runtime on a separate thread.
        let config = self.config.clone();
        let name = self.name.clone();
        let deleter = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let _ = runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), delete_namespace(config, &name)).await
            });
        });
        let _ = deleter.join();
    }
}

async fn delete_namespace(config: kube::Config, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(kube::Client::try_from(config)?);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err).with_context(|| format!("deleting test namespace {name}")),
    }
}

/// A DNS-1123 label prefix from a test name: lowercase alphanumerics and `-`,
/// at most 50 characters, never empty.
fn namespace_prefix(prefix: &str) -> String {
    let mut out: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out.truncate(50);
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "test".to_string()
    } else {
        out
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .filter(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        .take(6)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_prefixes_are_valid_labels() {
        assert_eq!(namespace_prefix("My_Test::case"), "my-test--case");
        assert_eq!(namespace_prefix("__"), "test");
        assert_eq!(namespace_prefix(&"a".repeat(80)).len(), 50);
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 6);
        assert!(
            suffix
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }
}
