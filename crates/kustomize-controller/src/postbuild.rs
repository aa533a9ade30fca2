//! Post-build variable substitution (`spec.postBuild`), as Flux does it:
//! each built object is printed as YAML, expanded with the variables, and
//! parsed again, so a substituted value takes the YAML type it reads as
//! (`replicas: ${REPLICAS}` becomes a number).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::envsubst::{SubstError, Template};

/// Label or annotation that opts an object out of substitution.
pub const SUBSTITUTE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";
/// The opt-out value.
pub const DISABLED: &str = "disabled";

/// Variable names Flux accepts (`^[_[:alpha:]][_[:alpha:][:digit:]]*$`).
pub const VAR_NAME_PATTERN: &str = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";

/// Substitution failures.
#[derive(Debug, thiserror::Error)]
pub enum PostBuildError {
    /// A variable name does not match [`VAR_NAME_PATTERN`].
    #[error("'{0}' var name is invalid, must match '{VAR_NAME_PATTERN}'")]
    InvalidName(String),
    /// Expansion failed (syntax, or an undefined variable in strict mode).
    #[error("variable substitution failed: {0}")]
    Substitution(#[source] SubstError),
    /// The expanded text is not a YAML object any more.
    #[error("YAMLToJSON: {0}")]
    Yaml(String),
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// The variables of one reconciliation: later sources override earlier
/// ones, inline `substitute` values override all; newlines are removed from
/// values (Flux's rule).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Variables(BTreeMap<String, String>);

impl Variables {
    /// No variables.
    pub fn new() -> Variables {
        Variables::default()
    }

    /// Adds the data of a ConfigMap or (decoded) Secret, or inline values.
    pub fn extend<'a>(&mut self, data: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in data {
            self.0.insert(name.to_owned(), value.replace('\n', ""));
        }
    }

    /// Whether there is no variable.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Checks every name against [`VAR_NAME_PATTERN`].
    pub fn validate(&self) -> Result<(), PostBuildError> {
        match self.0.keys().find(|name| !valid_name(name)) {
            Some(name) => Err(PostBuildError::InvalidName(name.clone())),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Whether an object opted out by label or annotation.
pub fn is_disabled(object: &Map<String, Value>) -> bool {
    let Some(metadata) = object.get("metadata") else {
        return false;
    };
    ["labels", "annotations"].iter().any(|field| {
        metadata
            .get(*field)
            .and_then(|map| map.get(SUBSTITUTE_KEY))
            .and_then(Value::as_str)
            == Some(DISABLED)
    })
}

/// Substitutes variables in one object; `None` when the object opted out.
pub fn substitute(
    object: &Map<String, Value>,
    variables: &Variables,
    strict: bool,
) -> Result<Option<Map<String, Value>>, PostBuildError> {
    if is_disabled(object) {
        return Ok(None);
    }
    let text = kustomize::yaml::to_yaml_document(&Value::Object(object.clone()));
    let expanded = Template::parse(&text)
        .and_then(|template| template.expand(&|name| variables.get(name), strict))
        .map_err(PostBuildError::Substitution)?;
    // sigs.k8s.io/yaml semantics, as Flux's YAMLToJSON.
    let value = kustomize::yaml::parse_single(&expanded, kustomize::yaml::ParseOptions::CONFIG)
        .map_err(|err| PostBuildError::Yaml(err.to_string()))?;
    match value {
        Value::Object(map) => Ok(Some(map)),
        _ => Err(PostBuildError::Yaml(
            "the object is no longer a mapping".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> Variables {
        let mut v = Variables::new();
        v.extend(pairs.iter().copied());
        v
    }

    #[test]
    fn values_take_their_yaml_type_after_substitution() {
        let deployment = object(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "app-${env}", "labels": {"env": "${env}"}},
            "spec": {"replicas": "${replicas:=1}", "paused": "${paused}", "template": {"metadata": {"annotations": {"id": "${id}"}}}},
        }));
        let out = substitute(
            &deployment,
            &vars(&[
                ("env", "prod"),
                ("replicas", "3"),
                ("paused", "false"),
                ("id", "42"),
            ]),
            true,
        )
        .expect("substitute")
        .expect("not disabled");
        assert_eq!(out["metadata"]["name"], json!("app-prod"));
        assert_eq!(out["spec"]["replicas"], json!(3));
        assert_eq!(out["spec"]["paused"], json!(false));
        assert_eq!(
            out["spec"]["template"]["metadata"]["annotations"]["id"],
            json!(42)
        );
    }

    #[test]
    fn defaults_apply_and_strict_mode_names_undefined_variables() {
        let cm = object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"region": "${region:=eu-1}", "zone": "${zone}"}}),
        );
        let err = substitute(&cm, &vars(&[("x", "1")]), true).expect_err("strict");
        assert_eq!(
            err.to_string(),
            "variable substitution failed: variable not set (strict mode): \"zone\""
        );
        // An empty substitution leaves `zone: ` behind, which YAML reads as null.
        let out = substitute(&cm, &vars(&[("x", "1")]), false)
            .expect("lenient")
            .expect("object");
        assert_eq!(out["data"], json!({"region": "eu-1", "zone": null}));
    }

    #[test]
    fn opt_out_by_label_or_annotation() {
        for field in ["labels", "annotations"] {
            let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", field: {SUBSTITUTE_KEY: DISABLED}},
                "data": {"script": "echo ${HOME}"}}));
            assert!(substitute(&cm, &vars(&[]), true).expect("skip").is_none());
        }
    }

    #[test]
    fn escaped_references_survive_as_literals() {
        let cm = object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"script": "echo $${HOME} $PATH"}}),
        );
        let out = substitute(&cm, &vars(&[("a", "b")]), true)
            .expect("ok")
            .expect("object");
        assert_eq!(out["data"]["script"], json!("echo ${HOME} $PATH"));
    }

    #[test]
    fn variable_names_and_values_follow_flux_rules() {
        assert!(
            vars(&[("cluster_env", "x"), ("_A1", "y")])
                .validate()
                .is_ok()
        );
        let err = vars(&[("my-var", "x")]).validate().expect_err("dash");
        assert!(
            err.to_string().contains("'my-var' var name is invalid"),
            "{err}"
        );
        assert!(vars(&[("1abc", "x")]).validate().is_err());
        let mut v = Variables::new();
        v.extend([("a", "one\ntwo\n")]);
        v.extend([("a", "three\n")]);
        assert_eq!(v.get("a").as_deref(), Some("three"));
    }

    #[test]
    fn substitution_that_breaks_yaml_is_reported() {
        let cm = object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"a": "${bad}"}}),
        );
        let err = substitute(&cm, &vars(&[("bad", "x: [unclosed")]), true).expect_err("yaml");
        assert!(err.to_string().starts_with("YAMLToJSON"), "{err}");
    }
}
