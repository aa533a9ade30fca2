//! The Kustomization reconciler. One pass reads top to bottom:
//! source status → dependencies → download the artifact → build (generate,
//! kustomize, decrypt, substitute) → apply in stages after a dry-run →
//! prune → health → status, with Flux's conditions, reasons, messages,
//! events and requeue rules. Failures end the pass with `Ready=False` and a
//! retry after `retryInterval`; only infrastructure errors (writing status,
//! the finalizer) are returned to the controller.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api::kustomize::{DeletionPolicy, Kustomization, KustomizationStatus};
use api::meta::{
    ConditionStatus, ConfigKind, FINALIZER, ResourceInventory, condition_type, reason,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::Action;
use kube::{Client, ResourceExt};
use runtime::ssa::health::HealthOptions;
use runtime::ssa::inventory::{merge_into, stale_objects};
use runtime::ssa::{ApplyOptions, ChangeSet, Engine, ObjectRef, Owner, Status as HealthStatus};
use runtime::status::{Conclusion, StatusSession};
use serde_json::{Map, Value};
use tracing::{debug, info, warn};

use crate::Error;
use crate::build::{BuildInput, build};
use crate::context::{CONTROLLER_NAME, Context};
use crate::decrypt::Decryptor;
use crate::dependencies;
use crate::history;
use crate::postbuild::Variables;
use crate::source::{self, SourceError};

/// Kind name used in metrics and logs.
const KIND: &str = "Kustomization";

/// Go's `time.Duration.String()` (`1m30s`, `1.5s`, `250ms`), which Flux's
/// messages use.
fn go_duration(duration: Duration) -> api::Duration {
    api::Duration::from_std(duration)
}

/// `spec.interval`, falling back to 10 minutes when unparsable (the CRD
/// validates the pattern, so that does not happen on a real API server).
fn interval(ks: &Kustomization) -> Duration {
    ks.spec
        .interval
        .to_std()
        .unwrap_or(Duration::from_secs(600))
}

/// `spec.retryInterval`, else `spec.interval`.
fn retry_interval(ks: &Kustomization) -> Duration {
    ks.spec
        .retry_interval
        .as_ref()
        .and_then(|d| d.to_std().ok())
        .unwrap_or_else(|| interval(ks))
}

/// Flux's `GetTimeout`: `spec.timeout`, else interval − 30s; never under 30s.
fn timeout(ks: &Kustomization) -> Duration {
    let floor = Duration::from_secs(30);
    ks.spec
        .timeout
        .as_ref()
        .and_then(|d| d.to_std().ok())
        .unwrap_or_else(|| interval(ks).saturating_sub(floor))
        .max(floor)
}

/// How an attempt ended, for requeueing and metrics.
enum Next {
    /// Success: come back after the (jittered) interval.
    Interval,
    /// Failure: retry after `retryInterval`.
    Retry,
    /// A dependency is not ready: retry after `--requeue-dependency`.
    Dependency,
    /// Nothing will change until the spec does.
    Wait,
}

/// One reconciliation attempt of one Kustomization.
struct Attempt<'a> {
    ctx: &'a Context,
    obj: &'a Kustomization,
    name: String,
    namespace: String,
    /// The status being built and the writes.
    session: StatusSession<Kustomization>,
}

impl<'a> Attempt<'a> {
    fn new(obj: &'a Kustomization, ctx: &'a Context) -> Self {
        let namespace = obj.namespace().unwrap_or_default();
        let api = Api::namespaced(ctx.client.clone(), &namespace);
        Attempt {
            ctx,
            obj,
            name: obj.name_any(),
            namespace,
            session: StatusSession::begin(obj, api, CONTROLLER_NAME),
        }
    }

    /// Writes the status so far (only what changed).
    async fn patch(&mut self) -> Result<(), Error> {
        self.session.patch().await?;
        Ok(())
    }

    fn progressing(&mut self, message: String) {
        self.session.conditions.delete(condition_type::STALLED);
        self.session.conditions.mark_true(
            condition_type::RECONCILING,
            reason::PROGRESSING,
            message.clone(),
        );
        self.session
            .conditions
            .mark_unknown(condition_type::READY, reason::PROGRESSING, message);
    }

    fn fail(&mut self, why: &str, message: impl Into<String>) {
        self.session
            .conditions
            .mark_false(condition_type::READY, why, message);
    }

    /// An event as Flux sends it: the reason is the Ready reason once Ready
    /// is decided, the severity otherwise.
    async fn event(&self, error: bool, message: &str) {
        let reason = match self.session.conditions.get(condition_type::READY) {
            Some(ready) if ConditionStatus::of(&ready.status) != ConditionStatus::Unknown => {
                ready.reason.clone()
            }
            _ => if error { "error" } else { "info" }.to_string(),
        };
        if error {
            self.ctx.recorder.warning(self.obj, &reason, message).await;
        } else {
            self.ctx.recorder.normal(self.obj, &reason, message).await;
        }
    }

    /// The decryption keys, when `spec.decryption` is set.
    async fn decryptor(&self) -> Result<Option<Decryptor>, String> {
        let Some(decryption) = &self.obj.spec.decryption else {
            return Ok(None);
        };
        let (namespace, name, global) =
            match (&decryption.secret_ref, &self.ctx.settings.sops_age_secret) {
                (Some(secret), _) => (self.namespace.clone(), secret.name.clone(), false),
                (None, Some((namespace, name))) => (namespace.clone(), name.clone(), true),
                (None, None) => return Ok(Some(Decryptor::new(sops::Keyring::new()))),
            };
        let api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), &namespace);
        let secret = api.get(&name).await.map_err(|err| {
            format!(
                "cannot get sops decryption Secret '{namespace}/{name}': {}",
                api_message(&err)
            )
        })?;
        let mut keys = sops::Keyring::new();
        let data = secret.data.unwrap_or_default();
        let entries = data
            .iter()
            // The global Secret provides age keys only (Flux's rule).
            .filter(|(key, _)| !global || key.ends_with(sops::AGE_KEY_SUFFIX))
            .map(|(key, value)| (key.as_str(), value.0.as_slice()));
        keys.import_secret_data(entries).map_err(|err| {
            format!("failed to import keys from sops decryption Secret '{namespace}/{name}': {err}")
        })?;
        Ok(Some(Decryptor::new(keys)))
    }

    /// The post-build variables, when `spec.postBuild` is set.
    async fn variables(&self) -> Result<Option<Variables>, String> {
        let Some(post_build) = &self.obj.spec.post_build else {
            return Ok(None);
        };
        let mut variables = Variables::new();
        for reference in post_build.substitute_from.as_deref().unwrap_or_default() {
            let optional = reference.optional.unwrap_or(false);
            let name = reference.name.as_str();
            let kind = match reference.kind {
                ConfigKind::ConfigMap => "ConfigMap",
                ConfigKind::Secret => "Secret",
            };
            let found = self.config_data(reference.kind, name).await;
            match found {
                Ok(Some(data)) => {
                    variables.extend(data.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                }
                Ok(None) if optional => {}
                Ok(None) => {
                    return Err(format!(
                        "substitute from '{kind}/{name}' error: {}s \"{name}\" not found",
                        kind.to_lowercase()
                    ));
                }
                Err(err) => {
                    return Err(format!(
                        "substitute from '{kind}/{name}' error: {}",
                        api_message(&err)
                    ));
                }
            }
        }
        if let Some(inline) = &post_build.substitute {
            variables.extend(inline.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        Ok(Some(variables))
    }

    /// The data of a ConfigMap, or the decoded data of a Secret, in the
    /// Kustomization's namespace; `None` when it does not exist.
    async fn config_data(
        &self,
        kind: ConfigKind,
        name: &str,
    ) -> Result<Option<BTreeMap<String, String>>, kube::Error> {
        runtime::config_data::read(&self.ctx.client, &self.namespace, kind, name).await
    }

    fn engine(&self, client: Client) -> Engine {
        let settings = &self.ctx.settings;
        let options = ApplyOptions {
            force: self.obj.spec.force.unwrap_or(false),
            concurrency: settings.concurrent_ssa.max(1),
            custom_stage_kinds: settings.custom_stage_kinds.clone(),
            ignore: self.obj.spec.ignore.clone().unwrap_or_default(),
            override_managers: settings.override_managers.clone(),
            ..ApplyOptions::default()
        };
        Engine::with_resolver(
            client,
            Owner::kustomization(&self.name, &self.namespace),
            options,
            self.ctx.resolver.clone(),
        )
    }

    /// The objects whose health decides readiness: every applied object with
    /// `wait`, else the `healthChecks` list.
    fn health_targets(&self, change_set: &ChangeSet) -> Vec<ObjectRef> {
        let is_self =
            |o: &ObjectRef| o.kind == KIND && o.name == self.name && o.namespace == self.namespace;
        if self.obj.spec.wait == Some(true) {
            return change_set
                .applied()
                .into_iter()
                .filter(|o| !is_self(o))
                .collect();
        }
        let applied = change_set.applied();
        self.obj
            .spec
            .health_checks
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter_map(|check| {
                let namespace = check.namespace.clone().unwrap_or_default();
                let (group, version) = match check.api_version.as_deref() {
                    Some(api_version) => match api_version.rsplit_once('/') {
                        Some((group, version)) => (group.to_owned(), version.to_owned()),
                        None => (String::new(), api_version.to_owned()),
                    },
                    // Without apiVersion, the applied object of that kind tells.
                    None => applied
                        .iter()
                        .find(|o| {
                            o.kind == check.kind && o.name == check.name && o.namespace == namespace
                        })
                        .map(|o| (o.group.clone(), o.version.clone()))?,
                };
                Some(ObjectRef {
                    group,
                    version,
                    kind: check.kind.clone(),
                    namespace,
                    name: check.name.clone(),
                })
            })
            .filter(|o| !is_self(o))
            .collect()
    }

    /// The pass itself.
    async fn run(&mut self) -> Result<Next, Error> {
        let started = Instant::now();
        let ctx = self.ctx;
        let obj = self.obj;

        let source = match source::get(&ctx.client, obj, ctx.settings.no_cross_namespace_refs).await
        {
            Ok(source) => source,
            Err(err @ SourceError::AccessDenied { .. }) => {
                let message = err.to_string();
                self.session
                    .conditions
                    .mark_stalled(reason::ACCESS_DENIED, message.clone());
                self.event(true, &message).await;
                return Ok(Next::Wait);
            }
            Err(err @ SourceError::Unsupported { .. }) => {
                self.session
                    .conditions
                    .mark_stalled(reason::ARTIFACT_FAILED, err.to_string());
                return Ok(Next::Wait);
            }
            Err(err) => {
                info!(kustomization = %self.name, namespace = %self.namespace, error = %err, "source unavailable");
                self.fail(reason::ARTIFACT_FAILED, err.to_string());
                return Ok(Next::Retry);
            }
        };
        let Some(artifact) = source.artifact.clone() else {
            let message = format!(
                "Source artifact not found, retrying in {}",
                go_duration(retry_interval(obj))
            );
            self.fail(reason::ARTIFACT_FAILED, message);
            return Ok(Next::Retry);
        };
        let revision = artifact.revision.clone();
        let origin_revision = source.origin_revision();

        if !obj
            .spec
            .depends_on
            .as_deref()
            .unwrap_or_default()
            .is_empty()
            && let Err(err) = dependencies::check(&ctx.client, obj, &revision).await
        {
            if err.is_terminal() {
                self.session
                    .conditions
                    .mark_stalled(reason::INVALID_CEL_EXPRESSION, err.to_string());
                return Ok(Next::Wait);
            }
            self.fail(reason::DEPENDENCY_NOT_READY, err.to_string());
            let message = format!(
                "Dependencies do not meet ready condition, retrying in {}",
                go_duration(ctx.settings.requeue_dependency)
            );
            info!(kustomization = %self.name, namespace = %self.namespace, "{message}");
            self.event(false, &message).await;
            return Ok(Next::Dependency);
        }

        self.session.status.last_attempted_revision = Some(revision.clone());
        let timeout = timeout(obj);
        self.progressing(format!(
            "Fetching manifests for revision {revision} with a timeout of {}",
            go_duration(timeout)
        ));
        self.patch().await?;

        // Download, verify and unpack into a private directory.
        let workdir = tempfile::Builder::new()
            .prefix("kustomization-")
            .tempdir()
            .map_err(|source| Error::Io {
                context: "cannot create a working directory".into(),
                source,
            })?;
        let unpacked = ctx
            .fetcher
            .fetch_and_unpack(
                &artifact.url,
                &artifact.digest,
                workdir.path(),
                runtime::artifact::UntarOptions {
                    max_size: None,
                    skip_symlinks: false,
                },
            )
            .await;
        if let Err(err) = unpacked {
            let message = match &err {
                runtime::artifact::Error::Status { status: 404, .. } => format!(
                    "Source is not ready, artifact not found, retrying in {}",
                    go_duration(retry_interval(obj))
                ),
                other => other.to_string(),
            };
            self.fail(reason::ARTIFACT_FAILED, message.clone());
            self.event(true, &message).await;
            return Ok(Next::Retry);
        }
        let root = workdir.path().canonicalize().map_err(|source| Error::Io {
            context: "cannot resolve the working directory".into(),
            source,
        })?;

        // Build.
        let decryptor = match self.decryptor().await {
            Ok(decryptor) => decryptor,
            Err(message) => return self.build_failed(reason::BUILD_FAILED, message).await,
        };
        let variables = match self.variables().await {
            Ok(variables) => variables,
            Err(message) => {
                return self
                    .build_failed(
                        reason::BUILD_FAILED,
                        format!("post build failed: {message}"),
                    )
                    .await;
            }
        };
        let spec = obj.spec.clone();
        let strict = ctx.settings.strict_substitution;
        let built = tokio::task::spawn_blocking(move || {
            build(&BuildInput {
                root: &root,
                spec: &spec,
                decryptor: decryptor.as_ref(),
                variables: variables.as_ref(),
                strict_substitution: strict,
            })
        })
        .await
        .map_err(|err| Error::Task(err.to_string()))?;
        drop(workdir);
        let objects = match built {
            Ok(objects) => objects,
            Err(err) => return self.build_failed(err.reason(), err.to_string()).await,
        };
        let checksum = manifests_digest(&objects);
        let dynamic = match objects
            .into_iter()
            .map(|object| serde_json::from_value::<DynamicObject>(Value::Object(object)))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(dynamic) => dynamic,
            Err(err) => {
                return self
                    .build_failed(reason::BUILD_FAILED, format!("invalid object: {err}"))
                    .await;
            }
        };
        let mut snapshot_metadata = BTreeMap::from([("revision".to_owned(), revision.clone())]);
        if let Some(origin) = &origin_revision {
            snapshot_metadata.insert("originRevision".to_owned(), origin.clone());
        }
        let record = |status: &mut KustomizationStatus, outcome: &str| {
            let history = status.history.get_or_insert_with(Vec::new);
            history::upsert(
                history,
                &checksum,
                k8s_openapi::jiff::Timestamp::now(),
                started.elapsed(),
                outcome,
                snapshot_metadata.clone(),
            );
        };

        // Apply, as the Kustomization's service account when it has one.
        let client = match ctx.apply_client(obj) {
            Ok(client) => client,
            Err(err) => {
                let message = format!("failed to build the impersonating client: {err}");
                self.fail(reason::RECONCILIATION_FAILED, message.clone());
                self.event(true, &message).await;
                return Ok(Next::Retry);
            }
        };
        let engine = self.engine(client);
        let change_set = match engine.apply_staged(dynamic).await {
            Ok(change_set) => change_set,
            Err(err) => {
                record(&mut self.session.status, reason::RECONCILIATION_FAILED);
                let message = err.to_string();
                self.fail(reason::RECONCILIATION_FAILED, message.clone());
                self.event(true, &message).await;
                return Ok(Next::Retry);
            }
        };
        if change_set.has_changes() {
            let summary = change_set.summary();
            info!(kustomization = %self.name, namespace = %self.namespace, %revision, changes = %summary, "server-side apply completed");
            self.event(false, &summary).await;
        } else {
            debug!(kustomization = %self.name, namespace = %self.namespace, %revision, "server-side apply: no changes");
        }

        // Inventory and garbage collection.
        let old_inventory = self.session.status.inventory.clone().unwrap_or_default();
        let mut inventory = change_set.to_inventory();
        if obj.spec.prune {
            let stale = stale_objects(&old_inventory, &inventory).unwrap_or_else(|err| {
                warn!(error = %err, "ignoring invalid entries of the previous inventory");
                Vec::new()
            });
            if !stale.is_empty() {
                let pruned = engine.prune(&stale).await;
                if !pruned.deleted.is_empty() {
                    self.event(false, &pruned.summary()).await;
                }
                if !pruned.failed.is_empty() {
                    merge_into(&mut inventory, &pruned.failed_objects());
                    self.session.status.inventory = Some(inventory);
                    record(&mut self.session.status, reason::PRUNE_FAILED);
                    let message = pruned
                        .failed
                        .iter()
                        .map(|(object, why)| format!("{object} {why}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    self.fail(reason::PRUNE_FAILED, message.clone());
                    self.event(true, &message).await;
                    return Ok(Next::Retry);
                }
            }
        }
        self.session.status.inventory = Some(inventory);

        // Health.
        let targets = self.health_targets(&change_set);
        if targets.is_empty() {
            self.session.conditions.delete(condition_type::HEALTHY);
        } else {
            let was_healthy = self.session.conditions.is_true(condition_type::HEALTHY);
            let message = format!(
                "Running health checks for revision {revision} with a timeout of {}",
                go_duration(timeout)
            );
            self.progressing(message.clone());
            self.session.conditions.mark_unknown(
                condition_type::HEALTHY,
                reason::PROGRESSING,
                message,
            );
            self.patch().await?;
            let checked = Instant::now();
            let options = HealthOptions {
                timeout,
                poll_interval: ctx.settings.health_poll_interval,
                fail_fast: ctx.settings.fail_fast,
                checks: obj.spec.health_check_exprs.clone().unwrap_or_default(),
            };
            if let Err(err) = engine.wait_for_health_with(&targets, &options).await {
                let why = match err {
                    runtime::ssa::Error::InvalidExpression { .. } => reason::INVALID_CEL_EXPRESSION,
                    _ => reason::HEALTH_CHECK_FAILED,
                };
                record(&mut self.session.status, reason::HEALTH_CHECK_FAILED);
                let message = err.to_string();
                self.session
                    .conditions
                    .mark_false(condition_type::HEALTHY, why, message.clone());
                if why == reason::INVALID_CEL_EXPRESSION {
                    self.session.conditions.mark_stalled(why, message.clone());
                    self.event(true, &message).await;
                    return Ok(Next::Wait);
                }
                self.fail(why, message.clone());
                self.event(true, &message).await;
                return Ok(Next::Retry);
            }
            let message = format!("Health check passed in {}", go_duration(checked.elapsed()));
            self.session.conditions.mark_true(
                condition_type::HEALTHY,
                reason::SUCCEEDED,
                message.clone(),
            );
            if !was_healthy {
                self.event(false, &message).await;
            }
        }

        let new_revision =
            self.session.status.last_applied_revision.as_deref() != Some(revision.as_str());
        let was_ready = self.session.conditions.is_true(condition_type::READY);
        self.session.status.last_applied_revision = Some(revision.clone());
        self.session.status.last_applied_origin_revision = origin_revision;
        self.session.conditions.mark_ready(
            reason::RECONCILIATION_SUCCEEDED,
            format!("Applied revision: {revision}"),
        );
        record(&mut self.session.status, reason::RECONCILIATION_SUCCEEDED);
        let message = format!(
            "Reconciliation finished in {}, next run in {}",
            go_duration(started.elapsed()),
            go_duration(interval(obj))
        );
        info!(kustomization = %self.name, namespace = %self.namespace, %revision, "{message}");
        // Repeated no-op passes (drift checks) do not add events.
        if new_revision || change_set.has_changes() || !was_ready {
            self.event(false, &message).await;
        }
        Ok(Next::Interval)
    }

    async fn build_failed(&mut self, why: &str, message: String) -> Result<Next, Error> {
        self.fail(why, message.clone());
        self.event(true, &message).await;
        Ok(Next::Retry)
    }
}

/// The digest of the built manifests: what `.status.history` keys states by.
fn manifests_digest(objects: &[Map<String, Value>]) -> String {
    let values: Vec<Value> = objects.iter().cloned().map(Value::Object).collect();
    let yaml = kustomize::yaml::to_yaml_stream(values.iter());
    runtime::artifact::sha256_digest(yaml.as_bytes())
}

/// The API server's message (not kube's debug dump).
fn api_message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

async fn apply(obj: Arc<Kustomization>, ctx: &Context) -> Result<Action, Error> {
    if obj.spec.suspend == Some(true) {
        debug!(kustomization = %obj.name_any(), "reconciliation is suspended for this object");
        return Ok(Action::await_change());
    }
    let mut attempt = Attempt::new(&obj, ctx);
    let next = attempt.run().await;
    attempt.session.conclude(Conclusion::WhenReady);
    let patched = attempt.patch().await;
    let next = next?;
    patched?;
    Ok(match next {
        Next::Interval => Action::requeue(runtime::options::jittered(
            interval(&obj),
            ctx.settings.jitter_percent,
        )),
        Next::Retry => Action::requeue(retry_interval(&obj)),
        Next::Dependency => Action::requeue(ctx.settings.requeue_dependency),
        Next::Wait => Action::await_change(),
    })
}

/// The Kustomization is being deleted: garbage-collect its objects as its
/// `deletionPolicy` says, then let the finalizer go.
async fn cleanup(obj: Arc<Kustomization>, ctx: &Context) -> Result<Action, Error> {
    let policy = obj
        .spec
        .deletion_policy
        .unwrap_or(DeletionPolicy::MirrorPrune);
    let delete = match policy {
        DeletionPolicy::MirrorPrune => obj.spec.prune,
        DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
        DeletionPolicy::Orphan => false,
    };
    let inventory: ResourceInventory = obj
        .status
        .as_ref()
        .and_then(|s| s.inventory.clone())
        .unwrap_or_default();
    if !delete || obj.spec.suspend == Some(true) || inventory.entries.is_empty() {
        return Ok(Action::await_change());
    }
    let attempt = Attempt::new(&obj, ctx);
    let client = match ctx.apply_client(&obj) {
        Ok(client) => client,
        Err(err) => {
            let message = format!("garbage collection skipped: {err}");
            attempt.event(true, &message).await;
            return Ok(Action::await_change());
        }
    };
    let engine = attempt.engine(client);
    let objects = stale_objects(&inventory, &ResourceInventory::default()).unwrap_or_default();
    let pruned = engine.prune(&objects).await;
    if !pruned.deleted.is_empty() {
        attempt.event(false, &pruned.summary()).await;
    }
    for (object, why) in &pruned.failed {
        warn!(%object, %why, "garbage collection failed");
    }
    if policy == DeletionPolicy::WaitForTermination {
        let deadline = Instant::now() + timeout(&obj);
        loop {
            let health = engine.health_of(&pruned.deleted, &[]).await;
            if health.iter().all(|h| h.status == HealthStatus::NotFound) {
                break;
            }
            if Instant::now() >= deadline {
                attempt
                    .event(true, "timeout waiting for the deleted objects to terminate")
                    .await;
                break;
            }
            tokio::time::sleep(ctx.settings.health_poll_interval).await;
        }
    }
    Ok(Action::await_change())
}

/// Reconciles one Kustomization (the harness's entry point): the
/// finalizer added alongside the first pass, the cleanup on deletion.
pub async fn reconcile(obj: Arc<Kustomization>, ctx: Arc<Context>) -> Result<Action, Error> {
    let namespace = obj
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let api: Api<Kustomization> = Api::namespaced(ctx.client.clone(), &namespace);
    let done = runtime::finalizer::reconcile(
        &api,
        FINALIZER,
        obj,
        |obj| apply(obj, &ctx),
        |obj| cleanup(obj, &ctx),
    )
    .await?;
    Ok(done.unwrap_or_else(Action::await_change))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ks(spec: Value) -> Kustomization {
        let mut base = json!({"interval": "10m", "prune": true, "sourceRef": {"kind": "GitRepository", "name": "r"}});
        if let (Some(b), Some(s)) = (base.as_object_mut(), spec.as_object()) {
            b.extend(s.clone());
        }
        serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "k", "namespace": "ns"}, "spec": base,
        }))
        .expect("kustomization")
    }

    #[test]
    fn timeouts_and_intervals_follow_flux_defaults() {
        assert_eq!(timeout(&ks(json!({}))), Duration::from_secs(570));
        assert_eq!(
            timeout(&ks(json!({"interval": "20s"}))),
            Duration::from_secs(30)
        );
        assert_eq!(
            timeout(&ks(json!({"timeout": "2m"}))),
            Duration::from_secs(120)
        );
        assert_eq!(
            timeout(&ks(json!({"timeout": "5s"}))),
            Duration::from_secs(30)
        );
        assert_eq!(retry_interval(&ks(json!({}))), Duration::from_secs(600));
        assert_eq!(
            retry_interval(&ks(json!({"retryInterval": "1m"}))),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn manifest_digests_depend_on_content_only() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        let objects = vec![a.as_object().expect("map").clone()];
        let digest = manifests_digest(&objects);
        assert!(digest.starts_with("sha256:"));
        assert_eq!(digest, manifests_digest(&objects));
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}});
        assert_ne!(
            digest,
            manifests_digest(&[b.as_object().expect("map").clone()])
        );
    }
}
