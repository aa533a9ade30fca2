//! The `helm` command-line driver: every Helm action runs the real `helm`
//! binary (v4) as a child process.
//!
//! Each call gets its arguments from typed options, runs with a deadline and
//! is killed when dropped (and when the controller dies), stores releases as
//! Helm's own Secrets (`HELM_DRIVER=secret`) in the release namespace so that
//! `helm list` / `helm history` show what the controller did, reads output as
//! JSON where helm offers `-o json`, and turns helm's stderr into a one-line
//! cause for conditions and events. Helm runs with its own config, cache and
//! data directories so the controller never reads a user's helm settings.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets_range};
use prometheus_client::registry::Registry;
use serde::Serialize;
use serde::de::DeserializeOwned;

mod args;
mod options;
mod process;

use args::{
    ChartInput, process_limit, push_duration, push_flag, push_revision, push_scope,
    push_server_side, push_wait, release_args,
};
pub use options::*;
use process::child_setup;
pub use process::{DEFAULT_HELM_NICENESS, FIELD_MANAGER, HELM_EXEC_MODE, exec_helm};

use crate::post_render::{PLUGIN_NAME, PostRenderSpec};
use crate::release::Release;

/// Extra time a helm process gets beyond the timeout it was given for its
/// Kubernetes operations: helm's `--timeout` applies per operation (each
/// hook, the wait), so a whole action may legitimately take longer.
const PROCESS_GRACE: Duration = Duration::from_secs(60);

/// Deadline of helm calls that only read the storage.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a helm call failed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The helm binary does not exist or is not executable.
    #[error("helm binary not found: {0}")]
    NotFound(String),
    /// The process could not be started.
    #[error("failed to run {binary}: {source}")]
    Spawn {
        /// The helm binary.
        binary: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// helm did not finish in time and was killed.
    #[error("helm {action} did not finish within {limit:?} and was killed")]
    Timeout {
        /// The helm subcommand.
        action: &'static str,
        /// The deadline.
        limit: Duration,
    },
    /// helm exited with an error.
    #[error("{cause}")]
    Failed {
        /// The helm subcommand.
        action: &'static str,
        /// helm's error, on one line, without the `Error:` prefix.
        cause: String,
        /// helm's full standard error.
        stderr: String,
    },
    /// The release does not exist in the storage.
    #[error("release: not found")]
    ReleaseNotFound,
    /// helm's output could not be understood.
    #[error("unexpected output of helm {action}: {reason}")]
    Output {
        /// The helm subcommand.
        action: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Local file trouble (temporary values or post-render files).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// How to find and run helm.
#[derive(Clone, Debug)]
pub struct HelmCliConfig {
    /// The helm binary: a path, or a name looked up on `PATH`.
    pub helm_path: PathBuf,
    /// Kubeconfig for helm; `None` uses helm's defaults (in-cluster config
    /// when running in a Pod).
    pub kubeconfig: Option<PathBuf>,
    /// The program helm runs as its post-renderer plugin (normally this
    /// controller's own binary, which has a `post-render` mode); `None`
    /// disables post-rendering.
    pub post_renderer: Option<PathBuf>,
    /// Niceness added to helm processes (see [`DEFAULT_HELM_NICENESS`]).
    pub niceness: u8,
    /// The program that starts helm (this controller's binary, whose
    /// `helm-exec` mode is [`exec_helm`]); `None` sets the child up in the
    /// controller's own fork instead.
    pub launcher: Option<PathBuf>,
}

/// Labels of [`HELM_DURATION_METRIC`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    action: &'static str,
}

/// Wall time of helm child processes (spawn to exit), by helm subcommand.
/// Its sum, set against `gotk_reconcile_duration_seconds`, tells the
/// controller's own share of a reconciliation from helm's.
pub const HELM_DURATION_METRIC: &str = "helm_controller_helm_process_duration_seconds";

/// Runs helm. Cheap to share: it only holds paths.
#[derive(Debug, Clone)]
pub struct HelmCli {
    binary: PathBuf,
    kubeconfig: Option<PathBuf>,
    /// helm's config/cache/data/plugins directories, private to this driver
    /// (and its copies for other clusters).
    home: Arc<tempfile::TempDir>,
    post_render: bool,
    niceness: u8,
    launcher: Option<PathBuf>,
    /// Where helm process times go, once registered.
    durations: Option<Family<ActionLabels, Histogram>>,
}

impl HelmCli {
    /// Finds the helm binary and prepares helm's private directories (and the
    /// post-renderer plugin). Fails with a clear message when helm is missing.
    pub fn new(config: HelmCliConfig) -> Result<Self, HelmError> {
        let binary = resolve_binary(&config.helm_path)?;
        let home = tempfile::Builder::new()
            .prefix("helm-controller-")
            .tempdir()
            .map_err(io_error("creating helm's home directory"))?;
        let post_render = match &config.post_renderer {
            Some(program) => {
                install_post_renderer_plugin(&home.path().join("plugins"), program)?;
                true
            }
            None => false,
        };
        Ok(Self {
            binary,
            kubeconfig: config.kubeconfig,
            home: Arc::new(home),
            post_render,
            niceness: config.niceness,
            launcher: config.launcher,
            durations: None,
        })
    }

    /// Records the wall time of every helm process in `registry` as
    /// [`HELM_DURATION_METRIC`].
    pub fn register_metrics(&mut self, registry: &mut Registry) {
        // Reconciliation's buckets, so both histograms line up.
        let durations = Family::<ActionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets_range(0.01, 1800.0, 10))
        });
        registry.register(
            HELM_DURATION_METRIC,
            "The duration in seconds of helm child processes, by helm subcommand",
            durations.clone(),
        );
        self.durations = Some(durations);
    }

    /// This driver pointed at the cluster of `kubeconfig` (which must exist
    /// as long as the copy runs helm).
    pub fn with_kubeconfig(&self, kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig: Some(kubeconfig),
            ..self.clone()
        }
    }

    /// The helm binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `helm version --short`, e.g. `v4.3.1+gc0d08d0`.
    pub async fn version(&self) -> Result<String, HelmError> {
        let output = self
            .run(
                "version",
                vec!["version".into(), "--short".into()],
                READ_TIMEOUT,
            )
            .await?;
        Ok(String::from_utf8_lossy(&output).trim().to_string())
    }

    /// `helm install` of the chart archive `chart` with `values` (the
    /// user-supplied values), post-rendered per `post_render`. Returns the
    /// release helm printed (see [`Self::upgrade`]).
    pub async fn install(
        &self,
        release: &ReleaseRef,
        chart: &Path,
        values: &serde_json::Value,
        post_render: Option<&PostRenderSpec>,
        options: &InstallOptions,
    ) -> Result<Option<Release>, HelmError> {
        let mut own = Vec::new();
        push_flag(&mut own, "--create-namespace", options.create_namespace);
        push_flag(&mut own, "--skip-crds", options.skip_crds);
        push_flag(&mut own, "--replace", options.replace);
        own.push(format!("--server-side={}", options.server_side).into());
        // Flux always forces conflicts when applying server-side: fields a
        // previous manager (kubectl, another controller) owns are taken.
        push_flag(&mut own, "--force-conflicts", options.server_side);
        let input = ChartInput {
            chart,
            values,
            post_render,
        };
        self.chart_action("install", release, input, &options.chart, own)
            .await
    }

    /// `helm upgrade` (without `--install`) of `release` to the chart archive
    /// `chart` with `values`. Returns the new revision as helm printed it
    /// (`-o json`, the same JSON helm stores), or `None` when the output
    /// could not be read: the storage tells then.
    pub async fn upgrade(
        &self,
        release: &ReleaseRef,
        chart: &Path,
        values: &serde_json::Value,
        post_render: Option<&PostRenderSpec>,
        options: &UpgradeOptions,
    ) -> Result<Option<Release>, HelmError> {
        // Flux's semantics: the values of a release are exactly the values
        // given, unless the previous ones are explicitly preserved.
        let mut own: Vec<OsString> = vec![if options.preserve_values {
            "--reuse-values".into()
        } else {
            "--reset-values".into()
        }];
        push_server_side(&mut own, options.server_side, options.force);
        push_flag(&mut own, "--cleanup-on-fail", options.cleanup_on_fail);
        own.push(format!("--history-max={}", options.history_max).into());
        let input = ChartInput {
            chart,
            values,
            post_render,
        };
        self.chart_action("upgrade", release, input, &options.chart, own)
            .await
    }

    /// Runs install or upgrade: the arguments both share (chart, values,
    /// timeout, wait, ownership, hooks, validation, post-rendering), then
    /// the action's `own`.
    async fn chart_action(
        &self,
        action: &'static str,
        release: &ReleaseRef,
        input: ChartInput<'_>,
        options: &ChartOptions,
        own: Vec<OsString>,
    ) -> Result<Option<Release>, HelmError> {
        // Deleted when the call is over.
        let files = CallFiles::new()?;
        let mut args = release_args(action, release);
        args.push(input.chart.into());
        args.push("-f".into());
        args.push(files.write_json("values.json", input.values)?.into());
        push_duration(&mut args, "--timeout", options.timeout);
        push_wait(&mut args, options.wait, options.wait_for_jobs);
        push_flag(&mut args, "--take-ownership", options.take_ownership);
        push_flag(&mut args, "--no-hooks", options.disable_hooks);
        push_flag(
            &mut args,
            "--disable-openapi-validation",
            options.disable_openapi_validation,
        );
        push_flag(
            &mut args,
            "--skip-schema-validation",
            options.skip_schema_validation,
        );
        self.push_post_render(&mut args, &files, input.post_render)?;
        args.extend(own);
        args.push("-o".into());
        args.push("json".into());
        let output = self
            .run(action, args, process_limit(options.timeout))
            .await?;
        match serde_json::from_slice::<Release>(&output) {
            Ok(printed) => Ok(Some(printed)),
            Err(err) => {
                tracing::debug!(action, error = %err, "helm printed no release");
                Ok(None)
            }
        }
    }

    /// `helm test`.
    pub async fn test(&self, release: &ReleaseRef, options: &TestOptions) -> Result<(), HelmError> {
        let mut args = release_args("test", release);
        push_duration(&mut args, "--timeout", options.timeout);
        for (name, exclude) in &options.filters {
            let bang = if *exclude { "!" } else { "" };
            args.push("--filter".into());
            args.push(format!("{bang}name={name}").into());
        }
        self.run("test", args, process_limit(options.timeout))
            .await
            .map(drop)
    }

    /// `helm rollback` to `options.revision`.
    pub async fn rollback(
        &self,
        release: &ReleaseRef,
        options: &RollbackOptions,
    ) -> Result<(), HelmError> {
        let mut args = release_args("rollback", release);
        args.push(options.revision.to_string().into());
        push_duration(&mut args, "--timeout", options.timeout);
        push_wait(&mut args, options.wait, options.wait_for_jobs);
        push_flag(&mut args, "--no-hooks", options.disable_hooks);
        push_server_side(&mut args, options.server_side, options.force);
        push_flag(&mut args, "--cleanup-on-fail", options.cleanup_on_fail);
        args.push(format!("--history-max={}", options.history_max).into());
        self.run("rollback", args, process_limit(options.timeout))
            .await
            .map(drop)
    }

    /// `helm uninstall`.
    pub async fn uninstall(
        &self,
        release: &ReleaseRef,
        options: &UninstallOptions,
    ) -> Result<(), HelmError> {
        let mut args = release_args("uninstall", release);
        push_duration(&mut args, "--timeout", options.timeout);
        if let Some(flag) = options.wait.flag() {
            args.push(flag.into());
        }
        push_flag(&mut args, "--no-hooks", options.disable_hooks);
        push_flag(&mut args, "--keep-history", options.keep_history);
        let cascade = match options.cascade {
            Cascade::Background => "background",
            Cascade::Foreground => "foreground",
            Cascade::Orphan => "orphan",
        };
        args.push(format!("--cascade={cascade}").into());
        self.run("uninstall", args, process_limit(options.timeout))
            .await
            .map(drop)
    }

    /// `helm status -o json` of the latest revision (or `revision`).
    pub async fn status(
        &self,
        release: &ReleaseRef,
        revision: Option<i64>,
    ) -> Result<Release, HelmError> {
        let mut args = release_args("status", release);
        push_revision(&mut args, revision);
        args.push("-o".into());
        args.push("json".into());
        self.run_json("status", args).await
    }

    /// `helm history -o json`, oldest revision first.
    pub async fn history(&self, release: &ReleaseRef) -> Result<Vec<HistoryEntry>, HelmError> {
        let mut args = release_args("history", release);
        args.push("-o".into());
        args.push("json".into());
        self.run_json("history", args).await
    }

    /// `helm list -o json` of the releases of `namespace` in every state.
    pub async fn list(
        &self,
        namespace: &str,
        identity: &Identity,
    ) -> Result<Vec<ListEntry>, HelmError> {
        let mut args: Vec<OsString> = [
            "list",
            "--deployed",
            "--failed",
            "--pending",
            "--superseded",
            "--uninstalled",
            "--uninstalling",
        ]
        .into_iter()
        .map(OsString::from)
        .collect();
        push_scope(&mut args, namespace, identity);
        args.push("-o".into());
        args.push("json".into());
        self.run_json("list", args).await
    }

    /// `helm get values -o json`: the user-supplied values of the release
    /// (`all` adds the chart's defaults).
    pub async fn get_values(
        &self,
        release: &ReleaseRef,
        revision: Option<i64>,
        all: bool,
    ) -> Result<serde_json::Value, HelmError> {
        let mut args = release_args("get", release);
        args.insert(1, "values".into());
        push_revision(&mut args, revision);
        push_flag(&mut args, "--all", all);
        args.push("-o".into());
        args.push("json".into());
        self.run_json("get values", args).await
    }

    /// `helm get manifest`: the rendered (and post-rendered) objects of the
    /// release, hooks excluded.
    pub async fn get_manifest(
        &self,
        release: &ReleaseRef,
        revision: Option<i64>,
    ) -> Result<String, HelmError> {
        let mut args = release_args("get", release);
        args.insert(1, "manifest".into());
        push_revision(&mut args, revision);
        let output = self.run("get manifest", args, READ_TIMEOUT).await?;
        String::from_utf8(output).map_err(|err| HelmError::Output {
            action: "get manifest",
            reason: err.to_string(),
        })
    }

    fn push_post_render(
        &self,
        args: &mut Vec<OsString>,
        files: &CallFiles,
        spec: Option<&PostRenderSpec>,
    ) -> Result<(), HelmError> {
        let Some(spec) = spec else {
            return Ok(());
        };
        if !self.post_render {
            return Err(HelmError::Output {
                action: "post-render",
                reason: "no post-renderer program is configured".into(),
            });
        }
        let path = files.write_json("post-render.json", spec)?;
        args.push("--post-renderer".into());
        args.push(PLUGIN_NAME.into());
        args.push("--post-renderer-args".into());
        args.push(path.into());
        Ok(())
    }

    async fn run_json<T: DeserializeOwned>(
        &self,
        action: &'static str,
        args: Vec<OsString>,
    ) -> Result<T, HelmError> {
        let output = self.run(action, args, READ_TIMEOUT).await?;
        serde_json::from_slice(&output).map_err(|err| HelmError::Output {
            action,
            reason: err.to_string(),
        })
    }

    /// Runs helm with `args`, returning its standard output.
    async fn run(
        &self,
        action: &'static str,
        mut args: Vec<OsString>,
        limit: Duration,
    ) -> Result<Vec<u8>, HelmError> {
        if let Some(kubeconfig) = &self.kubeconfig {
            args.push("--kubeconfig".into());
            args.push(kubeconfig.into());
        }
        let home = self.home.path();
        let mut command = match &self.launcher {
            // No pre-exec hook: the standard library spawns with
            // posix_spawn (vfork), sparing a copy of the controller's page
            // tables and the copy-on-write faults that follow every fork.
            Some(launcher) => {
                let mut command = tokio::process::Command::new(launcher);
                command
                    .arg(HELM_EXEC_MODE)
                    .arg(std::process::id().to_string())
                    .arg(self.niceness.to_string())
                    .arg(&self.binary);
                command
            }
            None => {
                let mut command = tokio::process::Command::new(&self.binary);
                command.arg0(FIELD_MANAGER);
                child_setup(&mut command, self.niceness);
                command
            }
        };
        command
            .args(&args)
            .env("HELM_DRIVER", "secret")
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_PLUGINS", home.join("plugins"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        tracing::debug!(action, ?args, "running helm");
        let started = Instant::now();
        let child = command.spawn().map_err(|source| HelmError::Spawn {
            binary: self.binary.display().to_string(),
            source,
        })?;
        // Dropping the child on timeout kills it (kill_on_drop).
        let output = tokio::time::timeout(limit, child.wait_with_output()).await;
        if let Some(durations) = &self.durations {
            durations
                .get_or_create(&ActionLabels { action })
                .observe(started.elapsed().as_secs_f64());
        }
        let output = output
            .map_err(|_| HelmError::Timeout { action, limit })?
            .map_err(|source| HelmError::Spawn {
                binary: self.binary.display().to_string(),
                source,
            })?;
        if output.status.success() {
            return Ok(output.stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let cause = one_line_cause(&stderr, output.status);
        if cause == "release: not found" || cause.ends_with(": release: not found") {
            return Err(HelmError::ReleaseNotFound);
        }
        Err(HelmError::Failed {
            action,
            cause,
            stderr,
        })
    }
}

impl HelmError {
    /// Whether helm refused an install because the release exists: helm
    /// wrote nothing, whatever the storage holds is someone else's doing.
    pub fn is_name_in_use(&self) -> bool {
        matches!(self, HelmError::Failed { cause, .. }
            if cause.contains("cannot reuse a name that is still in use")
                || cause.contains("cannot re-use a name that is still in use"))
    }
}

/// Temporary files of one helm call (values, post-render spec), deleted
/// when the call is over.
struct CallFiles {
    dir: tempfile::TempDir,
}

impl CallFiles {
    fn new() -> Result<Self, HelmError> {
        let dir = tempfile::Builder::new()
            .prefix("helm-call-")
            .tempdir()
            .map_err(io_error("creating a temporary directory"))?;
        Ok(Self { dir })
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> Result<PathBuf, HelmError> {
        let path = self.dir.path().join(name);
        let bytes = serde_json::to_vec(value).map_err(|err| HelmError::Io {
            context: format!("encoding {name}"),
            source: std::io::Error::other(err),
        })?;
        std::fs::write(&path, bytes).map_err(io_error(format!("writing {}", path.display())))?;
        Ok(path)
    }
}

fn io_error(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> HelmError {
    let context = context.into();
    move |source| HelmError::Io { context, source }
}

/// The helm binary: `path` itself when it names a file, else the first
/// executable called `path` on `PATH`.
fn resolve_binary(path: &Path) -> Result<PathBuf, HelmError> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |candidate: &Path| {
        std::fs::metadata(candidate)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    };
    if path.components().count() > 1 || path.is_absolute() {
        return if executable(path) {
            Ok(path.to_path_buf())
        } else {
            Err(HelmError::NotFound(format!(
                "{} does not exist or is not executable (set --helm-path)",
                path.display()
            )))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(path))
        .find(|candidate| executable(candidate))
        .ok_or_else(|| {
            HelmError::NotFound(format!(
                "no executable '{}' on PATH (install helm v4 or set --helm-path)",
                path.display()
            ))
        })
}

/// Writes the post-renderer plugin helm looks up by [`PLUGIN_NAME`]: a
/// subprocess plugin running `program post-render <spec file>`.
fn install_post_renderer_plugin(plugins: &Path, program: &Path) -> Result<(), HelmError> {
    let dir = plugins.join(PLUGIN_NAME);
    std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
    let manifest = serde_json::json!({
        "apiVersion": "v1",
        "type": "postrenderer/v1",
        "name": PLUGIN_NAME,
        "version": "0.1.0",
        "runtime": "subprocess",
        "runtimeConfig": {
            "platformCommand": [{
                "command": program.display().to_string(),
                "args": ["post-render"],
            }],
        },
    });
    // JSON is YAML, so plugin.yaml can be written without a YAML emitter.
    std::fs::write(dir.join("plugin.yaml"), manifest.to_string())
        .map_err(io_error("writing the post-renderer plugin"))
}

/// Prefixes helm puts before the error of a failed action; Flux's messages
/// carry the bare error.
const ACTION_PREFIXES: &[&str] = &[
    "INSTALLATION FAILED: ",
    "UPGRADE FAILED: ",
    "ROLLBACK FAILED: ",
    "UNINSTALL FAILED: ",
];

/// helm's error on one line: what follows the last `Error: ` of stderr
/// (lines joined with `; `), without helm's action prefix.
pub fn one_line_cause(stderr: &str, status: std::process::ExitStatus) -> String {
    let tail = match stderr.rfind("Error: ") {
        Some(at) => &stderr[at + "Error: ".len()..],
        None => stderr,
    };
    let mut cause = tail
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    for prefix in ACTION_PREFIXES {
        if let Some(rest) = cause.strip_prefix(prefix) {
            cause = rest.to_string();
        }
    }
    if cause.is_empty() {
        format!("helm exited with {status}")
    } else {
        cause
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// Field 19 of `/proc/<pid>/stat` (the process name, field 2, has no
    /// spaces here).
    fn niceness(stat: &str) -> i32 {
        stat.split_whitespace()
            .nth(18)
            .and_then(|n| n.parse().ok())
            .expect("niceness")
    }

    #[tokio::test]
    async fn helm_runs_nicer_than_the_controller() {
        let own = niceness(&std::fs::read_to_string("/proc/self/stat").expect("stat"));
        let mut command = tokio::process::Command::new("cat");
        command.arg("/proc/self/stat");
        child_setup(&mut command, DEFAULT_HELM_NICENESS);
        let output = command.output().await.expect("cat runs");
        let child = niceness(&String::from_utf8_lossy(&output.stdout));
        assert_eq!(child, (own + i32::from(DEFAULT_HELM_NICENESS)).min(19));
    }

    fn status(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn causes_are_one_line_without_prefixes() {
        let stderr = "WARNING: something\nError: INSTALLATION FAILED: values don't meet the specifications of the schema(s) in the following chart(s):\ncm:\n- at '/data/greeting': got number, want string\n";
        assert_eq!(
            one_line_cause(stderr, status(1)),
            "values don't meet the specifications of the schema(s) in the following chart(s):; cm:; - at '/data/greeting': got number, want string"
        );
        assert_eq!(
            one_line_cause("Error: UPGRADE FAILED: boom\n", status(1)),
            "boom"
        );
        assert_eq!(
            one_line_cause("", status(2)),
            "helm exited with exit status: 2"
        );
    }

    #[test]
    fn arguments_follow_helm_v4_flags() {
        let release = ReleaseRef {
            name: "podinfo".into(),
            namespace: "apps".into(),
            identity: Identity::service_account("apps", "deployer"),
        };
        let args = release_args("install", &release);
        let args: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            args,
            [
                "install",
                "podinfo",
                "--namespace",
                "apps",
                "--kube-as-user",
                "system:serviceaccount:apps:deployer",
                "--kube-as-group",
                "system:serviceaccounts",
                "--kube-as-group",
                "system:serviceaccounts:apps",
            ]
        );
        let mut wait = Vec::new();
        push_wait(&mut wait, Wait::HookOnly, true);
        assert!(wait.is_empty(), "hooks-only is helm's default");
        push_wait(&mut wait, Wait::Watcher, true);
        assert_eq!(wait, ["--wait=watcher", "--wait-for-jobs"]);
        let mut timeout = Vec::new();
        push_duration(&mut timeout, "--timeout", Duration::from_secs(90));
        assert_eq!(timeout, ["--timeout=90000ms"]);
    }

    #[test]
    fn refused_installs_are_told_apart() {
        let failed = |cause: &str| HelmError::Failed {
            action: "install",
            cause: cause.to_string(),
            stderr: String::new(),
        };
        assert!(
            failed("INSTALLATION FAILED: cannot reuse a name that is still in use")
                .is_name_in_use()
        );
        assert!(failed("cannot re-use a name that is still in use").is_name_in_use());
        assert!(!failed("INSTALLATION FAILED: context deadline exceeded").is_name_in_use());
        assert!(!HelmError::ReleaseNotFound.is_name_in_use());
    }

    #[test]
    fn missing_helm_is_a_clear_error() {
        let err = resolve_binary(Path::new("/nonexistent/helm")).expect_err("missing");
        assert!(err.to_string().contains("--helm-path"), "{err}");
        let err = resolve_binary(Path::new("no-such-helm-binary-here")).expect_err("missing");
        assert!(err.to_string().contains("on PATH"), "{err}");
    }
}
