//! Shared controller plumbing used by every ferroflux controller.
