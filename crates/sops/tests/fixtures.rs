//! Decrypts documents encrypted by the real `sops` binary (v3.10.2; see
//! `fixtures/regenerate.sh`) and compares them with their plaintext.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::{Map, Value};
use sops::{DecryptOptions, Error, Format, Keyring};

fn fixture(path: &str) -> Vec<u8> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path);
    std::fs::read(&full).unwrap_or_else(|err| panic!("{}: {err}", full.display()))
}

fn keyring(files: &[&str]) -> Keyring {
    let mut keys = Keyring::new();
    for file in files {
        let text = String::from_utf8(fixture(file)).expect("utf8");
        keys.import_age(&text).expect("age key");
    }
    keys
}

fn main_key() -> Keyring {
    keyring(&["age.agekey"])
}

/// YAML 1.2 booleans, as SOPS's parser (go-yaml v3) reads them: `y` is a string.
fn yaml_documents(data: &[u8]) -> Vec<Value> {
    let options = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_multiple_with_options(std::str::from_utf8(data).expect("utf8"), options)
        .expect("yaml")
}

fn decrypt(name: &str, format: Format, keys: &Keyring) -> Result<Vec<u8>, Error> {
    sops::decrypt(
        &fixture(&format!("encrypted/{name}")),
        format,
        format,
        keys,
        DecryptOptions::default(),
    )
}

#[test]
fn yaml_documents_decrypt_to_their_plaintext_with_a_valid_mac() {
    let cases = [
        ("secret.yaml", "secret.yaml"),
        ("types.yaml", "types.yaml"),
        ("types-unencrypted-regex.yaml", "types.yaml"),
        ("types-encrypted-suffix.yaml", "types.yaml"),
        ("secret-mac-only-encrypted.yaml", "secret.yaml"),
        ("secret-two-recipients.yaml", "secret.yaml"),
        ("multi.yaml", "multi.yaml"),
    ];
    for (encrypted, plain) in cases {
        let out = decrypt(encrypted, Format::Yaml, &main_key())
            .unwrap_or_else(|err| panic!("{encrypted}: {err}"));
        assert_eq!(
            yaml_documents(&out),
            yaml_documents(&fixture(&format!("plain/{plain}"))),
            "{encrypted}"
        );
    }
}

#[test]
fn every_scalar_type_comes_back_typed() {
    let out = decrypt("types.yaml", Format::Yaml, &main_key()).expect("decrypt");
    let doc = &yaml_documents(&out)[0];
    assert_eq!(doc["count"], Value::from(42));
    assert_eq!(doc["negative"], Value::from(-7));
    assert_eq!(doc["ratio"], Value::from(0.25));
    assert_eq!(doc["enabled"], Value::Bool(true));
    assert_eq!(doc["disabled"], Value::Bool(false));
    assert_eq!(doc["empty"], Value::from(""));
    assert_eq!(doc["nothing"], Value::Null);
    assert_eq!(doc["nested"]["list"][4]["other"][1], Value::from("b"));
    assert_eq!(doc["multiline"], Value::from("line one\nline two\n"));
    assert_eq!(doc["unicode"], Value::from("grüße ✓"));
}

#[test]
fn json_documents_decrypt_and_whole_floats_stay_integers() {
    let out = decrypt("config.json", Format::Json, &main_key()).expect("decrypt");
    let decrypted: Value = serde_json::from_slice(&out).expect("json");
    let plain: Value = serde_json::from_slice(&fixture("plain/config.json")).expect("json");
    assert_eq!(decrypted, plain);
    assert_eq!(decrypted["port"], Value::from(8443));
}

#[test]
fn dotenv_documents_decrypt_byte_for_byte_including_comments() {
    let out = decrypt("app.env", Format::Dotenv, &main_key()).expect("decrypt");
    assert_eq!(
        String::from_utf8(out).expect("utf8"),
        String::from_utf8(fixture("plain/app.env")).expect("utf8")
    );
}

#[test]
fn binary_documents_decrypt_to_the_original_bytes() {
    let out = decrypt("token.bin", Format::Binary, &main_key()).expect("decrypt");
    assert_eq!(out, fixture("plain/token.bin"));
}

#[test]
fn output_format_may_differ_from_input() {
    let out = sops::decrypt(
        &fixture("encrypted/app.env"),
        Format::Dotenv,
        Format::Json,
        &main_key(),
        DecryptOptions::default(),
    )
    .expect("decrypt");
    let value: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(value["DB_PASSWORD"], Value::from("pa55=word"));
}

#[test]
fn either_recipient_opens_a_two_recipient_file() {
    let other = keyring(&["other.agekey"]);
    decrypt("secret-two-recipients.yaml", Format::Yaml, &other).expect("other key");
}

#[test]
fn a_file_for_another_key_names_its_recipients_and_the_keys_tried() {
    let err = decrypt("secret-other-key.yaml", Format::Yaml, &main_key()).expect_err("wrong key");
    let other = keyring(&["other.agekey"]).age_recipients().remove(0);
    let mine = main_key().age_recipients().remove(0);
    let text = err.to_string();
    assert!(matches!(err, Error::NoMatchingKey { .. }), "{text}");
    assert!(text.contains(&other) && text.contains(&mine), "{text}");
    assert!(!text.contains("AGE-SECRET-KEY"), "{text}");

    let err = decrypt("secret.yaml", Format::Yaml, &Keyring::new()).expect_err("no key");
    assert!(err.to_string().contains("no age key was given"), "{err}");
}

#[test]
fn shamir_key_groups_need_the_threshold_of_groups() {
    let both = keyring(&["age.agekey", "other.agekey"]);
    let out = decrypt("secret-shamir.yaml", Format::Yaml, &both).expect("both groups");
    assert_eq!(
        yaml_documents(&out),
        yaml_documents(&fixture("plain/secret.yaml"))
    );
    let err = decrypt("secret-shamir.yaml", Format::Yaml, &main_key()).expect_err("one group");
    assert!(matches!(err, Error::NoMatchingKey { .. }), "{err}");
}

fn secret_object(name: &str) -> Map<String, Value> {
    match yaml_documents(&fixture(&format!("encrypted/{name}"))).remove(0) {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn objects_decrypt_in_place_and_lose_their_sops_section() {
    let object = secret_object("secret.yaml");
    assert!(sops::is_encrypted(&object));
    let plain =
        sops::decrypt_object(&object, &main_key(), DecryptOptions::default()).expect("decrypt");
    assert!(!sops::is_encrypted(&plain));
    assert_eq!(
        Value::Object(plain.clone()),
        yaml_documents(&fixture("plain/secret.yaml"))[0]
    );
    let keys: Vec<&String> = plain.keys().collect();
    assert_eq!(
        keys,
        [
            "apiVersion",
            "kind",
            "metadata",
            "type",
            "stringData",
            "data"
        ]
    );
}

#[test]
fn mac_catches_changed_plaintext_unless_only_encrypted_values_count() {
    let add_label = |mut object: Map<String, Value>| {
        object["metadata"]["labels"]["kustomize.toolkit.fluxcd.io/name"] = Value::from("apps");
        object
    };
    let changed = add_label(secret_object("secret.yaml"));
    let err =
        sops::decrypt_object(&changed, &main_key(), DecryptOptions::default()).expect_err("mac");
    assert!(matches!(err, Error::MacMismatch { .. }), "{err}");
    // Flux does not verify the MAC of objects, as kustomize changes them.
    sops::decrypt_object(&changed, &main_key(), DecryptOptions { verify_mac: false })
        .expect("no mac check");

    let changed = add_label(secret_object("secret-mac-only-encrypted.yaml"));
    sops::decrypt_object(&changed, &main_key(), DecryptOptions::default())
        .expect("mac only encrypted");
}

#[test]
fn a_value_moved_to_another_path_fails_authentication() {
    let mut object = secret_object("secret.yaml");
    let password = object["stringData"]["password"].clone();
    object["stringData"]["username"] = password;
    let err = sops::decrypt_object(&object, &main_key(), DecryptOptions { verify_mac: false })
        .expect_err("moved");
    match err {
        Error::Value { path, source } => {
            assert_eq!(path, "stringData:username");
            assert!(matches!(*source, Error::Authentication));
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_plaintext_value_where_the_rule_expects_ciphertext_is_refused_without_echoing_it() {
    let mut object = secret_object("secret.yaml");
    object["stringData"]["password"] = Value::from("hunter2-plain");
    let err = sops::decrypt_object(&object, &main_key(), DecryptOptions { verify_mac: false })
        .expect_err("plain");
    assert!(!err.to_string().contains("hunter2-plain"), "{err}");
    object["stringData"]["password"] = Value::from(7);
    let err = sops::decrypt_object(&object, &main_key(), DecryptOptions { verify_mac: false })
        .expect_err("number");
    assert!(err.to_string().contains("stringData:password"), "{err}");
}

#[test]
fn detected_formats_match_the_fixtures() {
    assert_eq!(
        Format::detect_encrypted(&fixture("encrypted/secret.yaml")),
        Some(Format::Yaml)
    );
    assert_eq!(
        Format::detect_encrypted(&fixture("encrypted/config.json")),
        Some(Format::Json)
    );
    assert_eq!(
        Format::detect_encrypted(&fixture("encrypted/app.env")),
        Some(Format::Dotenv)
    );
    assert_eq!(
        Format::detect_encrypted(&fixture("encrypted/token.bin")),
        Some(Format::Json)
    );
    assert_eq!(
        Format::detect_encrypted(&fixture("plain/secret.yaml")),
        None
    );
}
