//! `generic-oidc` Receivers: the caller presents an OIDC ID token
//! (`Authorization: Bearer`) from one of `spec.oidcProviders`. The token's
//! unverified `iss` picks the provider; the token is then verified with the
//! keys the issuer's discovery document points to (signature, expiry,
//! audience: the provider's `audience`, default `notification-controller`),
//! and the provider's CEL `variables` (`vars.<name>`) and `validations`
//! are evaluated over its claims (`claims`), every validation having to be
//! true, as Flux does.

use api::notification::OIDCProvider;
use http::HeaderMap;
use serde_json::{Map, Value};

use super::filter::Expression;
use super::jwt::{KeyCache, unverified_claim};

/// The audience a token must carry when the provider names none.
pub(crate) const DEFAULT_AUDIENCE: &str = "notification-controller";

/// Why a token is refused.
#[derive(Debug, PartialEq)]
pub(crate) enum OidcFailure {
    /// Missing, forged, expired, for another audience or failing a
    /// validation (401).
    Unauthorized(String),
    /// The issuer's discovery document or keys could not be fetched (503).
    IssuerUnavailable(String),
    /// A provider's CEL expression does not compile (500: the Receiver is
    /// misconfigured).
    Misconfigured(String),
}

/// Verifies the request's bearer token against `providers`; returns its
/// claims (exposed to the resource filters as `claims`).
pub(crate) async fn verify(
    keys: &KeyCache,
    providers: &[OIDCProvider],
    headers: &HeaderMap,
) -> Result<Map<String, Value>, OidcFailure> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            OidcFailure::Unauthorized("the Authorization header is missing or malformed".into())
        })?;
    if bearer.is_empty() {
        return Err(OidcFailure::Unauthorized(
            "the Authorization header is missing a bearer token".into(),
        ));
    }
    let issuer = unverified_claim(bearer, "iss").ok_or_else(|| {
        OidcFailure::Unauthorized("the bearer token is not a JWT with an 'iss' claim".into())
    })?;
    let provider = providers
        .iter()
        .find(|p| p.issuer_url == issuer)
        .ok_or_else(|| {
            OidcFailure::Unauthorized(format!("no oidcProvider configured for issuer '{issuer}'"))
        })?;
    let jwks_uri = keys
        .discover_jwks_uri(&provider.issuer_url)
        .await
        .map_err(OidcFailure::IssuerUnavailable)?;
    let key_set = keys
        .keys_for(&jwks_uri, bearer)
        .await
        .map_err(OidcFailure::IssuerUnavailable)?;
    let audience = provider
        .audience
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or(DEFAULT_AUDIENCE);
    let claims = key_set
        .verify(bearer, Some(audience))
        .map_err(|e| OidcFailure::Unauthorized(format!("failed to verify OIDC token: {e}")))?;
    // go-oidc checks the issuer claim against the provider's.
    if claims.get("iss").and_then(Value::as_str) != Some(provider.issuer_url.as_str()) {
        return Err(OidcFailure::Unauthorized(format!(
            "the token's issuer is not '{}'",
            provider.issuer_url
        )));
    }
    evaluate_claims(provider, &claims)?;
    Ok(claims)
}

/// Evaluates the provider's `variables` in order, then every validation;
/// the messages of the failing ones are joined into one refusal.
pub(crate) fn evaluate_claims(
    provider: &OIDCProvider,
    claims: &Map<String, Value>,
) -> Result<(), OidcFailure> {
    let claims = Value::Object(claims.clone());
    let mut vars = Map::new();
    for variable in provider.variables.iter().flatten() {
        let expression = Expression::compile(&variable.expression).map_err(|e| {
            OidcFailure::Misconfigured(format!(
                "oidcProvider '{}': variable '{}': {e}",
                provider.issuer_url, variable.name
            ))
        })?;
        let value = expression
            .evaluate(&[("claims", &claims), ("vars", &Value::Object(vars.clone()))])
            .map_err(|e| {
                OidcFailure::Unauthorized(format!(
                    "failed to evaluate variable '{}': {e}",
                    variable.name
                ))
            })?;
        vars.insert(variable.name.clone(), value);
    }
    let vars = Value::Object(vars);
    let mut failures = Vec::new();
    for validation in &provider.validations {
        let expression = Expression::compile(&validation.expression).map_err(|e| {
            OidcFailure::Misconfigured(format!(
                "oidcProvider '{}': validation: {e}",
                provider.issuer_url
            ))
        })?;
        let passed = expression
            .evaluate_bool(&[("claims", &claims), ("vars", &vars)])
            .map_err(|e| {
                OidcFailure::Unauthorized(format!("failed to evaluate validation: {e}"))
            })?;
        if !passed {
            failures.push(
                validation
                    .message
                    .clone()
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| validation.expression.clone()),
            );
        }
    }
    if provider.validations.is_empty() {
        // The CRD requires one; a token alone proves only that the issuer
        // issued it, to anyone on the platform.
        return Err(OidcFailure::Misconfigured(format!(
            "oidcProvider '{}' has no validations",
            provider.issuer_url
        )));
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(OidcFailure::Unauthorized(format!(
            "token validation failed: {}",
            failures.join("; ")
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::jwt::test_issuer::{Issuer, epoch};
    use super::*;
    use api::notification::{OIDCValidation, OIDCVariable};
    use http::HeaderValue;
    use serde_json::json;

    /// A loopback OIDC issuer (discovery document and JWK Set), standing in
    /// for GitHub Actions' or another platform's issuer these machines
    /// cannot reach.
    async fn serve_issuer(issuer: &Issuer) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/keys")});
        let jwks = issuer.jwks();
        let app = axum::Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(discovery) }),
            )
            .route(
                "/keys",
                axum::routing::get(move || async move { axum::Json(jwks) }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    fn provider(issuer_url: &str, audience: Option<&str>) -> OIDCProvider {
        OIDCProvider {
            issuer_url: issuer_url.to_string(),
            audience: audience.map(str::to_string),
            variables: Some(vec![OIDCVariable {
                name: "owner".into(),
                expression: "claims.repository.split('/')[0]".into(),
            }]),
            validations: vec![
                OIDCValidation {
                    expression: "vars.owner == 'my-org'".into(),
                    message: Some("repository owner must be my-org".into()),
                },
                OIDCValidation {
                    expression: "claims.ref == 'refs/heads/main'".into(),
                    message: Some("only main may trigger".into()),
                },
            ],
        }
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn verifies_tokens_against_the_issuers_keys_and_validations() {
        let issuer = Issuer::new("gha-1");
        let url = serve_issuer(&issuer).await;
        let providers = [provider(&url, None)];
        let keys = KeyCache::new();
        let claims = |repository: &str, r#ref: &str, aud: &str| {
            json!({"iss": url, "aud": aud, "exp": epoch(300), "iat": epoch(0),
                   "repository": repository, "ref": r#ref})
        };

        let good = issuer.sign(&claims("my-org/app", "refs/heads/main", DEFAULT_AUDIENCE));
        let verified = verify(&keys, &providers, &bearer(&good)).await.unwrap();
        assert_eq!(verified["repository"], "my-org/app");

        let both_fail = issuer.sign(&claims("evil/app", "refs/heads/dev", DEFAULT_AUDIENCE));
        assert_eq!(
            verify(&keys, &providers, &bearer(&both_fail)).await,
            Err(OidcFailure::Unauthorized(
                "token validation failed: repository owner must be my-org; only main may trigger"
                    .into()
            ))
        );

        let other_audience = issuer.sign(&claims(
            "my-org/app",
            "refs/heads/main",
            "sts.amazonaws.com",
        ));
        match verify(&keys, &providers, &bearer(&other_audience)).await {
            Err(OidcFailure::Unauthorized(m)) => assert!(m.contains("audience"), "{m}"),
            other => panic!("expected a refusal, got {other:?}"),
        }

        let forged =
            Issuer::new("gha-1").sign(&claims("my-org/app", "refs/heads/main", DEFAULT_AUDIENCE));
        assert!(matches!(
            verify(&keys, &providers, &bearer(&forged)).await,
            Err(OidcFailure::Unauthorized(_))
        ));

        let unknown = issuer
            .sign(&json!({"iss": "https://elsewhere", "aud": DEFAULT_AUDIENCE, "exp": epoch(300)}));
        assert_eq!(
            verify(&keys, &providers, &bearer(&unknown)).await,
            Err(OidcFailure::Unauthorized(
                "no oidcProvider configured for issuer 'https://elsewhere'".into()
            ))
        );
        assert!(matches!(
            verify(&keys, &providers, &HeaderMap::new()).await,
            Err(OidcFailure::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_unavailable() {
        let issuer = Issuer::new("k");
        // A port nothing listens on.
        let url = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let token = issuer.sign(&json!({"iss": url, "aud": DEFAULT_AUDIENCE, "exp": epoch(300)}));
        assert!(matches!(
            verify(&KeyCache::new(), &[provider(&url, None)], &bearer(&token)).await,
            Err(OidcFailure::IssuerUnavailable(_))
        ));
    }

    #[test]
    fn invalid_expressions_are_a_misconfiguration() {
        let mut p = provider("https://issuer", None);
        p.validations[0].expression = "claims.sub ==".into();
        let claims = Map::from_iter([("repository".to_string(), json!("my-org/x"))]);
        assert!(matches!(
            evaluate_claims(&p, &claims),
            Err(OidcFailure::Misconfigured(_))
        ));
    }
}
