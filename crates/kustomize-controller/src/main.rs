//! The `kustomize-controller` binary: flags, logging, TLS provider, then
//! [`kustomize_controller::manager::run`].

use clap::Parser;
use kustomize_controller::options::Flags;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // One process-wide rustls provider before any TLS client is built (kube
    // and reqwest both use rustls); an error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flags = Flags::parse();
    runtime::telemetry::init_logging(&flags.common.log_level, &flags.common.log_encoding);
    match kustomize_controller::manager::run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "kustomize-controller failed");
            std::process::ExitCode::FAILURE
        }
    }
}
