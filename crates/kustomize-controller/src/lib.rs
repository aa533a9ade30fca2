//! ferroflux kustomize-controller: reconciles Flux `Kustomization` objects
//! (kustomize.toolkit.fluxcd.io/v1) by building a kustomize overlay from a
//! source artifact and applying it with server-side apply.
//!
//! The build steps are pure modules: [`generator`] (kustomization.yaml
//! generation and the spec's build settings), [`decrypt`] (SOPS),
//! [`postbuild`] (variable substitution with the [`envsubst`] dialect).

pub mod build;
pub mod decrypt;
pub mod envsubst;
pub mod generator;
pub mod postbuild;
