//! The health step: the applied objects (`wait`) or the `healthChecks`
//! list waited for until current, within the Kustomization's timeout.

use std::time::{Duration, Instant};

use api::meta::{condition_type, reason};
use runtime::ssa::health::HealthOptions;
use runtime::ssa::{ChangeSet, Engine, ObjectRef};

use super::{Attempt, Halt, KIND, Stop, go_duration};

impl Attempt<'_> {
    /// Waits for the health of what `change_set` applied, as the spec asks.
    pub(super) async fn check_health(
        &mut self,
        engine: &Engine,
        change_set: &ChangeSet,
        revision: &str,
        timeout: Duration,
    ) -> Result<(), Stop> {
        let targets = self.health_targets(change_set);
        if targets.is_empty() {
            self.session.conditions.delete(condition_type::HEALTHY);
            return Ok(());
        }
        let was_healthy = self.session.conditions.is_true(condition_type::HEALTHY);
        let message = format!(
            "Running health checks for revision {revision} with a timeout of {}",
            go_duration(timeout)
        );
        self.progressing(message.clone());
        self.session
            .conditions
            .mark_unknown(condition_type::HEALTHY, reason::PROGRESSING, message);
        self.patch().await?;
        let checked = Instant::now();
        let options = HealthOptions {
            timeout,
            poll_interval: self.ctx.settings.health_poll_interval,
            fail_fast: self.ctx.settings.fail_fast,
            checks: self.obj.spec.health_check_exprs.clone().unwrap_or_default(),
        };
        if let Err(err) = engine.wait_for_health_with(&targets, &options).await {
            self.record(reason::HEALTH_CHECK_FAILED);
            let message = err.to_string();
            // A health check expression that does not compile cannot pass.
            let (why, halt) = match err {
                runtime::ssa::Error::InvalidExpression { .. } => {
                    let why = reason::INVALID_CEL_EXPRESSION;
                    (why, Halt::stall(why, message.clone()))
                }
                _ => {
                    let why = reason::HEALTH_CHECK_FAILED;
                    (why, Halt::retry(why, message.clone()))
                }
            };
            self.session
                .conditions
                .mark_false(condition_type::HEALTHY, why, message);
            return Err(halt.into());
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
        Ok(())
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
}
