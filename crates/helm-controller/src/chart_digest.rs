//! Flux's chart digest tracking: a chart from a source whose revision carries
//! a digest (an OCIRepository, or an ExternalArtifact revision with one) is
//! installed with the first 12 hex characters of that digest as the build
//! metadata of its version (`6.5.0+0123456789ab`), so that a tag moved to
//! other content makes a new release, and the release, its history and
//! `lastAttemptedRevision` carry that version exactly as Flux's do. The
//! `DisableChartDigestTracking` feature gate turns the rewrite off (the
//! digest is still recorded).
//!
//! helm takes the chart as an archive, so the version is rewritten in the
//! archive's `Chart.yaml`, in a copy kept beside the original in the cache.

use std::io::{Read, Write};
use std::path::Path;

use runtime::semver::Version;

use crate::chart::ChartError;

/// The chart version Flux installs for `chart_version` from a source at
/// `revision`, and the digest it records (`lastAttemptedRevisionDigest`,
/// `history[].ociDigest`). Errors are Flux's `ChartMutateError` messages.
pub fn tracked_version(chart_version: &str, revision: &str) -> Result<(String, String), String> {
    let mut version = Version::parse(chart_version)
        .ok_or_else(|| format!("invalid chart version {chart_version}"))?;
    let digest = match revision.split_once('@') {
        // A revision naming a semver tag must name this chart's version.
        Some((tag, digest)) if Version::parse(&tag.replace('_', "+")).is_some() => {
            // Compared as Masterminds does: build metadata does not count.
            let same = Version::parse(&tag.replace('_', "+"))
                .is_some_and(|tagged| tagged.cmp(&version) == std::cmp::Ordering::Equal);
            if !same || revision.matches('@').count() != 1 {
                return Err(format!(
                    "artifact revision {tag} does not match chart version {chart_version}"
                ));
            }
            digest
        }
        _ => revision,
    };
    version.build = short_digest(digest)
        .ok_or_else(|| format!("invalid artifact revision {digest}"))?
        .to_string();
    Ok((version.to_string(), digest.to_string()))
}

/// The first 12 characters of the hex part of `<algo>:<hex>`.
fn short_digest(digest: &str) -> Option<&str> {
    let (_, hex) = digest
        .split_once(':')
        .filter(|(_, hex)| !hex.contains(':'))?;
    hex.get(..12)
}

/// Writes `target`: the chart archive `source` with the top-level
/// `Chart.yaml`'s `version` set to `version`, every other entry as it is.
pub fn rewrite_version(source: &Path, target: &Path, version: &str) -> Result<(), ChartError> {
    let invalid = |why: String| ChartError::Invalid(format!("{}: {why}", source.display()));
    let cache = |why: std::io::Error| ChartError::Artifact(format!("cache: {why}"));
    let file = std::fs::File::open(source).map_err(|e| invalid(e.to_string()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let dir = target.parent().unwrap_or_else(|| Path::new("."));
    let partial = tempfile::NamedTempFile::new_in(dir).map_err(cache)?;
    let gzip = flate2::write::GzEncoder::new(partial.as_file(), flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    let mut rewritten = false;
    for entry in archive.entries().map_err(|e| invalid(e.to_string()))? {
        let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| invalid(e.to_string()))?
            .into_owned();
        let mut header = entry.header().clone();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| invalid(e.to_string()))?;
        let top_level_chart_yaml =
            path.components().count() == 2 && path.file_name().is_some_and(|n| n == "Chart.yaml");
        if top_level_chart_yaml && !rewritten {
            let text = String::from_utf8(data)
                .map_err(|_| invalid("Chart.yaml is not UTF-8".to_string()))?;
            data = set_version_line(&text, version)
                .ok_or_else(|| invalid("Chart.yaml has no top-level version line".to_string()))?
                .into_bytes();
            rewritten = true;
        }
        header.set_size(data.len() as u64);
        header.set_cksum();
        builder
            .append_data(&mut header, &path, data.as_slice())
            .map_err(cache)?;
    }
    if !rewritten {
        return Err(invalid("no Chart.yaml in the archive".to_string()));
    }
    let gzip = builder.into_inner().map_err(cache)?;
    gzip.finish().map_err(cache)?.flush().map_err(cache)?;
    partial.persist(target).map_err(|e| cache(e.error))?;
    Ok(())
}

/// `text` (a `Chart.yaml`) with its top-level `version:` line's value
/// replaced; `None` when there is no such line.
fn set_version_line(text: &str, version: &str) -> Option<String> {
    let mut found = false;
    let lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let is_version = line
                .strip_prefix("version:")
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']));
            if is_version && !found {
                found = true;
                let ending = if line.ends_with("\r\n") {
                    "\r\n"
                } else if line.ends_with('\n') {
                    "\n"
                } else {
                    ""
                };
                format!("version: {version}{ending}")
            } else {
                line.to_string()
            }
        })
        .collect();
    found.then(|| lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn versions_carry_the_short_digest() {
        let digest = format!("sha256:{HEX}");
        assert_eq!(
            tracked_version("6.5.0", &format!("6.5.0@{digest}")),
            Ok(("6.5.0+0123456789ab".to_string(), digest.clone()))
        );
        // A tag with '_' for '+' (OCI tags cannot hold '+'), existing metadata replaced.
        assert_eq!(
            tracked_version("1.0.0+build.1", &format!("1.0.0_build.1@{digest}")),
            Ok(("1.0.0+0123456789ab".to_string(), digest.clone()))
        );
        // A revision that is a digest only, or a non-semver tag.
        assert_eq!(
            tracked_version("v2.1", &digest),
            Ok(("2.1.0+0123456789ab".to_string(), digest.clone()))
        );
        assert_eq!(
            tracked_version("2.1.0", &format!("latest@{digest}")),
            Ok(("2.1.0+0123456789ab".to_string(), format!("latest@{digest}")))
        );
    }

    #[test]
    fn mismatches_and_bad_revisions_are_refused() {
        let digest = format!("sha256:{HEX}");
        assert_eq!(
            tracked_version("6.5.0", &format!("6.5.1@{digest}")),
            Err("artifact revision 6.5.1 does not match chart version 6.5.0".to_string())
        );
        assert_eq!(
            tracked_version("6.5.0", "sha256:abc"),
            Err("invalid artifact revision sha256:abc".to_string())
        );
        assert_eq!(
            tracked_version("not-semver", &digest),
            Err("invalid chart version not-semver".to_string())
        );
    }

    #[test]
    fn only_the_top_level_version_line_changes() {
        let chart = "apiVersion: v2\nname: podinfo\nversion: 6.5.0\nannotations:\n  version: keep\nappVersion: 6.5.0\n";
        assert_eq!(
            set_version_line(chart, "6.5.0+0123456789ab").as_deref(),
            Some(
                "apiVersion: v2\nname: podinfo\nversion: 6.5.0+0123456789ab\nannotations:\n  version: keep\nappVersion: 6.5.0\n"
            )
        );
        assert_eq!(set_version_line("name: x\nversions: 1\n", "1"), None);
    }

    #[test]
    fn the_archive_is_copied_with_the_new_version() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("in.tgz");
        {
            let file = std::fs::File::create(&source).unwrap();
            let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
            let mut builder = tar::Builder::new(gzip);
            for (path, body) in [
                ("podinfo/Chart.yaml", "name: podinfo\nversion: 6.5.0\n"),
                ("podinfo/values.yaml", "replicas: 1\n"),
                (
                    "podinfo/charts/sub/Chart.yaml",
                    "name: sub\nversion: 1.0.0\n",
                ),
            ] {
                let mut header = tar::Header::new_gnu();
                header.set_size(body.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                builder
                    .append_data(&mut header, path, body.as_bytes())
                    .unwrap();
            }
            builder.into_inner().unwrap().finish().unwrap();
        }
        let target = dir.path().join("out.tgz");
        rewrite_version(&source, &target, "6.5.0+0123456789ab").unwrap();
        let metadata = crate::chart::read_chart_metadata(&target).unwrap();
        assert_eq!(metadata.version, "6.5.0+0123456789ab");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
            std::fs::File::open(&target).unwrap(),
        ));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            seen.push((entry.path().unwrap().display().to_string(), body));
        }
        assert_eq!(
            seen[1],
            ("podinfo/values.yaml".into(), "replicas: 1\n".into())
        );
        assert_eq!(
            seen[2].1, "name: sub\nversion: 1.0.0\n",
            "subcharts keep their version"
        );
    }
}
