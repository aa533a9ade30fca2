//! Command-line flags of helm-controller, named and defaulted as Flux's,
//! plus where to find helm.

use std::path::PathBuf;
use std::time::Duration;

use runtime::options::{ControllerOptions, parse_duration};

/// helm-controller's flags.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "helm-controller",
    version,
    about = "Reconciles HelmReleases with the helm CLI"
)]
pub struct Flags {
    /// Common controller flags.
    #[command(flatten)]
    pub common: ControllerOptions,

    /// The number of concurrent HelmRelease reconciles.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,

    /// The helm binary (v4): a path, or a name looked up on PATH.
    #[arg(long, default_value = "helm", env = "HELM_PATH")]
    pub helm_path: PathBuf,

    /// Niceness added to helm processes (0 to 19; 0 runs helm at the
    /// controller's priority), so that the controller's own work is not
    /// queued behind several helm processes sharing its CPU.
    #[arg(long, default_value_t = crate::helm_cli::DEFAULT_HELM_NICENESS, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub helm_niceness: u8,

    /// Kubeconfig helm uses; in-cluster configuration when unset.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,

    /// Directory of the downloaded chart cache.
    #[arg(long, default_value_os_t = std::env::temp_dir().join("helm-controller-charts"))]
    pub chart_cache_dir: PathBuf,

    /// The ServiceAccount impersonated when a HelmRelease names none.
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// The number of retries of an artifact download.
    #[arg(long, default_value_t = 9)]
    pub http_retry: u32,

    /// The timeout of one artifact download.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub http_timeout: Duration,

    /// Digest algorithm of history snapshots (only sha256 is supported).
    #[arg(long, default_value = "sha256", value_parser = snapshot_digest_algo)]
    pub snapshot_digest_algo: String,

    /// ConfigMaps and Secrets matching this selector trigger the
    /// reconciliation of the HelmReleases taking values from them.
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,

    /// `--insecure-kubeconfig-exec`, `--insecure-kubeconfig-tls` and
    /// `--default-kubeconfig-service-account` (`spec.kubeConfig`).
    #[command(flatten)]
    pub remote_clusters: runtime::remote_cluster::KubeConfigFlags,

    /// Leader election lease name.
    #[arg(long, default_value = "helm-controller-leader-election")]
    pub leader_election_id: String,

    /// Field managers whose fields drift correction takes over (repeatable).
    #[arg(long = "override-manager")]
    pub override_managers: Vec<String>,

    /// How often memory is checked (`OOMWatch` gate). Like the three flags
    /// below it only works with the `OOMWatch` feature gate, which ferroflux
    /// refuses; accepted so Flux's manifests run unchanged.
    #[arg(long, default_value = "500ms", value_parser = runtime::options::parse_duration)]
    pub oom_watch_interval: Duration,

    /// Percentage of the memory limit at which releases are stopped (`OOMWatch` gate).
    #[arg(long, default_value_t = 95)]
    pub oom_watch_memory_threshold: u8,

    /// The cgroup file holding the memory limit (`OOMWatch` gate).
    #[arg(long, default_value = "")]
    pub oom_watch_max_memory_path: String,

    /// The cgroup file holding the current memory usage (`OOMWatch` gate).
    #[arg(long, default_value = "")]
    pub oom_watch_current_memory_path: String,
}

runtime::controller_flags!(Flags);

impl Flags {
    /// `--default-service-account`, if set.
    pub fn default_service_account(&self) -> Option<String> {
        (!self.default_service_account.is_empty()).then(|| self.default_service_account.clone())
    }
}

/// `--snapshot-digest-algo`: Flux's other algorithms (sha384, sha512,
/// blake3) would also change the config and post-renderer digests, which
/// ferroflux computes in sha256 only, so they are refused rather than
/// ignored. Snapshots Flux recorded in any of them are still verified, in
/// their own algorithm.
fn snapshot_digest_algo(value: &str) -> Result<String, String> {
    match value {
        "sha256" => Ok(value.to_string()),
        other => Err(format!(
            "unsupported digest algorithm '{other}': ferroflux records snapshots in sha256 only"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    runtime::flux_flags_test!(Flags, "helm-controller.txt");
    use clap::Parser;

    #[test]
    fn flux_defaults() {
        let flags = Flags::parse_from(["helm-controller"]);
        assert_eq!(flags.concurrent, 4);
        assert_eq!(flags.http_retry, 9);
        assert_eq!(
            flags.common.graceful_shutdown_timeout,
            Duration::from_secs(600)
        );
        assert_eq!(flags.common.requeue_dependency, Duration::from_secs(30));
        assert_eq!(flags.default_service_account(), None);
        assert_eq!(flags.snapshot_digest_algo, "sha256");
        let refused = Flags::try_parse_from(["helm-controller", "--snapshot-digest-algo=sha512"])
            .expect_err("only sha256 is recorded");
        assert!(refused.to_string().contains("sha256 only"), "{refused}");
    }

    #[test]
    fn flux_deployment_arguments_parse() {
        let flags = Flags::parse_from([
            "helm-controller",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--concurrent=10",
            "--feature-gates=DetectDrift=true",
            "--default-service-account=default",
        ]);
        assert!(flags.common.enable_leader_election);
        assert_eq!(flags.concurrent, 10);
        let gates = flags
            .common
            .feature_gates(crate::manager::FEATURE_GATES)
            .expect("gates");
        assert!(gates.enabled("DetectDrift"));
        assert_eq!(flags.default_service_account().as_deref(), Some("default"));
    }
}
