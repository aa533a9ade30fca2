//! Mapping kinds to API resources through discovery, with a cache.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::{self, Scope};

use super::object::ObjectRef;

/// Where objects of one kind live.
#[derive(Clone, Debug)]
pub struct Resource {
    /// The API resource (plural name, group, version).
    pub api_resource: ApiResource,
    /// Whether objects of the kind live in namespaces.
    pub namespaced: bool,
}

impl Resource {
    /// The API for `object` (its namespace when the kind is namespaced).
    pub(crate) fn api(&self, client: &kube::Client, object: &ObjectRef) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.clone(), &object.namespace, &self.api_resource)
        } else {
            Api::all_with(client.clone(), &self.api_resource)
        }
    }
}

type Key = (String, String, String);

/// A discovery cache shared by clones. A kind missing from the cache is looked
/// up on the API server (one request for its group-version), so kinds added by
/// a CRD a moment ago resolve as soon as the API server serves them.
#[derive(Clone, Debug, Default)]
pub struct Resolver {
    cache: Arc<RwLock<HashMap<Key, Resource>>>,
}

impl Resolver {
    /// The resource of `gvk`, or `None` when the API server does not serve it.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        gvk: &GroupVersionKind,
    ) -> Result<Option<Resource>, kube::Error> {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        if let Some(found) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(Some(found.clone()));
        }
        let resource = match discovery::pinned_kind(client, gvk).await {
            Ok((api_resource, capabilities)) => Resource {
                api_resource,
                namespaced: capabilities.scope == Scope::Namespaced,
            },
            Err(kube::Error::Discovery(_)) => return Ok(None),
            Err(err) if super::is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, resource.clone());
        Ok(Some(resource))
    }

    /// Drops a cached kind, e.g. after its CRD was deleted.
    pub fn forget(&self, gvk: &GroupVersionKind) {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&key);
    }
}
