//! The `kustomize-controller` binary: the shared start-up path, then
//! [`kustomize_controller::manager::run`].

fn main() -> std::process::ExitCode {
    runtime::process::Process::new("kustomize-controller").run(kustomize_controller::manager::run)
}
