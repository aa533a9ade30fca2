//! Drift detection: which objects differ from what applying them would make
//! them (helm-controller's `driftDetection`).

use futures::{StreamExt, stream};
use kube::api::{DynamicObject, Patch, PatchParams};

use super::object::{ObjectAnnotations, ObjectRef};
use super::{Engine, Error, ObjectFailure, api_reason};

/// How a live object differs from the desired one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriftState {
    /// The object does not exist.
    Missing,
    /// The object exists but applying would change it at these JSON pointers.
    Modified {
        /// The changed fields.
        paths: Vec<String>,
    },
}

/// One drifted object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The object.
    pub object: ObjectRef,
    /// How it drifted.
    pub state: DriftState,
}

impl Engine {
    /// Dry-runs the apply of `objects` (with this engine's field manager,
    /// forcing conflicts) and reports those whose result differs from the
    /// live object, ignoring the configured ignore rules. Objects annotated
    /// `<group>/driftDetection: disabled`, `reconcile: disabled` or
    /// `ssa: Ignore` are not checked. Nothing is changed in the cluster; to
    /// correct drift, apply the drifted objects.
    pub async fn detect_drift(&self, objects: &[DynamicObject]) -> Result<Vec<Drift>, Error> {
        // The futures are made before streaming them (not by a closure in
        // the stream), which keeps the returned future `Send` for callers
        // that need it (a `kube::runtime::Controller` reconciler).
        let checks: Vec<_> = objects.iter().map(|object| self.drift_of(object)).collect();
        let outcomes: Vec<Result<Option<Drift>, ObjectFailure>> = stream::iter(checks)
            .buffered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut drifts = Vec::new();
        let mut failures = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(Some(drift)) => drifts.push(drift),
                Ok(None) => {}
                Err(failure) => failures.push(failure),
            }
        }
        if failures.is_empty() {
            Ok(drifts)
        } else {
            Err(Error::Validation { failures })
        }
    }

    async fn drift_of(&self, object: &DynamicObject) -> Result<Option<Drift>, ObjectFailure> {
        let mut reference = ObjectRef::from_object(object).map_err(|err| ObjectFailure {
            object: object.metadata.name.clone().unwrap_or_default(),
            reason: err.to_string(),
        })?;
        let failure = |reference: &ObjectRef, reason: String| ObjectFailure {
            object: reference.to_string(),
            reason,
        };
        let annotations = ObjectAnnotations::read(object, &self.keys);
        if annotations.ignored() || annotations.drift_detection_disabled {
            return Ok(None);
        }
        let resource = match self.resolver.resolve(&self.client, &reference.gvk()).await {
            Ok(Some(resource)) => resource,
            Ok(None) => {
                return Ok(Some(Drift {
                    object: reference,
                    state: DriftState::Missing,
                }));
            }
            Err(err) => {
                return Err(failure(
                    &reference,
                    format!("discovery failed{}", api_reason(&err)),
                ));
            }
        };
        let mut body = object.clone();
        self.set_owner(&mut body);
        if !resource.namespaced {
            reference.namespace.clear();
            body.metadata.namespace = None;
        }
        let api = resource.api(&self.client, &reference);
        let Some(live) = api
            .get_opt(&reference.name)
            .await
            .map_err(|err| failure(&reference, format!("read failed{}", api_reason(&err))))?
        else {
            return Ok(Some(Drift {
                object: reference,
                state: DriftState::Missing,
            }));
        };
        let params = PatchParams::apply(&self.owner.field_manager)
            .force()
            .dry_run();
        let dry_run = api
            .patch(&reference.name, &params, &Patch::Apply(&body))
            .await
            .map_err(|err| failure(&reference, format!("dry-run failed{}", api_reason(&err))))?;
        let paths = self
            .live_differences(&api, &reference, &dry_run, live)
            .await?;
        if paths.is_empty() {
            Ok(None)
        } else {
            Ok(Some(Drift {
                object: reference,
                state: DriftState::Modified { paths },
            }))
        }
    }
}
