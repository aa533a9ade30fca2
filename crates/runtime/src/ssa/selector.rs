//! Which ignore rules apply to an object: Flux's `Selector` (regular
//! expressions on group, version, kind, namespace and name, plus label and
//! annotation selectors).

use std::collections::BTreeMap;

use api::meta::{IgnoreRule, Selector};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use regex::Regex;

use super::Error;
use super::object::ObjectRef;

/// The JSON pointers of every rule in `rules` whose target matches the object.
pub fn ignored_paths(
    rules: &[IgnoreRule],
    reference: &ObjectRef,
    metadata: &ObjectMeta,
) -> Result<Vec<String>, Error> {
    let mut paths = Vec::new();
    for rule in rules {
        let applies = match &rule.target {
            None => true,
            Some(selector) => matches(selector, reference, metadata)?,
        };
        if applies {
            paths.extend(rule.paths.iter().cloned());
        }
    }
    Ok(paths)
}

/// Whether `selector` selects the object.
pub fn matches(
    selector: &Selector,
    reference: &ObjectRef,
    metadata: &ObjectMeta,
) -> Result<bool, Error> {
    let fields = [
        (&selector.group, reference.group.as_str()),
        (&selector.version, reference.version.as_str()),
        (&selector.kind, reference.kind.as_str()),
        (&selector.namespace, reference.namespace.as_str()),
        (&selector.name, reference.name.as_str()),
    ];
    for (pattern, value) in fields {
        if let Some(pattern) = pattern.as_deref().filter(|p| !p.is_empty()) {
            let regex = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|err| Error::InvalidSelector(format!("{pattern:?}: {err}")))?;
            if !regex.is_match(value) {
                return Ok(false);
            }
        }
    }
    let empty = BTreeMap::new();
    if let Some(expr) = selector.label_selector.as_deref()
        && !label_selector_matches(expr, metadata.labels.as_ref().unwrap_or(&empty))?
    {
        return Ok(false);
    }
    if let Some(expr) = selector.annotation_selector.as_deref()
        && !label_selector_matches(expr, metadata.annotations.as_ref().unwrap_or(&empty))?
    {
        return Ok(false);
    }
    Ok(true)
}

/// Evaluates a Kubernetes label selector string (`a=b,c!=d,e,!f,g in (h,i),
/// j notin (k)`) against a map.
pub fn label_selector_matches(
    expr: &str,
    labels: &BTreeMap<String, String>,
) -> Result<bool, Error> {
    for requirement in split_requirements(expr) {
        let requirement = requirement.trim();
        if requirement.is_empty() {
            continue;
        }
        let invalid = || Error::InvalidSelector(format!("{requirement:?} in {expr:?}"));
        let value_set = |rest: &str| -> Result<Vec<String>, Error> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or_else(invalid)?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let ok = if let Some(key) = requirement.strip_prefix('!') {
            !labels.contains_key(key.trim())
        } else if let Some((key, value)) = requirement.split_once("!=") {
            labels.get(key.trim()).map(String::as_str) != Some(value.trim())
        } else if let Some((key, value)) = requirement
            .split_once("==")
            .or_else(|| requirement.split_once('='))
        {
            labels.get(key.trim()).map(String::as_str) == Some(value.trim())
        } else if let Some((key, rest)) = requirement.split_once(" notin ") {
            let values = value_set(rest)?;
            labels.get(key.trim()).is_none_or(|v| !values.contains(v))
        } else if let Some((key, rest)) = requirement.split_once(" in ") {
            let values = value_set(rest)?;
            labels.get(key.trim()).is_some_and(|v| values.contains(v))
        } else if requirement.contains(char::is_whitespace) || requirement.contains('(') {
            return Err(invalid());
        } else {
            labels.contains_key(requirement)
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Splits at commas outside parentheses.
fn split_requirements(expr: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in expr.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&expr[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&expr[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(label_selector_matches("app=web", &l).expect("valid"));
        assert!(label_selector_matches("app==web,tier", &l).expect("valid"));
        assert!(!label_selector_matches("app!=web", &l).expect("valid"));
        assert!(label_selector_matches("!missing", &l).expect("valid"));
        assert!(label_selector_matches("tier in (front, back),app notin (db)", &l).expect("valid"));
        assert!(!label_selector_matches("tier notin (front)", &l).expect("valid"));
        assert!(label_selector_matches("", &l).expect("valid"));
        assert!(label_selector_matches("tier in front", &l).is_err());
    }

    #[test]
    fn rules_apply_to_selected_objects_only() {
        let reference = ObjectRef {
            group: "apps".to_string(),
            version: "v1".to_string(),
            kind: "Deployment".to_string(),
            namespace: "apps".to_string(),
            name: "web-1".to_string(),
        };
        let metadata = ObjectMeta {
            labels: Some(labels(&[("app", "web")])),
            ..ObjectMeta::default()
        };
        let rules = vec![
            IgnoreRule {
                paths: vec!["/spec/replicas".to_string()],
                target: Some(Selector {
                    kind: Some("Deployment".to_string()),
                    name: Some("web-.*".to_string()),
                    label_selector: Some("app=web".to_string()),
                    ..Selector::default()
                }),
            },
            IgnoreRule {
                paths: vec!["/data".to_string()],
                target: Some(Selector {
                    kind: Some("Config".to_string()),
                    ..Selector::default()
                }),
            },
            IgnoreRule {
                paths: vec!["/metadata/annotations".to_string()],
                target: None,
            },
        ];
        let paths = ignored_paths(&rules, &reference, &metadata).expect("valid");
        assert_eq!(paths, ["/spec/replicas", "/metadata/annotations"]);
        let bad = vec![IgnoreRule {
            paths: vec![],
            target: Some(Selector {
                name: Some("(".to_string()),
                ..Selector::default()
            }),
        }];
        assert!(ignored_paths(&bad, &reference, &metadata).is_err());
    }
}
