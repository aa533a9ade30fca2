//! Golden tests of the setters: each directory under `testdata/setters/`
//! holds `input.yaml` and either `expected.yaml` (the exact output) with
//! `changes.txt` (the changes and unknown policies reported), or
//! `error.txt` (the error). `BLESS=1` rewrites `changes.txt` and
//! `error.txt` from the current output; `expected.yaml` is always written
//! by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use image_update::PolicyImage;
use image_update::setters::{FileUpdate, update_file};

const APP_DIGEST: &str = "sha256:1ad87644f30271342eb5a996917b98543c5f7fbd4211c5e9bc0dbfa384af2de9";

/// The images the fixtures' policies selected.
fn policies() -> BTreeMap<String, PolicyImage> {
    let image = |name: &str, tag: &str, digest: Option<&str>| PolicyImage {
        name: name.to_owned(),
        tag: tag.to_owned(),
        digest: digest.map(str::to_owned),
    };
    BTreeMap::from([
        (
            "flux-system:podinfo".to_owned(),
            image("ghcr.io/stefanprodan/podinfo", "6.5.4", None),
        ),
        (
            "flux-system:app".to_owned(),
            image("registry.example.com/team/app", "v2.1.0", Some(APP_DIGEST)),
        ),
        (
            "flux-system:build".to_owned(),
            image("registry.example.com/tools/build", "20240131", None),
        ),
        (
            "apps:web".to_owned(),
            image("docker.io/library/nginx", "1.27.1", None),
        ),
        // The policies of Flux's own `testdata/setters` fixture.
        (
            "automation-ns:policy".to_owned(),
            image("index.repo.fake/updated", "v1.0.1", None),
        ),
        (
            "automation-ns:unchanged".to_owned(),
            image("image", "v1.0.0", None),
        ),
    ])
}

/// One line per change, then one per unknown policy.
fn report(update: &FileUpdate) -> String {
    let mut text = String::new();
    for (object, change) in &update.changes {
        let _ = writeln!(
            text,
            "{:?} {:?} {:?} {:?} | {:?} | {:?} -> {:?}",
            object.api_version,
            object.kind,
            object.namespace,
            object.name,
            change.setter,
            change.old_value,
            change.new_value
        );
    }
    for unknown in &update.unknown_policies {
        let _ = writeln!(text, "unknown policy {unknown:?}");
    }
    text
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn check_or_bless(path: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("BLESS").is_some() {
        fs::write(path, actual).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_default();
    if expected != actual {
        failures.push(format!(
            "{}:\n--- expected\n{expected}--- actual\n{actual}",
            path.display()
        ));
    }
}

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/setters");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .unwrap_or_else(|error| panic!("{}: {error}", root.display()))
        .map(|entry| entry.map(|entry| entry.path()).unwrap_or_default())
        .filter(|path| path.join("input.yaml").is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn golden() {
    let policies = policies();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 14, "fixtures missing: {cases:?}");
    for case in &cases {
        let input = read(&case.join("input.yaml"));
        let name = case.display();
        match update_file(&input, &policies) {
            Err(error) => {
                check_or_bless(
                    &case.join("error.txt"),
                    &format!("{error}\n"),
                    &mut failures,
                );
            }
            Ok(update) => {
                let expected = read(&case.join("expected.yaml"));
                if update.content != expected {
                    failures.push(format!(
                        "{name}: output differs\n--- expected\n{expected}--- actual\n{}",
                        update.content
                    ));
                }
                assert_eq!(update.changed(), input != expected, "{name}: changed()");
                check_or_bless(&case.join("changes.txt"), &report(&update), &mut failures);
                // Running again on the output finds nothing left to do.
                match update_file(&update.content, &policies) {
                    Ok(again) => {
                        assert!(
                            again.changes.is_empty(),
                            "{name}: second run changed {:?}",
                            again.changes
                        );
                        assert_eq!(again.content, update.content, "{name}: second run");
                    }
                    Err(error) => failures.push(format!("{name}: output does not parse: {error}")),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn files_without_the_token_are_returned_as_they_are() {
    // Not even parsed: Flux screens files for the quoted token first.
    let text = "image: app:v1 # {$imagepolicy: flux-system:podinfo}\n: : not yaml [\n";
    let update = update_file(text, &policies()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(update.content, text);
    assert!(!update.changed());
    assert!(update.unknown_policies.is_empty());
}

#[test]
fn no_policies_reports_every_marker_once() {
    let text = read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/testdata/setters/kustomization/input.yaml"),
    );
    let update = update_file(&text, &BTreeMap::new()).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(update.content, text);
    assert_eq!(
        update.unknown_policies,
        [
            "flux-system:podinfo:name",
            "flux-system:podinfo:tag",
            "flux-system:app:name",
            "flux-system:app:tag",
            "flux-system:app:digest",
        ]
    );
}
