//! The `notification-controller` binary: the shared start-up path, then
//! [`notification_controller::manager::run`].

use runtime::process::Process;

/// Async work is API and HTTP I/O, with bursts of events to dispatch.
const ASYNC_WORKER_THREADS: usize = 2;

fn main() -> std::process::ExitCode {
    Process::new("notification-controller")
        .worker_threads(ASYNC_WORKER_THREADS)
        .compact_memory()
        .run(notification_controller::manager::run)
}
