//! Kubeconfig files with everything embedded (CA, client certificate and key),
//! so they work from any directory and with any client, kubectl included.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::pki::{ClientIdentity, write};

/// The name of the cluster, user and context entries.
const CONTEXT: &str = "ferroflux";

/// Writes a kubeconfig for `identity` talking to `server`. Owner-readable only:
/// it holds a private key.
pub(crate) fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    identity: &ClientIdentity,
) -> Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": CONTEXT,
            "cluster": {
                "server": server,
                "certificate-authority-data": STANDARD.encode(ca_pem),
            },
        }],
        "users": [{
            "name": identity.user,
            "user": {
                "client-certificate-data": STANDARD.encode(&identity.cert_pem),
                "client-key-data": STANDARD.encode(&identity.key_pem),
            },
        }],
        "contexts": [{
            "name": CONTEXT,
            "context": { "cluster": CONTEXT, "user": identity.user },
        }],
        "current-context": CONTEXT,
    });
    let text = serde_saphyr::to_string(&config).context("serializing kubeconfig")?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    write(path, &text, true)
}

/// A client configuration read from the kubeconfig at `path` (its current context).
pub async fn load(path: &Path) -> Result<kube::Config> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
        .await
        .with_context(|| format!("loading kubeconfig {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn written_kubeconfig_loads_with_kube() {
        let dir = tempfile::tempdir().unwrap();
        let identity = ClientIdentity {
            user: "someone".to_string(),
            cert_pem: "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_string(),
            key_pem: "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n".to_string(),
        };
        let path = dir.path().join("kubeconfig");
        write_kubeconfig(&path, "https://127.0.0.1:1234", "CA", &identity).unwrap();
        let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some(CONTEXT));
        let cluster = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
        assert_eq!(
            cluster.certificate_authority_data.as_deref(),
            Some(STANDARD.encode("CA").as_str())
        );
        assert_eq!(kubeconfig.auth_infos[0].name, "someone");
    }
}
