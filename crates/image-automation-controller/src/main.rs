//! The `image-automation-controller` binary: the shared start-up path with
//! the thread and memory settings that keep its footprint small, then
//! [`image_automation_controller::manager::run`].

use std::time::Duration;

use runtime::process::Process;

/// Threads for blocking work (Git checkouts and commits, tag files); at most
/// `--concurrent` automations run at a time per kind, so a few suffice.
const MAX_BLOCKING_THREADS: usize = 8;
/// Async work is API, registry and `git push` I/O; one worker keeps up.
const ASYNC_WORKER_THREADS: usize = 1;
/// How long an idle blocking thread waits for more work before it exits.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    Process::new("image-automation-controller")
        .worker_threads(ASYNC_WORKER_THREADS)
        .blocking_threads(MAX_BLOCKING_THREADS, BLOCKING_KEEP_ALIVE)
        .compact_memory()
        .run(image_automation_controller::manager::run)
}
