//! Starts kustomize-controller: admin endpoints, leader election, and the
//! Kustomization controller with its watches, until a signal or the loss of
//! leadership stops it.
//!
//! Besides Kustomizations themselves (new generation, `requestedAt`,
//! finalizer, deletion), three kinds of change trigger a reconcile at once:
//! a source publishing a new artifact revision, and a Kustomization that
//! others depend on becoming ready at a new revision.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use api::kustomize::{Kustomization, KustomizationSourceKind};
use api::meta::{Artifact, FINALIZER, condition_type};
use api::source::{Bucket, GitRepository, OCIRepository};
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{PredicateConfig, WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use runtime::admin::Readiness;
use runtime::artifact::{ArtifactFetcher, DEFAULT_MAX_DOWNLOAD_SIZE};
use runtime::metrics::Metrics;
use serde::de::DeserializeOwned;
use tracing::info;

use crate::Error;
use crate::context::{Context, Settings};
use crate::options::{DISABLE_FAIL_FAST_BEHAVIOR, Flags, STRICT_POST_BUILD_SUBSTITUTIONS};
use crate::reconcile::{error_policy, reconcile};
use crate::source::{kind_name, source_namespace};
use runtime::options::namespaced_or_all;
use runtime::watch_backoff::WatchBackoff;

/// Watch-event filter for Kustomizations: only changes that call for a
/// reconciliation pass (a new generation, a new `requestedAt` token, the
/// finalizer appearing, deletion starting), never status writes.
pub fn needs_reconcile(ks: &Kustomization) -> Option<u64> {
    let meta = ks.meta();
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    runtime::reconcile_request::requested_at(meta).hash(&mut hasher);
    meta.finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
        .hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    Some(hasher.finish())
}

/// Changes when a source publishes another artifact.
fn artifact_changed(artifact: Option<&Artifact>) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    artifact
        .map(|a| (&a.revision, &a.digest, &a.url))
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// Changes when a Kustomization becomes ready (or not) or applies a new revision.
fn readiness_changed(ks: &Kustomization) -> Option<u64> {
    let status = ks.status.as_ref()?;
    let ready = status
        .conditions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.type_ == condition_type::READY)
        .map(|c| c.status.clone());
    let mut hasher = DefaultHasher::new();
    (
        ready,
        &status.last_applied_revision,
        status.observed_generation,
    )
        .hash(&mut hasher);
    Some(hasher.finish())
}

/// The Kustomizations whose source is `kind/namespace/name`.
pub fn users_of_source(
    store: &Store<Kustomization>,
    kind: KustomizationSourceKind,
    namespace: &str,
    name: &str,
) -> Vec<ObjectRef<Kustomization>> {
    store
        .state()
        .iter()
        .filter(|ks| {
            ks.spec.source_ref.kind == kind
                && ks.spec.source_ref.name == name
                && source_namespace(ks) == namespace
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// The Kustomizations that depend on `dependency`.
pub fn dependents_of(
    store: &Store<Kustomization>,
    dependency: &Kustomization,
) -> Vec<ObjectRef<Kustomization>> {
    let name = dependency.name_any();
    let namespace = dependency.namespace().unwrap_or_default();
    store
        .state()
        .iter()
        .filter(|ks| {
            let own = ks.namespace().unwrap_or_default();
            ks.spec
                .depends_on
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|d| {
                    d.name == name
                        && d.namespace
                            .as_deref()
                            .filter(|n| !n.is_empty())
                            .unwrap_or(&own)
                            == namespace
                })
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// A watch of one source kind, passing objects whose artifact changed.
fn source_changes<K>(
    api: Api<K>,
    artifact: fn(&K) -> Option<&Artifact>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    watcher(api, watcher::Config::default().any_semantic())
        .backoff(WatchBackoff::default())
        .applied_objects()
        .predicate_filter(
            move |o: &K| artifact_changed(artifact(o)),
            PredicateConfig::default(),
        )
}

/// `namespace/name` of the `--sops-age-secret` flag.
fn parse_secret_ref(text: &str, default_namespace: &str) -> Option<(String, String)> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    Some(match text.split_once('/') {
        Some((namespace, name)) => (namespace.to_owned(), name.to_owned()),
        None => (default_namespace.to_owned(), text.to_owned()),
    })
}

/// The settings the reconcilers use, from the flags.
pub fn settings(flags: &Flags) -> Settings {
    let runtime_namespace = runtime::options::ControllerOptions::runtime_namespace();
    Settings {
        jitter_percent: flags.common.interval_jitter_percentage,
        requeue_dependency: flags.common.requeue_dependency,
        no_cross_namespace_refs: flags.common.no_cross_namespace_refs,
        default_service_account: Some(flags.default_service_account.clone())
            .filter(|s| !s.is_empty()),
        sops_age_secret: parse_secret_ref(&flags.sops_age_secret, &runtime_namespace),
        concurrent_ssa: usize::from(flags.concurrent_ssa.max(1)),
        override_managers: flags.override_managers.clone(),
        custom_stage_kinds: flags.custom_apply_stage_kinds.clone(),
        strict_substitution: flags.gate(STRICT_POST_BUILD_SUBSTITUTIONS, true),
        fail_fast: !flags.gate(DISABLE_FAIL_FAST_BEHAVIOR, false),
        ..Settings::default()
    }
}

/// Runs the controller until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    let metrics = Arc::new(Metrics::new());
    let readiness = Readiness::default();
    runtime::admin::serve(
        flags.common.metrics_socket()?,
        flags.common.health_socket()?,
        metrics.clone(),
        readiness.clone(),
    )
    .await?;

    let config = kube::Config::infer().await?;
    let client = Client::try_from(config.clone())?;
    let runtime_namespace = runtime::options::ControllerOptions::runtime_namespace();
    let lost_leadership = runtime::leader::leadership(
        client.clone(),
        flags.common.enable_leader_election,
        &runtime_namespace,
        &flags.leader_election_id,
    )
    .await?;

    let fetcher = ArtifactFetcher::new(
        flags.http_timeout,
        flags.http_retry,
        DEFAULT_MAX_DOWNLOAD_SIZE,
    )
    .map_err(runtime::Error::from)?;
    let ctx = Arc::new(Context::new(config, metrics, fetcher, settings(&flags))?);

    let namespace = (!flags.common.watch_all_namespaces).then_some(runtime_namespace.as_str());
    let mut watch_config = watcher::Config::default().any_semantic();
    if !flags.common.watch_label_selector.is_empty() {
        watch_config = watch_config.labels(&flags.common.watch_label_selector);
    }
    let kustomizations: Api<Kustomization> = namespaced_or_all(&client, namespace);
    let (reader, writer) = reflector::store::<Kustomization>();
    let main = watcher(kustomizations.clone(), watch_config.clone())
        .backoff(WatchBackoff::default())
        .reflect(writer)
        .applied_objects()
        .predicate_filter(needs_reconcile, PredicateConfig::default());
    let dependency_changes = watcher(kustomizations, watch_config)
        .backoff(WatchBackoff::default())
        .applied_objects()
        .predicate_filter(readiness_changed, PredicateConfig::default());

    let (git_store, oci_store, bucket_store, dep_store) = (
        reader.clone(),
        reader.clone(),
        reader.clone(),
        reader.clone(),
    );
    let controller = Controller::for_stream(main, reader)
        .with_config(ControllerConfig::default().concurrency(flags.concurrent.max(1)))
        // The controller backs off its merged trigger stream too, on top of
        // each watch's own backoff: with kube's default it stalls every
        // trigger for up to a minute after an apiserver restart.
        .trigger_backoff(WatchBackoff::default())
        .watches_stream(
            source_changes(
                namespaced_or_all::<GitRepository>(&client, namespace),
                |o| o.status.as_ref()?.artifact.as_ref(),
            ),
            move |source| {
                let kind = KustomizationSourceKind::GitRepository;
                users_of_source(
                    &git_store,
                    kind,
                    &source.namespace().unwrap_or_default(),
                    &source.name_any(),
                )
            },
        )
        .watches_stream(
            source_changes(
                namespaced_or_all::<OCIRepository>(&client, namespace),
                |o| o.status.as_ref()?.artifact.as_ref(),
            ),
            move |source| {
                let kind = KustomizationSourceKind::OCIRepository;
                users_of_source(
                    &oci_store,
                    kind,
                    &source.namespace().unwrap_or_default(),
                    &source.name_any(),
                )
            },
        )
        .watches_stream(
            source_changes(namespaced_or_all::<Bucket>(&client, namespace), |o| {
                o.status.as_ref()?.artifact.as_ref()
            }),
            move |source| {
                let kind = KustomizationSourceKind::Bucket;
                users_of_source(
                    &bucket_store,
                    kind,
                    &source.namespace().unwrap_or_default(),
                    &source.name_any(),
                )
            },
        )
        .watches_stream(dependency_changes, move |dependency| {
            dependents_of(&dep_store, &dependency)
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()));

    readiness.set(true);
    info!(
        namespaces = namespace.unwrap_or("*"),
        concurrent = flags.concurrent,
        sources = ?[kind_name(KustomizationSourceKind::GitRepository), kind_name(KustomizationSourceKind::OCIRepository), kind_name(KustomizationSourceKind::Bucket)],
        "starting controller"
    );
    runtime::shutdown::run_until_stopped(controller, lost_leadership, &readiness).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher::Event;
    use serde_json::json;

    use super::*;

    fn ks(name: &str, spec: serde_json::Value) -> Kustomization {
        let mut base = json!({"interval": "5m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "repo"}});
        if let (Some(b), Some(s)) = (base.as_object_mut(), spec.as_object()) {
            b.extend(s.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "apps", "generation": 1}, "spec": base,
        }))
        .expect("kustomization")
    }

    fn store(objects: Vec<Kustomization>) -> Store<Kustomization> {
        let mut writer = Writer::<Kustomization>::default();
        let reader = writer.as_reader();
        writer.apply_watcher_event(&Event::Init);
        for object in objects {
            writer.apply_watcher_event(&Event::InitApply(object));
        }
        writer.apply_watcher_event(&Event::InitDone);
        reader
    }

    #[test]
    fn sources_map_to_their_users() {
        let store = store(vec![
            ks("a", json!({})),
            ks(
                "b",
                json!({"sourceRef": {"kind": "GitRepository", "name": "repo", "namespace": "flux-system"}}),
            ),
            ks(
                "c",
                json!({"sourceRef": {"kind": "OCIRepository", "name": "repo"}}),
            ),
        ]);
        let names = |refs: Vec<ObjectRef<Kustomization>>| {
            refs.into_iter().map(|r| r.name).collect::<Vec<_>>()
        };
        assert_eq!(
            names(users_of_source(
                &store,
                KustomizationSourceKind::GitRepository,
                "apps",
                "repo"
            )),
            ["a"]
        );
        assert_eq!(
            names(users_of_source(
                &store,
                KustomizationSourceKind::GitRepository,
                "flux-system",
                "repo"
            )),
            ["b"]
        );
        assert_eq!(
            names(users_of_source(
                &store,
                KustomizationSourceKind::OCIRepository,
                "apps",
                "repo"
            )),
            ["c"]
        );
    }

    #[test]
    fn dependencies_map_to_their_dependents() {
        let store = store(vec![
            ks("infra", json!({})),
            ks("apps", json!({"dependsOn": [{"name": "infra"}]})),
            ks(
                "other",
                json!({"dependsOn": [{"name": "infra", "namespace": "elsewhere"}]}),
            ),
        ]);
        let refs = dependents_of(&store, &ks("infra", json!({})));
        assert_eq!(
            refs.into_iter().map(|r| r.name).collect::<Vec<_>>(),
            ["apps"]
        );
    }

    #[test]
    fn predicates_ignore_unrelated_changes() {
        let base = ks("a", json!({}));
        let mut with_status = base.clone();
        with_status.status = Some(Default::default());
        assert_eq!(needs_reconcile(&base), needs_reconcile(&with_status));
        let mut newer = base.clone();
        newer.metadata.generation = Some(2);
        assert_ne!(needs_reconcile(&base), needs_reconcile(&newer));
        assert_eq!(readiness_changed(&base), None);
        assert_ne!(artifact_changed(None), artifact_changed(Some(&serde_json::from_value(json!({
            "url": "http://x/a.tar.gz", "path": "a.tar.gz", "revision": "main@sha1:1", "digest": "sha256:1",
            "lastUpdateTime": "2024-01-01T00:00:00Z"})).expect("artifact"))));
    }

    #[test]
    fn secret_references_default_to_the_runtime_namespace() {
        assert_eq!(
            parse_secret_ref("flux-system/sops-age", "x"),
            Some(("flux-system".into(), "sops-age".into()))
        );
        assert_eq!(
            parse_secret_ref("sops-age", "flux"),
            Some(("flux".into(), "sops-age".into()))
        );
        assert_eq!(parse_secret_ref(" ", "flux"), None);
    }
}
