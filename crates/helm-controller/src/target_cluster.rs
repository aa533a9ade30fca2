//! The cluster a HelmRelease is released into: the controller's own, or the
//! remote cluster of `spec.kubeConfig.secretRef`. Everything that touches
//! the release (helm, Helm's storage, drift detection, the inventory, chart
//! CRDs) goes through it; the HelmRelease, its chart source and its values
//! stay in the controller's cluster.
//!
//! A kubeconfig from a Secret may run programs (`exec`, `auth-provider`),
//! skip TLS verification, or name files on the controller's filesystem
//! (the controller's own credentials among them). The first two are refused
//! unless `--insecure-kubeconfig-exec` / `--insecure-kubeconfig-tls` allow
//! them, as in Flux; file references are always refused.

use std::io::Write;
use std::sync::Arc;

use api::helm::HelmRelease;
use api::meta::KubeConfigReference;
use k8s_openapi::api::core::v1::Secret;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, ResourceExt};

use crate::helm_cli::HelmCli;
use crate::storage::ReleaseStorage;

/// Keys looked up in the Secret when `secretRef.key` is not set.
const DEFAULT_KEYS: [&str; 2] = ["value", "value.yaml"];

/// What a release needs of the cluster it lives in.
#[derive(Clone)]
pub struct TargetCluster {
    /// Client of the cluster.
    pub client: Client,
    /// helm, pointed at the cluster.
    pub helm: HelmCli,
    /// Helm's storage in the cluster.
    pub storage: ReleaseStorage,
    /// Discovery of the cluster's resources.
    pub resolver: runtime::ssa::Resolver,
    /// helm's copy of a remote kubeconfig, removed once no one uses it.
    _kubeconfig: Option<Arc<tempfile::TempPath>>,
}

/// Why the remote cluster of a HelmRelease cannot be reached.
#[derive(Debug, thiserror::Error)]
pub enum KubeConfigError {
    /// The reference can never work as written (retrying cannot help).
    #[error("{0}")]
    Unsupported(String),
    /// The Secret or its content is not (yet) usable.
    #[error("{0}")]
    Invalid(String),
}

impl KubeConfigError {
    /// Whether retrying cannot help until the HelmRelease changes.
    pub fn is_terminal(&self) -> bool {
        matches!(self, KubeConfigError::Unsupported(_))
    }
}

/// What kubeconfigs from Secrets may do (`--insecure-kubeconfig-*`).
#[derive(Clone, Copy, Debug, Default)]
pub struct KubeConfigPolicy {
    /// `--insecure-kubeconfig-exec`: allow `exec` and `auth-provider`.
    pub allow_exec: bool,
    /// `--insecure-kubeconfig-tls`: allow `insecure-skip-tls-verify`.
    pub allow_insecure_tls: bool,
}

impl TargetCluster {
    /// The controller's own cluster.
    pub fn local(
        client: Client,
        helm: HelmCli,
        storage: ReleaseStorage,
        resolver: runtime::ssa::Resolver,
    ) -> Self {
        Self {
            client,
            helm,
            storage,
            resolver,
            _kubeconfig: None,
        }
    }

    /// The cluster of `hr.spec.kubeConfig`, reached with the kubeconfig its
    /// Secret holds; `local` when the HelmRelease has none.
    pub async fn of_release(
        local: &TargetCluster,
        hr: &HelmRelease,
        policy: KubeConfigPolicy,
    ) -> Result<Self, KubeConfigError> {
        let Some(reference) = &hr.spec.kube_config else {
            return Ok(local.clone());
        };
        let namespace = hr.namespace().unwrap_or_default();
        let text = kubeconfig_text(&local.client, &namespace, reference).await?;
        let kubeconfig = Kubeconfig::from_yaml(&text)
            .map_err(|err| KubeConfigError::Invalid(format!("invalid kubeconfig: {err}")))?;
        check_kubeconfig(&kubeconfig, policy)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|err| KubeConfigError::Invalid(format!("invalid kubeconfig: {err}")))?;
        let client = Client::try_from(config).map_err(|err| {
            KubeConfigError::Invalid(format!("cannot create a client from the kubeconfig: {err}"))
        })?;
        let path = write_private(&text).map_err(|err| {
            KubeConfigError::Invalid(format!("cannot write the kubeconfig for helm: {err}"))
        })?;
        Ok(Self {
            helm: local.helm.with_kubeconfig(path.to_path_buf()),
            storage: ReleaseStorage::new(client.clone()),
            resolver: runtime::ssa::Resolver::default(),
            client,
            _kubeconfig: Some(Arc::new(path)),
        })
    }
}

/// The kubeconfig the Secret of `reference` holds.
async fn kubeconfig_text(
    client: &Client,
    namespace: &str,
    reference: &KubeConfigReference,
) -> Result<String, KubeConfigError> {
    let Some(secret_ref) = &reference.secret_ref else {
        return Err(KubeConfigError::Unsupported(
            "spec.kubeConfig.configMapRef (secret-less access through a cloud provider) is not supported: use spec.kubeConfig.secretRef".into(),
        ));
    };
    let name = format!("{namespace}/{}", secret_ref.name);
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = api
        .get_opt(&secret_ref.name)
        .await
        .map_err(|err| {
            KubeConfigError::Invalid(format!("could not get KubeConfig secret '{name}': {err}"))
        })?
        .ok_or_else(|| {
            KubeConfigError::Invalid(format!(
                "could not get KubeConfig secret '{name}': not found"
            ))
        })?;
    let data = secret.data.unwrap_or_default();
    let value = match secret_ref.key.as_deref().filter(|k| !k.is_empty()) {
        Some(key) => data.get(key).ok_or_else(|| {
            KubeConfigError::Invalid(format!(
                "KubeConfig secret '{name}' does not contain a '{key}' key"
            ))
        })?,
        None => DEFAULT_KEYS
            .iter()
            .find_map(|key| data.get(*key))
            .ok_or_else(|| {
                KubeConfigError::Invalid(format!(
                    "KubeConfig secret '{name}' does not contain a 'value' or 'value.yaml' key"
                ))
            })?,
    };
    String::from_utf8(value.0.clone()).map_err(|_| {
        KubeConfigError::Invalid(format!("KubeConfig secret '{name}' is not UTF-8 text"))
    })
}

/// Refuses what a kubeconfig from a Secret must not do.
fn check_kubeconfig(
    kubeconfig: &Kubeconfig,
    policy: KubeConfigPolicy,
) -> Result<(), KubeConfigError> {
    let refuse = |what: String| Err(KubeConfigError::Unsupported(what));
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

/// Writes `text` to a file only the controller can read.
fn write_private(text: &str) -> std::io::Result<tempfile::TempPath> {
    let mut file = tempfile::Builder::new().prefix("kubeconfig-").tempfile()?;
    // tempfile creates files with mode 0600.
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file.into_temp_path())
}

#[cfg(test)]
mod tests {
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
        assert!(check_kubeconfig(&config, KubeConfigPolicy::default()).is_ok());
        let token = kubeconfig("    certificate-authority-data: Y2E=", "    token: abc");
        assert!(check_kubeconfig(&token, KubeConfigPolicy::default()).is_ok());
    }

    #[test]
    fn plugins_files_and_insecure_tls_are_refused_unless_allowed() {
        let exec = kubeconfig(
            "    certificate-authority-data: Y2E=",
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh",
        );
        let err = check_kubeconfig(&exec, KubeConfigPolicy::default()).expect_err("exec");
        assert!(
            err.to_string().contains("--insecure-kubeconfig-exec"),
            "{err}"
        );
        assert!(err.is_terminal());
        let allowed = KubeConfigPolicy {
            allow_exec: true,
            allow_insecure_tls: true,
        };
        assert!(check_kubeconfig(&exec, allowed).is_ok());

        let insecure = kubeconfig("    insecure-skip-tls-verify: true", "    token: abc");
        assert!(check_kubeconfig(&insecure, KubeConfigPolicy::default()).is_err());
        assert!(check_kubeconfig(&insecure, allowed).is_ok());

        // Files on the controller's filesystem: never.
        let files = kubeconfig(
            "    certificate-authority-data: Y2E=",
            "    tokenFile: /var/run/secrets/token",
        );
        assert!(check_kubeconfig(&files, allowed).is_err());
        let ca = kubeconfig("    certificate-authority: /etc/ca.crt", "    token: abc");
        assert!(check_kubeconfig(&ca, allowed).is_err());
    }
}
