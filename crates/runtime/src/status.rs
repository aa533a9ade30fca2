//! Writing an object's status.
//!
//! Status goes to the `/status` subresource as a JSON merge patch (RFC 7386)
//! computed from the status the controller read and the one it wants, owned by
//! the controller's field manager. Fields that disappeared are sent as `null`;
//! an unchanged status costs no API call and no resourceVersion churn.

use std::fmt::Debug;

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Error;

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
