//! The Receiver controller: reads the token Secret of each Receiver and
//! publishes its webhook path (`status.webhookPath`, Flux's
//! `/hook/sha256(token+name+namespace)`) with `Ready=True`, reason
//! `Succeeded`; an unreadable token is `Ready=False` with `TokenNotFound`
//! (retried with backoff), a resource filter that is not CEL is
//! `Stalled` with `ValidationFailed`. Receivers are read again every
//! `spec.interval` (default 10m) and whenever their Secret changes (Secrets
//! labelled as `--watch-configs-label-selector` says).

use std::sync::Arc;
use std::time::Duration;

use api::meta::{FINALIZER, reason as meta_reason};
use api::notification::{Receiver, ReceiverType};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use runtime::conditions::Conditions;
use runtime::reconcile::Disposition;
use tracing::info;

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context};
use crate::receiver_server::webhook_path;

/// Reasons of Receiver conditions, as Flux's.
pub mod reason {
    /// The token Secret or its `token` key is missing.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
    /// Part of the spec cannot be used.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
}

/// Flux's default `spec.interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);

/// Reconciles one Receiver.
pub async fn reconcile(obj: Arc<Receiver>, ctx: Arc<Context>) -> Result<Action, Error> {
    runtime::finalizer::reconcile_namespaced(
        &ctx.client,
        FINALIZER,
        obj,
        |obj| obj.spec.suspend == Some(true),
        |obj, api| pass(obj, ctx.clone(), api),
        // Nothing outside the object to clean up.
        |_, _| async { Ok(Action::await_change()) },
    )
    .await
}

/// Why a pass failed.
struct Halt {
    reason: &'static str,
    message: String,
    disposition: Disposition,
}

async fn pass(obj: Arc<Receiver>, ctx: Arc<Context>, api: Api<Receiver>) -> Result<Action, Error> {
    let written = obj.status.clone();
    let mut status = written.clone().unwrap_or_default();
    let mut conditions = Conditions::new(
        status.conditions.take().unwrap_or_default(),
        obj.metadata.generation,
    );
    conditions.mark_reconciling(meta_reason::PROGRESSING, "Reconciliation in progress");
    let interval = interval(&obj);
    let outcome = webhook(&obj, &ctx).await;
    match &outcome {
        Ok(path) => {
            let message = format!("Receiver initialized for path: {path}");
            if status.webhook_path.as_deref() != Some(path.as_str()) {
                info!(name = %obj.name_any(), namespace = %obj.namespace().unwrap_or_default(), "{message}");
            }
            conditions.mark_ready(meta_reason::SUCCEEDED, message);
            status.webhook_path = Some(path.clone());
            status.observed_generation = obj.metadata.generation;
        }
        Err(halt) => {
            if halt.reason == reason::TOKEN_NOT_FOUND {
                status.webhook_path = None;
            }
            match halt.disposition {
                Disposition::Stall => conditions.mark_stalled(halt.reason, halt.message.clone()),
                _ => conditions.mark_failed_retrying(halt.reason, halt.message.clone()),
            }
        }
    }
    if let Some(token) = runtime::reconcile_request::requested_at(&obj.metadata) {
        status.reconcile_request.last_handled_reconcile_at = Some(token.to_string());
    }
    status.conditions = Some(conditions.into_items());
    runtime::status::patch_status(
        &api,
        CONTROLLER_NAME,
        &obj.name_any(),
        written.as_ref(),
        &status,
    )
    .await?;
    match outcome {
        Ok(_) => {
            let message = format!(
                "Reconciliation finished, next run in {}",
                api::Duration::from_std(interval)
            );
            ctx.recorder
                .normal(obj.as_ref(), meta_reason::SUCCEEDED, &message)
                .await;
            Ok(ctx.requeue_after(interval))
        }
        Err(halt) => {
            ctx.recorder
                .warning(obj.as_ref(), meta_reason::FAILED, &halt.message)
                .await;
            Err(Error::Halted {
                disposition: halt.disposition,
                message: halt.message,
            })
        }
    }
}

/// `spec.interval`, or Flux's default.
fn interval(obj: &Receiver) -> Duration {
    obj.spec
        .interval
        .as_ref()
        .and_then(|i| i.to_std().ok())
        .filter(|i| !i.is_zero())
        .unwrap_or(DEFAULT_INTERVAL)
}

/// The Receiver's webhook path, from its token.
async fn webhook(obj: &Receiver, ctx: &Context) -> Result<String, Halt> {
    check_filters(obj)?;
    let name = obj.name_any();
    let namespace = obj.namespace().unwrap_or_default();
    let token = match (obj.spec.r#type, &obj.spec.secret_ref) {
        // Requests carry an OIDC token instead: no Secret, no token in the path.
        (ReceiverType::GenericOidc, None) => String::new(),
        (_, Some(secret_ref)) => read_token(ctx, &namespace, &secret_ref.name).await?,
        (receiver_type, None) => {
            return Err(Halt {
                reason: reason::VALIDATION_FAILED,
                message: format!(
                    "spec.secretRef is required for type '{}'",
                    serde_json::to_value(receiver_type)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                ),
                disposition: Disposition::Stall,
            });
        }
    };
    Ok(webhook_path(&token, &name, &namespace))
}

/// `resourceFilter` and each resource's `filter` must be CEL expressions;
/// a Receiver whose filters cannot be parsed can never work.
fn check_filters(obj: &Receiver) -> Result<(), Halt> {
    let filters = std::iter::once((
        "spec.resourceFilter".to_string(),
        obj.spec.resource_filter.as_deref(),
    ))
    .chain(
        obj.spec
            .resources
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("spec.resources[{i}].filter"), r.filter.as_deref())),
    );
    for (field, expression) in filters {
        let Some(expression) = expression.filter(|e| !e.trim().is_empty()) else {
            continue;
        };
        if let Err(err) = cel::Program::compile(expression) {
            let detail = err.to_string();
            let detail = detail.lines().next().unwrap_or_default();
            return Err(Halt {
                reason: reason::VALIDATION_FAILED,
                message: format!("invalid CEL expression in {field} '{expression}': {detail}"),
                disposition: Disposition::Stall,
            });
        }
    }
    Ok(())
}

/// The `token` of the Secret `namespace/name`.
async fn read_token(ctx: &Context, namespace: &str, name: &str) -> Result<String, Halt> {
    let not_found = |message: String| Halt {
        reason: reason::TOKEN_NOT_FOUND,
        message,
        disposition: Disposition::Retry,
    };
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = api.get(name).await.map_err(|e| {
        not_found(format!(
            "unable to read token from secret '{namespace}/{name}' error: {}",
            crate::provider_config::short_kube_error(&e)
        ))
    })?;
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned());
    token.ok_or_else(|| {
        not_found(format!(
            "invalid '{namespace}/{name}' secret data: required fields 'token'"
        ))
    })
}

/// The Receivers using `secret` as their token Secret.
pub fn users_of_secret(secret: &Secret, receivers: &[Arc<Receiver>]) -> Vec<ObjectRef<Receiver>> {
    let name = secret.name_any();
    receivers
        .iter()
        .filter(|r| r.namespace() == secret.namespace())
        .filter(|r| r.spec.secret_ref.as_ref().is_some_and(|s| s.name == name))
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receiver(spec: serde_json::Value) -> Receiver {
        serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": {"name": "r", "namespace": "apps"}, "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn filters_must_parse() {
        let ok = receiver(json!({"type": "generic", "secretRef": {"name": "s"},
            "resourceFilter": "res.metadata.name == 'x'",
            "resources": [{"kind": "GitRepository", "name": "*", "filter": "true"}]}));
        assert!(check_filters(&ok).is_ok());
        let bad = receiver(json!({"type": "generic", "secretRef": {"name": "s"},
            "resources": [{"kind": "GitRepository", "name": "*", "filter": "res.metadata.name =="}]}));
        let halt = check_filters(&bad).err().unwrap();
        assert_eq!(halt.reason, reason::VALIDATION_FAILED);
        assert!(
            halt.message.contains("spec.resources[0].filter"),
            "{}",
            halt.message
        );
        assert_eq!(halt.disposition, Disposition::Stall);
    }

    #[test]
    fn interval_defaults_to_ten_minutes() {
        let r = receiver(json!({"type": "generic", "resources": []}));
        assert_eq!(interval(&r), DEFAULT_INTERVAL);
        let r = receiver(json!({"type": "generic", "interval": "1m", "resources": []}));
        assert_eq!(interval(&r), Duration::from_secs(60));
    }

    #[test]
    fn secret_users() {
        let a = Arc::new(receiver(
            json!({"type": "github", "secretRef": {"name": "tok"}, "resources": []}),
        ));
        let b = Arc::new(receiver(
            json!({"type": "github", "secretRef": {"name": "other"}, "resources": []}),
        ));
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": "tok", "namespace": "apps"}}))
                .unwrap();
        let users = users_of_secret(&secret, &[a, b]);
        assert_eq!(users.len(), 1);
        assert_eq!(users[0].name, "r");
    }
}
