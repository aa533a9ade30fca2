//! OpenPGP keys for tests of signed commits: a private gpg home with a
//! fresh ed25519 key (a signing subkey beside the primary key) locked by a
//! passphrase, made with Debian's gpg.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// A generated key and the gpg home holding it.
pub struct GpgKey {
    home: tempfile::TempDir,
    fingerprint: String,
    passphrase: String,
}

impl GpgKey {
    /// Generates a key for `Flux Signer <signer@example.com>` locked by `passphrase`.
    pub fn generate(passphrase: &str) -> Result<GpgKey> {
        let mut key = GpgKey {
            home: tempfile::tempdir()?,
            fingerprint: String::new(),
            passphrase: passphrase.into(),
        };
        key.gpg(&[
            "--quick-gen-key",
            "Flux Signer <signer@example.com>",
            "ed25519",
            "cert",
            "never",
        ])?;
        let listing = String::from_utf8(key.gpg(&["--list-keys", "--with-colons"])?)?;
        let fingerprint = listing
            .lines()
            .find_map(|l| l.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_string())
            .context("gpg listed no fingerprint")?;
        key.gpg(&["--quick-add-key", &fingerprint, "ed25519", "sign", "never"])?;
        key.fingerprint = fingerprint;
        Ok(key)
    }

    /// Runs gpg on this key's home, unattended.
    pub fn gpg(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = Command::new("gpg")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase"])
            .arg(&self.passphrase)
            .args(args)
            .output()
            .context("running gpg")?;
        if !out.status.success() {
            bail!("gpg {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(out.stdout)
    }

    /// The armored secret key (a Flux signing Secret's `git.asc`).
    pub fn secret(&self) -> Result<Vec<u8>> {
        self.gpg(&["--armor", "--export-secret-keys", &self.fingerprint])
    }

    /// The armored public key.
    pub fn public(&self) -> Result<Vec<u8>> {
        self.gpg(&["--armor", "--export", &self.fingerprint])
    }

    /// The primary key's long id, as signers are named.
    pub fn key_id(&self) -> String {
        self.fingerprint[self.fingerprint.len().saturating_sub(16)..].to_string()
    }

    /// The passphrase.
    pub fn passphrase(&self) -> &str {
        &self.passphrase
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "gpg-agent"])
            .status();
    }
}
