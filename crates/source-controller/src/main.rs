//! The `source-controller` binary: allocator and runtime settings, flags,
//! logging, TLS provider, then [`source_controller::manager::run`].

use std::time::Duration;

use clap::Parser;
use source_controller::options::Flags;

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
/// How often memory freed after a burst of work is handed back to the system.
const TRIM_INTERVAL: Duration = Duration::from_secs(10);

fn main() -> std::process::ExitCode {
    tune_malloc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(ASYNC_WORKER_THREADS)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(run()),
        Err(err) => {
            eprintln!("source-controller: cannot start the async runtime: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> std::process::ExitCode {
    // One process-wide rustls provider before any TLS client is built (kube,
    // reqwest, gix all use rustls); an error only means one is installed already.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let flags = Flags::parse();
    runtime::telemetry::init_logging(&flags.common.log_level, &flags.common.log_encoding);
    tokio::spawn(trim_freed_memory());
    match source_controller::manager::run(flags).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "source-controller failed");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc gives every thread that meets lock contention a malloc arena of its
/// own (up to eight per core) and keeps what is freed there for reuse, so
/// clone and archive bursts on blocking threads leave memory resident long
/// after. One arena is enough here: per-thread caches serve the small
/// allocations, and the second arena held 1.2 MiB of the idle figure.
///
/// glibc also raises its mmap threshold to the size of the largest block
/// freed (up to 32 MiB), after which pack, archive and list buffers come
/// from the heap and leave it fragmented; a fixed threshold keeps blocks of
/// 128 KiB and more in their own mappings, returned to the system on free.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first thing in main, before any other thread exists;
    // mallopt only changes the allocator's tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Returns memory freed after bursts of work (clones, archives) to the
/// system: glibc only gives back the top of a heap by itself, not free pages
/// in the middle. Idle, this costs a walk over a few small heaps.
async fn trim_freed_memory() {
    let mut ticks = tokio::time::interval(TRIM_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim is thread-safe; it takes the arenas' locks.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}
