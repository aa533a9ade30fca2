//! The node's own images, built without a Docker daemon: a static Go program
//! of the harness ([`crate::gobuild::own_program`]) as the single file of a
//! one-layer OCI image, pushed to the node's registry.

use std::path::Path;

use anyhow::{Context, Result};

use crate::registry::{OCI_CONFIG, OCI_LAYER_GZIP, Registry, gzip, sha256_digest};

/// The Pod sandbox process (`sandbox_image` of containerd's CRI plugin).
pub(crate) const PAUSE_SOURCE: &str = include_str!("../../programs/pause.go");

/// The test web server and client (see `programs/web.go`).
pub(crate) const WEB_SOURCE: &str = include_str!("../../programs/web.go");

/// Builds `source` as `/<name>` and pushes it as `<registry>/ferroflux/<name>:<tag>`,
/// the binary being the image's entrypoint; returns the image reference.
pub(crate) fn push_program(registry: &Registry, name: &str, source: &str) -> Result<String> {
    let binary = crate::gobuild::own_program(name, source)?;
    // The tag is the binary's hash: an edited program is a new image, so a
    // containerd store left from an older run never serves a stale one.
    let bytes = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let tag = sha256_digest(&bytes)[7..19].to_string();
    let repo = format!("ferroflux/{name}");
    push_executable(registry, &repo, &tag, name, &binary)?;
    Ok(format!("{}/{repo}:{tag}", registry.host()))
}

/// Pushes an image whose only file is `binary` at `/<file>` (mode 0755, root-owned),
/// run as its entrypoint.
fn push_executable(
    registry: &Registry,
    repo: &str,
    tag: &str,
    file: &str,
    binary: &Path,
) -> Result<String> {
    let content = std::fs::read(binary).with_context(|| format!("reading {}", binary.display()))?;
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, file, content.as_slice())
        .with_context(|| format!("adding {file} to the layer"))?;
    let layer_tar = builder.into_inner()?;
    let layer = gzip(&layer_tar)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Entrypoint": [format!("/{file}")] },
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&layer_tar)] },
    })
    .to_string();
    registry.push_manifest_of(
        repo,
        tag,
        (OCI_CONFIG, config.as_bytes()),
        &[(OCI_LAYER_GZIP, &layer)],
        None,
    )
}
