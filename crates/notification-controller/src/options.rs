//! Command-line flags: Flux's notification-controller flags, named and
//! defaulted as Flux's.
//!
//! `--events-addr` is a common flag of every controller (where they post
//! their events); here, as in Flux, it is the address the event server
//! listens on, so its default is `:9090` rather than empty.

use std::time::Duration;

use runtime::options::{ControllerOptions, FeatureGate, parse_duration};

/// Feature gates of Flux's notification-controller, with their defaults.
/// Neither is implemented, so each is accepted only at its default.
pub const FEATURE_GATES: &[FeatureGate] = &[
    // Secrets are read from the API server for every event, never cached.
    FeatureGate::fixed("CacheSecretsAndConfigMaps", false),
    // Provider `serviceAccountName` (workload identity) is refused.
    FeatureGate::fixed("ObjectLevelWorkloadIdentity", false),
];

/// Flux's `--events-addr` default for notification-controller.
pub const DEFAULT_EVENTS_ADDR: &str = ":9090";

/// The flags of notification-controller.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "notification-controller",
    version,
    about = "Forwards Flux events to Providers through Alerts and turns webhooks into reconcile requests through Receivers",
    mut_arg("events_addr", |arg| arg
        .default_value(DEFAULT_EVENTS_ADDR)
        .help("The address the event endpoint binds to."))
)]
pub struct Flags {
    /// Common controller flags.
    #[command(flatten)]
    pub common: ControllerOptions,

    /// The number of concurrent notification reconciles.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,

    /// Leader election lease name.
    #[arg(long, default_value = "notification-controller-leader-election")]
    pub leader_election_id: String,

    /// The address the webhook receiver endpoint binds to.
    #[arg(
        long = "receiverAddr",
        alias = "receiver-addr",
        default_value = ":9292"
    )]
    pub receiver_addr: String,

    /// Interval in which rate limit has effect: an identical event (same
    /// object, message, revision and token) is accepted once per interval.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub rate_limit_interval: Duration,

    /// When enabled, the requests' full path is the `handler` label of the
    /// HTTP server metrics (a risk of high cardinality).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub export_http_path_metrics: bool,

    /// Secrets matching this selector trigger the Receivers that use them.
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,

    /// Accepted with no effect: the ServiceAccount used for workload
    /// identity, which ferroflux refuses (Provider `serviceAccountName`).
    #[arg(long, default_value = "")]
    pub default_service_account: String,
}

runtime::controller_flags!(Flags);

impl Flags {
    /// The address the event server listens on (`--events-addr`).
    pub fn events_addr(&self) -> &str {
        if self.common.events_addr.is_empty() {
            DEFAULT_EVENTS_ADDR
        } else {
            &self.common.events_addr
        }
    }

    /// Refuses flag values ferroflux would otherwise ignore.
    pub fn check_supported(&self) -> Result<(), String> {
        if self.rate_limit_interval.is_zero() {
            return Err(
                "--rate-limit-interval must be positive (Flux's default is 5m0s)".to_string(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    runtime::flux_flags_test!(Flags, "notification-controller.txt");
    use clap::Parser;

    #[test]
    fn flux_defaults() {
        let flags = Flags::parse_from(["notification-controller"]);
        assert_eq!(flags.events_addr(), ":9090");
        assert_eq!(flags.common.events_addr, ":9090");
        assert_eq!(flags.receiver_addr, ":9292");
        assert_eq!(flags.rate_limit_interval, Duration::from_secs(300));
        assert_eq!(flags.concurrent, 4);
        assert!(!flags.export_http_path_metrics);
        assert_eq!(
            flags.watch_configs_label_selector,
            "reconcile.fluxcd.io/watch=Enabled"
        );
        assert!(flags.check_supported().is_ok());
    }

    #[test]
    fn flux_deployment_arguments() {
        // The arguments of Flux's notification-controller Deployment.
        let flags = Flags::parse_from([
            "notification-controller",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--events-addr=:9091",
            "--receiverAddr=:9393",
            "--rate-limit-interval=1m30s",
            "--export-http-path-metrics=true",
            "--leader-election-lease-duration=35s",
            "--leader-election-release-on-cancel=true",
            "--token-cache-max-size=10",
            "--feature-gates=CacheSecretsAndConfigMaps=false",
        ]);
        assert_eq!(flags.events_addr(), ":9091");
        assert_eq!(flags.receiver_addr, ":9393");
        assert_eq!(flags.rate_limit_interval, Duration::from_secs(90));
        assert!(flags.export_http_path_metrics);
        assert!(flags.check_supported().is_ok());
        assert!(flags.common.feature_gates(FEATURE_GATES).is_ok());
    }

    #[test]
    fn unsupported_settings_are_refused() {
        let flags = Flags::parse_from(["x", "--rate-limit-interval=0s"]);
        assert!(flags.check_supported().is_err());
        let flags = Flags::parse_from(["x", "--feature-gates=ObjectLevelWorkloadIdentity=true"]);
        let err = flags
            .common
            .feature_gates(FEATURE_GATES)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ObjectLevelWorkloadIdentity"), "{err}");
    }
}
