//! Golden tests of the setters: each directory under `testdata/setters/`
//! holds `input.yaml` and either `expected.yaml` (the exact output) with
//! `changes.txt` (the changes and unknown policies reported), or
//! `error.txt` (the error). `BLESS=1` rewrites `changes.txt` and
//! `error.txt` from the current output; `expected.yaml` is always written
//! by hand.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

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

/// Runs one small file through the setters with the fixtures' policies.
fn run(text: &str) -> FileUpdate {
    update_file(text, &policies()).expect("valid YAML")
}

#[test]
fn markers_that_mark_no_value_are_ignored() {
    let untouched = [
        // On its own line (a head comment): kyaml reads it, but only a
        // sequence item could take it; ferroflux ignores own-line markers.
        "a:\n  # {\"$imagepolicy\": \"apps:web\"}\n  - nginx:1\n",
        // After a key whose value is on the next lines, or missing.
        "image: # {\"$imagepolicy\": \"apps:web\"}\n  nginx:1\n",
        "image: # {\"$imagepolicy\": \"apps:web\"}\n",
        // After an alias, and after a block scalar's header.
        "a: &x nginx:1\nb: *x # {\"$imagepolicy\": \"apps:web\"}\n",
        "image: | # {\"$imagepolicy\": \"apps:web\"}\n  nginx:1\n",
        // After a flow collection's end.
        "images: [nginx:1] # {\"$imagepolicy\": \"apps:web\"}\n",
        // Not exactly one JSON object of strings.
        "image: nginx:1 # {\"$imagepolicy\": \"apps:web\"} and more\n",
        "image: nginx:1 # {\"$imagepolicy\": [\"apps:web\"]}\n",
    ];
    for text in untouched {
        let update = run(text);
        assert_eq!(update.content, text, "{text}");
        assert!(update.changes.is_empty(), "{text}");
        assert!(update.unknown_policies.is_empty(), "{text}");
    }
}

#[test]
fn replaced_values_keep_everything_around_them() {
    let cases = [
        (
            "image: nginx:1 ## {\"$imagepolicy\": \"apps:web\"}\n",
            "image: docker.io/library/nginx:1.27.1 ## {\"$imagepolicy\": \"apps:web\"}\n",
        ),
        (
            "tags:\n- nginx:1 # {\"$imagepolicy\": \"apps:web:tag\"}",
            "tags:\n- 1.27.1 # {\"$imagepolicy\": \"apps:web:tag\"}",
        ),
        (
            "image: nginx\n  :1 # {\"$imagepolicy\": \"apps:web\"}\n",
            "image: docker.io/library/nginx:1.27.1 # {\"$imagepolicy\": \"apps:web\"}\n",
        ),
        (
            "\u{feff}image: \"nginx\\x3a1\" # {\"$imagepolicy\": \"apps:web:name\"}\n",
            "\u{feff}image: \"docker.io/library/nginx\" # {\"$imagepolicy\": \"apps:web:name\"}\n",
        ),
        (
            "tag: 1.0 # {\"$imagepolicy\": \"flux-system:build:tag\"}\n",
            "tag: \"20240131\" # {\"$imagepolicy\": \"flux-system:build:tag\"}\n",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(run(input).content, expected, "{input}");
    }
}

#[test]
fn a_document_of_only_a_scalar_rejects_the_file() {
    let text = "image: nginx:1 # {\"$imagepolicy\": \"apps:web\"}\n---\njust text\n";
    let error = update_file(text, &policies()).expect_err("not a mapping");
    assert_eq!(
        error.to_string(),
        "the document at line 3 is a scalar, not a mapping"
    );
    // Empty and null documents are fine.
    let text = "---\n--- ~\n---\nimage: nginx:1 # {\"$imagepolicy\": \"apps:web\"}\n...\n";
    assert_eq!(run(text).changes.len(), 1);
}

#[test]
fn never_panics_on_truncated_or_mangled_input() {
    for case in cases() {
        let input = read(&case.join("input.yaml"));
        let boundaries = (0..=input.len()).filter(|&i| input.is_char_boundary(i));
        for end in boundaries {
            let prefix = &input[..end];
            let _ = update_file(prefix, &policies());
            for (from, to) in [
                ("\n", "\n  "),
                (" ", "\t"),
                (": ", ":"),
                ("\"", "'"),
                ("- ", "? "),
            ] {
                let mangled = prefix.replacen(from, to, end % 7 + 1);
                let _ = update_file(&mangled, &policies());
            }
        }
    }
}
