//! Certificates and keys for a single-node control plane: a CA, the apiserver's
//! serving certificate, the service-account signing key pair, and client
//! identities for the admin and kube-controller-manager.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// The group that RBAC lets do anything; both client identities are in it.
const SUPERUSER_GROUP: &str = "system:masters";

/// Names the apiserver answers to: loopback, plus the in-cluster service
/// names and the first service IP of `10.0.0.0/24`, for clients that resolve
/// `kubernetes.default`.
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// A client certificate and key, PEM-encoded.
#[derive(Debug, Clone)]
pub(crate) struct ClientIdentity {
    pub(crate) user: String,
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

/// The generated files (all under one directory) and the PEM data that goes
/// into kubeconfigs.
#[derive(Debug, Clone)]
pub(crate) struct Pki {
    pub(crate) ca_cert: PathBuf,
    pub(crate) ca_key: PathBuf,
    pub(crate) serving_cert: PathBuf,
    pub(crate) serving_key: PathBuf,
    pub(crate) service_account_key: PathBuf,
    pub(crate) service_account_pub: PathBuf,
    /// The apiserver's client certificate and key towards kubelets (for
    /// logs, exec and port-forward): the admin identity.
    pub(crate) kubelet_client_cert: PathBuf,
    pub(crate) kubelet_client_key: PathBuf,
    pub(crate) ca_pem: String,
    pub(crate) admin: ClientIdentity,
    pub(crate) controller_manager: ClientIdentity,
    /// kube-scheduler's own identity (RBAC's bootstrap `system:kube-scheduler`).
    pub(crate) scheduler: ClientIdentity,
    /// The node's kubelet: `system:node:<name>` in `system:nodes`, which the
    /// Node authorizer confines to its own Pods' objects.
    pub(crate) kubelet: ClientIdentity,
    /// kube-proxy: RBAC's bootstrap `system:kube-proxy` (role `system:node-proxier`).
    pub(crate) kube_proxy: ClientIdentity,
}

impl Pki {
    /// Generates a fresh CA and everything signed by it into `dir`; the
    /// serving certificate also names `extra_names` (a node's address, which
    /// Pods reach the apiserver through).
    pub(crate) fn generate(dir: &Path, extra_names: &[String]) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ferroflux-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, &ca_key);

        let serving_key = KeyPair::generate()?;
        let mut serving = CertificateParams::new(
            SERVING_NAMES
                .iter()
                .map(|name| name.to_string())
                .chain(extra_names.iter().cloned())
                .collect::<Vec<_>>(),
        )?;
        serving
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        serving.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let serving_cert = serving.signed_by(&serving_key, &issuer)?;

        let admin = client_identity("ferroflux-admin", Some(SUPERUSER_GROUP), &issuer)?;
        let controller_manager = client_identity(
            "system:kube-controller-manager",
            Some(SUPERUSER_GROUP),
            &issuer,
        )?;
        let scheduler = client_identity("system:kube-scheduler", None, &issuer)?;
        let kubelet = client_identity(
            &format!("system:node:{NODE_NAME}"),
            Some("system:nodes"),
            &issuer,
        )?;
        let kube_proxy = client_identity("system:kube-proxy", None, &issuer)?;
        let service_account = KeyPair::generate()?;

        let pki = Self {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            serving_cert: dir.join("apiserver.crt"),
            serving_key: dir.join("apiserver.key"),
            service_account_key: dir.join("sa.key"),
            service_account_pub: dir.join("sa.pub"),
            kubelet_client_cert: dir.join("kubelet-client.crt"),
            kubelet_client_key: dir.join("kubelet-client.key"),
            ca_pem,
            admin,
            controller_manager,
            scheduler,
            kubelet,
            kube_proxy,
        };
        write(&pki.ca_cert, &pki.ca_pem, false)?;
        write(&pki.ca_key, &ca_key.serialize_pem(), true)?;
        write(&pki.serving_cert, &serving_cert.pem(), false)?;
        write(&pki.serving_key, &serving_key.serialize_pem(), true)?;
        write(
            &pki.service_account_key,
            &service_account.serialize_pem(),
            true,
        )?;
        write(&pki.kubelet_client_cert, &pki.admin.cert_pem, false)?;
        write(&pki.kubelet_client_key, &pki.admin.key_pem, true)?;
        write(
            &pki.service_account_pub,
            &service_account.public_key_pem(),
            false,
        )?;
        Ok(pki)
    }
}

/// The name of the one worker node a control plane can have.
pub(crate) const NODE_NAME: &str = "ferroflux-node";

fn client_identity(
    user: &str,
    group: Option<&str>,
    issuer: &Issuer<'_, &KeyPair>,
) -> Result<ClientIdentity> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, user);
    if let Some(group) = group {
        params
            .distinguished_name
            .push(DnType::OrganizationName, group);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer)?;
    Ok(ClientIdentity {
        user: user.to_string(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Writes `text` to `path`; private keys are readable by the owner only.
pub(crate) fn write(path: &Path, text: &str, private: bool) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(if private { 0o600 } else { 0o644 })
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_every_file_and_identity() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path(), &[]).unwrap();
        for path in [
            &pki.ca_cert,
            &pki.ca_key,
            &pki.serving_cert,
            &pki.serving_key,
            &pki.service_account_key,
            &pki.service_account_pub,
        ] {
            let text = std::fs::read_to_string(path).unwrap();
            assert!(text.starts_with("-----BEGIN "), "{}", path.display());
        }
        assert!(
            std::fs::read_to_string(&pki.service_account_pub)
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(
            pki.admin
                .cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        assert!(pki.admin.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&pki.ca_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
