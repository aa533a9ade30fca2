//! Deciding whether a server-side dry-run result differs from the live object.
//!
//! The dry-run result is what the object would become; when it equals the
//! live object, apart from bookkeeping the API server changes on every write,
//! applying would change nothing and the object is unchanged.

use serde_json::Value;

/// Metadata fields the API server rewrites on a write without any change of
/// the object's content.
const VOLATILE_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "uid",
    "selfLink",
];

/// A copy of `object` without the volatile metadata and without the fields at
/// `ignore` (JSON pointers, RFC 6901).
pub fn normalized(object: &Value, ignore: &[String]) -> Value {
    let mut copy = object.clone();
    // Status is the controllers' to write, not the apply's: a Deployment's
    // status moving between the dry-run and the read is no change of ours.
    if let Some(root) = copy.as_object_mut() {
        root.remove("status");
    }
    if let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in VOLATILE_METADATA {
            metadata.remove(*field);
        }
        // An empty map and an absent one mean the same.
        for field in ["labels", "annotations"] {
            if metadata
                .get(field)
                .is_some_and(|v| v.is_null() || v.as_object().is_some_and(|m| m.is_empty()))
            {
                metadata.remove(field);
            }
        }
    }
    for pointer in ignore {
        remove_pointer(&mut copy, pointer);
    }
    copy
}

/// Removes the value at a JSON pointer, if present.
fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = unescape(last);
    let target = if parent.is_empty() {
        Some(value)
    } else {
        value.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointers at which `desired` (a dry-run result) differs from
/// `live`, after normalising both; empty when the object is unchanged.
/// Maps are compared key by key, everything else as a whole, so a changed
/// list element is reported at the element's index.
pub fn differences(desired: &Value, live: &Value, ignore: &[String]) -> Vec<String> {
    let desired = normalized(desired, ignore);
    let live = normalized(live, ignore);
    let mut paths = Vec::new();
    collect_differences(&desired, &live, String::new(), &mut paths);
    paths
}

fn collect_differences(desired: &Value, live: &Value, path: String, out: &mut Vec<String>) {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => {
            for (key, dv) in d {
                let child = format!("{path}/{}", escape(key));
                match l.get(key) {
                    Some(lv) => collect_differences(dv, lv, child, out),
                    None => out.push(child),
                }
            }
            for key in l.keys().filter(|key| !d.contains_key(*key)) {
                out.push(format!("{path}/{}", escape(key)));
            }
        }
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => {
            for (index, (dv, lv)) in d.iter().zip(l).enumerate() {
                collect_differences(dv, lv, format!("{path}/{index}"), out);
            }
        }
        (d, l) if numbers_equal(d, l) => {}
        (d, l) => {
            if d != l {
                out.push(if path.is_empty() {
                    "/".to_string()
                } else {
                    path
                });
            }
        }
    }
}

/// `1` and `1.0` are the same quantity for the API server.
fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "settings",
                "namespace": "apps",
                "uid": "1234",
                "resourceVersion": "17",
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "managedFields": [{"manager": "kustomize-controller", "time": "2026-01-01T00:00:00Z"}],
                "labels": {"app": "web"}
            },
            "data": {"a": "1", "b": "2"}
        })
    }

    #[test]
    fn bookkeeping_changes_are_not_differences() {
        let mut dry_run = live();
        dry_run["metadata"]["resourceVersion"] = json!("18");
        dry_run["metadata"]["managedFields"] =
            json!([{"manager": "kustomize-controller", "time": "2026-02-02T00:00:00Z"}]);
        assert!(differences(&dry_run, &live(), &[]).is_empty());
    }

    #[test]
    fn status_written_by_other_controllers_is_no_difference() {
        let mut dry_run = live();
        dry_run["status"] = json!({"observedGeneration": 1, "replicas": 0});
        let mut current = live();
        current["status"] = json!({"observedGeneration": 2, "replicas": 0, "conditions": []});
        assert!(differences(&dry_run, &current, &[]).is_empty());
    }

    #[test]
    fn content_changes_are_reported_by_pointer() {
        let mut dry_run = live();
        dry_run["data"]["a"] = json!("changed");
        dry_run["data"]["c/d"] = json!("new");
        dry_run["metadata"]["labels"]["owner"] = json!("me");
        let mut paths = differences(&dry_run, &live(), &[]);
        paths.sort();
        assert_eq!(paths, ["/data/a", "/data/c~1d", "/metadata/labels/owner"]);
    }

    #[test]
    fn removed_fields_and_list_changes_are_reported() {
        let mut with_list = live();
        with_list["spec"] = json!({"ports": [{"port": 80}, {"port": 443}]});
        let mut dry_run = with_list.clone();
        dry_run["spec"]["ports"][1]["port"] = json!(8443);
        dry_run["data"].as_object_mut().expect("map").remove("b");
        let mut paths = differences(&dry_run, &with_list, &[]);
        paths.sort();
        assert_eq!(paths, ["/data/b", "/spec/ports/1/port"]);
        let mut shorter = with_list.clone();
        shorter["spec"]["ports"] = json!([{"port": 80}]);
        assert_eq!(differences(&shorter, &with_list, &[]), ["/spec/ports"]);
    }

    #[test]
    fn ignored_pointers_and_equal_numbers_are_not_differences() {
        let mut dry_run = live();
        dry_run["data"]["a"] = json!("changed");
        assert!(differences(&dry_run, &live(), &["/data/a".to_string()]).is_empty());
        let a = json!({"spec": {"replicas": 1}});
        let b = json!({"spec": {"replicas": 1.0}});
        assert!(differences(&a, &b, &[]).is_empty());
        let mut empty_labels = live();
        empty_labels["metadata"]["labels"] = json!({});
        let mut no_labels = live();
        no_labels["metadata"]
            .as_object_mut()
            .expect("map")
            .remove("labels");
        assert!(differences(&empty_labels, &no_labels, &[]).is_empty());
    }
}
