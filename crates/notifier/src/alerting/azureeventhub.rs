//! `azureeventhub`: the event's JSON sent to an Azure Event Hub through the
//! Event Hubs REST API (`POST https://<namespace>/<hub>/messages`), which
//! stores the same event body Flux's AMQP client sends.
//!
//! The two ways Flux configures it:
//! - the address is a SAS connection string (`Endpoint=sb://<namespace>/;
//!   SharedAccessKeyName=…;SharedAccessKey=…;EntityPath=<hub>`): each request
//!   carries a `SharedAccessSignature` token for the hub, valid one hour;
//!   a token may not be set too;
//! - otherwise the address is the hub name, spec.channel the namespace
//!   (`.servicebus.windows.net` appended unless it names a `.servicebus.`
//!   host, or the sovereign cloud's suffix per `AZURE_AUTHORITY_HOST`), and
//!   the Secret's token an Azure AD JWT sent as bearer.
//!
//! Without a token Flux falls back to Azure workload identity: not
//! implemented here, so that configuration is `Unsupported`.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Url};
use sha2::Sha256;

use super::{ADDRESS_FIELD, non_empty, to_json};
use crate::http::Poster;
use crate::{Event, NotifyError, Target};

/// The content type the Event Hubs REST API documents for sending.
const CONTENT: &str = "application/atom+xml;type=entry;charset=utf-8";
/// The REST API version and server-side timeout, as documented.
const QUERY: &str = "timeout=60&api-version=2014-01";
/// How long a SAS token is valid.
const SAS_VALIDITY_SECS: i64 = 3600;

/// Where and how to send.
enum Hub {
    /// A SAS connection string: the hub's URL and the key to sign with.
    Sas {
        hub_url: Url,
        key_name: String,
        key: String,
    },
    /// An Azure AD token for the hub at `hub_url`.
    Jwt { hub_url: Url, token: String },
}

fn invalid(why: String) -> NotifyError {
    NotifyError::InvalidConfig(format!("azureeventhub: {why}"))
}

fn hub(target: &Target) -> Result<Hub, NotifyError> {
    let address = target.address.trim();
    if address.is_empty() {
        return Err(invalid(format!(
            "needs an {ADDRESS_FIELD}: a SAS connection string, or the event hub's name"
        )));
    }
    let token = non_empty(target.token.as_deref());
    // Flux's test for a connection string.
    if address.contains("SharedAccessKey") {
        if token.is_some() {
            return Err(invalid(
                "a token and a SAS connection string cannot be set at the same time".to_string(),
            ));
        }
        return sas_hub(address);
    }
    let Some(token) = token else {
        return Err(NotifyError::Unsupported(
            "azureeventhub with Azure workload identity (no token in the Secret)".to_string(),
        ));
    };
    let namespace = non_empty(target.channel.as_deref())
        .ok_or_else(|| invalid("needs spec.channel (the Event Hubs namespace)".to_string()))?;
    let namespace = if namespace.contains(".servicebus.") {
        namespace.to_string()
    } else {
        format!("{namespace}{}", namespace_suffix())
    };
    let hub_url = Url::parse(&format!("https://{namespace}/"))
        .and_then(|base| base.join(&format!("{address}/")))
        .map_err(|e| invalid(format!("namespace or hub name do not make a URL: {e}")))?;
    Ok(Hub::Jwt {
        hub_url,
        token: token.to_string(),
    })
}

/// The Service Bus DNS suffix of the cloud `AZURE_AUTHORITY_HOST` names.
fn namespace_suffix() -> &'static str {
    let authority = std::env::var("AZURE_AUTHORITY_HOST").unwrap_or_default();
    if authority.contains("chinacloudapi.cn") {
        ".servicebus.chinacloudapi.cn"
    } else if authority.contains("microsoftonline.us") {
        ".servicebus.usgovcloudapi.net"
    } else {
        ".servicebus.windows.net"
    }
}

fn sas_hub(connection_string: &str) -> Result<Hub, NotifyError> {
    let mut endpoint = None;
    let mut key_name = None;
    let mut key = None;
    let mut entity = None;
    for part in connection_string
        .split(';')
        .filter(|p| !p.trim().is_empty())
    {
        let (name, value) = part.split_once('=').unwrap_or((part, ""));
        match name.trim() {
            "Endpoint" => endpoint = Some(value.trim()),
            "SharedAccessKeyName" => key_name = Some(value.trim()),
            "SharedAccessKey" => key = Some(value.trim()),
            "EntityPath" => entity = Some(value.trim()),
            _ => {}
        }
    }
    let missing = |what: &str| {
        invalid(format!(
            "the SAS connection string in the {ADDRESS_FIELD} has no {what}"
        ))
    };
    let endpoint = endpoint
        .filter(|e| !e.is_empty())
        .ok_or_else(|| missing("Endpoint"))?;
    let key_name = key_name
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing("SharedAccessKeyName"))?;
    let key = key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| missing("SharedAccessKey"))?;
    let entity = entity
        .filter(|e| !e.is_empty())
        .ok_or_else(|| missing("EntityPath (the event hub)"))?;
    let endpoint = Url::parse(endpoint).map_err(|e| {
        invalid(format!(
            "the connection string's Endpoint is not a URL: {e}"
        ))
    })?;
    let host = endpoint
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| missing("Endpoint host"))?;
    let port = endpoint.port().map(|p| format!(":{p}")).unwrap_or_default();
    // The REST API is the namespace's HTTPS endpoint (`sb://` is AMQP's scheme).
    let hub_url = Url::parse(&format!("https://{host}{port}/"))
        .and_then(|base| base.join(&format!("{entity}/")))
        .map_err(|e| invalid(format!("the connection string does not make a URL: {e}")))?;
    Ok(Hub::Sas {
        hub_url,
        key_name: key_name.to_string(),
        key: key.to_string(),
    })
}

pub(super) fn validate(target: &Target) -> Result<(), NotifyError> {
    hub(target).map(drop)
}

pub(super) async fn post(
    target: &Target,
    poster: &Poster,
    event: &Event,
) -> Result<(), NotifyError> {
    let hub = hub(target)?;
    let hub_url = match &hub {
        Hub::Sas { hub_url, .. } | Hub::Jwt { hub_url, .. } => hub_url,
    };
    let mut url = hub_url
        .join("messages")
        .map_err(|e| invalid(format!("the hub does not make a URL: {e}")))?;
    url.set_query(Some(QUERY));
    let authorization = match &hub {
        Hub::Sas {
            hub_url,
            key_name,
            key,
        } => {
            let expiry = k8s_openapi::jiff::Timestamp::now().as_second() + SAS_VALIDITY_SECS;
            sas_token(
                hub_url.as_str().trim_end_matches('/'),
                key_name,
                key,
                expiry,
            )
        }
        Hub::Jwt { token, .. } => format!("Bearer {token}"),
    };
    let body = to_json(event)?;
    poster
        .send(|| {
            poster
                .request(Method::POST, url.as_str())
                .header(CONTENT_TYPE, CONTENT)
                .header(AUTHORIZATION, authorization.as_str())
                .body(body.clone())
        })
        .await?;
    Ok(())
}

/// `SharedAccessSignature sr=<resource>&sig=<signature>&se=<expiry>&skn=<key name>`:
/// HMAC-SHA256 with the key of the URL-encoded resource URI, a newline and
/// the expiry (seconds since the epoch), as Azure documents.
pub(crate) fn sas_token(resource: &str, key_name: &str, key: &str, expiry: i64) -> String {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let resource = encode(resource);
    let signed = format!("{resource}\n{expiry}");
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let signature = match <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(signed.as_bytes());
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!(
        "SharedAccessSignature sr={resource}&sig={}&se={expiry}&skn={}",
        encode(&signature),
        encode(key_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(address: &str, token: Option<&str>, channel: Option<&str>) -> Target {
        Target {
            address: address.to_string(),
            token: token.map(str::to_string),
            channel: channel.map(str::to_string),
            ..Target::default()
        }
    }

    #[test]
    fn jwt_mode_targets_the_namespace_host() {
        let Hub::Jwt { hub_url, token } =
            hub(&target("flux-events", Some("eyJ"), Some("my-ns"))).unwrap()
        else {
            panic!("expected JWT mode")
        };
        assert_eq!(
            hub_url.as_str(),
            "https://my-ns.servicebus.windows.net/flux-events/"
        );
        assert_eq!(token, "eyJ");
        let Hub::Jwt { hub_url, .. } = hub(&target(
            "hub",
            Some("t"),
            Some("ns.servicebus.chinacloudapi.cn"),
        ))
        .unwrap() else {
            panic!("expected JWT mode")
        };
        assert_eq!(
            hub_url.as_str(),
            "https://ns.servicebus.chinacloudapi.cn/hub/"
        );
    }

    #[test]
    fn configurations_flux_refuses_or_ferroflux_cannot_serve() {
        let sas = "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=k;EntityPath=hub";
        assert!(matches!(
            hub(&target(sas, Some("t"), None)),
            Err(NotifyError::InvalidConfig(_))
        ));
        assert!(matches!(
            hub(&target("hub", None, Some("ns"))),
            Err(NotifyError::Unsupported(_))
        ));
        assert!(matches!(
            hub(&target("hub", Some("t"), None)),
            Err(NotifyError::InvalidConfig(_))
        ));
        let no_entity =
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=k";
        let err = hub(&target(no_entity, None, None)).err().unwrap();
        assert!(err.to_string().contains("EntityPath"), "{err}");
    }

    #[test]
    fn sas_token_matches_azure_documentation_shape() {
        let token = sas_token(
            "https://ns.servicebus.windows.net/hub",
            "send",
            "key",
            1_700_000_000,
        );
        assert!(token.starts_with(
            "SharedAccessSignature sr=https%3A%2F%2Fns.servicebus.windows.net%2Fhub&sig="
        ));
        assert!(token.ends_with("&se=1700000000&skn=send"));
    }
}
