//! Flux-compatible API types for ferroflux: every CRD kind, with the same groups,
//! versions, fields, defaults, validations and printer columns as Flux v2.
//!
//! This crate holds types only; it performs no I/O. [`crds()`] returns the
//! CustomResourceDefinitions generated from the types (what `cargo xtask crds` writes
//! to `crds/`), and [`render_crd_yaml`] renders one as YAML.
#![warn(missing_docs)]

mod crd;
pub mod duration;
mod error;
pub mod event;
pub mod helm;
pub mod image;
pub mod kustomize;
pub mod meta;
pub mod notification;
pub mod source;

pub use crd::{crd_file_name, crd_files, crds, render_crd_yaml};
pub use duration::Duration;
pub use error::Error;
