//! Remote clusters: an object's `spec.kubeConfig` names a Secret holding a
//! kubeconfig, and the controller acts on that cluster (applies, prunes,
//! checks health, releases, garbage-collects) instead of its own. The
//! object, its sources and the Secret stay in the controller's cluster.
//!
//! A kubeconfig from a Secret is written by whoever may write Secrets in
//! the object's namespace, and it could run programs (`exec`,
//! `auth-provider`), skip TLS verification, or name files on the
//! controller's filesystem (the controller's own credentials among them).
//! The first two are refused unless `--insecure-kubeconfig-exec` /
//! `--insecure-kubeconfig-tls` allow them (Flux strips them silently; a
//! refusal says why the cluster cannot be reached); file references are
//! always refused.
//!
//! `spec.kubeConfig.configMapRef` (secret-less access through a cloud
//! provider's workload identity, whose ServiceAccount defaults to
//! `--default-kubeconfig-service-account`) is refused by name.

use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

use api::meta::KubeConfigReference;

/// Keys looked up in the Secret, in order, when `secretRef.key` is not set.
pub const DEFAULT_KEYS: [&str; 2] = ["value", "value.yaml"];

/// The remote-cluster flags of Flux's kustomize- and helm-controller
/// (flatten into a controller's flags).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeConfigFlags {
    /// Allow kubeconfigs of `spec.kubeConfig` to run credential plugins
    /// (`exec`, `auth-provider`).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub insecure_kubeconfig_exec: bool,

    /// Allow kubeconfigs of `spec.kubeConfig` to skip TLS verification.
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub insecure_kubeconfig_tls: bool,

    /// The ServiceAccount whose cloud identity `spec.kubeConfig.configMapRef`
    /// uses when its ConfigMap names none. ferroflux refuses
    /// `configMapRef` (Stalled, naming this flag), so the flag never
    /// changes where objects go.
    #[arg(long, default_value = "")]
    pub default_kubeconfig_service_account: String,
}

impl KubeConfigFlags {
    /// What kubeconfigs from Secrets may do, as these flags say.
    pub fn policy(&self) -> KubeConfigPolicy {
        KubeConfigPolicy {
            allow_exec: self.insecure_kubeconfig_exec,
            allow_insecure_tls: self.insecure_kubeconfig_tls,
            default_service_account: Some(self.default_kubeconfig_service_account.clone())
                .filter(|name| !name.is_empty()),
        }
    }
}

/// What kubeconfigs from Secrets may do (`--insecure-kubeconfig-*`).
#[derive(Clone, Debug, Default)]
pub struct KubeConfigPolicy {
    /// `--insecure-kubeconfig-exec`: allow `exec` and `auth-provider`.
    pub allow_exec: bool,
    /// `--insecure-kubeconfig-tls`: allow `insecure-skip-tls-verify`.
    pub allow_insecure_tls: bool,
    /// `--default-kubeconfig-service-account`, if set.
    pub default_service_account: Option<String>,
}

/// Why the remote cluster of an object cannot be reached. The messages are
/// those of Flux's `runtime/client` where it has one.
#[derive(Debug, thiserror::Error)]
pub enum KubeConfigError {
    /// `spec.kubeConfig.configMapRef`, which ferroflux does not support.
    #[error(
        "spec.kubeConfig.configMapRef is not supported: secret-less access to a remote cluster through a cloud provider's workload identity{} is not implemented; use spec.kubeConfig.secretRef with a Secret holding a kubeconfig",
        flag_note(.default_service_account)
    )]
    ConfigMapRef {
        /// `--default-kubeconfig-service-account`, named when set.
        default_service_account: Option<String>,
    },
    /// The kubeconfig does what the flags (or always) forbid.
    #[error("{0}")]
    Refused(String),
    /// The Secret could not be read (absent, forbidden, API unreachable).
    #[error("unable to read KubeConfig secret '{secret}' error: {cause}")]
    SecretUnreadable {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The API server's answer.
        cause: String,
    },
    /// `secretRef.key` names a key the Secret lacks.
    #[error("KubeConfig secret '{secret}' does not contain a '{key}' key with a kubeconfig")]
    MissingKey {
        /// `namespace/name` of the Secret.
        secret: String,
        /// The key.
        key: String,
    },
    /// No `secretRef.key`, and neither default key is in the Secret.
    #[error(
        "KubeConfig secret '{secret}' does not contain a 'value' or 'value.yaml' key with a kubeconfig"
    )]
    MissingDefaultKey {
        /// `namespace/name` of the Secret.
        secret: String,
    },
    /// The kubeconfig cannot be parsed or turned into a client.
    #[error("{0}")]
    Invalid(String),
}

/// The `--default-kubeconfig-service-account` a refusal names, when set.
fn flag_note(default_service_account: &Option<String>) -> String {
    default_service_account
        .as_deref()
        .map(|sa| format!(" (--default-kubeconfig-service-account={sa})"))
        .unwrap_or_default()
}

impl KubeConfigError {
    /// Whether retrying cannot help until the object changes.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            KubeConfigError::ConfigMapRef { .. } | KubeConfigError::Refused(_)
        )
    }
}

/// The checked kubeconfig of an object's remote cluster.
#[derive(Clone)]
pub struct RemoteKubeConfig {
    /// The kubeconfig as the Secret holds it (for tools that read a file).
    pub text: String,
    config: kube::Config,
}

impl RemoteKubeConfig {
    /// Reads the kubeconfig `reference` names from the Secret in
    /// `namespace` with the controller's own `local` client, and checks it
    /// against `policy`.
    pub async fn load(
        local: &Client,
        namespace: &str,
        reference: &KubeConfigReference,
        policy: &KubeConfigPolicy,
    ) -> Result<Self, KubeConfigError> {
        let text = kubeconfig_text(local, namespace, reference, policy).await?;
        let kubeconfig = Kubeconfig::from_yaml(&text)
            .map_err(|err| KubeConfigError::Invalid(format!("invalid kubeconfig: {err}")))?;
        check_kubeconfig(&kubeconfig, policy)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &KubeConfigOptions::default())
                .await
                .map_err(|err| KubeConfigError::Invalid(format!("invalid kubeconfig: {err}")))?;
        crate::api_client::route_by_environment(&mut config, Some(&kubeconfig));
        Ok(Self { text, config })
    }

    /// A client of the remote cluster, impersonating `user` when given
    /// (the object's ServiceAccount, which must exist there).
    pub fn client(&self, user: Option<&str>) -> Result<Client, KubeConfigError> {
        client_as(&self.config, user).map_err(|err| {
            KubeConfigError::Invalid(format!("cannot create a client from the kubeconfig: {err}"))
        })
    }
}

/// The user name a token of ServiceAccount `name` in `namespace`
/// authenticates as, which impersonation names.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// A client of `config`, impersonating `user` when given.
pub fn client_as(config: &kube::Config, user: Option<&str>) -> Result<Client, kube::Error> {
    let mut config = config.clone();
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user.to_owned());
    }
    Client::try_from(config)
}

/// The kubeconfig the Secret of `reference` holds.
async fn kubeconfig_text(
    client: &Client,
    namespace: &str,
    reference: &KubeConfigReference,
    policy: &KubeConfigPolicy,
) -> Result<String, KubeConfigError> {
    let Some(secret_ref) = &reference.secret_ref else {
        return Err(KubeConfigError::ConfigMapRef {
            default_service_account: policy.default_service_account.clone(),
        });
    };
    let secret = format!("{namespace}/{}", secret_ref.name);
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let found = api
        .get_opt(&secret_ref.name)
        .await
        .map_err(|err| KubeConfigError::SecretUnreadable {
            secret: secret.clone(),
            cause: match err {
                kube::Error::Api(status) => status.message,
                other => other.to_string(),
            },
        })?
        .ok_or_else(|| KubeConfigError::SecretUnreadable {
            secret: secret.clone(),
            // The API server's words for a missing Secret.
            cause: format!("secrets \"{}\" not found", secret_ref.name),
        })?;
    let data = found.data.unwrap_or_default();
    let value = match secret_ref.key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => data.get(key).ok_or_else(|| KubeConfigError::MissingKey {
            secret: secret.clone(),
            key: key.to_owned(),
        })?,
        None => DEFAULT_KEYS
            .iter()
            .find_map(|key| data.get(*key))
            .ok_or_else(|| KubeConfigError::MissingDefaultKey {
                secret: secret.clone(),
            })?,
    };
    String::from_utf8(value.0.clone()).map_err(|_| {
        KubeConfigError::Invalid(format!("KubeConfig secret '{secret}' is not UTF-8 text"))
    })
}

/// Refuses what a kubeconfig from a Secret must not do.
fn check_kubeconfig(
    kubeconfig: &Kubeconfig,
    policy: &KubeConfigPolicy,
) -> Result<(), KubeConfigError> {
    let refuse = |what: String| Err(KubeConfigError::Refused(what));
    for named in &kubeconfig.clusters {
        let Some(cluster) = &named.cluster else {
            continue;
        };
        if cluster.certificate_authority.is_some() {
            return refuse(format!(
                "kubeconfig cluster '{}' names a certificate-authority file: only inline certificate-authority-data is allowed",
                named.name
            ));
        }
        if cluster.insecure_skip_tls_verify == Some(true) && !policy.allow_insecure_tls {
            return refuse(format!(
                "kubeconfig cluster '{}' skips TLS verification, which --insecure-kubeconfig-tls=false forbids",
                named.name
            ));
        }
    }
    for named in &kubeconfig.auth_infos {
        let Some(user) = &named.auth_info else {
            continue;
        };
        let files = [
            ("tokenFile", user.token_file.is_some()),
            ("client-certificate", user.client_certificate.is_some()),
            ("client-key", user.client_key.is_some()),
        ];
        if let Some((field, _)) = files.iter().find(|(_, set)| *set) {
            return refuse(format!(
                "kubeconfig user '{}' names a {field} file: only inline credentials are allowed",
                named.name
            ));
        }
        if (user.exec.is_some() || user.auth_provider.is_some()) && !policy.allow_exec {
            return refuse(format!(
                "kubeconfig user '{}' runs a credential plugin (exec/auth-provider), which --insecure-kubeconfig-exec=false forbids",
                named.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn kubeconfig(cluster: &str, user: &str) -> Kubeconfig {
        Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n{cluster}\nusers:\n- name: u\n  user:\n{user}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n"
        ))
        .expect("kubeconfig")
    }

    #[test]
    fn inline_credentials_pass() {
        let config = kubeconfig(
            "    certificate-authority-data: Y2E=",
            "    client-certificate-data: Y2VydA==\n    client-key-data: a2V5",
        );
        assert!(check_kubeconfig(&config, &KubeConfigPolicy::default()).is_ok());
        let token = kubeconfig("    certificate-authority-data: Y2E=", "    token: abc");
        assert!(check_kubeconfig(&token, &KubeConfigPolicy::default()).is_ok());
    }

    #[test]
    fn plugins_files_and_insecure_tls_are_refused_unless_allowed() {
        let exec = kubeconfig(
            "    certificate-authority-data: Y2E=",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh",
        );
        let err = check_kubeconfig(&exec, &KubeConfigPolicy::default()).expect_err("exec");
        assert!(
            err.to_string().contains("--insecure-kubeconfig-exec"),
            "{err}"
        );
        assert!(err.is_terminal());
        let allowed = KubeConfigPolicy {
            allow_exec: true,
            allow_insecure_tls: true,
            default_service_account: None,
        };
        assert!(check_kubeconfig(&exec, &allowed).is_ok());

        let insecure = kubeconfig("    insecure-skip-tls-verify: true", "    token: abc");
        assert!(check_kubeconfig(&insecure, &KubeConfigPolicy::default()).is_err());
        assert!(check_kubeconfig(&insecure, &allowed).is_ok());

        // Files on the controller's filesystem: never.
        let files = kubeconfig(
            "    certificate-authority-data: Y2E=",
            "    tokenFile: /var/run/secrets/token",
        );
        assert!(check_kubeconfig(&files, &allowed).is_err());
        let ca = kubeconfig("    certificate-authority: /etc/ca.crt", "    token: abc");
        assert!(check_kubeconfig(&ca, &allowed).is_err());
    }

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        kubeconfig: KubeConfigFlags,
    }

    #[test]
    fn flags_parse_as_flux_spells_them() {
        let defaults = Flags::parse_from(["c"]).kubeconfig.policy();
        assert!(!defaults.allow_exec && !defaults.allow_insecure_tls);
        assert_eq!(defaults.default_service_account, None);
        let set = Flags::parse_from([
            "c",
            "--insecure-kubeconfig-exec",
            "--insecure-kubeconfig-tls=true",
            "--default-kubeconfig-service-account=tenant",
        ])
        .kubeconfig
        .policy();
        assert!(set.allow_exec && set.allow_insecure_tls);
        assert_eq!(set.default_service_account.as_deref(), Some("tenant"));
    }

    #[test]
    fn messages_name_the_secret_and_the_flag() {
        let missing = KubeConfigError::SecretUnreadable {
            secret: "apps/remote".into(),
            cause: "secrets \"remote\" not found".into(),
        };
        assert_eq!(
            missing.to_string(),
            "unable to read KubeConfig secret 'apps/remote' error: secrets \"remote\" not found"
        );
        assert!(!missing.is_terminal());
        let config_map = KubeConfigError::ConfigMapRef {
            default_service_account: Some("tenant".into()),
        };
        assert!(config_map.is_terminal());
        assert!(
            config_map
                .to_string()
                .contains("(--default-kubeconfig-service-account=tenant)"),
            "{config_map}"
        );
        let plain = KubeConfigError::ConfigMapRef {
            default_service_account: None,
        }
        .to_string();
        assert!(
            plain.starts_with("spec.kubeConfig.configMapRef is not supported")
                && !plain.contains("--default"),
            "{plain}"
        );
    }
}
