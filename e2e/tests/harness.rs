//! The harness's own parts, proven against the real servers: what later
//! tests rely on (clone, push, auth refusals, OCI pushes, chart repositories,
//! helm, kustomize) is exercised here with the real clients.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use e2e::chart_repo::{ChartRepo, ChartSpec};
use e2e::git_server::GitServer;
use e2e::packages::Helm;
use e2e::registry::Registry;

/// `git` isolated from the machine's configuration, never prompting.
fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
    cmd
}

fn output(cmd: &mut Command) -> Result<Output> {
    let program = format!("{cmd:?}");
    cmd.output().with_context(|| format!("running {program}"))
}

fn stdout(cmd: &mut Command) -> Result<String> {
    let out = e2e::process::run(cmd)?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `f`, printing how long it took (the numbers in the harness's report).
fn timed<T>(what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let started = Instant::now();
    let result = f();
    eprintln!("{what}: {:?}", started.elapsed());
    result
}

/// Writes `file` into the clone at `dir` and commits it (message: the file's name).
fn commit_new_file(dir: &Path, file: &str, content: &str) -> Result<()> {
    std::fs::write(dir.join(file), content)?;
    e2e::process::run(git().arg("-C").arg(dir).args(["add", file]))?;
    e2e::process::run(git().arg("-C").arg(dir).args([
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-qm",
        file,
    ]))?;
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[test]
fn ensure_all_installs_or_finds_everything() -> Result<()> {
    timed("ensure_all", e2e::packages::ensure_all)?;
    let bin_dir = e2e::paths::bin_dir();
    ensure!(e2e::packages::helm()? == bin_dir.join("helm-v4.3.1"));
    ensure!(e2e::packages::kubectl_kustomize()? == bin_dir.join("kubectl-v1.37.1"));
    // With everything in place, finding it again costs a couple of stats.
    let again = Instant::now();
    e2e::packages::ensure_all()?;
    ensure!(
        again.elapsed().as_millis() < 100,
        "second ensure_all took {:?}",
        again.elapsed()
    );
    Ok(())
}

#[test]
fn git_over_http_clones_with_credentials_and_refuses_a_wrong_password() -> Result<()> {
    let server = timed("GitServer::start", GitServer::start)?;
    let repo = server.create_repo(
        "app",
        [
            ("README.md", "hello\n"),
            ("deploy/cm.yaml", "kind: ConfigMap\n"),
        ],
    )?;
    let work = tempfile::tempdir()?;

    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("app"))
            .arg(&clone),
    )?;
    ensure!(read(&clone.join("README.md"))? == "hello\n");
    ensure!(read(&clone.join("deploy/cm.yaml"))? == "kind: ConfigMap\n");
    let branch = stdout(
        git()
            .arg("-C")
            .arg(&clone)
            .args(["rev-parse", "--abbrev-ref", "HEAD"]),
    )?;
    ensure!(branch.trim() == "main", "cloned branch {branch:?}");

    let wrong = server
        .http_url_with_credentials("app")
        .replace(server.password(), "not-the-password");
    let refused = output(
        git()
            .arg("clone")
            .arg(&wrong)
            .arg(work.path().join("refused")),
    )?;
    ensure!(
        !refused.status.success(),
        "clone with a wrong password succeeded"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    ensure!(
        stderr.contains("Authentication failed") || stderr.contains("401"),
        "{stderr}"
    );

    let anonymous = output(
        git()
            .arg("clone")
            .arg(server.http_url("app"))
            .arg(work.path().join("anon")),
    )?;
    ensure!(
        !anonymous.status.success(),
        "clone without credentials succeeded on /git/"
    );

    // The anonymous path reads but never writes.
    let anon = work.path().join("anon-read");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_anonymous_url("app"))
            .arg(&anon),
    )?;
    ensure!(read(&anon.join("README.md"))? == "hello\n");
    commit_new_file(&anon, "new.txt", "x")?;
    let pushed = output(git().arg("-C").arg(&anon).args(["push", "origin", "main"]))?;
    ensure!(!pushed.status.success(), "anonymous push succeeded");
    ensure!(
        repo.head("main")?
            != stdout(git().arg("-C").arg(&anon).args(["rev-parse", "HEAD"]))?.trim()
    );
    Ok(())
}

#[test]
fn git_commits_pushed_over_http_are_seen_by_a_new_clone() -> Result<()> {
    let server = GitServer::start()?;
    let repo = server.create_repo("app", [("a.txt", "one\n"), ("b.txt", "gone soon\n")])?;
    let first = repo.head("main")?;
    let second = repo.commit(
        [("a.txt", "two\n"), ("dir/c.txt", "three\n")],
        &["b.txt"],
        "second",
    )?;
    ensure!(second != first);
    repo.tag("v1.0.0", &first)?;
    repo.annotated_tag("v2.0.0", &second, "release 2")?;
    repo.branch("release", &first)?;
    let feature = repo.commit_on("feature", [("f.txt", "feature\n")], &[], "feature work")?;

    let work = tempfile::tempdir()?;
    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("app"))
            .arg(&clone),
    )?;
    let in_clone = |args: &[&str]| stdout(git().arg("-C").arg(&clone).args(args));
    ensure!(in_clone(&["rev-parse", "HEAD"])?.trim() == second);
    ensure!(read(&clone.join("a.txt"))? == "two\n");
    ensure!(read(&clone.join("dir/c.txt"))? == "three\n");
    ensure!(!clone.join("b.txt").exists(), "deleted file still there");
    ensure!(in_clone(&["rev-parse", "v1.0.0^{commit}"])?.trim() == first);
    ensure!(in_clone(&["rev-parse", "v2.0.0^{commit}"])?.trim() == second);
    ensure!(in_clone(&["cat-file", "-t", "v2.0.0"])?.trim() == "tag");
    ensure!(in_clone(&["rev-parse", "origin/release"])?.trim() == first);
    ensure!(in_clone(&["rev-parse", "origin/feature^"])?.trim() == second);
    ensure!(in_clone(&["rev-parse", "origin/feature"])?.trim() == feature);

    // Someone else pushes (as a controller would); the next helper commit builds on it.
    std::fs::write(clone.join("a.txt"), "from a clone\n")?;
    in_clone(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@e.invalid",
        "commit",
        "-qam",
        "outside",
    ])?;
    in_clone(&["push", "-q", "origin", "main"])?;
    let outside = in_clone(&["rev-parse", "HEAD"])?;
    let after = repo.commit([("d.txt", "four\n")], &[], "after outside")?;
    ensure!(repo.file_at(&after, "a.txt")? == b"from a clone\n");
    in_clone(&["pull", "-q", "--ff-only"])?;
    ensure!(in_clone(&["rev-parse", "HEAD^"])? == outside);
    Ok(())
}

#[test]
fn git_over_ssh_clones_with_the_key_and_refuses_another_key() -> Result<()> {
    let server = GitServer::start()?;
    server.create_repo("app", [("README.md", "over ssh\n")])?;
    let work = tempfile::tempdir()?;
    let known_hosts = work.path().join("known_hosts");
    std::fs::write(&known_hosts, format!("{}\n", server.known_hosts()))?;
    let identity = work.path().join("id");
    std::fs::write(&identity, server.identity()?)?;
    std::fs::set_permissions(
        &identity,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    ensure!(
        server
            .known_hosts()
            .starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", server.ssh_port()))
    );
    ensure!(
        server
            .identity()?
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
    );
    let ssh = |key: &Path| {
        format!(
            "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o BatchMode=yes",
            key.display(),
            known_hosts.display()
        )
    };

    let clone = work.path().join("clone");
    e2e::process::run(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(&clone),
    )?;
    ensure!(read(&clone.join("README.md"))? == "over ssh\n");

    // Pushing over ssh works too (git-shell runs receive-pack as the git user).
    commit_new_file(&clone, "ssh.txt", "pushed\n")?;
    e2e::process::run(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("-C")
            .arg(&clone)
            .args(["push", "-q", "origin", "main"]),
    )?;

    let other = work.path().join("other");
    e2e::process::run(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&other),
    )?;
    let refused = output(
        git()
            .env("GIT_SSH_COMMAND", ssh(&other))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(work.path().join("refused")),
    )?;
    ensure!(
        !refused.status.success(),
        "clone with another key succeeded"
    );
    ensure!(String::from_utf8_lossy(&refused.stderr).contains("Permission denied"));

    // A host key other than the server's is refused too.
    std::fs::write(
        &known_hosts,
        format!(
            "[127.0.0.1]:{} {}",
            server.ssh_port(),
            read(&other.with_extension("pub"))?
        ),
    )?;
    let spoofed = output(
        git()
            .env("GIT_SSH_COMMAND", ssh(&identity))
            .arg("clone")
            .arg(server.ssh_url("app"))
            .arg(work.path().join("spoofed")),
    )?;
    ensure!(
        !spoofed.status.success(),
        "clone with a wrong known_hosts succeeded"
    );
    Ok(())
}

#[test]
fn git_repo_of_ten_thousand_files_is_created_quickly() -> Result<()> {
    let server = GitServer::start()?;
    let files: Vec<(String, String)> = (0..10_000)
        .map(|i| {
            (
                format!("apps/app-{:03}/cm-{i:05}.yaml", i / 100),
                format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  n: \"{i}\"\n"),
            )
        })
        .collect();
    let started = Instant::now();
    let repo = timed("10,000-file repository", || {
        server.create_repo("big", files)
    })?;
    let took = started.elapsed();
    let work = tempfile::tempdir()?;
    e2e::process::run(
        git()
            .arg("clone")
            .arg(server.http_url_with_credentials("big"))
            .arg(work.path().join("c")),
    )?;
    let count = stdout(
        git()
            .arg("-C")
            .arg(work.path().join("c"))
            .args(["ls-files"]),
    )?
    .lines()
    .count();
    ensure!(count == 10_000, "{count} files");
    ensure!(
        repo.file_at("main", "apps/app-099/cm-09999.yaml")?
            .starts_with(b"apiVersion: v1")
    );
    ensure!(took.as_secs() < 20, "creating 10,000 files took {took:?}");
    Ok(())
}

/// A status code for a plain GET, optionally with basic auth.
fn http_get_status(url: &str, auth: Option<(&str, &str)>) -> Result<u16> {
    let client = reqwest::blocking::Client::new();
    let mut request = client.get(url);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    Ok(request.send()?.status().as_u16())
}

#[test]
fn registry_pushes_images_and_lists_their_tags() -> Result<()> {
    let registry = timed("Registry::start(false)", || Registry::start(false))?;
    let first = registry.push_image("team/app", "1.0.0")?;
    let second = registry.push_image("team/app", "1.1.0")?;
    ensure!(first != second, "two tags share a digest");
    let mut tags = registry.list_tags("team/app")?;
    tags.sort();
    ensure!(tags == ["1.0.0", "1.1.0"], "{tags:?}");

    let (digest, manifest) = registry.manifest("team/app", "1.0.0")?;
    ensure!(digest == first);
    ensure!(manifest["mediaType"] == e2e::registry::OCI_MANIFEST);
    ensure!(manifest["config"]["mediaType"] == e2e::registry::OCI_CONFIG);
    ensure!(manifest["layers"][0]["mediaType"] == e2e::registry::OCI_LAYER_GZIP);
    // Pulling by digest gives the same manifest back.
    ensure!(registry.manifest("team/app", &first)?.0 == first);

    ensure!(registry.tag("team/app", "1.1.0", "latest")? == second);
    ensure!(
        registry
            .list_tags("team/app")?
            .contains(&"latest".to_string())
    );
    ensure!(registry.docker_config_json() == r#"{"auths":{}}"#);
    Ok(())
}

#[test]
fn registry_with_auth_refuses_anonymous_and_wrong_credentials() -> Result<()> {
    let registry = timed("Registry::start(true)", || Registry::start(true))?;
    registry.push_image("app", "v1")?;
    ensure!(registry.list_tags("app")? == ["v1"]);

    let url = format!("http://{}/v2/app/tags/list", registry.host());
    ensure!(http_get_status(&url, None)? == 401);
    ensure!(http_get_status(&url, Some(("flux", "wrong")))? == 401);
    let user = registry.username().context("no user")?;
    let password = registry.password().context("no password")?;
    ensure!(http_get_status(&url, Some((user, password)))? == 200);

    let config: serde_json::Value = serde_json::from_str(&registry.docker_config_json())?;
    let entry = &config["auths"][registry.host()];
    ensure!(entry["username"] == user && entry["password"] == password);
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().context("no auth")?)?;
    ensure!(auth == format!("{user}:{password}").as_bytes());
    Ok(())
}

#[test]
fn flux_artifact_has_flux_media_types_annotations_and_the_files() -> Result<()> {
    let registry = Registry::start(false)?;
    let files = [
        (
            "deploy/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        ),
        ("kustomization.yaml", "resources:\n- deploy/cm.yaml\n"),
    ];
    let digest = registry.push_flux_artifact("manifests/app", "v1.0.0", files)?;
    let (pulled, manifest) = registry.manifest("manifests/app", "v1.0.0")?;
    ensure!(pulled == digest);
    ensure!(manifest["mediaType"] == e2e::registry::OCI_MANIFEST);
    ensure!(manifest["config"]["mediaType"] == "application/vnd.cncf.flux.config.v1+json");
    let layers = manifest["layers"].as_array().context("no layers")?;
    ensure!(layers.len() == 1);
    ensure!(layers[0]["mediaType"] == "application/vnd.cncf.flux.content.v1.tar+gzip");
    let annotations = &manifest["annotations"];
    ensure!(annotations["org.opencontainers.image.revision"] == "v1.0.0");
    ensure!(annotations["org.opencontainers.image.source"].is_string());
    let created = annotations["org.opencontainers.image.created"]
        .as_str()
        .context("no created annotation")?;
    created.parse::<jiff::Timestamp>()?;

    let layer = registry.blob(
        "manifests/app",
        layers[0]["digest"].as_str().context("no digest")?,
    )?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut unpacked = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let mut content = String::new();
        std::io::Read::read_to_string(&mut entry, &mut content)?;
        unpacked.push((path, content));
    }
    let expected: Vec<(String, String)> = files
        .iter()
        .map(|(p, c)| (p.to_string(), c.to_string()))
        .collect();
    ensure!(unpacked == expected, "{unpacked:?}");

    // Same content, same layer digest: the tar and gzip are reproducible.
    registry.push_flux_artifact("manifests/app", "v1.0.1", files)?;
    let (_, again) = registry.manifest("manifests/app", "v1.0.1")?;
    ensure!(again["layers"][0]["digest"] == layers[0]["digest"]);
    Ok(())
}

#[test]
fn chart_repository_serves_charts_to_helm_repo_add_search_and_pull() -> Result<()> {
    let repo = timed("ChartRepo::start(true)", || ChartRepo::start(true))?;
    repo.add_chart(&ChartSpec::config_maps("cms", "1.0.0"))?;
    repo.add_chart(&ChartSpec::config_maps("cms", "1.1.0").values("data:\n  greeting: hi\n"))?;
    repo.add_chart(&ChartSpec::new("scaffold", "0.3.0").app_version("2.0.0"))?;
    ensure!(
        repo.index()?
            .contains(&format!("{}/cms-1.1.0.tgz", repo.url()))
    );

    let user = repo.username().context("no user")?;
    let password = repo.password().context("no password")?;
    let index = format!("{}/index.yaml", repo.url());
    ensure!(http_get_status(&index, None)? == 401);
    ensure!(http_get_status(&index, Some((user, password)))? == 200);

    let helm = Helm::new()?;
    let refused = output(helm.command().args(["repo", "add", "anon", &repo.url()]))?;
    ensure!(
        !refused.status.success(),
        "helm repo add without credentials succeeded"
    );
    helm.run([
        "repo",
        "add",
        "test",
        &repo.url(),
        "--username",
        user,
        "--password",
        password,
    ])?;
    let search = helm.run(["search", "repo", "test/", "--versions"])?;
    ensure!(
        search.contains("test/cms") && search.contains("1.1.0") && search.contains("1.0.0"),
        "{search}"
    );
    ensure!(
        search.contains("test/scaffold") && search.contains("2.0.0"),
        "{search}"
    );

    let pulled = tempfile::tempdir()?;
    helm.run([
        "pull",
        "test/cms",
        "--version",
        "1.0.0",
        "--destination",
        pulled.path().to_str().context("path")?,
    ])?;
    let tgz = pulled.path().join("cms-1.0.0.tgz");
    ensure!(tgz.is_file());
    let rendered = helm.run(["template", "rel", tgz.to_str().context("path")?])?;
    ensure!(
        rendered.contains("kind: ConfigMap") && rendered.contains("name: rel-cms"),
        "{rendered}"
    );
    ensure!(
        rendered.contains("chartVersion: \"1.0.0\"") && rendered.contains("greeting: \"hello\""),
        "{rendered}"
    );
    ensure!(!rendered.contains("kind: Deployment"), "{rendered}");
    Ok(())
}

#[test]
fn chart_values_schema_and_extra_files_are_packaged() -> Result<()> {
    let schema = r#"{"$schema": "https://json-schema.org/draft-07/schema#", "type": "object",
        "properties": {"replicas": {"type": "integer", "minimum": 1}}, "required": ["replicas"]}"#;
    let chart = ChartSpec::new("strict", "0.1.0")
        .template("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\ndata:\n  replicas: {{ .Values.replicas | quote }}\n")
        .values("replicas: 2\n")
        .values_schema(schema)
        .file("crds/widget.yaml", "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\n");
    let out = tempfile::tempdir()?;
    let tgz = e2e::chart_repo::package_chart(&chart, out.path())?;
    ensure!(
        tgz == out.path().join("strict-0.1.0.tgz"),
        "{}",
        tgz.display()
    );
    let helm = Helm::new()?;
    let path = tgz.to_str().context("path")?;
    let rendered = helm.run(["template", "r", path, "--include-crds"])?;
    ensure!(
        rendered.contains("replicas: \"2\"") && rendered.contains("widgets.example.com"),
        "{rendered}"
    );
    let invalid = output(
        helm.command()
            .args(["template", "r", path, "--set", "replicas=0"]),
    )?;
    ensure!(
        !invalid.status.success(),
        "schema did not reject replicas=0"
    );
    ensure!(String::from_utf8_lossy(&invalid.stderr).contains("replicas"));
    Ok(())
}

#[test]
fn helm_pushes_and_pulls_charts_over_oci() -> Result<()> {
    let registry = Registry::start(true)?;
    let out = tempfile::tempdir()?;
    let tgz =
        e2e::chart_repo::package_chart(&ChartSpec::config_maps("ocichart", "0.2.0"), out.path())?;
    let digest = registry.push_chart(&tgz)?;
    ensure!(digest.starts_with("sha256:"), "{digest}");
    ensure!(registry.list_tags("charts/ocichart")? == ["0.2.0"]);
    let (pulled_digest, manifest) = registry.manifest("charts/ocichart", "0.2.0")?;
    ensure!(pulled_digest == digest);
    ensure!(manifest["config"]["mediaType"] == "application/vnd.cncf.helm.config.v1+json");
    ensure!(
        manifest["layers"][0]["mediaType"] == "application/vnd.cncf.helm.chart.content.v1.tar+gzip"
    );

    let helm = Helm::new()?;
    let reference = format!("{}/ocichart", registry.oci_url("charts"));
    let destination = tempfile::tempdir()?;
    let dest = destination.path().to_str().context("path")?;
    let anonymous = output(helm.command().args([
        "pull",
        &reference,
        "--version",
        "0.2.0",
        "--plain-http",
        "-d",
        dest,
    ]))?;
    ensure!(!anonymous.status.success(), "anonymous helm pull succeeded");
    registry.helm_login(&helm)?;
    helm.run([
        "pull",
        &reference,
        "--version",
        "0.2.0",
        "--plain-http",
        "-d",
        dest,
    ])?;
    ensure!(destination.path().join("ocichart-0.2.0.tgz").is_file());
    Ok(())
}

#[test]
fn helm_and_kubectl_kustomize_are_the_expected_versions() -> Result<()> {
    let kubectl = e2e::packages::kubectl_kustomize()?;
    let version = stdout(Command::new(&kubectl).args(["version", "--client"]))?;
    ensure!(version.contains("Client Version: v1.37.1"), "{version}");
    ensure!(version.contains("Kustomize Version: v5.8.1"), "{version}");

    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
    )?;
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "namePrefix: p-\nresources:\n- cm.yaml\n",
    )?;
    let built = stdout(Command::new(&kubectl).arg("kustomize").arg(dir.path()))?;
    ensure!(built.contains("name: p-cm"), "{built}");

    let helm = Helm::new()?;
    let version = helm.run(["version", "--short"])?;
    ensure!(version.starts_with("v4.3.1"), "{version}");
    Ok(())
}
