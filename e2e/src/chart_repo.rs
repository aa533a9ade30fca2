//! A Helm chart repository on loopback (lighttpd serving a directory with
//! `index.yaml` and the chart archives, optionally behind basic auth), and
//! charts made with the real helm (`helm create`, `helm package`).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::lighttpd::{self, Credentials};
use crate::packages::{self, Helm};
use crate::process::{self, Service};

/// A chart to package: `helm create`'s scaffold, optionally with its
/// templates, values or schema replaced and files added.
#[derive(Clone, Debug)]
pub struct ChartSpec {
    name: String,
    version: String,
    app_version: Option<String>,
    /// `None` keeps the scaffold's templates (a Deployment, Service, …).
    templates: Option<Vec<(String, String)>>,
    values: Option<String>,
    values_schema: Option<String>,
    files: Vec<(String, String)>,
}

/// The template of [`ChartSpec::config_maps`]: one ConfigMap carrying the
/// chart version and every key of `.Values.data`.
const CONFIG_MAP_TEMPLATE: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-{{ .Chart.Name }}
  labels:
    app.kubernetes.io/name: {{ .Chart.Name }}
    app.kubernetes.io/instance: {{ .Release.Name }}
data:
  chartVersion: {{ .Chart.Version | quote }}
  {{- range $key, $value := .Values.data }}
  {{ $key }}: {{ $value | quote }}
  {{- end }}
"#;

impl ChartSpec {
    /// `helm create NAME`'s chart at `version`, unchanged otherwise.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.to_string(),
            version: version.to_string(),
            app_version: None,
            templates: None,
            values: None,
            values_schema: None,
            files: Vec::new(),
        }
    }

    /// A chart of one ConfigMap (no Pods: nothing would ever run them)
    /// named `<release>-<chart>`, with `chartVersion` and the entries of
    /// `.Values.data` (default `greeting: hello`).
    pub fn config_maps(name: &str, version: &str) -> Self {
        Self::new(name, version)
            .template("configmap.yaml", CONFIG_MAP_TEMPLATE)
            .values("data:\n  greeting: hello\n")
    }

    /// Sets `appVersion`.
    pub fn app_version(mut self, app_version: &str) -> Self {
        self.app_version = Some(app_version.to_string());
        self
    }

    /// Adds `templates/<name>`; the first call drops the scaffold's templates.
    pub fn template(mut self, name: &str, content: &str) -> Self {
        self.templates
            .get_or_insert_with(Vec::new)
            .push((name.to_string(), content.to_string()));
        self
    }

    /// Replaces `values.yaml`.
    pub fn values(mut self, yaml: &str) -> Self {
        self.values = Some(yaml.to_string());
        self
    }

    /// Adds `values.schema.json`.
    pub fn values_schema(mut self, json: &str) -> Self {
        self.values_schema = Some(json.to_string());
        self
    }

    /// Adds (or replaces) any file, relative to the chart root (`crds/x.yaml`, …).
    pub fn file(mut self, path: &str, content: &str) -> Self {
        self.files.push((path.to_string(), content.to_string()));
        self
    }

    /// The chart name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chart version.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Writes the chart's directory under `parent` (`parent/<name>`) with
    /// `helm create` and the changes asked for; returns its path.
    pub fn write_dir(&self, helm: &Helm, parent: &Path) -> Result<PathBuf> {
        let dir = parent.join(&self.name);
        process::run(helm.command().arg("create").arg(&dir))
            .with_context(|| format!("helm create {}", self.name))?;
        if let Some(templates) = &self.templates {
            let templates_dir = dir.join("templates");
            std::fs::remove_dir_all(&templates_dir)?;
            std::fs::create_dir_all(&templates_dir)?;
            for (name, content) in templates {
                write_inside(&templates_dir, name, content)?;
            }
        }
        if let Some(values) = &self.values {
            std::fs::write(dir.join("values.yaml"), values)?;
        }
        if let Some(schema) = &self.values_schema {
            std::fs::write(dir.join("values.schema.json"), schema)?;
        }
        for (path, content) in &self.files {
            write_inside(&dir, path, content)?;
        }
        Ok(dir)
    }
}

/// Writes `root/relative`, refusing paths that leave `root`.
fn write_inside(root: &Path, relative: &str, content: &str) -> Result<()> {
    let relative_path = Path::new(relative);
    if relative_path.is_absolute()
        || relative_path
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        bail!("chart file path must stay inside the chart: {relative:?}");
    }
    let path = root.join(relative_path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}

/// Packages `chart` with `helm package` into `out_dir`; returns the `.tgz` path.
pub fn package_chart(chart: &ChartSpec, out_dir: &Path) -> Result<PathBuf> {
    let helm = Helm::new()?;
    let work = tempfile::tempdir().context("creating a chart work directory")?;
    let dir = chart.write_dir(&helm, work.path())?;
    std::fs::create_dir_all(out_dir)?;
    let mut cmd = helm.command();
    cmd.arg("package")
        .arg(&dir)
        .arg("--version")
        .arg(&chart.version)
        .arg("--destination")
        .arg(out_dir);
    if let Some(app_version) = &chart.app_version {
        cmd.arg("--app-version").arg(app_version);
    }
    let output = process::run(&mut cmd).with_context(|| format!("helm package {}", chart.name))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let saved = text
        .lines()
        .find_map(|line| {
            line.split_once("saved it to: ")
                .map(|(_, path)| path.trim())
        })
        .with_context(|| format!("no archive path in the output of helm package:\n{text}"))?;
    Ok(PathBuf::from(saved))
}

/// A running chart repository. Stopped, and its files deleted, on drop.
#[derive(Debug)]
pub struct ChartRepo {
    _service: Service,
    /// The host its URL (and so index.yaml's chart URLs) names.
    host: String,
    port: u16,
    credentials: Option<Credentials>,
    charts: PathBuf,
    helm: Helm,
    /// Serialises adding a chart and re-indexing.
    index_lock: Mutex<()>,
    state: tempfile::TempDir,
}

impl ChartRepo {
    /// Installs what is missing and serves an empty repository (a valid
    /// `index.yaml` with no entries) on a free loopback port, with basic auth
    /// when `auth`.
    pub fn start(auth: bool) -> Result<Self> {
        Self::start_named(auth, "127.0.0.1")
    }

    /// [`start`](Self::start), its URL naming `host` (which must resolve to
    /// 127.0.0.1, where it listens): index.yaml's chart URLs name it too.
    pub fn start_named(auth: bool, host: &str) -> Result<Self> {
        packages::ensure_debian_packages()?;
        let helm = Helm::new()?;
        let state = tempfile::Builder::new()
            .prefix("ferroflux-charts-")
            .tempdir()
            .context("creating the chart repository's directory")?;
        let charts = state.path().join("charts");
        std::fs::create_dir_all(&charts)?;
        let credentials = auth.then(|| Credentials::generate("flux"));
        let site = match &credentials {
            Some(credentials) => {
                let htpasswd = state.path().join("htpasswd");
                credentials.write_htpasswd(&htpasswd)?;
                format!(
                    "server.modules += (\"mod_auth\", \"mod_authn_file\")\n\
                     auth.backend = \"htpasswd\"\n\
                     auth.backend.htpasswd.userfile = \"{}\"\n\
                     auth.require = (\"\" => (\"method\" => \"basic\", \"realm\" => \"charts\", \"require\" => \"valid-user\"))\n",
                    htpasswd.display()
                )
            }
            None => String::new(),
        };
        let (service, port) = lighttpd::start("chart-repo", state.path(), &charts, None, &site)?;
        let repo = Self {
            _service: service,
            host: host.to_string(),
            port,
            credentials,
            charts,
            helm,
            index_lock: Mutex::new(()),
            state,
        };
        repo.reindex()?;
        Ok(repo)
    }

    /// `http://127.0.0.1:PORT` (or the host it was started with), the
    /// repository URL.
    pub fn url(&self) -> String {
        format!("http://{}:{}", self.host, self.port)
    }

    /// The basic-auth user name, when auth is on.
    pub fn username(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.username.as_str())
    }

    /// The basic-auth password, when auth is on.
    pub fn password(&self) -> Option<&str> {
        self.credentials.as_ref().map(|c| c.password.as_str())
    }

    /// The served directory.
    pub fn charts_dir(&self) -> &Path {
        &self.charts
    }

    /// The repository's working directory (config, log, charts).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Publishes a packaged chart: copies it in and regenerates `index.yaml`.
    pub fn add(&self, tgz: &Path) -> Result<()> {
        let _guard = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let file_name = tgz
            .file_name()
            .with_context(|| format!("{} has no file name", tgz.display()))?;
        std::fs::copy(tgz, self.charts.join(file_name))
            .with_context(|| format!("copying {}", tgz.display()))?;
        self.reindex()
    }

    /// Packages `chart` and publishes it; returns the archive's path in the repository.
    pub fn add_chart(&self, chart: &ChartSpec) -> Result<PathBuf> {
        let work = tempfile::tempdir()?;
        let tgz = package_chart(chart, work.path())?;
        self.add(&tgz)?;
        Ok(self.charts.join(tgz.file_name().unwrap_or_default()))
    }

    /// The current `index.yaml`.
    pub fn index(&self) -> Result<String> {
        std::fs::read_to_string(self.charts.join("index.yaml")).context("reading index.yaml")
    }

    fn reindex(&self) -> Result<()> {
        process::run(
            self.helm
                .command()
                .args(["repo", "index"])
                .arg(&self.charts)
                .arg("--url")
                .arg(self.url()),
        )
        .context("helm repo index")?;
        Ok(())
    }
}
