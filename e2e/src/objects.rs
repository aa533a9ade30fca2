//! What every controller's e2e fixture does with the objects of its test
//! namespace: server-side apply or create one from JSON, request a
//! reconciliation, read a condition. Waiting for a state is
//! [`crate::wait::for_object`].

use std::fmt::Debug;

use anyhow::{Context, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A namespaced Kubernetes object type the tests read and write.
pub trait NamespacedObject:
    Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
{
}

impl<K> NamespacedObject for K where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
{
}

/// Server-side applies `object` (JSON with apiVersion, kind and
/// metadata.name) through `api`, as field manager `e2e`, taking over
/// conflicting fields.
pub async fn apply<K: NamespacedObject>(api: &Api<K>, object: serde_json::Value) -> Result<K> {
    let name = object["metadata"]["name"]
        .as_str()
        .context("object without metadata.name")?
        .to_string();
    api.patch(
        &name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(object),
    )
    .await
    .with_context(|| format!("applying {name}"))
}

/// Creates `object` (JSON) through `api`.
pub async fn create<K: NamespacedObject>(api: &Api<K>, object: serde_json::Value) -> Result<K> {
    let obj: K = serde_json::from_value(object).context("building the object")?;
    api.create(&PostParams::default(), &obj)
        .await
        .context("creating the object")
}

/// Sets `reconcile.fluxcd.io/requestedAt` of `name` to a fresh token (the
/// time in nanoseconds) and returns it.
pub async fn request_reconcile<K: NamespacedObject>(api: &Api<K>, name: &str) -> Result<String> {
    let token = k8s_openapi::jiff::Timestamp::now()
        .as_nanosecond()
        .to_string();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}
        })),
    )
    .await
    .with_context(|| format!("annotating requestedAt on {name}"))?;
    Ok(token)
}

/// The condition `type_` among `conditions`.
pub fn condition<'a>(conditions: Option<&'a Vec<Condition>>, type_: &str) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == type_)
}
