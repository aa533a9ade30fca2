//! `spec.dependsOn`, as Kustomizations and HelmReleases use it: an object
//! waits until every object of its kind it depends on is ready — its Ready
//! condition True at its current generation — or, where the reference has a
//! `readyExpr`, until that CEL expression over `dep` (the dependency) and
//! `self` (the dependent) is true. A kind may add a rule of its own to the
//! built-in one (a Kustomization: the dependency applied the shared source's
//! current revision); a `readyExpr` replaces both.

use std::sync::Arc;

use api::meta::{DependencyReference, condition_type};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde::Serialize;
use serde_json::Value;

use crate::manager::Object;

/// Why a dependency is not ready; the messages are Flux's.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// The dependency does not exist (or cannot be read).
    #[error("dependency '{name}' not found: {cause}")]
    NotFound {
        /// `namespace/name` of the dependency.
        name: String,
        /// Why it could not be read.
        cause: String,
    },
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

/// Whether `dep` is ready by the built-in rule: `Ready=True` observed at its
/// current generation.
pub fn built_in_ready(dep: &Value) -> bool {
    let generation = dep.pointer("/metadata/generation");
    let status = dep.get("status");
    let observed = status.and_then(|s| s.get("observedGeneration"));
    let ready = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("type").and_then(Value::as_str) == Some(condition_type::READY)
                && c.get("status").and_then(Value::as_str) == Some("True")
        });
    ready && generation == observed
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

/// Checks one dependency `dep` of `this`: its `readyExpr` if the reference
/// has one, else the built-in rule and then `also`.
pub fn check_one<K: Serialize>(
    this: &K,
    reference: &DependencyReference,
    dep: &K,
    display: &str,
    also: impl Fn(&K) -> Result<(), DependencyError>,
) -> Result<(), DependencyError> {
    let to_value = |k: &K| serde_json::to_value(k).unwrap_or(Value::Null);
    let dep_value = to_value(dep);
    if let Some(expression) = reference
        .ready_expr
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        return if evaluate_ready_expr(display, expression, &dep_value, &to_value(this))? {
            Ok(())
        } else {
            Err(DependencyError::NotReady(display.to_owned()))
        };
    }
    if !built_in_ready(&dep_value) {
        return Err(DependencyError::NotReady(display.to_owned()));
    }
    also(dep)
}

/// Checks every dependency of `this` (objects of its own kind, read from the
/// API); the first one not ready is reported.
pub async fn check<K: Object + Serialize>(
    client: &Client,
    this: &K,
    references: &[DependencyReference],
    also: impl Fn(&K) -> Result<(), DependencyError>,
) -> Result<(), DependencyError> {
    let own_namespace = this.namespace().unwrap_or_default();
    for reference in references {
        let namespace = reference
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| own_namespace.clone());
        let display = format!("{namespace}/{}", reference.name);
        let api: Api<K> = Api::namespaced(client.clone(), &namespace);
        let dep = match api.get_opt(&reference.name).await {
            Ok(Some(dep)) => dep,
            Ok(None) => {
                return Err(DependencyError::NotFound {
                    name: display,
                    cause: format!(
                        "{}.{} \"{}\" not found",
                        K::plural(&()),
                        K::group(&()),
                        reference.name
                    ),
                });
            }
            Err(err) => {
                return Err(DependencyError::NotFound {
                    name: display,
                    cause: err.to_string(),
                });
            }
        };
        check_one(this, reference, &dep, &display, &also)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(expr: Option<&str>) -> DependencyReference {
        DependencyReference {
            name: "infra".into(),
            namespace: None,
            ready_expr: expr.map(str::to_owned),
        }
    }

    fn object(generation: i64, status: Value) -> Value {
        json!({"metadata": {"name": "infra", "generation": generation}, "status": status})
    }

    fn ready(observed: i64) -> Value {
        json!({"observedGeneration": observed, "conditions": [{"type": "Ready", "status": "True"}]})
    }

    #[test]
    fn built_in_rule_wants_ready_at_the_current_generation() {
        assert!(built_in_ready(&object(2, ready(2))));
        assert!(!built_in_ready(&object(2, ready(1))));
        assert!(!built_in_ready(&object(2, json!({}))));
        assert!(!built_in_ready(&json!({"metadata": {"generation": 1}})));
        let not_ready =
            json!({"observedGeneration": 2, "conditions": [{"type": "Ready", "status": "False"}]});
        assert!(!built_in_ready(&object(2, not_ready)));
    }

    #[test]
    fn ready_expressions_replace_the_built_in_rule_and_the_kind_rule() {
        let me = object(1, json!({}));
        let dep = object(3, json!({"lastAppliedRevision": "v1"}));
        let never = |_: &Value| Err(DependencyError::Outdated("x".into()));
        let expr = "dep.status.lastAppliedRevision == 'v1' && self.metadata.name == 'infra'";
        assert!(check_one(&me, &reference(Some(expr)), &dep, "ns/infra", never).is_ok());
        let not_yet = "dep.status.conditions.exists(c, c.type == 'Ready')";
        assert!(matches!(
            check_one(&me, &reference(Some(not_yet)), &dep, "ns/infra", never),
            Err(DependencyError::NotReady(_))
        ));
        let err = check_one(
            &me,
            &reference(Some("dep.metadata.name +")),
            &dep,
            "ns/infra",
            never,
        )
        .expect_err("syntax");
        assert!(err.is_terminal());
        let err =
            check_one(&me, &reference(Some("'text'")), &dep, "ns/infra", never).expect_err("type");
        assert!(err.to_string().contains("not a boolean"), "{err}");
        // Without an expression: built-in rule, then the kind's own.
        let ready_dep = object(2, ready(2));
        assert!(matches!(
            check_one(&me, &reference(None), &ready_dep, "ns/infra", never),
            Err(DependencyError::Outdated(_))
        ));
        assert!(check_one(&me, &reference(None), &ready_dep, "ns/infra", |_| Ok(())).is_ok());
    }
}
