//! The build step: decryption keys and post-build variables read from the
//! cluster, then the pure build ([`crate::build`]) of the unpacked
//! artifact, off the async threads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use api::meta::{ConfigKind, reason};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kustomize::RemoteAccess;
use serde_json::{Map, Value};

use super::{Attempt, Halt, Stop, api_message};
use crate::Error;
use crate::build::{BuildInput, build};
use crate::decrypt::Decryptor;
use crate::postbuild::Variables;

/// What the build produced: the objects to apply and the digest of the
/// manifests, which `.status.history` keys states by.
pub(super) struct Built {
    pub objects: Vec<DynamicObject>,
    pub checksum: String,
}

impl Attempt<'_> {
    /// Builds the unpacked artifact at `root`.
    pub(super) async fn build(&self, root: PathBuf) -> Result<Built, Stop> {
        let decryptor = self
            .decryptor()
            .await
            .map_err(|message| Halt::retry(reason::BUILD_FAILED, message))?;
        let variables = self.variables().await.map_err(|message| {
            Halt::retry(
                reason::BUILD_FAILED,
                format!("post build failed: {message}"),
            )
        })?;
        let spec = self.obj.spec.clone();
        let strict = self.ctx.settings.strict_substitution;
        let remote = self.remote_access()?;
        let objects = tokio::task::spawn_blocking(move || {
            build(&BuildInput {
                root: &root,
                spec: &spec,
                decryptor: decryptor.as_ref(),
                variables: variables.as_ref(),
                strict_substitution: strict,
                remote,
            })
        })
        .await
        .map_err(|err| Error::Task(err.to_string()))?
        .map_err(|err| Halt::retry(err.reason(), err.to_string()))?;
        let checksum = manifests_digest(&objects);
        let objects = objects
            .into_iter()
            .map(|object| serde_json::from_value::<DynamicObject>(Value::Object(object)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| Halt::retry(reason::BUILD_FAILED, format!("invalid object: {err}")))?;
        Ok(Built { objects, checksum })
    }

    /// Remote bases are fetched (Flux's default) unless `--no-remote-bases`,
    /// all within the Kustomization's timeout.
    fn remote_access(&self) -> Result<RemoteAccess, Stop> {
        if self.ctx.settings.no_remote_bases {
            return Ok(RemoteAccess::Refused(
                "kustomize-controller runs with --no-remote-bases=true".into(),
            ));
        }
        let fetcher = kustomize_remote::Fetcher::new(tokio::runtime::Handle::current())
            .map_err(|message| Halt::retry(reason::BUILD_FAILED, message))?
            .with_deadline(self.started + super::timeout(self.obj));
        Ok(RemoteAccess::Fetch(Arc::new(fetcher)))
    }

    /// The decryption keys, when `spec.decryption` is set.
    async fn decryptor(&self) -> Result<Option<Decryptor>, String> {
        let Some(decryption) = &self.obj.spec.decryption else {
            return Ok(None);
        };
        let (namespace, name, global) =
            match (&decryption.secret_ref, &self.ctx.settings.sops_age_secret) {
                (Some(secret), _) => (self.namespace.clone(), secret.name.clone(), false),
                (None, Some((namespace, name))) => (namespace.clone(), name.clone(), true),
                (None, None) => return Ok(Some(Decryptor::new(sops::Keyring::new()))),
            };
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let secret = api.get(&name).await.map_err(|err| {
            format!(
                "cannot get sops decryption Secret '{namespace}/{name}': {}",
                api_message(&err)
            )
        })?;
        let mut keys = sops::Keyring::new();
        let data = secret.data.unwrap_or_default();
        let entries = data
            .iter()
            // The global Secret provides age keys only (Flux's rule).
            .filter(|(key, _)| !global || key.ends_with(sops::AGE_KEY_SUFFIX))
            .map(|(key, value)| (key.as_str(), value.0.as_slice()));
        keys.import_secret_data(entries).map_err(|err| {
            format!("failed to import keys from sops decryption Secret '{namespace}/{name}': {err}")
        })?;
        Ok(Some(Decryptor::new(keys)))
    }

    /// The post-build variables, when `spec.postBuild` is set.
    async fn variables(&self) -> Result<Option<Variables>, String> {
        let Some(post_build) = &self.obj.spec.post_build else {
            return Ok(None);
        };
        let mut variables = Variables::new();
        for reference in post_build.substitute_from.as_deref().unwrap_or_default() {
            let optional = reference.optional.unwrap_or(false);
            let name = reference.name.as_str();
            let kind = match reference.kind {
                ConfigKind::ConfigMap => "ConfigMap",
                ConfigKind::Secret => "Secret",
            };
            let found = self.config_data(reference.kind, name).await;
            match found {
                Ok(Some(data)) => {
                    variables.extend(data.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                }
                Ok(None) if optional => {}
                Ok(None) => {
                    return Err(format!(
                        "substitute from '{kind}/{name}' error: {}s \"{name}\" not found",
                        kind.to_lowercase()
                    ));
                }
                Err(err) => {
                    return Err(format!(
                        "substitute from '{kind}/{name}' error: {}",
                        api_message(&err)
                    ));
                }
            }
        }
        if let Some(inline) = &post_build.substitute {
            variables.extend(inline.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(Some(variables))
    }

    /// The data of a ConfigMap, or the decoded data of a Secret, in the
    /// Kustomization's namespace; `None` when it does not exist.
    async fn config_data(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, kube::Error> {
        runtime::config_data::read(&self.ctx.client, &self.namespace, kind, name).await
    }
}

/// The digest of the built manifests: what `.status.history` keys states by.
pub(super) fn manifests_digest(objects: &[Map<String, Value>]) -> String {
    let values: Vec<Value> = objects.iter().cloned().map(Value::Object).collect();
    let yaml = kustomize::yaml::to_yaml_stream(values.iter());
    runtime::artifact::sha256_digest(yaml.as_bytes())
}
