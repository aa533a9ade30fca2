//! The order in which objects are applied: Flux's stages and kind order.

use super::object::ObjectRef;

/// Kinds applied first, in this order (Flux's kind order).
const KIND_ORDER_FIRST: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds applied last, after every kind not listed: webhooks would otherwise
/// intercept the objects of the same set before their backends exist.
const KIND_ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The rank of a kind in the apply order; unlisted kinds share the rank
/// between the first and the last list.
pub fn kind_rank(kind: &str) -> usize {
    if let Some(index) = KIND_ORDER_FIRST.iter().position(|k| *k == kind) {
        return index;
    }
    let others = KIND_ORDER_FIRST.len();
    match KIND_ORDER_LAST.iter().position(|k| *k == kind) {
        Some(index) => others + 1 + index,
        None => others,
    }
}

/// Flux's order: kind rank, then namespace, then name; unlisted kinds that
/// tie on all three are ordered by kind so the result is deterministic.
pub fn apply_order(a: &ObjectRef, b: &ObjectRef) -> std::cmp::Ordering {
    kind_rank(&a.kind)
        .cmp(&kind_rank(&b.kind))
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
        .then_with(|| a.kind.cmp(&b.kind))
        .then_with(|| a.group.cmp(&b.group))
}

/// The apply stage of an object. Each stage is applied (and, for the first
/// two, waited for) before the next one starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CRDs, Namespaces and ClusterRoles: what other objects need to exist.
    Definitions,
    /// `*Class` kinds (StorageClass, IngressClass, ...).
    Classes,
    /// Kinds the operator listed to go before everything else
    /// (`--custom-apply-stage-kinds`).
    Custom,
    /// Everything else.
    Resources,
}

impl Stage {
    /// The stage of `object`; `custom_kinds` are the kinds of [`Stage::Custom`]
    /// (matched as `Kind` or `Kind.group`).
    pub fn of(object: &ObjectRef, custom_kinds: &[String]) -> Self {
        match object.kind.as_str() {
            "CustomResourceDefinition" | "Namespace" | "ClusterRole" => Self::Definitions,
            kind if kind.ends_with("Class") => Self::Classes,
            kind if custom_kinds.iter().any(|custom| {
                custom == kind
                    || custom
                        .split_once('.')
                        .is_some_and(|(k, group)| k == kind && group == object.group)
            }) =>
            {
                Self::Custom
            }
            _ => Self::Resources,
        }
    }

    /// Every stage, in apply order.
    pub const ALL: [Stage; 4] = [
        Stage::Definitions,
        Stage::Classes,
        Stage::Custom,
        Stage::Resources,
    ];

    /// Whether the engine waits for the stage's objects to be ready before
    /// the next stage (Flux does for definitions and classes).
    pub fn waited_for(self) -> bool {
        matches!(self, Self::Definitions | Self::Classes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: String::new(),
            version: "v1".to_string(),
            kind: kind.to_string(),
            namespace: namespace.to_string(),
            name: name.to_string(),
        }
    }

    #[test]
    fn sorts_by_kind_order_then_namespace_then_name() {
        let mut refs = vec![
            r("ValidatingWebhookConfiguration", "", "hook"),
            r("Widget", "b", "w"),
            r("Deployment", "b", "a"),
            r("Deployment", "a", "z"),
            r("Service", "a", "svc"),
            r("ConfigMap", "a", "cm"),
            r("Namespace", "", "a"),
            r("CustomResourceDefinition", "", "widgets.example.com"),
            r("Gizmo", "a", "g"),
            r("ClusterRole", "", "admin"),
        ];
        refs.sort_by(apply_order);
        let order: Vec<String> = refs.iter().map(ToString::to_string).collect();
        assert_eq!(
            order,
            [
                "CustomResourceDefinition/widgets.example.com",
                "Namespace/a",
                "ClusterRole/admin",
                "ConfigMap/a/cm",
                "Service/a/svc",
                "Deployment/a/z",
                "Deployment/b/a",
                "Gizmo/a/g",
                "Widget/b/w",
                "ValidatingWebhookConfiguration/hook",
            ]
        );
    }

    #[test]
    fn stages_follow_flux() {
        let none: Vec<String> = Vec::new();
        assert_eq!(
            Stage::of(&r("CustomResourceDefinition", "", "x"), &none),
            Stage::Definitions
        );
        assert_eq!(
            Stage::of(&r("Namespace", "", "x"), &none),
            Stage::Definitions
        );
        assert_eq!(
            Stage::of(&r("ClusterRole", "", "x"), &none),
            Stage::Definitions
        );
        assert_eq!(
            Stage::of(&r("StorageClass", "", "x"), &none),
            Stage::Classes
        );
        assert_eq!(
            Stage::of(&r("IngressClass", "", "x"), &none),
            Stage::Classes
        );
        assert_eq!(
            Stage::of(&r("Deployment", "a", "x"), &none),
            Stage::Resources
        );
        let custom = vec!["Widget".to_string(), "Gizmo.example.com".to_string()];
        assert_eq!(Stage::of(&r("Widget", "a", "x"), &custom), Stage::Custom);
        let mut gizmo = r("Gizmo", "a", "x");
        assert_eq!(Stage::of(&gizmo, &custom), Stage::Resources);
        gizmo.group = "example.com".to_string();
        assert_eq!(Stage::of(&gizmo, &custom), Stage::Custom);
        assert!(Stage::Definitions < Stage::Classes && Stage::Custom < Stage::Resources);
    }
}
