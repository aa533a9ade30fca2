//! Waiting for objects to become healthy: kstatus rules for built-in kinds
//! ([`kstatus`]), CEL expressions for custom ones ([`expr`]).

pub mod expr;
pub mod kstatus;

use std::fmt;
use std::time::Duration;

use api::meta::CustomHealthCheck;
use futures::{StreamExt, stream};
use tokio::time::Instant;

pub use expr::CompiledCheck;
pub use kstatus::{Health, Status, compute};

use super::object::ObjectRef;
use super::{Engine, Error, api_reason};

/// How to wait for health.
#[derive(Clone, Debug)]
pub struct HealthOptions {
    /// Give up after this long.
    pub timeout: Duration,
    /// Time between two polls.
    pub poll_interval: Duration,
    /// Stop as soon as an object has failed, instead of waiting for the
    /// timeout (Flux's default; the `DisableFailFastBehavior` gate turns it
    /// off).
    pub fail_fast: bool,
    /// CEL checks for custom kinds (`healthCheckExprs`); they replace the
    /// kstatus rules for the objects they match.
    pub checks: Vec<CustomHealthCheck>,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(2),
            fail_fast: true,
            checks: Vec::new(),
        }
    }
}

/// Why a wait for health ended unsuccessfully.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthFailure {
    /// The timeout passed with objects not yet current.
    TimedOut,
    /// An object failed (fail-fast).
    FailedEarly,
}

/// Objects that did not become healthy.
#[derive(Clone, Debug, thiserror::Error)]
pub struct HealthError {
    /// Why the wait ended.
    pub failure: HealthFailure,
    /// How long it waited.
    pub elapsed: Duration,
    /// The objects that were not current (or, when failing early, the failed
    /// ones), with their last status.
    pub objects: Vec<(ObjectRef, Health)>,
}

impl fmt::Display for HealthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.failure {
            HealthFailure::TimedOut => "timeout waiting for",
            HealthFailure::FailedEarly => "failed early due to stalled resources",
        };
        let objects: Vec<String> = self
            .objects
            .iter()
            .map(|(object, health)| {
                format!("{object} status: '{}': {}", health.status, health.message)
            })
            .collect();
        write!(
            f,
            "health check failed after {:.1}s: {what}: [{}]",
            self.elapsed.as_secs_f64(),
            objects.join(", ")
        )
    }
}

impl Engine {
    /// Waits until every object is current (kstatus), polling every 2s; fails
    /// at once when one has failed, or after `timeout`.
    pub async fn wait_for_health(
        &self,
        objects: &[ObjectRef],
        timeout: Duration,
    ) -> Result<(), Error> {
        let options = HealthOptions {
            timeout,
            ..HealthOptions::default()
        };
        self.wait_for_health_with(objects, &options).await
    }

    /// [`Engine::wait_for_health`] with all options, CEL checks included.
    pub async fn wait_for_health_with(
        &self,
        objects: &[ObjectRef],
        options: &HealthOptions,
    ) -> Result<(), Error> {
        let checks = options
            .checks
            .iter()
            .map(CompiledCheck::compile)
            .collect::<Result<Vec<_>, _>>()?;
        self.wait_with(objects, options, &checks)
            .await
            .map_err(Error::Health)
    }

    /// The current health of each object, judged once.
    pub async fn health_of(&self, objects: &[ObjectRef], checks: &[CompiledCheck]) -> Vec<Health> {
        // Futures made up front keep this future `Send` (see `detect_drift`).
        let probes: Vec<_> = objects
            .iter()
            .map(|object| self.health_of_one(object, checks))
            .collect();
        stream::iter(probes)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await
    }

    pub(crate) async fn wait_with(
        &self,
        objects: &[ObjectRef],
        options: &HealthOptions,
        checks: &[CompiledCheck],
    ) -> Result<(), HealthError> {
        let start = Instant::now();
        // Only objects not yet current are read again: at scale, re-reading
        // the ones that already are would be most of the API traffic.
        let mut waiting: Vec<ObjectRef> = objects.to_vec();
        loop {
            let health = self.health_of(&waiting, checks).await;
            let judged: Vec<(ObjectRef, Health)> = waiting.iter().cloned().zip(health).collect();
            if options.fail_fast {
                let failed: Vec<(ObjectRef, Health)> = judged
                    .iter()
                    .filter(|(_, h)| h.status == Status::Failed)
                    .cloned()
                    .collect();
                if !failed.is_empty() {
                    return Err(HealthError {
                        failure: HealthFailure::FailedEarly,
                        elapsed: start.elapsed(),
                        objects: failed,
                    });
                }
            }
            let pending: Vec<(ObjectRef, Health)> = judged
                .into_iter()
                .filter(|(_, h)| h.status != Status::Current)
                .collect();
            if pending.is_empty() {
                return Ok(());
            }
            waiting = pending.iter().map(|(object, _)| object.clone()).collect();
            let elapsed = start.elapsed();
            if elapsed + options.poll_interval > options.timeout {
                // One last look at the deadline, so a short timeout still
                // gets the benefit of the whole period.
                let remaining = options.timeout.saturating_sub(elapsed);
                if remaining.is_zero() {
                    return Err(HealthError {
                        failure: HealthFailure::TimedOut,
                        elapsed,
                        objects: pending,
                    });
                }
                tokio::time::sleep(remaining).await;
                let health = self.health_of(&waiting, checks).await;
                let pending: Vec<(ObjectRef, Health)> = waiting
                    .iter()
                    .cloned()
                    .zip(health)
                    .filter(|(_, h)| h.status != Status::Current)
                    .collect();
                if pending.is_empty() {
                    return Ok(());
                }
                return Err(HealthError {
                    failure: HealthFailure::TimedOut,
                    elapsed: start.elapsed(),
                    objects: pending,
                });
            }
            tokio::time::sleep(options.poll_interval).await;
        }
    }

    async fn health_of_one(&self, object: &ObjectRef, checks: &[CompiledCheck]) -> Health {
        let resource = match self.resolver.resolve(&self.client, &object.gvk()).await {
            Ok(Some(resource)) => resource,
            Ok(None) => return Health::not_found(),
            Err(err) => {
                return Health::in_progress(format!("discovery failed{}", api_reason(&err)));
            }
        };
        let live = match resource
            .api(&self.client, object)
            .get_opt(&object.name)
            .await
        {
            Ok(Some(live)) => live,
            Ok(None) if object.kind == "Job" && object.group == "batch" => {
                // Jobs with ttlSecondsAfterFinished disappear once complete.
                return Health {
                    status: Status::Current,
                    message: "Job not found: deleted after it finished".to_string(),
                };
            }
            Ok(None) => return Health::not_found(),
            Err(err) => return Health::in_progress(format!("read failed{}", api_reason(&err))),
        };
        let value = match serde_json::to_value(&live) {
            Ok(value) => value,
            Err(err) => return Health::in_progress(format!("cannot serialise: {err}")),
        };
        match checks.iter().find(|check| check.matches(object)) {
            Some(check) => check.evaluate(&value),
            None => compute(&value, jiff::Timestamp::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_each_object_with_its_status() {
        let error = HealthError {
            failure: HealthFailure::TimedOut,
            elapsed: Duration::from_millis(30_040),
            objects: vec![(
                ObjectRef {
                    group: "apps".to_string(),
                    version: "v1".to_string(),
                    kind: "Deployment".to_string(),
                    namespace: "apps".to_string(),
                    name: "web".to_string(),
                },
                Health {
                    status: Status::InProgress,
                    message: "Available: 0/1".to_string(),
                },
            )],
        };
        assert_eq!(
            error.to_string(),
            "health check failed after 30.0s: timeout waiting for: \
             [Deployment/apps/web status: 'InProgress': Available: 0/1]"
        );
    }
}
