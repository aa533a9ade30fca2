//! Native `kustomize build` with kustomize v5.8 semantics, as a pure
//! library: no Kubernetes client, no network, no processes, and no file
//! read outside the source root a build is given.
//!
//! ```no_run
//! use kustomize::{BuildOptions, build};
//! let out = build("/src".as_ref(), "/src/overlays/prod".as_ref(), BuildOptions::default())?;
//! print!("{}", out.to_yaml());
//! # Ok::<(), kustomize::Error>(())
//! ```
#![warn(missing_docs)]

pub mod crds;
pub mod error;
pub mod fieldpath;
pub mod fieldspec;
pub mod generators;
pub mod go_json;
pub mod kustomization;
pub mod loader;
pub mod openapi;
pub mod ordering;
pub mod origin;
pub mod patch;
pub mod plugins;
pub mod remote;
pub mod replacements;
pub mod resid;
pub mod resmap;
pub mod resource;
pub mod selector;
pub mod target;
pub mod transformer_config;
pub mod transformers;
pub mod vars;
pub mod yaml;

pub use error::{Error, Result};
pub use loader::{LoadRestrictor, RemoteAccess};
pub use remote::{HttpResponse, RemoteFetcher, RepoSpec};
pub use target::{BuildOptions, Output, Reorder, build};
