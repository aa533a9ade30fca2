//! The project's tasks as a library: `cargo xtask` (`main.rs`) parses the
//! command line and calls these modules; the e2e tests in `xtask/tests/`
//! start the same [`demo::Stack`] the demo and the benchmarks run on.

#![warn(missing_docs)]

pub mod bench;
pub mod cluster;
pub mod crds;
pub mod demo;
pub mod image;
pub mod notification;
pub mod test;
