//! The inventory of applied objects (`.status.inventory`) and its diff, which
//! names the objects to garbage-collect.

use std::collections::HashSet;

use api::meta::{ResourceInventory, ResourceRef};

use super::Error;
use super::object::ObjectRef;
use super::order::apply_order;

impl ObjectRef {
    /// Flux's inventory id `<namespace>_<name>_<group>_<kind>`; the namespace
    /// of cluster-scoped objects and the core group stay empty.
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace, self.name, self.group, self.kind
        )
    }

    /// The inventory entry of this object.
    pub fn to_resource_ref(&self) -> ResourceRef {
        ResourceRef {
            id: self.inventory_id(),
            v: self.version.clone(),
        }
    }

    /// Parses an inventory entry. Namespaces, names, groups and kinds cannot
    /// contain `_`, so the id splits into exactly four parts.
    pub fn from_resource_ref(entry: &ResourceRef) -> Result<Self, Error> {
        let parts: Vec<&str> = entry.id.split('_').collect();
        let [namespace, name, group, kind] = parts.as_slice() else {
            return Err(Error::InvalidInventoryEntry {
                id: entry.id.clone(),
            });
        };
        if name.is_empty() || kind.is_empty() || entry.v.is_empty() {
            return Err(Error::InvalidInventoryEntry {
                id: entry.id.clone(),
            });
        }
        Ok(Self {
            group: (*group).to_string(),
            version: entry.v.clone(),
            kind: (*kind).to_string(),
            namespace: (*namespace).to_string(),
            name: (*name).to_string(),
        })
    }
}

/// An inventory listing `objects` once each, in the given order.
pub fn inventory_of<'a>(objects: impl IntoIterator<Item = &'a ObjectRef>) -> ResourceInventory {
    let mut seen = HashSet::new();
    let entries = objects
        .into_iter()
        .filter(|object| seen.insert(object.inventory_id()))
        .map(ObjectRef::to_resource_ref)
        .collect();
    ResourceInventory { entries }
}

/// The objects of `old` that are not in `new`, compared by id only (a new API
/// version of the same object is not stale), in reverse apply order so that
/// namespaced objects go before their Namespace and custom resources before
/// their CRD.
pub fn stale_objects(
    old: &ResourceInventory,
    new: &ResourceInventory,
) -> Result<Vec<ObjectRef>, Error> {
    let keep: HashSet<&str> = new.entries.iter().map(|entry| entry.id.as_str()).collect();
    let mut stale = old
        .entries
        .iter()
        .filter(|entry| !keep.contains(entry.id.as_str()))
        .map(ObjectRef::from_resource_ref)
        .collect::<Result<Vec<_>, _>>()?;
    stale.sort_by(|a, b| apply_order(b, a));
    stale.dedup();
    Ok(stale)
}

/// Adds `objects` that are missing from `inventory` (by id), e.g. the objects
/// a prune failed to delete, so the next reconciliation retries them.
pub fn merge_into(inventory: &mut ResourceInventory, objects: &[ObjectRef]) {
    let mut ids: HashSet<String> = inventory.entries.iter().map(|e| e.id.clone()).collect();
    for object in objects {
        if ids.insert(object.inventory_id()) {
            inventory.entries.push(object.to_resource_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, version: &str, kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    #[test]
    fn ids_follow_flux() {
        let svc = r("", "v1", "Service", "default", "podinfo");
        assert_eq!(svc.inventory_id(), "default_podinfo__Service");
        let deploy = r("apps", "v1", "Deployment", "default", "podinfo");
        assert_eq!(deploy.inventory_id(), "default_podinfo_apps_Deployment");
        let ns = r("", "v1", "Namespace", "", "apps");
        assert_eq!(ns.inventory_id(), "_apps__Namespace");
        let crd = r(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "",
            "widgets.example.com",
        );
        assert_eq!(
            crd.inventory_id(),
            "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition"
        );
        for object in [svc, deploy, ns, crd] {
            let entry = object.to_resource_ref();
            assert_eq!(
                ObjectRef::from_resource_ref(&entry).expect("parses"),
                object
            );
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for id in [
            "",
            "a_b_c",
            "a_b_c_d_e",
            "ns__apps_Deployment",
            "ns_n_apps_",
        ] {
            let entry = ResourceRef {
                id: id.to_string(),
                v: "v1".to_string(),
            };
            assert!(ObjectRef::from_resource_ref(&entry).is_err(), "{id}");
        }
    }

    #[test]
    fn diff_names_stale_objects_in_reverse_apply_order() {
        let ns = r("", "v1", "Namespace", "", "apps");
        let cm = r("", "v1", "ConfigMap", "apps", "settings");
        let deploy_old = r("apps", "v1beta1", "Deployment", "apps", "web");
        let deploy_new = r("apps", "v1", "Deployment", "apps", "web");
        let svc = r("", "v1", "Service", "apps", "web");
        let old = inventory_of([&ns, &cm, &deploy_old, &svc]);
        let new = inventory_of([&deploy_new]);
        let stale = stale_objects(&old, &new).expect("valid");
        let names: Vec<String> = stale.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "Service/apps/web",
                "ConfigMap/apps/settings",
                "Namespace/apps"
            ]
        );
        assert!(stale_objects(&new, &new).expect("valid").is_empty());
    }

    #[test]
    fn inventories_have_no_duplicates_and_merge_adds_missing() {
        let cm = r("", "v1", "ConfigMap", "apps", "settings");
        let svc = r("", "v1", "Service", "apps", "web");
        let mut inventory = inventory_of([&cm, &cm]);
        assert_eq!(inventory.entries.len(), 1);
        merge_into(&mut inventory, &[cm.clone(), svc.clone()]);
        let ids: Vec<&str> = inventory.entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["apps_settings__ConfigMap", "apps_web__Service"]);
    }
}
