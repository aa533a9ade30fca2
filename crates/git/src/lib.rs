//! Git for ferroflux controllers: resolving and fetching a reference from a remote
//! repository and checking it out into a directory, with the authentication Flux
//! supports (basic auth, bearer token, custom CA, client certificates, SSH keys with
//! `known_hosts`) and Flux's revision strings (`main@sha1:<commit>`).
//!
//! Network operations run [gix](https://docs.rs/gix) on a blocking thread
//! (`spawn_blocking`) under a timeout; SSH goes through the `ssh` program with the
//! key and `known_hosts` written to a private temporary directory.
//!
//! A checkout also returns the commit's and the annotated tag's signatures with
//! the bytes they sign ([`SignedObject`]), which [`verify`] checks against
//! armored OpenPGP key rings ([`KeyRing`]) for `spec.verify`.
//!
//! [`checkout_submodules`] then fetches a checkout's submodules at the commits
//! it records, recursively, as `git submodule update --init --recursive` does.
//!
//! For image automation, [`commit`] records a checkout's edited work tree as a
//! new (optionally OpenPGP-signed) commit with gix, and [`push`] sends it with
//! the `git` CLI (gix cannot push) under the same authentication.
#![warn(missing_docs)]

mod auth;
mod commit;
mod error;
mod fetch;
mod openpgp;
mod proxy;
mod push;
mod reference;
mod signature;
mod sshsig;
mod submodule;

pub use auth::{Auth, HttpAuth, SshAlgorithms, SshAuth, set_ssh_algorithms};
pub use commit::{CommitRequest, Signature, SigningKey, commit};
pub use error::Error;
pub use fetch::{CheckoutOptions, Remote, RemoteRef, checkout, list_refs};
pub use openpgp::{KeyRing, verify};
pub use proxy::Proxy;
pub use push::{PushRequest, push};
pub use reference::{Commit, Reference, commit_of_revision};
pub use signature::{AnnotatedTag, SignedObject};
pub use sshsig::{SignatureKind, verify_ssh};
pub use submodule::{MAX_SUBMODULE_DEPTH, SubmoduleCheckout, checkout_submodules};
