//! kustomize-controller's controller, declared on the shared harness
//! (`runtime::manager`): Kustomizations themselves (new generation,
//! `requestedAt`, deletion), plus two kinds of change that trigger a
//! reconcile at once: a source publishing a new artifact revision, a
//! Kustomization that others depend on becoming ready at a new revision,
//! and a labelled ConfigMap or Secret a Kustomization takes variables or
//! decryption keys from.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use api::kustomize::{Kustomization, KustomizationSourceKind};
use api::meta::{Artifact, ConfigKind, condition_type};
use api::source::{Bucket, ExternalArtifact, GitRepository, OCIRepository};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use runtime::artifact::{ArtifactFetcher, DEFAULT_MAX_DOWNLOAD_SIZE};
use runtime::manager::{Manager, Related};
use runtime::metrics::Metrics;
use runtime::options::{FeatureGate, FeatureGates};
use runtime::reconcile::ReconcileTrigger;

use crate::Error;
use crate::context::{CONTROLLER_NAME, Context, Settings};
use crate::options::{
    DISABLE_FAIL_FAST_BEHAVIOR, EXTERNAL_ARTIFACT, Flags, STRICT_POST_BUILD_SUBSTITUTIONS,
};
use crate::reconcile::reconcile;
use crate::source::source_namespace;

/// Feature gates kustomize-controller knows (Flux's, with their defaults);
/// those ferroflux does not implement accept only their default.
pub const FEATURE_GATES: &[FeatureGate] = &[
    FeatureGate::on(STRICT_POST_BUILD_SUBSTITUTIONS),
    FeatureGate::off(DISABLE_FAIL_FAST_BEHAVIOR),
    // No status poller cache exists to disable or enable: both settings
    // behave alike.
    FeatureGate::on("DisableStatusPollerCache"),
    FeatureGate::fixed("GroupChangeLog", false),
    FeatureGate::fixed("AdditiveCELDependencyCheck", false),
    FeatureGate::off(EXTERNAL_ARTIFACT),
    FeatureGate::fixed("CancelHealthCheckOnNewRevision", false),
    FeatureGate::fixed("DisableConfigWatchers", false),
    FeatureGate::fixed("DirectSourceFetch", false),
    FeatureGate::fixed("MigrateAPIVersion", false),
    FeatureGate::fixed("CacheSecretsAndConfigMaps", false),
    FeatureGate::fixed("ObjectLevelWorkloadIdentity", false),
];

/// Changes when a source publishes another artifact.
fn artifact_changed(artifact: Option<&Artifact>) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    artifact
        .map(|a| (&a.revision, &a.digest, &a.url))
        .hash(&mut hasher);
    Some(hasher.finish())
}

fn git_artifact(source: &GitRepository) -> Option<u64> {
    artifact_changed(source.status.as_ref().and_then(|s| s.artifact.as_ref()))
}

fn oci_artifact(source: &OCIRepository) -> Option<u64> {
    artifact_changed(source.status.as_ref().and_then(|s| s.artifact.as_ref()))
}

fn bucket_artifact(source: &Bucket) -> Option<u64> {
    artifact_changed(source.status.as_ref().and_then(|s| s.artifact.as_ref()))
}

fn external_artifact(source: &ExternalArtifact) -> Option<u64> {
    artifact_changed(source.status.as_ref().and_then(|s| s.artifact.as_ref()))
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

/// The settings the reconcilers use, from the flags and feature gates.
pub fn settings(flags: &Flags, gates: &FeatureGates) -> Settings {
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
        strict_substitution: gates.enabled(STRICT_POST_BUILD_SUBSTITUTIONS),
        no_remote_bases: flags.no_remote_bases,
        allow_external_artifact: gates.enabled(EXTERNAL_ARTIFACT),
        kubeconfig_policy: flags.remote_clusters.policy(),
        fail_fast: !gates.enabled(DISABLE_FAIL_FAST_BEHAVIOR),
        ..Settings::default()
    }
}

/// The Kustomizations using `source` of `kind`.
fn users_of<S: ResourceExt>(
    kind: KustomizationSourceKind,
) -> impl Fn(&S, &Store<Kustomization>) -> Vec<ObjectRef<Kustomization>> {
    move |source, store| {
        users_of_source(
            store,
            kind,
            &source.namespace().unwrap_or_default(),
            &source.name_any(),
        )
    }
}

/// The Kustomizations that take data from the `kind` `object`: variables
/// (`postBuild.substituteFrom`) or, for a Secret, decryption keys.
fn users_of_config(
    store: &Store<Kustomization>,
    kind: ConfigKind,
    object: &impl ResourceExt,
) -> Vec<ObjectRef<Kustomization>> {
    let (namespace, name) = (object.namespace(), object.name_any());
    store
        .state()
        .iter()
        .filter(|ks| ks.namespace() == namespace)
        .filter(|ks| {
            let substitutes = ks
                .spec
                .post_build
                .as_ref()
                .and_then(|p| p.substitute_from.as_deref())
                .unwrap_or_default()
                .iter()
                .any(|r| r.kind == kind && r.name == name);
            let decrypts = kind == ConfigKind::Secret
                && ks
                    .spec
                    .decryption
                    .as_ref()
                    .and_then(|d| d.secret_ref.as_ref())
                    .is_some_and(|s| s.name == name);
            substitutes || decrypts
        })
        .map(|ks| ObjectRef::from_obj(ks.as_ref()))
        .collect()
}

/// Runs the controller until SIGTERM/SIGINT, or until leadership is lost.
pub async fn run(flags: Flags) -> Result<(), Error> {
    let gates = flags.common.feature_gates(FEATURE_GATES)?;
    let mut manager = Manager::new(CONTROLLER_NAME, &flags, Metrics::new()).await?;
    let fetcher = ArtifactFetcher::new(
        flags.http_timeout,
        flags.http_retry,
        DEFAULT_MAX_DOWNLOAD_SIZE,
    )
    .map_err(runtime::Error::from)?;
    let ctx = Arc::new(Context::new(
        manager.client().clone(),
        manager.kube_config().clone(),
        manager.metrics(),
        fetcher,
        manager.event_recorder()?,
        settings(&flags, &gates),
    ));
    let configs = flags.watch_configs_label_selector.as_str();
    let controller = manager
        .controller::<Kustomization>(ReconcileTrigger::default())
        .watches(
            Related::<GitRepository>::all().when_changed(git_artifact),
            users_of(KustomizationSourceKind::GitRepository),
        )
        .watches(
            Related::<OCIRepository>::all().when_changed(oci_artifact),
            users_of(KustomizationSourceKind::OCIRepository),
        )
        .watches(
            Related::<Bucket>::all().when_changed(bucket_artifact),
            users_of(KustomizationSourceKind::Bucket),
        )
        .watches(
            Related::in_scope().when_changed(readiness_changed),
            |dependency, store| dependents_of(store, dependency),
        )
        .watches(Related::<ConfigMap>::labelled(configs), |cm, store| {
            users_of_config(store, ConfigKind::ConfigMap, cm)
        })
        .watches(Related::<Secret>::labelled(configs), |secret, store| {
            users_of_config(store, ConfigKind::Secret, secret)
        });
    // ExternalArtifacts are watched only behind their gate, as in Flux (their
    // CRD may not be installed otherwise).
    let controller = if ctx.settings.allow_external_artifact {
        controller.watches(
            Related::<ExternalArtifact>::all().when_changed(external_artifact),
            users_of(KustomizationSourceKind::ExternalArtifact),
        )
    } else {
        controller
    };
    let controller = controller.run(reconcile, ctx);
    manager.add(controller);
    manager.run().await?;
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
    fn configs_map_to_the_kustomizations_taking_data_from_them() {
        let store = store(vec![
            ks(
                "vars",
                json!({"postBuild": {"substituteFrom": [{"kind": "ConfigMap", "name": "shared"}]}}),
            ),
            ks(
                "keys",
                json!({"decryption": {"provider": "sops", "secretRef": {"name": "shared"}}}),
            ),
            ks("plain", json!({})),
        ]);
        let named = |kind, name: &str| {
            let object = k8s_openapi::api::core::v1::ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(name.into()),
                    namespace: Some("apps".into()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let mut names: Vec<String> = users_of_config(&store, kind, &object)
                .into_iter()
                .map(|r| r.name)
                .collect();
            names.sort();
            names
        };
        assert_eq!(named(ConfigKind::ConfigMap, "shared"), ["vars"]);
        assert_eq!(named(ConfigKind::Secret, "shared"), ["keys"]);
        assert!(named(ConfigKind::ConfigMap, "other").is_empty());
    }

    #[test]
    fn predicates_ignore_unrelated_changes() {
        let base = ks("a", json!({}));
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
