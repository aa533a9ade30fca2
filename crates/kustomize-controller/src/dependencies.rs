//! `spec.dependsOn`: a Kustomization waits until every Kustomization it
//! depends on is ready, and, when both use the same source, has applied the
//! source's current revision. A `readyExpr` (CEL over `dep` and `self`)
//! replaces the built-in readiness rule.

use std::sync::Arc;

use api::kustomize::Kustomization;
use api::meta::{DependencyReference, condition_type};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::source::source_namespace;

/// Why a dependency is not ready; the message is Flux's.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// The dependency does not exist (or cannot be read).
    #[error("dependency '{0}' not found: {1}")]
    NotFound(String, String),
    /// The dependency is not ready.
    #[error("dependency '{0}' is not ready")]
    NotReady(String),
    /// The dependency has not applied the shared source's current revision.
    #[error("dependency '{0}' revision is not up to date")]
    Outdated(String),
    /// A `readyExpr` does not compile or does not give a boolean.
    #[error("dependency '{name}': invalid readyExpr {expression:?}: {reason}")]
    InvalidExpression {
        /// `namespace/name` of the dependency.
        name: String,
        /// The expression.
        expression: String,
        /// Why.
        reason: String,
    },
}

impl DependencyError {
    /// Whether retrying cannot help (the spec must change).
    pub fn is_terminal(&self) -> bool {
        matches!(self, DependencyError::InvalidExpression { .. })
    }
}

/// Whether the dependency is ready by the built-in rule.
fn built_in_ready(dep: &Kustomization) -> bool {
    let Some(status) = &dep.status else {
        return false;
    };
    let conditions = status.conditions.as_deref().unwrap_or_default();
    !conditions.is_empty()
        && dep.metadata.generation == status.observed_generation
        && conditions
            .iter()
            .any(|c| c.type_ == condition_type::READY && c.status == "True")
}

/// Evaluates a `readyExpr` with `dep` and `self` bound to the two objects.
pub fn evaluate_ready_expr(
    name: &str,
    expression: &str,
    dep: &Value,
    this: &Value,
) -> Result<bool, DependencyError> {
    let invalid = |reason: String| DependencyError::InvalidExpression {
        name: name.to_owned(),
        expression: expression.to_owned(),
        reason,
    };
    let env = Arc::new(cel::Env::stdlib().with_optional_support(true));
    let program = env
        .compile(expression)
        .map_err(|err| invalid(err.to_string()))?;
    let mut context = cel::Context::with_env(env);
    context
        .add_variable("dep", dep)
        .map_err(|err| invalid(err.to_string()))?;
    context
        .add_variable("self", this)
        .map_err(|err| invalid(err.to_string()))?;
    match program.execute(&context) {
        Ok(cel::Value::Bool(ready)) => Ok(ready),
        Ok(other) => Err(invalid(format!("returned {other:?}, not a boolean"))),
        // A field the dependency has not written yet: not ready yet.
        Err(_) => Ok(false),
    }
}

fn check_one(
    ks: &Kustomization,
    reference: &DependencyReference,
    dep: &Kustomization,
    display: &str,
    source_revision: &str,
) -> Result<(), DependencyError> {
    if let Some(expression) = reference
        .ready_expr
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        let to_value = |k: &Kustomization| serde_json::to_value(k).unwrap_or(Value::Null);
        return if evaluate_ready_expr(display, expression, &to_value(dep), &to_value(ks))? {
            Ok(())
        } else {
            Err(DependencyError::NotReady(display.to_owned()))
        };
    }
    if !built_in_ready(dep) {
        return Err(DependencyError::NotReady(display.to_owned()));
    }
    let same_source = dep.spec.source_ref.name == ks.spec.source_ref.name
        && dep.spec.source_ref.kind == ks.spec.source_ref.kind
        && source_namespace(dep) == source_namespace(ks);
    let applied = dep
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.as_deref());
    if same_source && applied != Some(source_revision) {
        return Err(DependencyError::Outdated(display.to_owned()));
    }
    Ok(())
}

/// Checks every dependency of `ks`; the first one not ready is reported.
pub async fn check(
    client: &Client,
    ks: &Kustomization,
    source_revision: &str,
) -> Result<(), DependencyError> {
    let own_namespace = ks.namespace().unwrap_or_default();
    for reference in ks.spec.depends_on.as_deref().unwrap_or_default() {
        let namespace = reference
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| own_namespace.clone());
        let display = format!("{namespace}/{}", reference.name);
        let api: Api<Kustomization> = Api::namespaced(client.clone(), &namespace);
        let dep = match api.get_opt(&reference.name).await {
            Ok(Some(dep)) => dep,
            Ok(None) => {
                return Err(DependencyError::NotFound(
                    display,
                    format!(
                        "kustomizations.kustomize.toolkit.fluxcd.io \"{}\" not found",
                        reference.name
                    ),
                ));
            }
            Err(err) => return Err(DependencyError::NotFound(display, err.to_string())),
        };
        check_one(ks, reference, &dep, &display, source_revision)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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

    fn reference(expr: Option<&str>) -> DependencyReference {
        DependencyReference {
            name: "infra".into(),
            namespace: None,
            ready_expr: expr.map(str::to_owned),
        }
    }

    #[test]
    fn built_in_rule_needs_ready_current_generation_and_revision() {
        let me = ks("apps", "repo", json!({}));
        let check = |dep: &Kustomization| {
            check_one(&me, &reference(None), dep, "apps/infra", "main@sha1:new")
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

    #[test]
    fn ready_expressions_replace_the_built_in_rule() {
        let me = ks("apps", "repo", json!({}));
        let dep = ks("infra", "repo", json!({"lastAppliedRevision": "v1"}));
        let expr = "dep.status.lastAppliedRevision == 'v1' && self.metadata.name == 'apps'";
        assert!(check_one(&me, &reference(Some(expr)), &dep, "apps/infra", "x").is_ok());
        let not_yet = "dep.status.conditions.exists(c, c.type == 'Ready')";
        assert!(matches!(
            check_one(&me, &reference(Some(not_yet)), &dep, "apps/infra", "x"),
            Err(DependencyError::NotReady(_))
        ));
        let err = check_one(
            &me,
            &reference(Some("dep.metadata.name +")),
            &dep,
            "apps/infra",
            "x",
        )
        .expect_err("syntax");
        assert!(err.is_terminal());
        let err =
            check_one(&me, &reference(Some("'text'")), &dep, "apps/infra", "x").expect_err("type");
        assert!(err.to_string().contains("not a boolean"), "{err}");
    }
}
