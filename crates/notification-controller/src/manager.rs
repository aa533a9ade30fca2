//! The process: the Receiver controller on the shared harness, reflector
//! stores of Alerts, Providers and Receivers (kept on every replica, leading
//! or not, as Flux's cache is), the event server on `--events-addr` and the
//! Receiver webhook server on `--receiverAddr`, both stopped with the
//! manager's shutdown token.

use std::net::SocketAddr;
use std::sync::Arc;

use api::notification::{Alert, Provider, Receiver};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};
use runtime::manager::{Manager, Related};
use runtime::metrics::Metrics;
use runtime::options::parse_listen_addr;
use runtime::reconcile::ReconcileTrigger;
use runtime::watch_backoff::WatchBackoff;
use tokio::net::TcpListener;
use tracing::{error, warn};

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context};
use crate::dispatch::Dispatcher;
use crate::event_server::EventServer;
use crate::metrics::EventMetrics;
use crate::options::{FEATURE_GATES, Flags};
use crate::receiver;
use crate::receiver_server::ReceiverServer;

/// Runs until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    flags.common.feature_gates(FEATURE_GATES)?;
    flags.check_supported().map_err(Error::Flag)?;
    let events_addr = parse_listen_addr(flags.events_addr())?;
    let receiver_addr = parse_listen_addr(&flags.receiver_addr)?;
    let metrics = Metrics::new();
    let event_metrics = EventMetrics::register(&metrics);
    let mut manager = Manager::new(CONTROLLER_NAME, &flags, metrics).await?;
    let events_listener = bind(events_addr).await?;
    let receiver_listener = bind(receiver_addr).await?;
    let client = manager.client().clone();
    let no_cross_namespace_refs = flags.common.no_cross_namespace_refs;

    let ctx = Arc::new(Context::new(
        client.clone(),
        flags.common.interval_jitter_percentage,
    ));
    let receivers = manager
        .controller::<Receiver>(ReconcileTrigger::default())
        // A new token is a new webhook path.
        .watches(
            Related::<Secret>::labelled(&flags.watch_configs_label_selector),
            |secret, store| receiver::users_of_secret(secret, &store.state()),
        )
        .run(receiver::reconcile, ctx);
    manager.add(receivers);

    let mut watch_config = watcher::Config::default().any_semantic();
    if !flags.common.watch_label_selector.is_empty() {
        watch_config = watch_config.labels(&flags.common.watch_label_selector);
    }
    let (alerts, writer) = reflector::store::<Alert>();
    manager.spawn(reflect(
        manager.api::<Alert>(),
        watch_config.clone(),
        writer,
    ));
    let (providers, writer) = reflector::store::<Provider>();
    manager.spawn(reflect(
        manager.api::<Provider>(),
        watch_config.clone(),
        writer,
    ));
    let (receiver_store, writer) = reflector::store::<Receiver>();
    manager.spawn(reflect(manager.api::<Receiver>(), watch_config, writer));

    let dispatcher = Arc::new(Dispatcher::new(
        client.clone(),
        runtime::events::EventRecorder::new(client.clone(), CONTROLLER_NAME),
        alerts,
        providers,
        event_metrics.clone(),
        no_cross_namespace_refs,
    ));
    let events = EventServer::new(
        dispatcher,
        event_metrics,
        flags.rate_limit_interval,
        flags.export_http_path_metrics,
    );
    let shutdown = manager.shutdown_token();
    manager.spawn(async move {
        if let Err(err) = events.serve(events_listener, shutdown).await {
            error!(error = %err, "event server failed");
        }
    });
    let webhooks = ReceiverServer::new(
        client,
        receiver_store,
        manager.metrics(),
        no_cross_namespace_refs,
    )
    .with_path_metrics(flags.export_http_path_metrics);
    let shutdown = manager.shutdown_token();
    manager.spawn(async move {
        if let Err(err) = webhooks.serve(receiver_listener, shutdown).await {
            error!(error = %err, "receiver server failed");
        }
    });

    manager.run().await?;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Runtime(runtime::Error::Bind { addr, source }))
}

/// Keeps `writer`'s store in sync with the objects of `api`.
async fn reflect<K>(api: Api<K>, config: watcher::Config, writer: Writer<K>)
where
    K: runtime::manager::Object + serde::Serialize,
{
    watcher(api, config)
        .backoff(WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .for_each(|result| {
            if let Err(err) = result {
                warn!(kind = %<K as kube::Resource>::kind(&()), error = %err, "watch failed; retrying");
            }
            futures::future::ready(())
        })
        .await;
}
