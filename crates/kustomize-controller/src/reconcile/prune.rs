//! The prune step: objects of the previous inventory that the new build no
//! longer holds are deleted (with `spec.prune`), and the inventory recorded.

use api::meta::reason;
use runtime::ssa::inventory::{merge_into, stale_objects};
use runtime::ssa::{ChangeSet, Engine};
use tracing::warn;

use super::{Attempt, Halt, Stop};

impl Attempt<'_> {
    /// Records the inventory of `change_set`, after pruning what it dropped.
    /// Objects that could not be deleted stay in the inventory.
    pub(super) async fn prune(
        &mut self,
        engine: &Engine,
        change_set: &ChangeSet,
    ) -> Result<(), Stop> {
        let old_inventory = self.session.status.inventory.clone().unwrap_or_default();
        let mut inventory = change_set.to_inventory();
        if self.obj.spec.prune {
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
                    self.record(reason::PRUNE_FAILED);
                    let message = pruned
                        .failed
                        .iter()
                        .map(|(object, why)| format!("{object} {why}"))
                        .collect::<Vec<_>>()
                        .join("\n");
                    return Err(Halt::retry(reason::PRUNE_FAILED, message).into());
                }
            }
        }
        self.session.status.inventory = Some(inventory);
        Ok(())
    }
}
