//! Turning typed options into helm's command-line arguments.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::PROCESS_GRACE;
use super::options::{Identity, ReleaseRef, Wait};
use crate::post_render::PostRenderSpec;

/// The chart and values of an install or upgrade.
pub(super) struct ChartInput<'a> {
    pub(super) chart: &'a Path,
    pub(super) values: &'a serde_json::Value,
    pub(super) post_render: Option<&'a PostRenderSpec>,
}

/// `<action> <name> --namespace <ns>` plus identity flags.
pub(super) fn release_args(action: &str, release: &ReleaseRef) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![action.into(), release.name.clone().into()];
    push_scope(&mut args, &release.namespace, &release.identity);
    args
}

pub(super) fn push_scope(args: &mut Vec<OsString>, namespace: &str, identity: &Identity) {
    args.push("--namespace".into());
    args.push(namespace.into());
    if let Some(user) = &identity.user {
        args.push("--kube-as-user".into());
        args.push(user.into());
    }
    for group in &identity.groups {
        args.push("--kube-as-group".into());
        args.push(group.into());
    }
}

pub(super) fn push_flag(args: &mut Vec<OsString>, flag: &str, on: bool) {
    if on {
        args.push(flag.into());
    }
}

pub(super) fn push_wait(args: &mut Vec<OsString>, wait: Wait, wait_for_jobs: bool) {
    if let Some(flag) = wait.flag() {
        args.push(flag.into());
        push_flag(args, "--wait-for-jobs", wait_for_jobs);
    }
}

pub(super) fn push_revision(args: &mut Vec<OsString>, revision: Option<i64>) {
    if let Some(revision) = revision {
        args.push(format!("--revision={revision}").into());
    }
}

pub(super) fn push_duration(args: &mut Vec<OsString>, flag: &str, duration: Duration) {
    // Go's ParseDuration accepts milliseconds; whole milliseconds are plenty.
    args.push(format!("{flag}={}ms", duration.as_millis()).into());
}

pub(super) fn process_limit(timeout: Duration) -> Duration {
    timeout.saturating_mul(2).saturating_add(PROCESS_GRACE)
}
