//! One control plane on loopback: etcd, kube-apiserver and
//! kube-controller-manager, with the flags, certificates and kubeconfigs both
//! the test harness and `cargo xtask cluster` use.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use serde::{Deserialize, Serialize};

use super::kubeconfig::{load, write_kubeconfig};
use super::pki::Pki;
use crate::gobuild::ControlPlaneBinaries;
use crate::process::{self, Service, port_open};

/// The service network; the apiserver takes its first address for `kubernetes`.
pub(crate) const SERVICE_CLUSTER_IP_RANGE: &str = "10.0.0.0/24";

const ETCD_TIMEOUT: Duration = Duration::from_secs(30);
const APISERVER_TIMEOUT: Duration = Duration::from_secs(90);
const CONTROLLER_MANAGER_TIMEOUT: Duration = Duration::from_secs(90);

/// The processes of a control plane, in start order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// etcd, the apiserver's store.
    Etcd,
    /// kube-apiserver.
    KubeApiserver,
    /// kube-controller-manager.
    KubeControllerManager,
}

impl Component {
    /// Every component, in start order.
    pub const ALL: [Component; 3] = [
        Component::Etcd,
        Component::KubeApiserver,
        Component::KubeControllerManager,
    ];

    /// The component's process (and binary) name.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::KubeApiserver => "kube-apiserver",
            Component::KubeControllerManager => "kube-controller-manager",
        }
    }

    pub(crate) fn binary(self, binaries: &ControlPlaneBinaries) -> &Path {
        match self {
            Component::Etcd => &binaries.etcd,
            Component::KubeApiserver => &binaries.kube_apiserver,
            Component::KubeControllerManager => &binaries.kube_controller_manager,
        }
    }
}

/// The loopback ports of one control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    /// etcd's client port (plain HTTP).
    pub etcd_client: u16,
    /// etcd's peer port (plain HTTP).
    pub etcd_peer: u16,
    /// kube-apiserver's secure (HTTPS) port.
    pub apiserver: u16,
    /// kube-controller-manager's secure (HTTPS) port.
    pub controller_manager: u16,
}

impl Ports {
    /// Four distinct ports that were free a moment ago.
    pub fn free() -> Result<Self> {
        // All four listeners are held at once so the kernel hands out distinct ports.
        let listeners = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("finding free loopback ports")?;
        let ports = listeners
            .iter()
            .map(|listener| listener.local_addr().map(|addr| addr.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            etcd_client: ports[0],
            etcd_peer: ports[1],
            apiserver: ports[2],
            controller_manager: ports[3],
        })
    }

    /// Each port with what listens there, for messages.
    pub fn named(&self) -> [(&'static str, u16); 4] {
        [
            ("etcd client", self.etcd_client),
            ("etcd peer", self.etcd_peer),
            ("kube-apiserver", self.apiserver),
            ("kube-controller-manager", self.controller_manager),
        ]
    }

    /// Fails naming the first port something already listens on.
    pub fn check_free(&self, remedy: &str) -> Result<()> {
        for (what, port) in self.named() {
            if port_open(port) || TcpListener::bind(("127.0.0.1", port)).is_err() {
                bail!(
                    "port {port} (for {what}) is already in use by another process; {remedy} \
                     (`ss -ltnp 'sport = :{port}'` shows who listens there)"
                );
            }
        }
        Ok(())
    }

    /// The apiserver's URL.
    pub fn apiserver_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.apiserver)
    }
}

/// Where one control plane keeps its files.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    /// Certificates, etcd data, pid files; removed when the control plane goes.
    pub(crate) run_dir: PathBuf,
    /// One log per component.
    pub(crate) log_dir: PathBuf,
    /// The admin kubeconfig.
    pub(crate) kubeconfig: PathBuf,
}

impl Layout {
    fn pki_dir(&self) -> PathBuf {
        self.run_dir.join("pki")
    }

    fn etcd_dir(&self) -> PathBuf {
        self.run_dir.join("etcd")
    }

    fn controller_manager_kubeconfig(&self) -> PathBuf {
        self.run_dir.join("controller-manager.kubeconfig")
    }

    /// The kubeconfig of a node component (`kubelet`, `kube-proxy`,
    /// `kube-scheduler`), written with the control plane's certificates.
    pub(crate) fn node_kubeconfig(&self, component: &str) -> PathBuf {
        self.run_dir.join(format!("{component}.kubeconfig"))
    }

    /// The cluster CA certificate (PEM), which the kubelet trusts clients by.
    pub(crate) fn ca_cert(&self) -> PathBuf {
        self.pki_dir().join("ca.crt")
    }

    pub(crate) fn pid_file(&self, component: Component) -> PathBuf {
        self.run_dir
            .join("pids")
            .join(format!("{}.pid", component.name()))
    }

    pub(crate) fn log(&self, component: Component) -> PathBuf {
        self.log_dir.join(format!("{}.log", component.name()))
    }
}

/// How started processes relate to the process that starts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Supervision {
    /// Killed when the starting process dies (test binaries).
    Tied,
    /// Long-lived, in their own session, tracked by pid files (`cargo xtask cluster up`).
    Detached,
}

/// A started and ready control plane.
#[derive(Debug)]
pub(crate) struct ControlPlane {
    /// etcd, kube-apiserver, kube-controller-manager.
    pub(crate) services: Vec<Service>,
    /// What [`ControlPlane::restart_apiserver`] needs to start it again.
    restart: ApiserverRestart,
}

/// The apiserver's command line and where it logs, kept to start it again.
#[derive(Debug)]
struct ApiserverRestart {
    program: std::ffi::OsString,
    args: Vec<std::ffi::OsString>,
    layout: Layout,
    supervision: Supervision,
}

impl ControlPlane {
    /// Generates certificates and kubeconfigs, starts the three components and
    /// waits until the apiserver is ready and kube-controller-manager runs its
    /// controllers. On failure every process started so far is killed.
    pub(crate) async fn start(
        binaries: &ControlPlaneBinaries,
        layout: &Layout,
        ports: Ports,
        supervision: Supervision,
        node_ip: Option<Ipv4Addr>,
    ) -> Result<Self> {
        let mut services = Vec::new();
        let plane = Plane {
            binaries,
            layout,
            ports,
            node_ip,
        };
        match start_components(&mut services, &plane, supervision).await {
            Ok(apiserver) => Ok(Self {
                services,
                restart: ApiserverRestart {
                    program: apiserver.get_program().to_owned(),
                    args: apiserver.get_args().map(ToOwned::to_owned).collect(),
                    layout: layout.clone(),
                    supervision,
                },
            }),
            Err(err) => {
                for service in services.iter_mut().rev() {
                    service.kill();
                }
                Err(err)
            }
        }
    }
}

/// What one control plane is made of.
struct Plane<'a> {
    binaries: &'a ControlPlaneBinaries,
    layout: &'a Layout,
    ports: Ports,
    /// Set when a worker node joins: Pods then reach the apiserver at this
    /// address (see [`apiserver_command`]).
    node_ip: Option<Ipv4Addr>,
}

async fn start_components(
    services: &mut Vec<Service>,
    plane: &Plane<'_>,
    supervision: Supervision,
) -> Result<Command> {
    let Plane {
        binaries,
        layout,
        ports,
        node_ip,
    } = *plane;
    for dir in [&layout.run_dir, &layout.log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let extra_names: Vec<String> = node_ip.iter().map(ToString::to_string).collect();
    let pki = Pki::generate(&layout.pki_dir(), &extra_names)?;
    let url = ports.apiserver_url();
    write_kubeconfig(&layout.kubeconfig, &url, &pki.ca_pem, &pki.admin)?;
    write_kubeconfig(
        &layout.controller_manager_kubeconfig(),
        &url,
        &pki.ca_pem,
        &pki.controller_manager,
    )?;
    for (component, identity) in [
        ("kube-scheduler", &pki.scheduler),
        ("kubelet", &pki.kubelet),
        ("kube-proxy", &pki.kube_proxy),
    ] {
        write_kubeconfig(
            &layout.node_kubeconfig(component),
            &url,
            &pki.ca_pem,
            identity,
        )?;
    }

    let started = Instant::now();
    services.push(launch(
        Component::Etcd,
        etcd_command(binaries, layout, ports),
        layout,
        supervision,
    )?);
    wait_until(services, "etcd", ETCD_TIMEOUT, async || {
        port_open(ports.etcd_client)
    })
    .await?;

    services.push(launch(
        Component::KubeApiserver,
        apiserver_command(plane, &pki),
        layout,
        supervision,
    )?);
    // Kept so the apiserver can be started again with the same flags.
    let apiserver = apiserver_command(plane, &pki);
    let client = kube::Client::try_from(load(&layout.kubeconfig).await?)
        .context("building a client for the new control plane")?;
    wait_until(
        services,
        "kube-apiserver /readyz",
        APISERVER_TIMEOUT,
        async || is_ready(&client).await,
    )
    .await?;

    services.push(launch(
        Component::KubeControllerManager,
        controller_manager_command(binaries, layout, ports, &pki),
        layout,
        supervision,
    )?);
    // The service-account controller creates `default` in every namespace, so
    // its appearance shows that the controllers run, not only that the process lives.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    wait_until(
        services,
        "kube-controller-manager (the default ServiceAccount)",
        CONTROLLER_MANAGER_TIMEOUT,
        async || matches!(accounts.get_opt("default").await, Ok(Some(_))),
    )
    .await?;
    eprintln!("control plane ready at {url} in {:.1?}", started.elapsed());
    Ok(apiserver)
}

impl ControlPlane {
    /// Where this control plane keeps its files.
    pub(crate) fn layout(&self) -> &Layout {
        &self.restart.layout
    }

    /// Kills kube-apiserver (SIGKILL, as a crash would) and starts it again
    /// with the same flags and certificates; etcd and kube-controller-manager
    /// keep running. Returns once /readyz answers `ok` again.
    pub(crate) async fn restart_apiserver(&mut self, client: &kube::Client) -> Result<()> {
        let index = Component::ALL
            .iter()
            .position(|&c| c == Component::KubeApiserver)
            .context("no apiserver component")?;
        let service = self
            .services
            .get_mut(index)
            .context("the apiserver was not started")?;
        service.kill();
        let mut cmd = Command::new(&self.restart.program);
        cmd.args(&self.restart.args);
        *service = launch(
            Component::KubeApiserver,
            cmd,
            &self.restart.layout,
            self.restart.supervision,
        )?;
        wait_until(
            &mut self.services,
            "restarted kube-apiserver /readyz",
            APISERVER_TIMEOUT,
            async || is_ready(client).await,
        )
        .await
    }
}

/// Whether the apiserver answers `ok` on /readyz.
pub(crate) async fn is_ready(client: &kube::Client) -> bool {
    let Ok(request) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    matches!(client.request_text(request).await, Ok(body) if body.trim() == "ok")
}

/// Polls `ready` until it returns true, failing early (with the log tail) when
/// one of `services` exits, or after `timeout` with the tail of the last
/// started service's log.
pub(crate) async fn wait_until(
    services: &mut [Service],
    what: &str,
    timeout: Duration,
    mut ready: impl AsyncFnMut() -> bool,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        for service in services.iter_mut() {
            service.check_running()?;
        }
        if ready().await {
            return Ok(());
        }
        if Instant::now() > deadline {
            let detail = services
                .last()
                .map(|service| {
                    format!(
                        "; last lines of {}:\n{}",
                        service.log_path().display(),
                        process::tail(service.log_path(), 30)
                    )
                })
                .unwrap_or_default();
            bail!("{what} not ready after {timeout:?}{detail}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn launch(
    component: Component,
    cmd: Command,
    layout: &Layout,
    supervision: Supervision,
) -> Result<Service> {
    let log = layout.log(component);
    match supervision {
        Supervision::Tied => process::start(component.name(), cmd, &log),
        Supervision::Detached => {
            let service = process::start_detached(component.name(), cmd, &log)?;
            let pid_file = layout.pid_file(component);
            if let Some(dir) = pid_file.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&pid_file, format!("{}\n", service.pid()))
                .with_context(|| format!("writing {}", pid_file.display()))?;
            Ok(service)
        }
    }
}

fn command(binary: &Path, args: Vec<String>) -> Command {
    let mut cmd = Command::new(binary);
    cmd.args(args);
    cmd
}

fn path_arg(flag: &str, path: &Path) -> String {
    format!("--{flag}={}", path.display())
}

fn etcd_command(binaries: &ControlPlaneBinaries, layout: &Layout, ports: Ports) -> Command {
    let client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    command(
        &binaries.etcd,
        vec![
            "--name=ferroflux".to_string(),
            path_arg("data-dir", &layout.etcd_dir()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=ferroflux={peer}"),
            // A throwaway single-member store: durability is not worth the fsync latency.
            "--unsafe-no-fsync=true".to_string(),
            "--log-level=warn".to_string(),
        ],
    )
}

fn apiserver_command(plane: &Plane<'_>, pki: &Pki) -> Command {
    let Plane {
        binaries,
        layout,
        ports,
        node_ip,
    } = *plane;
    let mut args = vec![
        format!("--etcd-servers=http://127.0.0.1:{}", ports.etcd_client),
        format!("--secure-port={}", ports.apiserver),
        path_arg("cert-dir", &layout.run_dir.join("apiserver-certs")),
        path_arg("tls-cert-file", &pki.serving_cert),
        path_arg("tls-private-key-file", &pki.serving_key),
        path_arg("client-ca-file", &pki.ca_cert),
        format!("--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}"),
        "--allow-privileged=true".to_string(),
        // Node: a kubelet reads only what its own Pods use.
        "--authorization-mode=Node,RBAC".to_string(),
        format!("--service-account-issuer={}", ports.apiserver_url()),
        path_arg("service-account-key-file", &pki.service_account_pub),
        path_arg("service-account-signing-key-file", &pki.service_account_key),
        // `kubectl logs` and `exec` go through the kubelet, which trusts the cluster CA.
        path_arg("kubelet-client-certificate", &pki.kubelet_client_cert),
        path_arg("kubelet-client-key", &pki.kubelet_client_key),
        "--profiling=false".to_string(),
    ];
    match node_ip {
        // Pods reach the apiserver through the `kubernetes` Service, whose
        // endpoint is the advertised address: listen there as well as on
        // loopback, and mount ServiceAccount tokens into Pods.
        Some(ip) => args.extend([
            "--bind-address=0.0.0.0".to_string(),
            format!("--advertise-address={ip}"),
        ]),
        None => args.extend([
            "--bind-address=127.0.0.1".to_string(),
            "--advertise-address=127.0.0.1".to_string(),
            // The endpoint reconciler refuses loopback addresses, and no Pod
            // could use the `kubernetes` Service's endpoints anyway.
            "--endpoint-reconciler-type=none".to_string(),
            // No kubelet mounts tokens; Pods need not wait for their ServiceAccount.
            "--disable-admission-plugins=ServiceAccount".to_string(),
        ]),
    }
    command(&binaries.kube_apiserver, args)
}

fn controller_manager_command(
    binaries: &ControlPlaneBinaries,
    layout: &Layout,
    ports: Ports,
    pki: &Pki,
) -> Command {
    let kubeconfig = layout.controller_manager_kubeconfig();
    command(
        &binaries.kube_controller_manager,
        vec![
            // No authentication/authorization kubeconfig: nothing calls this
            // process's own port, and delegated authentication would want the
            // front-proxy CA bundle the apiserver does not have.
            path_arg("kubeconfig", &kubeconfig),
            "--bind-address=127.0.0.1".to_string(),
            format!("--secure-port={}", ports.controller_manager),
            path_arg("cert-dir", &layout.run_dir.join("controller-manager-certs")),
            path_arg("service-account-private-key-file", &pki.service_account_key),
            path_arg("root-ca-file", &pki.ca_cert),
            path_arg("cluster-signing-cert-file", &pki.ca_cert),
            path_arg("cluster-signing-key-file", &pki.ca_key),
            "--use-service-account-credentials=false".to_string(),
            // One instance; a lease left by a killed predecessor would delay start by its duration.
            "--leader-elect=false".to_string(),
            "--controllers=*".to_string(),
            // client-go's default budget (20 requests/s, burst 30) caps the
            // Deployment and ReplicaSet controllers at a few Deployments per
            // second: at scale, health checks would measure that throttle
            // rather than the controllers under test.
            "--kube-api-qps=200".to_string(),
            "--kube-api-burst=400".to_string(),
            "--profiling=false".to_string(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_distinct() {
        let ports = Ports::free().unwrap();
        let mut all: Vec<u16> = ports.named().iter().map(|(_, port)| *port).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn a_listening_port_is_reported_by_name() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut ports = Ports::free().unwrap();
        ports.apiserver = listener.local_addr().unwrap().port();
        let err = ports.check_free("stop it").unwrap_err().to_string();
        assert!(err.contains("(for kube-apiserver)"), "{err}");
        assert!(err.contains("stop it"), "{err}");
    }
}
