//! The built-in transformers a kustomization configures.

pub mod images;
pub mod labels;
pub mod name_references;
pub mod namespace;
pub mod prefix_suffix;
pub mod replicas;
pub mod value_add;
