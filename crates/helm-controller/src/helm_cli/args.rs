//! Turning typed options into helm's command-line arguments.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::PROCESS_GRACE;
use super::options::{Identity, ReleaseRef, ServerSide, Wait};
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

/// `--server-side` of an upgrade or rollback, with the flags Flux pairs
/// with it: conflicts forced when applying server-side, `--force-replace`
/// (`force`) only with a client-side apply (helm refuses both together).
/// `server_side` should be resolved ([`ServerSide::resolve`]); `Auto` is
/// passed on as is, without forcing conflicts.
pub(super) fn push_server_side(args: &mut Vec<OsString>, server_side: ServerSide, force: bool) {
    args.push(format!("--server-side={}", server_side.value()).into());
    push_flag(
        args,
        "--force-conflicts",
        server_side == ServerSide::Enabled,
    );
    push_flag(
        args,
        "--force-replace",
        force && server_side != ServerSide::Enabled,
    );
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server_side_args(server_side: ServerSide, force: bool) -> Vec<String> {
        let mut args = Vec::new();
        push_server_side(&mut args, server_side, force);
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn server_side_apply_forces_conflicts_as_flux_does() {
        // `auto` follows the previous revision's apply method.
        let ssa = ServerSide::Auto.resolve(Some("ssa"));
        assert_eq!(ssa, ServerSide::Enabled);
        assert_eq!(ServerSide::Auto.resolve(Some("csa")), ServerSide::Disabled);
        assert_eq!(ServerSide::Auto.resolve(None), ServerSide::Disabled);
        assert_eq!(
            ServerSide::Disabled.resolve(Some("ssa")),
            ServerSide::Disabled
        );
        // Conflicts forced with server-side apply; `force` replaces only
        // with a client-side apply (helm refuses both together).
        assert_eq!(
            server_side_args(ssa, true),
            ["--server-side=true", "--force-conflicts"]
        );
        assert_eq!(
            server_side_args(ServerSide::Disabled, true),
            ["--server-side=false", "--force-replace"]
        );
        assert_eq!(
            server_side_args(ServerSide::Disabled, false),
            ["--server-side=false"]
        );
    }
}
