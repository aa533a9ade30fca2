//! Differential suite: every directory under `tests/cases/` holds a
//! kustomization tree (`input/`) and what real kustomize (`kubectl
//! kustomize` v5.8.1) printed for it: `expected.yaml` on success, or
//! `expected.err` and `expected.exit` on failure. This test builds each case
//! with the library and compares the documents (parsed, same order, same
//! values) and the exact bytes `ferroflux kustomize build` would print; for
//! error cases, both must fail.
//!
//! Optional per-case files: `build-dir` (the directory to build, relative to
//! `input/`, default `.`) and `args` (`--reorder ...`,
//! `--load-restrictor ...`).
//!
//! Recording (never by hand): `FERROFLUX_KUSTOMIZE_RECORD=1 cargo test -p
//! ferroflux-kustomize --test differential` runs the real kustomize
//! (`$KUBECTL`, default `~/.cache/ferroflux/bin/kubectl-v1.37.1`) for cases
//! without expectations; `FERROFLUX_KUSTOMIZE_RECORD=all` re-records all.
//! `FERROFLUX_KUSTOMIZE_CASE=<substring>` limits the run.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use kustomize::yaml::{ParseOptions, parse_stream};
use kustomize::{BuildOptions, LoadRestrictor, Reorder};

struct Case {
    name: String,
    dir: PathBuf,
}

impl Case {
    fn input(&self) -> PathBuf {
        self.dir.join("input")
    }

    fn build_dir(&self) -> PathBuf {
        let rel =
            std::fs::read_to_string(self.dir.join("build-dir")).unwrap_or_else(|_| ".".into());
        self.input().join(rel.trim())
    }

    fn args(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("args"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    fn options(&self) -> BuildOptions {
        let mut opts = BuildOptions::default();
        let args = self.args();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match (a.as_str(), it.next().map(String::as_str)) {
                ("--reorder", Some("legacy")) => opts.reorder = Reorder::Legacy,
                ("--reorder", Some("none")) => opts.reorder = Reorder::None,
                ("--load-restrictor", Some("LoadRestrictionsNone")) => {
                    opts.load_restrictor = LoadRestrictor::None
                }
                ("--load-restrictor", Some("LoadRestrictionsRootOnly")) => {
                    opts.load_restrictor = LoadRestrictor::RootOnly
                }
                other => panic!("case {}: unsupported args {other:?}", self.name),
            }
        }
        opts
    }
}

fn cases() -> Vec<Case> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let filter = std::env::var("FERROFLUX_KUSTOMIZE_CASE").ok();
    let mut out: Vec<Case> = std::fs::read_dir(&root)
        .expect("tests/cases exists")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("input").is_dir())
        .map(|e| Case {
            name: e.file_name().to_string_lossy().into_owned(),
            dir: e.path(),
        })
        .filter(|c| filter.as_deref().is_none_or(|f| c.name.contains(f)))
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn kubectl() -> PathBuf {
    if let Ok(k) = std::env::var("KUBECTL") {
        return PathBuf::from(k);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/ferroflux/bin/kubectl-v1.37.1")
}

fn record(case: &Case) {
    for f in ["expected.yaml", "expected.err", "expected.exit"] {
        let _ = std::fs::remove_file(case.dir.join(f));
    }
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(case.build_dir())
        .args(case.args())
        .output()
        .expect("run kubectl kustomize");
    if out.status.success() {
        std::fs::write(case.dir.join("expected.yaml"), &out.stdout).expect("write expected.yaml");
    } else {
        std::fs::write(case.dir.join("expected.err"), &out.stderr).expect("write expected.err");
        let code = out.status.code().unwrap_or(-1);
        std::fs::write(case.dir.join("expected.exit"), format!("{code}\n"))
            .expect("write expected.exit");
    }
}

fn check(case: &Case) -> Result<(), String> {
    let expected_yaml = case.dir.join("expected.yaml");
    let expected_err = case.dir.join("expected.err");
    let ours = kustomize::build(&case.input(), &case.build_dir(), case.options());
    if expected_err.exists() {
        return match ours {
            Err(_) => Ok(()),
            Ok(out) => Err(format!(
                "kustomize failed ({}) but we succeeded with:\n{}",
                std::fs::read_to_string(&expected_err)
                    .unwrap_or_default()
                    .trim(),
                out.to_yaml()
            )),
        };
    }
    let expected = std::fs::read_to_string(&expected_yaml).map_err(|e| {
        format!("no expectation recorded ({e}); run with FERROFLUX_KUSTOMIZE_RECORD=1")
    })?;
    let out = ours.map_err(|e| format!("kustomize succeeded but we failed: {e}"))?;
    let ours_text = out.to_yaml();
    let parse = |t: &str| parse_stream(t, ParseOptions::RESOURCE).map_err(|e| e.to_string());
    let want = parse(&expected).map_err(|e| format!("cannot parse expected.yaml: {e}"))?;
    let got = parse(&ours_text).map_err(|e| format!("cannot parse our output: {e}"))?;
    if want != got {
        return Err(format!(
            "documents differ\n--- kustomize\n{expected}\n--- ferroflux\n{ours_text}"
        ));
    }
    if expected != ours_text {
        return Err(format!(
            "same documents but different bytes\n--- kustomize\n{expected}\n--- ferroflux\n{ours_text}"
        ));
    }
    Ok(())
}

#[test]
fn differential() {
    let mode = std::env::var("FERROFLUX_KUSTOMIZE_RECORD").unwrap_or_default();
    let all = cases();
    assert!(!all.is_empty(), "no cases found");
    let mut failures = Vec::new();
    for case in &all {
        let recorded =
            case.dir.join("expected.yaml").exists() || case.dir.join("expected.err").exists();
        if mode == "all" || (mode == "1" && !recorded) {
            record(case);
        }
        if let Err(e) = check(case) {
            failures.push(format!("=== {}: {e}", case.name));
        }
    }
    eprintln!(
        "differential: {} of {} cases pass",
        all.len() - failures.len(),
        all.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
