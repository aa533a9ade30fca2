//! The binary refuses, at start-up and in one line, the flag values
//! ferroflux does not implement or that are invalid, rather than running
//! without them.

use std::path::Path;

#[test]
fn unsupported_flag_values_are_refused_at_start() -> anyhow::Result<()> {
    e2e::process::assert_flags_refused(
        Path::new(env!("CARGO_BIN_EXE_notification-controller")),
        &[
            // Shorter than the renew deadline (30s): client-go refuses it too.
            (
                "--leader-election-lease-duration=10s",
                "--leader-election-lease-duration",
            ),
            (
                "--feature-gates=ObjectLevelWorkloadIdentity=true",
                "ObjectLevelWorkloadIdentity",
            ),
            (
                "--feature-gates=Unknown=true",
                "feature-gate 'Unknown' not supported",
            ),
            ("--events-addr=nonsense", "nonsense"),
        ],
    )
}
