//! IAMPolicyGenerator: a ServiceAccount bound to a cloud identity (only
//! GKE Workload Identity, as in kustomize).

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::resource::Resource;
use crate::yaml::{ParseOptions, parse_single};

/// The Kubernetes service account to generate.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct KubernetesService {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// The cloud service account it impersonates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudServiceAccount {
    /// The cloud account's name.
    pub name: String,
    /// The GCP project holding it.
    pub project_id: String,
}

/// An IAMPolicyGenerator config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct IamPolicyArgs {
    /// The cloud: only `gke`.
    pub cloud: String,
    /// The Kubernetes service account.
    pub kubernetes_service: KubernetesService,
    /// The cloud service account.
    pub service_account: CloudServiceAccount,
}

/// Generates the ServiceAccount. kustomize writes the values into a YAML
/// template and parses it, so they are typed as YAML there; so here.
pub fn generate(args: &IamPolicyArgs) -> Result<Resource> {
    if args.cloud != "gke" {
        return Err(Error::generator(format!(
            "cloud provider {} not supported yet",
            args.cloud
        )));
    }
    let mut text = format!(
        "\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  annotations:\n    iam.gke.io/gcp-service-account: {}@{}.iam.gserviceaccount.com\n  name: {}\n",
        args.service_account.name, args.service_account.project_id, args.kubernetes_service.name
    );
    if !args.kubernetes_service.namespace.is_empty() {
        text.push_str(&format!(
            "\n  namespace: {}",
            args.kubernetes_service.namespace
        ));
    }
    let value = parse_single(&text, ParseOptions::RESOURCE).map_err(|e| {
        Error::generator(format!("IAMPolicyGenerator: generated ServiceAccount: {e}"))
    })?;
    Resource::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gke_only() {
        let mut args = IamPolicyArgs {
            cloud: "gke".into(),
            ..IamPolicyArgs::default()
        };
        args.kubernetes_service.name = "ksa".into();
        args.kubernetes_service.namespace = "ns".into();
        args.service_account.name = "gsa".into();
        args.service_account.project_id = "p".into();
        let r = generate(&args).unwrap();
        assert_eq!(r.namespace(), "ns");
        assert_eq!(
            r.annotations()
                .get("iam.gke.io/gcp-service-account")
                .map(String::as_str),
            Some("gsa@p.iam.gserviceaccount.com")
        );
        args.cloud = "aws".into();
        assert!(generate(&args).is_err());
    }
}
