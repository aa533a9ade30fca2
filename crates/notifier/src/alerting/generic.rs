//! `generic` and `generic-hmac`: Flux's forwarder. The event is POSTed as
//! its own JSON (Flux's event wire format) with a `gotk-component` header
//! naming the reporting controller; `generic-hmac` adds `X-Signature:
//! sha256=<hex HMAC-SHA256 of the body keyed with the Secret's token>`.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use reqwest::header::CONTENT_TYPE;
use sha2::Sha256;

use super::{address_url, require_token, to_json};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// The header naming the controller that reported the event.
const COMPONENT_HEADER: &str = "gotk-component";
/// The header carrying the body's HMAC (`generic-hmac`).
const SIGNATURE_HEADER: &str = "X-Signature";

fn service(hmac: bool) -> &'static str {
    if hmac { "generic-hmac" } else { "generic" }
}

pub(super) fn validate(target: &Target, hmac: bool) -> Result<(), NotifyError> {
    address_url(target, service(hmac))?;
    if hmac {
        require_token(target, service(hmac))?;
    }
    Ok(())
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
    hmac: bool,
) -> Result<(), NotifyError> {
    let url = address_url(target, service(hmac))?;
    // The signature covers exactly the bytes sent, so the body is encoded once.
    let body = to_json(event)?;
    let signature = if hmac {
        let key = require_token(target, service(hmac))?;
        Some(format!("sha256={}", sign(key.as_bytes(), &body)))
    } else {
        None
    };
    // Flux sets `gotk-component` before the Secret's headers, so a Secret
    // header of that name wins; the signature is set after them and always wins.
    let secret_names_component = target
        .headers
        .keys()
        .any(|name| name.eq_ignore_ascii_case(COMPONENT_HEADER));
    poster
        .send(|| {
            let mut request = poster
                .request(Method::POST, url.as_str())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
            if !secret_names_component {
                request = request.header(COMPONENT_HEADER, event.reporting_controller.as_str());
            }
            if let Some(signature) = &signature {
                request = request.header(SIGNATURE_HEADER, signature.as_str());
            }
            request
        })
        .await?;
    Ok(())
}

/// Hex HMAC-SHA256 of `payload` keyed with `key`.
fn sign(key: &[u8], payload: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(payload);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
