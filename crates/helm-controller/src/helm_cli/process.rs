//! How a helm process starts: through this binary's helm-exec launcher mode,
//! dying with the controller and running at a lower priority.

use std::ffi::OsString;

/// Niceness added to helm processes by default: rendering and applying
/// charts is batch work, while the controller's own threads (watches,
/// status writes, the leader lease) must not queue behind several helm
/// processes sharing the container's CPU.
pub const DEFAULT_HELM_NICENESS: u8 = 10;

/// Sets up the child: it dies with the controller (if the controller is
/// killed, even with SIGKILL, mid-action, helm stops too, as it would inside
/// Flux's process, and the release is left pending for the next start to
/// unlock), and it runs `niceness` steps nicer than the controller.
#[allow(unsafe_code)]
pub(super) fn child_setup(command: &mut tokio::process::Command, niceness: u8) {
    // SAFETY: prctl and nice are async-signal-safe and touch no
    // memory of the parent. The death signal fires when the spawning thread
    // exits; helm is spawned from the runtime's worker threads, which live
    // as long as the controller.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Best effort: lowering one's priority is not refused, and helm
            // must run even where it were.
            libc::nice(libc::c_int::from(niceness));
            Ok(())
        });
    }
}

/// The field manager helm applies objects with, and so the name helm runs
/// under: helm takes its field manager from the base name of its `argv[0]`
/// (it has no flag for it), and Flux's helm-controller sets it to its own
/// name. Objects applied by either controller then have the same manager,
/// so neither conflicts with the other's fields after a swap.
pub const FIELD_MANAGER: &str = "helm-controller";

/// The first argument of the controller binary that makes it [`exec_helm`].
pub const HELM_EXEC_MODE: &str = "helm-exec";

/// The `helm-exec` mode: `<parent pid> <niceness> <helm> [args...]`. Sets
/// the process up as `child_setup` would (death with the parent, lower
/// priority), then becomes helm. Returns only on failure.
#[allow(unsafe_code)]
pub fn exec_helm(args: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let invalid =
        |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_string());
    let [parent, niceness, helm, rest @ ..] = args else {
        return invalid(
            "usage: helm-controller helm-exec <parent pid> <niceness> <helm> [args...]",
        );
    };
    let Some(parent) = parent.to_str().and_then(|p| p.parse::<libc::pid_t>().ok()) else {
        return invalid("helm-exec: the parent pid is not a number");
    };
    let Some(niceness) = niceness.to_str().and_then(|n| n.parse::<u8>().ok()) else {
        return invalid("helm-exec: the niceness is not a number");
    };
    // SAFETY: plain system calls on this process, nothing shared.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return std::io::Error::last_os_error();
        }
        // The controller died before the death signal was armed.
        if libc::getppid() != parent {
            return std::io::Error::other("helm-exec: the controller is gone");
        }
        libc::nice(libc::c_int::from(niceness));
    }
    std::process::Command::new(helm)
        .arg0(FIELD_MANAGER)
        .args(rest)
        .exec()
}
