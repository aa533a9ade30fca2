//! The apply step: the built objects applied with staged server-side apply
//! (a dry-run first), as the Kustomization's service account when it has
//! one, on the remote cluster of `spec.kubeConfig` when it has one.

use api::meta::reason;
use runtime::ssa::{ApplyOptions, ChangeSet, Engine, Owner};
use tracing::{debug, info};

use super::build::Built;
use super::{Attempt, Halt, Stop};
use crate::context::Target;

impl Attempt<'_> {
    /// The apply engine of this Kustomization, with the cluster and client
    /// it applies with ([`crate::context::Context::target`]). A remote
    /// cluster that cannot be reached fails the attempt as Flux does
    /// (`ReconciliationFailed`); one that never can (a refused kubeconfig,
    /// `configMapRef`) stalls it.
    pub(super) async fn apply_engine(&self) -> Result<Engine, Stop> {
        let target = self.ctx.target(self.obj).await.map_err(|err| {
            let message = err.to_string();
            match err.is_terminal() {
                true => Halt::stall(reason::RECONCILIATION_FAILED, message),
                false => Halt::retry(reason::RECONCILIATION_FAILED, message),
            }
        })?;
        Ok(self.engine(target))
    }

    /// Applies what was built; the change set tells what changed.
    pub(super) async fn apply(
        &mut self,
        engine: &Engine,
        built: Built,
        revision: &str,
    ) -> Result<ChangeSet, Stop> {
        let change_set = match engine.apply_staged(built.objects).await {
            Ok(change_set) => change_set,
            Err(err) => {
                self.record(reason::RECONCILIATION_FAILED);
                return Err(Halt::retry(reason::RECONCILIATION_FAILED, err.to_string()).into());
            }
        };
        if change_set.has_changes() {
            let summary = change_set.summary();
            info!(kustomization = %self.name, namespace = %self.namespace, %revision, changes = %summary, "server-side apply completed");
            self.event(false, &summary).await;
        } else {
            debug!(kustomization = %self.name, namespace = %self.namespace, %revision, "server-side apply: no changes");
        }
        Ok(change_set)
    }

    pub(super) fn engine(&self, target: Target) -> Engine {
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
            target.client,
            Owner::kustomization(&self.name, &self.namespace),
            options,
            target.resolver,
        )
    }
}
