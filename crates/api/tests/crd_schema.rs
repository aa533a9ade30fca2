//! Schema-level checks of the generated CRDs: names, printer columns, defaults,
//! validations, descriptions and apiserver structural-schema rules.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use serde_json::json;

/// Generated once: schema generation is the slow part of these tests.
static CRDS: LazyLock<BTreeMap<String, CustomResourceDefinition>> = LazyLock::new(|| {
    api::crds()
        .into_iter()
        .map(|crd| (crd.spec.names.kind.clone(), crd))
        .collect()
});

fn crds_by_kind() -> &'static BTreeMap<String, CustomResourceDefinition> {
    &CRDS
}

fn root(crd: &CustomResourceDefinition) -> &JSONSchemaProps {
    crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|schema| schema.open_api_v3_schema.as_ref())
        .expect("every CRD has a schema")
}

/// The schema at a dotted path of property names (`[]` steps into array items).
fn at<'a>(schema: &'a JSONSchemaProps, path: &str) -> &'a JSONSchemaProps {
    path.split('.').fold(schema, |schema, step| {
        if step == "[]" {
            match &schema.items {
                Some(JSONSchemaPropsOrArray::Schema(items)) => items,
                other => panic!("no items at {step}: {other:?}"),
            }
        } else {
            schema
                .properties
                .as_ref()
                .and_then(|properties| properties.get(step))
                .unwrap_or_else(|| panic!("no property {step} in {path}"))
        }
    })
}

fn default_of(kind: &str, path: &str) -> serde_json::Value {
    let crds = crds_by_kind();
    at(root(&crds[kind]), path)
        .default
        .as_ref()
        .unwrap_or_else(|| panic!("{kind} {path} has no default"))
        .0
        .clone()
}

#[test]
fn fourteen_kinds_with_flux_names() {
    let expected = [
        (
            "GitRepository",
            "source.toolkit.fluxcd.io",
            "v1",
            "gitrepositories",
            &["gitrepo"][..],
            "fluxcd-sources",
        ),
        (
            "OCIRepository",
            "source.toolkit.fluxcd.io",
            "v1",
            "ocirepositories",
            &["ocirepo"],
            "fluxcd-sources",
        ),
        (
            "HelmRepository",
            "source.toolkit.fluxcd.io",
            "v1",
            "helmrepositories",
            &["helmrepo"],
            "fluxcd-sources",
        ),
        (
            "HelmChart",
            "source.toolkit.fluxcd.io",
            "v1",
            "helmcharts",
            &["hc"],
            "fluxcd-sources",
        ),
        (
            "Bucket",
            "source.toolkit.fluxcd.io",
            "v1",
            "buckets",
            &[],
            "fluxcd-sources",
        ),
        (
            "ExternalArtifact",
            "source.toolkit.fluxcd.io",
            "v1",
            "externalartifacts",
            &["ea"],
            "fluxcd-sources",
        ),
        (
            "Kustomization",
            "kustomize.toolkit.fluxcd.io",
            "v1",
            "kustomizations",
            &["ks"],
            "fluxcd-appliers",
        ),
        (
            "HelmRelease",
            "helm.toolkit.fluxcd.io",
            "v2",
            "helmreleases",
            &["hr"],
            "fluxcd-appliers",
        ),
        (
            "ImageRepository",
            "image.toolkit.fluxcd.io",
            "v1",
            "imagerepositories",
            &["imgrepo", "imagerepo"],
            "fluxcd-images",
        ),
        (
            "ImagePolicy",
            "image.toolkit.fluxcd.io",
            "v1",
            "imagepolicies",
            &["imgpol", "imagepol"],
            "fluxcd-images",
        ),
        (
            "ImageUpdateAutomation",
            "image.toolkit.fluxcd.io",
            "v1",
            "imageupdateautomations",
            &["iua", "imgupd", "imgauto"],
            "fluxcd-images",
        ),
        (
            "Receiver",
            "notification.toolkit.fluxcd.io",
            "v1",
            "receivers",
            &[],
            "fluxcd-notifications",
        ),
        (
            "Alert",
            "notification.toolkit.fluxcd.io",
            "v1",
            "alerts",
            &[],
            "fluxcd-notifications",
        ),
        (
            "Provider",
            "notification.toolkit.fluxcd.io",
            "v1",
            "providers",
            &[],
            "fluxcd-notifications",
        ),
    ];
    let crds = crds_by_kind();
    assert_eq!(crds.len(), expected.len());
    for (kind, group, version, plural, short_names, category) in expected {
        let crd = &crds[kind];
        assert_eq!(crd.spec.group, group, "{kind}");
        assert_eq!(crd.spec.names.plural, plural, "{kind}");
        assert_eq!(crd.spec.scope, "Namespaced", "{kind}");
        // Alert and Provider are also served as the deprecated v1beta3.
        let deprecated = usize::from(matches!(kind, "Alert" | "Provider"));
        assert_eq!(crd.spec.versions.len(), 1 + deprecated, "{kind}");
        assert_eq!(crd.spec.versions[0].name, version, "{kind}");
        assert!(
            crd.spec.versions[0].served && crd.spec.versions[0].storage,
            "{kind}"
        );
        for old in &crd.spec.versions[1..] {
            assert_eq!(old.name, "v1beta3", "{kind}");
            assert!(
                old.served && !old.storage && old.deprecated == Some(true),
                "{kind}"
            );
        }
        assert_eq!(
            crd.spec.names.short_names.clone().unwrap_or_default(),
            short_names,
            "{kind}"
        );
        assert_eq!(
            crd.spec.names.categories.clone().unwrap_or_default(),
            ["all", "fluxcd", category],
            "{kind}"
        );
        assert_eq!(
            crd.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kustomize.toolkit.fluxcd.io/substitute"))
                .map(String::as_str),
            Some("disabled"),
            "{kind}"
        );
        assert_eq!(api::crd_file_name(crd), format!("{group}_{plural}.yaml"));
    }
}

/// A printer column: name, type, JSON path.
type Column = (&'static str, &'static str, &'static str);

#[test]
fn printer_columns_match_flux() {
    const READY: &str = r#".status.conditions[?(@.type=="Ready")].status"#;
    const STATUS: &str = r#".status.conditions[?(@.type=="Ready")].message"#;
    const AGE: &str = ".metadata.creationTimestamp";
    let expected: &[(&str, &[Column])] = &[
        (
            "GitRepository",
            &[
                ("URL", "string", ".spec.url"),
                ("Age", "date", AGE),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
            ],
        ),
        (
            "Bucket",
            &[
                ("Endpoint", "string", ".spec.endpoint"),
                ("Age", "date", AGE),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
            ],
        ),
        (
            "HelmChart",
            &[
                ("Chart", "string", ".spec.chart"),
                ("Version", "string", ".spec.version"),
                ("Source Kind", "string", ".spec.sourceRef.kind"),
                ("Source Name", "string", ".spec.sourceRef.name"),
                ("Age", "date", AGE),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
            ],
        ),
        (
            "Kustomization",
            &[
                ("Age", "date", AGE),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
            ],
        ),
        (
            "ImageRepository",
            &[
                ("Image", "string", ".spec.image"),
                ("Tags", "string", ".status.lastScanResult.tagCount"),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
                ("Last scan", "string", ".status.lastScanResult.scanTime"),
                ("Age", "date", AGE),
            ],
        ),
        (
            "ImagePolicy",
            &[
                ("Image", "string", ".status.latestRef.name"),
                ("Tag", "string", ".status.latestRef.tag"),
                ("Ready", "string", READY),
                ("Status", "string", STATUS),
                ("Age", "date", AGE),
            ],
        ),
        ("Alert", &[("Age", "date", AGE)]),
        ("Provider", &[("Age", "date", AGE)]),
    ];
    let crds = crds_by_kind();
    for (kind, columns) in expected {
        let actual: Vec<(String, String, String)> = crds[*kind].spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.type_.clone(), c.json_path.clone()))
            .collect();
        let wanted: Vec<(String, String, String)> = columns
            .iter()
            .map(|(n, t, p)| (n.to_string(), t.to_string(), p.to_string()))
            .collect();
        assert_eq!(actual, wanted, "{kind}");
    }
    // Only the wide-output columns have a priority.
    for crd in crds.values() {
        for column in crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
        {
            let wide = column.name == "Last scan" || column.name == "Last run";
            assert_eq!(
                column.priority,
                wide.then_some(1),
                "{} {}",
                crd.spec.names.kind,
                column.name
            );
        }
    }
}

#[test]
fn status_subresource_and_default_where_flux_has_status() {
    for (kind, crd) in crds_by_kind() {
        let has_status = !matches!(kind.as_str(), "Alert" | "Provider");
        let version = &crd.spec.versions[0];
        assert_eq!(
            version
                .subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            has_status,
            "{kind}"
        );
        let status = root(crd).properties.as_ref().and_then(|p| p.get("status"));
        assert_eq!(status.is_some(), has_status, "{kind}");
        // ExternalArtifact's status (written by its producer) has no
        // observedGeneration, and Flux gives it no default.
        if let Some(status) = status.filter(|_| kind != "ExternalArtifact") {
            assert_eq!(
                status.default.as_ref().map(|d| d.0.clone()),
                Some(json!({ "observedGeneration": -1 })),
                "{kind}"
            );
        }
    }
}

#[test]
fn defaults_match_flux() {
    assert_eq!(default_of("GitRepository", "spec.timeout"), json!("60s"));
    assert_eq!(
        default_of("GitRepository", "spec.verify.mode"),
        json!("HEAD")
    );
    // Flux v1.10 dropped these two defaults: HelmRelease embeds the OCIRepository spec.
    let oci = root(&crds_by_kind()["OCIRepository"]);
    assert_eq!(at(oci, "spec.timeout").default, None);
    assert_eq!(at(oci, "spec.provider").default, None);
    assert_eq!(
        default_of("OCIRepository", "spec.verify.provider"),
        json!("cosign")
    );
    assert_eq!(
        default_of("HelmRepository", "spec.provider"),
        json!("generic")
    );
    assert_eq!(default_of("HelmChart", "spec.version"), json!("*"));
    assert_eq!(
        default_of("HelmChart", "spec.reconcileStrategy"),
        json!("ChartVersion")
    );
    assert_eq!(default_of("Bucket", "spec.provider"), json!("generic"));
    assert_eq!(default_of("Bucket", "spec.timeout"), json!("60s"));
    assert_eq!(default_of("Kustomization", "spec.force"), json!(false));
    assert_eq!(
        default_of("Kustomization", "spec.postBuild.substituteFrom.[].optional"),
        json!(false)
    );
    // No defaults in the chart template: they would put a version and a
    // reconcileStrategy into every `kind: OCIRepository` template, which its
    // rules refuse (the controller applies `*` and ChartVersion to HelmCharts).
    let template = at(root(&crds_by_kind()["HelmRelease"]), "spec.chart.spec");
    assert_eq!(at(template, "version").default, None);
    assert_eq!(at(template, "reconcileStrategy").default, None);
    assert_eq!(
        default_of("HelmRelease", "spec.chart.spec.verify.provider"),
        json!("cosign")
    );
    assert_eq!(
        default_of("HelmRelease", "spec.uninstall.deletionPropagation"),
        json!("background")
    );
    assert_eq!(
        default_of("ImageRepository", "spec.exclusionList"),
        json!(["^.*\\.sig$"])
    );
    assert_eq!(
        default_of("ImageRepository", "spec.provider"),
        json!("generic")
    );
    assert_eq!(
        default_of("ImagePolicy", "spec.digestReflectionPolicy"),
        json!("Never")
    );
    assert_eq!(
        default_of("ImageUpdateAutomation", "spec.update"),
        json!({ "strategy": "Setters" })
    );
    assert_eq!(
        default_of("ImageUpdateAutomation", "spec.sourceRef.kind"),
        json!("GitRepository")
    );
    assert_eq!(default_of("Receiver", "spec.interval"), json!("10m"));
    assert_eq!(default_of("Alert", "spec.eventSeverity"), json!("info"));
}

#[test]
fn validations_match_flux() {
    let crds = crds_by_kind();
    let pattern = |kind: &str, path: &str| at(root(&crds[kind]), path).pattern.clone();
    let long = Some(r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$".to_owned());
    let short = Some(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$".to_owned());
    assert_eq!(pattern("GitRepository", "spec.interval"), long);
    assert_eq!(pattern("GitRepository", "spec.timeout"), short);
    assert_eq!(pattern("Kustomization", "spec.timeout"), long);
    assert_eq!(pattern("ImageRepository", "spec.timeout"), short);
    assert_eq!(pattern("Provider", "spec.timeout"), short);
    assert_eq!(
        pattern("GitRepository", "spec.url"),
        Some("^(http|https|ssh)://.*$".into())
    );
    assert_eq!(
        pattern("OCIRepository", "spec.url"),
        Some("^oci://.*$".into())
    );
    assert_eq!(
        pattern("HelmRepository", "spec.url"),
        Some("^(http|https|oci)://.*$".into())
    );

    let spec = |kind: &str| at(root(&crds[kind]), "spec");
    assert_eq!(
        at(spec("Kustomization"), "targetNamespace").max_length,
        Some(63)
    );
    assert_eq!(at(spec("HelmRelease"), "releaseName").max_length, Some(53));
    assert_eq!(
        at(spec("ImageRepository"), "exclusionList").max_items,
        Some(25)
    );
    let required = |kind: &str| spec(kind).required.clone().unwrap_or_default();
    assert_eq!(required("GitRepository"), ["interval", "url"]);
    assert_eq!(
        required("Kustomization"),
        ["interval", "prune", "sourceRef"]
    );
    assert_eq!(required("Alert"), ["eventSources", "providerRef"]);

    let rules = |kind: &str| -> Vec<String> {
        spec(kind)
            .x_kubernetes_validations
            .iter()
            .flatten()
            .map(|rule| rule.rule.clone())
            .collect()
    };
    assert_eq!(rules("HelmRelease").len(), 1);
    assert_eq!(rules("Bucket").len(), 7);
    assert_eq!(rules("ImagePolicy").len(), 2);
    assert_eq!(rules("Receiver").len(), 4);
    assert_eq!(rules("GitRepository").len(), 1);
    assert_eq!(rules("HelmChart").len(), 1);
    assert_eq!(rules("Provider").len(), 1);
    assert!(rules("Kustomization").is_empty());

    let values = at(spec("HelmRelease"), "values");
    assert_eq!(values.x_kubernetes_preserve_unknown_fields, Some(true));
    assert_eq!(values.type_, None);
}

/// Walks every schema node with its path.
fn walk<'a>(
    path: String,
    schema: &'a JSONSchemaProps,
    visit: &mut dyn FnMut(&str, &'a JSONSchemaProps),
) {
    visit(&path, schema);
    for (name, child) in schema.properties.iter().flatten() {
        walk(format!("{path}.{name}"), child, visit);
    }
    if let Some(JSONSchemaPropsOrArray::Schema(items)) = &schema.items {
        walk(format!("{path}[]"), items, visit);
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &schema.additional_properties {
        walk(format!("{path}{{}}"), values, visit);
    }
}

#[test]
fn schemas_are_structural_and_documented() {
    for (kind, crd) in crds_by_kind() {
        let root = root(crd);
        assert_eq!(root.title, None, "{kind}");
        walk(kind.clone(), root, &mut |path, schema| {
            assert_eq!(
                schema.nullable, None,
                "{path}: Flux schemas have no nullable"
            );
            assert!(
                schema.any_of.is_none() && schema.one_of.is_none() && schema.all_of.is_none(),
                "{path}: no combinators"
            );
            assert!(schema.ref_path.is_none(), "{path}: no $ref");
            assert!(
                schema.type_.is_some() || schema.x_kubernetes_preserve_unknown_fields == Some(true),
                "{path}: structural schemas need a type"
            );
            for (name, child) in schema.properties.iter().flatten() {
                // The API server allows nothing but `type` on the root `metadata`.
                if path == kind && name == "metadata" {
                    continue;
                }
                assert!(
                    child
                        .description
                        .as_deref()
                        .is_some_and(|d| !d.trim().is_empty()),
                    "{path}.{name}: every field needs a description"
                );
            }
        });
    }
}

#[test]
fn rendered_yaml_parses_back_to_the_same_crd() {
    for crd in api::crds() {
        let yaml = api::render_crd_yaml(&crd).expect("renders");
        assert!(yaml.starts_with("# Generated by `cargo xtask crds`"));
        let back: CustomResourceDefinition = serde_saphyr::from_str(&yaml).expect("parses");
        assert_eq!(back, crd, "{}", crd.spec.names.kind);
    }
}
