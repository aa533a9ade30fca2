//! The `helm-controller` binary: the shared start-up path, then
//! [`helm_controller::manager::run`]. Two private modes come first:
//! `helm-controller post-render <spec>` is the post-renderer helm runs as a
//! plugin ([`helm_controller::post_render`]), and the helm-exec mode
//! launches helm itself ([`helm_controller::helm_cli::exec_helm`]).

use std::process::ExitCode;

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
    runtime::process::Process::new("helm-controller").run(helm_controller::manager::run)
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
