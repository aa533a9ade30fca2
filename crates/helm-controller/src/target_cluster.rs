//! The cluster a HelmRelease is released into: the controller's own, or the
//! remote cluster of `spec.kubeConfig.secretRef` (read and checked by
//! `runtime::remote_cluster`, which kustomize-controller shares).
//! Everything that touches the release (helm, Helm's storage, drift
//! detection, the inventory, chart CRDs) goes through it; the HelmRelease,
//! its chart source and its values stay in the controller's cluster.

use std::io::Write;
use std::sync::Arc;

use api::helm::HelmRelease;
use kube::{Client, ResourceExt};
use runtime::remote_cluster::{KubeConfigError, KubeConfigPolicy, RemoteKubeConfig};

use crate::helm_cli::HelmCli;
use crate::storage::ReleaseStorage;

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
        policy: &KubeConfigPolicy,
    ) -> Result<Self, KubeConfigError> {
        let Some(reference) = &hr.spec.kube_config else {
            return Ok(local.clone());
        };
        let namespace = hr.namespace().unwrap_or_default();
        let remote = RemoteKubeConfig::load(&local.client, &namespace, reference, policy)
            .await
            .map_err(in_helm_controller_words)?;
        // helm impersonates per call (`--kube-as-user`); the controller's
        // own requests use the kubeconfig's identity.
        let client = remote.client(None)?;
        let path = write_private(&remote.text).map_err(|err| {
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

/// Flux's helm-controller words an unreadable Secret its own way.
fn in_helm_controller_words(err: KubeConfigError) -> KubeConfigError {
    match err {
        KubeConfigError::SecretUnreadable { secret, cause } => KubeConfigError::Invalid(format!(
            "could not get KubeConfig secret '{secret}': {cause}"
        )),
        other => other,
    }
}

/// Writes `text` to a file only the controller can read.
fn write_private(text: &str) -> std::io::Result<tempfile::TempPath> {
    let mut file = tempfile::Builder::new().prefix("kubeconfig-").tempfile()?;
    // tempfile creates files with mode 0600.
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file.into_temp_path())
}
