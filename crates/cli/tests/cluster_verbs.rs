//! The cluster verbs against the real control plane and the real
//! source-controller and kustomize-controller (the workspace's binaries,
//! watching only the test's namespace): a GitRepository and a Kustomization
//! listed, reconciled with their source after a new commit, suspended and
//! resumed, exported, failing, deleted; `version` and `completion`.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::Result;
use e2e::objects::Scope;
use e2e::process::Service;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);

/// A controller of the workspace watching only `ns`.
fn controller(package: &str, kubeconfig: &Path, ns: &str, dir: &Path, args: &[String]) -> Service {
    let binary = e2e::paths::workspace_binary(package, package).unwrap();
    let health = e2e::paths::free_port().unwrap();
    let mut cmd = Command::new(binary);
    cmd.env("KUBECONFIG", kubeconfig)
        .env("RUNTIME_NAMESPACE", ns)
        .env("RUST_LOG", "info,kube=warn")
        .arg("--watch-all-namespaces=false")
        .arg(format!("--health-addr=127.0.0.1:{health}"))
        .arg("--metrics-addr=127.0.0.1:0")
        .arg("--log-encoding=console")
        .args(args);
    let mut service =
        e2e::process::start(package, cmd, &dir.join(format!("{package}.log"))).unwrap();
    service
        .wait_for_port(health, Duration::from_secs(60))
        .unwrap();
    service
}

/// The test's world: a namespace, both controllers, a repository.
struct World {
    scope: Scope,
    kubeconfig: PathBuf,
    repo: e2e::git_server::Repo,
    dir: tempfile::TempDir,
    _controllers: Vec<Service>,
}

e2e::deref_to_scope!(World);

impl World {
    async fn start(test: &str) -> World {
        let cluster = e2e::cluster::shared().await.unwrap();
        let scope = Scope::on(cluster, test).await.unwrap();
        let git = e2e::git_server::shared().await.unwrap();
        let repo_name = format!("{}-repo", scope.ns());
        let repo = tokio::task::spawn_blocking(move || {
            git.create_repo(&repo_name, [("deploy/cm.yaml", config_map("one").as_str())])
        })
        .await
        .unwrap()
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = cluster.kubeconfig_path().to_path_buf();
        let storage = e2e::paths::free_port().unwrap();
        let source = controller(
            "source-controller",
            &kubeconfig,
            scope.ns(),
            dir.path(),
            &[
                format!("--storage-path={}", dir.path().join("storage").display()),
                format!("--storage-addr=127.0.0.1:{storage}"),
            ],
        );
        let kustomize = controller(
            "kustomize-controller",
            &kubeconfig,
            scope.ns(),
            dir.path(),
            &[],
        );
        World {
            scope,
            kubeconfig,
            repo,
            dir,
            _controllers: vec![source, kustomize],
        }
    }

    fn logs(&self) -> String {
        ["source-controller", "kustomize-controller"]
            .iter()
            .map(|c| {
                format!(
                    "--- {c}:\n{}",
                    e2e::process::tail(&self.dir.path().join(format!("{c}.log")), 40)
                )
            })
            .collect()
    }

    /// The API of a Flux kind in the namespace.
    fn flux(&self, group: &str, version: &str, kind: &str) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
        Api::namespaced_with(self.client.clone(), self.ns(), &resource)
    }

    fn kustomizations(&self) -> Api<DynamicObject> {
        self.flux("kustomize.toolkit.fluxcd.io", "v1", "Kustomization")
    }

    async fn create(&self, api: &Api<DynamicObject>, object: Value) {
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        api.patch(
            &name,
            &PatchParams::apply("e2e").force(),
            &Patch::Apply(&object),
        )
        .await
        .unwrap();
    }

    /// Runs `ferroflux --kubeconfig … -n <ns> args…` with stdin closed.
    fn ferroflux(&self, args: &[&str]) -> Output {
        tokio::task::block_in_place(|| {
            Command::new(env!("CARGO_BIN_EXE_ferroflux"))
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .args(["-n", self.ns()])
                .args(args)
                .env_remove("NO_COLOR")
                .env_remove("FLUX_SYSTEM_NAMESPACE")
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
    }

    /// Runs ferroflux, expecting success; returns (stdout, stderr).
    fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.ferroflux(args);
        let (stdout, stderr) = texts(&out);
        assert!(
            out.status.success(),
            "ferroflux {args:?} failed ({}):\n{stdout}\n{stderr}\n{}",
            out.status,
            self.logs()
        );
        (stdout, stderr)
    }

    /// Runs ferroflux, expecting exit code 1; returns stderr.
    fn fails(&self, args: &[&str]) -> String {
        let out = self.ferroflux(args);
        let (stdout, stderr) = texts(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "ferroflux {args:?}:\n{stdout}\n{stderr}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("✗ ")).count(),
            1,
            "{stderr}"
        );
        stderr
    }

    /// Waits until Kustomization `name` is Ready=True having applied `revision`.
    async fn applied(&self, name: &str, revision: &str) {
        e2e::wait::for_object(
            &self.kustomizations(),
            name,
            WAIT,
            Duration::from_millis(250),
            |ks: &DynamicObject| {
                let status = &ks.data["status"];
                let ready = status["conditions"]
                    .as_array()?
                    .iter()
                    .find(|c| c["type"] == "Ready")?;
                (ready["status"] == "True" && status["lastAppliedRevision"] == revision)
                    .then_some(())
            },
            || self.logs(),
        )
        .await
        .unwrap();
    }

    fn head(&self) -> String {
        format!("main@sha1:{}", self.repo.head("main").unwrap())
    }
}

fn config_map(value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  value: {value}\n")
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The cells of the table line whose NAME (or NAMESPACE, NAME) is `name`.
fn table_row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .map(|l| {
            l.split('\t')
                .map(|c| c.trim_end().to_owned())
                .collect::<Vec<_>>()
        })
        .find(|cells| cells.iter().take(2).any(|c| c == name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_flux_verbs_against_the_real_controllers() -> Result<()> {
    let world = World::start("cli-verbs").await;
    let ns = world.ns().to_owned();
    let git = e2e::git_server::shared().await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = world.api();
    e2e::objects::apply(
        &secrets,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-auth"},
            "stringData": {"username": git.username(), "password": git.password()}}),
    )
    .await?;
    let repos = world.flux("source.toolkit.fluxcd.io", "v1", "GitRepository");
    world
        .create(
            &repos,
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": "repo"},
                "spec": {"url": world.repo.http_url(), "interval": "1h", "ref": {"branch": "main"},
                    "secretRef": {"name": "git-auth"}}}),
        )
        .await;
    world
        .create(
            &world.kustomizations(),
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": {"name": "app", "labels": {"team": "a"}},
                "spec": {"interval": "1h", "path": "./deploy", "prune": true, "targetNamespace": ns,
                    "sourceRef": {"kind": "GitRepository", "name": "repo"}}}),
        )
        .await;
    let first = world.head();
    world.applied("app", &first).await;
    let short = |revision: &str| revision[..revision.len() - 32].to_owned();

    // get: flux's tables.
    let (stdout, _) = world.ok(&["get", "sources", "git"]);
    assert_eq!(
        stdout
            .lines()
            .next()
            .unwrap()
            .split('\t')
            .map(str::trim_end)
            .collect::<Vec<_>>(),
        ["NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"]
    );
    let row = table_row(&stdout, "repo");
    assert_eq!(
        row[..4],
        ["repo", &short(&first), "False", "True"],
        "{stdout}"
    );
    assert_eq!(
        row[4],
        format!("stored artifact for revision '{}'", short(&first))
    );

    let (stdout, _) = world.ok(&["get", "kustomizations", "-A"]);
    assert!(stdout.starts_with("NAMESPACE"), "{stdout}");
    assert_eq!(
        table_row(&stdout, "app")[..5],
        [ns.as_str(), "app", &short(&first), "False", "True"],
        "{stdout}"
    );

    let (stdout, _) = world.ok(&["get", "all"]);
    assert_eq!(
        table_row(&stdout, "gitrepository/repo")[1],
        short(&first),
        "{stdout}"
    );
    assert_eq!(
        table_row(&stdout, "kustomization/app")[3],
        "True",
        "{stdout}"
    );
    // One table per kind with objects, each followed by an empty line.
    assert_eq!(stdout.matches("\n\n").count(), 2, "{stdout}");

    let (stdout, _) = world.ok(&[
        "get",
        "ks",
        "--status-selector",
        "ready=false",
        "--no-header",
    ]);
    assert_eq!(stdout, "", "nothing is failing");
    let (stdout, _) = world.ok(&["get", "ks", "app", "-o", "json"]);
    let object: Value = serde_json::from_str(&stdout)?;
    assert_eq!(object["kind"], "Kustomization");
    assert_eq!(object["status"]["lastAppliedRevision"], first.as_str());
    let stderr = world.fails(&["get", "ks", "nope"]);
    assert!(
        stderr.contains(&format!(
            "✗ Kustomization object 'nope' not found in \"{ns}\" namespace"
        )),
        "{stderr}"
    );

    // --watch prints the table, then stops at --timeout.
    let (stdout, _) = world.ok(&["get", "sources", "git", "--watch", "--timeout", "2s"]);
    assert_eq!(table_row(&stdout, "repo")[3], "True", "{stdout}");

    // reconcile --with-source after a commit: the new revision, fetched and applied.
    let second = tokio::task::block_in_place(|| {
        world
            .repo
            .commit([("deploy/cm.yaml", config_map("two"))], &[], "two")
    })?;
    let second = format!("main@sha1:{second}");
    let (_, stderr) = world.ok(&["reconcile", "ks", "app", "--with-source"]);
    let expected = [
        format!("► annotating GitRepository repo in {ns} namespace"),
        "✔ GitRepository annotated".to_owned(),
        "◎ waiting for GitRepository reconciliation".to_owned(),
        format!("✔ fetched revision {second}"),
        format!("► annotating Kustomization app in {ns} namespace"),
        "✔ Kustomization annotated".to_owned(),
        "◎ waiting for Kustomization reconciliation".to_owned(),
        format!("✔ applied revision {second}"),
    ];
    assert_eq!(stderr.lines().collect::<Vec<_>>(), expected, "{stderr}");
    let cm: Api<ConfigMap> = world.api();
    assert_eq!(cm.get("app").await?.data.unwrap()["value"], "two");

    // suspend: refused by reconcile, shown by get; resume waits for Ready.
    let (_, stderr) = world.ok(&["suspend", "kustomization", "app"]);
    assert_eq!(
        stderr,
        format!("► suspending kustomization app in {ns} namespace\n✔ kustomization suspended\n")
    );
    let (stdout, _) = world.ok(&["get", "ks"]);
    assert_eq!(table_row(&stdout, "app")[2], "True", "{stdout}");
    let stderr = world.fails(&["reconcile", "ks", "app"]);
    assert_eq!(stderr, "✗ resource is suspended\n");
    let (_, stderr) = world.ok(&["resume", "ks", "app"]);
    assert!(
        stderr.starts_with(&format!(
            "► resuming kustomization app in {ns} namespace\n✔ kustomization resumed\n"
        )),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(&format!(
            "✔ Kustomization app reconciliation completed\n✔ applied revision {second}\n"
        )),
        "{stderr}"
    );

    // export: clean YAML, no status or request annotations (reconcile set one).
    let (stdout, _) = world.ok(&["export", "ks", "app"]);
    assert_eq!(
        stdout,
        format!(
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  labels:\n    team: a\n  name: app\n  namespace: {ns}\nspec:\n  force: false\n  interval: 1h\n  path: ./deploy\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: repo\n  suspend: false\n  targetNamespace: {ns}\n"
        )
    );
    let (stdout, _) = world.ok(&["export", "source", "git", "--all"]);
    assert!(
        stdout.starts_with("---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("status"), "{stdout}");

    // A failing reconcile: exit 1 with the condition's message.
    world
        .kustomizations()
        .patch(
            "app",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"path": "./missing"}})),
        )
        .await?;
    let stderr = world.fails(&["reconcile", "ks", "app", "--timeout", "60s"]);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("✗ Kustomization reconciliation failed: ") && last.contains("missing"),
        "{stderr}"
    );
    let (stdout, _) = world.ok(&["get", "ks", "--status-selector", "ready=false"]);
    assert_eq!(table_row(&stdout, "app")[3], "False", "{stdout}");

    // delete: refused without a terminal to ask on, then done and waited for.
    let stderr = world.fails(&["delete", "ks", "app"]);
    assert!(
        stderr.contains("refusing to delete without confirmation"),
        "{stderr}"
    );
    let (_, stderr) = world.ok(&["delete", "ks", "app", "--silent"]);
    assert!(stderr.ends_with("✔ kustomization deleted\n"), "{stderr}");
    assert!(world.kustomizations().get_opt("app").await?.is_none());

    // version: the client, and the controllers deployed in the namespace.
    let (stdout, _) = world.ok(&["version", "--client"]);
    assert_eq!(
        stdout,
        format!("ferroflux: {}\n", env!("CARGO_PKG_VERSION"))
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = world.api();
    e2e::objects::apply(
        &deployments,
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "source-controller", "labels": {"app.kubernetes.io/part-of": "ferroflux"}},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "sc"}},
                "template": {"metadata": {"labels": {"app": "sc"}},
                    "spec": {"containers": [{"name": "manager", "image": "ghcr.io/ferroflux/source-controller:v9.8.7"}]}}}}),
    )
    .await?;
    let (stdout, _) = world.ok(&["version"]);
    assert_eq!(
        stdout,
        format!(
            "ferroflux: {}\nsource-controller: v9.8.7\n",
            env!("CARGO_PKG_VERSION")
        )
    );

    let (stdout, _) = world.ok(&["completion", "bash"]);
    assert!(
        stdout.contains("ferroflux__subcmd__reconcile__subcmd__kustomization"),
        "{}",
        &stdout[..200]
    );
    Ok(())
}
