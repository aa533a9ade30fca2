//! Listing a remote's references and checking one out, with gix on a blocking
//! thread under a timeout.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gix::bstr::ByteSlice;
use gix::protocol::transport::client::blocking_io::Transport;
use gix::remote::Connection;

use crate::auth::{SshFiles, scheme_of};
use crate::{Auth, Commit, Error, Reference};

/// A remote repository and how to reach it.
#[derive(Clone, Debug)]
pub struct Remote {
    /// `http(s)://`, `ssh://` or `file://` address of the repository.
    pub url: String,
    /// Credentials for it.
    pub auth: Auth,
    /// Upper bound for one whole operation (connect, negotiate, transfer, checkout).
    pub timeout: Duration,
    /// The HTTP(S) proxy to reach it through (Flux's `proxySecretRef`); `None`
    /// uses the `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` environment.
    pub proxy: Option<crate::Proxy>,
}

/// A reference advertised by a remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// The full name (`refs/tags/v1.0.0`).
    pub name: String,
    /// The commit it points to, with annotated tags peeled.
    pub commit: String,
}

/// How much to fetch.
#[derive(Clone, Debug)]
pub struct CheckoutOptions {
    /// History depth to fetch; `None` fetches the full history.
    pub depth: Option<NonZeroU32>,
}

impl Default for CheckoutOptions {
    fn default() -> Self {
        CheckoutOptions {
            depth: NonZeroU32::new(1),
        }
    }
}

/// Lists the remote's references whose names match one of `patterns`: a full
/// reference name, or a prefix ending in `*` (`refs/tags/*`).
pub async fn list_refs(remote: &Remote, patterns: &[&str]) -> Result<Vec<RemoteRef>, Error> {
    let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
    run_blocking(remote, move |remote, interrupt| {
        list_refs_blocking(&remote, &patterns, &interrupt)
    })
    .await
}

/// Fetches `reference` from the remote and checks it out into `dir`, which must
/// be empty or absent. The checkout keeps its `.git` directory. Submodules are
/// left out (their paths stay absent); [`checkout_submodules`](crate::checkout_submodules)
/// fetches them.
pub async fn checkout(
    remote: &Remote,
    reference: &Reference,
    dir: &Path,
    options: &CheckoutOptions,
) -> Result<Commit, Error> {
    let reference = reference.clone();
    let dir = dir.to_path_buf();
    let options = options.clone();
    run_blocking(remote, move |remote, interrupt| {
        checkout_blocking(&remote, &reference, &dir, &options, &interrupt)
    })
    .await
}

/// Runs `work` on a blocking thread. When the remote's timeout passes first, the
/// work is asked to stop (gix checks the flag between steps) and `Timeout` is
/// returned without waiting for it.
pub(crate) async fn run_blocking<T, F>(remote: &Remote, work: F) -> Result<T, Error>
where
    T: Send + 'static,
    F: FnOnce(Remote, Arc<AtomicBool>) -> Result<T, Error> + Send + 'static,
{
    scheme_of(&remote.url)?;
    let interrupt = Arc::new(AtomicBool::new(false));
    let task = tokio::task::spawn_blocking({
        let remote = remote.clone();
        let interrupt = interrupt.clone();
        move || work(remote, interrupt)
    });
    match tokio::time::timeout(remote.timeout, task).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(Error::Operation {
            url: remote.url.clone(),
            message: format!("git worker failed: {join}"),
        }),
        Err(_) => {
            interrupt.store(true, Ordering::Relaxed);
            Err(Error::Timeout {
                url: remote.url.clone(),
                timeout: remote.timeout,
            })
        }
    }
}

/// Per-operation settings: in-memory configuration for the repository gix
/// creates, and the SSH files that configuration points at.
struct Session {
    config: Vec<String>,
    ssh: Option<SshFiles>,
}

impl Session {
    fn new(remote: &Remote) -> Result<Session, Error> {
        let mut config = vec![
            // Never ask a terminal or a credential helper for anything.
            "credential.interactive=false".to_string(),
            "core.askPass=".to_string(),
            "protocol.version=2".to_string(),
        ];
        if let Auth::Http(http) = &remote.auth
            && let Some(token) = &http.bearer_token
        {
            config.push(format!("http.extraHeader=Authorization: Bearer {token}"));
        }
        crate::proxy::check_scheme(remote.proxy.as_ref(), &scheme_of(&remote.url)?)?;
        let ssh = if scheme_of(&remote.url).is_ok_and(|s| s == "ssh") {
            let key = match &remote.auth {
                Auth::Ssh(auth) => Some(auth),
                _ => None,
            };
            let files = SshFiles::write(key)?;
            config.push(format!(
                "core.sshCommand={}",
                files.command(remote.timeout.as_secs())
            ));
            config.push("ssh.variant=ssh".to_string());
            Some(files)
        } else {
            None
        };
        Ok(Session { config, ssh })
    }

    /// Adds what `ssh` reported (it talks to its log file, not to us) to an
    /// error, and recognises refused keys and unknown host keys.
    fn explain(&self, err: Error) -> Error {
        let Some(log) = self
            .ssh
            .as_ref()
            .map(SshFiles::log)
            .filter(|l| !l.is_empty())
        else {
            return err;
        };
        let refused = crate::auth::ssh_refused(&log);
        match err {
            Error::Operation { url, message } | Error::Authentication { url, message } => {
                let message = format!("{message}: ssh: {log}");
                if refused {
                    Error::Authentication { url, message }
                } else {
                    Error::Operation { url, message }
                }
            }
            other => other,
        }
    }

    fn open_options(&self) -> gix::open::Options {
        // Isolated: no system or user git configuration, credential helpers or
        // environment overrides leak into what the controller does.
        gix::open::Options::isolated().config_overrides(self.config.iter().map(String::as_str))
    }
}

fn list_refs_blocking(
    remote: &Remote,
    patterns: &[String],
    interrupt: &AtomicBool,
) -> Result<Vec<RemoteRef>, Error> {
    let session = Session::new(remote)?;
    list_refs_in(&session, remote, patterns, interrupt).map_err(|e| session.explain(e))
}

fn list_refs_in(
    session: &Session,
    remote: &Remote,
    patterns: &[String],
    interrupt: &AtomicBool,
) -> Result<Vec<RemoteRef>, Error> {
    let scratch = tempfile::Builder::new()
        .prefix("ferroflux-ls-remote-")
        .tempdir()
        .map_err(Error::io("creating a scratch repository"))?;
    let repo = gix::ThreadSafeRepository::init_opts(
        scratch.path(),
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        session.open_options(),
    )
    .map_err(|e| operation_error(remote, e, interrupt))?
    .to_thread_local();
    let refspecs = patterns
        .iter()
        .map(|pattern| {
            // A glob needs a destination to be a valid fetch refspec; nothing is
            // written, so mapping it onto itself is enough.
            let spec = if pattern.ends_with('*') {
                format!("{pattern}:{pattern}")
            } else {
                pattern.clone()
            };
            gix::refspec::parse(
                spec.as_bytes().as_bstr(),
                gix::refspec::parse::Operation::Fetch,
            )
            .map(|spec| spec.to_owned())
            .map_err(|e| Error::Operation {
                url: remote.url.clone(),
                message: format!("invalid reference pattern '{pattern}': {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let git_remote = repo
        .remote_at(remote.url.as_str())
        .map_err(|e| operation_error(remote, e, interrupt))?
        .with_fetch_tags(gix::remote::fetch::Tags::None);
    let mut connection = git_remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| operation_error(remote, e, interrupt))?;
    configure_connection(&mut connection, remote)
        .map_err(|e| operation_error(remote, e, interrupt))?;
    let (ref_map, _) = connection
        .ref_map(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                extra_refspecs: refspecs,
                ..Default::default()
            },
        )
        .map_err(|e| operation_error(remote, e, interrupt))?;
    let mut refs: Vec<RemoteRef> = ref_map
        .remote_refs
        .iter()
        .filter_map(|r| {
            let (name, target, peeled) = r.unpack();
            let name = name.to_str().ok()?;
            let commit = peeled.or(target)?;
            patterns
                .iter()
                .any(|p| matches_pattern(name, p))
                .then(|| RemoteRef {
                    name: name.to_string(),
                    commit: commit.to_hex().to_string(),
                })
        })
        .collect();
    refs.sort_by(|a, b| a.name.cmp(&b.name));
    refs.dedup_by(|a, b| a.name == b.name);
    Ok(refs)
}

fn matches_pattern(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

pub(crate) fn checkout_blocking(
    remote: &Remote,
    reference: &Reference,
    dir: &Path,
    options: &CheckoutOptions,
    interrupt: &AtomicBool,
) -> Result<Commit, Error> {
    let session = Session::new(remote)?;
    checkout_in(&session, remote, reference, dir, options, interrupt)
        .map_err(|e| session.explain(e))
}

fn checkout_in(
    session: &Session,
    remote: &Remote,
    reference: &Reference,
    dir: &Path,
    options: &CheckoutOptions,
    interrupt: &AtomicBool,
) -> Result<Commit, Error> {
    let fail = |e: gix::Error| operation_error(remote, e, interrupt);
    let mut prepare = gix::clone::PrepareFetch::new(
        remote.url.as_str(),
        dir,
        gix::create::Kind::WithWorktree,
        gix::create::Options::default(),
        session.open_options(),
    )
    .map_err(fail)?;
    if let Some(depth) = options.depth {
        prepare = prepare.with_shallow(gix::remote::fetch::Shallow::DepthAtRemote(depth));
    }
    let revision = match reference {
        Reference::Commit { id, .. } => id.clone(),
        other => other.full_name().unwrap_or_default(),
    };
    prepare = prepare
        .with_revision(Some(revision.as_str()))
        .map_err(fail)?
        .configure_remote(|remote| Ok(remote.with_fetch_tags(gix::remote::fetch::Tags::None)));
    let for_connection = remote.clone();
    prepare = prepare
        .configure_connection(move |connection| configure_connection(connection, &for_connection));
    let (mut checkout, fetched) = prepare
        .fetch_then_checkout(gix::progress::Discard, interrupt)
        .map_err(|e| not_found_or(remote, reference, e, interrupt))?;
    // The tag object a tag reference names, as the remote advertised it: the
    // clone does not keep a local reference for it.
    let tag_object = match reference {
        Reference::Tag(name) => {
            let full = format!("refs/tags/{name}");
            fetched.ref_map.remote_refs.iter().find_map(|r| {
                let (ref_name, target, _) = r.unpack();
                (ref_name == full.as_bytes())
                    .then(|| target.map(|t| t.to_owned()))
                    .flatten()
            })
        }
        _ => None,
    };
    let (repo, _) = checkout
        .main_worktree(gix::progress::Discard, interrupt)
        .map_err(fail)?;
    if interrupt.load(Ordering::Relaxed) {
        return Err(Error::Timeout {
            url: remote.url.clone(),
            timeout: remote.timeout,
        });
    }
    let head = repo.head_commit().map_err(|e| Error::Operation {
        url: remote.url.clone(),
        message: format!("cannot read the checked-out commit: {e}"),
    })?;
    let id = head.id.to_hex().to_string();
    if let Reference::Commit { id: wanted, .. } = reference
        && !id.eq_ignore_ascii_case(wanted)
    {
        return Err(Error::ReferenceNotFound {
            reference: wanted.clone(),
            url: remote.url.clone(),
        });
    }
    let message = head
        .message_raw()
        .map(|m| m.to_str_lossy().into_owned())
        .unwrap_or_default();
    let signed = crate::SignedObject::from_commit(&head.data)?;
    let referencing_tag = match (reference, tag_object) {
        (Reference::Tag(name), Some(object)) => {
            annotated_tag(&repo, name, object).map_err(|message| Error::Operation {
                url: remote.url.clone(),
                message,
            })?
        }
        _ => None,
    };
    Ok(Commit {
        revision: reference.revision(&id),
        id,
        message,
        signed,
        referencing_tag,
    })
}

/// Reads the object `id` that `refs/tags/<name>` names (the shallow fetch of
/// the tag reference brought it along): the annotated tag, or `None` for a
/// lightweight tag, which names the commit itself.
fn annotated_tag(
    repo: &gix::Repository,
    name: &str,
    id: gix::ObjectId,
) -> Result<Option<crate::AnnotatedTag>, String> {
    let object = repo
        .find_object(id)
        .map_err(|e| format!("cannot read the object of 'refs/tags/{name}': {e}"))?;
    if object.kind != gix::object::Kind::Tag {
        return Ok(None);
    }
    Ok(Some(crate::AnnotatedTag {
        name: name.to_string(),
        id: id.to_hex().to_string(),
        signed: crate::SignedObject::from_tag(&object.data),
    }))
}

/// Credentials (never prompting) and, for HTTP(S), a reqwest client with the
/// operation's timeout, the custom CA and the client certificate.
fn configure_connection<T: Transport>(
    connection: &mut Connection<'_, '_, '_, T>,
    remote: &Remote,
) -> gix::Result<()> {
    let basic = match &remote.auth {
        Auth::Http(http) => http.basic.clone(),
        _ => None,
    };
    connection.set_credentials(move |action| match (&basic, action) {
        (Some((username, password)), gix::credentials::helper::Action::Get(context)) => {
            Ok(Some(gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: username.clone(),
                    password: password.clone(),
                    oauth_refresh_token: None,
                },
                next: context.into(),
            }))
        }
        _ => Ok(None),
    });
    let scheme = scheme_of(&remote.url).unwrap_or_default();
    if scheme != "http" && scheme != "https" {
        return Ok(());
    }
    let repo = connection.remote().repo();
    let Some(mut options) = repo.transport_options(remote.url.as_str(), None)? else {
        return Ok(());
    };
    if let Some(http) =
        options.downcast_mut::<gix::protocol::transport::client::blocking_io::http::Options>()
    {
        let tls = match &remote.auth {
            Auth::Http(auth) => (auth.ca_pem.clone(), auth.client_cert_pem.clone()),
            _ => (None, None),
        };
        let timeout = remote.timeout;
        let proxy = remote.proxy.clone();
        let backend = gix::protocol::transport::client::blocking_io::http::reqwest::Options {
            configure_client: Some(Box::new(move |mut builder| {
                builder = builder.timeout(timeout);
                // An explicit proxy replaces the environment's.
                if let Some(proxy) = &proxy {
                    let mut through = reqwest::Proxy::all(&proxy.address).map_err(|e| {
                        gix::error::message!("invalid proxy address '{}': {e}", proxy.address)
                    })?;
                    if let (Some(user), Some(password)) = (&proxy.username, &proxy.password) {
                        through = through.basic_auth(user, password);
                    }
                    builder = builder.proxy(through);
                } else {
                    // reqwest's own reading of the environment is curl's,
                    // not Go's (go-git's, Flux's).
                    builder = builder.proxy(env_proxy::reqwest_proxy());
                }
                if let Some(ca) = &tls.0 {
                    for cert in reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
                        gix::error::message!("invalid CA certificate in 'ca.crt': {e}")
                    })? {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                if let Some((cert, key)) = &tls.1 {
                    let mut pem = cert.clone();
                    pem.push(b'\n');
                    pem.extend_from_slice(key);
                    let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                        gix::error::message!(
                            "invalid client certificate in 'tls.crt'/'tls.key': {e}"
                        )
                    })?;
                    builder = builder.identity(identity);
                }
                Ok(builder)
            })),
            configure_request: None,
        };
        http.backend = Some(Arc::new(std::sync::Mutex::new(backend)));
    }
    connection.set_transport_options(options);
    Ok(())
}

fn not_found_or(
    remote: &Remote,
    reference: &Reference,
    err: gix::Error,
    interrupt: &AtomicBool,
) -> Error {
    let message = error_chain(&err);
    let lower = message.to_ascii_lowercase();
    let missing_ref = lower.contains("couldn't find remote ref")
        || lower.contains("could not find remote ref")
        || lower.contains("did not match any")
        || lower.contains("not our ref")
        || lower.contains("didn't have the requested revision")
        || lower.contains("no remote ref")
        || (lower.contains("revision") && lower.contains("not found"));
    if missing_ref && !interrupt.load(Ordering::Relaxed) {
        return Error::ReferenceNotFound {
            reference: reference
                .full_name()
                .unwrap_or_else(|| reference.describe()),
            url: remote.url.clone(),
        };
    }
    operation_error(remote, err, interrupt)
}

fn operation_error(remote: &Remote, err: gix::Error, interrupt: &AtomicBool) -> Error {
    if interrupt.load(Ordering::Relaxed) {
        return Error::Timeout {
            url: remote.url.clone(),
            timeout: remote.timeout,
        };
    }
    let mut message = error_chain(&err);
    if let Some(proxy) = &remote.proxy {
        message.push_str(&format!(" (through the proxy {})", proxy.address));
    } else {
        message = env_proxy::name_proxy(message, &remote.url);
    }
    let lower = message.to_ascii_lowercase();
    let rejected = err.is_unauthenticated()
        || err.is_permission_denied()
        || lower.contains("permission denied")
        || lower.contains("authentication")
        || lower.contains("401")
        || lower.contains("host key verification failed");
    if rejected {
        Error::Authentication {
            url: remote.url.clone(),
            message,
        }
    } else {
        Error::Operation {
            url: remote.url.clone(),
            message,
        }
    }
}

/// The messages of an error and its sources, outermost first, without repeats.
fn error_chain(err: &gix::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for e in err.iter_errors() {
        let text = e.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    if parts.is_empty() {
        err.to_string()
    } else {
        parts.join(": ")
    }
}
