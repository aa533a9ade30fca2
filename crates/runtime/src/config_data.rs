//! The data of a ConfigMap or Secret that a spec takes values from
//! (`valuesFrom`, `postBuild.substituteFrom`), read the same way by every
//! controller: a ConfigMap's `data`, a Secret's `data` decoded as UTF-8.

use std::collections::BTreeMap;

use api::meta::ConfigKind;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::{Api, Client};

/// The data of the `kind` `namespace/name`; `None` when it does not exist.
pub async fn read(
    client: &Client,
    namespace: &str,
    kind: ConfigKind,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, kube::Error> {
    match kind {
        ConfigKind::ConfigMap => {
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
            Ok(api
                .get_opt(name)
                .await?
                .map(|cm| cm.data.unwrap_or_default()))
        }
        ConfigKind::Secret => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            Ok(api.get_opt(name).await?.map(|secret| {
                secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect()
            }))
        }
    }
}
