//! The `reconcile.fluxcd.io/requestedAt` annotation: a user (or `ferroflux
//! reconcile`) asks for a reconciliation now by setting a new token; the
//! controller records the token it handled in `status.lastHandledReconcileAt`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;

/// Annotation requesting a reconciliation outside the interval.
pub const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The token of the reconciliation request on an object, if any.
pub fn requested_at(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(REQUESTED_AT)
        .map(String::as_str)
}

/// The request token still to be acknowledged: present on the object and
/// different from the one recorded as handled.
pub fn pending_request<'a>(meta: &'a ObjectMeta, last_handled: Option<&str>) -> Option<&'a str> {
    requested_at(meta).filter(|token| Some(*token) != last_handled)
}

/// A watch predicate (for `predicate_filter`) that changes value whenever the
/// request token changes, so a new request triggers a reconcile even though
/// the generation did not move.
pub fn requested_at_predicate<K: Resource>(obj: &K) -> Option<u64> {
    requested_at(obj.meta()).map(|token| {
        let mut hasher = DefaultHasher::new();
        token.hash(&mut hasher);
        hasher.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn meta_with(token: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            annotations: token.map(|t| BTreeMap::from([(REQUESTED_AT.to_string(), t.to_string())])),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn pending_only_when_token_is_new() {
        let meta = meta_with(Some("2026-11-24T10:00:00Z"));
        assert_eq!(pending_request(&meta, None), Some("2026-11-24T10:00:00Z"));
        assert_eq!(
            pending_request(&meta, Some("older")),
            Some("2026-11-24T10:00:00Z")
        );
        assert_eq!(pending_request(&meta, Some("2026-11-24T10:00:00Z")), None);
        assert_eq!(pending_request(&meta_with(None), Some("x")), None);
    }

    #[test]
    fn predicate_tracks_token() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let a = ConfigMap {
            metadata: meta_with(Some("1")),
            ..ConfigMap::default()
        };
        let b = ConfigMap {
            metadata: meta_with(Some("2")),
            ..ConfigMap::default()
        };
        let none = ConfigMap::default();
        assert_ne!(requested_at_predicate(&a), requested_at_predicate(&b));
        assert_eq!(
            requested_at_predicate(&a),
            requested_at_predicate(&a.clone())
        );
        assert_eq!(requested_at_predicate(&none), None);
    }
}
