//! Server-side apply of sets of arbitrary objects, garbage collection of the
//! objects that left the set, and health checks: the engine behind
//! kustomize-controller's apply and helm-controller's drift correction,
//! following Flux's `ssa` package.
//!
//! [`Engine::apply_staged`] validates the whole set by server-side dry-run,
//! then applies it in stages (definitions, classes, the rest) in Flux's kind
//! order and reports what changed per object ([`ChangeSet`]). The change set
//! yields the [`inventory`], whose diff against the previous one names the
//! stale objects [`Engine::prune`] deletes. [`Engine::wait_for_health`] polls
//! objects until kstatus says they are current ([`health`]).

mod apply;
mod compare;
mod drift;
pub mod health;
pub mod inventory;
mod object;
mod order;
mod prune;
mod resolve;
mod selector;
mod takeover;
pub mod yaml;

use std::time::Duration;

use api::meta::IgnoreRule;

pub use apply::{Action, Change, ChangeSet};
pub use compare::differences;
pub use drift::{Drift, DriftState};
pub use health::{Health, HealthOptions, Status};
pub use object::{ApplyPolicy, ObjectAnnotations, ObjectRef, OwnerKeys};
pub use order::{Stage, apply_order, kind_rank};
pub use prune::PruneResult;
pub use resolve::Resolver;

/// The API group of kustomize-controller's labels and annotations.
pub const KUSTOMIZE_GROUP: &str = "kustomize.toolkit.fluxcd.io";
/// The API group of helm-controller's labels and annotations.
pub const HELM_GROUP: &str = "helm.toolkit.fluxcd.io";

/// Who applies: the field manager, and the owner whose labels mark every
/// applied object (`<group>/name`, `<group>/namespace`) and scope pruning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Server-side apply field manager, e.g. `kustomize-controller`.
    pub field_manager: String,
    /// Group of the owner labels and of the annotations the engine honours,
    /// e.g. [`KUSTOMIZE_GROUP`].
    pub group: String,
    /// Name of the owning object.
    pub name: String,
    /// Namespace of the owning object.
    pub namespace: String,
}

impl Owner {
    /// A Kustomization applying as `kustomize-controller`.
    pub fn kustomization(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            field_manager: "kustomize-controller".to_string(),
            group: KUSTOMIZE_GROUP.to_string(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }

    /// A HelmRelease applying as `helm-controller`.
    pub fn helm_release(name: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            field_manager: "helm-controller".to_string(),
            group: HELM_GROUP.to_string(),
            name: name.into(),
            namespace: namespace.into(),
        }
    }
}

/// How the engine applies.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Recreate objects whose change touches an immutable field (Flux's
    /// `spec.force`); objects annotated `<group>/force: Enabled` are
    /// recreated regardless.
    pub force: bool,
    /// Objects applied at once within a stage (`--concurrent-ssa`).
    pub concurrency: usize,
    /// How long to wait for the definitions and classes of a set to be ready
    /// before applying the rest, and for a recreated object to be gone.
    pub definitions_timeout: Duration,
    /// Poll interval of that wait.
    pub poll_interval: Duration,
    /// Kinds (`Kind` or `Kind.group`) applied in a stage of their own before
    /// the other resources (`--custom-apply-stage-kinds`).
    pub custom_stage_kinds: Vec<String>,
    /// Fields left out when deciding whether an object changed or drifted.
    pub ignore: Vec<IgnoreRule>,
    /// Field managers whose fields are taken over on apply, besides kubectl's
    /// and the engine's own `Update` entries (`--override-manager`).
    pub override_managers: Vec<String>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        Self {
            force: false,
            concurrency: 4,
            definitions_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            custom_stage_kinds: Vec::new(),
            ignore: Vec::new(),
            override_managers: Vec::new(),
        }
    }
}

/// Applies, prunes and health-checks objects for one [`Owner`].
#[derive(Clone)]
pub struct Engine {
    client: kube::Client,
    owner: Owner,
    keys: OwnerKeys,
    resolver: Resolver,
    options: ApplyOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("owner", &self.owner)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine with its own discovery cache. Controllers reconciling many
    /// objects should share one [`Resolver`] through [`Engine::with_resolver`].
    pub fn new(client: kube::Client, owner: Owner, options: ApplyOptions) -> Self {
        Self::with_resolver(client, owner, options, Resolver::default())
    }

    /// An engine using `resolver`'s discovery cache.
    pub fn with_resolver(
        client: kube::Client,
        owner: Owner,
        options: ApplyOptions,
        resolver: Resolver,
    ) -> Self {
        let keys = OwnerKeys::new(&owner.group);
        Self {
            client,
            owner,
            keys,
            resolver,
            options,
        }
    }

    /// The owner.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The label and annotation keys of the owner's group.
    pub fn keys(&self) -> &OwnerKeys {
        &self.keys
    }

    /// The discovery cache.
    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }
}

/// An object the API server refused, with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectFailure {
    /// The object, as `Kind/namespace/name`.
    pub object: String,
    /// Why, in the API server's words.
    pub reason: String,
}

impl std::fmt::Display for ObjectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.object, self.reason)
    }
}

fn join_failures(failures: &[ObjectFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Errors of the apply engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object lacks what every object needs (apiVersion, kind, name) or
    /// appears twice in a set.
    #[error("invalid object {object}: {reason}")]
    InvalidObject {
        /// What is known of the object.
        object: String,
        /// What is wrong.
        reason: String,
    },
    /// An inventory entry is not `<namespace>_<name>_<group>_<kind>`.
    #[error("invalid inventory entry {id:?}")]
    InvalidInventoryEntry {
        /// The entry's id.
        id: String,
    },
    /// One or more objects failed validation (server-side dry-run); nothing
    /// of the set was applied after the failure was found.
    #[error("{}", join_failures(failures))]
    Validation {
        /// The refused objects.
        failures: Vec<ObjectFailure>,
    },
    /// Applying (or recreating) an object failed.
    #[error("{0}")]
    Apply(ObjectFailure),
    /// The definitions or classes of a set did not become ready in time.
    #[error("{0}")]
    NotReady(#[source] health::HealthError),
    /// Objects did not become healthy.
    #[error("{0}")]
    Health(#[source] health::HealthError),
    /// A multi-document YAML stream could not be parsed.
    #[error("invalid YAML: {0}")]
    Yaml(String),
    /// A health check expression does not compile.
    #[error("invalid health check expression for {kind} {which} {expression:?}: {reason}")]
    InvalidExpression {
        /// `apiVersion`/`kind` the check is for.
        kind: String,
        /// `current`, `inProgress` or `failed`.
        which: &'static str,
        /// The expression.
        expression: String,
        /// The compiler's message.
        reason: String,
    },
    /// A selector of an ignore rule is invalid.
    #[error("invalid ignore rule selector: {0}")]
    InvalidSelector(String),
}

/// The API server's message for a failed request (not kube's debug dump),
/// formatted to follow a verb: ` (Invalid): Service "x" is invalid: …`.
pub(crate) fn api_reason(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => {
            let reason = if status.reason.is_empty() {
                status.code.to_string()
            } else {
                status.reason.clone()
            };
            format!(" ({reason}): {}", status.message)
        }
        other => format!(": {other}"),
    }
}

/// Whether a request failed with 404 Not Found.
pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 404)
}
