//! The one start-up path of every controller binary: allocator tuning,
//! the async runtime, the process-wide TLS provider, flags and logging,
//! then the controller's `run`, with its error logged on one line and the
//! exit code set.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use crate::options::ControllerOptions;

/// Flags of a controller binary: its own, with the common ones inside.
pub trait ControllerFlags: clap::Parser {
    /// The common controller flags.
    fn common(&self) -> &ControllerOptions;
    /// `--concurrent`: reconciliations at once per kind.
    fn concurrent(&self) -> u16;
    /// `--leader-election-id`: the Lease held while leading.
    fn leader_election_id(&self) -> &str;
}

/// Implements [`ControllerFlags`] for a controller's flag struct that has
/// the fields `common`, `concurrent` and `leader_election_id`, as every
/// controller's does.
#[macro_export]
macro_rules! controller_flags {
    ($flags:ty) => {
        impl $crate::process::ControllerFlags for $flags {
            fn common(&self) -> &$crate::options::ControllerOptions {
                &self.common
            }

            fn concurrent(&self) -> u16 {
                self.concurrent
            }

            fn leader_election_id(&self) -> &str {
                &self.leader_election_id
            }
        }
    };
}

/// How a controller process runs its async work.
#[derive(Clone, Debug, Default)]
pub struct Process {
    name: &'static str,
    worker_threads: Option<usize>,
    max_blocking_threads: Option<usize>,
    blocking_keep_alive: Option<Duration>,
    compact_memory: bool,
}

/// How often memory freed after a burst of work is handed back to the
/// system, with [`Process::compact_memory`].
const TRIM_INTERVAL: Duration = Duration::from_secs(10);

impl Process {
    /// A process named `name` (for the error line) on tokio's defaults.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            ..Self::default()
        }
    }

    /// Async worker threads (tokio's default: one per core).
    pub fn worker_threads(mut self, threads: usize) -> Self {
        self.worker_threads = Some(threads);
        self
    }

    /// Threads for blocking work, and how long an idle one waits for more.
    pub fn blocking_threads(mut self, threads: usize, keep_alive: Duration) -> Self {
        self.max_blocking_threads = Some(threads);
        self.blocking_keep_alive = Some(keep_alive);
        self
    }

    /// Keeps the resident set small after bursts of work.
    ///
    /// glibc gives every thread that meets lock contention a malloc arena of
    /// its own (up to eight per core) and keeps what is freed there for
    /// reuse; one arena is enough when per-thread caches serve the small
    /// allocations. glibc also raises its mmap threshold to the largest
    /// block freed (up to 32 MiB), after which large buffers come from the
    /// heap and leave it fragmented; a fixed 128 KiB threshold keeps them in
    /// their own mappings. And glibc only gives back the top of a heap by
    /// itself, so free pages in the middle are trimmed every few seconds.
    pub fn compact_memory(mut self) -> Self {
        self.compact_memory = true;
        self
    }

    /// Parses `F`, starts logging and runs `run` to its end.
    pub fn run<F, Fut, E>(self, run: impl FnOnce(F) -> Fut) -> ExitCode
    where
        F: ControllerFlags,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        if self.compact_memory {
            tune_malloc();
        }
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all();
        if let Some(threads) = self.worker_threads {
            builder.worker_threads(threads);
        }
        if let Some(threads) = self.max_blocking_threads {
            builder.max_blocking_threads(threads);
        }
        if let Some(keep_alive) = self.blocking_keep_alive {
            builder.thread_keep_alive(keep_alive);
        }
        let runtime = match builder.build() {
            Ok(runtime) => runtime,
            Err(err) => {
                eprintln!("{}: cannot start the async runtime: {err}", self.name);
                return ExitCode::FAILURE;
            }
        };
        // One process-wide rustls provider before any TLS client is built
        // (kube, reqwest, gix all use rustls); an error only means one is
        // installed already.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let flags = F::parse();
        crate::telemetry::init_logging(&flags.common().log_level, &flags.common().log_encoding);
        let name = self.name;
        let compact = self.compact_memory;
        runtime.block_on(async move {
            if compact {
                tokio::spawn(trim_freed_memory());
            }
            match run(flags).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) => {
                    tracing::error!(error = %err, "{name} failed");
                    ExitCode::FAILURE
                }
            }
        })
    }
}

#[allow(unsafe_code)]
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called before the async runtime starts any thread; mallopt
    // only changes the allocator's tuning.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[allow(unsafe_code)]
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
