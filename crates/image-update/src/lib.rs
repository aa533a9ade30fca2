//! The pure half of Flux's image update automation, with no I/O: rewriting
//! the setter markers (`# {"$imagepolicy": "ns:name"}`) in YAML text in
//! place ([`setters`]), and rendering a commit message from a Go
//! `text/template` with Flux's template data ([`template`]).
#![warn(missing_docs)]

pub mod setters;
pub mod template;

mod change;
pub use change::{Change, ObjectIdentifier, PolicyImage, UpdateResult};
