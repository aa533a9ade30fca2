//! The CRDs policies helm cannot apply itself: `Create` on upgrade (helm
//! never touches `crds/` then) and `CreateReplace` on install and upgrade
//! (helm never replaces a CRD). The controller applies the chart's `crds/`
//! before running helm with `--skip-crds`, and waits until the API server
//! serves them. CRDs are never deleted.

use std::time::Duration;

use api::helm::CRDsPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};

use crate::Error;

/// How long a CRD may take to become established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The CRDs of `files` (multi-document YAML or JSON), in order.
pub fn parse_crds(files: &[(String, String)]) -> Result<Vec<CustomResourceDefinition>, Error> {
    let mut crds = Vec::new();
    for (name, text) in files {
        let objects = runtime::ssa::yaml::objects_from_yaml(text)
            .map_err(|err| Error::Release(format!("invalid CRD file {name}: {err}")))?;
        for object in objects {
            let is_crd = object
                .types
                .as_ref()
                .is_some_and(|t| t.kind == "CustomResourceDefinition");
            if !is_crd {
                continue;
            }
            let crd: CustomResourceDefinition = serde_json::to_value(&object)
                .and_then(serde_json::from_value)
                .map_err(|err| Error::Release(format!("invalid CRD in {name}: {err}")))?;
            crds.push(crd);
        }
    }
    Ok(crds)
}

/// Applies `crds` per `policy` (`Create`: only the missing ones;
/// `CreateReplace`: all, with server-side apply) and waits for them.
pub async fn apply(
    client: &kube::Client,
    policy: CRDsPolicy,
    crds: &[CustomResourceDefinition],
    field_manager: &str,
) -> Result<(), Error> {
    if policy == CRDsPolicy::Skip || crds.is_empty() {
        return Ok(());
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        match policy {
            CRDsPolicy::CreateReplace => {
                api.patch(
                    &name,
                    &PatchParams::apply(field_manager).force(),
                    &Patch::Apply(crd),
                )
                .await?;
            }
            CRDsPolicy::Create => match api.create(&PostParams::default(), crd).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 409 => {}
                Err(err) => return Err(err.into()),
            },
            CRDsPolicy::Skip => {}
        }
    }
    for crd in crds {
        wait_established(&api, &crd.metadata.name.clone().unwrap_or_default()).await?;
    }
    Ok(())
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + ESTABLISH_TIMEOUT;
    loop {
        let established = api.get_opt(name).await?.is_some_and(|crd| {
            crd.status.and_then(|s| s.conditions).is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
        });
        if established {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Release(format!(
                "CustomResourceDefinition {name} was not established within {}",
                api::Duration::from_std(ESTABLISH_TIMEOUT)
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_crds_are_taken() {
        let files = vec![(
            "chart/crds/widgets.yaml".to_string(),
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  names: {kind: Widget, plural: widgets}\n  scope: Namespaced\n  versions: []\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: not-a-crd\n".to_string(),
        )];
        let crds = parse_crds(&files).expect("valid");
        assert_eq!(crds.len(), 1);
        assert_eq!(
            crds[0].metadata.name.as_deref(),
            Some("widgets.example.com")
        );
        let broken = vec![("chart/crds/x.yaml".to_string(), "kind: [".to_string())];
        assert!(parse_crds(&broken).is_err());
    }
}
