//! The full set of CRDs, with the schema adjustments the derive cannot express.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;

use crate::Error;
use crate::helm::HelmRelease;
use crate::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use crate::kustomize::Kustomization;
use crate::notification::{Alert, Provider, Receiver};
use crate::source::{Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository};

/// Every CRD ferroflux serves, in the order Flux's components install them.
pub fn crds() -> Vec<CustomResourceDefinition> {
    [
        GitRepository::crd(),
        OCIRepository::crd(),
        HelmRepository::crd(),
        HelmChart::crd(),
        Bucket::crd(),
        Kustomization::crd(),
        HelmRelease::crd(),
        ImageRepository::crd(),
        ImagePolicy::crd(),
        ImageUpdateAutomation::crd(),
        Receiver::crd(),
        Alert::crd(),
        Provider::crd(),
    ]
    .into_iter()
    .map(finish)
    .collect()
}

/// File name controller-gen would use for a CRD: `<group>_<plural>.yaml`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// Renders a CRD as a YAML document.
pub fn render_crd_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    serde_saphyr::to_string(crd).map_err(|source| Error::RenderYaml {
        name: crd.metadata.name.clone().unwrap_or_default(),
        source,
    })
}

/// Applies what Flux's CRDs have and the derive does not produce:
/// - no `nullable` anywhere: Flux omits it, so explicit nulls are pruned like in Flux;
/// - `status` defaults to `{observedGeneration: -1}` so that a fresh object never looks
///   observed by a controller.
fn finish(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
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
        if let Some(status) = root
            .properties
            .as_mut()
            .and_then(|properties| properties.get_mut("status"))
        {
            status.default = Some(JSON(serde_json::json!({ "observedGeneration": -1 })));
        }
    }
    crd
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
