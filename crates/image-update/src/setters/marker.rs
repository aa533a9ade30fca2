//! Setter markers: the JSON in a line comment, and the value each one asks for.

use std::collections::BTreeMap;

use crate::PolicyImage;

/// The key of a marker's JSON object (kyaml's short-hand ref as Flux sets it).
const SHORT_HAND_KEY: &str = "$imagepolicy";

/// The setter reference of a comment, when the comment is a marker.
///
/// `payload` is the comment text after its `#`. As kyaml does, any further
/// leading `#` are dropped and the rest must be exactly one JSON object of
/// strings (or nulls); anything else is an ordinary comment. An empty
/// reference is no marker either.
pub(crate) fn setter_reference(payload: &str) -> Option<String> {
    let json = payload.trim_start_matches('#');
    let object: BTreeMap<String, Option<String>> = serde_json::from_str(json).ok()?;
    object
        .get(SHORT_HAND_KEY)
        .cloned()
        .flatten()
        .filter(|reference| !reference.is_empty())
}

/// What part of a policy's image a setter writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// `ns:name`: the whole reference, `name:tag` or `name:tag@digest`.
    Image,
    /// `ns:name:tag`: the tag alone, never with the digest.
    Tag,
    /// `ns:name:name`: the image name.
    Name,
    /// `ns:name:digest`: the digest, or the empty string without one.
    Digest,
}

/// The value a setter reference writes, or `None` when it names no setter
/// Flux defines (no such policy, or an unknown suffix).
///
/// Flux defines four setters per policy with a selected image, under the
/// names `ns:name`, `ns:name:tag`, `ns:name:name` and `ns:name:digest`; a
/// Kubernetes name cannot hold a `:`, so the suffix is unambiguous.
pub(crate) fn setter_value(
    reference: &str,
    policies: &BTreeMap<String, PolicyImage>,
) -> Option<String> {
    let (image, part) = match policies.get(reference) {
        Some(image) => (image, Part::Image),
        None => {
            let (policy, suffix) = reference.rsplit_once(':')?;
            let part = match suffix {
                "tag" => Part::Tag,
                "name" => Part::Name,
                "digest" => Part::Digest,
                _ => return None,
            };
            (policies.get(policy)?, part)
        }
    };
    Some(match part {
        // The same text as the ImagePolicy's `status.latestRef` printed
        // (image-reflector-controller's `ImageRef.String`).
        Part::Image => match &image.digest {
            Some(digest) => format!("{}:{}@{}", image.name, image.tag, digest),
            None => format!("{}:{}", image.name, image.tag),
        },
        Part::Tag => image.tag.clone(),
        Part::Name => image.name.clone(),
        // Flux defines the digest setter even when the policy reflects no
        // digest, so such a marker empties its value.
        Part::Digest => image.digest.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_json_variants() {
        let cases = [
            (r#" {"$imagepolicy": "ns:app"}"#, Some("ns:app")),
            (r#"{"$imagepolicy":"ns:app:tag"}"#, Some("ns:app:tag")),
            (r#"#  { "$imagepolicy" : "ns:app" }  "#, Some("ns:app")),
            (
                r#" {"$imagepolicy": "ns:app", "other": null}"#,
                Some("ns:app"),
            ),
            (
                r#" {"$imagepolicy": "ns:a", "$imagepolicy": "ns:b"}"#,
                Some("ns:b"),
            ),
            (r#" {"$imagepolicy": "ns:app"} trailing words"#, None),
            (r#" {"$imagepolicy": "ns:app", "n": 1}"#, None),
            (r#" {"$imagepolicy": ""}"#, None),
            (r#" {"$kpt-set": "ns:app"}"#, None),
            (" a plain comment", None),
            (" null", None),
        ];
        for (payload, expected) in cases {
            assert_eq!(setter_reference(payload).as_deref(), expected, "{payload}");
        }
    }

    #[test]
    fn setter_values_with_and_without_digest() {
        let mut policies = BTreeMap::new();
        policies.insert(
            "ns:plain".to_owned(),
            PolicyImage {
                name: "ghcr.io/org/app".to_owned(),
                tag: "v2".to_owned(),
                digest: None,
            },
        );
        policies.insert(
            "ns:pinned".to_owned(),
            PolicyImage {
                name: "ghcr.io/org/app".to_owned(),
                tag: "v2".to_owned(),
                digest: Some("sha256:abc".to_owned()),
            },
        );
        let value = |reference: &str| setter_value(reference, &policies);
        assert_eq!(value("ns:plain").as_deref(), Some("ghcr.io/org/app:v2"));
        assert_eq!(value("ns:plain:tag").as_deref(), Some("v2"));
        assert_eq!(value("ns:plain:name").as_deref(), Some("ghcr.io/org/app"));
        assert_eq!(value("ns:plain:digest").as_deref(), Some(""));
        assert_eq!(
            value("ns:pinned").as_deref(),
            Some("ghcr.io/org/app:v2@sha256:abc")
        );
        assert_eq!(value("ns:pinned:tag").as_deref(), Some("v2"));
        assert_eq!(value("ns:pinned:digest").as_deref(), Some("sha256:abc"));
        assert_eq!(value("ns:pinned:other"), None);
        assert_eq!(value("ns:missing"), None);
        assert_eq!(value("ns:missing:tag"), None);
        assert_eq!(value("pinned"), None);
    }
}
