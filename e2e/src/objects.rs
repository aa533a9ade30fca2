//! What every controller's e2e fixture does with the objects of its test
//! namespace: server-side apply or create one from JSON, request a
//! reconciliation, read a condition. Waiting for a state is
//! [`crate::wait::for_object`].

use std::fmt::Debug;

use anyhow::{Context, Result};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
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

/// A test's namespace and the client writing in it: what every controller
/// fixture reads and writes through (fixtures deref to it).
pub struct Scope {
    /// The test's namespace, deleted when dropped.
    pub namespace: crate::cluster::TestNamespace,
    /// A client of the shared cluster.
    pub client: Client,
}

impl Scope {
    /// A new namespace named after `test` on `cluster`, and a client of it.
    pub async fn on(cluster: &crate::cluster::Cluster, test: &str) -> Result<Scope> {
        Ok(Scope {
            namespace: cluster.test_namespace(test).await?,
            client: cluster.client().await?,
        })
    }

    /// The namespace's name.
    pub fn ns(&self) -> &str {
        self.namespace.name()
    }

    /// The API of `K` in the namespace.
    pub fn api<K: NamespacedObject>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), self.ns())
    }
}

/// Makes a fixture struct with a `scope: Scope` field usable as its
/// [`Scope`] (`env.ns()`, `env.api::<K>()`, `env.client`).
#[macro_export]
macro_rules! deref_to_scope {
    ($fixture:ty) => {
        impl std::ops::Deref for $fixture {
            type Target = $crate::objects::Scope;

            fn deref(&self) -> &Self::Target {
                &self.scope
            }
        }
    };
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
