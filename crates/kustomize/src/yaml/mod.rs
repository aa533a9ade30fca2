//! YAML reading and writing with the semantics of the Go libraries
//! kustomize uses (go-yaml v3 to read resources, `sigs.k8s.io/yaml` with
//! go-yaml v2 to read kustomization files and to print results).

pub mod emit;
pub mod go_format;
pub mod parse;
pub mod resolve;
pub mod timestamp;

pub use emit::{to_yaml_document, to_yaml_stream};
pub use parse::{ParseOptions, YamlError, parse_single, parse_stream};
