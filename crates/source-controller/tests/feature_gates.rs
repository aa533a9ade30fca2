//! An unknown feature gate, or one whose non-default setting ferroflux does
//! not implement, or an unknown digest algorithm, stops source-controller at
//! start-up with one line and exit code 1, as Flux refuses them.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::Result;

#[test]
fn unknown_and_unimplemented_feature_gates_stop_the_binary_with_one_line() -> Result<()> {
    e2e::process::assert_flags_refused(
        std::path::Path::new(env!("CARGO_BIN_EXE_source-controller")),
        &[
            (
                "--feature-gates=Nope=true",
                "feature-gate 'Nope' not supported",
            ),
            (
                "--feature-gates=CacheSecretsAndConfigMaps=true",
                "feature-gate 'CacheSecretsAndConfigMaps=true' is not implemented by ferroflux",
            ),
            (
                "--feature-gates=CacheSecretsAndConfigMaps=maybe",
                "'maybe' for CacheSecretsAndConfigMaps is not a boolean",
            ),
            ("--artifact-digest-algo=md5", "--artifact-digest-algo"),
        ],
    )
}
