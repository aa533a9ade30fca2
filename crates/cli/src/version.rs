//! `ferroflux version [--client] [-o yaml|json]`: this binary's version and,
//! unless `--client`, the image tag of every controller deployed in the
//! namespace (Deployments labelled `app.kubernetes.io/part-of` ferroflux or
//! flux), as `flux version` prints them.

use std::io::Write;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, ListParams};
use serde_json::{Map, Value};

use crate::cluster::{Cluster, ClusterArgs, describe};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  # This binary and the controllers of flux-system
  ferroflux version

  # This binary only, as JSON
  ferroflux version --client -o json")]
pub struct VersionArgs {
    /// Print only the client's version (no cluster needed).
    #[arg(long)]
    client: bool,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value = "yaml")]
    output: Format,
}

/// The name and tag of a container image (`ghcr.io/x/source-controller:v1`
/// gives `source-controller`, `v1`).
pub fn name_and_tag(image: &str) -> Option<(String, String)> {
    let last = image.rsplit('/').next()?;
    let (name, tag) = last.split_once(':')?;
    Some((name.to_owned(), tag.to_owned()))
}

pub async fn run(args: VersionArgs, cluster_args: &ClusterArgs) -> Result<()> {
    let mut info = Map::new();
    info.insert("ferroflux".into(), env!("CARGO_PKG_VERSION").into());
    if !args.client {
        let cluster = Cluster::connect(cluster_args).await?;
        let api: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
        let params = ListParams::default().labels("app.kubernetes.io/part-of in (ferroflux,flux)");
        let deployments = api
            .list(&params)
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        for deployment in deployments.items {
            let containers = deployment
                .spec
                .and_then(|s| s.template.spec)
                .map(|s| s.containers)
                .unwrap_or_default();
            for container in containers {
                let image = container.image.unwrap_or_default();
                let Some((name, tag)) = name_and_tag(&image) else {
                    bail!("missing image tag in image {image}");
                };
                info.insert(name, tag.into());
            }
        }
    }
    let text = match args.output {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&Value::Object(info))?),
        Format::Yaml => info
            .iter()
            .map(|(k, v)| format!("{k}: {}\n", v.as_str().unwrap_or_default()))
            .collect(),
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images() {
        assert_eq!(
            name_and_tag("ghcr.io/ferroflux/source-controller:v0.1.0"),
            Some(("source-controller".into(), "v0.1.0".into()))
        );
        assert_eq!(
            name_and_tag("localhost:5000/kustomize-controller:dev"),
            Some(("kustomize-controller".into(), "dev".into()))
        );
        assert_eq!(name_and_tag("localhost:5000/x"), None);
    }
}
