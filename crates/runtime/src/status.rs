//! Writing an object's status: [`StatusSession`], the working copy of one
//! reconciliation (the status as last written, the one being built, its
//! conditions, Flux's final-status rules), over [`patch_status`].
//!
//! Status goes to the `/status` subresource as a JSON merge patch (RFC 7386)
//! computed from the status the controller read and the one it wants, owned by
//! the controller's field manager. Fields that disappeared are sent as `null`;
//! an unchanged status costs no API call and no resourceVersion churn.

use std::fmt::Debug;
use std::future::Future;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;
use crate::conditions::Conditions;
use api::meta::condition_type::{READY, RECONCILING};
use api::meta::reason::PROGRESSING_WITH_RETRY;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// A Flux object and the status fields every reconciliation touches; the
/// same names in every Flux kind.
pub trait StatusObject:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static
{
    /// The kind's status type.
    type Status: Clone + Default + Serialize + Send + Sync + 'static;

    /// The object's status, if any.
    fn status(&self) -> Option<&Self::Status>;
    /// `status.conditions`.
    fn conditions(status: &mut Self::Status) -> &mut Option<Vec<Condition>>;
    /// `status.observedGeneration`.
    fn observed_generation(status: &mut Self::Status) -> &mut Option<i64>;
    /// `status.lastHandledReconcileAt`.
    fn last_handled_reconcile_at(status: &mut Self::Status) -> &mut Option<String>;
}

macro_rules! status_object {
    ($($kind:ty => $status:ty),* $(,)?) => {$(
        impl StatusObject for $kind {
            type Status = $status;

            fn status(&self) -> Option<&Self::Status> {
                self.status.as_ref()
            }

            fn conditions(status: &mut Self::Status) -> &mut Option<Vec<Condition>> {
                &mut status.conditions
            }

            fn observed_generation(status: &mut Self::Status) -> &mut Option<i64> {
                &mut status.observed_generation
            }

            fn last_handled_reconcile_at(status: &mut Self::Status) -> &mut Option<String> {
                &mut status.reconcile_request.last_handled_reconcile_at
            }
        }
    )*};
}

status_object! {
    api::source::GitRepository => api::source::GitRepositoryStatus,
    api::source::HelmRepository => api::source::HelmRepositoryStatus,
    api::source::HelmChart => api::source::HelmChartStatus,
    api::source::OCIRepository => api::source::OCIRepositoryStatus,
    api::source::Bucket => api::source::BucketStatus,
    api::kustomize::Kustomization => api::kustomize::KustomizationStatus,
    api::helm::HelmRelease => api::helm::HelmReleaseStatus,
    api::image::ImageRepository => api::image::ImageRepositoryStatus,
    api::image::ImagePolicy => api::image::ImagePolicyStatus,
    api::image::ImageUpdateAutomation => api::image::ImageUpdateAutomationStatus,
}

/// When a reconciliation records that it observed the object's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conclusion {
    /// Once Ready is True; a failed attempt keeps `Reconciling` as
    /// `ProgressingWithRetry` (Flux's kustomize- and helm-controller).
    WhenReady,
    /// Once Ready or Stalled, as kstatus defines a settled object (Flux's
    /// source-controller).
    WhenSettled,
}

/// The working copy of one reconciliation of `K`: the status as last
/// written, the one being built with its conditions, and the writes.
pub struct StatusSession<K: StatusObject> {
    api: Api<K>,
    name: String,
    field_manager: &'static str,
    generation: Option<i64>,
    requested: Option<String>,
    written: K::Status,
    /// The status being built; its conditions live in [`Self::conditions`].
    pub status: K::Status,
    /// The conditions being built.
    pub conditions: Conditions,
}

impl<K: StatusObject> StatusSession<K> {
    /// Starts from `obj`'s status, written through `api` as `field_manager`.
    /// A new `requestedAt` token is recorded as handled.
    pub fn begin(obj: &K, api: Api<K>, field_manager: &'static str) -> Self {
        let meta = obj.meta();
        let written = obj.status().cloned().unwrap_or_default();
        let mut status = written.clone();
        let conditions = Conditions::new(
            K::conditions(&mut status).take().unwrap_or_default(),
            meta.generation,
        );
        let handled = K::last_handled_reconcile_at(&mut status).clone();
        if let Some(token) = crate::reconcile_request::pending_request(meta, handled.as_deref()) {
            *K::last_handled_reconcile_at(&mut status) = Some(token.to_string());
        }
        Self {
            api,
            name: meta.name.clone().unwrap_or_default(),
            field_manager,
            generation: meta.generation,
            requested: crate::reconcile_request::requested_at(meta).map(str::to_string),
            written,
            status,
            conditions,
        }
    }

    /// The status as last written.
    pub fn written(&self) -> &K::Status {
        &self.written
    }

    /// The status built so far, conditions included.
    pub fn desired(&self) -> K::Status {
        let mut desired = self.status.clone();
        let items = self.conditions.items().to_vec();
        *K::conditions(&mut desired) = (!items.is_empty()).then_some(items);
        desired
    }

    /// Writes the status built so far (only what changed); whether a write
    /// was needed.
    pub async fn patch(&mut self) -> Result<bool, Error> {
        let desired = self.desired();
        let patched = self.write_of(desired.clone()).await?;
        self.written = desired;
        Ok(patched)
    }

    /// The write of the status built so far, owning what it needs so that it
    /// can run while the reconciliation goes on; its result goes to
    /// [`Self::record_written`].
    pub fn write(&self) -> impl Future<Output = Result<K::Status, Error>> + Send + 'static {
        let desired = self.desired();
        let write = self.write_of(desired.clone());
        async move {
            write.await?;
            Ok(desired)
        }
    }

    /// Replaces the status being built with `status`, its conditions taken
    /// from it (for steps that edit a status with its conditions inline).
    pub fn replace_status(&mut self, mut status: K::Status) {
        self.conditions = Conditions::new(
            K::conditions(&mut status).take().unwrap_or_default(),
            self.generation,
        );
        self.status = status;
    }

    /// Records `status` as what the object now holds.
    pub fn record_written(&mut self, status: K::Status) {
        self.written = status;
    }

    fn write_of(
        &self,
        desired: K::Status,
    ) -> impl Future<Output = Result<bool, Error>> + Send + 'static {
        let api = self.api.clone();
        let name = self.name.clone();
        let field_manager = self.field_manager;
        let written = self.written.clone();
        async move { patch_status(&api, field_manager, &name, Some(&written), &desired).await }
    }

    /// Flux's final-status rules: the handled request recorded, and the
    /// generation observed as `rule` says.
    pub fn conclude(&mut self, rule: Conclusion) {
        if let Some(token) = &self.requested {
            *K::last_handled_reconcile_at(&mut self.status) = Some(token.clone());
        }
        match rule {
            Conclusion::WhenSettled => {
                if self.conditions.is_settled() {
                    *K::observed_generation(&mut self.status) = self.generation;
                }
            }
            Conclusion::WhenReady => {
                if self.conditions.is_true(READY) {
                    self.conditions.delete(RECONCILING);
                    *K::observed_generation(&mut self.status) = self.generation;
                }
                if self.conditions.is_false(READY)
                    && let Some(reconciling) = self.conditions.get(RECONCILING).cloned()
                {
                    self.conditions.mark_true(
                        RECONCILING,
                        PROGRESSING_WITH_RETRY,
                        reconciling.message,
                    );
                }
            }
        }
    }
}

/// Patches `status` of the object `name` from `current` to `desired`.
/// Returns `Ok(false)` without calling the API when nothing changed.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    field_manager: &str,
    name: &str,
    current: Option<&S>,
    desired: &S,
) -> Result<bool, Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let to_value = |s: &S| serde_json::to_value(s).map_err(Error::SerializeStatus);
    let old = current.map(to_value).transpose()?.unwrap_or(Value::Null);
    let new = to_value(desired)?;
    let Some(diff) = merge_patch(&old, &new) else {
        return Ok(false);
    };
    let patch = serde_json::json!({ "status": diff });
    let params = PatchParams {
        field_manager: Some(field_manager.to_string()),
        ..PatchParams::default()
    };
    api.patch_status(name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|source| Error::PatchStatus {
            name: name.to_string(),
            source,
        })?;
    Ok(true)
}

/// The JSON merge patch turning `old` into `new`, or `None` when they are equal.
/// Objects are diffed key by key; anything else (arrays included) is replaced.
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            let mut patch = Map::new();
            for (key, new_value) in new {
                match old.get(key) {
                    Some(old_value) => {
                        if let Some(sub) = merge_patch(old_value, new_value) {
                            patch.insert(key.clone(), sub);
                        }
                    }
                    None => {
                        patch.insert(key.clone(), new_value.clone());
                    }
                }
            }
            for key in old.keys() {
                if !new.contains_key(key) {
                    patch.insert(key.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ if old == new => None,
        _ => Some(new.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn equal_values_need_no_patch() {
        let v = json!({"a": 1, "b": {"c": [1, 2]}});
        assert_eq!(merge_patch(&v, &v.clone()), None);
    }

    #[test]
    fn changed_added_and_removed_fields() {
        let old =
            json!({"artifact": {"revision": "a", "size": 1}, "observedIgnore": "x", "keep": true});
        let new = json!({"artifact": {"revision": "b", "size": 1}, "keep": true, "url": "u"});
        assert_eq!(
            merge_patch(&old, &new),
            Some(json!({"artifact": {"revision": "b"}, "observedIgnore": null, "url": "u"}))
        );
    }

    #[test]
    fn arrays_are_replaced_whole() {
        let old = json!({"conditions": [{"type": "Ready"}]});
        let new = json!({"conditions": [{"type": "Ready"}, {"type": "Reconciling"}]});
        assert_eq!(merge_patch(&old, &new), Some(new.clone()));
    }

    #[test]
    fn from_nothing_is_everything() {
        let new = json!({"observedGeneration": 2});
        assert_eq!(merge_patch(&Value::Null, &new), Some(new.clone()));
    }
}
