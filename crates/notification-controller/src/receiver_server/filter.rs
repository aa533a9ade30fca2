//! CEL expressions of a Receiver: `spec.resourceFilter` and each resource's
//! `filter` decide per object whether it is reconciled (variables `res`,
//! the object's apiVersion, kind and metadata, and `req`, the JSON request
//! body, as Flux binds them; `claims` too for `generic-oidc`), and the
//! `generic-oidc` providers' `variables` and `validations` judge a token's
//! claims (variables `claims` and `vars`).

use std::sync::Arc;

use serde_json::{Map, Value};

/// The environment every Receiver expression compiles in: CEL's standard
/// library with optional values and the strings, lists and math extensions
/// (Flux's expressions use cel-go's equivalents).
fn environment() -> Result<cel::Env, String> {
    let mut env = cel::Env::stdlib().with_optional_support(true);
    for (name, extension) in [
        (
            "strings",
            cel::extensions::strings as fn(&mut cel::Env) -> _,
        ),
        ("lists", cel::extensions::lists),
        ("math", cel::extensions::math),
    ] {
        env.add_extension(extension)
            .map_err(|e| format!("registering the CEL {name} extension: {e}"))?;
    }
    Ok(env)
}

/// A compiled boolean expression.
pub(crate) struct Expression {
    source: String,
    env: Arc<cel::Env>,
    program: cel::Program,
}

impl Expression {
    /// Compiles `source`; the error names the expression and the parse
    /// problem.
    pub(crate) fn compile(source: &str) -> Result<Self, String> {
        let env = environment()?;
        let program = env
            .compile(source)
            .map_err(|e| format!("invalid CEL expression '{source}': {e}"))?;
        Ok(Self {
            source: source.to_string(),
            env: Arc::new(env),
            program,
        })
    }

    /// The expression's value with `variables` bound.
    pub(crate) fn evaluate(&self, variables: &[(&str, &Value)]) -> Result<Value, String> {
        let mut context = cel::Context::with_env(self.env.clone());
        for (name, value) in variables {
            context
                .add_variable(*name, *value)
                .map_err(|e| format!("binding '{name}' for '{}': {e}", self.source))?;
        }
        let value = self
            .program
            .execute(&context)
            .map_err(|e| format!("evaluating '{}': {e}", self.source))?;
        value
            .json()
            .map_err(|e| format!("the value of '{}' is not JSON: {e}", self.source))
    }

    /// The expression's value, which must be a boolean.
    pub(crate) fn evaluate_bool(&self, variables: &[(&str, &Value)]) -> Result<bool, String> {
        match self.evaluate(variables)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!("'{}' returned {other}, not a boolean", self.source)),
        }
    }
}

/// What the resource filters see of a request.
pub(crate) struct FilterInput {
    /// `req`: the JSON body (an empty map unless the request is JSON).
    pub req: Value,
    /// `claims`: a `generic-oidc` token's verified claims (else empty).
    pub claims: Value,
}

impl FilterInput {
    pub(crate) fn empty() -> Self {
        Self {
            req: Value::Object(Map::new()),
            claims: Value::Object(Map::new()),
        }
    }
}

/// The filters applying to one `spec.resources` entry: the Receiver's
/// `resourceFilter` and the entry's own `filter`; an object is reconciled
/// only when every one is true.
pub(crate) struct ResourceFilters<'a> {
    pub filters: Vec<&'a Expression>,
    pub input: &'a FilterInput,
}

impl ResourceFilters<'_> {
    /// Whether the object `res` (apiVersion, kind, metadata) passes.
    pub(crate) fn accepts(&self, res: &Value) -> Result<bool, String> {
        for filter in &self.filters {
            let variables = [
                ("res", res),
                ("req", &self.input.req),
                ("claims", &self.input.claims),
            ];
            if !filter.evaluate_bool(&variables)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn res(name: &str, labels: Value) -> Value {
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
               "metadata": {"name": name, "namespace": "apps", "labels": labels}})
    }

    #[test]
    fn filters_see_res_and_req_as_flux_binds_them() {
        let input = FilterInput {
            req: json!({"tag": "podinfo:6.1.0", "push_data": {"tag": "6.1.0"}}),
            claims: json!({}),
        };
        let by_name = Expression::compile("req.tag.contains(res.metadata.name)").unwrap();
        let filters = ResourceFilters {
            filters: vec![&by_name],
            input: &input,
        };
        assert!(filters.accepts(&res("podinfo", json!({}))).unwrap());
        assert!(!filters.accepts(&res("other", json!({}))).unwrap());

        let by_label = Expression::compile("res.metadata.labels.team == 'a'").unwrap();
        let both = ResourceFilters {
            filters: vec![&by_name, &by_label],
            input: &input,
        };
        assert!(both.accepts(&res("podinfo", json!({"team": "a"}))).unwrap());
        assert!(!both.accepts(&res("podinfo", json!({"team": "b"}))).unwrap());
    }

    #[test]
    fn strings_extension_is_available() {
        let e = Expression::compile("'PodInfo'.lowerAscii() == 'podinfo'").unwrap();
        assert!(e.evaluate_bool(&[]).unwrap());
    }

    #[test]
    fn errors_name_the_expression() {
        let err = Expression::compile("res.metadata.name ==").err().unwrap();
        assert!(err.contains("res.metadata.name =="), "{err}");
        let not_bool = Expression::compile("res.metadata.name").unwrap();
        let err = not_bool
            .evaluate_bool(&[("res", &res("x", json!({})))])
            .unwrap_err();
        assert!(err.contains("not a boolean"), "{err}");
        let missing = Expression::compile("req.nope == 1").unwrap();
        assert!(missing.evaluate_bool(&[("req", &json!({}))]).is_err());
    }
}
