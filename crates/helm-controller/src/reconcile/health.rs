//! `healthCheckExprs`: the wait for a release's objects when CEL
//! expressions judge some of their kinds. Flux gives the expressions to
//! helm's status watcher as custom status readers; the helm CLI cannot take
//! any, so helm waits for hooks only (`actions::wait_of`) and, once it is
//! done, the runtime's health engine — the one kustomize-controller uses —
//! waits for the objects of the revision it wrote: CEL for the kinds the
//! expressions cover, kstatus for the rest, within what is left of the
//! action's timeout. A revision whose objects do not become healthy is marked
//! failed in Helm's storage, as helm marks one whose own wait fails, so the
//! release loop remediates it like any failed action.

use std::time::{Duration, Instant};

use api::meta::CustomHealthCheck;
use kube::api::DynamicObject;
use runtime::ssa::ObjectRef;
use runtime::ssa::health::{CompiledCheck, HealthError, HealthFailure, HealthOptions};

use super::Run;
use super::release::Request;
use crate::Error;
use crate::release::Release;
use crate::state::STATUS_SUPERSEDED;

/// The controller's wait after a helm action.
#[derive(Clone, Debug)]
pub(crate) struct HealthWait {
    /// The action's timeout; what helm took of it is not waited again.
    pub timeout: Duration,
    /// Jobs must complete (helm's `--wait-for-jobs`).
    pub wait_for_jobs: bool,
}

/// Every expression of `checks` compiles; else the error, naming the kind
/// and the expression.
pub(crate) fn compile_all(checks: &[CustomHealthCheck]) -> Result<Vec<CompiledCheck>, Error> {
    Ok(checks
        .iter()
        .map(CompiledCheck::compile)
        .collect::<Result<Vec<_>, _>>()?)
}

/// Whether helm's watcher would leave `object` out of its wait: paused
/// Deployments, and Jobs without `--wait-for-jobs` (kstatus counts a started
/// Job as current there) unless an expression judges them.
fn left_out(
    object: &DynamicObject,
    reference: &ObjectRef,
    wait: &HealthWait,
    checks: &[CompiledCheck],
) -> bool {
    let paused = reference.group == "apps"
        && reference.kind == "Deployment"
        && object.data.pointer("/spec/paused") == Some(&serde_json::Value::Bool(true));
    let job = reference.group == "batch" && reference.kind == "Job";
    paused || (job && !wait.wait_for_jobs && !checks.iter().any(|c| c.matches(reference)))
}

/// A failed wait in helm's words (one line per object), as Flux reports a
/// failed wait of helm's status watcher.
fn in_helm_words(err: &HealthError) -> String {
    let mut lines: Vec<String> = err
        .objects
        .iter()
        .map(|(object, health)| {
            format!(
                "resource {}/{}/{} not ready. status: {}, message: {}",
                object.kind, object.namespace, object.name, health.status, health.message
            )
        })
        .collect();
    if err.failure == HealthFailure::TimedOut {
        lines.push("context deadline exceeded".to_string());
    }
    lines.join("\n")
}

impl Run<'_> {
    /// After a helm action that succeeded: waits for the objects of the
    /// revision it wrote (the newest of `revisions`, if newer than
    /// `before`). When they do not become healthy, the revision is marked
    /// failed with `description` of the cause, `replaced` (the latest
    /// revision before an upgrade, which helm superseded) gets its status
    /// back, as helm leaves it when its own wait fails, `revisions` are
    /// re-read, and the cause is returned as the action's failure.
    #[allow(clippy::too_many_arguments)] // One call per action kind.
    pub(super) async fn await_written_health(
        &mut self,
        req: &Request<'_>,
        before: Option<i64>,
        replaced: Option<Release>,
        revisions: &mut Vec<Release>,
        wait: &HealthWait,
        started: Instant,
        description: impl Fn(&str) -> String,
    ) -> Result<Result<(), String>, Error> {
        let Some(written) = revisions
            .last()
            .filter(|r| before.is_none_or(|v| r.version > v))
            .cloned()
        else {
            return Ok(Ok(()));
        };
        let Some(cause) = self.unhealthy(&written, wait, started).await? else {
            return Ok(Ok(()));
        };
        self.fail_revision(req, written.version, &description(&cause), replaced)
            .await?;
        *revisions = self.observe(req, before).await?;
        Ok(Err(cause))
    }

    /// Waits until the objects of `release` are healthy; why they are not,
    /// in helm's words, when the time left runs out or one fails.
    async fn unhealthy(
        &self,
        release: &Release,
        wait: &HealthWait,
        started: Instant,
    ) -> Result<Option<String>, Error> {
        let checks = self.spec().health_check_exprs.clone().unwrap_or_default();
        let compiled = compile_all(&checks)?;
        let mut targets = Vec::new();
        for object in self.manifest_objects(release).await? {
            let reference = ObjectRef::from_object(&object)?;
            if !left_out(&object, &reference, wait, &compiled) {
                targets.push(reference);
            }
        }
        let options = HealthOptions {
            timeout: wait.timeout.saturating_sub(started.elapsed()),
            checks,
            ..HealthOptions::default()
        };
        // The engine only reads here; its owner and apply options do not
        // matter.
        match self
            .drift_engine()
            .wait_for_health_with(&targets, &options)
            .await
        {
            Ok(()) => Ok(None),
            Err(runtime::ssa::Error::Health(err)) => Ok(Some(in_helm_words(&err))),
            Err(err) => Err(err.into()),
        }
    }

    /// Marks revision `version` of the release failed in Helm's storage,
    /// and gives `replaced` its status back if helm superseded it.
    async fn fail_revision(
        &self,
        req: &Request<'_>,
        version: i64,
        description: &str,
        replaced: Option<Release>,
    ) -> Result<(), Error> {
        let (namespace, name) = (&req.release.namespace, &req.release.name);
        let storage = &self.cluster.storage;
        let mut stored = storage.revisions(namespace, name).await?;
        match stored.pop() {
            Some(latest) if latest.release.version == version => {
                storage.mark_failed(&latest, description).await?;
            }
            _ => {
                return Err(Error::Release(format!(
                    "revision {version} of release {namespace}/{name} failed its health checks but is no longer the latest: {description}"
                )));
            }
        }
        if let Some(replaced) = replaced
            && replaced.info.status != STATUS_SUPERSEDED
            && let Some(now) = stored.iter().find(|s| {
                s.release.version == replaced.version && s.release.info.status == STATUS_SUPERSEDED
            })
        {
            storage
                .set_status(now, &replaced.info.status, &replaced.info.description)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::ssa::Health;
    use runtime::ssa::health::Status;

    fn widget() -> ObjectRef {
        ObjectRef {
            group: "example.com".to_string(),
            version: "v1".to_string(),
            kind: "Widget".to_string(),
            namespace: "apps".to_string(),
            name: "w".to_string(),
        }
    }

    #[test]
    fn failures_read_like_helms_status_watcher() {
        let failed = HealthError {
            failure: HealthFailure::FailedEarly,
            elapsed: Duration::from_secs(1),
            objects: vec![(
                widget(),
                Health {
                    status: Status::Failed,
                    message: "failed expression is true".to_string(),
                },
            )],
        };
        assert_eq!(
            in_helm_words(&failed),
            "resource Widget/apps/w not ready. status: Failed, message: failed expression is true"
        );
        let timed_out = HealthError {
            failure: HealthFailure::TimedOut,
            ..failed
        };
        assert!(in_helm_words(&timed_out).ends_with("\ncontext deadline exceeded"));
    }

    #[test]
    fn jobs_are_left_out_without_wait_for_jobs_unless_an_expression_judges_them() {
        let job: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"}
        }))
        .unwrap();
        let reference = ObjectRef::from_object(&job).unwrap();
        let no_jobs = HealthWait {
            timeout: Duration::from_secs(1),
            wait_for_jobs: false,
        };
        assert!(left_out(&job, &reference, &no_jobs, &[]));
        let jobs_check = compile_all(&[CustomHealthCheck {
            api_version: "batch/v1".to_string(),
            kind: Some("Job".to_string()),
            current: "true".to_string(),
            in_progress: None,
            failed: None,
        }])
        .unwrap();
        assert!(!left_out(&job, &reference, &no_jobs, &jobs_check));
        let with_jobs = HealthWait {
            wait_for_jobs: true,
            ..no_jobs
        };
        assert!(!left_out(&job, &reference, &with_jobs, &[]));

        let paused: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"paused": true}
        }))
        .unwrap();
        let reference = ObjectRef::from_object(&paused).unwrap();
        assert!(left_out(&paused, &reference, &with_jobs, &[]));
    }
}
