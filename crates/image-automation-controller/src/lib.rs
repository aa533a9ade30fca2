//! ferroflux image-automation-controller: Flux's image-reflector-controller
//! and image-automation-controller in one binary, on the shared harness.
//!
//! - [`image_repository`]: list a registry repository's tags (the OCI
//!   distribution API through `oci`), drop the excluded ones, keep them in the
//!   [`tag_store::TagStore`] and report the scan in status.
//! - [`image_policy`]: pick the latest tag of the referenced repository by
//!   the policy ([`policy::ImagePolicySelector`]), reflect its digest if asked,
//!   and publish it as `status.latestRef`.
//! - [`automation`]: clone the GitRepository, rewrite the setter markers to
//!   the policies' latest images (`image_update`), commit and push.
//!
//! Each kind's reconciler reads top to bottom (fetch, decide, act) and ends
//! in [`reconcile::finish`], which turns the outcome into Flux's conditions,
//! status, events and requeue.
#![warn(missing_docs)]

pub mod automation;
pub mod context;
pub mod image_name;
pub mod image_policy;
pub mod image_repository;
pub mod manager;
pub mod options;
pub mod policy;
pub mod reconcile;
pub mod registry;
pub mod tag_store;

/// What goes back to the harness: failures that did not end in an object's
/// status (status writes, the finalizer, local storage), and a failed
/// attempt that is to be retried or to wait, after its status was written.
pub use runtime::reconcile::ControllerError as Error;
