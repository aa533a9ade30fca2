//! The SOPS value cipher: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
//!
//! Every encrypted leaf is AES-256-GCM with the file's data key, a random
//! nonce (32 bytes in every SOPS release, but the nonce length is taken from
//! the value as SOPS does) and the leaf's tree path as additional data. The
//! `type` tells how the plaintext bytes are turned back into a value.

use aes_gcm::aead::consts::{U12, U16, U32};
use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce, Tag};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::Error;

/// A decrypted leaf, typed as SOPS types it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Plain {
    /// `type:str`.
    Str(String),
    /// `type:int`.
    Int(i64),
    /// `type:float`; the text is kept because it is what the MAC covers.
    Float(f64),
    /// `type:bool`.
    Bool(bool),
    /// `type:bytes`.
    Bytes(Vec<u8>),
    /// `type:time`, an RFC 3339 timestamp kept as its text.
    Time(String),
    /// `type:comment`.
    Comment(String),
}

/// The parts of an `ENC[…]` value.
struct Sealed {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

/// Whether a string has the shape of a SOPS-encrypted value.
pub(crate) fn looks_encrypted(value: &str) -> bool {
    value.starts_with("ENC[AES256_GCM,")
}

/// Splits `ENC[AES256_GCM,data:D,iv:I,tag:T,type:K]`. The plaintext is never
/// put in an error message: the value may be a secret that was not encrypted.
fn parse(value: &str) -> Result<Sealed, Error> {
    let malformed = |what: &str| Error::MalformedValue(what.to_owned());
    let body = value
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|rest| rest.strip_suffix(']'))
        .ok_or_else(|| malformed("the value does not have the form ENC[AES256_GCM,…]"))?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for field in body.split(',') {
        let (name, content) = field
            .split_once(':')
            .ok_or_else(|| malformed("a field of the encrypted value has no name"))?;
        let slot = match name {
            "data" => &mut data,
            "iv" => &mut iv,
            "tag" => &mut tag,
            "type" => &mut kind,
            _ => return Err(malformed(&format!("unknown field {name:?}"))),
        };
        *slot = Some(content);
    }
    let decode = |field: Option<&str>, name: &str| -> Result<Vec<u8>, Error> {
        let text = field.ok_or_else(|| malformed(&format!("missing {name}")))?;
        STANDARD
            .decode(text)
            .map_err(|err| malformed(&format!("{name} is not base64: {err}")))
    };
    Ok(Sealed {
        data: decode(data, "data")?,
        iv: decode(iv, "iv")?,
        tag: decode(tag, "tag")?,
        kind: kind.ok_or_else(|| malformed("missing type"))?.to_owned(),
    })
}

/// Opens an AES-GCM box whose nonce length is a type parameter.
fn open<N>(key: &[u8; 32], sealed: &Sealed, aad: &[u8]) -> Option<Vec<u8>>
where
    N: aes_gcm::aead::array::ArraySize,
{
    let cipher = AesGcm::<Aes256, N>::new(key.into());
    let nonce = Nonce::<N>::try_from(sealed.iv.as_slice()).ok()?;
    let tag = Tag::<U16>::try_from(sealed.tag.as_slice()).ok()?;
    let mut buffer = sealed.data.clone();
    cipher
        .decrypt_inout_detached(&nonce, aad, buffer.as_mut_slice().into(), &tag)
        .ok()?;
    Some(buffer)
}

/// Decrypts one `ENC[…]` value with the data key; `aad` is the leaf's path
/// (`a:b:c:`) or, for the MAC, the `lastmodified` timestamp. An empty string
/// stays empty: SOPS never encrypts empty strings.
pub(crate) fn decrypt(value: &str, key: &[u8; 32], aad: &str) -> Result<Plain, Error> {
    if value.is_empty() {
        return Ok(Plain::Str(String::new()));
    }
    let sealed = parse(value)?;
    let plaintext = match sealed.iv.len() {
        32 => open::<U32>(key, &sealed, aad.as_bytes()),
        12 => open::<U12>(key, &sealed, aad.as_bytes()),
        other => {
            return Err(Error::MalformedValue(format!(
                "unsupported nonce length {other}"
            )));
        }
    }
    .ok_or(Error::Authentication)?;
    let text = || {
        String::from_utf8(plaintext.clone())
            .map_err(|_| Error::MalformedValue(format!("{} value is not UTF-8", sealed.kind)))
    };
    let invalid = |what: &str| Error::MalformedValue(format!("decrypted {what} does not parse"));
    Ok(match sealed.kind.as_str() {
        "str" => Plain::Str(text()?),
        "int" => Plain::Int(text()?.trim().parse().map_err(|_| invalid("int"))?),
        "float" => Plain::Float(text()?.trim().parse().map_err(|_| invalid("float"))?),
        "bool" => Plain::Bool(parse_go_bool(&text()?).ok_or_else(|| invalid("bool"))?),
        "bytes" => Plain::Bytes(plaintext),
        "time" => Plain::Time(text()?),
        "comment" => Plain::Comment(text()?),
        other => {
            return Err(Error::MalformedValue(format!("unknown datatype {other:?}")));
        }
    })
}

/// Go's `strconv.ParseBool`, which SOPS uses for `type:bool`.
fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use aes_gcm::aead::AeadInOut;

    use super::*;

    /// Seals a value the way SOPS does, for tests of the decrypting side.
    pub(crate) fn seal(plaintext: &str, kind: &str, key: &[u8; 32], aad: &str) -> String {
        let cipher = AesGcm::<Aes256, U32>::new(key.into());
        let iv = [7u8; 32];
        let nonce = Nonce::<U32>::from(iv);
        let mut buffer = plaintext.as_bytes().to_vec();
        let tag = cipher
            .encrypt_inout_detached(&nonce, aad.as_bytes(), buffer.as_mut_slice().into())
            .expect("encrypt");
        format!(
            "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
            STANDARD.encode(&buffer),
            STANDARD.encode(iv),
            STANDARD.encode(tag.as_slice()),
        )
    }

    const KEY: [u8; 32] = [42; 32];

    #[test]
    fn decrypts_every_type() {
        let cases = [
            ("hello", "str", Plain::Str("hello".into())),
            ("-12", "int", Plain::Int(-12)),
            ("0.25", "float", Plain::Float(0.25)),
            ("True", "bool", Plain::Bool(true)),
            ("false", "bool", Plain::Bool(false)),
            ("raw", "bytes", Plain::Bytes(b"raw".to_vec())),
            (
                "2024-01-02T03:04:05Z",
                "time",
                Plain::Time("2024-01-02T03:04:05Z".into()),
            ),
            (" note", "comment", Plain::Comment(" note".into())),
        ];
        for (text, kind, expected) in cases {
            let sealed = seal(text, kind, &KEY, "a:b:");
            assert_eq!(decrypt(&sealed, &KEY, "a:b:").expect(kind), expected);
        }
    }

    #[test]
    fn wrong_path_or_key_fails_authentication() {
        let sealed = seal("secret", "str", &KEY, "data:password:");
        assert!(matches!(
            decrypt(&sealed, &KEY, "data:username:"),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            decrypt(&sealed, &[1; 32], "data:password:"),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn empty_string_is_not_encrypted() {
        assert_eq!(
            decrypt("", &KEY, "x:").expect("empty"),
            Plain::Str(String::new())
        );
    }

    #[test]
    fn malformed_values_are_rejected_without_echoing_them() {
        for value in [
            "plain secret",
            "ENC[AES256_GCM,data:%%%,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str,extra:1]",
        ] {
            let err = decrypt(value, &KEY, "x:").expect_err(value);
            assert!(matches!(err, Error::MalformedValue(_)), "{value}: {err}");
            assert!(!err.to_string().contains("plain secret"));
        }
        let sealed = seal("x", "complex", &KEY, "k:");
        assert!(matches!(
            decrypt(&sealed, &KEY, "k:"),
            Err(Error::MalformedValue(msg)) if msg.contains("complex")
        ));
    }
}
