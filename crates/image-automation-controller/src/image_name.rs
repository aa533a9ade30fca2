//! [`ImageName`]: an ImageRepository's `spec.image` read as a container
//! registry reference without tag or digest, with Docker Hub's defaults
//! (`podinfo` is `index.docker.io/library/podinfo`), as Flux reads it.

/// Docker Hub's registry host, as canonical names spell it.
const DOCKER_HUB: &str = "index.docker.io";

/// A registry repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `host[:port]`.
    pub registry: String,
    /// The repository path (`org/app`).
    pub repository: String,
}

impl ImageName {
    /// Parses `image`; the error is the message for `Stalled`.
    pub fn parse(image: &str) -> Result<Self, String> {
        if let Some((scheme, _)) = image.split_once("://") {
            return Err(format!(
                "image '{image}' should not include URL scheme; remove '{scheme}://'"
            ));
        }
        if image.contains('@') {
            return Err(format!("image '{image}' should not include a digest"));
        }
        let (first, rest) = match image.split_once('/') {
            Some((first, rest)) => (first, Some(rest)),
            None => (image, None),
        };
        // The first component names a registry when it looks like a host.
        let (registry, repository) = match rest {
            Some(rest) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), image.to_string()),
        };
        if let Some((_, tag)) = repository.rsplit_once(':') {
            return Err(format!(
                "image '{image}' should not include a tag; remove ':{tag}'"
            ));
        }
        let registry = if registry == "docker.io" {
            DOCKER_HUB.to_string()
        } else {
            registry
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if !oci::valid_repository_path(&repository) {
            return Err(format!(
                "could not parse reference: {image}: repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`: {repository}"
            ));
        }
        if !oci::valid_registry_host(&registry) {
            return Err(format!(
                "could not parse reference: {image}: invalid registry '{registry}'"
            ));
        }
        Ok(Self {
            registry,
            repository,
        })
    }

    /// `registry/repository`: Flux's `status.canonicalImageName`.
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The `oci://` URL the registry client takes.
    pub fn oci_url(&self) -> String {
        format!("oci://{}", self.canonical())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_defaults_and_registries() {
        let canonical = |image| ImageName::parse(image).unwrap().canonical();
        assert_eq!(canonical("podinfo"), "index.docker.io/library/podinfo");
        assert_eq!(
            canonical("stefanprodan/podinfo"),
            "index.docker.io/stefanprodan/podinfo"
        );
        assert_eq!(
            canonical("docker.io/stefanprodan/podinfo"),
            "index.docker.io/stefanprodan/podinfo"
        );
        assert_eq!(canonical("ghcr.io/org/team/app"), "ghcr.io/org/team/app");
        assert_eq!(
            canonical("127.0.0.1:5000/apps/podinfo"),
            "127.0.0.1:5000/apps/podinfo"
        );
        assert_eq!(canonical("localhost/app"), "localhost/app");
        assert_eq!(
            ImageName::parse("localhost:5000/app").unwrap().oci_url(),
            "oci://localhost:5000/app"
        );
    }

    #[test]
    fn schemes_tags_digests_and_bad_characters_are_refused() {
        let err = |image| ImageName::parse(image).unwrap_err();
        assert_eq!(
            err("https://ghcr.io/org/app"),
            "image 'https://ghcr.io/org/app' should not include URL scheme; remove 'https://'"
        );
        assert_eq!(
            err("ghcr.io/org/app:v1"),
            "image 'ghcr.io/org/app:v1' should not include a tag; remove ':v1'"
        );
        assert!(err("ghcr.io/org/app@sha256:abc").contains("digest"));
        assert!(err("ghcr.io/Org/App").contains("repository can only contain"));
        assert!(err("ghcr.io/").contains("repository can only contain"));
    }
}
