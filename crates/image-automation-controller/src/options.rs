//! Command-line flags: those of Flux's image-reflector-controller and
//! image-automation-controller together (one binary runs both sets of
//! loops), named and defaulted as Flux's.

use runtime::options::{ControllerOptions, FeatureGate};

/// Feature gate: force-push the push branch (Flux's default).
pub const GIT_FORCE_PUSH_BRANCH: &str = "GitForcePushBranch";
/// Feature gate: clone only the checkout commit (Flux's default).
pub const GIT_SHALLOW_CLONE: &str = "GitShallowClone";

/// Feature gates of both Flux controllers, with their defaults.
pub const FEATURE_GATES: &[FeatureGate] = &[
    FeatureGate::on(GIT_FORCE_PUSH_BRANCH),
    FeatureGate::on(GIT_SHALLOW_CLONE),
    // Only the push branch and the checkout reference are fetched; every
    // other branch is never needed by the update itself.
    FeatureGate::fixed("GitAllBranchReferences", true),
    FeatureGate::fixed("CacheSecretsAndConfigMaps", false),
    FeatureGate::fixed("ObjectLevelWorkloadIdentity", false),
];

/// The flags of image-automation-controller.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "image-automation-controller",
    version,
    about = "Scans image registries, selects tags by policy and writes them back to Git"
)]
pub struct Flags {
    /// Common controller flags.
    #[command(flatten)]
    pub common: ControllerOptions,

    /// The number of concurrent reconciles per kind.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,

    /// Leader election lease name.
    #[arg(long, default_value = "image-automation-controller-leader-election")]
    pub leader_election_id: String,

    /// Where the scanned tags of each ImageRepository are kept.
    #[arg(long, default_value = "/data", env = "STORAGE_PATH")]
    pub storage_path: String,

    /// Tag lists of at least this many KiB are stored gzip-compressed.
    #[arg(long, default_value_t = 64)]
    pub storage_compression_threshold: u64,

    /// Accepted with no effect: the size of Flux's Badger value log files.
    /// ferroflux keeps tags in plain files (Flux's filesystem storage), which
    /// have no value log.
    #[arg(long, default_value_t = 268_435_456)]
    pub storage_value_log_file_size: i64,

    /// Accepted with no effect: minutes between Badger garbage collections;
    /// the file storage replaces a list of tags in one atomic rename and
    /// leaves nothing to collect.
    #[arg(long, default_value_t = 10)]
    pub gc_interval: u16,

    /// Accepted with no effect while cloud providers are refused (the
    /// service account used for workload identity).
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// Secrets matching this selector trigger the ImageRepositories and
    /// ImageUpdateAutomations that use them.
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,

    /// Flux's `--ssh-hostkey-algos` and `--ssh-kex-algos`.
    #[command(flatten)]
    pub ssh: runtime::options::SshAlgorithmOptions,
}

runtime::controller_flags!(Flags);

impl Flags {
    /// The compression threshold in bytes.
    pub fn compression_threshold(&self) -> usize {
        usize::try_from(self.storage_compression_threshold.saturating_mul(1024))
            .unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    runtime::flux_flags_test!(
        Flags,
        "image-reflector-controller.txt",
        "image-automation-controller.txt"
    );
    use clap::Parser;

    #[test]
    fn flux_defaults_and_deployment_arguments() {
        let flags = Flags::parse_from(["image-automation-controller"]);
        assert_eq!(flags.storage_path, "/data");
        assert_eq!(flags.concurrent, 4);
        assert_eq!(flags.compression_threshold(), 64 * 1024);

        // The arguments of Flux's image-reflector-controller and
        // image-automation-controller Deployments.
        let flags = Flags::parse_from([
            "image-automation-controller",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            "--storage-value-log-file-size=268435456",
            "--gc-interval=10",
        ]);
        assert!(flags.common.enable_leader_election);
    }

    #[test]
    fn ssh_algorithms_are_lists() {
        let flags = Flags::parse_from([
            "x",
            "--ssh-kex-algos=curve25519-sha256,ecdh-sha2-nistp256",
            "--ssh-hostkey-algos=ssh-ed25519",
        ]);
        assert_eq!(
            flags.ssh.ssh_kex_algos,
            ["curve25519-sha256", "ecdh-sha2-nistp256"]
        );
        assert_eq!(flags.ssh.ssh_hostkey_algos, ["ssh-ed25519"]);
    }
}
