//! `cargo xtask image`: builds the container image ([`e2e::image`]), writes
//! it as an OCI image layout (`target/image/oci` unless `--out`) and, with
//! `--push HOST:PORT/REPO[:TAG]`, pushes it to a registry over the
//! distribution API (plain HTTP: the local registries of the harness).

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use e2e::image::build;
use e2e::registry::RegistryClient;

/// `cargo xtask image` flags.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The cargo profile the controllers are built with.
    #[arg(long, default_value = "release")]
    pub profile: String,
    /// The directory to write the OCI image layout to (default: target/image/oci).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// The tag in the layout's index (and of `--push` without one).
    #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
    pub tag: String,
    /// Also push the image to `HOST:PORT/REPOSITORY[:TAG]` over plain HTTP.
    #[arg(long)]
    pub push: Option<String>,
}

/// Runs `cargo xtask image`.
pub fn run(args: &Args) -> Result<()> {
    let started = std::time::Instant::now();
    let image = build(&args.profile)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| crate::bench::workspace_root().join("target/image/oci"));
    image.write_layout(&out, &args.tag)?;
    eprintln!("{}", image.report());
    eprintln!(
        "OCI image layout in {} (tag {}), built in {:.0?}",
        out.display(),
        args.tag,
        started.elapsed()
    );
    if let Some(reference) = &args.push {
        let (host, repository, tag) = parse_reference(reference, &args.tag)?;
        let digest = image.push(&RegistryClient::new(host, None, None), &repository, &tag)?;
        eprintln!("pushed {host}/{repository}:{tag}@{digest}");
    }
    Ok(())
}

/// `HOST:PORT/REPO[:TAG]` split into its parts (`default_tag` when no tag).
pub fn parse_reference<'a>(
    reference: &'a str,
    default_tag: &'a str,
) -> Result<(&'a str, String, String)> {
    let (host, rest) = reference
        .split_once('/')
        .with_context(|| format!("{reference}: expected HOST:PORT/REPOSITORY[:TAG]"))?;
    let (repository, tag) = match rest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, tag),
        _ => (rest, default_tag),
    };
    ensure!(
        !repository.is_empty() && !tag.is_empty(),
        "{reference}: expected HOST:PORT/REPOSITORY[:TAG]"
    );
    Ok((host, repository.to_string(), tag.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_host_repository_and_tag() {
        assert_eq!(
            parse_reference("127.0.0.1:5000/ferroflux:1.2", "0.1.0").unwrap(),
            ("127.0.0.1:5000", "ferroflux".to_string(), "1.2".to_string())
        );
        assert_eq!(
            parse_reference("127.0.0.1:5000/org/ferroflux", "0.1.0").unwrap(),
            (
                "127.0.0.1:5000",
                "org/ferroflux".to_string(),
                "0.1.0".to_string()
            )
        );
        assert!(parse_reference("ferroflux", "0.1.0").is_err());
    }
}
