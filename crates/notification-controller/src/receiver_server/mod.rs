//! The Receiver webhook server (`--receiverAddr`): a request to a
//! Receiver's `/hook/<digest>` path, verified the way its type says, asks
//! for a reconciliation of each resource the Receiver names.

use sha2::{Digest, Sha256};

/// The path a Receiver listens on: `/hook/` and the hex SHA-256 of its
/// token, name and namespace, as Flux computes it (so a Receiver keeps its
/// URL when moved between Flux and ferroflux).
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!("/hook/{}", hex::encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_the_digest_of_token_name_and_namespace() {
        // sha256("tokenreceiverflux-system")
        let expected = hex::encode(Sha256::digest(b"tokenreceiverflux-system"));
        assert_eq!(
            webhook_path("token", "receiver", "flux-system"),
            format!("/hook/{expected}")
        );
    }
}
