//! A Git server on loopback: smart HTTP (lighttpd running `git http-backend`
//! as CGI, with basic auth, plus an anonymous read-only path) and ssh
//! (openssh-server, key-only, for a `git` user whose shell is `git-shell`).
//!
//! Repositories belong to the system user [`GIT_USER`]; lighttpd drops to it,
//! so CGI pushes and ssh pushes write the same files with the same owner.
//! Test-side helpers ([`Repo::commit`] and friends) never touch the server's
//! repositories directly: they build commits in a private bare mirror with
//! `git fast-import` and push them through the HTTP server, which also proves
//! that pushing works.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::lighttpd::{self, Credentials};
use crate::packages;
use crate::process::{self, Service};

/// The system account that owns the repositories and logs in over ssh.
pub const GIT_USER: &str = "git";
/// That account's home (git-shell starts there; nothing is kept in it).
const GIT_USER_HOME: &str = "/var/lib/ferroflux-git";
const GIT_SHELL: &str = "/usr/bin/git-shell";
const GIT_HTTP_BACKEND: &str = "/usr/lib/git-core/git-http-backend";
/// Who the helpers' commits and tags are by.
const COMMITTER_NAME: &str = "ferroflux e2e";
const COMMITTER_EMAIL: &str = "e2e@ferroflux.invalid";

/// A running Git server. Stopped, and its repositories deleted, on drop.
#[derive(Debug)]
pub struct GitServer {
    // Fields drop in order: the servers stop before their directory goes.
    _lighttpd: Service,
    _sshd: Service,
    http_port: u16,
    ssh_port: u16,
    credentials: Credentials,
    repos: PathBuf,
    identity: PathBuf,
    known_hosts: PathBuf,
    known_hosts_line: String,
    state: tempfile::TempDir,
}

/// The Git server all tests of one test binary share (one repository per
/// test), started on first use.
pub async fn shared() -> Result<&'static GitServer> {
    static SERVER: std::sync::OnceLock<std::result::Result<GitServer, String>> =
        std::sync::OnceLock::new();
    if let Some(server) = SERVER.get() {
        return server.as_ref().map_err(|e| anyhow::anyhow!("{e}"));
    }
    let started =
        tokio::task::spawn_blocking(|| GitServer::start().map_err(|e| format!("{e:#}"))).await?;
    // A parallel test may have won the race; its server is as good as ours.
    let _ = SERVER.set(started);
    SERVER
        .get()
        .ok_or_else(|| anyhow::anyhow!("git server slot is empty"))?
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the Git server did not start: {e}"))
}

impl GitServer {
    /// Installs what is missing, creates the `git` user if needed, and starts
    /// lighttpd and sshd on free loopback ports. Needs root (sshd, chown).
    pub fn start() -> Result<Self> {
        packages::ensure_debian_packages()?;
        if !packages::is_root() {
            bail!("the Git server needs root: sshd and the `{GIT_USER}` system user");
        }
        let git_ids = ensure_git_user()?;

        let state = tempfile::Builder::new()
            .prefix("ferroflux-git-")
            .tempdir()
            .context("creating the Git server's directory")?;
        // lighttpd's CGI and sshd's sessions run as the git user: let it in.
        set_mode(state.path(), 0o755)?;
        let repos = state.path().join("repos");
        let www = state.path().join("www");
        for dir in [&repos, &www] {
            std::fs::create_dir_all(dir)?;
        }
        chown_to_git_user(&repos)?;

        let credentials = Credentials::generate("flux");
        let htpasswd = state.path().join("htpasswd");
        credentials.write_htpasswd(&htpasswd)?;
        set_mode(&htpasswd, 0o644)?;

        let (lighttpd, http_port) = lighttpd::start(
            "git-http",
            state.path(),
            &www,
            Some(git_ids),
            &http_site(&repos, &htpasswd),
        )?;

        let ssh = SshFiles::generate(state.path())?;
        let (sshd, ssh_port) = start_sshd(state.path(), &ssh)?;
        let known_hosts_line = format!("[127.0.0.1]:{ssh_port} {}", ssh.host_public_key);
        let known_hosts = state.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("{known_hosts_line}\n"))?;

        Ok(Self {
            _lighttpd: lighttpd,
            _sshd: sshd,
            http_port,
            ssh_port,
            credentials,
            repos,
            identity: ssh.client_key,
            known_hosts,
            known_hosts_line,
            state,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn http_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// The repository's URL over HTTP; reading and pushing need basic auth.
    pub fn http_url(&self, repo: &str) -> String {
        format!("{}/git/{repo}.git", self.http_base())
    }

    /// The repository's URL over HTTP with the credentials in it.
    pub fn http_url_with_credentials(&self, repo: &str) -> String {
        format!(
            "http://{}:{}@127.0.0.1:{}/git/{repo}.git",
            self.credentials.username, self.credentials.password, self.http_port
        )
    }

    /// The repository's URL over HTTP without authentication: read-only.
    pub fn http_anonymous_url(&self, repo: &str) -> String {
        format!("{}/anon/{repo}.git", self.http_base())
    }

    /// The basic-auth user name.
    pub fn username(&self) -> &str {
        &self.credentials.username
    }

    /// The basic-auth password.
    pub fn password(&self) -> &str {
        &self.credentials.password
    }

    /// `ssh://git@127.0.0.1:PORT/<absolute path of the repository>`.
    pub fn ssh_url(&self, repo: &str) -> String {
        format!(
            "ssh://{GIT_USER}@127.0.0.1:{}{}",
            self.ssh_port,
            self.repo_path(repo).display()
        )
    }

    /// The ssh port.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// The client's ed25519 private key (OpenSSH format), as a Secret's `identity`.
    pub fn identity(&self) -> Result<String> {
        std::fs::read_to_string(&self.identity).context("reading the ssh client key")
    }

    /// The file holding [`identity`](Self::identity), mode 0600.
    pub fn identity_path(&self) -> &Path {
        &self.identity
    }

    /// The client's public key, one `ssh-ed25519 …` line.
    pub fn identity_public(&self) -> Result<String> {
        std::fs::read_to_string(self.identity.with_extension("pub"))
            .context("reading the ssh client public key")
    }

    /// `[127.0.0.1]:PORT ssh-ed25519 …`, as a Secret's `known_hosts`.
    pub fn known_hosts(&self) -> &str {
        &self.known_hosts_line
    }

    /// A file holding [`known_hosts`](Self::known_hosts).
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// A `GIT_SSH_COMMAND` that uses the client key and trusts only this server's host key.
    pub fn git_ssh_command(&self) -> String {
        ssh_command(&self.identity, &self.known_hosts)
    }

    /// Where the bare repository `repo` lives on disk.
    pub fn repo_path(&self, repo: &str) -> PathBuf {
        self.repos.join(format!("{repo}.git"))
    }

    /// The server's working directory (logs, configs).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// Creates the bare repository `name` with one commit on `main` holding
    /// `files` (path, content), pushed over HTTP.
    pub fn create_repo<I, P, C>(&self, name: &str, files: I) -> Result<Repo>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        let repo = self.create_empty_repo(name)?;
        repo.commit(files, &[], "Initial commit")?;
        Ok(repo)
    }

    /// Creates the bare repository `name` with no commits; `HEAD` names `main`.
    pub fn create_empty_repo(&self, name: &str) -> Result<Repo> {
        if name.is_empty() || name.contains("..") || name.starts_with('/') {
            bail!("invalid repository name {name:?}");
        }
        let path = self.repo_path(name);
        if path.exists() {
            bail!("repository {name} already exists");
        }
        process::run(
            git()
                .args(["init", "--quiet", "--bare", "--initial-branch=main"])
                .arg(&path),
        )?;
        chown_to_git_user(&path)?;

        let mirror = tempfile::Builder::new()
            .prefix("ferroflux-git-mirror-")
            .tempdir()
            .context("creating a local mirror")?;
        process::run(
            git()
                .args(["init", "--quiet", "--bare", "--initial-branch=main"])
                .arg(mirror.path()),
        )?;
        Ok(Repo {
            name: name.to_string(),
            http_url: self.http_url(name),
            push_url: self.http_url_with_credentials(name),
            ssh_url: self.ssh_url(name),
            mirror,
            lock: Mutex::new(()),
        })
    }
}

/// A repository on a [`GitServer`], changed by pushing commits built in a
/// private local mirror.
#[derive(Debug)]
pub struct Repo {
    name: String,
    http_url: String,
    push_url: String,
    ssh_url: String,
    mirror: tempfile::TempDir,
    /// Serialises the fetch, build and push of one change.
    lock: Mutex<()>,
}

impl Repo {
    /// The repository's name on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its HTTP URL (needs basic auth).
    pub fn http_url(&self) -> &str {
        &self.http_url
    }

    /// Its ssh URL.
    pub fn ssh_url(&self) -> &str {
        &self.ssh_url
    }

    /// Commits on `main`: writes `files` (path, content), deletes `deleted`
    /// paths, pushes, and returns the new commit's sha.
    pub fn commit<I, P, C>(&self, files: I, deleted: &[&str], message: &str) -> Result<String>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        self.commit_on("main", files, deleted, message)
    }

    /// Like [`commit`](Self::commit) on `branch`. A branch that does not exist
    /// yet starts from `main` (or from nothing in an empty repository).
    pub fn commit_on<I, P, C>(
        &self,
        branch: &str,
        files: I,
        deleted: &[&str],
        message: &str,
    ) -> Result<String>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        self.commit_tree(branch, files, &[], deleted, message)
    }

    /// Commits submodules `(path, url, commit)` on `main`: their gitlinks and
    /// a `.gitmodules` naming each by its path (replacing any there), as
    /// `git submodule add` leaves them. Returns the new commit's sha.
    pub fn commit_submodules(
        &self,
        modules: &[(&str, &str, &str)],
        message: &str,
    ) -> Result<String> {
        let gitmodules: String = modules
            .iter()
            .map(|(path, url, _)| {
                format!("[submodule \"{path}\"]\n\tpath = {path}\n\turl = {url}\n")
            })
            .collect();
        let gitlinks: Vec<(&str, &str)> = modules
            .iter()
            .map(|(path, _, commit)| (*path, *commit))
            .collect();
        self.commit_tree(
            "main",
            [(".gitmodules", gitmodules)],
            &gitlinks,
            &[],
            message,
        )
    }

    fn commit_tree<I, P, C>(
        &self,
        branch: &str,
        files: I,
        gitlinks: &[(&str, &str)],
        deleted: &[&str],
        message: &str,
    ) -> Result<String>
    where
        I: IntoIterator<Item = (P, C)>,
        P: AsRef<str>,
        C: AsRef<[u8]>,
    {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        // Controllers may have pushed since (image automation): build on their commits.
        self.fetch()?;
        let parent = [
            format!("refs/heads/{branch}"),
            "refs/heads/main".to_string(),
        ]
        .iter()
        .find_map(|reference| self.rev_parse(reference).ok());
        let stream =
            fast_import_stream(branch, parent.as_deref(), files, gitlinks, deleted, message)?;
        self.fast_import(&stream)?;
        let sha = self.rev_parse(&format!("refs/heads/{branch}"))?;
        self.push(&format!("refs/heads/{branch}:refs/heads/{branch}"))?;
        Ok(sha)
    }

    /// Creates the lightweight tag `name` at `sha` on the server.
    pub fn tag(&self, name: &str, sha: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.push(&format!("{sha}:refs/tags/{name}"))
    }

    /// Creates the annotated tag `name` at `sha` on the server.
    pub fn annotated_tag(&self, name: &str, sha: &str, message: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        process::run(self.git_in_mirror().args([
            "tag",
            "--force",
            "--annotate",
            "--message",
            message,
            name,
            sha,
        ]))?;
        self.push(&format!("refs/tags/{name}:refs/tags/{name}"))
    }

    /// Points branch `name` at `sha` on the server, creating or moving it.
    pub fn branch(&self, name: &str, sha: &str) -> Result<()> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.push(&format!("+{sha}:refs/heads/{name}"))
    }

    /// The sha `branch` points at on the server.
    pub fn head(&self, branch: &str) -> Result<String> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.fetch()?;
        self.rev_parse(&format!("refs/heads/{branch}"))
    }

    /// The content of `path` at `rev` (a branch, tag or sha) as on the server now.
    pub fn file_at(&self, rev: &str, path: &str) -> Result<Vec<u8>> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.fetch()?;
        let output = process::run(
            self.git_in_mirror()
                .args(["show", &format!("{rev}:{path}")]),
        )?;
        Ok(output.stdout)
    }

    fn git_in_mirror(&self) -> Command {
        let mut cmd = git();
        cmd.arg("-C").arg(self.mirror.path());
        cmd
    }

    fn fetch(&self) -> Result<()> {
        process::run(self.git_in_mirror().args([
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            &self.push_url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
        ]))
        .with_context(|| format!("fetching {}", self.http_url))?;
        Ok(())
    }

    fn push(&self, refspec: &str) -> Result<()> {
        process::run(
            self.git_in_mirror()
                .args(["push", "--quiet", &self.push_url, refspec]),
        )
        .with_context(|| format!("pushing {refspec} to {}", self.http_url))?;
        Ok(())
    }

    fn rev_parse(&self, reference: &str) -> Result<String> {
        let output = process::run(self.git_in_mirror().args([
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{reference}^{{commit}}"),
        ]))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn fast_import(&self, stream: &[u8]) -> Result<()> {
        let mut child = self
            .git_in_mirror()
            .args(["fast-import", "--quiet", "--done"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting git fast-import")?;
        // Write from a thread: fast-import may fill its output pipes before
        // reading all of a large stream.
        let mut stdin = child.stdin.take().context("fast-import stdin")?;
        let input = stream.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let output = child
            .wait_with_output()
            .context("running git fast-import")?;
        let written = writer.join();
        if !output.status.success() {
            bail!(
                "git fast-import failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(err).context("feeding git fast-import"),
            Err(_) => bail!("the thread feeding git fast-import panicked"),
        }
    }
}

/// A `git fast-import` stream of one commit on `branch` with the parent commit
/// sha `parent` (none for a root commit), writing `files` and deleting `deleted`.
fn fast_import_stream<I, P, C>(
    branch: &str,
    parent: Option<&str>,
    files: I,
    gitlinks: &[(&str, &str)],
    deleted: &[&str],
    message: &str,
) -> Result<Vec<u8>>
where
    I: IntoIterator<Item = (P, C)>,
    P: AsRef<str>,
    C: AsRef<[u8]>,
{
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::new();
    writeln!(out, "feature done")?;
    writeln!(out, "commit refs/heads/{branch}")?;
    writeln!(
        out,
        "committer {COMMITTER_NAME} <{COMMITTER_EMAIL}> {now} +0000"
    )?;
    data(&mut out, message.as_bytes())?;
    if let Some(parent) = parent {
        writeln!(out, "from {parent}")?;
    }
    for path in deleted {
        writeln!(out, "D {}", import_path(path)?)?;
    }
    for (path, content) in files {
        writeln!(out, "M 100644 inline {}", import_path(path.as_ref())?)?;
        data(&mut out, content.as_ref())?;
    }
    for (path, commit) in gitlinks {
        writeln!(out, "M 160000 {commit} {}", import_path(path)?)?;
    }
    writeln!(out)?;
    writeln!(out, "done")?;
    Ok(out)
}

fn data(out: &mut Vec<u8>, bytes: &[u8]) -> std::io::Result<()> {
    writeln!(out, "data {}", bytes.len())?;
    out.write_all(bytes)?;
    writeln!(out)
}

/// A path as fast-import takes it unquoted: relative, no newline, no leading quote.
fn import_path(path: &str) -> Result<&str> {
    if path.is_empty()
        || path.starts_with('/')
        || path.starts_with('"')
        || path.contains('\n')
        || path
            .split('/')
            .any(|part| part == ".." || part == "." || part.is_empty())
    {
        bail!("unsupported path for a test commit: {path:?}");
    }
    Ok(path)
}

/// `git` with no system or global configuration, a fixed identity, and never prompting.
fn git() -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0");
    for role in ["AUTHOR", "COMMITTER"] {
        cmd.env(format!("GIT_{role}_NAME"), COMMITTER_NAME)
            .env(format!("GIT_{role}_EMAIL"), COMMITTER_EMAIL);
    }
    cmd
}

/// The lighttpd site: `/git/` needs basic auth (and may push: http-backend
/// allows receive-pack once `REMOTE_USER` is set); `/anon/` reads only.
fn http_site(repos: &Path, htpasswd: &Path) -> String {
    let repos = repos.display();
    format!(
        r#"server.modules += ("mod_alias", "mod_auth", "mod_authn_file", "mod_cgi", "mod_setenv")
alias.url += ("/git" => "{GIT_HTTP_BACKEND}", "/anon" => "{GIT_HTTP_BACKEND}")
auth.backend = "htpasswd"
auth.backend.htpasswd.userfile = "{htpasswd}"
$HTTP["url"] =~ "^/git/" {{
    cgi.assign = ("" => "")
    setenv.add-environment = ("GIT_PROJECT_ROOT" => "{repos}", "GIT_HTTP_EXPORT_ALL" => "1")
    auth.require = ("" => ("method" => "basic", "realm" => "git", "require" => "valid-user"))
}}
$HTTP["url"] =~ "^/anon/" {{
    cgi.assign = ("" => "")
    setenv.add-environment = ("GIT_PROJECT_ROOT" => "{repos}", "GIT_HTTP_EXPORT_ALL" => "1")
}}
"#,
        htpasswd = htpasswd.display()
    )
}

/// The keys sshd and its client use, generated fresh per server.
struct SshFiles {
    host_key: PathBuf,
    host_public_key: String,
    client_key: PathBuf,
    authorized_keys: PathBuf,
}

impl SshFiles {
    fn generate(state: &Path) -> Result<Self> {
        let host_key = state.join("ssh_host_ed25519_key");
        let client_dir = state.join("client");
        std::fs::create_dir_all(&client_dir)?;
        let client_key = client_dir.join("id_ed25519");
        for (key, comment) in [
            (&host_key, "ferroflux-e2e-host"),
            (&client_key, "ferroflux-e2e"),
        ] {
            process::run(
                Command::new("ssh-keygen")
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(key),
            )?;
        }
        let host_public = std::fs::read_to_string(host_key.with_extension("pub"))?;
        // Drop the comment: known_hosts wants `<type> <key>`.
        let host_public_key = host_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let authorized_keys = state.join("authorized_keys");
        std::fs::copy(client_key.with_extension("pub"), &authorized_keys)?;
        set_mode(&authorized_keys, 0o644)?;
        Ok(Self {
            host_key,
            host_public_key,
            client_key,
            authorized_keys,
        })
    }
}

fn start_sshd(state: &Path, ssh: &SshFiles) -> Result<(Service, u16)> {
    // sshd's privilege separation chroots here; packages do not create it
    // when the service never started.
    std::fs::create_dir_all("/run/sshd").context("creating /run/sshd")?;
    let config = state.join("sshd_config");
    let log = state.join("sshd.log");
    process::start_on_free_port("sshd", &log, Duration::from_secs(10), |port| {
        std::fs::write(
            &config,
            format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {host_key}\n\
                 PidFile none\n\
                 AuthorizedKeysFile {authorized_keys}\n\
                 AllowUsers {GIT_USER}\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 PermitRootLogin no\n\
                 UsePAM no\n\
                 # The key files live under /tmp, which StrictModes rejects (world-writable).\n\
                 StrictModes no\n\
                 AllowTcpForwarding no\n\
                 X11Forwarding no\n\
                 PrintMotd no\n\
                 LogLevel VERBOSE\n",
                host_key = ssh.host_key.display(),
                authorized_keys = ssh.authorized_keys.display(),
            ),
        )?;
        // sshd re-executes itself and insists on an absolute path.
        let mut cmd = Command::new("/usr/sbin/sshd");
        cmd.args(["-D", "-e", "-f"]).arg(&config);
        Ok(cmd)
    })
}

/// An ssh command line for git that uses `identity` and trusts only the
/// hosts in `known_hosts`.
pub fn ssh_command(identity: &Path, known_hosts: &Path) -> String {
    format!(
        "ssh -i {} -o IdentitiesOnly=yes -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
         -o StrictHostKeyChecking=yes -o BatchMode=yes",
        identity.display(),
        known_hosts.display()
    )
}

/// Creates the `git` system user once per machine (shell git-shell, password
/// field `*`: sshd without PAM refuses keys for a locked `!` account) and
/// returns its (uid, gid).
fn ensure_git_user() -> Result<(u32, u32)> {
    static IDS: Mutex<Option<(u32, u32)>> = Mutex::new(None);
    let mut ids = IDS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(ids) = *ids {
        return Ok(ids);
    }
    let _lock = crate::paths::lock("git-user").context("locking the git user setup")?;
    let field = |entry: &Option<Vec<String>>, index: usize| {
        entry
            .as_ref()
            .and_then(|fields| fields.get(index))
            .cloned()
            .unwrap_or_default()
    };
    if getent("passwd")?.is_none() {
        process::run(
            Command::new("useradd")
                .args(["--system", "--user-group", "--create-home"])
                .args(["--home-dir", GIT_USER_HOME, "--shell", GIT_SHELL])
                .args(["--password", "*", GIT_USER]),
        )
        .context("creating the git user")?;
    } else if field(&getent("passwd")?, 6) != GIT_SHELL || field(&getent("shadow")?, 1) != "*" {
        // An existing account may be locked or have another shell: make it usable.
        process::run(Command::new("usermod").args([
            "--shell",
            GIT_SHELL,
            "--password",
            "*",
            GIT_USER,
        ]))
        .context("configuring the git user")?;
    }
    let passwd = getent("passwd")?;
    let parse = |index: usize| {
        field(&passwd, index)
            .parse::<u32>()
            .with_context(|| format!("reading the {GIT_USER} user's ids from getent"))
    };
    let found = (parse(2)?, parse(3)?);
    *ids = Some(found);
    Ok(found)
}

/// The `:`-separated fields of [`GIT_USER`]'s entry in the `database`
/// (`passwd`, `shadow`), or `None` when it has none.
fn getent(database: &str) -> Result<Option<Vec<String>>> {
    let output = Command::new("getent")
        .args([database, GIT_USER])
        .output()
        .with_context(|| format!("running getent {database}"))?;
    // Exit status 2: no such entry.
    if !output.status.success() {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&output.stdout);
    Ok(Some(
        line.trim_end().split(':').map(str::to_string).collect(),
    ))
}

fn chown_to_git_user(path: &Path) -> Result<()> {
    process::run(
        Command::new("chown")
            .arg("-R")
            .arg(format!("{GIT_USER}:{GIT_USER}"))
            .arg(path),
    )?;
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}
