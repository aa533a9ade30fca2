//! Flux's own CRDs, generated from Flux's Go API modules, and a schema
//! comparison of them with ferroflux's `crds/`.
//!
//! Flux writes its CRDs with controller-gen from the `api` module of each
//! controller; no registry the project reaches serves the YAML itself, but the
//! Go module proxy serves those `api` modules and controller-tools. So
//! [`generated_dir`] builds controller-gen at the version Flux pins, runs it
//! on each module with the options of Flux's Makefiles
//! (`crd:crdVersions=v1 paths=./...`), and caches the result once per
//! machine under [`paths::cache_dir`]. [`differences`] then lists every
//! difference between two sets of CRDs except descriptions.
//!
//! Flux's API modules say `go 1.27.0`, newer than this machine's Go, so every
//! `go` run here sets `GOTOOLCHAIN` to [`GO_TOOLCHAIN`]: the go command then
//! fetches that toolchain from the module proxy like any module.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::gobuild;
use crate::paths;

/// The controller-tools release whose controller-gen writes Flux's CRDs: the
/// one built against Kubernetes 0.37, the API machinery of the modules below.
pub const CONTROLLER_TOOLS_VERSION: &str = "v0.22.0";

/// The Go toolchain that builds modules saying `go 1.27.0`.
pub const GO_TOOLCHAIN: &str = "go1.27.3";

/// Flux's API modules, at the versions of its current controller releases.
pub const FLUX_API_MODULES: &[(&str, &str)] = &[
    ("github.com/fluxcd/source-controller/api", "v1.10.1"),
    ("github.com/fluxcd/kustomize-controller/api", "v1.10.1"),
    ("github.com/fluxcd/helm-controller/api", "v1.7.1"),
    ("github.com/fluxcd/notification-controller/api", "v1.10.0"),
    ("github.com/fluxcd/image-reflector-controller/api", "v1.3.0"),
    (
        "github.com/fluxcd/image-automation-controller/api",
        "v1.3.0",
    ),
];

/// The directory holding Flux's CRDs (`<group>_<plural>.yaml`, as in Flux's
/// `config/crd/bases`), generating them on the first call on a machine
/// (about a minute with a cold module cache, then instant).
pub fn generated_dir() -> Result<PathBuf> {
    let dir = paths::cache_dir().join("flux-crds").join(cache_key());
    if dir.is_dir() {
        return Ok(dir);
    }
    let _lock = paths::lock("flux-crds").context("locking the Flux CRD generation")?;
    // Another process may have generated them while this one waited.
    if dir.is_dir() {
        return Ok(dir);
    }
    let controller_gen = controller_gen_binary()?;
    let partial = PathBuf::from(format!("{}.partial", dir.display()));
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial)?;
    let log = log_path();
    for (module, version) in FLUX_API_MODULES {
        let source = module_dir(module, version)?;
        // The module cache is read-only, which suits controller-gen: it
        // only reads the packages and writes to `output:crd:artifacts:config`.
        let output = Command::new(&controller_gen)
            .args([
                "crd:crdVersions=v1".to_string(),
                "paths=./...".to_string(),
                format!("output:crd:artifacts:config={}", partial.display()),
            ])
            .current_dir(&source)
            .env("GOTOOLCHAIN", GO_TOOLCHAIN)
            .env("CGO_ENABLED", "0")
            .env_remove("GOFLAGS")
            .output()
            .with_context(|| format!("running {}", controller_gen.display()))?;
        std::fs::write(&log, [&output.stdout[..], &output.stderr[..]].concat())?;
        if !output.status.success() {
            bail!(
                "controller-gen on {module}@{version} exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    std::fs::rename(&partial, &dir)
        .with_context(|| format!("moving {} into place", partial.display()))?;
    eprintln!("generated Flux's CRDs into {}", dir.display());
    Ok(dir)
}

/// Names the cache directory after every version that shapes its content, so
/// a version bump generates afresh.
fn cache_key() -> String {
    let modules: Vec<String> = FLUX_API_MODULES
        .iter()
        .map(|(module, version)| {
            let name = module
                .trim_start_matches("github.com/fluxcd/")
                .trim_end_matches("/api")
                .trim_end_matches("-controller");
            format!("{name}-{version}")
        })
        .collect();
    format!(
        "controller-gen-{CONTROLLER_TOOLS_VERSION}_{}",
        modules.join("_")
    )
}

fn log_path() -> PathBuf {
    paths::cache_dir().join("gobuild").join("flux-crds.log")
}

/// The source directory of `module@version` in Go's module cache,
/// downloading it when missing.
fn module_dir(module: &str, version: &str) -> Result<PathBuf> {
    let go = gobuild::go_command()?;
    let scratch = paths::cache_dir().join("gobuild");
    std::fs::create_dir_all(&scratch)?;
    let output = Command::new(&go)
        .args(["mod", "download", "-json", &format!("{module}@{version}")])
        .current_dir(&scratch)
        .env("GOTOOLCHAIN", GO_TOOLCHAIN)
        .env_remove("GOFLAGS")
        .output()
        .context("running go mod download")?;
    #[derive(serde::Deserialize)]
    struct Download {
        #[serde(rename = "Dir", default)]
        dir: String,
        #[serde(rename = "Error")]
        error: Option<String>,
    }
    let info: Download = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "go mod download {module}@{version} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })?;
    match info.error {
        Some(error) => bail!("go mod download {module}@{version} failed: {error}"),
        None if info.dir.is_empty() => {
            bail!("go mod download {module}@{version} named no source directory")
        }
        None => Ok(PathBuf::from(info.dir)),
    }
}

/// controller-gen at [`CONTROLLER_TOOLS_VERSION`], built once per machine
/// into [`paths::bin_dir`] (about 40 s on 2 cores).
pub fn controller_gen_binary() -> Result<PathBuf> {
    let target = gobuild::binary_path("controller-gen", CONTROLLER_TOOLS_VERSION);
    if target.is_file() {
        return Ok(target);
    }
    let _lock = paths::lock("gobuild").context("locking the Go build")?;
    if target.is_file() {
        return Ok(target);
    }
    let go = gobuild::go_command()?;
    let dir = paths::cache_dir()
        .join("gobuild")
        .join(format!("controller-gen-{CONTROLLER_TOOLS_VERSION}"));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("go.mod"),
        format!(
            "module ferroflux.local/controller-gen\n\ngo 1.26.0\n\nrequire sigs.k8s.io/controller-tools {CONTROLLER_TOOLS_VERSION}\n"
        ),
    )?;
    // The command's main package cannot be imported: a tools file pins its
    // dependencies for `go mod tidy` without adding a package that builds.
    std::fs::write(
        dir.join("tools.go"),
        "//go:build tools\n\npackage tools\n\nimport _ \"sigs.k8s.io/controller-tools/cmd/controller-gen\"\n",
    )?;
    std::fs::create_dir_all(paths::bin_dir())?;
    let partial = PathBuf::from(format!("{}.partial", target.display()));
    let partial_arg = partial.to_string_lossy().into_owned();
    let log = log_path();
    eprintln!(
        "building controller-gen {CONTROLLER_TOOLS_VERSION} (once per machine; log: {})",
        log.display()
    );
    let steps: [&[&str]; 2] = [
        &["mod", "tidy"],
        &[
            "build",
            "-trimpath",
            "-o",
            &partial_arg,
            "sigs.k8s.io/controller-tools/cmd/controller-gen",
        ],
    ];
    for args in steps {
        // Built with the same toolchain as Flux's modules: go/types refuses
        // source that says a newer Go than the one a tool was built with.
        let output = Command::new(&go)
            .args(args)
            .current_dir(&dir)
            .env("GOTOOLCHAIN", GO_TOOLCHAIN)
            .env("CGO_ENABLED", "0")
            .env_remove("GOFLAGS")
            .output()
            .context("running go")?;
        std::fs::write(&log, [&output.stdout[..], &output.stderr[..]].concat())?;
        if !output.status.success() {
            bail!(
                "building controller-gen {CONTROLLER_TOOLS_VERSION}: `go {}` exited with {}: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    std::fs::rename(&partial, &target)
        .with_context(|| format!("moving {} into place", partial.display()))?;
    Ok(target)
}

/// Every difference between two sets of CRDs (each a CRD document as JSON),
/// one line each, led by the CRD's name, its version and the JSON path:
/// CRDs only in one set, names (kind, list kind, plural, singular, short
/// names, categories), scope, conversion, served versions with their
/// served/storage flags, deprecation, subresources, printer columns,
/// selectable fields, and the whole OpenAPI schema except `description`s.
///
/// Lists whose order carries no meaning (`required`, `enum`,
/// `x-kubernetes-validations`, short names, categories) are compared as sets.
pub fn differences(ours: &[Value], flux: &[Value]) -> Vec<String> {
    let by_name = |crds: &[Value]| -> BTreeMap<String, Value> {
        crds.iter()
            .map(|crd| (text_at(crd, &["metadata", "name"]), integral(crd.clone())))
            .collect()
    };
    let ours = by_name(ours);
    let flux = by_name(flux);
    let mut found = Vec::new();
    for name in ours.keys().chain(flux.keys()).collect::<BTreeSet<_>>() {
        match (ours.get(name), flux.get(name)) {
            (Some(ours), Some(flux)) => crd_differences(name, ours, flux, &mut found),
            (Some(_), None) => found.push(format!("{name}: only in ferroflux")),
            (None, _) => found.push(format!("{name}: a Flux CRD ferroflux lacks")),
        }
    }
    found
}

/// `value` with whole floating-point numbers written as integers: `minimum: 0.0`
/// and `minimum: 0` are the same bound.
fn integral(value: Value) -> Value {
    match value {
        Value::Number(number) if !number.is_i64() && !number.is_u64() => {
            match number.as_f64() {
                // A whole number this small converts to i64 exactly.
                Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 => {
                    Value::from(float as i64)
                }
                _ => Value::Number(number),
            }
        }
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, value)| (key, integral(value)))
                .collect(),
        ),
        other => other,
    }
}

fn text_at(value: &Value, path: &[&str]) -> String {
    path.iter()
        .try_fold(value, |value, key| value.get(key))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn crd_differences(name: &str, ours: &Value, flux: &Value, found: &mut Vec<String>) {
    let mut diff = Diff {
        found,
        prefix: name.to_string(),
    };
    let spec = |crd: &Value, key: &str| crd.get("spec").and_then(|spec| spec.get(key)).cloned();
    for key in ["group", "scope", "preserveUnknownFields"] {
        diff.values(&format!(".spec.{key}"), spec(ours, key), spec(flux, key));
    }
    // An absent conversion is the `None` strategy.
    let none = || Some(serde_json::json!({"strategy": "None"}));
    diff.values(
        ".spec.conversion",
        spec(ours, "conversion").or_else(none),
        spec(flux, "conversion").or_else(none),
    );
    let names = |crd: &Value| spec(crd, "names").unwrap_or(Value::Null);
    let (our_names, flux_names) = (names(ours), names(flux));
    for key in ["kind", "listKind", "plural", "singular"] {
        diff.values(
            &format!(".spec.names.{key}"),
            our_names.get(key).cloned(),
            flux_names.get(key).cloned(),
        );
    }
    for key in ["shortNames", "categories"] {
        diff.sets(
            &format!(".spec.names.{key}"),
            "",
            our_names.get(key),
            flux_names.get(key),
        );
    }

    let versions = |crd: &Value| -> BTreeMap<String, Value> {
        spec(crd, "versions")
            .and_then(|versions| versions.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .map(|version| (text_at(&version, &["name"]), version))
            .collect()
    };
    let (our_versions, flux_versions) = (versions(ours), versions(flux));
    for version in our_versions
        .keys()
        .chain(flux_versions.keys())
        .collect::<BTreeSet<_>>()
    {
        let (Some(ours), Some(flux)) = (our_versions.get(version), flux_versions.get(version))
        else {
            let side = if our_versions.contains_key(version) {
                "served only by ferroflux"
            } else {
                "served by Flux, not by ferroflux"
            };
            diff.found
                .push(format!("{name} {version}: the version is {side}"));
            continue;
        };
        let mut diff = Diff {
            found: diff.found,
            prefix: format!("{name} {version}"),
        };
        for key in [
            "served",
            "storage",
            "deprecated",
            "deprecationWarning",
            "subresources",
            "selectableFields",
        ] {
            diff.values(key, ours.get(key).cloned(), flux.get(key).cloned());
        }
        diff.printer_columns(
            ours.get("additionalPrinterColumns"),
            flux.get("additionalPrinterColumns"),
        );
        let schema = |version: &Value| {
            version
                .get("schema")
                .and_then(|schema| schema.get("openAPIV3Schema"))
                .cloned()
                .unwrap_or(Value::Null)
        };
        diff.schema("", &schema(ours), &schema(flux));
    }
}

/// Collects differences under one prefix (`<crd name> <version>`).
struct Diff<'a> {
    found: &'a mut Vec<String>,
    prefix: String,
}

impl Diff<'_> {
    fn push(&mut self, path: &str, what: String) {
        let path = if path.is_empty() { "." } else { path };
        self.found.push(format!("{} {path}: {what}", self.prefix));
    }

    fn values(&mut self, path: &str, ours: Option<Value>, flux: Option<Value>) {
        if ours != flux {
            self.push(
                path,
                format!(
                    "ferroflux {} / Flux {}",
                    shown(ours.as_ref()),
                    shown(flux.as_ref())
                ),
            );
        }
    }

    /// Compares two lists as sets; `key` names the schema keyword they are.
    fn sets(&mut self, path: &str, key: &str, ours: Option<&Value>, flux: Option<&Value>) {
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("{key}: ")
        };
        let set = |value: Option<&Value>| -> BTreeSet<String> {
            value
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Value::to_string)
                .collect()
        };
        let (ours, flux) = (set(ours), set(flux));
        let only_ours: Vec<&String> = ours.difference(&flux).collect();
        let only_flux: Vec<&String> = flux.difference(&ours).collect();
        if !only_ours.is_empty() {
            self.push(
                path,
                format!("{key}only ferroflux has {}", join(&only_ours)),
            );
        }
        if !only_flux.is_empty() {
            self.push(path, format!("{key}only Flux has {}", join(&only_flux)));
        }
    }

    fn printer_columns(&mut self, ours: Option<&Value>, flux: Option<&Value>) {
        // Descriptions are prose; what kubectl prints is the rest, in order.
        let columns = |value: Option<&Value>| -> Vec<Value> {
            value
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|column| without(column, "description"))
                .collect()
        };
        let (ours, flux) = (columns(ours), columns(flux));
        if ours != flux {
            self.push(
                "additionalPrinterColumns",
                format!(
                    "ferroflux {} / Flux {}",
                    Value::Array(ours),
                    Value::Array(flux)
                ),
            );
        }
    }

    /// Compares two schema nodes keyword by keyword.
    fn schema(&mut self, path: &str, ours: &Value, flux: &Value) {
        let (Some(our_map), Some(flux_map)) = (ours.as_object(), flux.as_object()) else {
            if ours != flux {
                self.push(path, format!("ferroflux {ours} / Flux {flux}"));
            }
            return;
        };
        let keys: BTreeSet<&String> = our_map.keys().chain(flux_map.keys()).collect();
        for key in keys {
            let (our_value, flux_value) = (our_map.get(key), flux_map.get(key));
            match key.as_str() {
                "description" => {}
                "properties" | "patternProperties" | "definitions" => {
                    let empty = serde_json::Map::new();
                    let ours = our_value.and_then(Value::as_object).unwrap_or(&empty);
                    let flux = flux_value.and_then(Value::as_object).unwrap_or(&empty);
                    let names: BTreeSet<&String> = ours.keys().chain(flux.keys()).collect();
                    for name in names {
                        let child = format!("{path}.{name}");
                        match (ours.get(name), flux.get(name)) {
                            (Some(ours), Some(flux)) => self.schema(&child, ours, flux),
                            (Some(_), None) => {
                                self.push(&child, "a field only ferroflux has".into())
                            }
                            (None, _) => self.push(&child, "a field only Flux has".into()),
                        }
                    }
                }
                "items" | "additionalProperties" | "not" | "additionalItems" => {
                    let step = match key.as_str() {
                        "items" => "[]".to_string(),
                        "additionalProperties" => "{}".to_string(),
                        other => format!("<{other}>"),
                    };
                    match (our_value, flux_value) {
                        (Some(ours), Some(flux)) => {
                            self.schema(&format!("{path}{step}"), ours, flux)
                        }
                        _ => self.push(
                            path,
                            format!(
                                "{key}: ferroflux {} / Flux {}",
                                shown(our_value),
                                shown(flux_value)
                            ),
                        ),
                    }
                }
                "allOf" | "anyOf" | "oneOf" => {
                    let empty = Vec::new();
                    let ours = our_value.and_then(Value::as_array).unwrap_or(&empty);
                    let flux = flux_value.and_then(Value::as_array).unwrap_or(&empty);
                    if ours.len() != flux.len() {
                        self.push(
                            path,
                            format!(
                                "{key}: ferroflux {} / Flux {}",
                                shown(our_value),
                                shown(flux_value)
                            ),
                        );
                        continue;
                    }
                    for (index, (ours, flux)) in ours.iter().zip(flux).enumerate() {
                        self.schema(&format!("{path}<{key}[{index}]>"), ours, flux);
                    }
                }
                "required" | "enum" | "x-kubernetes-validations" => {
                    self.sets(path, key, our_value, flux_value);
                }
                _ => {
                    if our_value != flux_value {
                        self.push(
                            path,
                            format!(
                                "{key}: ferroflux {} / Flux {}",
                                shown(our_value),
                                shown(flux_value)
                            ),
                        );
                    }
                }
            }
        }
    }
}

fn without(value: &Value, key: &str) -> Value {
    let mut value = value.clone();
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
    value
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "(absent)".to_string(), Value::to_string)
}

fn join(values: &[&String]) -> String {
    values
        .iter()
        .map(|value| value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd(schema: Value) -> Value {
        json!({
            "metadata": {"name": "things.example.io"},
            "spec": {
                "group": "example.io",
                "names": {"kind": "Thing", "plural": "things", "shortNames": ["th"]},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": schema},
                }],
            },
        })
    }

    #[test]
    fn identical_schemas_differ_only_in_descriptions() {
        let ours = crd(json!({
            "type": "object", "description": "ours",
            "properties": {"spec": {"type": "object", "required": ["a", "b"], "description": "x"}},
        }));
        let flux = crd(json!({
            "type": "object", "description": "Flux's",
            "properties": {"spec": {"type": "object", "required": ["b", "a"]}},
        }));
        assert_eq!(differences(&[ours], &[flux]), Vec::<String>::new());
    }

    #[test]
    fn every_schema_difference_is_named_with_its_path() {
        let ours = crd(json!({
            "type": "object",
            "required": ["spec"],
            "properties": {
                "spec": {"type": "object", "properties": {
                    "interval": {"type": "string"},
                    "extra": {"type": "string"},
                }},
                "status": {"type": "object", "properties": {"conditions": {"type": "array",
                    "items": {"type": "object", "properties": {"status": {"type": "string"}}}}}},
            },
        }));
        let flux = crd(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "interval": {"type": "string", "pattern": "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$"},
                }},
                "status": {"type": "object", "properties": {"conditions": {"type": "array",
                    "items": {"type": "object", "properties": {"status": {"type": "string",
                        "enum": ["True", "False", "Unknown"]}}}}}},
            },
        }));
        let mut flux = flux;
        flux["spec"]["names"]["listKind"] = json!("ThingList");
        assert_eq!(
            differences(&[ours], &[flux]),
            [
                "things.example.io .spec.names.listKind: ferroflux (absent) / Flux \"ThingList\"",
                "things.example.io v1 .spec.extra: a field only ferroflux has",
                "things.example.io v1 .spec.interval: pattern: ferroflux (absent) / Flux \"^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$\"",
                "things.example.io v1 .status.conditions[].status: enum: only Flux has \"False\", \"True\", \"Unknown\"",
                "things.example.io v1 .: required: only ferroflux has \"spec\"",
            ]
        );
    }

    #[test]
    fn versions_and_kinds_on_one_side_only_are_reported() {
        let ours = crd(json!({"type": "object"}));
        let mut flux = ours.clone();
        let v1 = flux["spec"]["versions"][0].clone();
        let mut beta = v1.clone();
        beta["name"] = json!("v1beta3");
        beta["storage"] = json!(false);
        flux["spec"]["versions"] = json!([v1, beta]);
        let mut other = ours.clone();
        other["metadata"]["name"] = json!("others.example.io");
        assert_eq!(
            differences(&[ours], &[flux, other]),
            [
                "others.example.io: a Flux CRD ferroflux lacks",
                "things.example.io v1beta3: the version is served by Flux, not by ferroflux",
            ]
        );
    }

    #[test]
    fn printer_columns_compare_in_order_without_descriptions() {
        let mut ours = crd(json!({"type": "object"}));
        let mut flux = ours.clone();
        let age = json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"});
        let ready = json!({"name": "Ready", "type": "string", "jsonPath": ".status.ready"});
        let mut described = age.clone();
        described["description"] = json!("how old");
        ours["spec"]["versions"][0]["additionalPrinterColumns"] = json!([described, ready]);
        flux["spec"]["versions"][0]["additionalPrinterColumns"] = json!([age, ready]);
        assert!(differences(&[ours.clone()], &[flux.clone()]).is_empty());
        flux["spec"]["versions"][0]["additionalPrinterColumns"] = json!([ready, age]);
        let found = differences(&[ours], &[flux]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("things.example.io v1 additionalPrinterColumns: ferroflux"),
            "{found:?}"
        );
    }

    #[test]
    fn cache_key_names_every_version() {
        assert_eq!(
            cache_key(),
            "controller-gen-v0.22.0_source-v1.10.1_kustomize-v1.10.1_helm-v1.7.1_\
             notification-v1.10.0_image-reflector-v1.3.0_image-automation-v1.3.0"
        );
    }
}
