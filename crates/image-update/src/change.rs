//! What an update changed, shared by the setters (which produce it) and the
//! commit message (which shows it); named as Flux's `update.Result`.

use std::collections::BTreeMap;

/// The image an ImagePolicy selected (its `status.latestRef`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyImage {
    /// Image name without tag or digest (`ghcr.io/org/app`).
    pub name: String,
    /// The selected tag.
    pub tag: String,
    /// The digest of that tag (`sha256:…`), when the policy reflects it.
    pub digest: Option<String>,
}

/// The Kubernetes object a change was made in (Flux's `ObjectIdentifier`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectIdentifier {
    /// `apiVersion` of the object.
    pub api_version: String,
    /// `kind` of the object.
    pub kind: String,
    /// `metadata.namespace` (empty when absent).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

/// One value a setter replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// The value before.
    pub old_value: String,
    /// The value written.
    pub new_value: String,
    /// The setter's name as written in the marker (`ns:name`, `ns:name:tag`, ...).
    pub setter: String,
}

/// Everything one update run changed: file (relative path) → object → changes
/// (Flux's `update.Result.FileChanges`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateResult {
    /// Changes by file, then by object, in the order they were made.
    pub file_changes: BTreeMap<String, BTreeMap<ObjectIdentifier, Vec<Change>>>,
}
