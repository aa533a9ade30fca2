//! Staged server-side apply of a set of objects.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, Preconditions};
use serde_json::Value;

use super::object::{ApplyPolicy, ObjectAnnotations, ObjectRef, str_at};
use super::order::{Stage, apply_order};
use super::resolve::Resource;
use super::takeover::Takeover;
use super::{Engine, Error, ObjectFailure, api_reason, compare, inventory, is_not_found};

/// What applying did to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// The object did not exist and was created (or was recreated after an
    /// immutable-field change).
    Created,
    /// The object existed and was changed.
    Configured,
    /// The object already was as desired.
    Unchanged,
    /// The object was left alone because of its annotations.
    Skipped,
    /// The object was deleted (garbage collection).
    Deleted,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Created => "created",
            Self::Configured => "configured",
            Self::Unchanged => "unchanged",
            Self::Skipped => "skipped",
            Self::Deleted => "deleted",
        })
    }
}

/// What happened to one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub object: ObjectRef,
    /// What was done.
    pub action: Action,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.object, self.action)
    }
}

/// What happened to every object of a set, in apply order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSet {
    /// One entry per object.
    pub changes: Vec<Change>,
}

impl ChangeSet {
    /// Whether any object was created, configured or deleted.
    pub fn has_changes(&self) -> bool {
        self.changes
            .iter()
            .any(|c| !matches!(c.action, Action::Unchanged | Action::Skipped))
    }

    /// The action taken for `object`, if it is in the set.
    pub fn action_of(&self, object: &ObjectRef) -> Option<Action> {
        self.changes
            .iter()
            .find(|c| &c.object == object)
            .map(|c| c.action)
    }

    /// The inventory of the set: every object, unchanged and skipped ones
    /// included (Flux keeps those owned too).
    pub fn to_inventory(&self) -> api::meta::ResourceInventory {
        inventory::inventory_of(
            self.changes
                .iter()
                .filter(|c| c.action != Action::Deleted)
                .map(|c| &c.object),
        )
    }

    /// The objects that were applied (not skipped nor deleted): what a
    /// `wait: true` health check covers.
    pub fn applied(&self) -> Vec<ObjectRef> {
        self.changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Skipped | Action::Deleted))
            .map(|c| c.object.clone())
            .collect()
    }

    /// Flux's change summary: one `Kind/namespace/name action` line per
    /// created, configured or deleted object.
    pub fn summary(&self) -> String {
        self.changes
            .iter()
            .filter(|c| !matches!(c.action, Action::Unchanged | Action::Skipped))
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// What validation decided for one object.
#[derive(Clone, Debug)]
enum Plan {
    /// Leave it alone (annotations).
    Skip,
    /// The dry-run equals the live object; `takeover` is the patch moving
    /// other tools' fields to this manager, if any.
    Unchanged { takeover: Option<Value> },
    /// Apply it; `exists` tells Created from Configured.
    Apply {
        exists: bool,
        takeover: Option<Value>,
    },
    /// An immutable field changes and force is on: delete, then create.
    Recreate { uid: Option<String> },
    /// It needs a CRD or Namespace of the same set, which does not exist yet.
    Deferred { reason: String },
}

/// One object of the set on its way to the cluster.
struct Entry {
    reference: ObjectRef,
    object: DynamicObject,
    annotations: ObjectAnnotations,
    stage: Stage,
    resource: Option<Resource>,
    plan: Plan,
}

/// The kinds and namespaces a set defines itself.
#[derive(Default)]
struct Definitions {
    /// `(group, kind)` of every CRD in the set.
    kinds: HashSet<(String, String)>,
    /// Names of every Namespace in the set.
    namespaces: HashSet<String>,
}

impl Definitions {
    fn of(entries: &[Entry]) -> Self {
        let mut definitions = Self::default();
        for entry in entries {
            if entry.reference.is_crd() {
                let group = str_at(&entry.object.data, &["spec", "group"]);
                let kind = str_at(&entry.object.data, &["spec", "names", "kind"]);
                if let (Some(group), Some(kind)) = (group, kind) {
                    definitions
                        .kinds
                        .insert((group.to_string(), kind.to_string()));
                }
            } else if entry.reference.is_namespace() {
                definitions.namespaces.insert(entry.reference.name.clone());
            }
        }
        definitions
    }
}

/// Error messages the API server (or an admission webhook, or a CEL
/// validation rule) gives when a change touches a field that cannot change.
const IMMUTABLE_MARKERS: &[&str] = &[
    "field is immutable",
    "value is immutable",
    "is immutable",
    "may not change once set",
    "Forbidden: updates to",
    "cannot be changed",
];

fn is_immutable(err: &kube::Error) -> bool {
    match err {
        kube::Error::Api(status) if status.code == 422 || status.code == 409 => {
            IMMUTABLE_MARKERS.iter().any(|m| status.message.contains(m))
        }
        kube::Error::Api(status) => status.message.contains("field is immutable"),
        _ => false,
    }
}

/// Whether a dry-run failed because the object's namespace does not exist.
fn is_missing_namespace(err: &kube::Error, namespace: &str) -> bool {
    matches!(err, kube::Error::Api(status)
        if status.code == 404
            && status.details.as_ref().is_some_and(|d| d.kind == "namespaces" && d.name == namespace))
}

impl Engine {
    fn apply_params(&self, dry_run: bool) -> PatchParams {
        let params = PatchParams::apply(&self.owner.field_manager).force();
        if dry_run { params.dry_run() } else { params }
    }

    /// Applies `objects` the way kustomize-controller does:
    ///
    /// 1. every object is validated by a server-side dry-run apply; if any is
    ///    refused, nothing is applied and the error names each refused object
    ///    (objects whose CRD or Namespace is in the set itself can only be
    ///    validated once those exist: right after the first stage, still
    ///    before anything else is applied);
    /// 2. CRDs, Namespaces and ClusterRoles are applied and waited for, then
    ///    `*Class` kinds (applied and waited for), then custom-stage kinds,
    ///    then everything else, each stage in Flux's kind order.
    ///
    /// Objects equal to their dry-run are not written (unchanged); objects
    /// annotated `reconcile: disabled` or `ssa: Ignore`, and existing ones
    /// annotated `ssa: IfNotPresent`, are skipped.
    pub async fn apply_staged(&self, objects: Vec<DynamicObject>) -> Result<ChangeSet, Error> {
        let mut entries = self.prepare(objects)?;
        let definitions = Definitions::of(&entries);

        let all: Vec<usize> = (0..entries.len()).collect();
        self.plan_entries(&mut entries, &all, &definitions, false)
            .await?;

        let mut changes: HashMap<usize, Action> = HashMap::new();
        for stage in Stage::ALL {
            if stage != Stage::Definitions {
                let deferred: Vec<usize> = (0..entries.len())
                    .filter(|i| matches!(entries[*i].plan, Plan::Deferred { .. }))
                    .filter(|i| !changes.contains_key(i))
                    .collect();
                if !deferred.is_empty() {
                    self.plan_entries(&mut entries, &deferred, &Definitions::default(), true)
                        .await?;
                }
            }
            let mut members: Vec<usize> = (0..entries.len())
                .filter(|i| entries[*i].stage == stage)
                .collect();
            if members.is_empty() {
                continue;
            }
            members.sort_by(|a, b| apply_order(&entries[*a].reference, &entries[*b].reference));
            // Futures made up front keep this future `Send` (see `detect_drift`).
            let executions: Vec<_> = members
                .iter()
                .copied()
                .map(|i| {
                    let entry = &entries[i];
                    async move { self.execute(entry).await.map(|action| (i, action)) }
                })
                .collect();
            let actions: Vec<(usize, Action)> = stream::iter(executions)
                .buffered(self.options.concurrency.max(1))
                .try_collect()
                .await?;
            changes.extend(actions);
            if stage.waited_for() {
                let targets: Vec<ObjectRef> = members
                    .iter()
                    .filter(|i| changes.get(i) != Some(&Action::Skipped))
                    .map(|i| entries[*i].reference.clone())
                    .collect();
                let options = super::HealthOptions {
                    timeout: self.options.definitions_timeout,
                    poll_interval: self.options.poll_interval,
                    ..super::HealthOptions::default()
                };
                self.wait_with(&targets, &options, &[])
                    .await
                    .map_err(Error::NotReady)?;
            }
        }

        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|a, b| {
            entries[*a]
                .stage
                .cmp(&entries[*b].stage)
                .then_with(|| apply_order(&entries[*a].reference, &entries[*b].reference))
        });
        let changes = order
            .into_iter()
            .filter_map(|i| {
                changes.get(&i).map(|action| Change {
                    object: entries[i].reference.clone(),
                    action: *action,
                })
            })
            .collect();
        Ok(ChangeSet { changes })
    }

    /// Sets the owner labels on an object about to be applied and clears
    /// the fields only the server may set.
    pub(crate) fn set_owner(&self, object: &mut DynamicObject) {
        let labels = object.metadata.labels.get_or_insert_with(BTreeMap::new);
        labels.insert(self.keys.name_label.clone(), self.owner.name.clone());
        labels.insert(
            self.keys.namespace_label.clone(),
            self.owner.namespace.clone(),
        );
        // Stale values make the apply fail or fight the server.
        object.metadata.resource_version = None;
        object.metadata.managed_fields = None;
    }

    /// Identity, annotations, owner labels and stage of every object; rejects
    /// objects without identity and duplicates.
    fn prepare(&self, objects: Vec<DynamicObject>) -> Result<Vec<Entry>, Error> {
        let mut seen = HashSet::new();
        let mut entries = Vec::with_capacity(objects.len());
        for mut object in objects {
            let reference = ObjectRef::from_object(&object)?;
            if !seen.insert((
                reference.group.clone(),
                reference.kind.clone(),
                reference.namespace.clone(),
                reference.name.clone(),
            )) {
                return Err(Error::InvalidObject {
                    object: reference.to_string(),
                    reason: "the object appears more than once in the set".to_string(),
                });
            }
            let annotations = ObjectAnnotations::read(&object, &self.keys);
            self.set_owner(&mut object);
            if reference.is_crd() {
                strip_invalid_ca_bundle(&mut object.data);
            }
            let stage = Stage::of(&reference, &self.options.custom_stage_kinds);
            entries.push(Entry {
                reference,
                object,
                annotations,
                stage,
                resource: None,
                plan: Plan::Skip,
            });
        }
        Ok(entries)
    }

    /// Validates the entries at `indices` by dry-run and records their plans;
    /// fails with every refused object named.
    async fn plan_entries(
        &self,
        entries: &mut [Entry],
        indices: &[usize],
        definitions: &Definitions,
        settle: bool,
    ) -> Result<(), Error> {
        let plans: Vec<_> = indices
            .iter()
            .map(|&i| {
                let entry = &entries[i];
                async move { (i, self.plan(entry, definitions, settle).await) }
            })
            .collect();
        let planned: Vec<(usize, Result<Planned, ObjectFailure>)> = stream::iter(plans)
            .buffer_unordered(self.options.concurrency.max(1))
            .collect()
            .await;
        let mut failures = Vec::new();
        for (i, outcome) in planned {
            match outcome {
                Ok(planned) => {
                    let entry = &mut entries[i];
                    if let Some((resource, namespaced)) = planned.resource {
                        if !namespaced {
                            entry.reference.namespace.clear();
                            entry.object.metadata.namespace = None;
                        }
                        entry.resource = Some(resource);
                    }
                    entry.plan = planned.plan;
                }
                Err(failure) => failures.push(failure),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            failures.sort_by(|a, b| a.object.cmp(&b.object));
            Err(Error::Validation { failures })
        }
    }

    /// Resolves an object's kind, reads the live object and dry-runs the
    /// apply. With `settle`, an unknown kind is looked up again for a while:
    /// the API server serves a new CRD's kind shortly after it is Established.
    async fn plan(
        &self,
        entry: &Entry,
        definitions: &Definitions,
        settle: bool,
    ) -> Result<Planned, ObjectFailure> {
        let failure = |reason: String| ObjectFailure {
            object: entry.reference.to_string(),
            reason,
        };
        if entry.annotations.ignored() {
            return Ok(Planned::new(Plan::Skip));
        }
        let gvk = entry.reference.gvk();
        let deadline = tokio::time::Instant::now() + self.options.definitions_timeout;
        let resolved = loop {
            let resolved = self.resolver.resolve(&self.client, &gvk).await;
            if !settle || !matches!(resolved, Ok(None)) || tokio::time::Instant::now() >= deadline {
                break resolved;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let resource = match resolved {
            Ok(Some(resource)) => resource,
            Ok(None) => {
                let reason = format!(
                    "no matches for kind \"{}\" in version \"{}\"",
                    gvk.kind,
                    entry.reference.api_version()
                );
                if definitions
                    .kinds
                    .contains(&(gvk.group.clone(), gvk.kind.clone()))
                {
                    return Ok(Planned::new(Plan::Deferred { reason }));
                }
                return Err(failure(reason));
            }
            Err(err) => return Err(failure(format!("API discovery failed{}", api_reason(&err)))),
        };
        let mut reference = entry.reference.clone();
        let mut body = entry.object.clone();
        if resource.namespaced && reference.namespace.is_empty() {
            return Err(failure(
                "namespace not specified for a namespaced kind".to_string(),
            ));
        }
        if !resource.namespaced {
            reference.namespace.clear();
            body.metadata.namespace = None;
        }
        let api = resource.api(&self.client, &reference);
        let namespaced = resource.namespaced;
        let planned = |plan| Planned {
            plan,
            resource: Some((resource.clone(), namespaced)),
        };
        let live = match api.get_opt(&reference.name).await {
            Ok(live) => live,
            Err(err) if namespaced && is_missing_namespace(&err, &reference.namespace) => None,
            Err(err) => return Err(failure(format!("read failed{}", api_reason(&err)))),
        };
        if entry.annotations.policy == ApplyPolicy::IfNotPresent && live.is_some() {
            return Ok(planned(Plan::Skip));
        }
        let force = self.options.force || entry.annotations.force;
        match api
            .patch(
                &reference.name,
                &self.apply_params(true),
                &Patch::Apply(&body),
            )
            .await
        {
            Ok(dry_run) => {
                let Some(live) = live else {
                    return Ok(planned(Plan::Apply {
                        exists: false,
                        takeover: None,
                    }));
                };
                let takeover = if entry.annotations.policy == ApplyPolicy::Merge {
                    None
                } else {
                    Takeover {
                        field_manager: &self.owner.field_manager,
                        extra_managers: &self.options.override_managers,
                    }
                    .patch(&to_value(&live, &reference)?)
                };
                let paths = self
                    .live_differences(&api, &reference, &dry_run, live)
                    .await?;
                if paths.is_empty() {
                    Ok(planned(Plan::Unchanged { takeover }))
                } else {
                    Ok(planned(Plan::Apply {
                        exists: true,
                        takeover,
                    }))
                }
            }
            Err(err)
                if namespaced
                    && is_missing_namespace(&err, &reference.namespace)
                    && definitions.namespaces.contains(&reference.namespace) =>
            {
                Ok(planned(Plan::Deferred {
                    reason: format!("dry-run failed{}", api_reason(&err)),
                }))
            }
            Err(err) if force && live.is_some() && is_immutable(&err) => {
                let uid = live.and_then(|live| live.metadata.uid);
                Ok(planned(Plan::Recreate { uid }))
            }
            Err(err) => {
                if is_not_found(&err) && !is_missing_namespace(&err, &reference.namespace) {
                    // The kind itself is gone (CRD deleted): look it up afresh
                    // next time instead of trusting the cache.
                    self.resolver.forget(&gvk);
                }
                let hint = if is_immutable(&err) {
                    " (immutable field: enable force to recreate the object)"
                } else {
                    ""
                };
                Err(failure(format!("dry-run failed{}{hint}", api_reason(&err))))
            }
        }
    }

    /// Where a dry-run result differs from the live object. The dry-run is
    /// based on the object as stored when it ran; if a controller wrote the
    /// object (status, annotations) between the read and the dry-run, the
    /// live copy is read again so only the apply's own changes count.
    pub(crate) async fn live_differences(
        &self,
        api: &Api<DynamicObject>,
        reference: &ObjectRef,
        dry_run: &DynamicObject,
        mut live: DynamicObject,
    ) -> Result<Vec<String>, ObjectFailure> {
        for _ in 0..3 {
            if live.metadata.resource_version == dry_run.metadata.resource_version {
                break;
            }
            match api.get_opt(&reference.name).await {
                Ok(Some(again)) => live = again,
                Ok(None) => break,
                Err(err) => {
                    return Err(ObjectFailure {
                        object: reference.to_string(),
                        reason: format!("read failed{}", api_reason(&err)),
                    });
                }
            }
        }
        let ignore = self.ignored_paths(reference, &live)?;
        Ok(compare::differences(
            &to_value(dry_run, reference)?,
            &to_value(&live, reference)?,
            &ignore,
        ))
    }

    /// The JSON pointers the ignore rules exclude for `object`.
    pub(crate) fn ignored_paths(
        &self,
        reference: &ObjectRef,
        live: &DynamicObject,
    ) -> Result<Vec<String>, ObjectFailure> {
        super::selector::ignored_paths(&self.options.ignore, reference, &live.metadata).map_err(
            |err| ObjectFailure {
                object: reference.to_string(),
                reason: err.to_string(),
            },
        )
    }

    /// Carries out a validated plan.
    async fn execute(&self, entry: &Entry) -> Result<Action, Error> {
        let failure = |reason: String| {
            Error::Apply(ObjectFailure {
                object: entry.reference.to_string(),
                reason,
            })
        };
        let (exists, recreate, takeover) = match &entry.plan {
            Plan::Skip => return Ok(Action::Skipped),
            Plan::Unchanged { takeover: None } => return Ok(Action::Unchanged),
            Plan::Unchanged { takeover } => (true, None, takeover.as_ref()),
            Plan::Deferred { reason } => return Err(failure(reason.clone())),
            Plan::Apply { exists, takeover } => (*exists, None, takeover.as_ref()),
            Plan::Recreate { uid } => (false, Some(uid), None),
        };
        let Some(resource) = &entry.resource else {
            return Err(failure("the object's kind was not resolved".to_string()));
        };
        let api = resource.api(&self.client, &entry.reference);
        if let Some(takeover) = takeover {
            let params = PatchParams {
                field_manager: Some(self.owner.field_manager.clone()),
                ..PatchParams::default()
            };
            api.patch(&entry.reference.name, &params, &Patch::Merge(takeover))
                .await
                .map_err(|err| {
                    failure(format!(
                        "taking over managed fields failed{}",
                        api_reason(&err)
                    ))
                })?;
        }
        if let Some(uid) = recreate {
            self.delete_and_wait(&api, &entry.reference.name, uid.clone())
                .await
                .map_err(|reason| {
                    failure(format!(
                        "immutable field changed, recreate failed: {reason}"
                    ))
                })?;
        }
        api.patch(
            &entry.reference.name,
            &self.apply_params(false),
            &Patch::Apply(&entry.object),
        )
        .await
        .map_err(|err| failure(format!("apply failed{}", api_reason(&err))))?;
        Ok(if exists {
            Action::Configured
        } else {
            Action::Created
        })
    }

    /// Deletes an object (background propagation, only the instance with
    /// `uid`) and waits until it is gone.
    async fn delete_and_wait(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        uid: Option<String>,
    ) -> Result<(), String> {
        let mut params = DeleteParams::background();
        if let Some(uid) = uid {
            params = params.preconditions(Preconditions {
                uid: Some(uid),
                resource_version: None,
            });
        }
        match api.delete(name, &params).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            Err(err) => return Err(format!("delete failed{}", api_reason(&err))),
        }
        let deadline = tokio::time::Instant::now() + self.options.definitions_timeout;
        loop {
            match api.get_opt(name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "still present {}s after deletion",
                        self.options.definitions_timeout.as_secs()
                    ));
                }
                Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
                Err(err) => return Err(format!("read failed{}", api_reason(&err))),
            }
        }
    }
}

/// Removes a CRD's conversion-webhook `caBundle` unless it holds a PEM
/// certificate: manifests often carry a placeholder that a CA injector
/// replaces in the cluster, and applying the placeholder would break
/// conversion until the injector runs again.
fn strip_invalid_ca_bundle(crd: &mut Value) {
    use base64::Engine as _;
    let Some(client_config) = crd
        .pointer_mut("/spec/conversion/webhook/clientConfig")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let valid = client_config
        .get("caBundle")
        .and_then(Value::as_str)
        .and_then(|bundle| {
            base64::engine::general_purpose::STANDARD
                .decode(bundle.trim())
                .ok()
        })
        .is_some_and(|pem| String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----"));
    if !valid {
        client_config.remove("caBundle");
    }
}

/// A plan with the resolved resource and whether it is namespaced.
struct Planned {
    plan: Plan,
    resource: Option<(Resource, bool)>,
}

impl Planned {
    fn new(plan: Plan) -> Self {
        Self {
            plan,
            resource: None,
        }
    }
}

pub(crate) fn to_value(
    object: &DynamicObject,
    reference: &ObjectRef,
) -> Result<Value, ObjectFailure> {
    serde_json::to_value(object).map_err(|err| ObjectFailure {
        object: reference.to_string(),
        reason: format!("cannot serialise: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd_with_bundle(bundle: &str) -> Value {
        json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
            "clientConfig": {"caBundle": bundle, "service": {"name": "hook", "namespace": "system"}},
            "conversionReviewVersions": ["v1"]}}}})
    }

    #[test]
    fn placeholder_ca_bundles_are_stripped_from_crds() {
        let mut placeholder = crd_with_bundle("Cg==");
        strip_invalid_ca_bundle(&mut placeholder);
        let client_config = &placeholder["spec"]["conversion"]["webhook"]["clientConfig"];
        assert!(client_config.get("caBundle").is_none());
        assert_eq!(client_config["service"]["name"], "hook");

        use base64::Engine as _;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        let mut real = crd_with_bundle(&encoded);
        strip_invalid_ca_bundle(&mut real);
        assert_eq!(
            real["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"],
            json!(encoded)
        );

        let mut no_webhook = json!({"spec": {"conversion": {"strategy": "None"}}});
        strip_invalid_ca_bundle(&mut no_webhook);
        assert_eq!(
            no_webhook,
            json!({"spec": {"conversion": {"strategy": "None"}}})
        );
    }

    #[test]
    fn immutable_field_errors_are_recognised() {
        let status = |code: u16, message: &str| {
            kube::Error::Api(Box::new(kube::core::Status {
                code,
                message: message.to_string(),
                ..kube::core::Status::default()
            }))
        };
        assert!(is_immutable(&status(
            422,
            r#"Job.batch "migrate" is invalid: spec.template: Invalid value: ...: field is immutable"#
        )));
        assert!(is_immutable(&status(
            422,
            "spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.9\"}: may not change once set"
        )));
        assert!(!is_immutable(&status(
            422,
            "spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535"
        )));
        assert!(!is_immutable(&status(404, "not found")));
    }
}
