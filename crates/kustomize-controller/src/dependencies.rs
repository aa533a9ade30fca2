//! `spec.dependsOn` of a Kustomization: the shared rule
//! (`runtime::dependencies`: ready at its generation, or the `readyExpr`),
//! plus Flux's own rule for Kustomizations: a dependency that uses the same
//! source must have applied that source's current revision.

use api::kustomize::Kustomization;
use kube::Client;
use runtime::dependencies::DependencyError;

use crate::source::source_namespace;

/// The Kustomization's own rule for a dependency that is otherwise ready.
fn applied_current_revision(
    ks: &Kustomization,
    dep: &Kustomization,
    source_revision: &str,
) -> Result<(), DependencyError> {
    let same_source = dep.spec.source_ref.name == ks.spec.source_ref.name
        && dep.spec.source_ref.kind == ks.spec.source_ref.kind
        && source_namespace(dep) == source_namespace(ks);
    let applied = dep
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.as_deref());
    if same_source && applied != Some(source_revision) {
        let namespace = kube::ResourceExt::namespace(dep).unwrap_or_default();
        return Err(DependencyError::Outdated(format!(
            "{namespace}/{}",
            kube::ResourceExt::name_any(dep)
        )));
    }
    Ok(())
}

/// Checks every dependency of `ks`; the first one not ready is reported.
pub async fn check(
    client: &Client,
    ks: &Kustomization,
    source_revision: &str,
) -> Result<(), DependencyError> {
    let references = ks.spec.depends_on.as_deref().unwrap_or_default();
    runtime::dependencies::check(client, ks, references, |dep| {
        applied_current_revision(ks, dep, source_revision)
    })
    .await
}

#[cfg(test)]
mod tests {
    use api::meta::DependencyReference;
    use serde_json::{Value, json};

    use super::*;

    fn ks(name: &str, source: &str, status: Value) -> Kustomization {
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "apps", "generation": 2},
            "spec": {"interval": "5m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": source}},
            "status": status,
        }))
        .expect("kustomization")
    }

    fn ready(generation: i64, revision: &str) -> Value {
        json!({"observedGeneration": generation, "lastAppliedRevision": revision,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded",
                "message": "", "lastTransitionTime": "2024-01-01T00:00:00Z"}]})
    }

    #[test]
    fn built_in_rule_needs_ready_current_generation_and_revision() {
        let me = ks("apps", "repo", json!({}));
        let reference = DependencyReference {
            name: "infra".into(),
            namespace: None,
            ready_expr: None,
        };
        let check = |dep: &Kustomization| {
            runtime::dependencies::check_one(&me, &reference, dep, "apps/infra", |dep| {
                applied_current_revision(&me, dep, "main@sha1:new")
            })
        };
        assert!(check(&ks("infra", "repo", ready(2, "main@sha1:new"))).is_ok());
        assert!(matches!(
            check(&ks("infra", "repo", ready(1, "main@sha1:new"))),
            Err(DependencyError::NotReady(_))
        ));
        assert!(matches!(
            check(&ks("infra", "repo", json!({}))),
            Err(DependencyError::NotReady(_))
        ));
        let err = check(&ks("infra", "repo", ready(2, "main@sha1:old"))).expect_err("outdated");
        assert_eq!(
            err.to_string(),
            "dependency 'apps/infra' revision is not up to date"
        );
        // Another source: its revision is not compared.
        assert!(check(&ks("infra", "other", ready(2, "main@sha1:old"))).is_ok());
    }
}
