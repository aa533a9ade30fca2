//! Fixture checks.
//!
//! - `fixtures/valid/*.yaml`: every object must deserialize into its Rust type and
//!   serialize back to exactly the same JSON (nothing lost, nothing added), and every
//!   kind must be covered.
//! - `fixtures/invalid/*.yaml`: the format the API-server test relies on: a first line
//!   `# expect: <substring of the apiserver's error>` and exactly one object of a served
//!   kind. Whether the apiserver rejects them is checked by the e2e tests, which send them
//!   with `kubectl apply --dry-run=server`.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use api::helm::HelmRelease;
use api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use api::kustomize::Kustomization;
use api::notification::{Alert, Provider, Receiver};
use api::source::{
    Bucket, ExternalArtifact, GitRepository, HelmChart, HelmRepository, OCIRepository,
};
use kube::CustomResourceExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture_files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_multiple(&text)
        .unwrap_or_else(|err| panic!("{} is not valid YAML: {err}", path.display()))
}

fn type_meta(doc: &Value) -> (String, String) {
    let field = |name: &str| doc[name].as_str().unwrap_or_default().to_owned();
    (field("apiVersion"), field("kind"))
}

/// `(apiVersion, kind)` of every served kind.
fn served_kinds() -> BTreeSet<(String, String)> {
    api::crds()
        .iter()
        .map(|crd| {
            (
                format!("{}/{}", crd.spec.group, crd.spec.versions[0].name),
                crd.spec.names.kind.clone(),
            )
        })
        .collect()
}

fn round_trip<K: DeserializeOwned + Serialize + CustomResourceExt>(path: &Path, doc: &Value) {
    let typed: K = serde_json::from_value(doc.clone())
        .unwrap_or_else(|err| panic!("{}: not a valid {}: {err}", path.display(), K::crd_name()));
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(
        &back,
        doc,
        "{}: serializing the {} back changed it",
        path.display(),
        K::crd_name()
    );
}

#[test]
fn valid_fixtures_round_trip_and_cover_every_kind() {
    let mut seen = BTreeSet::new();
    for path in fixture_files("valid") {
        for doc in documents(&path) {
            let (api_version, kind) = type_meta(&doc);
            match (api_version.as_str(), kind.as_str()) {
                ("source.toolkit.fluxcd.io/v1", "GitRepository") => {
                    round_trip::<GitRepository>(&path, &doc)
                }
                ("source.toolkit.fluxcd.io/v1", "OCIRepository") => {
                    round_trip::<OCIRepository>(&path, &doc)
                }
                ("source.toolkit.fluxcd.io/v1", "HelmRepository") => {
                    round_trip::<HelmRepository>(&path, &doc)
                }
                ("source.toolkit.fluxcd.io/v1", "HelmChart") => {
                    round_trip::<HelmChart>(&path, &doc)
                }
                ("source.toolkit.fluxcd.io/v1", "Bucket") => round_trip::<Bucket>(&path, &doc),
                ("source.toolkit.fluxcd.io/v1", "ExternalArtifact") => {
                    round_trip::<ExternalArtifact>(&path, &doc)
                }
                ("kustomize.toolkit.fluxcd.io/v1", "Kustomization") => {
                    round_trip::<Kustomization>(&path, &doc)
                }
                ("helm.toolkit.fluxcd.io/v2", "HelmRelease") => {
                    round_trip::<HelmRelease>(&path, &doc)
                }
                ("image.toolkit.fluxcd.io/v1", "ImageRepository") => {
                    round_trip::<ImageRepository>(&path, &doc)
                }
                ("image.toolkit.fluxcd.io/v1", "ImagePolicy") => {
                    round_trip::<ImagePolicy>(&path, &doc)
                }
                ("image.toolkit.fluxcd.io/v1", "ImageUpdateAutomation") => {
                    round_trip::<ImageUpdateAutomation>(&path, &doc)
                }
                ("notification.toolkit.fluxcd.io/v1", "Receiver") => {
                    round_trip::<Receiver>(&path, &doc)
                }
                ("notification.toolkit.fluxcd.io/v1", "Alert") => round_trip::<Alert>(&path, &doc),
                ("notification.toolkit.fluxcd.io/v1", "Provider") => {
                    round_trip::<Provider>(&path, &doc)
                }
                other => panic!("{}: unexpected kind {other:?}", path.display()),
            }
            seen.insert((api_version, kind));
        }
    }
    assert_eq!(
        seen,
        served_kinds(),
        "every served kind needs a valid fixture"
    );
}

#[test]
fn typed_yaml_parsing_matches_json_parsing() {
    // Controllers read manifests straight from YAML; that path must agree with the JSON one.
    for path in fixture_files("valid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = &documents(&path)[0];
        if type_meta(doc).1 == "HelmRelease" {
            let typed: HelmRelease = serde_saphyr::from_str(&text).unwrap();
            assert_eq!(
                &serde_json::to_value(&typed).unwrap(),
                doc,
                "{}",
                path.display()
            );
        } else if type_meta(doc).1 == "GitRepository" {
            let typed: GitRepository = serde_saphyr::from_str(&text).unwrap();
            assert_eq!(
                &serde_json::to_value(&typed).unwrap(),
                doc,
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn invalid_fixtures_name_the_expected_error() {
    let served = served_kinds();
    for path in fixture_files("invalid") {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let expect = first.strip_prefix("# expect: ").unwrap_or_else(|| {
            panic!(
                "{}: first line must be `# expect: <error substring>`",
                path.display()
            )
        });
        assert!(
            !expect.trim().is_empty(),
            "{}: empty expectation",
            path.display()
        );
        let docs = documents(&path);
        assert_eq!(
            docs.len(),
            1,
            "{}: one object per invalid fixture",
            path.display()
        );
        assert!(
            served.contains(&type_meta(&docs[0])),
            "{}: not a served kind",
            path.display()
        );
    }
}
