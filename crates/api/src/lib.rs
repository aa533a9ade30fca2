//! Flux-compatible API types for ferroflux: every CRD kind, with the same groups,
//! versions, fields, defaults, validations and printer columns as Flux v2.
//!
//! This crate holds types only; it performs no I/O.
