//! The `source-controller` binary: the shared start-up path with the
//! thread and memory settings that keep its idle footprint small, then
//! [`source_controller::manager::run`].

use std::time::Duration;

use runtime::process::Process;

/// Threads for blocking work (clones, archives, file I/O). Reconciliations
/// run `--concurrent` at a time per kind, so a few threads suffice; tokio's
/// default of 512 lets a burst leave dozens of idle threads, each with its
/// own stack and malloc arena.
const MAX_BLOCKING_THREADS: usize = 8;
/// Async work is API and HTTP I/O; fetching, archiving and hashing run on
/// the blocking threads, so one async worker keeps up.
const ASYNC_WORKER_THREADS: usize = 1;
/// How long an idle blocking thread waits for more work before it exits.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(2);

fn main() -> std::process::ExitCode {
    Process::new("source-controller")
        .worker_threads(ASYNC_WORKER_THREADS)
        .blocking_threads(MAX_BLOCKING_THREADS, BLOCKING_KEEP_ALIVE)
        .compact_memory()
        .run(source_controller::manager::run)
}
