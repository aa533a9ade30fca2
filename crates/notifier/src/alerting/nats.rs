//! `nats`: the event's JSON (Flux's wire format) published to a NATS subject.
//!
//! As Flux: the address is the server URL (`nats://host:4222`, several
//! separated by commas), spec.channel the subject, the Secret's username and
//! password (both set) the user credentials; each event opens a connection
//! named `NATS Provider Publisher`, publishes, flushes and closes, and an
//! error the server reports for the publish (a permissions violation) fails
//! the post. Beyond Flux: the Provider's CA and client certificate
//! (certSecretRef) are used when the server asks for TLS, and spec.timeout
//! bounds the whole exchange. An HTTP proxy cannot carry NATS, so a proxy is
//! refused rather than ignored.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::{ConnectOptions, ServerAddr};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;

use super::{ADDRESS_FIELD, non_empty, require_channel, to_json};
use crate::{DEFAULT_TIMEOUT, Event, NotifyError, Target, Transport};

/// The connection name Flux's NATS provider uses.
const CONNECTION_NAME: &str = "NATS Provider Publisher";
/// The server's answer to a PING.
const PONG: &str = "PONG\r\n";
/// How long to wait, after closing, for the server's last words (its errors).
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// The servers of the address, parsed.
fn servers(target: &Target) -> Result<Vec<ServerAddr>, NotifyError> {
    let address = target.address.trim();
    if address.is_empty() {
        return Err(NotifyError::InvalidConfig(format!(
            "nats needs an {ADDRESS_FIELD}: the server URL, e.g. nats://nats.nats-system:4222"
        )));
    }
    address
        .split(',')
        .map(|server| {
            ServerAddr::from_str(server.trim()).map_err(|e| {
                NotifyError::InvalidConfig(format!(
                    "nats: the {ADDRESS_FIELD} is not a NATS server URL: {e}"
                ))
            })
        })
        .collect()
}

pub(super) fn validate(target: &Target, transport: &Transport) -> Result<(), NotifyError> {
    servers(target)?;
    require_channel(target, "nats", "the subject to publish to")?;
    if transport.proxy.is_some() {
        return Err(NotifyError::InvalidConfig(
            "nats: spec.proxy / spec.proxySecretRef cannot be used: NATS connections do not go through an HTTP proxy"
                .to_string(),
        ));
    }
    tls_config(transport)?;
    Ok(())
}

/// A TLS client configuration trusting the system roots and the Provider's
/// CA, presenting its client certificate: only when certSecretRef gave one.
fn tls_config(transport: &Transport) -> Result<Option<rustls::ClientConfig>, NotifyError> {
    if transport.ca_pem.is_none() && transport.client_identity_pem.is_none() {
        return Ok(None);
    }
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        NotifyError::InvalidConfig(format!("nats: {what}: {e}"))
    };
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as every TLS client does.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(ca) = &transport.ca_pem {
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| invalid("ca.crt", &e))?;
            roots.add(cert).map_err(|e| invalid("ca.crt", &e))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS", &e))?
        .with_root_certificates(roots);
    let config = match &transport.client_identity_pem {
        Some(pem) => {
            let certs = CertificateDer::pem_slice_iter(pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid("tls.crt", &e))?;
            let key = PrivateKeyDer::from_pem_slice(pem).map_err(|e| invalid("tls.key", &e))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| invalid("tls.crt/tls.key", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Some(config))
}

pub(super) async fn post(
    target: &Target,
    transport: &Transport,
    event: &Event,
) -> Result<(), NotifyError> {
    let servers = servers(target)?;
    let subject = require_channel(target, "nats", "the subject")?.to_string();
    let payload = to_json(event)?;
    let timeout = transport.timeout.unwrap_or(DEFAULT_TIMEOUT);
    // The servers without credentials, for error messages.
    let shown = servers
        .iter()
        .map(|s| format!("nats://{}:{}", s.host(), s.port()))
        .collect::<Vec<_>>()
        .join(",");
    let failed = |message: String| NotifyError::Transport {
        method: "PUBLISH".to_string(),
        url: format!("{shown} subject {subject}"),
        message,
    };

    let (events_tx, mut events_rx) = mpsc::unbounded_channel();
    let mut options = ConnectOptions::new()
        .name(CONNECTION_NAME)
        .connection_timeout(timeout)
        .event_callback(move |event| {
            let events_tx = events_tx.clone();
            async move {
                let _ = events_tx.send(event);
            }
        });
    if let (Some(user), Some(password)) = (
        non_empty(target.username.as_deref()),
        non_empty(target.password.as_deref()),
    ) {
        options = options.user_and_password(user.to_string(), password.to_string());
    }
    if let Some(tls) = tls_config(transport)? {
        options = options.tls_client_config(tls);
    }

    // A throwaway subscription whose drain sends a PING: the server answers
    // ops in order, so once its PONG is read any -ERR about the publish has
    // been read too (Flux's client does the same round trip in Flush).
    let probe_subject = format!(
        "_INBOX.ferroflux.{}",
        hex::encode(rand::random::<[u8; 8]>())
    );
    let exchange = async {
        let client = options
            .connect(servers)
            .await
            .map_err(|e| failed(format!("connecting: {e}")))?;
        client
            .publish(subject.clone(), payload.into())
            .await
            .map_err(|e| failed(format!("publishing: {e}")))?;
        let mut probe = client
            .subscribe(probe_subject.clone())
            .await
            .map_err(|e| failed(format!("subscribing the flush probe: {e}")))?;
        let statistics = client.statistics();
        let read_before = statistics.in_bytes.load(Ordering::Relaxed);
        probe
            .drain()
            .await
            .map_err(|e| failed(format!("flushing: {e}")))?;
        client
            .flush()
            .await
            .map_err(|e| failed(format!("flushing: {e}")))?;
        while statistics.in_bytes.load(Ordering::Relaxed) < read_before + PONG.len() as u64 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client
            .drain()
            .await
            .map_err(|e| failed(format!("closing: {e}")))?;
        Ok::<(), NotifyError>(())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result?,
        Err(_) => return Err(failed(format!("no answer within {timeout:?}"))),
    }

    // Events arrive in order: a server error about the publish comes before
    // the connection's `Closed`.
    let mut server_errors = Vec::new();
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(event) = events_rx.recv().await {
            match event {
                // The probe's own errors (a user not allowed to subscribe) are no failure.
                async_nats::Event::ServerError(err)
                    if !err.to_string().contains(&probe_subject) =>
                {
                    server_errors.push(err.to_string())
                }
                async_nats::Event::Closed => break,
                _ => {}
            }
        }
    })
    .await;
    if !server_errors.is_empty() {
        return Err(failed(format!(
            "the server refused: {}",
            server_errors.join("; ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_are_comma_separated_urls() {
        let target = |address: &str| Target {
            address: address.to_string(),
            ..Target::default()
        };
        assert_eq!(
            servers(&target("nats://a:4222, nats://b:4223"))
                .unwrap()
                .len(),
            2
        );
        assert!(matches!(
            servers(&target("")),
            Err(NotifyError::InvalidConfig(_))
        ));
        assert!(matches!(
            servers(&target("http://a:4222")),
            Err(NotifyError::InvalidConfig(_))
        ));
    }
}
