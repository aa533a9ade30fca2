//! A Provider's `address` read as a Git repository URL, as Flux's
//! `parseGitAddress` reads it: `https://host/owner/repo(.git)`,
//! `ssh://git@host/owner/repo` or `git@host:owner/repo.git` (SSH addresses
//! are talked to over HTTPS).

use reqwest::Url;

use super::invalid;
use crate::NotifyError;

/// A repository address split into the host part and the repository path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct GitAddress {
    /// `scheme://host[:port]`, `ssh` replaced by `https`.
    pub base: String,
    /// `host[:port]`.
    pub authority: String,
    /// The path without its leading `/` and trailing `.git`: `owner/repo`.
    pub id: String,
}

impl GitAddress {
    /// Parses `address` (the Provider's `spec.address` or its Secret's).
    pub fn parse(address: &str) -> Result<Self, NotifyError> {
        let address = address.trim();
        if address.is_empty() {
            return Err(invalid(
                "address",
                "a Git repository URL is required (spec.address or the Secret's address)",
            ));
        }
        let url = if address.contains("://") {
            Url::parse(address)
                .map_err(|err| invalid("address", format!("'{address}' is not a URL: {err}")))?
        } else if let Some((user_host, path)) = address.split_once(':') {
            // scp-like `git@host:owner/repo.git`
            Url::parse(&format!("ssh://{user_host}/{path}")).map_err(|err| {
                invalid(
                    "address",
                    format!("'{address}' is not a Git repository URL: {err}"),
                )
            })?
        } else {
            return Err(invalid(
                "address",
                format!(
                    "'{address}' is not a Git repository URL (expected https://host/owner/repo)"
                ),
            ));
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("address", format!("'{address}' has no host")))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let scheme = match url.scheme() {
            "ssh" => "https",
            other => other,
        };
        let path = url.path().trim_start_matches('/');
        let id = path.strip_suffix(".git").unwrap_or(path).to_string();
        Ok(Self {
            base: format!("{scheme}://{authority}"),
            authority,
            id,
        })
    }

    /// The repository path split in exactly `N` parts (`owner/repo`).
    pub fn parts<const N: usize>(&self, form: &str) -> Result<[String; N], NotifyError> {
        let parts: Vec<String> = self.id.split('/').map(str::to_string).collect();
        let valid = parts.len() == N && parts.iter().all(|p| !p.is_empty());
        if !valid {
            return Err(invalid(
                "address",
                format!(
                    "invalid repository id '{}': the address must have the form {form}",
                    self.id
                ),
            ));
        }
        parts
            .try_into()
            .map_err(|_| invalid("address", format!("invalid repository id '{}'", self.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_https_ssh_and_scp_addresses() {
        let https = GitAddress::parse("https://github.com/org/repo.git").unwrap();
        assert_eq!(https.base, "https://github.com");
        assert_eq!(https.id, "org/repo");
        let ssh = GitAddress::parse("ssh://git@gitlab.example.com:2222/group/sub/project").unwrap();
        assert_eq!(ssh.base, "https://gitlab.example.com:2222");
        assert_eq!(ssh.id, "group/sub/project");
        let scp = GitAddress::parse("git@github.com:org/repo.git").unwrap();
        assert_eq!(scp.base, "https://github.com");
        assert_eq!(scp.id, "org/repo");
        let local = GitAddress::parse("http://127.0.0.1:8080/org/repo").unwrap();
        assert_eq!(local.authority, "127.0.0.1:8080");
    }

    #[test]
    fn requires_owner_and_repo() {
        let address = GitAddress::parse("https://github.com/org").unwrap();
        let err = address.parts::<2>("https://host/owner/repo").unwrap_err();
        assert!(err.to_string().contains("address"), "{err}");
        let trailing = GitAddress::parse("https://github.com/org/repo/").unwrap();
        assert!(trailing.parts::<2>("https://host/owner/repo").is_err());
        assert!(GitAddress::parse("").is_err());
        assert!(GitAddress::parse("not a url").is_err());
    }
}
