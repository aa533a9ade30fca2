//! The apply step: the built objects applied with staged server-side apply
//! (a dry-run first), as the Kustomization's service account when it has one.

use api::meta::reason;
use kube::Client;
use runtime::ssa::{ApplyOptions, ChangeSet, Engine, Owner};
use tracing::{debug, info};

use super::build::Built;
use super::{Attempt, Halt, Stop};

impl Attempt<'_> {
    /// The apply engine of this Kustomization, with the client it applies as.
    pub(super) fn apply_engine(&self) -> Result<Engine, Stop> {
        let client = self.ctx.apply_client(self.obj).map_err(|err| {
            Halt::retry(
                reason::RECONCILIATION_FAILED,
                format!("failed to build the impersonating client: {err}"),
            )
        })?;
        Ok(self.engine(client))
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

    pub(super) fn engine(&self, client: Client) -> Engine {
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
}
