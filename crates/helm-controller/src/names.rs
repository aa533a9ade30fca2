//! Names a HelmRelease derives: its Helm release name, the namespaces it
//! installs into, and the HelmChart the controller creates for it.

use sha2::{Digest, Sha256};

/// Longest release name Helm accepts.
pub const MAX_RELEASE_NAME: usize = 53;
/// Characters of the SHA-256 (hex) appended to a shortened name.
const SHORT_HASH: usize = 12;

/// The release name: `spec.releaseName`, else `[<targetNamespace>-]<name>`,
/// shortened when longer than Helm's 53 characters to its first 40
/// characters, `-`, and the first 12 hex characters of its SHA-256.
pub fn release_name(
    name: &str,
    target_namespace: Option<&str>,
    release_name: Option<&str>,
) -> String {
    if let Some(explicit) = release_name.filter(|n| !n.is_empty()) {
        return explicit.to_string();
    }
    let full = match target_namespace.filter(|ns| !ns.is_empty()) {
        Some(namespace) => format!("{namespace}-{name}"),
        None => name.to_string(),
    };
    shorten(&full)
}

/// Flux's shortening of names longer than [`MAX_RELEASE_NAME`].
pub fn shorten(name: &str) -> String {
    if name.len() <= MAX_RELEASE_NAME {
        return name.to_string();
    }
    let hash = hex::encode(Sha256::digest(name.as_bytes()));
    // Names are DNS labels (ASCII), so byte slicing is on character bounds;
    // `get` keeps a hostile non-ASCII name from panicking.
    let keep = MAX_RELEASE_NAME - SHORT_HASH - 1;
    let prefix = name.get(..keep).unwrap_or(name);
    format!("{prefix}-{}", &hash[..SHORT_HASH])
}

/// The HelmChart created for a HelmRelease with `spec.chart`: `<namespace>-<name>`.
pub fn helm_chart_name(namespace: &str, name: &str) -> String {
    format!("{namespace}-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(release_name("podinfo", None, None), "podinfo");
        assert_eq!(release_name("podinfo", Some("apps"), None), "apps-podinfo");
        assert_eq!(
            release_name("podinfo", Some("apps"), Some("custom")),
            "custom"
        );
        assert_eq!(release_name("podinfo", Some(""), Some("")), "podinfo");
    }

    #[test]
    fn long_names_are_shortened_like_flux() {
        // The example of Flux's documentation of the rule.
        let name = "some-front-appended-namespace-release-with-a-really-long-name";
        let short = shorten(name);
        assert_eq!(short.len(), MAX_RELEASE_NAME);
        assert!(short.starts_with("some-front-appended-namespace-release-wi-"));
        let hash = hex::encode(Sha256::digest(name.as_bytes()));
        assert_eq!(
            short,
            format!("some-front-appended-namespace-release-wi-{}", &hash[..12])
        );
        let exactly = "a".repeat(53);
        assert_eq!(shorten(&exactly), exactly);
        assert_eq!(shorten(&"a".repeat(54)).len(), 53);
    }

    #[test]
    fn chart_names() {
        assert_eq!(
            helm_chart_name("flux-system", "podinfo"),
            "flux-system-podinfo"
        );
    }
}
