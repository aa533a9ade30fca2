//! `googlepubsub`: the event's JSON published to a Google Cloud Pub/Sub
//! topic through the Pub/Sub REST API
//! (`POST https://pubsub.googleapis.com/v1/projects/<address>/topics/<channel>:publish`).
//!
//! As Flux: the address is the GCP project id, spec.channel the topic id,
//! the Secret's `headers` become the message's attributes (not HTTP headers),
//! and the Secret's token holds a service account's JSON key. The key signs
//! an RS256 JWT exchanged at its `token_uri` for an access token (OAuth 2.0
//! JWT bearer grant), sent as bearer. Without a token Flux uses GCP workload
//! identity: not implemented here, so that configuration is `Unsupported`.

use std::collections::BTreeMap;

use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{non_empty, require_channel, to_json};
use crate::http::Poster;
use crate::{Event, NotifyError, Target, Transport};

/// Google's Pub/Sub endpoint.
const PUBSUB_ENDPOINT: &str = "https://pubsub.googleapis.com";
/// Google's token endpoint, for keys that do not name one.
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The scopes Google's Pub/Sub client asks for.
const SCOPES: &str =
    "https://www.googleapis.com/auth/pubsub https://www.googleapis.com/auth/cloud-platform";
/// The grant type of the JWT bearer token exchange (RFC 7523).
const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// How long the signed assertion is valid (Google's maximum).
const ASSERTION_VALIDITY_SECS: i64 = 3600;

/// The parts of a service account JSON key used here.
#[derive(Deserialize)]
struct ServiceAccountKey {
    #[serde(rename = "type")]
    kind: String,
    client_email: Option<String>,
    private_key: Option<String>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
}

/// A usable key: who signs, with what, and where to exchange the assertion.
struct Signer {
    email: String,
    key: EncodingKey,
    key_id: Option<String>,
    token_uri: Url,
}

fn invalid(why: String) -> NotifyError {
    NotifyError::InvalidConfig(format!("googlepubsub: {why}"))
}

fn project_and_topic(target: &Target) -> Result<(&str, &str), NotifyError> {
    let project = target.address.trim();
    if project.is_empty() {
        return Err(invalid(
            "needs the GCP project id as address (spec.address or the Secret's `address` key)"
                .to_string(),
        ));
    }
    let topic = require_channel(target, "googlepubsub", "the Pub/Sub topic id")?;
    Ok((project, topic))
}

fn signer(target: &Target) -> Result<Signer, NotifyError> {
    let Some(json) = non_empty(target.token.as_deref()) else {
        return Err(NotifyError::Unsupported(
            "googlepubsub with GCP workload identity (no service account key in the Secret's token)"
                .to_string(),
        ));
    };
    let key: ServiceAccountKey = serde_json::from_str(json).map_err(|e| {
        invalid(format!(
            "the Secret's token must be a service account JSON key: {e}"
        ))
    })?;
    if key.kind != "service_account" {
        return Err(NotifyError::Unsupported(format!(
            "googlepubsub with '{}' credentials (only service account keys are implemented)",
            key.kind
        )));
    }
    let field = |value: Option<String>, name: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| invalid(format!("the service account key has no `{name}`")))
    };
    let email = field(key.client_email, "client_email")?;
    let pem = field(key.private_key, "private_key")?;
    let key_pem = EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|e| invalid(format!("the service account key's private_key: {e}")))?;
    let token_uri = key
        .token_uri
        .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string());
    let token_uri = Url::parse(&token_uri)
        .map_err(|e| invalid(format!("the service account key's token_uri: {e}")))?;
    Ok(Signer {
        email,
        key: key_pem,
        key_id: key.private_key_id.filter(|k| !k.is_empty()),
        token_uri,
    })
}

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    project_and_topic(target)?;
    signer(target).map(drop)
}

pub(super) async fn post(
    target: &Target,
    transport: &Transport,
    event: &Event,
) -> Result<(), NotifyError> {
    let endpoint =
        Url::parse(PUBSUB_ENDPOINT).map_err(|e| invalid(format!("the Pub/Sub endpoint: {e}")))?;
    publish(target, transport, event, &endpoint).await
}

/// Publishes to the Pub/Sub API at `endpoint` (Google's, or a test server).
async fn publish(
    target: &Target,
    transport: &Transport,
    event: &Event,
    endpoint: &Url,
) -> Result<(), NotifyError> {
    let (project, topic) = project_and_topic(target)?;
    let signer = signer(target)?;
    // The Secret's headers are message attributes here: a poster without them.
    let poster = Poster::new(transport, &BTreeMap::new())?;
    let access_token = access_token(&poster, &signer).await?;

    let mut message = Map::new();
    let data = base64::engine::general_purpose::STANDARD.encode(to_json(event)?);
    message.insert("data".to_string(), json!(data));
    if !target.headers.is_empty() {
        message.insert("attributes".to_string(), json!(target.headers));
    }
    let body = json!({"messages": [Value::Object(message)]});
    let mut url = endpoint.clone();
    url.set_path(&format!("/v1/projects/{project}/topics/{topic}:publish"));
    poster
        .post_json(url.as_str(), &body, |r| r.bearer_auth(&access_token))
        .await?;
    Ok(())
}

/// An access token for the service account: a signed JWT exchanged at the
/// key's token endpoint.
async fn access_token(poster: &Poster, signer: &Signer) -> Result<String, NotifyError> {
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let claims = json!({
        "iss": signer.email,
        "scope": SCOPES,
        "aud": signer.token_uri.as_str(),
        "iat": now,
        "exp": now + ASSERTION_VALIDITY_SECS,
    });
    let mut header = Header::new(Algorithm::RS256);
    header.kid = signer.key_id.clone();
    let assertion = jsonwebtoken::encode(&header, &claims, &signer.key)
        .map_err(|e| invalid(format!("signing with the service account key: {e}")))?;
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", JWT_BEARER_GRANT)
        .append_pair("assertion", &assertion)
        .finish();
    let response = poster
        .send(|| {
            poster
                .request(Method::POST, signer.token_uri.as_str())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.clone())
        })
        .await?;
    let answer: Value = response.json().await.map_err(|e| NotifyError::Transport {
        method: "POST".to_string(),
        url: signer.token_uri.to_string(),
        message: format!("reading the access token: {e}"),
    })?;
    answer
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .ok_or_else(|| NotifyError::Transport {
            method: "POST".to_string(),
            url: signer.token_uri.to_string(),
            message: "the token endpoint answered without an access_token".to_string(),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{HeaderMap, Uri};

    use super::*;

    type Seen = Arc<Mutex<Vec<(String, HeaderMap, String)>>>;

    async fn record(
        State(seen): State<Seen>,
        uri: Uri,
        headers: HeaderMap,
        body: String,
    ) -> axum::Json<Value> {
        let path = uri.path().to_string();
        seen.lock().unwrap().push((path.clone(), headers, body));
        if path == "/token" {
            axum::Json(
                json!({"access_token": "ya29.test", "expires_in": 3599, "token_type": "Bearer"}),
            )
        } else {
            axum::Json(json!({"messageIds": ["1"]}))
        }
    }

    fn event() -> Event {
        serde_json::from_value(json!({
            "involvedObject": {"kind": "GitRepository", "namespace": "flux-system", "name": "podinfo"},
            "severity": "info",
            "timestamp": "2026-12-04T10:00:00Z",
            "message": "stored artifact for commit 'abc'",
            "reason": "NewArtifact",
            "reportingController": "source-controller",
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn publishes_with_a_service_account_token_and_attributes() {
        let seen: Seen = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(record)
            .with_state(seen.clone());
        tokio::spawn(axum::serve(listener, app).into_future());

        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let credentials = json!({
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "kid-1",
            "private_key": key.serialize_pem(),
            "client_email": "flux@my-project.iam.gserviceaccount.com",
            "token_uri": format!("{base}/token"),
        });
        let target = Target {
            address: "my-project".to_string(),
            channel: Some("flux-events".to_string()),
            token: Some(credentials.to_string()),
            headers: BTreeMap::from([("cluster".to_string(), "prod".to_string())]),
            ..Target::default()
        };
        validate(&target).unwrap();
        let event = event();
        publish(
            &target,
            &Transport::default(),
            &event,
            &Url::parse(&base).unwrap(),
        )
        .await
        .unwrap();

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        let (path, headers, body) = &seen[0];
        assert_eq!(path, "/token");
        assert_eq!(headers["content-type"], "application/x-www-form-urlencoded");
        let form: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(form["grant_type"], JWT_BEARER_GRANT);
        let decoding =
            jsonwebtoken::DecodingKey::from_rsa_pem(key.public_key_pem().as_bytes()).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.set_audience(&[format!("{base}/token")]);
        let assertion =
            jsonwebtoken::decode::<Value>(&form["assertion"], &decoding, &validation).unwrap();
        assert_eq!(assertion.header.kid.as_deref(), Some("kid-1"));
        assert_eq!(
            assertion.claims["iss"],
            "flux@my-project.iam.gserviceaccount.com"
        );
        assert_eq!(assertion.claims["scope"], SCOPES);

        let (path, headers, body) = &seen[1];
        assert_eq!(path, "/v1/projects/my-project/topics/flux-events:publish");
        assert_eq!(headers["authorization"], "Bearer ya29.test");
        assert!(
            headers.get("cluster").is_none(),
            "Secret headers are attributes, not HTTP headers"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        let data = base64::engine::general_purpose::STANDARD
            .decode(body["messages"][0]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&data).unwrap(),
            serde_json::to_value(&event).unwrap()
        );
        assert_eq!(
            body["messages"][0]["attributes"],
            json!({"cluster": "prod"})
        );
    }

    #[test]
    fn refuses_what_flux_refuses_and_what_is_not_implemented() {
        let target = |address: &str, channel: Option<&str>, token: Option<&str>| Target {
            address: address.to_string(),
            channel: channel.map(str::to_string),
            token: token.map(str::to_string),
            ..Target::default()
        };
        let err = validate(&target("", Some("t"), Some("{}"))).unwrap_err();
        assert!(err.to_string().contains("project id"), "{err}");
        let err = validate(&target("p", None, Some("{}"))).unwrap_err();
        assert!(err.to_string().contains("spec.channel"), "{err}");
        let err = validate(&target("p", Some("t"), None)).unwrap_err();
        assert!(matches!(err, NotifyError::Unsupported(_)), "{err}");
        let err = validate(&target("p", Some("t"), Some("not json"))).unwrap_err();
        assert!(matches!(err, NotifyError::InvalidConfig(_)), "{err}");
        let external = r#"{"type": "external_account"}"#;
        let err = validate(&target("p", Some("t"), Some(external))).unwrap_err();
        assert!(matches!(err, NotifyError::Unsupported(_)), "{err}");
    }
}
