//! Drift: the objects of the stored release compared with the cluster
//! (server-side dry-run), corrected when the spec or `CorrectDrift` says so;
//! and the inventory of what the release applied.

use std::collections::HashSet;

use api::meta::{ResourceInventory, condition_type};
use kube::ResourceExt;
use kube::api::DynamicObject;
use runtime::ssa::{ApplyOptions, DriftState, Engine, ObjectRef, Owner};

use super::Run;
use crate::Error;
use crate::release::Release;

use super::release::*;

impl Run<'_> {
    /// `(detect, correct)` from `driftDetection.mode` and the feature gates.
    pub(super) fn drift_mode(&self) -> (bool, bool) {
        let mode = self.spec().drift_detection.as_ref().and_then(|d| d.mode);
        let settings = &self.ctx.settings;
        let correct =
            settings.correct_drift || mode == Some(api::helm::DriftDetectionMode::Enabled);
        let detect =
            correct || settings.detect_drift || mode == Some(api::helm::DriftDetectionMode::Warn);
        (detect, correct)
    }

    pub(super) fn drift_engine(&self) -> Engine {
        let ignore = self
            .spec()
            .drift_detection
            .as_ref()
            .and_then(|d| d.ignore.clone())
            .unwrap_or_default();
        Engine::with_resolver(
            self.cluster.client.clone(),
            Owner {
                // helm applies with this field manager (Flux's); drift is
                // judged and corrected as helm's own apply would.
                field_manager: crate::helm_cli::FIELD_MANAGER.to_string(),
                group: runtime::ssa::HELM_GROUP.to_string(),
                name: self.hr.name_any(),
                namespace: self.hr.namespace().unwrap_or_default(),
            },
            ApplyOptions {
                ignore,
                override_managers: self.ctx.settings.override_managers.clone(),
                ..ApplyOptions::default()
            },
            self.cluster.resolver.clone(),
        )
    }

    /// The objects of a release manifest, with the release namespace filled
    /// in where the chart left it out.
    pub(super) async fn manifest_objects(
        &self,
        release: &Release,
    ) -> Result<Vec<DynamicObject>, Error> {
        let mut objects = runtime::ssa::yaml::objects_from_yaml(&release.manifest)?;
        for object in &mut objects {
            if object.metadata.namespace.is_none() {
                let reference = ObjectRef::from_object(object)?;
                let namespaced = self
                    .cluster
                    .resolver
                    .resolve(&self.cluster.client, &reference.gvk())
                    .await?
                    .is_none_or(|r| r.namespaced);
                if namespaced {
                    object.metadata.namespace = Some(release.namespace.clone());
                }
            }
        }
        Ok(objects)
    }

    pub(super) async fn detect_drift(
        &mut self,
        release: &Release,
    ) -> Result<Vec<runtime::ssa::Drift>, Error> {
        let (detect, _) = self.drift_mode();
        if !detect {
            self.session.conditions.delete(condition_type::DRIFTED);
            return Ok(Vec::new());
        }
        let objects = self.manifest_objects(release).await?;
        let drift = self.drift_engine().detect_drift(&objects).await?;
        if drift.is_empty() {
            self.session.conditions.mark_false(
                condition_type::DRIFTED,
                NO_DRIFT_DETECTED,
                format!("No drift detected for release {}", release.full_name()),
            );
            return Ok(drift);
        }
        let summary = drift
            .iter()
            .map(|d| match &d.state {
                DriftState::Missing => format!("{} removed", d.object),
                DriftState::Modified { paths } => {
                    format!("{} changed ({})", d.object, paths.join(", "))
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let message = format!(
            "Cluster state of release {} has drifted from the desired state:\n{summary}",
            release.full_name()
        );
        self.session
            .conditions
            .mark_true(condition_type::DRIFTED, DRIFT_DETECTED, message.clone());
        self.ctx
            .recorder
            .warning(self.hr, DRIFT_DETECTED, &message)
            .await;
        Ok(drift)
    }

    pub(super) async fn correct_drift(
        &mut self,
        drift: &[runtime::ssa::Drift],
    ) -> Result<(), Error> {
        // The release whose drift was just detected.
        let Some(release) = self.latest_stored.clone() else {
            return Ok(());
        };
        let drifted: HashSet<String> = drift.iter().map(|d| d.object.inventory_id()).collect();
        let mut objects = Vec::new();
        for object in self.manifest_objects(&release).await? {
            if drifted.contains(&ObjectRef::from_object(&object)?.inventory_id()) {
                objects.push(object);
            }
        }
        match self.drift_engine().apply_staged(objects).await {
            Ok(changes) => {
                let message = format!(
                    "Cluster state of release {} has been corrected:\n{}",
                    release.full_name(),
                    changes.summary()
                );
                self.session.conditions.mark_false(
                    condition_type::DRIFTED,
                    NO_DRIFT_DETECTED,
                    message.clone(),
                );
                self.ctx
                    .recorder
                    .normal(self.hr, "DriftCorrected", &message)
                    .await;
                Ok(())
            }
            Err(err) => {
                let message = format!(
                    "Failed to correct drift of release {}: {err}",
                    release.full_name()
                );
                self.session.conditions.mark_false(
                    condition_type::READY,
                    "DriftCorrectionFailed",
                    message.clone(),
                );
                self.ctx
                    .recorder
                    .warning(self.hr, "DriftCorrectionFailed", &message)
                    .await;
                Err(Error::Release(message))
            }
        }
    }

    /// The inventory of the current release: its manifest's objects (chart
    /// CRDs included, hooks excluded).
    pub(crate) async fn inventory(&self, req: &Request<'_>) -> Result<ResourceInventory, Error> {
        let latest = match &self.latest_stored {
            Some(release) => Some(release.clone()),
            None => self
                .cluster
                .storage
                .latest(&req.release.namespace, &req.release.name)
                .await?
                .map(|stored| stored.release),
        };
        let Some(release) = latest else {
            return Ok(ResourceInventory::default());
        };
        let objects = self.manifest_objects(&release).await?;
        let mut references = objects
            .iter()
            .map(ObjectRef::from_object)
            .collect::<Result<Vec<_>, _>>()?;
        references.sort_by(runtime::ssa::apply_order);
        Ok(runtime::ssa::inventory::inventory_of(&references))
    }
}
