//! Output order: kustomize's legacy order (by kind, then group/version,
//! then namespace and name) or the order resources were accumulated in.

use std::cmp::Ordering;

use crate::error::{Error, Result};
use crate::kustomization::SortOptions;
use crate::resid::{Gvk, ResId};
use crate::resmap::ResMap;

/// kustomize's default first kinds in legacy order.
pub const DEFAULT_ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// kustomize's default last kinds in legacy order.
pub const DEFAULT_ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn gvk_sort_string(g: &Gvk) -> String {
    let or = |s: &str, d: &'static str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(&g.group, "~G"),
        or(&g.version, "~V"),
        or(&g.kind, "~K")
    )
}

fn id_sort_string(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let nm = if id.name.is_empty() { "~N" } else { &id.name };
    format!("{}|{}|{}", id.gvk, ns, nm)
}

fn type_order(kind: &str, first: &[String], last: &[String]) -> i64 {
    if let Some(i) = first.iter().position(|k| k == kind) {
        return i as i64 - first.len() as i64;
    }
    if let Some(i) = last.iter().position(|k| k == kind) {
        return 1 + i as i64;
    }
    0
}

fn compare(a: &ResId, b: &ResId, first: &[String], last: &[String]) -> Ordering {
    if a.gvk != b.gvk {
        let (x, y) = (
            type_order(&a.gvk.kind, first, last),
            type_order(&b.gvk.kind, first, last),
        );
        if x != y {
            return x.cmp(&y);
        }
        let (sa, sb) = (gvk_sort_string(&a.gvk), gvk_sort_string(&b.gvk));
        // kustomize puts core Namespaces after same-kind ones of other groups.
        if a.gvk.kind == "Namespace"
            && b.gvk.kind == "Namespace"
            && (a.gvk.group.is_empty() || b.gvk.group.is_empty())
        {
            return sb.cmp(&sa);
        }
        return sa.cmp(&sb);
    }
    id_sort_string(a).cmp(&id_sort_string(b))
}

/// Sorts in legacy order with the given first/last kinds.
pub fn sort_legacy(m: &mut ResMap, first: &[String], last: &[String]) -> Result<()> {
    let mut items: Vec<(ResId, crate::resource::Resource)> = m
        .resources()
        .iter()
        .map(|r| (r.cur_id(), r.clone()))
        .collect();
    items.sort_by(|a, b| compare(&a.0, &b.0, first, last));
    let mut out = ResMap::new();
    out.extend_checked(items.into_iter().map(|(_, r)| r).collect())
        .map_err(|e| e.context("SortOrderTransformer: Failed to append to resources"))?;
    *m = out;
    Ok(())
}

/// Applies a kustomization's `sortOptions`.
pub fn apply_sort_options(m: &mut ResMap, opts: &SortOptions) -> Result<()> {
    match opts.order.as_str() {
        "legacy" => {
            let (first, last) = match &opts.legacy_sort_options {
                Some(l) => (l.order_first.clone(), l.order_last.clone()),
                None => default_orders(),
            };
            sort_legacy(m, &first, &last)
        }
        "fifo" => {
            if opts.legacy_sort_options.is_some() {
                return Err(Error::transformer(
                    "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'",
                ));
            }
            Ok(())
        }
        _ => Err(Error::transformer(
            "the field 'sortOptions.order' must be one of [fifo, legacy]",
        )),
    }
}

/// kustomize's default legacy kind lists.
pub fn default_orders() -> (Vec<String>, Vec<String>) {
    (
        DEFAULT_ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
        DEFAULT_ORDER_LAST.iter().map(|s| s.to_string()).collect(),
    )
}
