//! Multi-document YAML to objects, with a parsing budget so a hostile
//! manifest cannot exhaust memory.

use kube::api::DynamicObject;

use super::Error;

/// Limits for one manifest stream: generous for GitOps repositories, far
/// below what would hurt a controller.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_documents: 20_000,
            max_nodes: 5_000_000,
            max_events: 20_000_000,
            max_depth: 200,
            max_aliases: 10_000,
            max_total_scalar_bytes: 256 * 1024 * 1024,
        },
    }
}

/// Parses a stream of YAML documents into objects, skipping empty documents;
/// every other document must be a mapping with `apiVersion` and `kind`.
pub fn objects_from_yaml(text: &str) -> Result<Vec<DynamicObject>, Error> {
    let documents: Vec<serde_json::Value> =
        serde_saphyr::from_multiple_with_options(text, options())
            .map_err(|err| Error::Yaml(err.to_string()))?;
    documents
        .into_iter()
        .enumerate()
        .filter(|(_, document)| !document.is_null())
        .map(|(index, document)| {
            if !document.is_object() {
                return Err(Error::Yaml(format!(
                    "document {} is not a mapping",
                    index + 1
                )));
            }
            if document.get("apiVersion").is_none() || document.get("kind").is_none() {
                return Err(Error::Yaml(format!(
                    "document {} has no apiVersion or kind",
                    index + 1
                )));
            }
            serde_json::from_value(document)
                .map_err(|err| Error::Yaml(format!("document {}: {err}", index + 1)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_multi_document_streams() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  on: \"yes\"\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: b\n  namespace: apps\nspec:\n  replicas: 0\n";
        let objects = objects_from_yaml(text).expect("valid");
        assert_eq!(objects.len(), 2);
        assert_eq!(objects[0].metadata.name.as_deref(), Some("a"));
        assert_eq!(objects[0].data["data"]["on"], "yes");
        assert_eq!(objects[1].data["spec"]["replicas"], 0);
    }

    #[test]
    fn rejects_documents_that_are_not_objects() {
        assert!(objects_from_yaml("- a\n- b\n").is_err());
        assert!(objects_from_yaml("metadata:\n  name: x\n").is_err());
        assert!(objects_from_yaml("a: [\n").is_err());
    }
}
