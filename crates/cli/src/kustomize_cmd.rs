//! `ferroflux kustomize build`: prints the same YAML stream as
//! `kustomize build` for a kustomization directory.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand, ValueEnum};
use kustomize::{BuildOptions, LoadRestrictor, RemoteAccess, Reorder};

#[derive(Args)]
pub struct KustomizeArgs {
    #[command(subcommand)]
    command: KustomizeCommand,
}

#[derive(Subcommand)]
enum KustomizeCommand {
    /// Build a kustomization target from a directory.
    Build(BuildArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ReorderFlag {
    /// kustomize's default: sort by kind.
    Legacy,
    /// Keep the order resources were read in.
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum LoadRestrictorFlag {
    #[value(name = "LoadRestrictionsRootOnly")]
    RootOnly,
    #[value(name = "LoadRestrictionsNone")]
    None,
}

#[derive(Args)]
struct BuildArgs {
    /// Directory holding a kustomization file.
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Output order of resources.
    #[arg(long, value_enum)]
    reorder: Option<ReorderFlag>,
    /// Where kustomization files may read files from.
    #[arg(long, value_enum, default_value = "LoadRestrictionsRootOnly")]
    load_restrictor: LoadRestrictorFlag,
    /// Directory no file access may leave (ferroflux extension; the default
    /// allows the whole file system, like kustomize).
    #[arg(long, default_value = "/")]
    source_root: PathBuf,
    /// Refuse remote bases, components and files (Git and HTTP URLs), which
    /// are fetched by default, as kustomize does.
    #[arg(long)]
    no_remote_bases: bool,
}

pub fn run(args: KustomizeArgs) -> anyhow::Result<()> {
    match args.command {
        KustomizeCommand::Build(b) => build(b),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<()> {
    let dir = std::path::absolute(&args.dir)
        .map_err(|e| anyhow::anyhow!("resolving {}: {e}", args.dir.display()))?;
    // Fetches run on this runtime's worker while the build waits for them.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
    let remote = if args.no_remote_bases {
        RemoteAccess::Refused("remote bases are disabled (--no-remote-bases)".into())
    } else {
        let fetcher =
            kustomize_remote::Fetcher::new(runtime.handle().clone()).map_err(anyhow::Error::msg)?;
        RemoteAccess::Fetch(Arc::new(fetcher))
    };
    let options = BuildOptions {
        remote,
        load_restrictor: match args.load_restrictor {
            LoadRestrictorFlag::RootOnly => LoadRestrictor::RootOnly,
            LoadRestrictorFlag::None => LoadRestrictor::None,
        },
        reorder: match args.reorder {
            None => Reorder::Unspecified,
            Some(ReorderFlag::Legacy) => Reorder::Legacy,
            Some(ReorderFlag::None) => Reorder::None,
        },
    };
    let out = kustomize::build(&args.source_root, &dir, options)?;
    for w in &out.warnings {
        eprintln!("{w}");
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.to_yaml().as_bytes())?;
    stdout.flush()?;
    Ok(())
}
