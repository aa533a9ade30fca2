//! The one finalizer approach of every controller: [`reconcile`] runs the
//! work of a live object while its finalizer is added, and the cleanup of a
//! deleted one before the finalizer goes.
//!
//! kube-runtime's `finalizer` helper adds a missing finalizer and stops; the
//! work then waits for the watch to deliver the patched object and for a
//! second reconciliation. [`with_finalizer`] instead sends the patch and
//! starts the work at once, on the object as it will be: the patch is one
//! short round trip that completes long before the work writes anything
//! worth cleaning up, and a failed patch (the object is gone or being
//! deleted) cancels the work.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use kube::api::{Api, Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reconciles `obj` around `finalizer`: a live object goes to `apply` (the
/// finalizer added alongside, see [`with_finalizer`]); an object being
/// deleted that still carries the finalizer goes to `cleanup`, after which
/// the finalizer is removed; one being deleted without it is left alone.
pub async fn reconcile<K, T, E, ApplyFut, CleanupFut>(
    api: &Api<K>,
    finalizer: &str,
    obj: Arc<K>,
    apply: impl FnOnce(Arc<K>) -> ApplyFut,
    cleanup: impl FnOnce(Arc<K>) -> CleanupFut,
) -> Result<Option<T>, E>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    ApplyFut: Future<Output = Result<T, E>>,
    CleanupFut: Future<Output = Result<T, E>>,
    E: From<kube::Error>,
{
    if obj.meta().deletion_timestamp.is_none() {
        return with_finalizer(api, finalizer, obj, apply).await.map(Some);
    }
    if !obj.finalizers().iter().any(|f| f == finalizer) {
        return Ok(None);
    }
    let done = cleanup(obj.clone()).await?;
    remove(api, obj.as_ref(), finalizer).await?;
    Ok(Some(done))
}

/// The reconciliation every controller runs on a namespaced object: the
/// [`Api`] of the object's namespace and [`reconcile`] around `finalizer`.
/// A live object goes to `apply` with that Api unless `suspended` says it
/// is suspended (then nothing is done until it changes; the finalizer is
/// still added); a deleted one goes to `cleanup`. Nothing to do ends in
/// waiting for a change.
pub async fn reconcile_namespaced<K, E, ApplyFut, CleanupFut>(
    client: &Client,
    finalizer: &str,
    obj: Arc<K>,
    suspended: impl FnOnce(&K) -> bool,
    apply: impl FnOnce(Arc<K>, Api<K>) -> ApplyFut,
    cleanup: impl FnOnce(Arc<K>, Api<K>) -> CleanupFut,
) -> Result<Action, E>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    ApplyFut: Future<Output = Result<Action, E>>,
    CleanupFut: Future<Output = Result<Action, E>>,
    E: From<kube::Error> + From<crate::Error>,
{
    let namespace = obj
        .namespace()
        .ok_or(crate::Error::MissingField("metadata.namespace"))?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let done = reconcile(
        &api,
        finalizer,
        obj,
        |obj| {
            let api = api.clone();
            async move {
                if suspended(&obj) {
                    tracing::debug!(name = %obj.name_any(), "reconciliation is suspended");
                    return Ok(Action::await_change());
                }
                apply(obj, api).await
            }
        },
        |obj| cleanup(obj, api.clone()),
    )
    .await?;
    Ok(done.unwrap_or_else(Action::await_change))
}

/// Whether `obj` lacks `finalizer` and is not being deleted.
pub fn is_missing<K: Resource>(obj: &K, finalizer: &str) -> bool {
    obj.meta().deletion_timestamp.is_none() && !obj.finalizers().iter().any(|f| f == finalizer)
}

/// Runs `work` on `obj`. When `obj` lacks `finalizer` (and is not being
/// deleted), `work` gets a copy that carries it, while the finalizer is
/// added; a failure to add it stops the work and is returned.
pub async fn with_finalizer<K, T, E, Fut>(
    api: &Api<K>,
    finalizer: &str,
    obj: Arc<K>,
    work: impl FnOnce(Arc<K>) -> Fut,
) -> Result<T, E>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    Fut: Future<Output = Result<T, E>>,
    E: From<kube::Error>,
{
    if !is_missing(obj.as_ref(), finalizer) {
        return work(obj).await;
    }
    let mut with = obj.as_ref().clone();
    with.finalizers_mut().push(finalizer.to_string());
    let mut add = pin!(add(api, obj.as_ref(), finalizer));
    let mut work = pin!(work(Arc::new(with)));
    tokio::select! {
        biased;
        added = &mut add => {
            added?;
            work.await
        }
        // The patch is still outstanding: its outcome decides.
        done = &mut work => {
            add.await?;
            done
        }
    }
}

/// Adds `finalizer` to `obj` with a JSON patch that first tests the list
/// as read, so that a concurrent change of the finalizers fails (and is
/// retried) instead of being overwritten or duplicated.
pub async fn add<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let current = obj.finalizers();
    let operations = if current.is_empty() {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer]},
        ])
    } else {
        serde_json::json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer},
        ])
    };
    let patch = serde_json::from_value(operations).map_err(kube::Error::SerdeError)?;
    api.patch(
        &obj.name_any(),
        &PatchParams::default(),
        &Patch::Json::<()>(patch),
    )
    .await?;
    Ok(())
}

/// Removes `finalizer` from `obj` with a JSON patch that first tests the
/// entry is where it was read, so a concurrent change is not overwritten.
/// An object already gone is no error.
pub async fn remove<K>(api: &Api<K>, obj: &K, finalizer: &str) -> Result<(), kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let Some(index) = obj.finalizers().iter().position(|f| f == finalizer) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let operations = serde_json::json!([
        {"op": "test", "path": path, "value": finalizer},
        {"op": "remove", "path": path},
    ]);
    let patch = serde_json::from_value(operations).map_err(kube::Error::SerdeError)?;
    match api
        .patch(
            &obj.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    #[test]
    fn missing_only_when_absent_and_not_deleting() {
        let mut cm = ConfigMap::default();
        assert!(is_missing(&cm, "f"));
        cm.metadata.finalizers = Some(vec!["other".into(), "f".into()]);
        assert!(!is_missing(&cm, "f"));
        cm.metadata.finalizers = None;
        cm.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(!is_missing(&cm, "f"));
    }
}
