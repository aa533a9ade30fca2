//! `cargo xtask cluster`: the local control plane.

#[derive(clap::Subcommand)]
pub enum Action {
    /// Build (once) and start etcd, kube-apiserver and kube-controller-manager; install the CRDs.
    Up,
    /// Stop every process `up` started.
    Down,
    /// Say whether the control plane is running and where.
    Status,
    /// Print the environment to use it (`export KUBECONFIG=…`).
    Env,
}

pub fn run(_action: Action) -> anyhow::Result<()> {
    anyhow::bail!("not written yet")
}
