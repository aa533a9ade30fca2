//! The `helm-controller` binary: flags, logging, TLS provider, then
//! [`helm_controller::manager::run`]. `helm-controller post-render <spec>` is
//! the post-renderer helm runs as a plugin ([`helm_controller::post_render`]).

use std::process::ExitCode;

use clap::Parser;
use helm_controller::options::Flags;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "post-render") {
        return post_render(args.get(2));
    }
    if args
        .get(1)
        .is_some_and(|a| a == helm_controller::helm_cli::HELM_EXEC_MODE)
    {
        let err = helm_controller::helm_cli::exec_helm(&args[2..]);
        eprintln!("cannot start helm: {err}");
        return ExitCode::FAILURE;
    }
    let flags = Flags::parse();
    runtime::telemetry::init_logging(&flags.common.log_level, &flags.common.log_encoding);
    // One process-wide rustls provider before any TLS client is built; an
    // error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(helm_controller::manager::run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "helm-controller failed");
            ExitCode::FAILURE
        }
    }
}

/// The plugin mode: manifests on stdin, post-rendered manifests on stdout.
fn post_render(spec: Option<&std::ffi::OsString>) -> ExitCode {
    let Some(spec) = spec else {
        eprintln!("usage: helm-controller post-render <spec file>");
        return ExitCode::from(2);
    };
    match helm_controller::post_render::run_plugin(std::path::Path::new(spec)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
