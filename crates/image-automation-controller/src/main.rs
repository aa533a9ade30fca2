//! The `image-automation-controller` binary: the shared start-up path, then
//! [`image_automation_controller::manager::run`].

use runtime::process::Process;

fn main() -> std::process::ExitCode {
    Process::new("image-automation-controller").run(image_automation_controller::manager::run)
}
