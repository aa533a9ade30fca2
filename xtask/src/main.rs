//! `cargo xtask`: the project's own tasks.
//!
//! - `crds [--check]`: write (or check) `crds/` from the Rust API types;
//! - `cluster up|down|status|env`: a real local control plane on loopback;
//! - `test`: install or build what is missing, then run every test, e2e included;
//! - `demo`: set everything up and run the main job;
//! - `image`: the container image of the controllers (OCI layout, optionally pushed);
//! - `bench <target>`: benchmarks, written to `target/bench/<target>.md`.

use xtask::{bench, cluster, crds, demo, image, test};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "ferroflux project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate one CRD YAML per kind into crds/ from the Rust types.
    Crds {
        /// Fail instead of writing when crds/ is stale.
        #[arg(long)]
        check: bool,
    },
    /// Run a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) on loopback.
    Cluster {
        #[command(subcommand)]
        action: cluster::Action,
    },
    /// Install or build whatever is missing, then run every test (unit and e2e).
    Test {
        /// Only the fast tier: the unit tests of every crate (no Go build,
        /// no root, no cluster).
        #[arg(long)]
        unit: bool,
        /// Extra arguments passed to `cargo test` after `--`.
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Set everything up and run the main job: Git to cluster with source-controller and kustomize-controller.
    Demo {
        /// Stop after the scripted steps instead of running until Ctrl-C.
        #[arg(long)]
        once: bool,
    },
    /// Build the container image of the controllers (and helm, git, ssh) without a container engine.
    Image(image::Args),
    /// Run a benchmark and write its report to target/bench/.
    Bench {
        #[command(subcommand)]
        target: bench::Target,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { check } => crds::run(check),
        Command::Cluster { action } => cluster::run(action),
        Command::Test { unit, args } => test::run(unit, &args),
        Command::Demo { once } => demo::run(once),
        Command::Image(args) => image::run(&args),
        Command::Bench { target } => bench::run(target),
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
