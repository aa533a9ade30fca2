//! The registry side of an ImageRepository: its credentials (a
//! dockerconfigjson Secret, or the image pull secrets of a service
//! account) and a client for its repository, shared by the scan and by the
//! digest reflection of ImagePolicies.

use std::time::Duration;

use api::image::ImageRepository;
use api::meta::reason;
use api::source::CloudProvider;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::ResourceExt;
use kube::api::Api;

use crate::context::Context;
use crate::image_name::ImageName;
use crate::reconcile::Halt;

/// Reason for a malformed image reference (Flux's `ImageURLInvalid`).
pub const IMAGE_URL_INVALID: &str = "ImageURLInvalid";
/// Reason for a failed registry read (Flux's `ReadOperationFailed`).
pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";

/// The repository `spec.image` names, checked; `Stalled` when it cannot be used.
pub fn image_name(repo: &ImageRepository) -> Result<ImageName, Halt> {
    ImageName::parse(&repo.spec.image).map_err(|message| Halt::stall(IMAGE_URL_INVALID, message))
}

/// Refuses what ferroflux does not implement, rather than scanning without it.
pub fn check_supported(repo: &ImageRepository) -> Result<(), Halt> {
    if let Some(provider) = repo.spec.provider
        && provider != CloudProvider::Generic
    {
        let name = serde_json::to_value(provider)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        return Err(Halt::stall(
            reason::INVALID_PROVIDER_CONFIGURATION,
            format!(
                "provider '{name}' is not supported by ferroflux: use provider 'generic' with a dockerconfigjson spec.secretRef"
            ),
        ));
    }
    if repo.spec.cert_secret_ref.is_some() {
        return Err(Halt::stall(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.certSecretRef is not supported by ferroflux yet: the registry must present a certificate trusted by the system roots",
        ));
    }
    if repo.spec.proxy_secret_ref.is_some() {
        return Err(Halt::stall(
            reason::INVALID_PROVIDER_CONFIGURATION,
            "spec.proxySecretRef is not supported by ferroflux yet",
        ));
    }
    Ok(())
}

/// A client for `image` with `repo`'s credentials, each remote operation
/// bounded by `timeout`.
pub async fn client(
    ctx: &Context,
    repo: &ImageRepository,
    image: &ImageName,
    timeout: Duration,
) -> Result<oci::Repository, Halt> {
    let credentials = credentials(ctx, repo, &image.registry).await?;
    let options = oci::Options {
        insecure: repo.spec.insecure.unwrap_or(false),
        timeout,
    };
    oci::Repository::new(&image.oci_url(), &credentials, &options)
        .map_err(|e| Halt::stall(IMAGE_URL_INVALID, e.to_string()))
}

/// The credentials for `host`: `spec.secretRef`, else the image pull
/// secrets of `spec.serviceAccountName`, else none.
async fn credentials(
    ctx: &Context,
    repo: &ImageRepository,
    host: &str,
) -> Result<oci::Credentials, Halt> {
    let namespace = repo.namespace().unwrap_or_default();
    let auth_failed = |message: String| {
        Halt::retry(
            reason::AUTHENTICATION_FAILED,
            format!("failed to configure authentication options: {message}"),
        )
    };
    let secret_names: Vec<String> = if let Some(secret_ref) = &repo.spec.secret_ref {
        vec![secret_ref.name.clone()]
    } else if let Some(account) = &repo.spec.service_account_name {
        let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), &namespace);
        let account = accounts
            .get_opt(account)
            .await
            .map_err(|e| auth_failed(e.to_string()))?
            .ok_or_else(|| auth_failed(format!("serviceaccounts \"{account}\" not found")))?;
        account
            .image_pull_secrets
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect()
    } else {
        Vec::new()
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
    for name in secret_names {
        let secret = secrets
            .get_opt(&name)
            .await
            .map_err(|e| auth_failed(e.to_string()))?
            .ok_or_else(|| auth_failed(format!("secrets \"{name}\" not found")))?;
        let data = secret.data.unwrap_or_default();
        let Some(json) = data.get(oci::DOCKER_CONFIG_JSON_KEY) else {
            return Err(auth_failed(format!(
                "secret '{namespace}/{name}' has no '{}' key: create it with `kubectl create secret docker-registry`",
                oci::DOCKER_CONFIG_JSON_KEY
            )));
        };
        let credentials = oci::Credentials::from_docker_config_json(&json.0, host)
            .map_err(|e| auth_failed(format!("secret '{namespace}/{name}': {e}")))?;
        if !matches!(credentials, oci::Credentials::Anonymous) {
            return Ok(credentials);
        }
    }
    Ok(oci::Credentials::Anonymous)
}

/// The reason and message for a failed registry operation.
pub fn registry_failure(context: &str, err: oci::Error) -> Halt {
    match err {
        oci::Error::Authentication { .. } | oci::Error::InvalidCredentials(_) => {
            Halt::retry(reason::AUTHENTICATION_FAILED, format!("{context}: {err}"))
        }
        other => Halt::retry(READ_OPERATION_FAILED, format!("{context}: {other}")),
    }
}
