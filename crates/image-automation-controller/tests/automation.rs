//! ImageUpdateAutomation end to end: the real controller binary against the
//! real control plane, a real registry and a real Git server (smart HTTP
//! with basic auth): a new tag in the registry ends as a pushed commit that
//! rewrote a Deployment, a kustomization's `images:` and HelmRelease values.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fixture;

use anyhow::{Result, ensure};
use api::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use api::source::GitRepository;
use fixture::{Env, condition, registry};
use serde_json::json;
use std::time::{Duration, Instant};

const DEPLOYMENT: &str = r#"# The app, as a person wrote it.
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: app
          image: "IMAGE:1.0.0" # {"$imagepolicy": "NS:app"}
          # a comment that stays
          args: [--log-level, info]
"#;

const KUSTOMIZATION: &str = r#"apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
images:
  - name: app
    newName: IMAGE # {"$imagepolicy": "NS:app:name"}
    newTag: 1.0.0 # {"$imagepolicy": "NS:app:tag"}
"#;

const HELM_RELEASE: &str = r#"apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: app
spec:
  values:
    image:
      repository: IMAGE # {"$imagepolicy": "NS:app:name"}
      tag: '1.0.0' # {"$imagepolicy": "NS:app:tag"}
    other: &anchor {keep: me}
"#;

const TEMPLATE: &str = r#"Automated image update by {{ .AutomationObject.Name }}

{{ range $file, $objects := .Changed.FileChanges -}}
{{ $file }}:
{{- range $object, $changes := $objects }}
{{- range $changes }}
  {{ $object.Kind }}/{{ $object.Name }}: {{ .OldValue }} -> {{ .NewValue }}
{{- end }}
{{- end }}
{{ end -}}
ticket: {{ .Values.ticket }}"#;

fn with(text: &str, image: &str, ns: &str) -> String {
    text.replace("IMAGE", image).replace("NS", ns)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_tag_is_written_committed_and_pushed() -> Result<()> {
    let env = Env::start("img-auto", &[]).await?;
    let registry = registry(false).await?;
    let git = e2e::git_server::shared().await?;
    let ns = env.ns().to_string();
    let repo_path = format!("{ns}/app");
    let image = format!("{}/{repo_path}", registry.host());
    registry.push_image(&repo_path, "1.0.0")?;
    let repo = git.create_repo(
        &ns,
        [
            ("apps/deployment.yaml", with(DEPLOYMENT, &image, &ns)),
            ("apps/kustomization.yaml", with(KUSTOMIZATION, &image, &ns)),
            ("apps/release.yaml", with(HELM_RELEASE, &image, &ns)),
            ("README.md", "not YAML, left alone\n".to_string()),
        ],
    )?;
    let before = repo.head("main")?;

    env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git"},
        "stringData": {"username": git.username(), "password": git.password()}}))
        .await?;
    env.apply::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app"},
        "spec": {"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "git"}}}))
        .await?;
    env.apply::<ImageRepository>(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
        "metadata": {"name": "app"}, "spec": {"image": image, "interval": "1h", "insecure": true}}))
        .await?;
    env.apply::<ImagePolicy>(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
        "metadata": {"name": "app", "labels": {"automate": "yes"}},
        "spec": {"imageRepositoryRef": {"name": "app"}, "policy": {"semver": {"range": "1.x"}}}}))
        .await?;
    env.apply::<ImageUpdateAutomation>(json!({
        "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
        "metadata": {"name": "auto"},
        "spec": {
            "interval": "1h",
            "sourceRef": {"kind": "GitRepository", "name": "app"},
            "policySelector": {"matchLabels": {"automate": "yes"}},
            "git": {
                "commit": {"author": {"name": "fluxbot", "email": "fluxbot@example.invalid"},
                           "messageTemplate": TEMPLATE, "messageTemplateValues": {"ticket": "OPS-1"}},
                "push": {"branch": "main"}},
            "update": {"path": "./apps", "strategy": "Setters"}}}))
        .await?;

    // Everything is current: nothing to commit.
    // (Once the policy has its latest image: a run before that sees no policy.)
    let up_to_date = |a: &ImageUpdateAutomation| {
        let status = a.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        status.observed_policies.as_ref()?.get("app")?;
        (ready.status == "True" && ready.message == "repository up-to-date").then(|| a.clone())
    };
    let auto = env
        .wait_for::<ImageUpdateAutomation, _>("auto", up_to_date)
        .await?;
    ensure!(
        repo.head("main")? == before,
        "nothing should have been pushed"
    );
    let status = auto.status.unwrap();
    ensure!(
        status
            .observed_policies
            .as_ref()
            .is_some_and(|p| p["app"].tag == "1.0.0"),
        "{status:?}"
    );
    ensure!(
        status.observed_source_revision.as_deref() == Some(format!("main@sha1:{before}").as_str()),
        "{status:?}"
    );

    // A new tag: scanned, selected, written, committed, pushed.
    registry.push_image(&repo_path, "1.1.0")?;
    env.request_reconcile::<ImageRepository>("app").await?;
    // The push is recorded in status (the Ready message says so until the next run).
    let auto = env
        .wait_for::<ImageUpdateAutomation, _>("auto", |a| {
            let status = a.status.as_ref()?;
            status.last_push_commit.is_some().then(|| a.clone())
        })
        .await?;
    let status = auto.status.unwrap();
    let head = repo.head("main")?;
    ensure!(
        status.last_push_commit.as_deref() == Some(head.as_str()),
        "{status:?} vs {head}"
    );
    ensure!(status.last_push_time.is_some());

    // Each file changed only where its markers are, byte for byte elsewhere.
    let file = |path: &str| String::from_utf8(repo.file_at("main", path).unwrap()).unwrap();
    let updated = |text: &str| with(text, &image, &ns).replace("1.0.0", "1.1.0");
    ensure!(
        file("apps/deployment.yaml") == updated(DEPLOYMENT),
        "{}",
        file("apps/deployment.yaml")
    );
    ensure!(
        file("apps/kustomization.yaml") == updated(KUSTOMIZATION),
        "{}",
        file("apps/kustomization.yaml")
    );
    ensure!(
        file("apps/release.yaml") == updated(HELM_RELEASE),
        "{}",
        file("apps/release.yaml")
    );

    // The commit: author and the rendered message.
    let log = std::process::Command::new("git")
        .args(["--git-dir"])
        .arg(git.repo_path(&ns))
        .args(["log", "-1", "--format=%an <%ae>%n%B", "main"])
        .output()?;
    let log = String::from_utf8(log.stdout)?;
    let expected = format!(
        "fluxbot <fluxbot@example.invalid>\nAutomated image update by auto\n\napps/deployment.yaml:\n  Deployment/app: {image}:1.0.0 -> {image}:1.1.0\napps/kustomization.yaml:\n  Kustomization/: 1.0.0 -> 1.1.0\napps/release.yaml:\n  HelmRelease/app: 1.0.0 -> 1.1.0\nticket: OPS-1\n"
    );
    ensure!(
        log.trim_end() == expected.trim_end(),
        "commit:\n{log}\nexpected:\n{expected}"
    );

    // The source was asked to fetch the pushed branch at once.
    let source: GitRepository = env.api().get("app").await?;
    ensure!(
        source
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key("reconcile.fluxcd.io/requestedAt"),
        "GitRepository not requested"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn removed_template_fields_and_missing_sources_are_reported() -> Result<()> {
    let env = Env::start("img-auto-bad", &[]).await?;
    let automation = |name: &str, spec: serde_json::Value| {
        json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
               "metadata": {"name": name}, "spec": spec})
    };
    env.apply::<ImageUpdateAutomation>(automation(
        "no-source",
        json!({
        "interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "ghost"},
        "git": {"commit": {"author": {"email": "a@example.invalid"}}}}),
    ))
    .await?;
    env.wait_for::<ImageUpdateAutomation, _>("no-source", |a| {
        let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "False" && ready.reason == "DependencyNotReady").then_some(())
    })
    .await?;
    env.apply::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "repo"}, "spec": {"url": "http://127.0.0.1:1/none.git", "interval": "1h"}}))
        .await?;
    env.apply::<ImageUpdateAutomation>(automation("old-template", json!({
        "interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "repo"},
        "git": {"commit": {"author": {"email": "a@example.invalid"}, "messageTemplate": "{{ range .Updated.Images }}{{ . }}{{ end }}"}}})))
        .await?;
    env.wait_for::<ImageUpdateAutomation, _>("old-template", |a| {
        let conditions = a.status.as_ref()?.conditions.as_ref();
        let stalled = condition(conditions, "Stalled")?;
        (stalled.status == "True"
            && stalled.reason == "RemovedTemplateField"
            && stalled.message.contains(".Updated"))
        .then_some(())
    })
    .await?;
    // A Git server that cannot be reached: retried with the cause.
    env.apply::<ImageUpdateAutomation>(automation(
        "unreachable",
        json!({
        "interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "repo"},
        "git": {"commit": {"author": {"email": "a@example.invalid"}}, "push": {"branch": "main"}}}),
    ))
    .await?;
    env.wait_for::<ImageUpdateAutomation, _>("unreachable", |a| {
        let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "False"
            && ready.reason == "GitOperationFailed"
            && ready.message.contains("127.0.0.1:1"))
        .then_some(())
    })
    .await?;
    Ok(())
}

/// A registry image at 1.0.0, a Git repository whose files carry its
/// marker, and the GitRepository, ImageRepository and ImagePolicy `app`.
struct World {
    registry: &'static e2e::registry::Registry,
    git: &'static e2e::git_server::GitServer,
    repo: e2e::git_server::Repo,
    repo_path: String,
}

impl World {
    async fn new(env: &Env, files: &[(&str, &str)]) -> Result<World> {
        let registry = registry(false).await?;
        let git = e2e::git_server::shared().await?;
        let ns = env.ns().to_string();
        let repo_path = format!("{ns}/app");
        let image = format!("{}/{repo_path}", registry.host());
        registry.push_image(&repo_path, "1.0.0")?;
        let repo = git.create_repo(
            &ns,
            files
                .iter()
                .map(|(path, text)| (path.to_string(), with(text, &image, &ns))),
        )?;
        env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git"},
            "stringData": {"username": git.username(), "password": git.password()}}))
            .await?;
        env.apply::<GitRepository>(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app"},
            "spec": {"url": repo.http_url(), "interval": "1h", "ref": {"branch": "main"}, "secretRef": {"name": "git"}}}))
            .await?;
        let world = World {
            registry,
            git,
            repo,
            repo_path,
        };
        world.declare_image(env, "app", json!({})).await?;
        Ok(world)
    }

    /// The registry image `<namespace>/<name>`.
    fn image(&self, env: &Env, name: &str) -> String {
        format!("{}/{}/{name}", self.registry.host(), env.ns())
    }

    /// The ImageRepository of the registry image `<namespace>/<name>` and
    /// the ImagePolicy (semver `1.x`) with `labels`, both named `name`.
    async fn declare_image(&self, env: &Env, name: &str, labels: serde_json::Value) -> Result<()> {
        let image = self.image(env, name);
        env.apply::<ImageRepository>(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageRepository",
            "metadata": {"name": name}, "spec": {"image": image, "interval": "1h", "insecure": true}}))
            .await?;
        env.apply::<ImagePolicy>(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImagePolicy",
            "metadata": {"name": name, "labels": labels},
            "spec": {"imageRepositoryRef": {"name": name}, "policy": {"semver": {"range": "1.x"}}}}))
            .await?;
        Ok(())
    }

    /// Pushes `tag` and asks for a scan.
    async fn new_tag(&self, env: &Env, tag: &str) -> Result<()> {
        self.registry.push_image(&self.repo_path, tag)?;
        env.request_reconcile::<ImageRepository>("app").await
    }

    /// Pushes `tag` of the image `name` (declared with
    /// [`declare_image`](Self::declare_image)), asks for a scan and waits
    /// until its policy selected it; when that was seen.
    async fn new_latest(&self, env: &Env, name: &str, tag: &str) -> Result<Instant> {
        self.registry
            .push_image(&format!("{}/{name}", env.ns()), tag)?;
        env.request_reconcile::<ImageRepository>(name).await?;
        env.wait_for::<ImagePolicy, _>(name, |p| {
            (p.status.as_ref()?.latest_ref.as_ref()?.tag == tag).then_some(())
        })
        .await?;
        Ok(Instant::now())
    }

    /// `git log` of `main` on the server, one `format` line per commit.
    fn log(&self, env: &Env, format: &str) -> Result<Vec<String>> {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(self.git.repo_path(env.ns()))
            .args(["log", &format!("--format={format}"), "main"])
            .output()?;
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .map(str::to_string)
            .collect())
    }
}

fn automation(name: &str, path: &str, commit: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "image.toolkit.fluxcd.io/v1", "kind": "ImageUpdateAutomation",
           "metadata": {"name": name},
           "spec": {"interval": "1h", "sourceRef": {"kind": "GitRepository", "name": "app"},
                    "git": {"commit": commit, "push": {"branch": "main"}},
                    "update": {"path": path}}})
}

/// Waits until `name` recorded a push.
async fn pushed(env: &Env, name: &str) -> Result<String> {
    env.wait_for::<ImageUpdateAutomation, _>(name, |a| a.status.as_ref()?.last_push_commit.clone())
        .await
}

#[tokio::test(flavor = "multi_thread")]
async fn commits_are_signed_with_the_openpgp_key() -> Result<()> {
    let env = Env::start("img-auto-sign", &[]).await?;
    let world = World::new(&env, &[("deploy/app.yaml", DEPLOYMENT)]).await?;
    let key = e2e::gpg::GpgKey::generate("open sesame")?;
    env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "signing"},
        "stringData": {"git.asc": String::from_utf8(key.secret()?)?, "passphrase": key.passphrase()}}))
        .await?;
    env.apply::<ImageUpdateAutomation>(automation(
        "signed",
        "./deploy",
        json!({
        "author": {"name": "fluxbot", "email": "fluxbot@example.invalid"},
        "signingKey": {"secretRef": {"name": "signing"}}}),
    ))
    .await?;
    world.new_tag(&env, "1.1.0").await?;
    let commit = pushed(&env, "signed").await?;

    // git itself accepts the signature with the public key alone.
    let gnupg = tempfile::tempdir()?;
    let import = std::process::Command::new("gpg")
        .arg("--homedir")
        .arg(gnupg.path())
        .args(["--batch", "--import"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&key.public().unwrap())?;
            child.wait()
        })?;
    ensure!(import.success());
    let verify = std::process::Command::new("git")
        .env("GNUPGHOME", gnupg.path())
        .arg("--git-dir")
        .arg(world.git.repo_path(env.ns()))
        .args(["verify-commit", &commit])
        .output()?;
    ensure!(
        verify.status.success(),
        "verify-commit: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    ensure!(world.log(&env, "%s")?[0] == "Update from image update automation");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn automations_racing_on_one_branch_lose_no_update() -> Result<()> {
    // Five automations push to the same branch at the same moment; the ones
    // refused because the branch moved redo their change on the new head.
    let env = Env::start("img-auto-race", &[]).await?;
    let files: Vec<(String, &str)> = (0..5)
        .map(|i| (format!("team-{i}/app.yaml"), DEPLOYMENT))
        .collect();
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), *t)).collect();
    let world = World::new(&env, &files).await?;
    let before = world.log(&env, "%H")?.len();
    for i in 0..5 {
        env.apply::<ImageUpdateAutomation>(automation(
            &format!("team-{i}"),
            &format!("./team-{i}"),
            json!({"author": {"email": "fluxbot@example.invalid"}}),
        ))
        .await?;
    }
    for i in 0..5 {
        env.wait_for::<ImageUpdateAutomation, _>(&format!("team-{i}"), |a| {
            let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
            (ready.message == "repository up-to-date").then_some(())
        })
        .await?;
    }
    world.new_tag(&env, "1.1.0").await?;
    for i in 0..5 {
        pushed(&env, &format!("team-{i}")).await?;
    }
    ensure!(
        world.log(&env, "%H")?.len() == before + 5,
        "{:?}",
        world.log(&env, "%H %s")?
    );
    for i in 0..5 {
        let text = String::from_utf8(world.repo.file_at("main", &format!("team-{i}/app.yaml"))?)?;
        ensure!(
            text.contains(":1.1.0\" # {\"$imagepolicy\""),
            "team-{i}: {text}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_during_the_push_neither_loses_nor_repeats_the_commit() -> Result<()> {
    let mut env = Env::start("img-auto-kill", &[]).await?;
    let world = World::new(&env, &[("deploy/app.yaml", DEPLOYMENT)]).await?;
    env.apply::<ImageUpdateAutomation>(automation(
        "auto",
        "./deploy",
        json!({"author": {"email": "fluxbot@example.invalid"}}),
    ))
    .await?;
    env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
        let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.message == "repository up-to-date").then_some(())
    })
    .await?;
    let before = world.log(&env, "%H")?.len();
    // Kill at a different moment of each round: during the scan, the clone,
    // the commit or the push.
    for (round, delay_ms) in [(1u32, 50u64), (2, 150), (3, 300), (4, 600)] {
        world.new_tag(&env, &format!("1.{round}.0")).await?;
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        env.restart()?;
        env.request_reconcile::<ImageRepository>("app").await?;
        let tag = format!(":1.{round}.0\"");
        env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
            let status = a.status.as_ref()?;
            let ready = condition(status.conditions.as_ref(), "Ready")?;
            (status.observed_policies.as_ref()?.get("app")?.tag == format!("1.{round}.0")
                && ready.status == "True")
                .then_some(())
        })
        .await?;
        let text = String::from_utf8(world.repo.file_at("main", "deploy/app.yaml")?)?;
        ensure!(text.contains(&tag), "round {round}: {text}");
        ensure!(
            world.log(&env, "%H")?.len() == before + round as usize,
            "round {round}: {:?}",
            world.log(&env, "%H %s")?
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_separate_push_branch_collects_the_updates_on_top_of_itself() -> Result<()> {
    let env = Env::start("img-auto-branch", &[]).await?;
    let world = World::new(&env, &[("deploy/app.yaml", DEPLOYMENT)]).await?;
    let main = world.repo.head("main")?;
    let mut spec = automation(
        "auto",
        "./deploy",
        json!({"author": {"email": "fluxbot@example.invalid"}}),
    );
    spec["spec"]["git"]["push"] = json!({"branch": "image-updates"});
    env.apply::<ImageUpdateAutomation>(spec).await?;

    // The branch is made from the checkout branch by the first update...
    world.new_tag(&env, "1.1.0").await?;
    let first = pushed(&env, "auto").await?;
    ensure!(world.repo.head("image-updates")? == first);
    ensure!(world.repo.head("main")? == main, "main must stay as it was");
    // ...and a reviewer's commit on it stays under the next update.
    let review = world.repo.commit_on(
        "image-updates",
        [("REVIEW.md", "looks good\n")],
        &[],
        "review note",
    )?;
    world.new_tag(&env, "1.2.0").await?;
    let second = env
        .wait_for::<ImageUpdateAutomation, _>("auto", |a| {
            let commit = a.status.as_ref()?.last_push_commit.clone()?;
            (commit != first).then_some(commit)
        })
        .await?;
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(world.git.repo_path(env.ns()))
        .args(["rev-list", &format!("{main}..image-updates")])
        .output()?;
    let commits: Vec<String> = String::from_utf8(out.stdout)?
        .lines()
        .map(str::to_string)
        .collect();
    ensure!(commits == [second.clone(), review, first], "{commits:?}");
    let text = String::from_utf8(world.repo.file_at("image-updates", "deploy/app.yaml")?)?;
    ensure!(text.contains(":1.2.0\""), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refspec_pushes_the_commit_to_a_second_ref_and_bad_git_credentials_are_reported()
-> Result<()> {
    let env = Env::start("img-auto-refspec", &[]).await?;
    let world = World::new(&env, &[("deploy/app.yaml", DEPLOYMENT)]).await?;
    let mut spec = automation(
        "auto",
        "./deploy",
        json!({"author": {"email": "fluxbot@example.invalid"}}),
    );
    spec["spec"]["git"]["push"] =
        json!({"branch": "main", "refspec": "refs/heads/main:refs/heads/mirror"});
    env.apply::<ImageUpdateAutomation>(spec).await?;
    world.new_tag(&env, "1.1.0").await?;
    let commit = pushed(&env, "auto").await?;
    ensure!(world.repo.head("main")? == commit);
    ensure!(world.repo.head("mirror")? == commit);

    // The GitRepository's Secret with a wrong password.
    env.apply::<k8s_openapi::api::core::v1::Secret>(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git"},
        "stringData": {"username": world.git.username(), "password": "wrong"}}))
        .await?;
    world.new_tag(&env, "1.2.0").await?;
    env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
        let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "False" && ready.reason == "AuthenticationFailed").then_some(())
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn push_options_go_to_the_server_or_the_failure_says_why() -> Result<()> {
    let env = Env::start("img-auto-options", &[]).await?;
    let world = World::new(&env, &[("deploy/app.yaml", DEPLOYMENT)]).await?;
    let mut spec = automation(
        "auto",
        "./deploy",
        json!({"author": {"email": "fluxbot@example.invalid"}}),
    );
    spec["spec"]["git"]["push"] =
        json!({"branch": "main", "options": {"ci.skip": "", "merge_request.create": ""}});
    env.apply::<ImageUpdateAutomation>(spec).await?;
    world.new_tag(&env, "1.1.0").await?;
    // A server that takes no push options: refused loudly, never dropped.
    env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
        let ready = condition(a.status.as_ref()?.conditions.as_ref(), "Ready")?;
        (ready.status == "False"
            && ready.reason == "GitOperationFailed"
            && ready.message.contains("push options"))
        .then_some(())
    })
    .await?;
    // Once the server advertises them, the push goes through with them.
    let config = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(world.git.repo_path(env.ns()))
        .args(["config", "receive.advertisePushOptions", "true"])
        .status()?;
    ensure!(config.success());
    let commit = pushed(&env, "auto").await?;
    ensure!(world.repo.head("main")? == commit);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn policy_changes_within_the_delay_make_one_commit_and_without_it_run_at_once() -> Result<()>
{
    const DELAY: Duration = Duration::from_secs(5);
    let env = Env::start("img-auto-delay", &[]).await?;
    // The Deployment with a second container, whose image `web` goes into
    // the file before the World exists.
    let web = format!("{}/{}/web", registry(false).await?.host(), env.ns());
    let deployment = format!(
        "{DEPLOYMENT}        - name: web\n          image: \"{web}:1.0.0\" # {{\"$imagepolicy\": \"NS:web\"}}\n"
    );
    let world = World::new(&env, &[("deploy/app.yaml", deployment.as_str())]).await?;
    world
        .registry
        .push_image(&format!("{}/web", env.ns()), "1.0.0")?;
    let selected = json!({"automate": "yes"});
    world.declare_image(&env, "app", selected.clone()).await?;
    world.declare_image(&env, "web", selected).await?;
    // The policies have their first latest images before the automation
    // exists, so no delayed run of theirs is pending when the test starts.
    for name in ["app", "web"] {
        env.wait_for::<ImagePolicy, _>(name, |p| {
            let labelled = p.metadata.labels.as_ref()?.contains_key("automate");
            (labelled && p.status.as_ref()?.latest_ref.is_some()).then_some(())
        })
        .await?;
    }
    let mut spec = automation(
        "auto",
        "./deploy",
        json!({"author": {"email": "fluxbot@example.invalid"}}),
    );
    spec["spec"]["policyChangeDelay"] = json!("5s");
    spec["spec"]["policySelector"] = json!({"matchLabels": {"automate": "yes"}});
    env.apply::<ImageUpdateAutomation>(spec.clone()).await?;
    // Created: it runs at once (only policy changes wait).
    env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
        let status = a.status.as_ref()?;
        let ready = condition(status.conditions.as_ref(), "Ready")?;
        (status.observed_policies.as_ref()?.len() == 2 && ready.message == "repository up-to-date")
            .then_some(())
    })
    .await?;
    let before = world.log(&env, "%H")?;

    // Two new images a moment apart: one run, a delay after the first.
    let first = world.new_latest(&env, "app", "1.1.0").await?;
    world.new_latest(&env, "web", "1.1.0").await?;
    ensure!(
        world.log(&env, "%H")? == before,
        "the run must wait for policyChangeDelay"
    );
    let commit = pushed(&env, "auto").await?;
    let held = first.elapsed();
    ensure!(
        held >= DELAY - Duration::from_secs(1),
        "pushed after {held:?}"
    );
    let log = world.log(&env, "%H")?;
    ensure!(
        log.len() == before.len() + 1 && log[0] == commit,
        "one commit expected: {:?}",
        world.log(&env, "%H %s")?
    );
    let text = String::from_utf8(world.repo.file_at("main", "deploy/app.yaml")?)?;
    for image in [world.image(&env, "app"), web.clone()] {
        ensure!(text.contains(&format!("{image}:1.1.0\"")), "{text}");
    }

    // Without the delay, a policy change runs at once. The spec change is
    // reconciled first, so that the controller maps the next change with it.
    spec["spec"]
        .as_object_mut()
        .unwrap()
        .remove("policyChangeDelay");
    let generation = env
        .apply::<ImageUpdateAutomation>(spec)
        .await?
        .metadata
        .generation;
    env.wait_for::<ImageUpdateAutomation, _>("auto", |a| {
        (a.status.as_ref()?.observed_generation == generation).then_some(())
    })
    .await?;
    let changed = world.new_latest(&env, "app", "1.2.0").await?;
    let second = env
        .wait_for::<ImageUpdateAutomation, _>("auto", |a| {
            let pushed = a.status.as_ref()?.last_push_commit.clone()?;
            (pushed != commit).then_some(pushed)
        })
        .await?;
    let took = changed.elapsed();
    ensure!(took < DELAY, "an undelayed run took {took:?}");
    ensure!(world.log(&env, "%H")?[0] == second);
    let text = String::from_utf8(world.repo.file_at("main", "deploy/app.yaml")?)?;
    ensure!(
        text.contains(&format!("{}:1.2.0\"", world.image(&env, "app")))
            && text.contains(&format!("{web}:1.1.0\"")),
        "{text}"
    );
    Ok(())
}
