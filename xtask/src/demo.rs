//! `cargo xtask demo`: the main job, GitOps from a Git repository to a
//! cluster, on parts the demo starts itself and stops on Ctrl-C.
//!
//! A control plane of its own, a Git server, an OCI registry,
//! source-controller, kustomize-controller, image-automation-controller and
//! notification-controller (this workspace's binaries); an example app pushed
//! to the Git server, its image to the registry; an Alert sending the app's
//! events to a generic Provider whose address is a recorder the demo runs; a
//! GitRepository and a Kustomization for the app, an ImageRepository, an
//! ImagePolicy and an ImageUpdateAutomation for its image. It then shows a
//! change rolled out, a removed object pruned, a push announced by GitHub's
//! signed webhook to a Receiver and rolled out (with the notifications the
//! recorder got), and a new image tag written back to Git and rolled out,
//! and keeps running (printing each newly applied revision and each
//! notification) so the user can push changes themselves. `--once` stops
//! after the scripted steps (the e2e test runs it so).
//!
//! [`Stack`] without image automation (control plane + Git server +
//! source-controller + kustomize-controller) is also what `cargo xtask bench
//! kustomize-controller` measures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use api::image::{ImagePolicy, ImageRepository};
use api::kustomize::Kustomization;
use api::source::GitRepository;
use e2e::cluster::Cluster;
use e2e::git_server::{GitServer, Repo};
use e2e::process::Service;
use e2e::registry::Registry;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service as KubeService};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use serde_json::{Value, json};

use crate::notification::{github_push_payload, github_signature};
use e2e::http_recorder::{HttpRecorder as Recorder, Recorded};

/// Where the GitRepository and the Kustomization live (as `flux bootstrap`'s).
pub const SYSTEM_NAMESPACE: &str = "flux-system";
const APP: &str = "podinfo";
/// The app's image repository in the demo's registry.
const IMAGE_REPOSITORY: &str = "flux-system/podinfo";
/// The image tag of the first commit; the ImagePolicy takes any tag from it up.
const FIRST_TAG: &str = "6.0.0";
/// The tag the demo pushes once the Git steps are done.
const NEW_TAG: &str = "6.1.0";
/// The automation's commit message: each change, file by file.
const MESSAGE_TEMPLATE: &str = r#"Automated image update by {{ .AutomationObject.Name }}

{{ range $file, $objects := .Changed.FileChanges -}}
{{ $file }}:
{{- range $object, $changes := $objects }}
{{- range $changes }}
  {{ $object.Kind }}/{{ $object.Name }}: {{ .OldValue }} -> {{ .NewValue }}
{{- end }}
{{- end }}
{{ end -}}"#;
/// How long a step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(120);
/// The secret of the Receiver's GitHub webhook (Secret `podinfo-token`).
const WEBHOOK_SECRET: &str = "demo-webhook-secret";
/// The Provider posting to the demo's recorder.
const RECORDER_PROVIDER: &str = "recorder";

/// Runs the demo; with `once`, stops after the scripted steps.
pub fn run(once: bool) -> Result<()> {
    eprintln!("==> installing what is missing (Debian packages, helm, kubectl)");
    e2e::packages::ensure_all()?;
    let kubectl = e2e::packages::kubectl_kustomize()?;
    eprintln!(
        "==> building source-controller, kustomize-controller, image-automation-controller and notification-controller"
    );
    let binaries = ControllerBinaries::build_with(
        false,
        Optional {
            image_automation: true,
            notification: true,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")?;
    // The directories the stack made, to check they are gone at the end.
    let made = std::sync::Mutex::new(Vec::new());
    runtime.block_on(async {
        // Dropping the demo's future (on Ctrl-C) drops the stack, which stops
        // every process it started and removes every directory it made.
        tokio::select! {
            result = demo(&binaries, &kubectl, once, &made) => result,
            _ = tokio::signal::ctrl_c() => {
                eprintln!("\n==> Ctrl-C: stopping everything the demo started");
                Ok(())
            }
        }
    })?;
    let made = made
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(left) = made.iter().find(|dir| dir.exists()) {
        bail!("{} was left behind", left.display());
    }
    eprintln!(
        "==> stopped the control plane, the Git server, the registry, the recorder and the four controllers; removed:"
    );
    for dir in made {
        eprintln!("    {}", dir.display());
    }
    Ok(())
}

async fn demo(
    binaries: &ControllerBinaries,
    kubectl: &Path,
    once: bool,
    made: &std::sync::Mutex<Vec<PathBuf>>,
) -> Result<()> {
    eprintln!(
        "==> starting a control plane of the demo's own (the first run builds it from Go modules, ~15 min), \
         a Git server, an OCI registry, source-controller, kustomize-controller, image-automation-controller \
         and notification-controller"
    );
    let stack = Stack::start(binaries, &[]).await?;
    made.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .extend(stack.directories());
    let kubectl = Kubectl {
        binary: kubectl.to_path_buf(),
        kubeconfig: stack.cluster.kubeconfig_path().to_path_buf(),
    };
    let registry = stack.registry()?;
    let image = format!("{}/{IMAGE_REPOSITORY}", registry.host());
    eprintln!(
        "    control plane {} ; Git server {} ; registry {} ; logs in {}",
        stack.cluster.url(),
        stack.git.http_base(),
        registry.host(),
        stack.workdir.path().display()
    );

    let recorder = notifications(&stack).await?;
    eprintln!(
        "==> pushing the image {image}:{FIRST_TAG} and the example app to {}",
        stack.git.http_url(APP)
    );
    let digest = tokio::task::block_in_place(|| registry.push_image(IMAGE_REPOSITORY, FIRST_TAG))?;
    eprintln!("    {image}:{FIRST_TAG}@{digest}");
    let repo = stack.create_repo(APP, app_files(&image)).await?;
    let first = format!("main@sha1:{}", repo.head("main")?);
    eprintln!("    {first}");

    eprintln!("==> creating GitRepository and Kustomization {SYSTEM_NAMESPACE}/{APP}");
    stack.git_repository(APP, &repo, "1m").await?;
    stack
        .kustomization(
            APP,
            json!({"interval": "10m", "path": "./apps/podinfo/demo", "prune": true, "wait": true,
                "timeout": "2m", "sourceRef": {"kind": "GitRepository", "name": APP}}),
        )
        .await?;
    let artifact = stack.source_ready(APP, &first).await?;
    eprintln!("    GitRepository ready: {artifact}");
    let (applied, took) = stack.applied(APP, &first).await?;
    eprintln!("    Kustomization ready in {took:.1?}: {applied}");

    eprintln!(
        "==> creating ImageRepository, ImagePolicy (semver >={FIRST_TAG}) and ImageUpdateAutomation {SYSTEM_NAMESPACE}/{APP}"
    );
    stack.image_automation(APP, &image).await?;
    let latest = stack.latest_image(APP, FIRST_TAG).await?;
    eprintln!("    ImagePolicy ready: latest image {latest}");
    let up_to_date = stack.automation_ready(APP).await?;
    eprintln!("    ImageUpdateAutomation ready: {up_to_date}");
    kubectl.show(&["get", "gitrepositories,kustomizations", "-A"])?;
    kubectl.show(&[
        "get",
        "imagerepositories,imagepolicies,imageupdateautomations",
        "-A",
    ])?;
    kubectl.show(&[
        "get",
        "namespaces,deployments,services,configmaps",
        "-n",
        APP,
        "-l",
        "kustomize.toolkit.fluxcd.io/name=podinfo",
    ])?;

    eprintln!("==> a change: debug logging, committed and requested at once");
    let started = Instant::now();
    let second = stack
        .commit(
            &repo,
            APP,
            &[("apps/podinfo/demo/configmap.yaml", config_map("debug"))],
            &[],
            "podinfo: debug logging",
        )
        .await?;
    stack.applied(APP, &second).await?;
    eprintln!(
        "    {second} applied {:.1?} after the commit",
        started.elapsed()
    );
    kubectl.show(&[
        "get",
        "deployment/podinfo",
        "configmap/podinfo-config",
        "-n",
        APP,
        "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image,LOG_LEVEL:.data.PODINFO_LOG_LEVEL",
    ])?;

    eprintln!("==> pruning: the Service leaves the repository, so it leaves the cluster");
    let third = stack
        .commit(
            &repo,
            APP,
            &[("apps/podinfo/base/kustomization.yaml", base(false))],
            &["apps/podinfo/base/service.yaml"],
            "drop the Service",
        )
        .await?;
    stack.applied(APP, &third).await?;
    let services: Api<KubeService> = Api::namespaced(stack.client.clone(), APP);
    if services.get_opt(APP).await?.is_some() {
        bail!("Service {APP}/{APP} is still there after {third} was applied");
    }
    eprintln!("    {third} applied; Service {APP}/{APP} deleted");
    kubectl.show(&[
        "get",
        "deployments,services,configmaps",
        "-n",
        APP,
        "-l",
        "kustomize.toolkit.fluxcd.io/name=podinfo",
    ])?;

    let (fourth, webhook) = webhook(&stack, &repo, &kubectl, &recorder, &third).await?;

    image_update(&stack, &repo, &kubectl, &fourth).await?;

    if once {
        return Ok(());
    }
    println!(
        "\nYour turn (in another terminal):\n\
         \x20 export KUBECONFIG={kubeconfig}\n\
         \x20 git clone {url} podinfo && cd podinfo\n\
         \x20 # edit apps/podinfo/demo/configmap.yaml, then\n\
         \x20 git commit -am 'my change' && git push\n\
         \x20 {kubectl} -n {SYSTEM_NAMESPACE} annotate gitrepository/{APP} --overwrite reconcile.fluxcd.io/requestedAt=\"$(date +%s)\"\n\
         \x20 {kubectl} get kustomizations -A -w\n\
         (without the annotation, the source is polled every minute)\n\
         or, instead of the annotation, announce the push as GitHub would, to the Receiver:\n\
         \x20 {curl}\n\
         Tags >={FIRST_TAG} pushed to {image} are written to main by the automation (the registry\n\
         is scanned every minute), so pull before you push.\n\
         Each new revision applied and each notification the recorder gets is printed here.\n\
         Ctrl-C stops everything.",
        kubeconfig = stack.cluster.kubeconfig_path().display(),
        url = stack.git.http_url_with_credentials(APP),
        kubectl = kubectl.binary.display(),
        curl = github_curl(&webhook),
    );
    let latest = repo.head("main")?;
    stack
        .follow(APP, &format!("main@sha1:{latest}"), &recorder)
        .await
}

/// A Provider of type `generic` posting to a recorder the demo runs, and an
/// Alert sending it every event of the app's GitRepository and
/// Kustomization: what a webhook service would get.
async fn notifications(stack: &Stack) -> Result<Recorder> {
    let recorder = Recorder::start().await?;
    let address = format!("{}/flux-events", recorder.url);
    eprintln!(
        "==> creating Provider {SYSTEM_NAMESPACE}/{RECORDER_PROVIDER} (generic, {address}: a recorder the demo runs) \
         and Alert {SYSTEM_NAMESPACE}/{APP} (every event of GitRepository and Kustomization {APP})"
    );
    stack
        .provider(RECORDER_PROVIDER, "generic", &address, json!({}))
        .await?;
    stack
        .alert(
            APP,
            RECORDER_PROVIDER,
            "info",
            json!([{"kind": "GitRepository", "name": APP}, {"kind": "Kustomization", "name": APP}]),
        )
        .await?;
    stack.alerts_in_effect().await?;
    Ok(recorder)
}

/// A push announced by GitHub's signed `push` webhook to a Receiver of the
/// GitRepository, as a repository's webhook on GitHub would send it: the
/// GitRepository fetches at once, the Kustomization applies, and the
/// notifications of that revision reach the recorder. Returns the new
/// revision and the webhook URL.
async fn webhook(
    stack: &Stack,
    repo: &Repo,
    kubectl: &Kubectl,
    recorder: &Recorder,
    previous: &str,
) -> Result<(String, String)> {
    eprintln!(
        "==> a push announced by GitHub's webhook: Receiver {SYSTEM_NAMESPACE}/{APP} (type github, events push) \
         for GitRepository {APP}"
    );
    let url = stack
        .github_receiver(APP, WEBHOOK_SECRET, &[("GitRepository", APP)])
        .await?;
    eprintln!("    webhook URL {url}, secret in Secret {SYSTEM_NAMESPACE}/{APP}-token");
    let seen = recorder.requests().len();
    let before = previous.strip_prefix("main@sha1:").unwrap_or(previous);
    let after = stack
        .push(
            repo,
            &[(
                "apps/podinfo/demo/configmap.yaml",
                config_map_saying("debug", "hello from a webhook"),
            )],
            "podinfo: a new UI message",
        )
        .await?;
    let revision = format!("main@sha1:{after}");
    eprintln!("    pushed {revision} (the GitRepository itself looks every minute)");
    let body = github_push_payload(
        &format!("ferroflux/{APP}"),
        repo.http_url(),
        "main",
        before,
        &after,
    );
    eprintln!(
        "    POST {url}\n      X-GitHub-Event: push\n      X-Hub-Signature-256: {}",
        github_signature(WEBHOOK_SECRET, &body)
    );
    let sent = Instant::now();
    let http = reqwest::Client::new();
    let answer =
        crate::notification::send_github_webhook(&http, &url, "push", WEBHOOK_SECRET, body).await?;
    if answer.status != 200 {
        bail!(
            "the Receiver answered {}: {}\n{}",
            answer.status,
            answer.body,
            stack.logs(30)
        );
    }
    eprintln!(
        "    {:.1?}: the Receiver answered {}, {}",
        sent.elapsed(),
        answer.status,
        answer.body.trim()
    );
    stack.applied(APP, &revision).await?;
    eprintln!(
        "    {:.1?}: Kustomization {SYSTEM_NAMESPACE}/{APP} applied {revision}",
        sent.elapsed()
    );
    // The revision's notifications: source-controller's new artifact and
    // kustomize-controller's change set (its "Reconciliation finished"
    // carries `commit_status: update`, which only Git forge Providers get,
    // as in Flux).
    for kind in ["GitRepository", "Kustomization"] {
        let arrived = recorder
            .wait_for(STEP_TIMEOUT, |r| {
                let event = r.json();
                event["involvedObject"]["kind"] == kind
                    && event_revision(&event) == Some(revision.as_str())
            })
            .await;
        if arrived.is_none() {
            bail!(
                "no notification about {kind} {APP} at {revision} reached the recorder\n{}",
                stack.logs(30)
            );
        }
    }
    eprintln!(
        "    the recorder got (Alert {APP} → Provider {RECORDER_PROVIDER}), {} before these:",
        seen
    );
    for request in recorder.requests().iter().skip(seen) {
        eprintln!("{}", notification_line(request));
    }
    eprintln!("    the same by hand (after a push): {}", github_curl(&url));
    kubectl.show(&["get", "receivers,alerts,providers", "-n", SYSTEM_NAMESPACE])?;
    Ok((revision, url))
}

/// The revision an event is about (its controller's `revision` metadata).
fn event_revision(event: &Value) -> Option<&str> {
    event["metadata"]
        .as_object()?
        .iter()
        .find(|(key, _)| *key == "revision" || key.ends_with("/revision"))
        .and_then(|(_, value)| value.as_str())
}

/// One notification the recorder got, as the demo prints it: severity,
/// object, reason, the message's lines and the revision.
fn notification_line(request: &Recorded) -> String {
    let event = request.json();
    let object = &event["involvedObject"];
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let mut line = format!(
        "      [{}] {} {}/{}/{} {}: {}",
        request.header("gotk-component").unwrap_or_default(),
        text(&event["severity"]),
        text(&object["kind"]),
        text(&object["namespace"]),
        text(&object["name"]),
        text(&event["reason"]),
        text(&event["message"])
            .trim_end()
            .replace('\n', "\n        ")
    );
    if let Some(revision) = event_revision(&event) {
        line.push_str(&format!(" (revision {revision})"));
    }
    line
}

/// A `curl` that sends GitHub's `push` webhook to `url`, signed with
/// `openssl` as GitHub signs it.
fn github_curl(url: &str) -> String {
    format!(
        "body='{{\"ref\":\"refs/heads/main\"}}'; curl -sS -X POST {url} -H 'Content-Type: application/json' \
         -H 'X-GitHub-Event: push' -H \"X-Hub-Signature-256: sha256=$(printf '%s' \"$body\" | openssl dgst -sha256 \
         -hmac '{WEBHOOK_SECRET}' | sed 's/^.*= //')\" -d \"$body\""
    )
}

/// A new tag in the registry, scanned on request (as `flux reconcile image
/// repository` does), selected by the policy, written to Git by the
/// automation, fetched by source-controller at the automation's request and
/// applied: each step printed with the time since the tag was pushed.
async fn image_update(stack: &Stack, repo: &Repo, kubectl: &Kubectl, previous: &str) -> Result<()> {
    let registry = stack.registry()?;
    let image = format!("{}/{IMAGE_REPOSITORY}", registry.host());
    eprintln!("==> a new image: {image}:{NEW_TAG} pushed to the registry, a scan requested");
    let started = Instant::now();
    tokio::task::block_in_place(|| registry.push_image(IMAGE_REPOSITORY, NEW_TAG))?;
    stack.request_reconcile_of::<ImageRepository>(APP).await?;
    let latest = stack.latest_image(APP, NEW_TAG).await?;
    eprintln!(
        "    {:.1?}: ImagePolicy {SYSTEM_NAMESPACE}/{APP} selected {latest}",
        started.elapsed()
    );
    let previous = previous.strip_prefix("main@sha1:").unwrap_or(previous);
    let (commit, shown) = stack.pushed_after(repo, previous).await?;
    eprintln!(
        "    {:.1?}: ImageUpdateAutomation {SYSTEM_NAMESPACE}/{APP} pushed to main:",
        started.elapsed()
    );
    // `git show` separates the message's trailing newline from the diff by
    // blank lines of its own: one is enough.
    let mut blank = false;
    for line in shown.lines() {
        if !(blank && line.is_empty()) {
            eprintln!("      {line}");
        }
        blank = line.is_empty();
    }
    let revision = format!("main@sha1:{commit}");
    stack.source_ready(APP, &revision).await?;
    eprintln!(
        "    {:.1?}: GitRepository {SYSTEM_NAMESPACE}/{APP} fetched {revision} (the automation requested it)",
        started.elapsed()
    );
    let running = stack
        .deployment_image(APP, &format!("{image}:{NEW_TAG}"))
        .await?;
    eprintln!(
        "    {:.1?}: Deployment {APP}/{APP} has image {running}",
        started.elapsed()
    );
    stack.applied(APP, &revision).await?;
    kubectl.show(&[
        "get",
        "imagepolicy/podinfo",
        "imageupdateautomation/podinfo",
        "-n",
        SYSTEM_NAMESPACE,
        "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name,LATEST_TAG:.status.latestRef.tag,LAST_PUSH_COMMIT:.status.lastPushCommit",
    ])?;
    kubectl.show(&[
        "get",
        "deployment/podinfo",
        "-n",
        APP,
        "-o",
        "custom-columns=KIND:.kind,NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image",
    ])?;
    Ok(())
}

/// `kubectl` against the demo's control plane, output passed through.
struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn show(&self, args: &[&str]) -> Result<()> {
        println!("\n$ kubectl {}", args.join(" "));
        let out = Command::new(&self.binary)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .context("running kubectl")?;
        if !out.status.success() {
            bail!(
                "kubectl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
        println!();
        Ok(())
    }
}

/// The example app: a base (Deployment of `image`, Service) and an overlay
/// adding the Namespace, a ConfigMap and labels. The image line carries the
/// setter marker the automation rewrites. Replicas stay 0: the control plane
/// has no kubelets.
fn app_files(image: &str) -> Vec<(String, String)> {
    [
        (
            "apps/podinfo/base/deployment.yaml",
            format!("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: podinfo\n  template:\n    metadata:\n      labels:\n        app: podinfo\n    spec:\n      containers:\n      - name: podinfo\n        image: {image}:{FIRST_TAG} # {{\"$imagepolicy\": \"{SYSTEM_NAMESPACE}:{APP}\"}}\n        ports:\n        - containerPort: 9898\n        envFrom:\n        - configMapRef:\n            name: podinfo-config\n"),
        ),
        (
            "apps/podinfo/base/service.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\nspec:\n  selector:\n    app: podinfo\n  ports:\n  - port: 9898\n".to_owned(),
        ),
        ("apps/podinfo/base/kustomization.yaml", base(true)),
        (
            "apps/podinfo/demo/namespace.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n".to_owned(),
        ),
        ("apps/podinfo/demo/configmap.yaml", config_map("info")),
        ("apps/podinfo/demo/kustomization.yaml", overlay()),
        (
            "README.md",
            "# podinfo, the ferroflux demo app\n\n`apps/podinfo/demo` is what the Kustomization applies.\n".to_owned(),
        ),
    ]
    .into_iter()
    .map(|(path, content)| (path.to_owned(), content))
    .collect()
}

fn base(with_service: bool) -> String {
    let service = if with_service { "- service.yaml\n" } else { "" };
    format!(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n{service}"
    )
}

fn config_map(log_level: &str) -> String {
    config_map_saying(log_level, "hello from ferroflux")
}

fn config_map_saying(log_level: &str, message: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo-config\ndata:\n  PODINFO_LOG_LEVEL: {log_level}\n  PODINFO_UI_MESSAGE: {message}\n"
    )
}

fn overlay() -> String {
    "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: podinfo\nlabels:\n- pairs:\n    app.kubernetes.io/part-of: ferroflux-demo\nresources:\n- namespace.yaml\n- configmap.yaml\n- ../base\n".to_owned()
}

/// Paths of this workspace's source-controller, kustomize-controller and,
/// when built, image-automation-controller and notification-controller.
pub struct ControllerBinaries {
    source: PathBuf,
    kustomize: PathBuf,
    image_automation: Option<PathBuf>,
    notification: Option<PathBuf>,
}

/// The controllers a [`Stack`] runs beyond source- and kustomize-controller.
#[derive(Clone, Copy, Debug, Default)]
pub struct Optional {
    /// image-automation-controller (and an OCI registry for it).
    pub image_automation: bool,
    /// notification-controller, every other controller posting its events to it.
    pub notification: bool,
}

impl ControllerBinaries {
    /// Builds source-controller and kustomize-controller, and
    /// image-automation-controller when `image_automation` (release or debug
    /// profile) with cargo.
    pub fn build(release: bool, image_automation: bool) -> Result<Self> {
        Self::build_with(
            release,
            Optional {
                image_automation,
                notification: false,
            },
        )
    }

    /// Builds source-controller, kustomize-controller and the `optional`
    /// ones, in one cargo run (one feature resolution for all).
    pub fn build_with(release: bool, optional: Optional) -> Result<Self> {
        let root = crate::bench::workspace_root();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "source-controller",
            "-p",
            "kustomize-controller",
            "--bin",
            "source-controller",
            "--bin",
            "kustomize-controller",
        ])
        .current_dir(&root);
        if optional.image_automation {
            cmd.args([
                "-p",
                "image-automation-controller",
                "--bin",
                "image-automation-controller",
            ]);
        }
        if optional.notification {
            cmd.args([
                "-p",
                "notification-controller",
                "--bin",
                "notification-controller",
            ]);
        }
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().context("running cargo build")?;
        if !status.success() {
            bail!("building the controllers failed ({status})");
        }
        let profile = if release { "release" } else { "debug" };
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| root.join("target"), PathBuf::from)
            .join(profile);
        Ok(Self {
            source: dir.join("source-controller"),
            kustomize: dir.join("kustomize-controller"),
            image_automation: optional
                .image_automation
                .then(|| dir.join("image-automation-controller")),
            notification: optional
                .notification
                .then(|| dir.join("notification-controller")),
        })
    }

    /// The same binaries with `kustomize` as kustomize-controller (another
    /// build, or a wrapper such as a profiler's).
    pub fn with_kustomize(mut self, kustomize: PathBuf) -> Self {
        self.kustomize = kustomize;
        self
    }
}

/// A control plane, a Git server, source-controller and kustomize-controller
/// and, when built, image-automation-controller with an OCI registry and
/// notification-controller (the other controllers then started with
/// `--events-addr` pointing at it). The controllers watch all namespaces,
/// runtime namespace `flux-system`, and listen on loopback ports; all are
/// stopped and their directories removed when dropped.
pub struct Stack {
    // Fields drop in order: the controllers stop before the cluster they talk to.
    source: Service,
    kustomize: Service,
    image_automation: Option<Service>,
    notification: Option<Notification>,
    registry: Option<Registry>,
    /// A client of the control plane.
    pub client: Client,
    /// The Git server the GitRepositories fetch from.
    pub git: GitServer,
    /// The control plane.
    pub cluster: Cluster,
    workdir: tempfile::TempDir,
}

/// notification-controller and its two servers.
struct Notification {
    service: Service,
    /// Where it takes events (`--events-addr`).
    events_port: u16,
    /// Where Receivers' webhooks arrive (`--receiverAddr`).
    receiver_port: u16,
}

impl Stack {
    /// Starts everything; `kustomize_args` are extra kustomize-controller flags.
    pub async fn start(binaries: &ControllerBinaries, kustomize_args: &[String]) -> Result<Self> {
        let cluster = Cluster::start_dedicated().await?;
        let client = cluster.client().await?;
        let git = tokio::task::spawn_blocking(GitServer::start).await??;
        let workdir = tempfile::Builder::new()
            .prefix("ferroflux-demo-")
            .tempdir()?;
        let kubeconfig = cluster.kubeconfig_path().to_path_buf();
        // First, so that the others know where to post their events.
        let notification = match &binaries.notification {
            Some(binary) => Some(start_notification(
                binary,
                &kubeconfig,
                &workdir.path().join("notification-controller.log"),
            )?),
            None => None,
        };
        let events_addr: Vec<String> = notification
            .iter()
            .map(|n| format!("--events-addr=http://127.0.0.1:{}/", n.events_port))
            .collect();
        let storage = workdir.path().join("storage");
        let source = start_controller(
            "source-controller",
            &binaries.source,
            &workdir.path().join("source-controller.log"),
            |cmd, [storage_port, health_port, metrics_port]| {
                cmd.env("KUBECONFIG", &kubeconfig)
                    .env("RUNTIME_NAMESPACE", SYSTEM_NAMESPACE)
                    .args(&events_addr)
                    .arg(format!("--storage-path={}", storage.display()))
                    .arg(format!("--storage-addr=127.0.0.1:{storage_port}"))
                    .arg(format!("--health-addr=127.0.0.1:{health_port}"))
                    .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"));
            },
        )?;
        let kustomize = start_controller(
            "kustomize-controller",
            &binaries.kustomize,
            &workdir.path().join("kustomize-controller.log"),
            |cmd, [_, health_port, metrics_port]| {
                cmd.env("KUBECONFIG", &kubeconfig)
                    .env("RUNTIME_NAMESPACE", SYSTEM_NAMESPACE)
                    .args(&events_addr)
                    .arg(format!("--health-addr=127.0.0.1:{health_port}"))
                    .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
                    .args(kustomize_args);
            },
        )?;
        let (image_automation, registry) = match &binaries.image_automation {
            Some(binary) => {
                let registry = tokio::task::spawn_blocking(|| Registry::start(false)).await??;
                let storage = workdir.path().join("image-automation");
                let controller = start_controller(
                    "image-automation-controller",
                    binary,
                    &workdir.path().join("image-automation-controller.log"),
                    |cmd, [_, health_port, metrics_port]| {
                        cmd.env("KUBECONFIG", &kubeconfig)
                            .env("RUNTIME_NAMESPACE", SYSTEM_NAMESPACE)
                            .args(&events_addr)
                            .arg(format!("--storage-path={}", storage.display()))
                            .arg(format!("--health-addr=127.0.0.1:{health_port}"))
                            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"));
                    },
                )?;
                (Some(controller), Some(registry))
            }
            None => (None, None),
        };
        let stack = Stack {
            source,
            kustomize,
            image_automation,
            notification,
            registry,
            client,
            git,
            cluster,
            workdir,
        };
        let namespaces: Api<Namespace> = Api::all(stack.client.clone());
        namespaces
            .patch(
                SYSTEM_NAMESPACE,
                &PatchParams::apply("ferroflux-demo"),
                &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": SYSTEM_NAMESPACE}})),
            )
            .await
            .context("creating the flux-system namespace")?;
        stack
            .apply_in_system_namespace(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "git-auth"},
                "stringData": {"username": stack.git.username(), "password": stack.git.password()}}))
            .await?;
        Ok(stack)
    }

    /// The directories the stack made (control plane, Git server, registry,
    /// controllers).
    pub fn directories(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.workdir.path().to_path_buf(),
            self.git.state_dir().to_path_buf(),
        ];
        dirs.extend(self.registry.as_ref().map(|r| r.state_dir().to_path_buf()));
        dirs.extend(
            self.cluster
                .kubeconfig_path()
                .parent()
                .map(Path::to_path_buf),
        );
        dirs
    }

    /// The process id of kustomize-controller.
    pub fn kustomize_pid(&self) -> u32 {
        self.kustomize.pid()
    }

    /// Name and pid of every process of the stack: control plane and controllers.
    pub fn processes(&self) -> Vec<(String, u32)> {
        let mut all = self.cluster.processes();
        all.push(("source-controller".to_owned(), self.source.pid()));
        all.push(("kustomize-controller".to_owned(), self.kustomize.pid()));
        all.extend(
            self.image_automation
                .as_ref()
                .map(|c| ("image-automation-controller".to_owned(), c.pid())),
        );
        all.extend(
            self.notification
                .as_ref()
                .map(|n| ("notification-controller".to_owned(), n.service.pid())),
        );
        all
    }

    /// The process id of notification-controller, when the stack runs it.
    pub fn notification_pid(&self) -> Option<u32> {
        self.notification.as_ref().map(|n| n.service.pid())
    }

    /// notification-controller's event endpoint (what the other controllers'
    /// `--events-addr` point at), when the stack runs it.
    pub fn events_url(&self) -> Result<String> {
        let notification = self.notification()?;
        Ok(format!("http://127.0.0.1:{}/", notification.events_port))
    }

    /// The URL of a Receiver's `status.webhookPath` on notification-controller's
    /// webhook server (`--receiverAddr`).
    pub fn webhook_url(&self, webhook_path: &str) -> Result<String> {
        let notification = self.notification()?;
        Ok(format!(
            "http://127.0.0.1:{}{webhook_path}",
            notification.receiver_port
        ))
    }

    fn notification(&self) -> Result<&Notification> {
        self.notification
            .as_ref()
            .context("the stack was started without notification-controller")
    }

    /// The last lines of the controllers' logs.
    pub fn logs(&self, lines: usize) -> String {
        let mut logs = String::new();
        for controller in [
            Some(&self.kustomize),
            Some(&self.source),
            self.image_automation.as_ref(),
            self.notification.as_ref().map(|n| &n.service),
        ]
        .into_iter()
        .flatten()
        {
            logs.push_str(&format!(
                "--- {}:\n{}\n",
                controller.log_path().display(),
                e2e::process::tail(controller.log_path(), lines),
            ));
        }
        logs
    }

    /// The registry, when the stack runs image automation.
    pub fn registry(&self) -> Result<&Registry> {
        self.registry
            .as_ref()
            .context("the stack was started without image automation")
    }

    /// A repository on the Git server holding `files`.
    pub async fn create_repo(&self, name: &str, files: Vec<(String, String)>) -> Result<Repo> {
        let name = name.to_owned();
        tokio::task::block_in_place(|| self.git.create_repo(&name, files))
    }

    /// Server-side applies `object` (JSON with `apiVersion`, `kind` and
    /// `metadata.name`) in `flux-system`.
    pub async fn apply_in_system_namespace(&self, object: Value) -> Result<()> {
        let name = object["metadata"]["name"]
            .as_str()
            .context("object without a name")?
            .to_owned();
        let kind = object["kind"].as_str().unwrap_or_default().to_owned();
        let api_version = object["apiVersion"].as_str().unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
            group, version, &kind,
        ));
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(self.client.clone(), SYSTEM_NAMESPACE, &resource);
        api.patch(
            &name,
            &PatchParams::apply("ferroflux-demo").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {kind} {SYSTEM_NAMESPACE}/{name}"))?;
        Ok(())
    }

    /// A GitRepository `name` following `main` of `repo`.
    pub async fn git_repository(&self, name: &str, repo: &Repo, interval: &str) -> Result<()> {
        self.apply_in_system_namespace(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name},
            "spec": {"url": repo.http_url(), "interval": interval, "ref": {"branch": "main"},
                "secretRef": {"name": "git-auth"}},
        }))
        .await
    }

    /// A Kustomization `name` with `spec`.
    pub async fn kustomization(&self, name: &str, spec: Value) -> Result<()> {
        self.apply_in_system_namespace(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name}, "spec": spec,
        }))
        .await
    }

    /// Commits to `repo`, then asks source-controller to fetch GitRepository
    /// `source` now (as `flux reconcile source git` does); returns the revision.
    pub async fn commit(
        &self,
        repo: &Repo,
        source: &str,
        files: &[(&str, String)],
        deleted: &[&str],
        message: &str,
    ) -> Result<String> {
        let sha = tokio::task::block_in_place(|| {
            repo.commit(
                files.iter().map(|(p, c)| (*p, c.as_str())),
                deleted,
                message,
            )
        })?;
        self.request_reconcile(source).await?;
        Ok(format!("main@sha1:{sha}"))
    }

    /// Sets `reconcile.fluxcd.io/requestedAt` on GitRepository `name`.
    pub async fn request_reconcile(&self, name: &str) -> Result<()> {
        self.request_reconcile_of::<GitRepository>(name).await
    }

    /// Sets `reconcile.fluxcd.io/requestedAt` on the `K` named `name`.
    pub async fn request_reconcile_of<K>(&self, name: &str) -> Result<()>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + k8s_openapi::serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        let token = format!("{}", k8s_openapi::jiff::Timestamp::now().as_nanosecond());
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
            ),
        )
        .await
        .context("annotating requestedAt")?;
        Ok(())
    }

    /// An ImageRepository scanning `image`, an ImagePolicy picking its newest
    /// tag `>=FIRST_TAG` and an ImageUpdateAutomation writing it to the
    /// setters under `./apps` of GitRepository `name`, pushing to the branch
    /// the GitRepository tracks; all named `name`.
    pub async fn image_automation(&self, name: &str, image: &str) -> Result<()> {
        self.apply_in_system_namespace(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": name},
            "spec": {"image": image, "interval": "1m", "insecure": true},
        }))
        .await?;
        self.apply_in_system_namespace(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": name},
            "spec": {"imageRepositoryRef": {"name": name},
                "policy": {"semver": {"range": format!(">={FIRST_TAG}")}}},
        }))
        .await?;
        self.apply_in_system_namespace(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
            "metadata": {"name": name},
            "spec": {
                "interval": "1m",
                "sourceRef": {"kind": "GitRepository", "name": name},
                "git": {
                    "checkout": {"ref": {"branch": "main"}},
                    "commit": {
                        "author": {"name": "fluxcdbot", "email": "fluxcdbot@users.noreply.github.com"},
                        "messageTemplate": MESSAGE_TEMPLATE,
                    },
                    "push": {"branch": "main"},
                },
                "update": {"path": "./apps", "strategy": "Setters"},
            },
        }))
        .await
    }

    /// Waits until ImagePolicy `name` selects tag `tag`; returns the image.
    pub async fn latest_image(&self, name: &str, tag: &str) -> Result<String> {
        let api: Api<ImagePolicy> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        self.poll(&api, name, |policy: &ImagePolicy| {
            let latest = policy.status.as_ref()?.latest_ref.as_ref()?;
            (latest.tag == tag).then(|| format!("{}:{}", latest.name, latest.tag))
        })
        .await
    }

    /// Waits until ImageUpdateAutomation `name` is Ready; returns the message.
    pub async fn automation_ready(&self, name: &str) -> Result<String> {
        let api: Api<api::image::ImageUpdateAutomation> =
            Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        self.poll(&api, name, |auto: &api::image::ImageUpdateAutomation| {
            let status = auto.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (ready.status == "True" && status.observed_generation == auto.metadata.generation)
                .then(|| ready.message.clone())
        })
        .await
    }

    /// Waits until `main` of `repo` on the Git server moves past `previous`;
    /// returns the new commit and `git show` of it, as the server has it.
    pub async fn pushed_after(&self, repo: &Repo, previous: &str) -> Result<(String, String)> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let git_dir = self.git.repo_path(repo.name());
        let git = |args: &[&str]| -> Result<String> {
            let out = Command::new("git")
                .arg("--git-dir")
                .arg(&git_dir)
                .args(args)
                .output()
                .context("running git")?;
            if !out.status.success() {
                bail!(
                    "git {} failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };
        loop {
            let head = git(&["rev-parse", "refs/heads/main"])?.trim().to_owned();
            if head != previous {
                let shown = git(&[
                    "show",
                    "--format=commit %H%nAuthor: %an <%ae>%nDate:   %ad%n%n%B",
                    "refs/heads/main",
                ])?;
                return Ok((head, shown));
            }
            if Instant::now() > deadline {
                bail!(
                    "nothing was pushed to {} in {STEP_TIMEOUT:?}\n{}",
                    repo.name(),
                    self.logs(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until Deployment `name` in namespace `name` has the image
    /// `image` (read back from the API server); returns it.
    pub async fn deployment_image(&self, name: &str, image: &str) -> Result<String> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), name);
        self.poll(&api, name, |deployment: &Deployment| {
            let containers = &deployment.spec.as_ref()?.template.spec.as_ref()?.containers;
            let found = containers.first()?.image.clone()?;
            (found == image).then_some(found)
        })
        .await
    }

    /// Waits until GitRepository `name` is Ready with an artifact of
    /// `revision`; returns the Ready message.
    pub async fn source_ready(&self, name: &str, revision: &str) -> Result<String> {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        self.poll(&api, name, |repo: &GitRepository| {
            let status = repo.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (ready.status == "True"
                && status.artifact.as_ref().map(|a| a.revision.as_str()) == Some(revision))
            .then(|| ready.message.clone())
        })
        .await
    }

    /// Waits until Kustomization `name` is Ready having applied `revision`;
    /// returns the Ready message and how long the wait took.
    pub async fn applied(&self, name: &str, revision: &str) -> Result<(String, Duration)> {
        let api: Api<Kustomization> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        let started = Instant::now();
        let message = self
            .poll(&api, name, |ks: &Kustomization| ready_at(ks, revision))
            .await?;
        Ok((message, started.elapsed()))
    }

    /// Polls `name` until `check` returns `Some`, for at most two minutes.
    pub(crate) async fn poll<K, T>(
        &self,
        api: &Api<K>,
        name: &str,
        mut check: impl FnMut(&K) -> Option<T>,
    ) -> Result<T>
    where
        K: Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let deadline = Instant::now() + STEP_TIMEOUT;
        let mut last = String::new();
        loop {
            if let Some(object) = api.get_opt(name).await? {
                if let Some(found) = check(&object) {
                    return Ok(found);
                }
                last = format!("{object:?}");
            }
            if Instant::now() > deadline {
                bail!(
                    "{name} did not get there in {STEP_TIMEOUT:?}; last seen: {last}\n{}",
                    self.logs(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Prints every revision Kustomization `name` applies after `from`,
    /// failures, and every notification `recorder` gets from now on, until
    /// the future is dropped.
    async fn follow(&self, name: &str, from: &str, recorder: &Recorder) -> Result<()> {
        let api: Api<Kustomization> = Api::namespaced(self.client.clone(), SYSTEM_NAMESPACE);
        let mut shown = (from.to_owned(), String::new());
        let mut notified = recorder.requests().len();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for request in recorder.requests().iter().skip(notified) {
                notified += 1;
                eprintln!("{}", notification_line(request));
            }
            let Ok(Some(ks)) = api.get_opt(name).await else {
                continue;
            };
            let status = ks.status.as_ref();
            let applied = status
                .and_then(|s| s.last_applied_revision.clone())
                .unwrap_or_default();
            let ready = status
                .and_then(|s| condition(s.conditions.as_ref(), "Ready"))
                .map(|c| format!("Ready={} {}: {}", c.status, c.reason, c.message))
                .unwrap_or_default();
            let now = (applied, ready);
            if now != shown {
                eprintln!("    [{}] {}", k8s_openapi::jiff::Timestamp::now(), now.1);
                shown = now;
            }
        }
    }
}

/// The Ready message of `ks` once it is Ready having applied `revision`.
pub fn ready_at(ks: &Kustomization, revision: &str) -> Option<String> {
    let status = ks.status.as_ref()?;
    let ready = condition(status.conditions.as_ref(), "Ready")?;
    (ready.status == "True"
        && status.last_applied_revision.as_deref() == Some(revision)
        && status.observed_generation == ks.metadata.generation)
        .then(|| ready.message.clone())
}

/// The condition `type_` among `conditions`.
pub fn condition<'a>(conditions: Option<&'a Vec<Condition>>, type_: &str) -> Option<&'a Condition> {
    conditions?.iter().find(|c| c.type_ == type_)
}

/// Starts notification-controller on free loopback ports (events, receiver,
/// health, metrics) and waits for its event server.
fn start_notification(binary: &Path, kubeconfig: &Path, log: &Path) -> Result<Notification> {
    let (mut service, [events_port, _, _, receiver_port]) = start_controller_on(
        "notification-controller",
        binary,
        log,
        |cmd, [events_port, health_port, metrics_port, receiver_port]| {
            cmd.env("KUBECONFIG", kubeconfig)
                .env("RUNTIME_NAMESPACE", SYSTEM_NAMESPACE)
                .arg(format!("--events-addr=127.0.0.1:{events_port}"))
                .arg(format!("--receiverAddr=127.0.0.1:{receiver_port}"))
                .arg(format!("--health-addr=127.0.0.1:{health_port}"))
                .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"));
        },
    )?;
    service.wait_for_port(events_port, Duration::from_secs(30))?;
    service.wait_for_port(receiver_port, Duration::from_secs(30))?;
    Ok(Notification {
        service,
        events_port,
        receiver_port,
    })
}

/// Starts a controller on three free ports (storage or unused, health,
/// metrics) and waits for its health port; retries when a port was taken.
fn start_controller(
    name: &str,
    binary: &Path,
    log: &Path,
    configure: impl Fn(&mut Command, [u16; 3]),
) -> Result<Service> {
    start_controller_on(name, binary, log, configure).map(|(service, _)| service)
}

/// [`start_controller`] on `N` free ports (the second one the health port);
/// returns the ports it ended up on.
fn start_controller_on<const N: usize>(
    name: &str,
    binary: &Path,
    log: &Path,
    configure: impl Fn(&mut Command, [u16; N]),
) -> Result<(Service, [u16; N])> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut ports = [0; N];
        for port in &mut ports {
            *port = e2e::paths::free_port()?;
        }
        let health = *ports.get(1).context("no health port")?;
        let mut cmd = Command::new(binary);
        cmd.env("RUST_LOG", "info,kube=warn")
            .arg("--log-encoding=console");
        configure(&mut cmd, ports);
        let mut service = e2e::process::start(name, cmd, log)?;
        match service.wait_for_port(health, Duration::from_secs(30)) {
            Ok(()) => return Ok((service, ports)),
            Err(_) if attempt < 3 && e2e::process::tail(log, 20).contains("in use") => {
                service.kill();
            }
            Err(err) => return Err(err),
        }
    }
}
