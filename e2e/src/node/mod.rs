//! A real worker node for the local control plane, opt-in: Debian's
//! containerd and runc, CNI from Debian's containernetworking-plugins (bridge,
//! host-local, portmap, loopback), and the kubelet, kube-proxy (iptables
//! mode), kube-scheduler and CoreDNS built from their Go modules
//! ([`crate::gobuild::node_binaries`]).
//!
//! Nothing is pulled from outside: the node has a registry of its own
//! (Debian's `docker-registry`, plain HTTP on loopback, which containerd is
//! told to use over HTTP); the sandbox (pause) image and the test web image are
//! static Go programs of the harness pushed there (`images`).
//!
//! CoreDNS runs as a process on the host, answering for `cluster.local` from
//! the API; the `kube-dns` Service (`10.0.0.10`, the kubelet's cluster DNS)
//! points at it through an EndpointSlice, so Pods resolve
//! `<service>.<namespace>.svc.cluster.local` like in any cluster.
//!
//! One node per machine (a machine-wide lock): the bridge, the cgroup root and
//! the iptables chains are the machine's. Everything the node adds outside its
//! directory is undone when it stops, and before a node starts, over the
//! remains of one whose process was killed (`sweep`).
//!
//! These machines have cgroup v1 and lack `CAP_SYS_RESOURCE`, so the kubelet
//! runs with `failCgroupV1: false` and containerd with
//! `restrict_oom_score_adj` (a Pod sandbox asks for `oom_score_adj` -998, which
//! only that capability may set).

pub(crate) mod images;
mod sweep;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::{Node as KubeNode, Pod, Service as KubeService};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use tokio::sync::OnceCell;

use crate::cluster::{Cluster, Layout, NODE_NAME};
use crate::gobuild::NodeBinaries;
use crate::process::{self, Service};
use crate::registry::Registry;
use crate::{packages, paths};

/// The Pods' network (one /24 on the node's bridge).
pub const POD_CIDR: &str = "10.244.0.0/24";

/// The cluster DNS Service's address (in the control plane's service range).
pub const CLUSTER_DNS_IP: &str = "10.0.0.10";

/// The CNI network's name (it appears in the CNI plugins' iptables comments).
const CNI_NETWORK: &str = "ferroflux-pods";

/// The port CoreDNS listens on at the node's address: not 53, which a
/// resolver of the machine may hold; the `kube-dns` Service maps 53 to it.
const COREDNS_PORT: u16 = 1053;

const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);
const SOCKET_TIMEOUT: Duration = Duration::from_secs(30);

/// A control plane with a worker node.
#[derive(Debug)]
pub struct NodeCluster {
    // Declared first: the node stops before the control plane.
    node: Node,
    cluster: Cluster,
}

/// The node cluster shared by the tests of one test binary, started on first
/// use and stopped (leaving nothing behind) when the test binary exits.
pub async fn shared_with_node() -> Result<&'static NodeCluster> {
    static SHARED: OnceCell<std::result::Result<NodeCluster, String>> = OnceCell::const_new();
    SHARED
        .get_or_init(|| async {
            let started = NodeCluster::start().await.map_err(|err| format!("{err:#}"));
            if let Ok(node_cluster) = &started {
                let dirs = node_cluster
                    .cluster
                    .kubeconfig_path()
                    .parent()
                    .map(Path::to_path_buf)
                    .into_iter()
                    .chain([node_cluster.node.registry.state_dir().to_path_buf()])
                    .collect();
                let _ = SHARED_DIRS.set(dirs);
                register_exit_teardown();
            }
            started
        })
        .await
        .as_ref()
        .map_err(|err| anyhow!("the node cluster is unavailable: {err}"))
}

/// The shared node cluster's control-plane and registry directories,
/// removed at exit (dropping would have removed them).
static SHARED_DIRS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Statics are never dropped: the shared node is torn down by an `atexit`
/// handler, which the test harness's `exit` runs while the node's processes
/// (killed by the kernel only once this process is gone) still live.
#[allow(unsafe_code)]
fn register_exit_teardown() {
    extern "C" fn teardown() {
        let root = node_root();
        if let Err(err) = teardown_node(&root, None) {
            eprintln!("node teardown: {err:#}");
        }
        for dir in SHARED_DIRS.get().into_iter().flatten() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    // SAFETY: registers a plain function; it runs once, at exit.
    unsafe { libc::atexit(teardown) };
}

impl NodeCluster {
    /// Starts a dedicated control plane and a node joined to it; both stop
    /// when the value is dropped (or the process dies).
    pub async fn start() -> Result<Self> {
        let started = Instant::now();
        tokio::task::spawn_blocking(packages::ensure_node_packages)
            .await
            .context("the package install task panicked")??;
        let binaries = tokio::task::spawn_blocking(crate::gobuild::node_binaries)
            .await
            .context("the Go build task panicked")??;
        let lock = tokio::task::spawn_blocking(|| paths::lock("node"))
            .await
            .context("the lock task panicked")?
            .context("locking the node (one per machine)")?;
        let root = node_root();
        // A node whose process was killed left its remains here.
        sweep::sweep(&root)?;
        let node_ip = node_ip()?;
        let cluster = Cluster::start_dedicated_for(Some(node_ip)).await?;
        let node = Node::start(&cluster, &binaries, node_ip, root, lock).await?;
        eprintln!(
            "node {NODE_NAME} ready at {node_ip} in {:.1?}",
            started.elapsed()
        );
        Ok(Self { node, cluster })
    }

    /// The control plane.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The registry the node pulls from: images pushed here run as
    /// `<registry.host()>/<repo>:<tag>`.
    pub fn registry(&self) -> &Registry {
        &self.node.registry
    }

    /// The test web image (`web serve ADDR`, `web check TARGET…`, see
    /// `e2e/programs/web.go`).
    pub fn web_image(&self) -> &str {
        &self.node.web_image
    }

    /// The directory of the node's logs (containerd, kubelet, kube-proxy,
    /// kube-scheduler, coredns).
    pub fn log_dir(&self) -> PathBuf {
        self.node.root.join("logs")
    }
}

/// Where the node keeps everything: fixed, as there is one node per machine.
fn node_root() -> PathBuf {
    std::env::temp_dir().join("ferroflux-node")
}

/// The machine's primary IPv4 address (the source of its default route):
/// the kubelet's node address, where Pods reach the apiserver and CoreDNS.
fn node_ip() -> Result<Ipv4Addr> {
    let output = process::run(Command::new("ip").args(["-4", "route", "get", "192.0.2.255"]))
        .or_else(|_| process::run(Command::new("ip").args(["-4", "route", "get", "1.1.1.1"])))
        .context("finding the machine's primary IPv4 address (`ip -4 route get`)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .windows(2)
        .find(|pair| pair[0] == "src")
        .and_then(|pair| pair[1].parse().ok())
        .filter(|ip: &Ipv4Addr| !ip.is_loopback())
        .with_context(|| {
            format!(
                "no non-loopback source address in `ip -4 route get`: {}; the node needs one \
                 for Pods to reach the apiserver",
                text.trim()
            )
        })
}

#[derive(Debug)]
struct Node {
    root: PathBuf,
    /// kube-scheduler, containerd, kubelet, kube-proxy, coredns.
    services: Vec<Service>,
    registry: Registry,
    web_image: String,
    kube_proxy: PathBuf,
    config: kube::Config,
    _lock: std::fs::File,
}

impl Drop for Node {
    fn drop(&mut self) {
        let config = self.config.clone();
        // Processes first (kubelet before containerd), then the sweep.
        let mut services = std::mem::take(&mut self.services);
        if let Err(err) = teardown_with(&self.root, Some(config), &mut services, &self.kube_proxy) {
            eprintln!("node teardown: {err:#}");
        }
    }
}

/// The shared node's teardown at exit, from the node's directory alone.
fn teardown_node(root: &Path, config: Option<kube::Config>) -> Result<()> {
    let kube_proxy = crate::gobuild::binary_path("kube-proxy", crate::gobuild::KUBERNETES_VERSION);
    teardown_with(root, config, &mut Vec::new(), &kube_proxy)
}

/// Deletes the node's Pods through the API when `config` is given (so the
/// kubelet tears their sandboxes and networks down as it would in any
/// cluster), stops the processes, lets kube-proxy remove its rules, and
/// sweeps whatever is left.
fn teardown_with(
    root: &Path,
    config: Option<kube::Config>,
    services: &mut [Service],
    kube_proxy: &Path,
) -> Result<()> {
    if let Some(config) = config {
        let ipam = root.join("ipam").join(CNI_NETWORK);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(40), delete_pods(config, &ipam)).await
            })??;
            anyhow::Ok(())
        })
        .join();
    }
    for service in services.iter_mut().rev() {
        let _ = service.terminate(Duration::from_secs(10));
    }
    // At exit the processes still run: stop them before kube-proxy's
    // cleanup, or it would put its rules back.
    sweep::kill_node_processes(root);
    if kube_proxy.is_file() {
        let _ = Command::new(kube_proxy)
            .arg("--cleanup")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
    sweep::sweep(root)
}

/// Deletes every Pod bound to the node at once and waits until the CNI IPAM
/// has released every address (each sandbox is torn down).
async fn delete_pods(config: kube::Config, ipam: &Path) -> Result<()> {
    let client = kube::Client::try_from(config)?;
    let pods: Api<Pod> = Api::all(client.clone());
    let on_node = ListParams::default().fields(&format!("spec.nodeName={NODE_NAME}"));
    for pod in pods.list(&on_node).await?.items {
        let (Some(name), Some(namespace)) = (pod.metadata.name, pod.metadata.namespace) else {
            continue;
        };
        let _ = Api::<Pod>::namespaced(client.clone(), &namespace)
            .delete(&name, &DeleteParams::default().grace_period(0))
            .await;
    }
    loop {
        let held = std::fs::read_dir(ipam)
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|entry| {
                        entry
                            .file_name()
                            .to_string_lossy()
                            .parse::<Ipv4Addr>()
                            .is_ok()
                    })
                    .count()
            })
            .unwrap_or(0);
        if held == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl Node {
    async fn start(
        cluster: &Cluster,
        binaries: &NodeBinaries,
        node_ip: Ipv4Addr,
        root: PathBuf,
        lock: std::fs::File,
    ) -> Result<Self> {
        let layout = cluster
            .layout()
            .context("a node joins only a control plane this process started")?
            .clone();
        sweep::Baseline::record().save(&root)?;
        let registry = tokio::task::spawn_blocking(|| Registry::start_with(false, false))
            .await
            .context("the registry task panicked")??;
        let mut node = Self {
            root,
            services: Vec::new(),
            registry,
            web_image: String::new(),
            kube_proxy: binaries.kube_proxy.clone(),
            config: cluster.config().clone(),
            _lock: lock,
        };
        // On failure, dropping `node` tears down what was started.
        node.start_components(cluster, binaries, &layout, node_ip)
            .await?;
        Ok(node)
    }

    async fn start_components(
        &mut self,
        cluster: &Cluster,
        binaries: &NodeBinaries,
        layout: &Layout,
        node_ip: Ipv4Addr,
    ) -> Result<()> {
        let (pause, web) = {
            let registry = &self.registry;
            std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        Ok::<_, anyhow::Error>((
                            images::push_program(registry, "pause", images::PAUSE_SOURCE)?,
                            images::push_program(registry, "web", images::WEB_SOURCE)?,
                        ))
                    })
                    .join()
                    .map_err(|_| anyhow!("the image build panicked"))?
            })?
        };
        self.web_image = web;
        let root = self.root.clone();
        let logs = root.join("logs");
        ensure_cgroup_root()?;
        // Copies in the node's directory, so that the teardown at exit
        // recognises every node process by its arguments.
        for component in ["kubelet", "kube-proxy", "kube-scheduler"] {
            std::fs::create_dir_all(&root)?;
            std::fs::copy(
                layout.node_kubeconfig(component),
                root.join(format!("{component}.kubeconfig")),
            )
            .with_context(|| format!("copying the {component} kubeconfig"))?;
        }

        // containerd
        let containerd_dir = root.join("containerd");
        let socket = containerd_dir.join("containerd.sock");
        write_file(
            &containerd_dir.join("config.toml"),
            &containerd_config(&root, &socket, &pause),
        )?;
        write_file(
            &containerd_dir
                .join("certs.d")
                .join(self.registry.host())
                .join("hosts.toml"),
            &registry_hosts(&self.registry.host()),
        )?;
        write_file(
            &root.join("cni").join("10-ferroflux.conflist"),
            &cni_conflist(&root),
        )?;
        let mut containerd = Command::new("containerd");
        containerd
            .arg("--config")
            .arg(containerd_dir.join("config.toml"));
        self.launch("containerd", containerd, &logs)?;
        self.wait("containerd's socket", SOCKET_TIMEOUT, async || {
            socket.exists()
        })
        .await?;

        // kube-scheduler: Pods of Deployments need binding to the node.
        let scheduler_port = paths::free_port()?;
        let mut scheduler = Command::new(&binaries.kube_scheduler);
        scheduler.args([
            format!(
                "--kubeconfig={}",
                root.join("kube-scheduler.kubeconfig").display()
            ),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={scheduler_port}"),
            "--leader-elect=false".to_string(),
        ]);
        self.launch("kube-scheduler", scheduler, &logs)?;

        // kubelet
        let kubelet_dir = root.join("kubelet");
        let kubelet_config = kubelet_dir.join("config.yaml");
        write_file(
            &kubelet_config,
            &kubelet_config_yaml(
                &root,
                &socket,
                &layout.ca_cert(),
                paths::free_port()?,
                paths::free_port()?,
            ),
        )?;
        let mut kubelet = Command::new(&binaries.kubelet);
        kubelet.args([
            format!("--kubeconfig={}", root.join("kubelet.kubeconfig").display()),
            format!("--config={}", kubelet_config.display()),
            format!("--root-dir={}", kubelet_dir.join("root").display()),
            format!("--cert-dir={}", kubelet_dir.join("pki").display()),
            format!("--hostname-override={NODE_NAME}"),
            format!("--node-ip={node_ip}"),
        ]);
        self.launch("kubelet", kubelet, &logs)?;
        let nodes: Api<KubeNode> = Api::all(cluster.client().await?);
        self.wait("the node to be Ready", NODE_READY_TIMEOUT, async || {
            nodes
                .get_opt(NODE_NAME)
                .await
                .ok()
                .flatten()
                .is_some_and(|node| node_ready(&node))
        })
        .await?;

        // kube-proxy
        let mut kube_proxy = Command::new(&binaries.kube_proxy);
        kube_proxy.args([
            format!(
                "--kubeconfig={}",
                root.join("kube-proxy.kubeconfig").display()
            ),
            "--proxy-mode=iptables".to_string(),
            format!("--cluster-cidr={POD_CIDR}"),
            format!("--hostname-override={NODE_NAME}"),
            // Leave the machine's conntrack sysctls alone.
            "--conntrack-max-per-core=0".to_string(),
            "--conntrack-tcp-timeout-established=0".to_string(),
            "--conntrack-tcp-timeout-close-wait=0".to_string(),
            format!("--healthz-bind-address=127.0.0.1:{}", paths::free_port()?),
            format!("--metrics-bind-address=127.0.0.1:{}", paths::free_port()?),
            format!("--nodeport-addresses={node_ip}/32"),
        ]);
        self.launch("kube-proxy", kube_proxy, &logs)?;

        // CoreDNS, and the kube-dns Service pointing at it.
        let corefile = root.join("coredns").join("Corefile");
        write_file(
            &corefile,
            &corefile_text(node_ip, cluster.kubeconfig_path()),
        )?;
        let mut coredns = Command::new(&binaries.coredns);
        coredns.arg("-conf").arg(&corefile);
        self.launch("coredns", coredns, &logs)?;
        create_dns_service(&cluster.client().await?, node_ip).await?;
        self.wait("CoreDNS to listen", SOCKET_TIMEOUT, async || {
            std::net::TcpStream::connect_timeout(
                &(node_ip, COREDNS_PORT).into(),
                Duration::from_millis(200),
            )
            .is_ok()
        })
        .await?;
        Ok(())
    }

    fn launch(&mut self, name: &str, cmd: Command, logs: &Path) -> Result<()> {
        let service = process::start(name, cmd, &logs.join(format!("{name}.log")))?;
        self.services.push(service);
        Ok(())
    }

    /// Polls `ready`, failing early when one of the node's processes exits
    /// (the control plane's wait, over the node's processes).
    async fn wait(
        &mut self,
        what: &str,
        timeout: Duration,
        ready: impl AsyncFnMut() -> bool,
    ) -> Result<()> {
        crate::cluster::control_plane::wait_until(&mut self.services, what, timeout, ready).await
    }
}

fn node_ready(node: &KubeNode) -> bool {
    node.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Creates the kubelet's cgroup root in every cgroup v1 hierarchy (the
/// kubelet refuses a root that does not exist); a cpuset cgroup starts with
/// no CPUs or memory nodes, so those are copied from the parent.
fn ensure_cgroup_root() -> Result<()> {
    for entry in std::fs::read_dir("/sys/fs/cgroup").context("reading /sys/fs/cgroup")? {
        let hierarchy = entry?.path();
        if !hierarchy.join("cgroup.procs").exists() {
            continue;
        }
        let dir = hierarchy.join(sweep::CGROUP_ROOT);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for file in ["cpuset.cpus", "cpuset.mems"] {
            if let Ok(value) = std::fs::read_to_string(hierarchy.join(file)) {
                std::fs::write(dir.join(file), value.trim())
                    .with_context(|| format!("writing {}", dir.join(file).display()))?;
            }
        }
    }
    Ok(())
}

/// containerd's configuration (version 2, containerd 1.6): everything under
/// the node's directory, runc with the cgroupfs driver, the sandbox image
/// from the node's registry, CNI from Debian's plugins.
fn containerd_config(root: &Path, socket: &Path, pause_image: &str) -> String {
    let dir = root.join("containerd");
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # The sandbox asks for oom_score_adj -998; lowering it needs
  # CAP_SYS_RESOURCE, which these machines do not grant.
  restrict_oom_score_adj = true
  # Network namespaces under the state directory, not /var/run/netns.
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = true

  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "{runc_root}"

  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{cni}"

  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
        root = dir.join("root").display(),
        state = dir.join("state").display(),
        socket = socket.display(),
        opt = dir.join("opt").display(),
        runc_root = dir.join("runc").display(),
        cni = root.join("cni").display(),
        certs = dir.join("certs.d").display(),
    )
}

/// The node's registry, reached over plain HTTP.
fn registry_hosts(host: &str) -> String {
    format!(
        "server = \"http://{host}\"\n\n[host.\"http://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
    )
}

/// A bridge with NAT to the outside, addresses from host-local, host ports
/// through portmap, and the Pod's loopback.
fn cni_conflist(root: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": sweep::BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": POD_CIDR }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": root.join("ipam").to_string_lossy(),
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true } },
            { "type": "loopback" },
        ],
    })
    .to_string()
}

/// The kubelet's configuration: cgroupfs under its own cgroup root, clients
/// authenticated by the cluster CA (the apiserver, for logs and exec), the
/// cluster DNS, no eviction by this shared machine's disk or memory levels.
fn kubelet_config_yaml(
    root: &Path,
    socket: &Path,
    ca_cert: &Path,
    port: u16,
    healthz_port: u16,
) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /{cgroup_root}
containerRuntimeEndpoint: unix://{socket}
port: {port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: {healthz_port}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: false}}
  x509: {{clientCAFile: "{ca}"}}
authorization: {{mode: AlwaysAllow}}
clusterDNS: [{CLUSTER_DNS_IP}]
clusterDomain: cluster.local
podLogsDir: {pod_logs}
failSwapOn: false
evictionHard: {{memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
"#,
        cgroup_root = sweep::CGROUP_ROOT,
        socket = socket.display(),
        ca = ca_cert.display(),
        pod_logs = root.join("pod-logs").display(),
    )
}

/// CoreDNS on the node's address: `cluster.local` from the API, everything
/// else forwarded to the machine's resolvers.
fn corefile_text(node_ip: Ipv4Addr, kubeconfig: &Path) -> String {
    format!(
        ".:{COREDNS_PORT} {{\n    bind {node_ip}\n    errors\n    health 127.0.0.1:0\n    \
         kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        kubeconfig {kubeconfig}\n        \
         pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n    }}\n    \
         forward . /etc/resolv.conf\n    cache 5\n}}\n",
        kubeconfig = kubeconfig.display(),
    )
}

/// `kube-system/kube-dns` at [`CLUSTER_DNS_IP`], port 53 (UDP and TCP) mapped
/// to CoreDNS on the host through a hand-made EndpointSlice (no selector).
async fn create_dns_service(client: &kube::Client, node_ip: Ipv4Addr) -> Result<()> {
    let services: Api<KubeService> = Api::namespaced(client.clone(), "kube-system");
    let service: KubeService = serde_json::from_value(serde_json::json!({
        "metadata": { "name": "kube-dns", "labels": { "k8s-app": "kube-dns" } },
        "spec": {
            "clusterIP": CLUSTER_DNS_IP,
            "ports": [
                { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": COREDNS_PORT },
                { "name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": COREDNS_PORT },
            ],
        },
    }))?;
    services
        .create(&PostParams::default(), &service)
        .await
        .context("creating the kube-dns Service")?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": "kube-dns-coredns",
            "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": "e2e.ferroflux.dev",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{ "addresses": [node_ip.to_string()], "conditions": { "ready": true } }],
        "ports": [
            { "name": "dns", "port": COREDNS_PORT, "protocol": "UDP" },
            { "name": "dns-tcp", "port": COREDNS_PORT, "protocol": "TCP" },
        ],
    }))?;
    slices
        .create(&PostParams::default(), &slice)
        .await
        .context("creating the kube-dns EndpointSlice")?;
    Ok(())
}
