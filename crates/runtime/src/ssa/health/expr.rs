//! Health checks written as CEL expressions (`healthCheckExprs`), for custom
//! resources whose status kstatus cannot read.
//!
//! Each expression sees the object's top-level fields as variables
//! (`metadata`, `spec`, `status`, ...). They are evaluated in Flux's order:
//! `inProgress`, then `failed`, then `current`; the first that is true
//! decides, and none being true means in progress. An expression that cannot
//! be evaluated yet (typically a status field the object's controller has not
//! written) also means in progress, so the wait goes on until the timeout.

use std::sync::Arc;

use api::meta::CustomHealthCheck;
use cel::{Context, Env, Program};
use serde_json::Value;

use super::kstatus::Health;
use crate::ssa::Error;
use crate::ssa::object::ObjectRef;

/// A [`CustomHealthCheck`] with its expressions compiled.
pub struct CompiledCheck {
    group: String,
    kind: Option<String>,
    current: Program,
    in_progress: Option<Program>,
    failed: Option<Program>,
}

impl std::fmt::Debug for CompiledCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledCheck")
            .field("group", &self.group)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The CEL environment shared by all checks: the standard library and macros
/// (`has`, `all`, `exists`, `filter`, ...) and optional field access.
fn environment() -> Arc<Env> {
    Arc::new(Env::stdlib().with_optional_support(true))
}

impl CompiledCheck {
    /// Compiles every expression of `check`.
    pub fn compile(check: &CustomHealthCheck) -> Result<Self, Error> {
        let env = environment();
        let label = format!(
            "{}/{}",
            check.api_version,
            check.kind.as_deref().unwrap_or("*")
        );
        let compile = |which: &'static str, source: &str| {
            env.compile(source).map_err(|err| Error::InvalidExpression {
                kind: label.clone(),
                which,
                expression: source.to_string(),
                reason: err.to_string(),
            })
        };
        let optional = |which, source: &Option<String>| {
            source
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| compile(which, s))
                .transpose()
        };
        let group = check
            .api_version
            .rsplit_once('/')
            .map(|(group, _)| group.to_string())
            .unwrap_or_default();
        Ok(Self {
            group,
            kind: check.kind.clone().filter(|k| !k.is_empty()),
            current: compile("current", &check.current)?,
            in_progress: optional("inProgress", &check.in_progress)?,
            failed: optional("failed", &check.failed)?,
        })
    }

    /// Whether the check covers `object` (same API group and kind; any
    /// version).
    pub fn matches(&self, object: &ObjectRef) -> bool {
        self.group == object.group && self.kind.as_ref().is_none_or(|k| *k == object.kind)
    }

    /// The health of the live `object`.
    pub fn evaluate(&self, object: &Value) -> Health {
        if object
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return Health {
                status: super::Status::Terminating,
                message: "Resource scheduled for deletion".to_string(),
            };
        }
        let mut context = Context::with_env(environment());
        if let Some(fields) = object.as_object() {
            for (name, value) in fields {
                if let Err(err) = context.add_variable(name.as_str(), value) {
                    return Health::in_progress(format!("cannot evaluate {name}: {err}"));
                }
            }
        }
        let steps = [
            (self.in_progress.as_ref(), "inProgress"),
            (self.failed.as_ref(), "failed"),
            (Some(&self.current), "current"),
        ];
        for (program, which) in steps {
            let Some(program) = program else { continue };
            match program.execute(&context) {
                Ok(cel::Value::Bool(true)) => {
                    let message = format!("{which} expression is true");
                    return match which {
                        "failed" => Health::failed(message),
                        "current" => Health::current(message),
                        _ => Health::in_progress(message),
                    };
                }
                Ok(cel::Value::Bool(false)) => {}
                Ok(other) => {
                    return Health::in_progress(format!(
                        "{which} expression returned {other:?}, not a boolean"
                    ));
                }
                Err(err) => {
                    return Health::in_progress(format!(
                        "{which} expression cannot be evaluated yet: {err}"
                    ));
                }
            }
        }
        Health::in_progress("no health check expression is true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssa::health::Status;
    use serde_json::json;

    fn check(current: &str, in_progress: Option<&str>, failed: Option<&str>) -> CompiledCheck {
        CompiledCheck::compile(&CustomHealthCheck {
            api_version: "cert-manager.io/v1".to_string(),
            kind: Some("Certificate".to_string()),
            current: current.to_string(),
            in_progress: in_progress.map(str::to_string),
            failed: failed.map(str::to_string),
        })
        .expect("compiles")
    }

    fn certificate(ready: &str, generation: i64, observed: i64) -> Value {
        json!({
            "apiVersion": "cert-manager.io/v1", "kind": "Certificate",
            "metadata": {"name": "web", "namespace": "apps", "generation": generation},
            "status": {"conditions": [
                {"type": "Ready", "status": ready, "observedGeneration": observed}
            ]}
        })
    }

    const CURRENT: &str = "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'True')";
    const FAILED: &str = "status.conditions.filter(e, e.type == 'Ready').all(e, e.observedGeneration == metadata.generation && e.status == 'False')";
    const IN_PROGRESS: &str =
        "status.conditions.exists(e, e.observedGeneration != metadata.generation)";

    #[test]
    fn expressions_decide_in_flux_order() {
        let check = check(CURRENT, Some(IN_PROGRESS), Some(FAILED));
        assert_eq!(
            check.evaluate(&certificate("True", 2, 2)).status,
            Status::Current
        );
        assert_eq!(
            check.evaluate(&certificate("False", 2, 2)).status,
            Status::Failed
        );
        // inProgress is evaluated first, so an old generation is never failed.
        assert_eq!(
            check.evaluate(&certificate("False", 2, 1)).status,
            Status::InProgress
        );
        assert_eq!(
            check.evaluate(&certificate("Unknown", 2, 2)).status,
            Status::InProgress
        );
    }

    #[test]
    fn missing_fields_mean_in_progress() {
        let check = check(CURRENT, None, None);
        let fresh = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
                           "metadata": {"name": "web", "generation": 1}});
        let health = check.evaluate(&fresh);
        assert_eq!(health.status, Status::InProgress, "{health:?}");
        let guarded = super::tests::check(
            "has(status.conditions) && status.conditions.size() > 0",
            None,
            None,
        );
        assert_eq!(guarded.evaluate(&fresh).status, Status::InProgress);
    }

    #[test]
    fn checks_match_by_group_and_kind_and_reject_bad_syntax() {
        let check = check("true", None, None);
        let mut reference = ObjectRef {
            group: "cert-manager.io".to_string(),
            version: "v1beta1".to_string(),
            kind: "Certificate".to_string(),
            namespace: "apps".to_string(),
            name: "web".to_string(),
        };
        assert!(check.matches(&reference));
        reference.kind = "Issuer".to_string();
        assert!(!check.matches(&reference));
        let err = CompiledCheck::compile(&CustomHealthCheck {
            api_version: "example.com/v1".to_string(),
            kind: Some("Widget".to_string()),
            current: "status.ready ==".to_string(),
            in_progress: None,
            failed: None,
        })
        .expect_err("syntax error");
        assert!(err.to_string().contains("current"), "{err}");
    }
}
