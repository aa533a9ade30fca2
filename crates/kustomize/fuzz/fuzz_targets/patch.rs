//! Strategic merge and JSON 6902 patches: input is a target document and a
//! patch separated by a line `---8<---`. Decoding and applying must never
//! panic.
#![no_main]

use kustomize::patch::json6902::JsonPatch;
use kustomize::patch::strategic_merge;
use kustomize::yaml::{ParseOptions, parse_single, to_yaml_document};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (target, patch) = text.split_once("\n---8<---\n").unwrap_or((text, text));
    let Ok(doc) = parse_single(target, ParseOptions::RESOURCE) else {
        return;
    };
    if let Ok(jp) = JsonPatch::decode(patch) {
        let mut d = doc.clone();
        if jp.apply(&mut d).is_ok() {
            let _ = to_yaml_document(&d);
        }
    }
    if let Ok(p) = parse_single(patch, ParseOptions::RESOURCE)
        && let Ok(Some(merged)) = strategic_merge::merge(doc, p)
    {
        let _ = to_yaml_document(&merged);
    }
});
