//! The source object a HelmRelease's `spec.chart` template generates: a
//! HelmChart (source-controller builds the chart from the template's
//! `sourceRef`) or, with `kind: OCIRepository`, an OCIRepository
//! (source-controller pulls the chart from the template's `url`).
//!
//! As in Flux the object is named `<namespace>-<name>` after the HelmRelease,
//! lives in the HelmRelease's namespace (a HelmChart in its `sourceRef`'s
//! namespace when that is set: `GetHelmChartTemplateReference`), checks its
//! source every template `interval` or else the HelmRelease's, and carries
//! the template's labels and annotations plus the owner labels. It is kept in
//! sync with server-side apply; `status.helmChart` names it (`<ns>/<name>`
//! for a HelmChart, `<kind>/<ns>/<name>` otherwise) so that the object can
//! be deleted when the template changes its kind, name or namespace, when
//! the release switches to `chartRef`, or when the HelmRelease is deleted.

use api::helm::{HelmChartTemplate, HelmChartTemplateKind, HelmChartTemplateSpec, HelmRelease};
use api::source::{
    CloudProvider, HelmChart, HelmChartSpec, HelmChartVerification, LocalHelmChartSourceReference,
    OCIRepository, OCIRepositorySpec, ReconcileStrategy,
};
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams};
use kube::{Client, ResourceExt};

use crate::chart::{ChartError, SourceRef};
use crate::names::helm_chart_name;

/// The kinds a template generates, as `status.helmChart` and the API name them.
const HELM_CHART: &str = "HelmChart";
const OCI_REPOSITORY: &str = "OCIRepository";

/// Why a template cannot become an object. The CRD's rules refuse these
/// templates already; the controller still never drops a field silently.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTemplate(String);

/// The object a template asks for: Flux's `GetHelmChartTemplateReference`.
pub fn reference(hr: &HelmRelease) -> Option<SourceRef> {
    let template = hr.spec.chart.as_ref()?;
    let namespace = hr.namespace().unwrap_or_default();
    let name = helm_chart_name(&namespace, &hr.name_any());
    Some(match template.kind() {
        HelmChartTemplateKind::OCIRepository => SourceRef {
            kind: OCI_REPOSITORY,
            namespace,
            name,
        },
        HelmChartTemplateKind::HelmChart => SourceRef {
            kind: HELM_CHART,
            namespace: template
                .spec
                .source_ref
                .as_ref()
                .and_then(|source| source.namespace.clone())
                .unwrap_or(namespace),
            name,
        },
    })
}

/// `status.helmChart` for a generated object: a HelmChart without its kind,
/// as before Flux could generate other kinds, anything else with it.
pub fn status_value(reference: &SourceRef) -> String {
    let SourceRef {
        kind,
        namespace,
        name,
    } = reference;
    match *kind {
        HELM_CHART => format!("{namespace}/{name}"),
        _ => format!("{kind}/{namespace}/{name}"),
    }
}

/// The object `status.helmChart` names (Flux's `GetHelmChartReference`):
/// two parts are a HelmChart, three are kind, namespace and name. Values of
/// any other shape, or of kinds a template never generates, name nothing.
pub fn parse_status_value(value: &str) -> Option<SourceRef> {
    let parts: Vec<&str> = value.split('/').collect();
    let (kind, namespace, name) = match parts.as_slice() {
        [namespace, name] => (HELM_CHART, *namespace, *name),
        [kind, namespace, name] => (
            [HELM_CHART, OCI_REPOSITORY]
                .into_iter()
                .find(|known| known == kind)?,
            *namespace,
            *name,
        ),
        _ => return None,
    };
    Some(SourceRef {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
    })
}

/// The object the template of `hr` generates, as applied (without status),
/// with its reference; `None` without a template.
pub fn generate(
    hr: &HelmRelease,
) -> Result<Option<(SourceRef, serde_json::Value)>, InvalidTemplate> {
    let (Some(template), Some(reference)) = (hr.spec.chart.as_ref(), reference(hr)) else {
        return Ok(None);
    };
    let spec = &template.spec;
    let kind = template.kind();
    let misplaced = fields_of_the_other_kind(spec, kind);
    if !misplaced.is_empty() {
        let (kind_name, article) = match kind {
            HelmChartTemplateKind::HelmChart => (HELM_CHART, "a"),
            HelmChartTemplateKind::OCIRepository => (OCI_REPOSITORY, "an"),
        };
        return Err(InvalidTemplate(format!(
            "{} cannot be set when chart.kind is '{kind_name}': {article} {kind_name} has no such field",
            misplaced
                .iter()
                .map(|field| format!("chart.spec.{field}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let metadata = object_meta(hr, template, &reference);
    let interval = spec
        .interval
        .clone()
        .unwrap_or_else(|| hr.spec.interval.clone());
    let object = match kind {
        HelmChartTemplateKind::HelmChart => {
            let (Some(chart), Some(source)) = (&spec.chart, &spec.source_ref) else {
                return Err(InvalidTemplate(
                    "chart.spec.chart and chart.spec.sourceRef must be set when chart.kind is not 'OCIRepository'"
                        .into(),
                ));
            };
            let object = HelmChart {
                metadata,
                spec: HelmChartSpec {
                    chart: chart.clone(),
                    version: Some(spec.version.clone().unwrap_or_else(|| "*".to_string())),
                    source_ref: LocalHelmChartSourceReference {
                        api_version: source.api_version.clone(),
                        kind: source.kind,
                        name: source.name.clone(),
                    },
                    interval,
                    reconcile_strategy: Some(
                        spec.reconcile_strategy
                            .unwrap_or(ReconcileStrategy::ChartVersion),
                    ),
                    values_files: spec.values_files.clone(),
                    ignore_missing_values_files: spec.ignore_missing_values_files,
                    suspend: spec.oci.suspend,
                    verify: spec.oci.verify.as_ref().map(|v| HelmChartVerification {
                        provider: v.provider,
                        secret_ref: v.secret_ref.clone(),
                        match_oidc_identity: v.match_oidc_identity.clone(),
                    }),
                },
                status: None,
            };
            serde_json::to_value(object)
        }
        HelmChartTemplateKind::OCIRepository => {
            let Some(url) = spec.url.clone().filter(|url| !url.is_empty()) else {
                return Err(InvalidTemplate(
                    "chart.spec.url must be set when chart.kind is 'OCIRepository'".into(),
                ));
            };
            let object = OCIRepository {
                metadata,
                spec: OCIRepositorySpec {
                    url,
                    interval,
                    options: spec.oci.clone(),
                },
                status: None,
            };
            serde_json::to_value(object)
        }
    }
    .map_err(|err| InvalidTemplate(format!("cannot encode {reference}: {err}")))?;
    Ok(Some((reference, object)))
}

/// The template fields `spec` sets that belong to the kind it does not
/// generate (a value equal to the field's default counts as unset, as the
/// CRD's rules take `version: '*'` and `reconcileStrategy: ChartVersion`).
fn fields_of_the_other_kind(
    spec: &HelmChartTemplateSpec,
    kind: HelmChartTemplateKind,
) -> Vec<&'static str> {
    use HelmChartTemplateKind::{HelmChart, OCIRepository};
    let trusted_root = spec
        .oci
        .verify
        .as_ref()
        .is_some_and(|verify| verify.trusted_root_secret_ref.is_some());
    [
        ("url", OCIRepository, spec.url.is_some()),
        ("ref", OCIRepository, spec.oci.r#ref.is_some()),
        (
            "layerSelector",
            OCIRepository,
            spec.oci.layer_selector.is_some(),
        ),
        (
            "provider",
            OCIRepository,
            spec.oci
                .provider
                .is_some_and(|p| p != CloudProvider::Generic),
        ),
        ("secretRef", OCIRepository, spec.oci.secret_ref.is_some()),
        (
            "serviceAccountName",
            OCIRepository,
            spec.oci.service_account_name.is_some(),
        ),
        (
            "certSecretRef",
            OCIRepository,
            spec.oci.cert_secret_ref.is_some(),
        ),
        (
            "proxySecretRef",
            OCIRepository,
            spec.oci.proxy_secret_ref.is_some(),
        ),
        ("timeout", OCIRepository, spec.oci.timeout.is_some()),
        ("ignore", OCIRepository, spec.oci.ignore.is_some()),
        ("insecure", OCIRepository, spec.oci.insecure == Some(true)),
        ("verify.trustedRootSecretRef", OCIRepository, trusted_root),
        ("chart", HelmChart, spec.chart.is_some()),
        (
            "version",
            HelmChart,
            spec.version.as_deref().is_some_and(|v| v != "*"),
        ),
        ("sourceRef", HelmChart, spec.source_ref.is_some()),
        (
            "reconcileStrategy",
            HelmChart,
            spec.reconcile_strategy
                .is_some_and(|s| s != ReconcileStrategy::ChartVersion),
        ),
        ("valuesFiles", HelmChart, spec.values_files.is_some()),
        (
            "ignoreMissingValuesFiles",
            HelmChart,
            spec.ignore_missing_values_files.is_some(),
        ),
    ]
    .into_iter()
    .filter(|(_, owner, set)| *set && *owner != kind)
    .map(|(field, ..)| field)
    .collect()
}

/// Name, namespace, the template's annotations, and its labels with the
/// owner labels Flux's server-side apply adds (`SetOwnerLabels`).
fn object_meta(
    hr: &HelmRelease,
    template: &HelmChartTemplate,
    reference: &SourceRef,
) -> ObjectMeta {
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(format!("{}/name", api::helm::GROUP), hr.name_any());
    labels.insert(
        format!("{}/namespace", api::helm::GROUP),
        hr.namespace().unwrap_or_default(),
    );
    ObjectMeta {
        name: Some(reference.name.clone()),
        namespace: Some(reference.namespace.clone()),
        labels: Some(labels),
        annotations: template
            .metadata
            .as_ref()
            .and_then(|m| m.annotations.clone())
            .filter(|a| !a.is_empty()),
        ..Default::default()
    }
}

/// The API of the generated kind in the object's namespace.
fn api_of(client: &Client, reference: &SourceRef) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        &reference.namespace,
        &runtime::source::api_resource(reference.kind),
    )
}

/// Creates or updates the generated object with server-side apply.
pub async fn apply(
    client: &Client,
    reference: &SourceRef,
    object: &serde_json::Value,
    field_manager: &str,
) -> Result<(), ChartError> {
    let mut body = object.clone();
    if let Some(fields) = body.as_object_mut() {
        fields.remove("status");
    }
    api_of(client, reference)
        .patch(
            &reference.name,
            &PatchParams::apply(field_manager).force(),
            &Patch::Apply(&body),
        )
        .await
        .map_err(|e| ChartError::Template(format!("{reference}: {e}")))?;
    Ok(())
}

/// Deletes a generated object if it exists.
pub async fn delete(client: &Client, reference: &SourceRef) -> Result<(), kube::Error> {
    let deleted = api_of(client, reference)
        .delete(&reference.name, &Default::default())
        .await;
    match deleted {
        // Already gone: what deleting it was for.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        other => other.map(drop),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::tests::hr;

    #[test]
    fn helm_chart_template_generates_a_helm_chart_in_the_source_namespace() {
        let release = hr(serde_json::json!({
            "interval": "5m",
            "chart": {
                "metadata": {"labels": {"team": "a"}, "annotations": {"note": "x"}},
                "spec": {"chart": "podinfo", "version": "6.5.*", "suspend": true,
                         "verify": {"provider": "cosign", "matchOIDCIdentity": [{"issuer": "i", "subject": "s"}]},
                         "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}
            }
        }));
        let (reference, object) = generate(&release).expect("valid").expect("template");
        assert_eq!(status_value(&reference), "flux-system/apps-podinfo");
        let chart: HelmChart = serde_json::from_value(object).expect("a HelmChart");
        assert_eq!(chart.metadata.namespace.as_deref(), Some("flux-system"));
        assert_eq!(chart.name_any(), "apps-podinfo");
        assert_eq!(chart.spec.version.as_deref(), Some("6.5.*"));
        assert_eq!(chart.spec.interval.as_str(), "5m");
        assert_eq!(chart.spec.suspend, Some(true));
        assert_eq!(chart.spec.source_ref.name, "charts");
        let verify = chart.spec.verify.expect("verify");
        assert_eq!(verify.match_oidc_identity.map(|m| m.len()), Some(1));
        let labels = chart.metadata.labels.unwrap_or_default();
        assert_eq!(labels["team"], "a");
        assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "podinfo");
        assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], "apps");
        assert_eq!(chart.metadata.annotations.unwrap_or_default()["note"], "x");
    }

    #[test]
    fn oci_repository_template_generates_an_oci_repository_in_the_release_namespace() {
        let release = hr(serde_json::json!({
            "interval": "7m",
            "chart": {
                "kind": "OCIRepository",
                "metadata": {"labels": {"team": "b"}},
                "spec": {"url": "oci://registry/charts/podinfo", "ref": {"semver": "6.x"},
                         "insecure": true, "timeout": "30s", "version": "*",
                         "layerSelector": {"mediaType": "application/x", "operation": "copy"}}
            }
        }));
        let (reference, object) = generate(&release).expect("valid").expect("template");
        assert_eq!(status_value(&reference), "OCIRepository/apps/apps-podinfo");
        assert_eq!(object["apiVersion"], "source.toolkit.fluxcd.io/v1");
        let repository: OCIRepository = serde_json::from_value(object).expect("an OCIRepository");
        assert_eq!(repository.metadata.namespace.as_deref(), Some("apps"));
        assert_eq!(repository.spec.url, "oci://registry/charts/podinfo");
        assert_eq!(
            repository.spec.interval.as_str(),
            "7m",
            "the HelmRelease's interval"
        );
        assert_eq!(repository.spec.options.insecure, Some(true));
        assert_eq!(
            repository
                .spec
                .options
                .timeout
                .map(|t| t.as_str().to_string()),
            Some("30s".into())
        );
        assert_eq!(
            repository
                .spec
                .options
                .r#ref
                .and_then(|r| r.semver)
                .as_deref(),
            Some("6.x")
        );
        assert!(repository.spec.options.layer_selector.is_some());
        let labels = repository.metadata.labels.unwrap_or_default();
        assert_eq!(labels["team"], "b");
        assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "podinfo");
    }

    #[test]
    fn fields_of_the_other_kind_are_refused_by_name() {
        let helm_chart_with_oci_fields = hr(serde_json::json!({
            "interval": "5m",
            "chart": {"spec": {"chart": "podinfo", "insecure": true, "timeout": "1m",
                               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}
        }));
        let err = generate(&helm_chart_with_oci_fields).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "chart.spec.timeout, chart.spec.insecure cannot be set when chart.kind is 'HelmChart': a HelmChart has no such field"
        );
        let oci_with_chart_fields = hr(serde_json::json!({
            "interval": "5m",
            "chart": {"kind": "OCIRepository",
                      "spec": {"url": "oci://registry/podinfo", "valuesFiles": ["a.yaml"]}}
        }));
        let err = generate(&oci_with_chart_fields).expect_err("refused");
        assert!(
            err.to_string().starts_with(
                "chart.spec.valuesFiles cannot be set when chart.kind is 'OCIRepository'"
            ),
            "{err}"
        );
        let oci_without_url = hr(serde_json::json!({
            "interval": "5m",
            "chart": {"kind": "OCIRepository", "spec": {}}
        }));
        assert_eq!(
            generate(&oci_without_url).expect_err("refused").to_string(),
            "chart.spec.url must be set when chart.kind is 'OCIRepository'"
        );
    }

    #[test]
    fn status_values_name_helm_charts_without_their_kind() {
        let chart = parse_status_value("flux-system/apps-podinfo").expect("a HelmChart");
        assert_eq!(chart.kind, "HelmChart");
        assert_eq!(status_value(&chart), "flux-system/apps-podinfo");
        let oci = parse_status_value("OCIRepository/apps/apps-podinfo").expect("an OCIRepository");
        assert_eq!(
            (oci.kind, oci.namespace.as_str(), oci.name.as_str()),
            ("OCIRepository", "apps", "apps-podinfo")
        );
        assert_eq!(status_value(&oci), "OCIRepository/apps/apps-podinfo");
        assert!(parse_status_value("a/b/c/d").is_none());
        assert!(parse_status_value("Bucket/apps/x").is_none());
        assert!(parse_status_value("").is_none());
    }
}
