//! Installing the project's CRDs (`<workspace>/crds/*.yaml`) with server-side
//! apply and waiting until the apiserver serves them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{Patch, PatchParams};

/// The field manager of the applied CRDs.
const FIELD_MANAGER: &str = "ferroflux-e2e";

/// How long a CRD may take to become Established.
const ESTABLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace's `crds/` directory.
pub fn workspace_crds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR")))
        .join("crds")
}

/// Every CRD document in the `*.yaml` files of `dir` (sorted by file name).
/// A missing directory holds no CRDs.
pub fn read_crds(dir: &Path) -> Result<Vec<serde_json::Value>> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| {
                path.extension()
                    .is_some_and(|ext| ext == "yaml" || ext == "yml")
            })
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(err).with_context(|| format!("listing {}", dir.display())),
    };
    files.sort();
    let options = serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: 10_000,
            max_nodes: 10_000_000,
            max_events: 50_000_000,
            max_depth: 256,
        },
    };
    let mut crds = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_multiple_with_options(&text, options.clone())
                .with_context(|| format!("parsing {}", file.display()))?;
        for doc in docs.into_iter().filter(|doc| !doc.is_null()) {
            let kind = doc.get("kind").and_then(|kind| kind.as_str());
            if kind != Some("CustomResourceDefinition") {
                bail!(
                    "{} holds a {} document; only CustomResourceDefinitions belong in crds/",
                    file.display(),
                    kind.unwrap_or("kind-less")
                );
            }
            crds.push(doc);
        }
    }
    Ok(crds)
}

/// Applies every CRD in `dir` and waits until each is Established.
/// Returns the names of the CRDs.
pub async fn install_crds(client: &kube::Client, dir: &Path) -> Result<Vec<String>> {
    let crds = read_crds(dir)?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut names = Vec::new();
    for crd in &crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(|name| name.as_str())
            .context("a CRD in crds/ has no metadata.name")?;
        api.patch(name, &params, &Patch::Apply(crd))
            .await
            .map_err(api_error)
            .with_context(|| format!("applying CRD {name}"))?;
        names.push(name.to_string());
    }
    for name in &names {
        wait_established(&api, name).await?;
    }
    Ok(names)
}

/// kube's API errors print the whole Status; its message alone says what is wrong.
fn api_error(err: kube::Error) -> anyhow::Error {
    match err {
        kube::Error::Api(status) => anyhow::anyhow!("{} ({})", status.message, status.reason),
        other => other.into(),
    }
}

/// Whether the CRD's `Established` condition is True.
pub fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

async fn wait_established(api: &Api<CustomResourceDefinition>, name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + ESTABLISH_TIMEOUT;
    loop {
        let crd = api
            .get(name)
            .await
            .with_context(|| format!("reading CRD {name}"))?;
        if is_established(&crd) {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("CRD {name} is not Established after {ESTABLISH_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multi_document_files_and_skips_empty_documents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
             metadata:\n  name: bs.example.com\n---\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
             metadata:\n  name: as.example.com\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
        let crds = read_crds(dir.path()).unwrap();
        let names: Vec<&str> = crds
            .iter()
            .map(|crd| crd.pointer("/metadata/name").unwrap().as_str().unwrap())
            .collect();
        assert_eq!(names, ["as.example.com", "bs.example.com"]);
    }

    #[test]
    fn rejects_other_kinds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        )
        .unwrap();
        let err = read_crds(dir.path()).unwrap_err().to_string();
        assert!(err.contains("ConfigMap"), "{err}");
    }

    #[test]
    fn missing_directory_has_no_crds() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_crds(&dir.path().join("absent")).unwrap().is_empty());
    }
}
