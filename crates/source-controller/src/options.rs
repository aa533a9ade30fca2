//! Command-line flags of source-controller, named and defaulted as Flux's.

use std::time::Duration;

use runtime::options::{ControllerOptions, parse_duration};

/// source-controller's flags: the common controller flags plus storage,
/// retention and concurrency settings.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "source-controller",
    version,
    about = "Reconciles Flux sources into artifacts served over HTTP"
)]
pub struct Flags {
    /// Common controller flags.
    #[command(flatten)]
    pub common: ControllerOptions,

    /// The local storage path.
    #[arg(long, default_value = "/data", env = "STORAGE_PATH")]
    pub storage_path: String,

    /// The address the static file server binds to.
    #[arg(long, default_value = ":9090", env = "STORAGE_ADDRESS")]
    pub storage_addr: String,

    /// The advertised address of the static file server.
    #[arg(long, default_value = "", env = "STORAGE_ADV_ADDRESS")]
    pub storage_adv_addr: String,

    /// The duration superseded artifacts are kept before being garbage collected.
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub artifact_retention_ttl: Duration,

    /// The maximum number of artifacts kept per object after garbage collection.
    #[arg(long, default_value_t = 2)]
    pub artifact_retention_records: usize,

    /// The algorithm of artifact digests and of the revisions Flux computes as
    /// digests (Bucket, HelmRepository): sha256, sha384, sha512 or blake3.
    #[arg(long, default_value = "sha256")]
    pub artifact_digest_algo: String,

    /// The maximum total size in bytes of the files of one artifact; 0 means unlimited.
    #[arg(long, default_value_t = 0)]
    pub artifact_max_size: u64,

    /// The number of concurrent reconciles per kind.
    #[arg(long, default_value_t = 2)]
    pub concurrent: u16,

    /// The maximum size in bytes of a Helm repository index.
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    pub helm_index_max_size: u64,

    /// The maximum size in bytes of a Helm chart.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub helm_chart_max_size: u64,

    /// The maximum size in bytes of one file in a Helm chart.
    #[arg(long, default_value_t = 5 * 1024 * 1024)]
    pub helm_chart_file_max_size: u64,

    /// Leader election lease name.
    #[arg(long, default_value = "source-controller-leader-election")]
    pub leader_election_id: String,

    /// Flux's `--ssh-hostkey-algos` and `--ssh-kex-algos`.
    #[command(flatten)]
    pub ssh: runtime::options::SshAlgorithmOptions,

    /// Accepted with no effect: the ServiceAccount for cloud workload
    /// identity, and ferroflux refuses cloud providers (Stalled).
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// How many parsed Helm repository indexes are kept in memory for
    /// HelmCharts (0: none).
    #[arg(long, default_value_t = 0)]
    pub helm_cache_max_size: i64,

    /// How long a cached index is kept after its last use.
    #[arg(long, default_value = "15m")]
    pub helm_cache_ttl: String,

    /// How often expired indexes are dropped from the cache.
    #[arg(long, default_value = "1m")]
    pub helm_cache_purge_interval: String,

    /// Accepted with no effect: a change to a Secret or ConfigMap a source
    /// uses is picked up at the source's next interval, not at once.
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,
}

runtime::controller_flags!(Flags);

impl Flags {
    /// The per-artifact size cap, if any.
    pub fn artifact_size_limit(&self) -> Option<u64> {
        (self.artifact_max_size > 0).then_some(self.artifact_max_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    runtime::flux_flags_test!(Flags, "source-controller.txt");
    use clap::Parser;

    #[test]
    fn flux_defaults() {
        let flags = Flags::parse_from(["source-controller"]);
        assert_eq!(flags.storage_path, "/data");
        assert_eq!(flags.storage_addr, ":9090");
        assert_eq!(flags.artifact_retention_ttl, Duration::from_secs(60));
        assert_eq!(flags.artifact_retention_records, 2);
        assert_eq!(flags.concurrent, 2);
        assert_eq!(flags.common.requeue_dependency, Duration::from_secs(30));
        assert_eq!(flags.artifact_size_limit(), None);
    }

    #[test]
    fn flux_deployment_arguments_parse() {
        let flags = Flags::parse_from([
            "source-controller",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            "--storage-adv-addr=source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.",
            "--artifact-retention-ttl=5m",
            "--concurrent=10",
        ]);
        assert!(flags.common.enable_leader_election);
        assert_eq!(flags.concurrent, 10);
        assert_eq!(flags.artifact_retention_ttl, Duration::from_secs(300));
    }
}
