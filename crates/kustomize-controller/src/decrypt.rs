//! SOPS decryption in the build, as Flux does it: encrypted objects of the
//! build output are decrypted in place, Secret data entries produced by
//! secretGenerator from encrypted files are decrypted one by one, and the
//! generator's source files can be decrypted on disk before the build.
//! MACs are not verified for objects (kustomize changes them after
//! encryption), only for files.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use sops::{DecryptOptions, Format, Keyring};

use crate::generator::kustomization_file;

/// Annotation that opts an object out of decryption (value `disabled`, any case).
pub const DECRYPT_KEY: &str = "kustomize.toolkit.fluxcd.io/decrypt";

/// Largest encrypted file decrypted on disk (Flux's limit).
const MAX_ENCRYPTED_FILE_SIZE: u64 = 5 << 20;

/// Decryption failures, with the object or file they concern.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    /// An encrypted object could not be decrypted.
    #[error("failed to decrypt and format '{namespace}/{name}' {kind} data: {source}")]
    Object {
        /// The object's namespace.
        namespace: String,
        /// The object's name.
        name: String,
        /// The object's kind.
        kind: String,
        /// The cause.
        #[source]
        source: Box<sops::Error>,
    },
    /// An encrypted Secret data entry could not be decrypted.
    #[error("failed to decrypt and format '{namespace}/{name}' Secret field '{key}': {source}")]
    SecretField {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
        /// The data key.
        key: String,
        /// The cause.
        #[source]
        source: Box<sops::Error>,
    },
    /// A generator source file could not be decrypted.
    #[error("failed to decrypt {path}: {reason}")]
    File {
        /// The file, relative to the artifact root.
        path: String,
        /// Why.
        reason: String,
    },
    /// An encrypted Secret is in the build but no decryption is configured.
    #[error(
        "Secret/{namespace}/{name} is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
    )]
    NotConfigured {
        /// The Secret's namespace.
        namespace: String,
        /// The Secret's name.
        name: String,
    },
}

fn metadata_str<'a>(object: &'a Map<String, Value>, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn field_str<'a>(object: &'a Map<String, Value>, field: &str) -> &'a str {
    object
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether an object opted out of decryption.
pub fn is_disabled(object: &Map<String, Value>) -> bool {
    object
        .get("metadata")
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(DECRYPT_KEY))
        .and_then(Value::as_str)
        .is_some_and(|value| value.eq_ignore_ascii_case("disabled"))
}

/// A v1 Secret carrying a `sops` section.
pub fn is_encrypted_secret(object: &Map<String, Value>) -> bool {
    field_str(object, "kind") == "Secret"
        && field_str(object, "apiVersion") == "v1"
        && object.contains_key("sops")
}

/// Fails for the first encrypted Secret that is not opted out: used when
/// the Kustomization has no `decryption`.
pub fn refuse_encrypted(objects: &[Map<String, Value>]) -> Result<(), DecryptError> {
    match objects
        .iter()
        .find(|o| is_encrypted_secret(o) && !is_disabled(o))
    {
        Some(object) => Err(DecryptError::NotConfigured {
            namespace: metadata_str(object, "namespace").to_owned(),
            name: metadata_str(object, "name").to_owned(),
        }),
        None => Ok(()),
    }
}

/// Decrypts with the keys of a Kustomization's decryption Secret.
pub struct Decryptor {
    keys: Keyring,
}

impl Decryptor {
    /// A decryptor with these keys.
    pub fn new(keys: Keyring) -> Decryptor {
        Decryptor { keys }
    }

    /// Decrypts one built object; `None` when nothing was encrypted (or the
    /// object opted out).
    pub fn decrypt_object(
        &self,
        object: &Map<String, Value>,
    ) -> Result<Option<Map<String, Value>>, DecryptError> {
        if is_disabled(object) {
            return Ok(None);
        }
        let options = DecryptOptions { verify_mac: false };
        if sops::is_encrypted(object) {
            return sops::decrypt_object(object, &self.keys, options)
                .map(Some)
                .map_err(|source| DecryptError::Object {
                    namespace: metadata_str(object, "namespace").to_owned(),
                    name: metadata_str(object, "name").to_owned(),
                    kind: field_str(object, "kind").to_owned(),
                    source: Box::new(source),
                });
        }
        if field_str(object, "kind") != "Secret" {
            return Ok(None);
        }
        let Some(Value::Object(data)) = object.get("data") else {
            return Ok(None);
        };
        let mut decrypted = data.clone();
        let mut changed = false;
        for (key, value) in data {
            // Entries that are not base64 are left to fail at apply time.
            let Some(bytes) = value.as_str().and_then(|text| STANDARD.decode(text).ok()) else {
                continue;
            };
            let Some(input) = Format::detect_encrypted(&bytes) else {
                continue;
            };
            let plain = sops::decrypt(&bytes, input, Format::for_path(key), &self.keys, options)
                .map_err(|source| DecryptError::SecretField {
                    namespace: metadata_str(object, "namespace").to_owned(),
                    name: metadata_str(object, "name").to_owned(),
                    key: key.clone(),
                    source: Box::new(source),
                })?;
            decrypted.insert(key.clone(), Value::String(STANDARD.encode(plain)));
            changed = true;
        }
        if !changed {
            return Ok(None);
        }
        let mut out = object.clone();
        out.insert("data".into(), Value::Object(decrypted));
        Ok(Some(out))
    }

    /// Decrypts, in place, the encrypted files that the secretGenerators
    /// (`files`, `envs`) and file patches of the kustomization in `dir`, and
    /// of the kustomizations it refers to, read. Files outside `root` are
    /// never touched.
    pub fn decrypt_sources(&self, root: &Path, dir: &Path) -> Result<(), DecryptError> {
        let mut visited_dirs = BTreeSet::new();
        let mut decrypted = BTreeSet::new();
        self.visit(root, dir, &mut visited_dirs, &mut decrypted)
    }

    fn visit(
        &self,
        root: &Path,
        dir: &Path,
        visited_dirs: &mut BTreeSet<std::path::PathBuf>,
        decrypted: &mut BTreeSet<std::path::PathBuf>,
    ) -> Result<(), DecryptError> {
        let Ok(dir) = dir.canonicalize() else {
            return Ok(());
        };
        if !dir.starts_with(root) || !dir.is_dir() || !visited_dirs.insert(dir.clone()) {
            return Ok(());
        }
        let Some(file) = kustomization_file(&dir) else {
            return Ok(());
        };
        let file_error = |reason: String| DecryptError::File {
            path: file
                .strip_prefix(root)
                .unwrap_or(&file)
                .display()
                .to_string(),
            reason,
        };
        let text = std::fs::read_to_string(&file).map_err(|err| file_error(err.to_string()))?;
        let (kustomization, _) = kustomize::kustomization::Kustomization::parse(&text, &file)
            .map_err(|err| file_error(err.to_string()))?;

        let mut sources: Vec<(String, Format)> = Vec::new();
        for generator in &kustomization.secret_generator {
            for source in &generator.files {
                // `key=path` or `path`; the key decides the output format.
                let (key, path) = source.split_once('=').unwrap_or((source, source));
                sources.push((path.to_owned(), Format::for_path(key)));
            }
            let envs = generator
                .envs
                .iter()
                .chain(Some(&generator.env).filter(|env| !env.is_empty()));
            for env in envs {
                let format = match Format::for_path(env) {
                    Format::Binary => Format::Dotenv,
                    other => other,
                };
                sources.push((env.clone(), format));
            }
        }
        for patch in &kustomization.patches {
            if !patch.path.is_empty() && !patch.path.contains("://") {
                sources.push((patch.path.clone(), Format::for_path(&patch.path)));
            }
        }
        for (path, format) in sources {
            self.decrypt_file(root, &dir, &path, format, decrypted)?;
        }

        let children = kustomization
            .resources
            .iter()
            .chain(&kustomization.components)
            .chain(kustomization.bases.iter().flatten());
        for child in children {
            if child.contains("://") {
                continue;
            }
            self.visit(root, &dir.join(child), visited_dirs, decrypted)?;
        }
        Ok(())
    }

    fn decrypt_file(
        &self,
        root: &Path,
        dir: &Path,
        path: &str,
        format: Format,
        decrypted: &mut BTreeSet<std::path::PathBuf>,
    ) -> Result<(), DecryptError> {
        let display = |p: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
        // Missing files are left for the build to report.
        let Ok(full) = dir.join(path).canonicalize() else {
            return Ok(());
        };
        if !full.starts_with(root) {
            return Err(DecryptError::File {
                path: path.to_owned(),
                reason: "the file is outside the source".into(),
            });
        }
        if decrypted.contains(&full) {
            return Ok(());
        }
        let error = |reason: String| DecryptError::File {
            path: display(&full),
            reason,
        };
        let metadata = std::fs::symlink_metadata(&full).map_err(|err| error(err.to_string()))?;
        if !metadata.is_file() {
            return Err(error("not a regular file".into()));
        }
        if metadata.len() > MAX_ENCRYPTED_FILE_SIZE {
            return Err(error(format!(
                "cannot decrypt file with size ({} bytes) exceeding limit ({MAX_ENCRYPTED_FILE_SIZE})",
                metadata.len()
            )));
        }
        let data = std::fs::read(&full).map_err(|err| error(err.to_string()))?;
        // Read with the format of its name; binary files are stored as JSON.
        let input = match format {
            Format::Binary => Format::Json,
            other => other,
        };
        if Format::detect_encrypted(&data) != Some(input) {
            return Ok(());
        }
        let plain = sops::decrypt(&data, input, format, &self.keys, DecryptOptions::default())
            .map_err(|err| error(err.to_string()))?;
        std::fs::write(&full, plain).map_err(|err| error(err.to_string()))?;
        decrypted.insert(full);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let full = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../sops/tests/fixtures")
            .join(path);
        std::fs::read(&full).unwrap_or_else(|err| panic!("{}: {err}", full.display()))
    }

    fn decryptor() -> Decryptor {
        let mut keys = Keyring::new();
        let text = String::from_utf8(fixture("age.agekey")).expect("utf8");
        keys.import_secret_data([("identity.agekey", text.as_bytes())])
            .expect("key");
        Decryptor::new(keys)
    }

    fn encrypted_secret() -> Map<String, Value> {
        let text = String::from_utf8(fixture("encrypted/secret.yaml")).expect("utf8");
        match kustomize::yaml::parse_single(&text, kustomize::yaml::ParseOptions::RESOURCE)
            .expect("yaml")
        {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn encrypted_objects_are_decrypted_even_after_kustomize_changed_them() {
        let mut secret = encrypted_secret();
        secret["metadata"]["namespace"] = json!("prod");
        secret["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = json!("apps");
        let out = decryptor()
            .decrypt_object(&secret)
            .expect("decrypt")
            .expect("changed");
        assert_eq!(out["stringData"]["password"], json!("s3cr3t-p@ss:word"));
        assert!(!out.contains_key("sops"));
        assert_eq!(out["metadata"]["namespace"], json!("prod"));
    }

    #[test]
    fn opted_out_and_plain_objects_are_left_alone() {
        let mut secret = encrypted_secret();
        secret["metadata"]["annotations"] = json!({DECRYPT_KEY: "Disabled"});
        assert!(decryptor().decrypt_object(&secret).expect("skip").is_none());
        let plain = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(
            decryptor()
                .decrypt_object(plain.as_object().expect("map"))
                .expect("plain")
                .is_none()
        );
    }

    #[test]
    fn generated_secret_entries_are_decrypted_in_their_own_format() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "gen", "namespace": "ns"},
        "data": {
            "app.env": STANDARD.encode(fixture("encrypted/app.env")),
            "config.json": STANDARD.encode(fixture("encrypted/config.json")),
            "plain": STANDARD.encode("not encrypted"),
        }});
        let out = decryptor()
            .decrypt_object(secret.as_object().expect("map"))
            .expect("decrypt")
            .expect("changed");
        let env = STANDARD
            .decode(out["data"]["app.env"].as_str().expect("str"))
            .expect("b64");
        assert_eq!(env, fixture("plain/app.env"));
        let config = STANDARD
            .decode(out["data"]["config.json"].as_str().expect("str"))
            .expect("b64");
        let config: Value = serde_json::from_slice(&config).expect("json");
        assert_eq!(config["auth"]["password"], json!("hunter2"));
        assert_eq!(
            out["data"]["plain"],
            json!(STANDARD.encode("not encrypted"))
        );
    }

    #[test]
    fn wrong_keys_name_the_object_and_the_recipients() {
        let mut keys = Keyring::new();
        let text = String::from_utf8(fixture("other.agekey")).expect("utf8");
        keys.import_age(&text).expect("key");
        let err = Decryptor::new(keys)
            .decrypt_object(&encrypted_secret())
            .expect_err("wrong key");
        let text = err.to_string();
        assert!(
            text.starts_with("failed to decrypt and format 'default/app-credentials' Secret data"),
            "{text}"
        );
        assert!(
            text.contains("age13lhng9hm7lhdazf5a4g6ugg7kg7e0yw0rampk7pkyfu229mn2a3sa6plh5"),
            "{text}"
        );
    }

    #[test]
    fn encrypted_secrets_without_decryption_are_refused() {
        let secret = encrypted_secret();
        let err = refuse_encrypted(std::slice::from_ref(&secret)).expect_err("refused");
        assert_eq!(
            err.to_string(),
            "Secret/default/app-credentials is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
        );
        let mut disabled = secret;
        disabled["metadata"]["annotations"] = json!({DECRYPT_KEY: "disabled"});
        refuse_encrypted(&[disabled]).expect("opted out");
    }

    #[test]
    fn generator_sources_are_decrypted_on_disk_then_built() {
        let tmp = tempfile::tempdir().expect("tmp");
        let root = tmp.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("app/base")).expect("mkdir");
        std::fs::write(root.join("app/kustomization.yaml"),
            "resources: [base]\nsecretGenerator:\n- name: env\n  envs: [app.env]\n- name: files\n  files: [token=token.bin]\n").expect("write");
        std::fs::write(root.join("app/app.env"), fixture("encrypted/app.env")).expect("write");
        std::fs::write(root.join("app/token.bin"), fixture("encrypted/token.bin")).expect("write");
        std::fs::write(
            root.join("app/base/kustomization.yaml"),
            "secretGenerator:\n- name: base\n  files: [config.json]\n",
        )
        .expect("write");
        std::fs::write(
            root.join("app/base/config.json"),
            fixture("encrypted/config.json"),
        )
        .expect("write");

        decryptor()
            .decrypt_sources(&root, &root.join("app"))
            .expect("decrypt");
        assert_eq!(
            std::fs::read(root.join("app/app.env")).expect("read"),
            fixture("plain/app.env")
        );
        assert_eq!(
            std::fs::read(root.join("app/token.bin")).expect("read"),
            fixture("plain/token.bin")
        );
        let config: Value = serde_json::from_slice(
            &std::fs::read(root.join("app/base/config.json")).expect("read"),
        )
        .expect("json");
        assert_eq!(config["service"], json!("api"));

        let out = kustomize::build(&root, &root.join("app"), kustomize::BuildOptions::default())
            .expect("build");
        let env = out
            .resources
            .resources()
            .iter()
            .find(|r| r.name().starts_with("env-"))
            .expect("env secret")
            .to_value();
        assert_eq!(
            env["data"]["DB_PASSWORD"],
            json!(STANDARD.encode("pa55=word"))
        );
    }
}
