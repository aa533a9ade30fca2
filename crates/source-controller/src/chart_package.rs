//! A Helm chart held in memory: read from a chart directory (honouring its
//! `.helmignore`) or from a packaged archive, with its metadata, its values
//! replaced by merged values files, its version given build metadata, missing
//! dependencies added as archives under `charts/`, and packaged again as
//! `helm package` lays a chart out (`<name>/Chart.yaml`, ...).
//!
//! Packaging is deterministic (sorted entries, zero times, owner 0:0, fixed
//! modes) so that the same chart always has the same digest.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path};

use api::meta::condition_type;
use flate2::{Compression, GzBuilder};
use serde::Deserialize;
use serde_json::{Map, Value};
use tar::{EntryType, Header};

use crate::Error;

/// Why a chart could not be had, with Flux's reason strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildReason {
    /// The chart, its path or its version cannot be found or is invalid.
    ChartReference,
    /// Downloading the chart failed.
    ChartPull,
    /// The version cannot take the build metadata.
    MetadataPatch,
    /// A values file is missing or does not parse.
    ValuesFiles,
    /// A dependency cannot be added.
    DependencyBuild,
    /// The chart cannot be loaded or packaged.
    ChartPackage,
}

impl BuildReason {
    /// The reason on the conditions.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildReason::ChartReference => "ChartReferenceError",
            BuildReason::ChartPull => "ChartPullError",
            BuildReason::MetadataPatch => "MetadataPatchError",
            BuildReason::ValuesFiles => "ValuesFilesError",
            BuildReason::DependencyBuild => "DependencyBuildError",
            BuildReason::ChartPackage => "ChartPackageError",
        }
    }

    /// The prefix of the message.
    pub fn summary(self) -> &'static str {
        match self {
            BuildReason::ChartReference => "chart reference error",
            BuildReason::ChartPull => "chart pull error",
            BuildReason::MetadataPatch => "chart metadata patch error",
            BuildReason::ValuesFiles => "values files merge error",
            BuildReason::DependencyBuild => "dependency build error",
            BuildReason::ChartPackage => "chart package error",
        }
    }

    /// Fetching problems show as `FetchFailed`, building ones as `BuildFailed`.
    pub fn condition(self) -> &'static str {
        match self {
            BuildReason::ChartReference | BuildReason::ChartPull => condition_type::FETCH_FAILED,
            _ => condition_type::BUILD_FAILED,
        }
    }

    /// Retrying cannot help until the spec (or the source) changes.
    pub fn is_persistent(self) -> bool {
        matches!(
            self,
            BuildReason::ChartReference | BuildReason::MetadataPatch | BuildReason::ValuesFiles
        )
    }

    /// An error with this reason.
    pub fn error(self, message: impl Into<String>) -> Error {
        Error::Chart {
            reason: self,
            message: message.into(),
        }
    }
}

/// A dependency as `Chart.yaml` (or `requirements.yaml`, or a lock file) lists it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct Dependency {
    /// Chart name.
    pub name: String,
    /// Version or semver range; empty for any.
    #[serde(default)]
    pub version: Option<String>,
    /// Repository URL, `file://` path or `oci://` reference.
    #[serde(default)]
    pub repository: Option<String>,
    /// Name the parent uses for it.
    #[serde(default)]
    pub alias: Option<String>,
}

#[derive(Deserialize)]
struct Dependencies {
    #[serde(default)]
    dependencies: Option<Vec<Dependency>>,
}

/// What `Chart.yaml` says that matters here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// `name`.
    pub name: String,
    /// `version`.
    pub version: String,
}

/// Size caps on a chart being read (`--helm-chart-max-size`,
/// `--helm-chart-file-max-size`).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// All files together, in bytes.
    pub total: u64,
    /// One file, in bytes.
    pub file: u64,
}

impl Limits {
    /// The limits the controller was started with.
    pub fn of(settings: &crate::controller::Settings) -> Limits {
        Limits {
            total: settings.helm_chart_max_size,
            file: settings.helm_chart_file_max_size,
        }
    }

    /// Counts `size` more bytes of `path`; fails past either cap.
    fn take(&self, used: &mut u64, path: &str, size: u64) -> Result<(), Error> {
        if size > self.file {
            return Err(BuildReason::ChartPackage.error(format!(
                "file '{path}' exceeds the size limit of {} bytes",
                self.file
            )));
        }
        *used = used.saturating_add(size);
        if *used > self.total {
            return Err(BuildReason::ChartPackage.error(format!(
                "chart exceeds the size limit of {} bytes",
                self.total
            )));
        }
        Ok(())
    }
}

/// Chart files by path relative to the chart root (`/`-separated).
#[derive(Clone, Debug, Default)]
pub struct Chart {
    files: BTreeMap<String, Vec<u8>>,
}

const CHART_FILE: &str = "Chart.yaml";
const VALUES_FILE: &str = "values.yaml";
const IGNORE_FILE: &str = ".helmignore";

impl Chart {
    /// Reads the chart directory `dir`, leaving out what its `.helmignore`
    /// excludes, symbolic links and special files, within `limits`.
    pub fn from_dir(dir: &Path, limits: Limits) -> Result<Chart, Error> {
        let package = |m: String| BuildReason::ChartPackage.error(m);
        let mut ignore = ignore::gitignore::GitignoreBuilder::new(dir);
        // Helm always leaves out hidden files under templates/.
        ignore
            .add_line(None, "templates/.?*")
            .map_err(|e| package(e.to_string()))?;
        if let Ok(text) = std::fs::read_to_string(dir.join(IGNORE_FILE)) {
            for line in text.lines() {
                ignore
                    .add_line(None, line)
                    .map_err(|e| package(format!("invalid {IGNORE_FILE} line '{line}': {e}")))?;
            }
        }
        let ignore = ignore.build().map_err(|e| package(e.to_string()))?;
        let mut chart = Chart::default();
        let mut total = 0u64;
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let here = dir.join(&rel);
            let entries = std::fs::read_dir(&here)
                .map_err(|e| package(format!("reading {}: {e}", here.display())))?;
            for entry in entries {
                let entry = entry.map_err(|e| package(e.to_string()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = if rel.is_empty() {
                    name
                } else {
                    format!("{rel}/{name}")
                };
                let kind = entry.file_type().map_err(|e| package(e.to_string()))?;
                if kind.is_dir() {
                    if !ignore.matched(&path, true).is_ignore() {
                        stack.push(path);
                    }
                } else if kind.is_file() && !ignore.matched(&path, false).is_ignore() {
                    let size = entry.metadata().map_err(|e| package(e.to_string()))?.len();
                    limits.take(&mut total, &path, size)?;
                    let bytes = std::fs::read(entry.path())
                        .map_err(|e| package(format!("reading {path}: {e}")))?;
                    chart.files.insert(path, bytes);
                }
            }
        }
        chart.check_has_metadata()?;
        Ok(chart)
    }

    /// Reads a packaged chart (`<name>/...` entries in a tar.gz). Only regular
    /// files with plain relative names are accepted, within `limits`.
    pub fn from_archive(bytes: &[u8], limits: Limits) -> Result<Chart, Error> {
        let package = |m: String| BuildReason::ChartPackage.error(m);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
        let mut chart = Chart::default();
        let mut total = 0u64;
        let entries = archive
            .entries()
            .map_err(|e| package(format!("reading the chart archive: {e}")))?;
        for entry in entries {
            let mut entry =
                entry.map_err(|e| package(format!("reading the chart archive: {e}")))?;
            let kind = entry.header().entry_type();
            if kind == EntryType::Directory || kind.is_pax_global_extensions() {
                continue;
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if !matches!(kind, EntryType::Regular | EntryType::Continuous) {
                return Err(package(format!(
                    "the chart archive holds '{raw}', which is not a regular file"
                )));
            }
            let Some(path) = plain_relative(&raw) else {
                return Err(package(format!(
                    "the chart archive holds an unsafe path '{raw}'"
                )));
            };
            // The first component is the chart's directory.
            let Some((_, inner)) = path.split_once('/') else {
                continue;
            };
            let size = entry.header().size().unwrap_or(0);
            limits.take(&mut total, inner, size)?;
            let mut data = Vec::with_capacity(size as usize);
            entry
                .by_ref()
                .take(size)
                .read_to_end(&mut data)
                .map_err(|e| package(format!("reading '{raw}': {e}")))?;
            chart.files.insert(inner.to_string(), data);
        }
        chart.check_has_metadata()?;
        Ok(chart)
    }

    fn check_has_metadata(&self) -> Result<(), Error> {
        if self.files.contains_key(CHART_FILE) {
            Ok(())
        } else {
            Err(BuildReason::ChartReference.error("Chart.yaml file is missing"))
        }
    }

    /// A file of the chart.
    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    /// Name and version from `Chart.yaml`, checked as Helm does.
    pub fn metadata(&self) -> Result<Metadata, Error> {
        let chart_yaml = self.chart_yaml()?;
        let field = |key: &str| match &chart_yaml[key] {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let (name, version) = (field("name"), field("version"));
        if name.is_empty() {
            return Err(
                BuildReason::ChartReference.error("validation: chart.metadata.name is required")
            );
        }
        if version.is_empty() {
            return Err(
                BuildReason::ChartReference.error("validation: chart.metadata.version is required")
            );
        }
        if runtime::semver::Version::parse(&version).is_none() {
            return Err(BuildReason::ChartReference.error(format!(
                "validation: chart.metadata.version \"{version}\" is invalid"
            )));
        }
        Ok(Metadata { name, version })
    }

    fn chart_yaml(&self) -> Result<Value, Error> {
        let text = self
            .file(CHART_FILE)
            .map(String::from_utf8_lossy)
            .ok_or_else(|| BuildReason::ChartReference.error("Chart.yaml file is missing"))?;
        let value: Value = serde_saphyr::from_str(&text).map_err(|e| {
            BuildReason::ChartReference.error(format!("cannot load Chart.yaml: {e}"))
        })?;
        if value.is_object() {
            Ok(value)
        } else {
            Err(BuildReason::ChartReference.error("cannot load Chart.yaml: not a mapping"))
        }
    }

    /// Rewrites `Chart.yaml` with `version` (as Helm does when packaging
    /// with another version).
    pub fn set_version(&mut self, version: &str) -> Result<(), Error> {
        let mut chart_yaml = self.chart_yaml()?;
        if chart_yaml["version"].as_str() == Some(version) {
            return Ok(());
        }
        chart_yaml["version"] = Value::String(version.to_string());
        let text = serde_saphyr::to_string(&chart_yaml).map_err(|e| {
            BuildReason::ChartPackage.error(format!("cannot write Chart.yaml: {e}"))
        })?;
        self.files.insert(CHART_FILE.to_string(), text.into_bytes());
        Ok(())
    }

    /// The chart's own `values.yaml` as a map (empty when there is none).
    pub fn values(&self) -> Result<Map<String, Value>, Error> {
        match self.file(VALUES_FILE) {
            Some(bytes) => parse_values(bytes, VALUES_FILE),
            None => Ok(Map::new()),
        }
    }

    /// Replaces `values.yaml` with `values` (keys sorted, as Helm writes
    /// them). Returns whether the file changed.
    pub fn replace_values(&mut self, values: &Map<String, Value>) -> Result<bool, Error> {
        let encoded = if values.is_empty() {
            Vec::new()
        } else {
            let sorted = crate::helm_repository::sort_keys(Value::Object(values.clone()));
            serde_saphyr::to_string(&sorted)
                .map_err(|e| {
                    BuildReason::ValuesFiles.error(format!("cannot encode merged values: {e}"))
                })?
                .into_bytes()
        };
        if self.file(VALUES_FILE) == Some(encoded.as_slice()) {
            return Ok(false);
        }
        self.files.insert(VALUES_FILE.to_string(), encoded);
        Ok(true)
    }

    /// The dependencies to have: a lock file's (exact versions) if there is
    /// one, else those of `Chart.yaml` (or `requirements.yaml` for v1 charts).
    pub fn dependencies(&self) -> Result<Vec<Dependency>, Error> {
        for file in [
            "Chart.lock",
            "requirements.lock",
            CHART_FILE,
            "requirements.yaml",
        ] {
            let Some(bytes) = self.file(file) else {
                continue;
            };
            let parsed: Dependencies = serde_saphyr::from_str(&String::from_utf8_lossy(bytes))
                .map_err(|e| {
                    BuildReason::DependencyBuild.error(format!("cannot read {file}: {e}"))
                })?;
            if let Some(dependencies) = parsed.dependencies.filter(|d| !d.is_empty()) {
                return Ok(dependencies);
            }
        }
        Ok(Vec::new())
    }

    /// Whether `charts/` already holds the dependency `name` (as a directory
    /// or as `<name>-<version>.tgz`).
    pub fn has_dependency(&self, name: &str) -> bool {
        let in_dir = format!("charts/{name}/{CHART_FILE}");
        let prefix = format!("charts/{name}-");
        self.files.contains_key(&in_dir)
            || self.files.keys().any(|path| {
                path.strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix(".tgz"))
                    .is_some_and(|version| {
                        !version.contains('/') && runtime::semver::Version::parse(version).is_some()
                    })
            })
    }

    /// Adds a packaged dependency as `charts/<name>-<version>.tgz`.
    pub fn add_dependency_archive(&mut self, name: &str, version: &str, archive: Vec<u8>) {
        self.files
            .insert(format!("charts/{name}-{version}.tgz"), archive);
    }

    /// The chart as a `.tgz` whose entries sit under `<name>/`, `Chart.yaml` first.
    pub fn package(&self, name: &str) -> Result<Vec<u8>, Error> {
        let package = |e: std::io::Error| {
            BuildReason::ChartPackage.error(format!("failed to package the chart: {e}"))
        };
        let gz = GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), Compression::default());
        let mut tar = tar::Builder::new(gz);
        let ordered = self
            .files
            .iter()
            .filter(|(path, _)| path.as_str() == CHART_FILE)
            .chain(
                self.files
                    .iter()
                    .filter(|(path, _)| path.as_str() != CHART_FILE),
            );
        for (path, data) in ordered {
            let mut header = Header::new_gnu();
            header.set_entry_type(EntryType::Regular);
            header.set_mode(0o644);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            header.set_size(data.len() as u64);
            tar.append_data(&mut header, format!("{name}/{path}"), data.as_slice())
                .map_err(package)?;
        }
        let mut gz = tar.into_inner().map_err(package)?;
        gz.flush().map_err(package)?;
        gz.finish().map_err(package)
    }
}

/// `path` if it is a plain relative `/`-separated path (no `..`, no root).
fn plain_relative(path: &str) -> Option<String> {
    let path = path.trim_start_matches("./");
    if path.is_empty() || path.contains('\\') {
        return None;
    }
    let parts: Vec<&str> = Path::new(path)
        .components()
        .map(|c| match c {
            Component::Normal(part) => part.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    Some(parts.join("/"))
}

/// A values document as a map; an empty document is an empty map.
pub fn parse_values(bytes: &[u8], name: &str) -> Result<Map<String, Value>, Error> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_depth: 200,
        },
    };
    let invalid = |message: String| {
        BuildReason::ValuesFiles.error(format!(
            "unmarshaling values from '{name}' failed: {message}"
        ))
    };
    let value: Value =
        serde_saphyr::from_str_with_options(&String::from_utf8_lossy(bytes), options)
            .map_err(|e| invalid(e.to_string()))?;
    match value {
        Value::Object(map) => Ok(map),
        Value::Null => Ok(Map::new()),
        _ => Err(invalid("the document is not a map".into())),
    }
}

/// Deep merge as Helm's `MergeMaps`: maps merge key by key, anything else in
/// `overlay` (lists too) replaces what `base` has.
pub fn merge_values(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(incoming)) => {
                merge_values(existing, incoming);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// `version` with its build metadata set to `metadata` (replacing any), as
/// a normalised semver string: `1.2.3-rc.1+abc`.
pub fn with_build_metadata(version: &str, metadata: &str) -> Result<String, Error> {
    let parsed = runtime::semver::Version::parse(version).ok_or_else(|| {
        BuildReason::MetadataPatch.error(format!(
            "failed to parse version from chart metadata as SemVer: '{version}'"
        ))
    })?;
    let valid = !metadata.is_empty()
        && metadata.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if !valid {
        return Err(BuildReason::MetadataPatch.error(format!(
            "failed to set SemVer metadata on chart version: invalid metadata '{metadata}'"
        )));
    }
    let mut text = format!("{}.{}.{}", parsed.major, parsed.minor, parsed.patch);
    if !parsed.pre.is_empty() {
        text.push('-');
        text.push_str(&parsed.pre);
    }
    text.push('+');
    text.push_str(metadata);
    Ok(text)
}

/// The values files that change anything: a lone `values.yaml` is the
/// chart's own values, so it asks for nothing.
pub fn effective_values_files(files: &[String]) -> &[String] {
    match files {
        [only] if plain_relative(only).as_deref() == Some(VALUES_FILE) => &[],
        other => other,
    }
}

/// The chart-relative name of a values file reference (`./a/b.yaml` → `a/b.yaml`).
pub fn clean_relative(path: &str) -> Option<String> {
    plain_relative(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        total: 1 << 20,
        file: 1 << 20,
    };

    fn sample() -> Chart {
        let mut chart = Chart::default();
        chart.files.insert(
            CHART_FILE.into(),
            b"apiVersion: v2\nname: demo\nversion: 1.2.3\ndependencies:\n- name: lib\n  version: ~0.1.0\n  repository: file://../lib\n".to_vec(),
        );
        chart
            .files
            .insert(VALUES_FILE.into(), b"a: 1\nnested: {x: 1, y: 2}\n".to_vec());
        chart
            .files
            .insert("templates/cm.yaml".into(), b"kind: ConfigMap\n".to_vec());
        chart
    }

    #[test]
    fn packages_round_trip_deterministically() {
        let chart = sample();
        let first = chart.package("demo").unwrap();
        assert_eq!(first, chart.package("demo").unwrap());
        let again = Chart::from_archive(&first, LIMITS).unwrap();
        assert_eq!(again.files, chart.files);
        assert_eq!(
            again.metadata().unwrap(),
            Metadata {
                name: "demo".into(),
                version: "1.2.3".into()
            }
        );
        assert_eq!(again.dependencies().unwrap()[0].name, "lib");
    }

    #[test]
    fn values_merge_deeply_and_are_rewritten_sorted() {
        let mut chart = sample();
        let mut values = chart.values().unwrap();
        merge_values(
            &mut values,
            parse_values(b"nested: {y: 3, z: [1]}\nb: true\n", "prod.yaml").unwrap(),
        );
        assert!(chart.replace_values(&values).unwrap());
        let written = parse_values(chart.file(VALUES_FILE).unwrap(), VALUES_FILE).unwrap();
        assert_eq!(
            Value::Object(written),
            serde_json::json!({"a": 1, "b": true, "nested": {"x": 1, "y": 3, "z": [1]}})
        );
        let text = String::from_utf8_lossy(chart.file(VALUES_FILE).unwrap()).into_owned();
        assert!(text.find("a:") < text.find("b:"), "{text}");
        assert!(!chart.replace_values(&values).unwrap());
    }

    #[test]
    fn versions_take_build_metadata() {
        assert_eq!(
            with_build_metadata("6.0.3", "4e5cbb7b97d0").unwrap(),
            "6.0.3+4e5cbb7b97d0"
        );
        assert_eq!(
            with_build_metadata("v1.0.0-rc.1+old", "abc.2").unwrap(),
            "1.0.0-rc.1+abc.2"
        );
        assert!(matches!(
            with_build_metadata("latest", "2"),
            Err(Error::Chart {
                reason: BuildReason::MetadataPatch,
                ..
            })
        ));
        let mut chart = sample();
        chart.set_version("1.2.3+abc").unwrap();
        assert_eq!(chart.metadata().unwrap().version, "1.2.3+abc");
    }

    #[test]
    fn unsafe_archives_and_bad_metadata_are_refused() {
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(EntryType::Regular);
        // `append_data` refuses `..`; write the raw name the way an attacker would.
        header.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"demo/../evil\0");
        header.set_cksum();
        tar.append(&header, &b"x"[..]).unwrap();
        let raw = tar.into_inner().unwrap();
        let mut gz = GzBuilder::new().write(Vec::new(), Compression::default());
        gz.write_all(&raw).unwrap();
        assert!(Chart::from_archive(&gz.finish().unwrap(), LIMITS).is_err());

        let mut chart = Chart::default();
        chart
            .files
            .insert(CHART_FILE.into(), b"name: demo\n".to_vec());
        assert!(matches!(
            chart.metadata(),
            Err(Error::Chart { reason: BuildReason::ChartReference, message }) if message.contains("version")
        ));
    }

    #[test]
    fn directories_honour_helmignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::write(root.join(CHART_FILE), "name: demo\nversion: 0.1.0\n").unwrap();
        std::fs::write(root.join(IGNORE_FILE), "docs/\n*.bak\n").unwrap();
        std::fs::write(root.join("templates/cm.yaml"), "kind: ConfigMap\n").unwrap();
        std::fs::write(root.join("templates/.hidden"), "x").unwrap();
        std::fs::write(root.join("templates/old.bak"), "x").unwrap();
        std::fs::write(root.join("docs/readme.md"), "x").unwrap();
        let chart = Chart::from_dir(root, LIMITS).unwrap();
        let paths: Vec<&str> = chart.files.keys().map(String::as_str).collect();
        assert_eq!(paths, vec![IGNORE_FILE, CHART_FILE, "templates/cm.yaml"]);
        let small = |total, file| Chart::from_dir(root, Limits { total, file }).unwrap_err();
        assert!(small(10, 1 << 20).to_string().contains("chart exceeds"));
        assert!(small(1 << 20, 10).to_string().contains("file '"));
    }

    #[test]
    fn existing_dependencies_are_recognised() {
        let mut chart = sample();
        assert!(!chart.has_dependency("lib"));
        chart.add_dependency_archive("lib", "0.1.0", vec![1]);
        assert!(chart.has_dependency("lib"));
        assert!(!chart.has_dependency("li"));
        assert_eq!(effective_values_files(&["./values.yaml".into()]).len(), 0);
        assert_eq!(clean_relative("./a/b.yaml").as_deref(), Some("a/b.yaml"));
        assert_eq!(clean_relative("../b.yaml"), None);
    }
}
