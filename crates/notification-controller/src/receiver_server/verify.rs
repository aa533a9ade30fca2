//! How each Receiver type authenticates and reads a webhook request, as pure
//! functions of the request's headers and body and the Receiver's Secret:
//! no I/O here (the JWT types get the signing keys passed in).
//!
//! The outcome decides the answer: [`Rejection::Unauthorized`] is a 401 and
//! [`Rejection::Malformed`] / [`Rejection::EventNotAccepted`] a 400; nothing
//! is annotated after a rejection.

use std::collections::BTreeMap;

use api::notification::ReceiverType;
use aws_lc_rs::hmac;
use base64::Engine;
use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;
use subtle::ConstantTimeEq;

/// What a verified request asks for.
#[derive(Debug, PartialEq)]
pub(crate) enum Verified {
    /// Reconcile the Receiver's resources. `payload` replaces the request
    /// body as the CEL filters' `req` when set (GCR unwraps its Pub/Sub
    /// envelope); `event` is the sender's event type, for the log.
    Reconcile {
        event: Option<String>,
        payload: Option<Value>,
    },
    /// A GitHub `ping` (sent when a webhook is created): authentic, but no
    /// change to reconcile.
    Ping,
}

/// Why a request is refused.
#[derive(Debug, PartialEq)]
pub(crate) enum Rejection {
    /// The token or signature is missing or wrong (401).
    Unauthorized(String),
    /// The payload or a header cannot be read as the sender's format (400).
    Malformed(String),
    /// Authentic, but of an event type `spec.events` does not list (400,
    /// as Flux answers).
    EventNotAccepted(String),
}

impl Rejection {
    /// The message for the log and the response body.
    pub(crate) fn message(&self) -> &str {
        match self {
            Rejection::Unauthorized(m)
            | Rejection::Malformed(m)
            | Rejection::EventNotAccepted(m) => m,
        }
    }
}

/// A request as the verifiers see it.
pub(crate) struct Request<'a> {
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Request<'_> {
    /// A header's value as text; `None` when absent (or not visible ASCII,
    /// which no sender's header is).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The media type of `Content-Type`, lower-cased, without parameters.
    pub(crate) fn media_type(&self) -> Option<String> {
        let value = self.header("content-type")?;
        Some(
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase(),
        )
    }

    /// Whether the body is declared JSON (one of a comma-separated list of
    /// media types is `application/json`), as Flux decides whether the CEL
    /// filters get the body.
    pub(crate) fn is_json(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            value.split(',').any(|part| {
                part.split(';')
                    .next()
                    .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            })
        })
    }
}

/// The Receiver's Secret: `token`, plus the other keys some types read
/// (`email` and `audience` for GCR).
pub(crate) struct ReceiverSecret {
    pub token: String,
    pub data: BTreeMap<String, Vec<u8>>,
}

impl ReceiverSecret {
    fn text(&self, key: &str) -> Option<String> {
        self.data
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .filter(|v| !v.is_empty())
    }
}

/// Verifies `request` the way a Receiver of type `kind` does. `events` is
/// `spec.events` (empty: every event). GCR requests are checked against
/// `google_keys`, Google's current signing keys. `generic-oidc` is not
/// handled here (see `oidc`).
pub(crate) fn verify(
    kind: ReceiverType,
    request: &Request<'_>,
    secret: &ReceiverSecret,
    events: &[String],
    google_keys: Option<&crate::receiver_server::jwt::KeySet>,
) -> Result<Verified, Rejection> {
    let token = secret.token.as_bytes();
    match kind {
        // The token is in the path: reaching this Receiver is the proof.
        ReceiverType::Generic => Ok(Verified::Reconcile {
            event: None,
            payload: None,
        }),
        ReceiverType::GenericHmac => {
            let header = request.header("x-signature").ok_or_else(|| {
                Rejection::Unauthorized("the X-Signature header is missing".into())
            })?;
            verify_prefixed_hmac("X-Signature", header, token, request.body)?;
            Ok(Verified::Reconcile {
                event: None,
                payload: None,
            })
        }
        ReceiverType::Github => {
            verify_hub_signature(request, token, "GitHub")?;
            check_github_content(request)?;
            let event = request.header("x-github-event").unwrap_or_default();
            if event.eq_ignore_ascii_case("ping") {
                return Ok(Verified::Ping);
            }
            accept_event(events, event, "GitHub")?;
            Ok(reconcile_event(event))
        }
        ReceiverType::Gitlab => {
            let given = request.header("x-gitlab-token").ok_or_else(|| {
                Rejection::Unauthorized("the X-Gitlab-Token header is missing".into())
            })?;
            if !equal_secret(given.as_bytes(), token) {
                return Err(Rejection::Unauthorized(
                    "the X-Gitlab-Token header value does not match the receiver token".into(),
                ));
            }
            let event = request.header("x-gitlab-event").unwrap_or_default();
            accept_event(events, event, "GitLab")?;
            Ok(reconcile_event(event))
        }
        ReceiverType::Bitbucket => {
            verify_hub_signature(request, token, "Bitbucket Server")?;
            let event = request.header("x-event-key").unwrap_or_default();
            accept_event(events, event, "Bitbucket Server")?;
            Ok(reconcile_event(event))
        }
        ReceiverType::Harbor => {
            let given = request.header("authorization").ok_or_else(|| {
                Rejection::Unauthorized("the Authorization header is missing".into())
            })?;
            if !equal_secret(given.as_bytes(), token) {
                return Err(Rejection::Unauthorized(
                    "the Harbor Authorization header value does not match the receiver token"
                        .into(),
                ));
            }
            Ok(reconcile_event(""))
        }
        ReceiverType::Dockerhub => {
            let payload: DockerHubPayload = decode(request.body, "DockerHub")?;
            Ok(Verified::Reconcile {
                event: Some(format!(
                    "push of tag {} to {}",
                    payload.push_data.tag, payload.repository.repo_url
                )),
                payload: None,
            })
        }
        ReceiverType::Quay => {
            let payload: QuayPayload = decode(request.body, "Quay")?;
            Ok(Verified::Reconcile {
                event: Some(format!(
                    "push of tags [{}] to {}",
                    payload.updated_tags.join(", "),
                    payload.docker_url
                )),
                payload: None,
            })
        }
        ReceiverType::Nexus => {
            let signature = request
                .header("x-nexus-webhook-signature")
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    Rejection::Unauthorized(
                        "the X-Nexus-Webhook-Signature header is missing".into(),
                    )
                })?;
            verify_hmac(
                hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
                "X-Nexus-Webhook-Signature",
                signature,
                token,
                request.body,
            )?;
            let payload: NexusPayload = decode(request.body, "Nexus")?;
            Ok(Verified::Reconcile {
                event: Some(format!("{} in {}", payload.action, payload.repository_name)),
                payload: None,
            })
        }
        ReceiverType::Acr => {
            let payload: AcrPayload = decode(request.body, "ACR")?;
            Ok(Verified::Reconcile {
                event: Some(format!(
                    "{} of {}:{}",
                    payload.action, payload.target.repository, payload.target.tag
                )),
                payload: None,
            })
        }
        ReceiverType::Cdevents => {
            let event = request.header("ce-type").unwrap_or_default();
            check_cdevent(request.body)?;
            accept_event(events, event, "CDEvent")?;
            Ok(reconcile_event(event))
        }
        ReceiverType::Gcr => verify_gcr(request, secret, google_keys),
        ReceiverType::GenericOidc => Err(Rejection::Unauthorized(
            "generic-oidc requests are verified against the issuer, not a Secret".into(),
        )),
    }
}

fn reconcile_event(event: &str) -> Verified {
    Verified::Reconcile {
        event: (!event.is_empty()).then(|| event.to_string()),
        payload: None,
    }
}

/// Secrets compared in constant time (the length is not secret).
fn equal_secret(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

/// `spec.events` lists `event` (case-insensitively), or is empty.
fn accept_event(events: &[String], event: &str, sender: &str) -> Result<(), Rejection> {
    if events.is_empty() || events.iter().any(|e| e.eq_ignore_ascii_case(event)) {
        Ok(())
    } else {
        Err(Rejection::EventNotAccepted(format!(
            "the {sender} event '{event}' is not in spec.events"
        )))
    }
}

/// GitHub and Bitbucket Server sign the body with HMAC in
/// `X-Hub-Signature-256` (`sha256=<hex>`) or the older `X-Hub-Signature`
/// (`sha1=<hex>`, Bitbucket Server `sha256=<hex>`); the first present wins,
/// as go-github's `ValidatePayload` reads them.
fn verify_hub_signature(
    request: &Request<'_>,
    token: &[u8],
    sender: &str,
) -> Result<(), Rejection> {
    let (name, value) = match request.header("x-hub-signature-256") {
        Some(v) => ("X-Hub-Signature-256", v),
        None => match request.header("x-hub-signature") {
            Some(v) => ("X-Hub-Signature", v),
            None => {
                return Err(Rejection::Unauthorized(format!(
                    "the {sender} signature header (X-Hub-Signature-256 or X-Hub-Signature) is missing"
                )));
            }
        },
    };
    verify_prefixed_hmac(name, value, token, request.body)
}

/// GitHub sends JSON, or a form whose `payload` field is the JSON; anything
/// else is refused, as go-github's `ValidatePayload` does.
fn check_github_content(request: &Request<'_>) -> Result<(), Rejection> {
    match request.media_type().as_deref() {
        Some("application/json") => serde_json::from_slice::<Value>(request.body)
            .map(|_| ())
            .map_err(|e| Rejection::Malformed(format!("the GitHub payload is not JSON: {e}"))),
        Some("application/x-www-form-urlencoded") => {
            let payload = form_field(request.body, "payload").ok_or_else(|| {
                Rejection::Malformed("the GitHub form payload has no 'payload' field".into())
            })?;
            serde_json::from_str::<Value>(&payload)
                .map(|_| ())
                .map_err(|e| Rejection::Malformed(format!("the GitHub payload is not JSON: {e}")))
        }
        other => Err(Rejection::Malformed(format!(
            "the GitHub webhook has an unsupported Content-Type {:?} (want application/json or application/x-www-form-urlencoded)",
            other.unwrap_or_default()
        ))),
    }
}

/// The value of `field` in an `application/x-www-form-urlencoded` body.
fn form_field(body: &[u8], field: &str) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    body.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key)? == field).then(|| percent_decode(value))?
    })
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = text.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// `<algorithm>=<hex>` with `sha1`, `sha256` or `sha512`: the HMAC of the
/// body keyed with the token.
fn verify_prefixed_hmac(
    header: &str,
    value: &str,
    token: &[u8],
    body: &[u8],
) -> Result<(), Rejection> {
    let (algorithm, signature) = value.split_once('=').ok_or_else(|| {
        Rejection::Unauthorized(format!(
            "the {header} header is not '<sha1|sha256|sha512>=<hex>'"
        ))
    })?;
    let algorithm = match algorithm {
        "sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => hmac::HMAC_SHA256,
        "sha512" => hmac::HMAC_SHA512,
        other => {
            return Err(Rejection::Unauthorized(format!(
                "the {header} header names the unsupported hash '{other}' (want sha1, sha256 or sha512)"
            )));
        }
    };
    verify_hmac(algorithm, header, signature, token, body)
}

/// Checks a hex HMAC in constant time.
fn verify_hmac(
    algorithm: hmac::Algorithm,
    header: &str,
    signature_hex: &str,
    token: &[u8],
    body: &[u8],
) -> Result<(), Rejection> {
    let signature = hex::decode(signature_hex.trim()).map_err(|_| {
        Rejection::Unauthorized(format!("the {header} signature is not hexadecimal"))
    })?;
    let key = hmac::Key::new(algorithm, token);
    hmac::verify(&key, body, &signature).map_err(|_| {
        Rejection::Unauthorized(format!(
            "the {header} signature does not match the body signed with the receiver token"
        ))
    })
}

fn decode<T: serde::de::DeserializeOwned>(body: &[u8], sender: &str) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| {
        Rejection::Malformed(format!("cannot decode the {sender} webhook payload: {e}"))
    })
}

// The fields Flux reads from each registry's payload; the rest is ignored.
#[derive(Deserialize)]
struct DockerHubPayload {
    #[serde(default)]
    push_data: DockerHubPushData,
    #[serde(default)]
    repository: DockerHubRepository,
}
#[derive(Deserialize, Default)]
struct DockerHubPushData {
    #[serde(default)]
    tag: String,
}
#[derive(Deserialize, Default)]
struct DockerHubRepository {
    #[serde(default)]
    repo_url: String,
}

#[derive(Deserialize)]
struct QuayPayload {
    #[serde(default)]
    docker_url: String,
    #[serde(default)]
    updated_tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NexusPayload {
    #[serde(default)]
    action: String,
    #[serde(default)]
    repository_name: String,
}

#[derive(Deserialize)]
struct AcrPayload {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: AcrTarget,
}
#[derive(Deserialize, Default)]
struct AcrTarget {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: String,
}

/// A CDEvent (spec v0.4, what Flux's SDK reads): a JSON object with a
/// `context` carrying `id`, `source`, `type` (`dev.cdevents.…`) and
/// `timestamp`, and a `subject` with `content`. Flux also validates the
/// subject's content against the event type's JSON schema; this checks the
/// envelope only.
fn check_cdevent(body: &[u8]) -> Result<(), Rejection> {
    let invalid = |why: String| Rejection::Malformed(format!("not a valid CDEvent: {why}"));
    let event: Value = serde_json::from_slice(body).map_err(|e| invalid(e.to_string()))?;
    let context = event
        .get("context")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("no 'context' object".into()))?;
    for field in ["id", "source", "type", "timestamp", "version"] {
        if context
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(format!("context.{field} is missing or empty")));
        }
    }
    let event_type = context
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !event_type.starts_with("dev.cdevents.") {
        return Err(invalid(format!(
            "context.type '{event_type}' is not a dev.cdevents type"
        )));
    }
    event
        .get("subject")
        .and_then(Value::as_object)
        .filter(|s| s.get("content").is_some_and(Value::is_object))
        .ok_or_else(|| invalid("no 'subject' object with a 'content' object".into()))?;
    Ok(())
}

/// Google Pub/Sub push from Artifact/Container Registry: a Google-signed
/// OIDC ID token in `Authorization: Bearer`, checked as Flux does (Google's
/// keys, audience = the Secret's `audience` when set, issuer
/// accounts.google.com, `email` = the Secret's `email` when set and
/// verified); the registry event is the base64 JSON in `message.data`, and
/// becomes the CEL filters' `req`.
fn verify_gcr(
    request: &Request<'_>,
    secret: &ReceiverSecret,
    keys: Option<&crate::receiver_server::jwt::KeySet>,
) -> Result<Verified, Rejection> {
    let bearer = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            Rejection::Unauthorized(
                "the Authorization header is missing or not 'Bearer <token>'".into(),
            )
        })?;
    let keys = keys
        .ok_or_else(|| Rejection::Unauthorized("Google's signing keys are unavailable".into()))?;
    let audience = secret.text("audience");
    let claims = keys
        .verify(bearer, audience.as_deref())
        .map_err(|e| Rejection::Unauthorized(format!("invalid Google ID token: {e}")))?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if issuer != "accounts.google.com" && issuer != "https://accounts.google.com" {
        return Err(Rejection::Unauthorized(format!(
            "token issuer is '{issuer}', want 'accounts.google.com' or 'https://accounts.google.com'"
        )));
    }
    let email = claims
        .get("email")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(expected) = secret.text("email")
        && email != expected
    {
        return Err(Rejection::Unauthorized(format!(
            "token email is '{email}', want '{expected}'"
        )));
    }
    if claims.get("email_verified").and_then(Value::as_bool) != Some(true) {
        return Err(Rejection::Unauthorized(format!(
            "token email '{email}' is not verified"
        )));
    }

    #[derive(Deserialize)]
    struct Push {
        message: Message,
    }
    #[derive(Deserialize)]
    struct Message {
        #[serde(default)]
        data: String,
    }
    let push: Push = decode(request.body, "GCR")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(push.message.data.trim())
        .map_err(|e| Rejection::Malformed(format!("the GCR message data is not base64: {e}")))?;
    #[derive(Deserialize, serde::Serialize)]
    struct Event {
        #[serde(default)]
        action: String,
        #[serde(default)]
        digest: String,
        #[serde(default)]
        tag: String,
    }
    let event: Event = serde_json::from_slice(&raw)
        .map_err(|e| Rejection::Malformed(format!("cannot decode the GCR event: {e}")))?;
    let description = format!("{} of {} {}", event.action, event.digest, event.tag);
    Ok(Verified::Reconcile {
        event: Some(description),
        payload: serde_json::to_value(&event).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn secret(token: &str) -> ReceiverSecret {
        ReceiverSecret {
            token: token.to_string(),
            data: BTreeMap::from([("token".to_string(), token.as_bytes().to_vec())]),
        }
    }

    fn sign(algorithm: hmac::Algorithm, key: &str, body: &[u8]) -> String {
        hex::encode(hmac::sign(&hmac::Key::new(algorithm, key.as_bytes()), body).as_ref())
    }

    fn run(
        kind: ReceiverType,
        pairs: &[(&'static str, &str)],
        body: &[u8],
        events: &[&str],
    ) -> Result<Verified, Rejection> {
        let headers = headers(pairs);
        let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
        verify(
            kind,
            &Request {
                headers: &headers,
                body,
            },
            &secret("s3cr3t"),
            &events,
            None,
        )
    }

    fn unauthorized(result: Result<Verified, Rejection>) -> String {
        match result {
            Err(Rejection::Unauthorized(m)) => m,
            other => panic!("expected 401, got {other:?}"),
        }
    }

    fn malformed(result: Result<Verified, Rejection>) -> String {
        match result {
            Err(Rejection::Malformed(m)) => m,
            other => panic!("expected 400, got {other:?}"),
        }
    }

    fn accepted(result: Result<Verified, Rejection>) {
        assert!(
            matches!(result, Ok(Verified::Reconcile { .. })),
            "expected acceptance, got {result:?}"
        );
    }

    #[test]
    fn hmac_matches_githubs_documented_example() {
        // docs.github.com "Validating webhook deliveries": secret
        // "It's a Secret to Everybody", payload "Hello, World!".
        let expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(
            sign(
                hmac::HMAC_SHA256,
                "It's a Secret to Everybody",
                b"Hello, World!"
            ),
            expected
        );
        assert_eq!(
            verify_prefixed_hmac(
                "X-Hub-Signature-256",
                &format!("sha256={expected}"),
                b"It's a Secret to Everybody",
                b"Hello, World!"
            ),
            Ok(())
        );
    }

    #[test]
    fn generic_needs_nothing_but_the_path() {
        accepted(run(ReceiverType::Generic, &[], b"anything", &[]));
    }

    #[test]
    fn generic_hmac_checks_each_hash() {
        let body = br#"{"app":"podinfo"}"#;
        for (name, algorithm) in [
            ("sha1", hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
            ("sha256", hmac::HMAC_SHA256),
            ("sha512", hmac::HMAC_SHA512),
        ] {
            let good = format!("{name}={}", sign(algorithm, "s3cr3t", body));
            accepted(run(
                ReceiverType::GenericHmac,
                &[("x-signature", &good)],
                body,
                &[],
            ));
            let wrong = format!("{name}={}", sign(algorithm, "other", body));
            let message = unauthorized(run(
                ReceiverType::GenericHmac,
                &[("x-signature", &wrong)],
                body,
                &[],
            ));
            assert!(message.contains("does not match"), "{message}");
        }
        // The signature of another body.
        let other = format!("sha256={}", sign(hmac::HMAC_SHA256, "s3cr3t", b"{}"));
        unauthorized(run(
            ReceiverType::GenericHmac,
            &[("x-signature", &other)],
            body,
            &[],
        ));
        let missing = unauthorized(run(ReceiverType::GenericHmac, &[], body, &[]));
        assert!(missing.contains("missing"), "{missing}");
        let md5 = unauthorized(run(
            ReceiverType::GenericHmac,
            &[("x-signature", "md5=00")],
            body,
            &[],
        ));
        assert!(md5.contains("unsupported hash 'md5'"), "{md5}");
        unauthorized(run(
            ReceiverType::GenericHmac,
            &[("x-signature", "sha256=not-hex")],
            body,
            &[],
        ));
        unauthorized(run(
            ReceiverType::GenericHmac,
            &[("x-signature", "abc")],
            body,
            &[],
        ));
    }

    #[test]
    fn github_push_verified_by_sha256_or_sha1_and_filtered_by_events() {
        let body = br#"{"ref":"refs/heads/main","after":"0123"}"#;
        let sha256 = format!("sha256={}", sign(hmac::HMAC_SHA256, "s3cr3t", body));
        let sha1 = format!(
            "sha1={}",
            sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, "s3cr3t", body)
        );
        let push = |sig_header: &'static str, sig: &str, events: &[&str]| {
            run(
                ReceiverType::Github,
                &[
                    (sig_header, sig),
                    ("x-github-event", "push"),
                    ("content-type", "application/json"),
                ],
                body,
                events,
            )
        };
        assert_eq!(
            push("x-hub-signature-256", &sha256, &["ping", "Push"]),
            Ok(Verified::Reconcile {
                event: Some("push".into()),
                payload: None
            })
        );
        accepted(push("x-hub-signature", &sha1, &[]));
        let wrong = format!("sha256={}", sign(hmac::HMAC_SHA256, "guess", body));
        unauthorized(push("x-hub-signature-256", &wrong, &["push"]));
        let missing = unauthorized(run(
            ReceiverType::Github,
            &[
                ("x-github-event", "push"),
                ("content-type", "application/json"),
            ],
            body,
            &[],
        ));
        assert!(missing.contains("X-Hub-Signature-256"), "{missing}");
        match push("x-hub-signature-256", &sha256, &["release"]) {
            Err(Rejection::EventNotAccepted(m)) => assert!(m.contains("'push'"), "{m}"),
            other => panic!("expected the event refused, got {other:?}"),
        }
    }

    #[test]
    fn github_ping_is_verified_then_answered_without_reconciling() {
        let body = br#"{"zen":"Keep it logically awesome.","hook_id":1}"#;
        let sig = format!("sha256={}", sign(hmac::HMAC_SHA256, "s3cr3t", body));
        let ping = |sig: &str| {
            run(
                ReceiverType::Github,
                &[
                    ("x-hub-signature-256", sig),
                    ("x-github-event", "ping"),
                    ("content-type", "application/json"),
                ],
                body,
                &["push"],
            )
        };
        assert_eq!(ping(&sig), Ok(Verified::Ping));
        unauthorized(ping("sha256=00"));
    }

    #[test]
    fn github_payload_must_be_json_or_a_form_with_json() {
        let signed = |body: &[u8], content_type: &'static str| {
            let sig = format!("sha256={}", sign(hmac::HMAC_SHA256, "s3cr3t", body));
            run(
                ReceiverType::Github,
                &[
                    ("x-hub-signature-256", &sig),
                    ("x-github-event", "push"),
                    ("content-type", content_type),
                ],
                body,
                &[],
            )
        };
        malformed(signed(b"{not json", "application/json"));
        accepted(signed(
            b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D",
            "application/x-www-form-urlencoded",
        ));
        malformed(signed(b"other=1", "application/x-www-form-urlencoded"));
        let message = malformed(signed(b"{}", "text/plain"));
        assert!(message.contains("unsupported Content-Type"), "{message}");
    }

    #[test]
    fn gitlab_token_header_and_events() {
        let gitlab = |token: &str, event: &str, events: &[&str]| {
            run(
                ReceiverType::Gitlab,
                &[("x-gitlab-token", token), ("x-gitlab-event", event)],
                b"{}",
                events,
            )
        };
        accepted(gitlab(
            "s3cr3t",
            "Push Hook",
            &["push hook", "Tag Push Hook"],
        ));
        unauthorized(gitlab("s3cr3", "Push Hook", &[]));
        unauthorized(gitlab("s3cr3t0", "Push Hook", &[]));
        unauthorized(run(ReceiverType::Gitlab, &[], b"{}", &[]));
        assert!(matches!(
            gitlab("s3cr3t", "Issue Hook", &["Push Hook"]),
            Err(Rejection::EventNotAccepted(_))
        ));
    }

    #[test]
    fn bitbucket_server_signature_and_event_key() {
        let body = br#"{"eventKey":"repo:refs_changed"}"#;
        let sig = format!("sha256={}", sign(hmac::HMAC_SHA256, "s3cr3t", body));
        let bitbucket = |sig: &str, events: &[&str]| {
            run(
                ReceiverType::Bitbucket,
                &[
                    ("x-hub-signature", sig),
                    ("x-event-key", "repo:refs_changed"),
                ],
                body,
                events,
            )
        };
        accepted(bitbucket(&sig, &["repo:refs_changed"]));
        unauthorized(bitbucket("sha256=abcd", &[]));
        unauthorized(run(ReceiverType::Bitbucket, &[], body, &[]));
        assert!(matches!(
            bitbucket(&sig, &["pr:opened"]),
            Err(Rejection::EventNotAccepted(_))
        ));
    }

    #[test]
    fn harbor_authorization_header_is_the_token() {
        accepted(run(
            ReceiverType::Harbor,
            &[("authorization", "s3cr3t")],
            b"{}",
            &[],
        ));
        unauthorized(run(
            ReceiverType::Harbor,
            &[("authorization", "Bearer s3cr3t")],
            b"{}",
            &[],
        ));
        unauthorized(run(ReceiverType::Harbor, &[], b"{}", &[]));
    }

    #[test]
    fn registry_payloads_are_decoded() {
        let dockerhub = br#"{"push_data":{"tag":"6.1.0"},"repository":{"repo_url":"https://hub.docker.com/r/stefanprodan/podinfo"}}"#;
        assert_eq!(
            run(ReceiverType::Dockerhub, &[], dockerhub, &[]),
            Ok(Verified::Reconcile {
                event: Some(
                    "push of tag 6.1.0 to https://hub.docker.com/r/stefanprodan/podinfo".into()
                ),
                payload: None
            })
        );
        malformed(run(ReceiverType::Dockerhub, &[], b"<xml/>", &[]));
        malformed(run(
            ReceiverType::Dockerhub,
            &[],
            br#"{"push_data":{"tag":6}}"#,
            &[],
        ));

        let quay = br#"{"docker_url":"quay.io/org/app","updated_tags":["v1","latest"]}"#;
        accepted(run(ReceiverType::Quay, &[], quay, &[]));
        malformed(run(ReceiverType::Quay, &[], b"", &[]));

        let acr = br#"{"action":"push","target":{"repository":"app","tag":"v1"}}"#;
        accepted(run(ReceiverType::Acr, &[], acr, &[]));
        malformed(run(ReceiverType::Acr, &[], b"[1,", &[]));
    }

    #[test]
    fn nexus_signs_with_hmac_sha1() {
        let body = br#"{"action":"CREATED","repositoryName":"docker-hosted"}"#;
        let sig = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, "s3cr3t", body);
        accepted(run(
            ReceiverType::Nexus,
            &[("x-nexus-webhook-signature", &sig)],
            body,
            &[],
        ));
        let wrong = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, "nope", body);
        unauthorized(run(
            ReceiverType::Nexus,
            &[("x-nexus-webhook-signature", &wrong)],
            body,
            &[],
        ));
        unauthorized(run(ReceiverType::Nexus, &[], body, &[]));
        // Authentic but not JSON.
        let sig = sign(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, "s3cr3t", b"nope");
        malformed(run(
            ReceiverType::Nexus,
            &[("x-nexus-webhook-signature", &sig)],
            b"nope",
            &[],
        ));
    }

    #[test]
    fn cdevents_checks_the_envelope_and_the_ce_type() {
        let event = br#"{
            "context": {"version": "0.4.1", "id": "271069a8", "source": "/event/source/123",
                        "type": "dev.cdevents.artifact.published.0.2.0",
                        "timestamp": "2023-03-20T14:27:05.315384Z"},
            "subject": {"id": "pkg:oci/app@sha256:0b31b1c02ff458ad9b7b", "content": {}}
        }"#;
        let ce = "dev.cdevents.artifact.published.0.2.0";
        accepted(run(
            ReceiverType::Cdevents,
            &[("ce-type", ce)],
            event,
            &[ce],
        ));
        assert!(matches!(
            run(
                ReceiverType::Cdevents,
                &[("ce-type", ce)],
                event,
                &["dev.cdevents.pipelinerun.started.0.2.0"]
            ),
            Err(Rejection::EventNotAccepted(_))
        ));
        malformed(run(ReceiverType::Cdevents, &[("ce-type", ce)], b"{}", &[]));
        malformed(run(
            ReceiverType::Cdevents,
            &[("ce-type", ce)],
            br#"{"context":{"version":"1","id":"1","source":"s","type":"com.example","timestamp":"t"},"subject":{"content":{}}}"#,
            &[],
        ));
    }

    #[test]
    fn gcr_checks_googles_token_then_unwraps_the_event() {
        use crate::receiver_server::jwt::KeySet;
        use crate::receiver_server::jwt::test_issuer::{Issuer, epoch};
        use serde_json::json;

        let google = Issuer::new("google-1");
        let keys = KeySet::from_json(google.jwks().to_string().as_bytes()).unwrap();
        let mut secret = secret("s3cr3t");
        secret.data.insert(
            "email".into(),
            b"pusher@proj.iam.gserviceaccount.com".to_vec(),
        );
        secret
            .data
            .insert("audience".into(), b"https://flux.example.com/hook".to_vec());
        let event = json!({"action": "INSERT", "digest": "gcr.io/proj/app@sha256:6ec1", "tag": "gcr.io/proj/app:1.0"});
        let body = json!({"message": {
            "data": base64::engine::general_purpose::STANDARD.encode(event.to_string()),
            "messageId": "136969346945", "publishTime": "2026-01-02T15:04:05Z"},
            "subscription": "projects/proj/subscriptions/flux"})
        .to_string();
        let claims = |iss: &str, aud: &str, email: &str, verified: bool| {
            json!({"iss": iss, "aud": aud, "email": email, "email_verified": verified,
                   "exp": epoch(300), "iat": epoch(0)})
        };
        let good = claims(
            "https://accounts.google.com",
            "https://flux.example.com/hook",
            "pusher@proj.iam.gserviceaccount.com",
            true,
        );
        let gcr = |token: Option<String>, body: &[u8]| {
            let auth = token.map(|t| format!("Bearer {t}"));
            let pairs: Vec<(&'static str, &str)> = auth
                .as_deref()
                .map(|a| vec![("authorization", a)])
                .unwrap_or_default();
            let headers = headers(&pairs);
            verify(
                ReceiverType::Gcr,
                &Request {
                    headers: &headers,
                    body,
                },
                &secret,
                &[],
                Some(&keys),
            )
        };
        match gcr(Some(google.sign(&good)), body.as_bytes()) {
            Ok(Verified::Reconcile { payload, .. }) => assert_eq!(payload, Some(event.clone())),
            other => panic!("expected acceptance, got {other:?}"),
        }
        let message = unauthorized(gcr(
            Some(google.sign(&claims(
                "https://accounts.google.com",
                "other",
                "pusher@proj.iam.gserviceaccount.com",
                true,
            ))),
            body.as_bytes(),
        ));
        assert!(message.contains("audience is 'other'"), "{message}");
        let message = unauthorized(gcr(
            Some(google.sign(&claims(
                "https://accounts.google.com",
                "https://flux.example.com/hook",
                "evil@x.iam.gserviceaccount.com",
                true,
            ))),
            body.as_bytes(),
        ));
        assert!(
            message.contains("want 'pusher@proj.iam.gserviceaccount.com'"),
            "{message}"
        );
        unauthorized(gcr(
            Some(google.sign(&claims(
                "https://accounts.google.com",
                "https://flux.example.com/hook",
                "pusher@proj.iam.gserviceaccount.com",
                false,
            ))),
            body.as_bytes(),
        ));
        unauthorized(gcr(
            Some(google.sign(&claims(
                "https://evil.example",
                "https://flux.example.com/hook",
                "pusher@proj.iam.gserviceaccount.com",
                true,
            ))),
            body.as_bytes(),
        ));
        unauthorized(gcr(
            Some(Issuer::new("google-1").sign(&good)),
            body.as_bytes(),
        ));
        unauthorized(gcr(None, body.as_bytes()));
        malformed(gcr(
            Some(google.sign(&good)),
            br#"{"message":{"data":"%%%"}}"#,
        ));
        malformed(gcr(Some(google.sign(&good)), b"[]"));
    }

    #[test]
    fn json_content_type_detection() {
        let json = |value: &str| {
            let h = headers(&[("content-type", value)]);
            Request {
                headers: &h,
                body: b"",
            }
            .is_json()
        };
        assert!(json("application/json"));
        assert!(json("Application/JSON; charset=utf-8"));
        assert!(json("text/plain, application/json"));
        assert!(!json("application/x-www-form-urlencoded"));
        assert!(!json("application/jsonl"));
    }
}
