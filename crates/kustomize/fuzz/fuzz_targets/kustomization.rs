//! Kustomization files, transformer configurations and resource streams:
//! parsing must never panic, and whatever parses must print.
#![no_main]

use kustomize::kustomization::Kustomization;
use kustomize::transformer_config::TransformerConfig;
use kustomize::yaml::{ParseOptions, parse_stream, to_yaml_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Kustomization::parse(text, std::path::Path::new("kustomization.yaml"));
    let _ = TransformerConfig::parse(text);
    for options in [ParseOptions::RESOURCE, ParseOptions::CONFIG] {
        if let Ok(docs) = parse_stream(text, options) {
            for doc in &docs {
                let printed = to_yaml_document(doc);
                // What we print must read back, and print the same again
                // (printing normalises numbers and timestamps like
                // kustomize, so the document itself may differ).
                let again = parse_stream(&printed, ParseOptions::RESOURCE)
                    .unwrap_or_else(|e| panic!("printed YAML does not parse: {e}\n{printed}"));
                if let Some(first) = again.first() {
                    assert_eq!(to_yaml_document(first), printed, "printing is not stable");
                }
            }
            let _ = kustomize::target::resources_from_text(text);
        }
    }
});
