//! Link the `source-controller` binary with packed relative relocations
//! (DT_RELR, glibc ≥ 2.36): the position-independent binary otherwise carries
//! ~33,000 `R_X86_64_RELATIVE` entries (0.8 MB of `.rela.dyn`) that the
//! dynamic loader reads at every start and that then stay resident for the
//! life of the process; packed, they take a few kilobytes.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
