//! The full set of CRDs, with the schema adjustments the derive cannot express.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
    ValidationRule,
};
use kube::CustomResourceExt;

use crate::Error;
use crate::helm::HelmRelease;
use crate::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use crate::kustomize::Kustomization;
use crate::notification::{Alert, Provider, Receiver};
use crate::source::{
    Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRepository, OCIRepository,
};

/// Every CRD ferroflux serves, in the order Flux's components install them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        GitRepository::crd(),
        required_by_rules(OCIRepository::crd(), &["interval", "url"]),
        HelmRepository::crd(),
        HelmChart::crd(),
        Bucket::crd(),
        ExternalArtifact::crd(),
        Kustomization::crd(),
        HelmRelease::crd(),
        ImageRepository::crd(),
        ImagePolicy::crd(),
        ImageUpdateAutomation::crd(),
        Receiver::crd(),
        with_deprecated_v1beta3(
            Alert::crd(),
            &[(
                "summary",
                string_field(
                    "Deprecated: a short description added to every event; use `eventMetadata`.",
                    Some(255),
                    None,
                ),
            )],
            &[],
        ),
        with_deprecated_v1beta3(
            Provider::crd(),
            &[
                (
                    "interval",
                    string_field(
                        "Deprecated and unused.",
                        None,
                        Some(crate::duration::DURATION_PATTERN),
                    ),
                ),
                (
                    "proxy",
                    string_field(
                        "Deprecated: the HTTP(S) proxy address; use `proxySecretRef`.",
                        Some(2048),
                        Some("^(http|https)://.*$"),
                    ),
                ),
            ],
            &["mastodon"],
        ),
    ]
    .into_iter()
    .map(finish)
    .collect()
}

/// Moves `spec` fields from the schema's `required` list to root CEL rules, as Flux does
/// for the OCIRepository spec it also embeds (with those fields optional) in HelmRelease.
fn required_by_rules(
    mut crd: CustomResourceDefinition,
    fields: &[&str],
) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        if let Some(spec) = root
            .properties
            .as_mut()
            .and_then(|properties| properties.get_mut("spec"))
        {
            if let Some(required) = spec.required.as_mut() {
                required.retain(|field| !fields.contains(&field.as_str()));
            }
            if spec.required.as_ref().is_some_and(Vec::is_empty) {
                spec.required = None;
            }
        }
        let rules = root.x_kubernetes_validations.get_or_insert_with(Vec::new);
        rules.extend(fields.iter().map(|field| ValidationRule {
            rule: format!("has(self.spec) && has(self.spec.{field})"),
            message: Some(format!("spec.{field} is required")),
            ..Default::default()
        }));
    }
    crd
}

/// Adds the deprecated `v1beta3` version Flux still serves beside `v1` (which stays the
/// stored one): `v1`'s schema plus the `spec` fields `v1` dropped, minus the provider types
/// `v1` added. As in Flux there is no conversion webhook: the API server only rewrites
/// `apiVersion`, so the dropped fields are pruned when a `v1beta3` object is stored.
fn with_deprecated_v1beta3(
    mut crd: CustomResourceDefinition,
    dropped_fields: &[(&str, JSONSchemaProps)],
    added_types: &[&str],
) -> CustomResourceDefinition {
    let Some(mut version) = crd.spec.versions.first().cloned() else {
        return crd;
    };
    version.name = crate::notification::ALERT_DEPRECATED_VERSION.to_string();
    version.storage = false;
    version.deprecated = Some(true);
    version.deprecation_warning = Some(format!(
        "{} {} is deprecated, upgrade to {}",
        crate::notification::ALERT_DEPRECATED_VERSION,
        crd.spec.names.kind,
        version_name(&crd)
    ));
    if let Some(spec) = version
        .schema
        .as_mut()
        .and_then(|schema| schema.open_api_v3_schema.as_mut())
        .and_then(|root| root.properties.as_mut())
        .and_then(|properties| properties.get_mut("spec"))
    {
        let fields = spec.properties.get_or_insert_with(Default::default);
        for (name, schema) in dropped_fields {
            fields.insert((*name).to_string(), schema.clone());
        }
        if let Some(types) = fields
            .get_mut("type")
            .and_then(|type_| type_.enum_.as_mut())
        {
            types.retain(|value| {
                value
                    .0
                    .as_str()
                    .is_none_or(|name| !added_types.contains(&name))
            });
        }
    }
    crd.spec.versions.push(version);
    crd
}

/// The name of a CRD's first (stored) version.
fn version_name(crd: &CustomResourceDefinition) -> String {
    crd.spec
        .versions
        .first()
        .map(|version| version.name.clone())
        .unwrap_or_default()
}

/// A `string` schema with an optional length limit and pattern.
fn string_field(
    description: &str,
    max_length: Option<i64>,
    pattern: Option<&str>,
) -> JSONSchemaProps {
    JSONSchemaProps {
        description: Some(description.to_string()),
        type_: Some("string".to_string()),
        max_length,
        pattern: pattern.map(str::to_string),
        ..Default::default()
    }
}

/// File name controller-gen would use for a CRD: `<group>_<plural>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// First line of every generated CRD file.
const GENERATED_HEADER: &str = "# Generated by `cargo xtask crds` from crates/api. DO NOT EDIT.\n";

/// Renders a CRD as a YAML document, as written to `crds/`.
pub fn render_crd_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    let body = serde_saphyr::to_string(crd).map_err(|source| Error::RenderYaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })?;
    Ok(format!("{GENERATED_HEADER}---\n{body}"))
}

/// The content of `crds/`: one `(file name, YAML)` pair per CRD, sorted by file name.
pub fn crd_files() -> Result<Vec<(String, String)>, Error> {
    let mut files = crds()
        .iter()
        .map(|crd| Ok((crd_file_name(crd), render_crd_yaml(crd)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    files.sort();
    Ok(files)
}

/// Applies what Flux's CRDs (controller-gen output) have and the derive does not produce:
/// - `listKind` `<Kind>List`, and the `apiVersion`, `kind` and `metadata` root fields;
/// - `subresources: {}` on versions without any;
/// - `spec` optional at the root, as Go's `omitempty`-less struct field leaves it;
/// - no `nullable` anywhere: Flux omits it, so explicit nulls are pruned like in Flux;
/// - `status` defaults to `{observedGeneration: -1}` (where it has that field) so that a
///   fresh object never looks observed by a controller;
/// - `status.conditions[]` has the validations of `metav1.Condition`.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    crd.spec.names.list_kind = Some(format!("{}List", crd.spec.names.kind));
    for version in &mut crd.spec.versions {
        // controller-gen writes `subresources: {}` for kinds without a status subresource.
        version.subresources.get_or_insert_with(Default::default);
        let Some(root) = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut())
        else {
            continue;
        };
        strip_nullable(root);
        // schemars names the root after the Rust type; Flux's schemas carry no titles.
        root.title = None;
        if let Some(required) = root.required.as_mut() {
            required.retain(|field| field != "spec");
        }
        if root.required.as_ref().is_some_and(Vec::is_empty) {
            root.required = None;
        }
        let properties = root.properties.get_or_insert_with(Default::default);
        properties.extend(object_meta_fields());
        if let Some(status) = properties.get_mut("status") {
            let observed = status
                .properties
                .as_ref()
                .is_some_and(|p| p.contains_key("observedGeneration"));
            if observed {
                status.default = Some(JSON(serde_json::json!({ "observedGeneration": -1 })));
            }
            if let Some(JSONSchemaPropsOrArray::Schema(condition)) = status
                .properties
                .as_mut()
                .and_then(|properties| properties.get_mut("conditions"))
                .and_then(|conditions| conditions.items.as_mut())
            {
                constrain_condition(condition);
            }
        }
    }
    crd
}

/// The root fields every Kubernetes object has, as controller-gen writes them.
fn object_meta_fields() -> [(String, JSONSchemaProps); 3] {
    let string = |description: &str| JSONSchemaProps {
        description: Some(description.to_string()),
        type_: Some("string".to_string()),
        ..Default::default()
    };
    [
        (
            "apiVersion".to_string(),
            string(
                "Versioned schema of this representation of the object \
                 (`<group>/<version>`); servers convert recognized versions.",
            ),
        ),
        (
            "kind".to_string(),
            string("The REST resource this object represents, in CamelCase."),
        ),
        (
            "metadata".to_string(),
            // The API server refuses anything but `type` here (no description either).
            JSONSchemaProps {
                type_: Some("object".to_string()),
                ..Default::default()
            },
        ),
    ]
}

/// The validations of Kubernetes' `metav1.Condition` (its Go markers, which
/// k8s-openapi's schema does not carry).
fn constrain_condition(condition: &mut JSONSchemaProps) {
    let Some(fields) = condition.properties.as_mut() else {
        return;
    };
    if let Some(time) = fields.get_mut("lastTransitionTime") {
        time.format = Some("date-time".to_string());
    }
    if let Some(message) = fields.get_mut("message") {
        message.max_length = Some(32768);
    }
    if let Some(generation) = fields.get_mut("observedGeneration") {
        generation.format = Some("int64".to_string());
        generation.minimum = Some(0.0);
    }
    if let Some(reason) = fields.get_mut("reason") {
        reason.max_length = Some(1024);
        reason.min_length = Some(1);
        reason.pattern = Some("^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$".to_string());
    }
    if let Some(status) = fields.get_mut("status") {
        status.enum_ = Some(
            ["True", "False", "Unknown"]
                .into_iter()
                .map(|value| JSON(serde_json::json!(value)))
                .collect(),
        );
    }
    if let Some(type_) = fields.get_mut("type") {
        type_.max_length = Some(316);
        type_.pattern = Some(
            r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
                .to_string(),
        );
    }
}

fn strip_nullable(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        strip_nullable(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => strip_nullable(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(strip_nullable),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &mut schema.additional_properties {
        strip_nullable(values);
    }
    for group in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        group.iter_mut().flatten().for_each(strip_nullable);
    }
}
