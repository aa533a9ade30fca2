//! Taking over the fields other tools set before the controller managed an
//! object (Flux's metadata cleanup).
//!
//! An object first created with `kubectl apply` (client-side) or edited with
//! `kubectl` keeps those managers' entries in `managedFields`; server-side
//! apply then never removes a field the manifest dropped, because kubectl
//! still owns it. Before applying, the engine moves such entries into its own
//! `Apply` entry and removes kubectl's last-applied annotation, unless the
//! object is annotated `ssa: Merge`.

use serde_json::{Map, Value, json};

/// kubectl's client-side apply record.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Which `managedFields` entries are taken over.
#[derive(Clone, Debug)]
pub struct Takeover<'a> {
    /// The engine's field manager; its own `Update` entries are merged into
    /// its `Apply` entry too.
    pub field_manager: &'a str,
    /// More managers to take over whatever their operation
    /// (`--override-manager`).
    pub extra_managers: &'a [String],
}

impl Takeover<'_> {
    fn takes_over(&self, manager: &str, operation: &str) -> bool {
        // kubectl records itself as `kubectl`, `kubectl-client-side-apply`,
        // `kubectl-edit`, `kubectl-patch`, ...
        let kubectl = manager == "kubectl" || manager.starts_with("kubectl-");
        (kubectl && matches!(operation, "Apply" | "Update"))
            || (operation == "Update"
                && (manager == "before-first-apply" || manager == self.field_manager))
            || self.extra_managers.iter().any(|m| m == manager)
    }

    /// A merge patch for `live` that drops kubectl's last-applied annotation
    /// and moves the fields of taken-over managers into the engine's `Apply`
    /// entry; `None` when there is nothing to take over.
    pub fn patch(&self, live: &Value) -> Option<Value> {
        let has_last_applied = live
            .pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key(LAST_APPLIED));
        let entries = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let field = |entry: &Value, key: &str| {
            entry
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let (taken, mut kept): (Vec<Value>, Vec<Value>) = entries.into_iter().partition(|entry| {
            self.takes_over(&field(entry, "manager"), &field(entry, "operation"))
                && entry
                    .get("subresource")
                    .is_none_or(|s| s.as_str().is_none_or(str::is_empty))
        });
        if taken.is_empty() && !has_last_applied {
            return None;
        }
        let mut patch = json!({"metadata": {}});
        if has_last_applied {
            patch["metadata"]["annotations"] = json!({ LAST_APPLIED: null });
        }
        if !taken.is_empty() {
            let own = kept.iter().position(|entry| {
                field(entry, "manager") == self.field_manager
                    && field(entry, "operation") == "Apply"
                    && entry
                        .get("subresource")
                        .is_none_or(|s| s.as_str().is_none_or(str::is_empty))
            });
            let mut fields = own
                .and_then(|i| kept[i].get("fieldsV1").cloned())
                .unwrap_or_else(|| Value::Object(Map::new()));
            for entry in &taken {
                if let Some(theirs) = entry.get("fieldsV1") {
                    merge_fields(&mut fields, theirs);
                }
            }
            if has_last_applied
                && let Some(annotations) = fields
                    .pointer_mut("/f:metadata/f:annotations")
                    .and_then(Value::as_object_mut)
            {
                annotations.remove(&format!("f:{LAST_APPLIED}"));
            }
            let api_version = live.get("apiVersion").cloned().unwrap_or(Value::Null);
            match own {
                Some(i) => kept[i]["fieldsV1"] = fields,
                None => kept.push(json!({
                    "manager": self.field_manager,
                    "operation": "Apply",
                    "apiVersion": api_version,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                })),
            }
            patch["metadata"]["managedFields"] = Value::Array(kept);
        }
        Some(patch)
    }
}

/// Union of two `fieldsV1` trees.
fn merge_fields(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(into), Value::Object(from)) => {
            for (key, value) in from {
                match into.get_mut(key) {
                    Some(existing) => merge_fields(existing, value),
                    None => {
                        into.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (into, from) if into.is_null() => *into = from.clone(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANAGER: &str = "kustomize-controller";

    fn takeover() -> Takeover<'static> {
        Takeover {
            field_manager: MANAGER,
            extra_managers: &[],
        }
    }

    #[test]
    fn kubectl_fields_move_into_the_apply_entry() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "settings",
                "annotations": {LAST_APPLIED: "{}", "keep": "me"},
                "managedFields": [
                    {"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                     "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:data": {"f:old": {}}, "f:metadata": {"f:annotations": {
                         ".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}}},
                    {"manager": MANAGER, "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
                     "fieldsV1": {"f:data": {"f:new": {}}}},
                    {"manager": "other-operator", "operation": "Update", "apiVersion": "v1",
                     "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:theirs": {}}}}
                ]
            }
        });
        let patch = takeover().patch(&live).expect("something to take over");
        assert_eq!(
            patch["metadata"]["annotations"],
            json!({LAST_APPLIED: null})
        );
        let entries = patch["metadata"]["managedFields"].as_array().expect("list");
        assert_eq!(entries.len(), 2, "{entries:?}");
        let own = &entries[0];
        assert_eq!(own["manager"], MANAGER);
        assert_eq!(
            own["fieldsV1"],
            json!({"f:data": {"f:new": {}, "f:old": {}}, "f:metadata": {"f:annotations": {".": {}}}})
        );
        assert_eq!(entries[1]["manager"], "other-operator");
    }

    #[test]
    fn an_apply_entry_is_created_when_missing_and_nothing_happens_without_kubectl() {
        let live = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": [
                {"manager": "before-first-apply", "operation": "Update", "apiVersion": "apps/v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}
        });
        let patch = takeover()
            .patch(&live)
            .expect("before-first-apply is taken over");
        assert_eq!(
            patch["metadata"]["managedFields"],
            json!([{"manager": MANAGER, "operation": "Apply", "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}])
        );
        let clean = json!({"metadata": {"managedFields": [
            {"manager": MANAGER, "operation": "Apply", "fieldsV1": {}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"}]}});
        assert!(takeover().patch(&clean).is_none());
        let extra = vec!["kube-controller-manager".to_string()];
        let overriding = Takeover {
            field_manager: MANAGER,
            extra_managers: &extra,
        };
        assert!(
            overriding.patch(&clean).is_none(),
            "status entries are never taken over"
        );
    }
}
