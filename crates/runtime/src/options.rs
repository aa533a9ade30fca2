//! Command-line flags every Flux controller accepts, with Flux's names and
//! defaults, so existing Deployment manifests keep working.

use std::net::SocketAddr;
use std::time::Duration;

use crate::Error;

/// Flags shared by all controllers (flatten into each controller's own flags).
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerOptions {
    /// The address the metric endpoint binds to.
    #[arg(long, default_value = ":8080", env = "METRICS_ADDR")]
    pub metrics_addr: String,

    /// The address the health endpoint binds to.
    #[arg(long, default_value = ":9440")]
    pub health_addr: String,

    /// Enable leader election, ensuring only one active controller.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub enable_leader_election: bool,

    /// How long candidates wait before taking a lease the leader stopped renewing.
    #[arg(long, default_value = "35s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,

    /// How long the leader keeps failing to renew its lease before it stops leading.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub leader_election_renew_deadline: Duration,

    /// How often the leader renews its lease.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub leader_election_retry_period: Duration,

    /// Hand the lease back on shutdown, so the next leader need not wait for it to expire.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub leader_election_release_on_cancel: bool,

    /// Accepted with no effect: Flux caches cloud workload-identity tokens, and
    /// ferroflux refuses cloud providers (their objects are Stalled).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub token_cache_max_duration: Duration,

    /// Accepted with no effect, as `--token-cache-max-duration`.
    #[arg(long, default_value_t = 100)]
    pub token_cache_max_size: u32,

    /// Watch for resources in all namespaces; when false, only the runtime namespace.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub watch_all_namespaces: bool,

    /// Only reconcile objects matching this label selector (sharding).
    #[arg(long, default_value = "")]
    pub watch_label_selector: String,

    /// The interval at which failing dependencies are reevaluated.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub requeue_dependency: Duration,

    /// Refuse references to objects in other namespaces.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,

    /// Percentage of random jitter added to requeue intervals.
    #[arg(long, default_value_t = 5)]
    pub interval_jitter_percentage: u8,

    /// Log verbosity: debug, info or error.
    #[arg(long, default_value = "info")]
    pub log_level: String,

    /// Log encoding: json or console.
    #[arg(long, default_value = "json")]
    pub log_encoding: String,

    /// notification-controller's event endpoint: every event is also POSTed there in Flux's
    /// wire format (empty: Kubernetes events only).
    #[arg(long, default_value = "")]
    pub events_addr: String,

    /// Feature gates, as `Name=true,Other=false`.
    #[arg(long, default_value = "")]
    pub feature_gates: String,

    /// The most requests per second the controller sends to the Kubernetes API, on average
    /// (0: client-go's default of 5; negative: no limit).
    #[arg(long, default_value_t = 50.0)]
    pub kube_api_qps: f32,

    /// The most requests the controller sends to the Kubernetes API at once before
    /// `--kube-api-qps` paces it.
    #[arg(long, default_value_t = 300)]
    pub kube_api_burst: u32,

    /// The shortest delay before retrying a failed reconciliation.
    #[arg(long, default_value = "750ms", value_parser = parse_duration)]
    pub min_retry_delay: Duration,

    /// The longest delay before retrying a failed reconciliation.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    pub max_retry_delay: Duration,

    /// How long in-flight reconciliations may run after a shutdown signal
    /// before the process exits anyway.
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    pub graceful_shutdown_timeout: Duration,
}

/// Flux's SSH algorithm flags, for the controllers that speak Git over SSH
/// (source- and image-automation-controller).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SshAlgorithmOptions {
    /// The host key algorithms the Git server's key may use (comma-separated
    /// OpenSSH names; empty: ssh's defaults).
    #[arg(long, value_delimiter = ',')]
    pub ssh_hostkey_algos: Vec<String>,

    /// The key exchange algorithms Git over SSH may use (comma-separated
    /// OpenSSH names; empty: ssh's defaults).
    #[arg(long, value_delimiter = ',')]
    pub ssh_kex_algos: Vec<String>,
}

impl SshAlgorithmOptions {
    /// The start-up error for values the Git client refused (`reason`).
    pub fn invalid(&self, reason: impl std::fmt::Display) -> Error {
        Error::InvalidFlag {
            flag: "--ssh-hostkey-algos/--ssh-kex-algos",
            value: format!(
                "{}/{}",
                self.ssh_hostkey_algos.join(","),
                self.ssh_kex_algos.join(",")
            ),
            reason: reason.to_string(),
        }
    }
}

impl ControllerOptions {
    /// The metrics listen address.
    pub fn metrics_socket(&self) -> Result<SocketAddr, Error> {
        parse_listen_addr(&self.metrics_addr)
    }

    /// The health listen address.
    pub fn health_socket(&self) -> Result<SocketAddr, Error> {
        parse_listen_addr(&self.health_addr)
    }

    /// The leader-election settings, checked as client-go checks them.
    pub fn lease_timing(&self) -> Result<crate::leader::LeaseTiming, Error> {
        crate::leader::LeaseTiming::new(
            self.leader_election_lease_duration,
            self.leader_election_renew_deadline,
            self.leader_election_retry_period,
            self.leader_election_release_on_cancel,
        )
    }

    /// The namespace the controller runs in (`RUNTIME_NAMESPACE`), used for the
    /// lease and when not watching all namespaces.
    pub fn runtime_namespace() -> String {
        std::env::var("RUNTIME_NAMESPACE").unwrap_or_else(|_| "flux-system".to_string())
    }

    /// The `--feature-gates` value checked against the gates a controller
    /// knows: an unknown gate or a value that is not a boolean is an error,
    /// as in Flux, rather than silently ignored.
    pub fn feature_gates(&self, known: &[FeatureGate]) -> Result<FeatureGates, Error> {
        FeatureGates::parse(&self.feature_gates, known)
    }
}

/// What is wrong with a controller's flags against Flux's: each flag of
/// `flux_flags` (lines `--name type [default …]`, as in `flux-flags/*.txt`)
/// that `command` does not accept, or that `readme` does not list as
/// `` `--name` ``. Empty when the controller is a drop-in for them.
pub fn flux_flag_problems(command: &clap::Command, flux_flags: &str, readme: &str) -> Vec<String> {
    let accepted: Vec<&str> = command
        .get_arguments()
        .flat_map(|arg| {
            arg.get_long()
                .into_iter()
                .chain(arg.get_all_aliases().into_iter().flatten())
        })
        .collect();
    flux_flags
        .lines()
        .filter_map(|line| line.split_whitespace().next()?.strip_prefix("--"))
        .flat_map(|name| {
            let mut problems = Vec::new();
            if !accepted.contains(&name) {
                problems.push(format!("--{name} is not accepted"));
            }
            if !readme.contains(&format!("`--{name}`")) {
                problems.push(format!("--{name} is missing from the README's flag table"));
            }
            problems
        })
        .collect()
}

/// The unit test that keeps a controller a drop-in for Flux's flags: its
/// `Flags` accept every flag of the Flux lists named (files of
/// `crates/runtime/flux-flags/`) and its README's table lists each one.
#[macro_export]
macro_rules! flux_flags_test {
    ($flags:ty, $($list:literal),+ $(,)?) => {
        #[test]
        fn every_flux_flag_is_accepted_and_documented() {
            let command = <$flags as clap::CommandFactory>::command();
            let readme = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"));
            let mut problems = Vec::new();
            $(
                problems.extend($crate::options::flux_flag_problems(
                    &command,
                    include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/../runtime/flux-flags/",
                        $list
                    )),
                    readme,
                ));
            )+
            assert!(problems.is_empty(), "{problems:#?}");
        }
    };
}

/// A feature gate a controller knows, with its default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeatureGate {
    /// The gate's name, as Flux spells it (`DetectDrift`).
    pub name: &'static str,
    /// Whether it is on when `--feature-gates` does not name it.
    pub default: bool,
    /// Whether ferroflux implements both settings; a gate that is not
    /// accepts only its default, so a manifest that sets the other is
    /// refused rather than silently run without the feature.
    pub switchable: bool,
}

impl FeatureGate {
    /// A gate that is off unless turned on.
    pub const fn off(name: &'static str) -> Self {
        Self {
            name,
            default: false,
            switchable: true,
        }
    }

    /// A gate that is on unless turned off.
    pub const fn on(name: &'static str) -> Self {
        Self {
            name,
            default: true,
            switchable: true,
        }
    }

    /// A gate of Flux's whose non-default setting ferroflux does not
    /// implement: accepted at `default`, refused otherwise.
    pub const fn fixed(name: &'static str, default: bool) -> Self {
        Self {
            name,
            default,
            switchable: false,
        }
    }
}

/// The feature gates in force: each known gate's default, overridden by
/// `--feature-gates=Name=true,Other=false` (the last mention of a gate wins,
/// as with pflag's mapStringBool).
#[derive(Clone, Debug, Default)]
pub struct FeatureGates {
    values: Vec<(&'static str, bool)>,
}

impl FeatureGates {
    /// Parses a `--feature-gates` value against the `known` gates.
    pub fn parse(text: &str, known: &[FeatureGate]) -> Result<Self, Error> {
        let mut values: Vec<(&'static str, bool)> =
            known.iter().map(|gate| (gate.name, gate.default)).collect();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let invalid = |reason: String| Error::InvalidFlag {
                flag: "--feature-gates",
                value: text.to_string(),
                reason,
            };
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| invalid(format!("'{pair}' is not Name=true|false")))?;
            let name = name.trim();
            let value = parse_go_bool(value.trim())
                .ok_or_else(|| invalid(format!("'{value}' for {name} is not a boolean")))?;
            if !known.iter().any(|gate| gate.name == name) {
                return Err(invalid(format!("feature-gate '{name}' not supported")));
            }
            if let Some(slot) = values.iter_mut().find(|(known, _)| *known == name) {
                slot.1 = value;
            }
        }
        let refused = known
            .iter()
            .find(|g| !g.switchable && values.contains(&(g.name, !g.default)));
        if let Some(gate) = refused {
            return Err(Error::InvalidFlag {
                flag: "--feature-gates",
                value: text.to_string(),
                reason: format!(
                    "feature-gate '{}={}' is not implemented by ferroflux; remove it or set it to {}",
                    gate.name, !gate.default, gate.default
                ),
            });
        }
        Ok(Self { values })
    }

    /// Whether `gate` is on. A gate the controller did not declare is off.
    pub fn enabled(&self, gate: &str) -> bool {
        self.values
            .iter()
            .any(|(name, value)| *name == gate && *value)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// Parses a Go-style listen address: `:8080` means all interfaces.
pub fn parse_listen_addr(addr: &str) -> Result<SocketAddr, Error> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    full.parse().map_err(|_| Error::InvalidFlag {
        flag: "address",
        value: addr.to_string(),
        reason: "expected host:port or :port".into(),
    })
}

/// Parses a Go duration (`30s`, `1m30s`, `500ms`, `1h`) as Flux flags and specs use.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let parsed: kube::core::Duration = text
        .parse()
        .map_err(|e| format!("invalid duration {text:?}: {e}"))?;
    if parsed.is_negative() {
        return Err(format!("invalid duration {text:?}: negative"));
    }
    Ok(Duration::from(parsed))
}

/// `interval` plus or minus up to `percent`% of random jitter, so many objects
/// created together do not all requeue in the same instant.
pub fn jittered(interval: Duration, percent: u8) -> Duration {
    if percent == 0 || interval.is_zero() {
        return interval;
    }
    let spread = interval.as_secs_f64() * f64::from(percent.min(100)) / 100.0;
    let offset = (rand::random::<f64>() * 2.0 - 1.0) * spread;
    Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.0))
}

/// The API of kind `K` in the watched namespace, or across all namespaces
/// (`--watch-all-namespaces`).
pub fn namespaced_or_all<K>(client: &kube::Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        common: ControllerOptions,
    }

    #[test]
    fn flux_defaults() {
        let flags = Flags::parse_from(["ctl"]);
        assert_eq!(
            flags.common.metrics_socket().ok(),
            "0.0.0.0:8080".parse().ok()
        );
        assert_eq!(flags.common.requeue_dependency, Duration::from_secs(30));
        assert!(flags.common.watch_all_namespaces);
        assert!(!flags.common.no_cross_namespace_refs);
    }

    #[test]
    fn go_style_flags() {
        let flags = Flags::parse_from([
            "ctl",
            "--watch-all-namespaces=false",
            "--requeue-dependency=5s",
            "--metrics-addr=127.0.0.1:9000",
            "--feature-gates=DetectDrift=true,OOMWatch=false",
            "--enable-leader-election",
            "--no-cross-namespace-refs=true",
            "--kube-api-qps=-1",
        ]);
        assert!(flags.common.kube_api_qps < 0.0);
        assert!(flags.common.enable_leader_election);
        assert!(flags.common.no_cross_namespace_refs);
        assert!(!flags.common.watch_all_namespaces);
        assert_eq!(flags.common.requeue_dependency, Duration::from_secs(5));
        assert_eq!(
            flags.common.metrics_socket().ok(),
            "127.0.0.1:9000".parse().ok()
        );
        let gates = flags
            .common
            .feature_gates(&[FeatureGate::off("DetectDrift"), FeatureGate::on("OOMWatch")])
            .expect("known gates");
        assert!(gates.enabled("DetectDrift"));
        assert!(!gates.enabled("OOMWatch"));
        assert_eq!(flags.common.min_retry_delay, Duration::from_millis(750));
        assert_eq!(
            flags.common.graceful_shutdown_timeout,
            Duration::from_secs(600)
        );
    }

    #[test]
    fn feature_gates_refuse_what_they_do_not_know() {
        let known = [FeatureGate::on("Strict"), FeatureGate::off("Drift")];
        let gates = FeatureGates::parse("", &known).expect("defaults");
        assert!(gates.enabled("Strict") && !gates.enabled("Drift"));
        let gates = FeatureGates::parse("Drift=true, Strict=false,Drift=False", &known)
            .expect("last mention wins");
        assert!(!gates.enabled("Strict") && !gates.enabled("Drift"));
        assert!(
            FeatureGates::parse("Drift=1", &known)
                .expect("go bool")
                .enabled("Drift")
        );
        let unknown = FeatureGates::parse("Drift=true,Nope=true", &known).expect_err("unknown");
        assert!(
            unknown
                .to_string()
                .contains("feature-gate 'Nope' not supported"),
            "{unknown}"
        );
        assert!(FeatureGates::parse("Drift=yes", &known).is_err());
        let fixed = [FeatureGate::fixed("OOMWatch", false)];
        assert!(
            !FeatureGates::parse("OOMWatch=false", &fixed)
                .expect("default")
                .enabled("OOMWatch")
        );
        let refused = FeatureGates::parse("OOMWatch=true", &fixed).expect_err("not implemented");
        assert!(
            refused
                .to_string()
                .contains("'OOMWatch=true' is not implemented"),
            "{refused}"
        );
        assert!(FeatureGates::parse("Drift", &known).is_err());
    }

    #[test]
    fn durations_and_jitter() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("-5s").is_err());
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(100), 5);
            assert!(
                d >= Duration::from_secs(95) && d <= Duration::from_secs(105),
                "{d:?}"
            );
        }
        assert_eq!(
            jittered(Duration::from_secs(10), 0),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn bad_listen_address() {
        assert!(parse_listen_addr("nonsense").is_err());
    }
}
