//! Logging set-up from `--log-level` and `--log-encoding` (json by default,
//! as Flux controllers log).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG`, when set, overrides the level.
pub fn init_logging(level: &str, encoding: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // A second initialisation (in tests) is harmless, so its error is ignored.
    let _ = if encoding == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
