//! Command-line flags of kustomize-controller, named and defaulted as Flux's.

use std::time::Duration;

use runtime::options::{ControllerOptions, parse_duration};

/// Feature gate: undefined post-build variables without default are errors.
pub const STRICT_POST_BUILD_SUBSTITUTIONS: &str = "StrictPostBuildSubstitutions";
/// Feature gate: keep waiting for health after an object failed.
pub const DISABLE_FAIL_FAST_BEHAVIOR: &str = "DisableFailFastBehavior";
/// Feature gate: ExternalArtifact sources may be used.
pub const EXTERNAL_ARTIFACT: &str = "ExternalArtifact";

/// kustomize-controller's flags: the common controller flags plus apply,
/// decryption and download settings.
#[derive(clap::Parser, Debug, Clone)]
#[command(
    name = "kustomize-controller",
    version,
    about = "Builds Flux Kustomizations from source artifacts and applies them to the cluster"
)]
pub struct Flags {
    /// Common controller flags.
    #[command(flatten)]
    pub common: ControllerOptions,

    /// The number of concurrent Kustomization reconciles.
    #[arg(long, default_value_t = 4)]
    pub concurrent: u16,

    /// The number of concurrent server-side apply operations per reconcile.
    #[arg(long, default_value_t = 4)]
    pub concurrent_ssa: u16,

    /// Disallow remote bases (Git URLs and HTTP files) in kustomizations.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_remote_bases: bool,

    /// The maximum number of retries when downloading an artifact.
    #[arg(long, default_value_t = 9)]
    pub http_retry: u32,

    /// Default service account to impersonate when a Kustomization names none.
    #[arg(long, default_value = "")]
    pub default_service_account: String,

    /// `namespace/name` of a Secret with age keys used when a Kustomization
    /// has `decryption` without `secretRef`.
    #[arg(long, default_value = "")]
    pub sops_age_secret: String,

    /// Accepted with no effect: the ServiceAccount for cloud KMS workload
    /// identity in decryption, and ferroflux decrypts age (and PGP) keys only;
    /// a file encrypted only for a cloud KMS fails naming the key.
    #[arg(long, default_value = "")]
    pub default_decryption_service_account: String,

    /// Accepted with no effect: HashiCorp Vault settings for SOPS, and
    /// ferroflux has no Vault client; a file encrypted only for Vault fails
    /// naming the Vault address.
    #[arg(long, default_value = "")]
    pub sops_vault_configmap: String,

    /// Field managers whose fields are taken over on apply (repeatable).
    #[arg(long = "override-manager")]
    pub override_managers: Vec<String>,

    /// Kinds applied in a stage of their own before the rest (`Kind` or `Kind.group`).
    #[arg(long, value_delimiter = ',')]
    pub custom_apply_stage_kinds: Vec<String>,

    /// ConfigMaps and Secrets matching this selector trigger the
    /// reconciliation of the Kustomizations using them (`postBuild.substituteFrom`,
    /// `decryption.secretRef`).
    #[arg(long, default_value = "reconcile.fluxcd.io/watch=Enabled")]
    pub watch_configs_label_selector: String,

    /// `--insecure-kubeconfig-exec`, `--insecure-kubeconfig-tls` and
    /// `--default-kubeconfig-service-account` (`spec.kubeConfig`).
    #[command(flatten)]
    pub remote_clusters: runtime::remote_cluster::KubeConfigFlags,

    /// Leader election lease name.
    #[arg(long, default_value = "kustomize-controller-leader-election")]
    pub leader_election_id: String,

    /// Timeout of one artifact download attempt.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub http_timeout: Duration,
}

runtime::controller_flags!(Flags);

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    runtime::flux_flags_test!(Flags, "kustomize-controller.txt");

    #[test]
    fn defaults_match_flux() {
        let flags = Flags::parse_from(["kustomize-controller"]);
        assert_eq!(flags.concurrent, 4);
        assert_eq!(flags.concurrent_ssa, 4);
        assert_eq!(flags.http_retry, 9);
        let gates = flags
            .common
            .feature_gates(crate::manager::FEATURE_GATES)
            .expect("gates");
        assert!(gates.enabled(STRICT_POST_BUILD_SUBSTITUTIONS));
        assert!(!gates.enabled(DISABLE_FAIL_FAST_BEHAVIOR));
        assert_eq!(flags.common.requeue_dependency, Duration::from_secs(30));
    }

    #[test]
    fn gates_and_lists_parse() {
        let flags = Flags::parse_from([
            "kustomize-controller",
            "--feature-gates=StrictPostBuildSubstitutions=false,DisableFailFastBehavior=true",
            "--override-manager=helm",
            "--override-manager=kubectl-edit",
            "--custom-apply-stage-kinds=Issuer.cert-manager.io,ClusterIssuer",
            "--default-service-account=default",
            "--no-cross-namespace-refs=true",
            "--insecure-kubeconfig-exec",
            "--default-kubeconfig-service-account=tenant",
        ]);
        let gates = flags
            .common
            .feature_gates(crate::manager::FEATURE_GATES)
            .expect("gates");
        assert!(!gates.enabled(STRICT_POST_BUILD_SUBSTITUTIONS));
        assert!(gates.enabled(DISABLE_FAIL_FAST_BEHAVIOR));
        assert_eq!(flags.override_managers, ["helm", "kubectl-edit"]);
        assert_eq!(
            flags.custom_apply_stage_kinds,
            ["Issuer.cert-manager.io", "ClusterIssuer"]
        );
        assert!(flags.common.no_cross_namespace_refs);
        let policy = flags.remote_clusters.policy();
        assert!(policy.allow_exec && !policy.allow_insecure_tls);
        assert_eq!(policy.default_service_account.as_deref(), Some("tenant"));
    }
}
