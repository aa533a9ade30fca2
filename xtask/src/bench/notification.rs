//! `cargo xtask bench notification`: notification-controller with
//! source-controller and kustomize-controller (release builds, default
//! flags, every controller posting its events to notification-controller)
//! on a control plane of the benchmark's own ([`Stack`]):
//!
//! (a) webhook → applied: R rounds (default 20) of a commit pushed to the
//!     Git server, then GitHub's signed `push` webhook sent to a `github`
//!     Receiver of the GitRepository (which polls only every 60m), timed
//!     from the webhook's send until the Kustomization's
//!     `status.lastAppliedRevision` is the new commit (seen through a watch,
//!     so no polling loads the API server);
//! (b) event throughput: N distinct events (default 10,000) in Flux's wire
//!     format POSTed to the event endpoint at an even pace over S seconds
//!     (default 60), each matched by an Alert to a `generic` Provider whose
//!     address is a loopback recorder: answers by status (202 accepted, 429
//!     duplicates, 503 queue full, other), answer times, events the recorder
//!     received (dispatched), notification-controller's peak RSS (`VmHWM`)
//!     and CPU time.
//!
//! Everything it started is stopped and its files removed at the end, on
//! error and on Ctrl-C.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use api::kustomize::Kustomization;
use api::source::GitRepository;
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

use super::source::{cpu_time, proc_status_bytes};
use super::{StackCpu, load_average, machine, mib, write_report};
use crate::demo::{ControllerBinaries, Optional, SYSTEM_NAMESPACE, Stack};
use crate::notification::{
    config_map_manifest, github_push_payload, one_config_map_app, send_github_webhook,
};
use e2e::http_recorder::HttpRecorder;

const LATENCY_TARGET: Duration = Duration::from_secs(1);
const RSS_TARGET: u64 = 20 * 1024 * 1024;
/// The throughput target: events per minute, accepted and dispatched.
const EVENTS_TARGET_PER_MINUTE: usize = 10_000;
/// The ConfigMap the test application applies.
const APP_CONFIG_MAP: &str = "webhook-bench";
const APP: &str = "webhook";
const WEBHOOK_SECRET: &str = "bench-webhook-secret";
/// How long one round of (a) may take.
const ROUND_DEADLINE: Duration = Duration::from_secs(60);
/// How long (b) waits for dispatches to stop arriving after the last send.
const DISPATCH_DEADLINE: Duration = Duration::from_secs(120);
/// Requests of (b) in flight at once; more wait (and count as late).
const SENDERS: usize = 64;
/// The prefix of (b)'s event messages, to tell them from the stack's own events.
const EVENT_PREFIX: &str = "bench event ";

/// What `cargo xtask bench notification` measures.
pub struct Options {
    /// Rounds of (a).
    pub rounds: usize,
    /// Events of (b).
    pub events: usize,
    /// Over how many seconds (b) sends them.
    pub seconds: u64,
}

/// One round of (a), each time from the webhook's send.
struct Round {
    answered: Duration,
    fetched: Duration,
    applied: Duration,
}

/// (b)'s figures.
struct Throughput {
    events: usize,
    over: Duration,
    /// How long the sending took (the pace is even; a slow answer delays nothing but itself).
    sent_in: Duration,
    accepted: usize,
    duplicates: usize,
    queue_full: usize,
    other: Vec<String>,
    /// Answer times of the requests, sorted.
    answers: Vec<Duration>,
    /// Bench events the recorder got, and how many distinct.
    dispatched: usize,
    distinct: usize,
    /// When the last one arrived, from the first send.
    dispatched_by: Duration,
    cpu: Duration,
    /// VmHWM over the window of (b) alone (reset before it), and VmRSS after.
    window_peak: Option<u64>,
    rss_after: u64,
}

struct Figures {
    rounds: Vec<Round>,
    throughput: Throughput,
    /// notification-controller's VmRSS before (a), VmHWM over the whole run.
    rss_start: u64,
    peak_rss: u64,
    cpu_by_process: Vec<(String, Duration)>,
    load_start: String,
    load_end: String,
}

/// Runs the benchmark and writes `target/bench/notification.md`.
pub fn run(options: Options) -> Result<()> {
    if options.rounds == 0 || options.events == 0 || options.seconds == 0 {
        bail!("--rounds, --events and --seconds must be at least 1");
    }
    let binaries = ControllerBinaries::build_with(
        true,
        Optional {
            image_automation: false,
            notification: true,
        },
    )?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime")?;
    let result = runtime.block_on(async {
        tokio::select! {
            result = measure(&binaries, options) => result,
            // Dropping the measuring future drops the stack: its processes
            // stop and its files go.
            _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
        }
    });
    drop(runtime);
    write_report("notification", &report(&result?)?)?;
    Ok(())
}

async fn measure(binaries: &ControllerBinaries, options: Options) -> Result<Figures> {
    let load_start = load_average();
    eprintln!(
        "==> starting a control plane, a Git server, source-, kustomize- and notification-controller (release builds)"
    );
    let stack = Stack::start(binaries, &[]).await?;
    let pid = stack
        .notification_pid()
        .context("no notification-controller")?;
    let rss_start = proc_status_bytes(pid, "VmRSS")?;
    let cpu_before = StackCpu::now(&stack);

    let rounds = webhook_rounds(&stack, options.rounds).await?;
    let throughput = events_throughput(&stack, pid, options.events, options.seconds).await?;

    let peak_rss = throughput
        .window_peak
        .unwrap_or(0)
        .max(proc_status_bytes(pid, "VmHWM")?);
    let cpu_by_process = StackCpu::now(&stack).since(&cpu_before);
    Ok(Figures {
        rounds,
        throughput,
        rss_start,
        peak_rss,
        cpu_by_process,
        load_start,
        load_end: load_average(),
    })
}

/// (a): push, signed webhook, applied; `rounds` times.
async fn webhook_rounds(stack: &Stack, rounds: usize) -> Result<Vec<Round>> {
    eprintln!("==> (a) webhook → applied, {rounds} rounds");
    let repo = stack
        .create_repo(APP, one_config_map_app(APP_CONFIG_MAP, "round-0"))
        .await?;
    let mut head = repo.head("main")?;
    stack.git_repository(APP, &repo, "60m").await?;
    stack
        .kustomization(
            APP,
            json!({"interval": "60m", "path": "./app", "prune": true,
                "targetNamespace": SYSTEM_NAMESPACE,
                "sourceRef": {"kind": "GitRepository", "name": APP}}),
        )
        .await?;
    stack.applied(APP, &format!("main@sha1:{head}")).await?;
    let url = stack
        .github_receiver(APP, WEBHOOK_SECRET, &[("GitRepository", APP)])
        .await?;
    let http = reqwest::Client::new();
    let sources: Api<GitRepository> = Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let kustomizations: Api<Kustomization> =
        Api::namespaced(stack.client.clone(), SYSTEM_NAMESPACE);
    let mut measured = Vec::new();
    for round in 1..=rounds {
        let after = stack
            .push(
                &repo,
                &[(
                    "app/configmap.yaml",
                    config_map_manifest(APP_CONFIG_MAP, &format!("round-{round}")),
                )],
                &format!("round {round}"),
            )
            .await?;
        let revision = format!("main@sha1:{after}");
        // The watches are open before the webhook goes, so each sees the change as it lands.
        let fetched = until(sources.clone(), APP, {
            let revision = revision.clone();
            move |repo: &GitRepository| {
                repo.status
                    .as_ref()
                    .and_then(|s| s.artifact.as_ref())
                    .is_some_and(|a| a.revision == revision)
            }
        });
        let applied = until(kustomizations.clone(), APP, {
            let revision = revision.clone();
            move |ks: &Kustomization| {
                ks.status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.as_deref())
                    == Some(revision.as_str())
            }
        });
        let body = github_push_payload("org/webhook", repo.http_url(), "main", &head, &after);
        let sent = Instant::now();
        let (fetched, applied) = (tokio::spawn(fetched), tokio::spawn(applied));
        let answer = send_github_webhook(&http, &url, "push", WEBHOOK_SECRET, body).await?;
        let answered = sent.elapsed();
        if answer.status != 200 {
            bail!(
                "round {round}: the webhook was answered {}: {}",
                answer.status,
                answer.body
            );
        }
        let fetched = fetched.await??.saturating_duration_since(sent);
        let applied = applied.await??.saturating_duration_since(sent);
        eprintln!(
            "    round {round}: answered {answered:.3?}, fetched {fetched:.3?}, applied {applied:.3?}"
        );
        measured.push(Round {
            answered,
            fetched,
            applied,
        });
        head = after;
    }
    Ok(measured)
}

/// When `check` first holds for `name`, through a watch; fails after
/// [`ROUND_DEADLINE`].
async fn until<K>(
    api: Api<K>,
    name: &str,
    check: impl Fn(&K) -> bool + Send + 'static,
) -> Result<Instant>
where
    K: kube::Resource
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let name = name.to_owned();
    let wait = async move {
        let mut stream = watcher(api, config).applied_objects().boxed();
        while let Some(object) = stream.next().await {
            // A watch error is retried by the watcher; only objects count.
            if let Ok(object) = object
                && check(&object)
            {
                return Ok(Instant::now());
            }
        }
        Err(anyhow!("the watch of {name} ended"))
    };
    tokio::time::timeout(ROUND_DEADLINE, wait)
        .await
        .map_err(|_| anyhow!("not there in {ROUND_DEADLINE:?}"))?
}

/// (b): `count` distinct events over `seconds`, to an Alert whose generic
/// Provider posts to a loopback recorder.
async fn events_throughput(
    stack: &Stack,
    pid: u32,
    count: usize,
    seconds: u64,
) -> Result<Throughput> {
    let over = Duration::from_secs(seconds);
    eprintln!(
        "==> (b) {count} events over {over:?} to the event endpoint, an Alert to a generic Provider"
    );
    let recorder = HttpRecorder::start().await?;
    stack
        .provider(
            "bench-recorder",
            "generic",
            &format!("{}/events", recorder.url),
            json!({}),
        )
        .await?;
    stack
        .alert(
            "bench-events",
            "bench-recorder",
            "info",
            json!([{"kind": "Kustomization", "name": "*"}]),
        )
        .await?;
    stack.alerts_in_effect().await?;
    let url = stack.events_url()?;
    // Only (b)'s window: VmHWM restarts from VmRSS (Linux `clear_refs` 5).
    let window_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
    let cpu_before = cpu_time(pid)?;

    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(SENDERS)
        .timeout(Duration::from_secs(10))
        .build()?;
    let permits = Arc::new(tokio::sync::Semaphore::new(SENDERS));
    let answers = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
    let statuses = Arc::new(Statuses::default());
    let mut tasks = tokio::task::JoinSet::new();
    let period = over.div_f64(count as f64);
    let started = Instant::now();
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..count {
        ticks.tick().await;
        let permit = permits.clone().acquire_owned().await?;
        let (http, url, answers, statuses) =
            (http.clone(), url.clone(), answers.clone(), statuses.clone());
        tasks.spawn(async move {
            let body = event(i);
            let sent = Instant::now();
            let result = http
                .post(&url)
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await;
            let took = sent.elapsed();
            drop(permit);
            statuses.count(result.map(|r| r.status().as_u16()));
            if let Ok(mut answers) = answers.lock() {
                answers.push(took);
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let sent_in = started.elapsed();
    let accepted = statuses.accepted.load(Ordering::Relaxed);
    eprintln!("    sent in {sent_in:.1?}: {accepted} accepted; waiting for the dispatches");

    // Dispatches: until every accepted event arrived, or none arrived for a while.
    let deadline = Instant::now() + DISPATCH_DEADLINE;
    let mut last = (0, Instant::now());
    loop {
        let now = bench_events(&recorder).len();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if now >= accepted
            || last.1.elapsed() > Duration::from_secs(15)
            || Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = bench_events(&recorder);
    let distinct = received
        .iter()
        .map(|(message, _)| message.as_str())
        .collect::<HashSet<_>>()
        .len();
    let dispatched_by = received
        .iter()
        .map(|(_, at)| at.saturating_duration_since(started))
        .max()
        .unwrap_or_default();
    let cpu = cpu_time(pid)?.saturating_sub(cpu_before);
    let window_peak = if window_reset {
        Some(proc_status_bytes(pid, "VmHWM")?)
    } else {
        None
    };
    let mut answers = answers
        .lock()
        .map_err(|_| anyhow!("an answer task panicked"))?
        .clone();
    answers.sort();
    let other = statuses
        .other
        .lock()
        .map_err(|_| anyhow!("an answer task panicked"))?
        .clone();
    eprintln!(
        "    {} dispatched ({distinct} distinct) by {dispatched_by:.1?}; CPU {cpu:.1?}",
        received.len()
    );
    Ok(Throughput {
        events: count,
        over,
        sent_in,
        accepted,
        duplicates: statuses.duplicates.load(Ordering::Relaxed),
        queue_full: statuses.queue_full.load(Ordering::Relaxed),
        other,
        answers,
        dispatched: received.len(),
        distinct,
        dispatched_by,
        cpu,
        window_peak,
        rss_after: proc_status_bytes(pid, "VmRSS")?,
    })
}

/// The answers of (b) by kind.
#[derive(Default)]
struct Statuses {
    accepted: AtomicUsize,
    duplicates: AtomicUsize,
    queue_full: AtomicUsize,
    /// Any other status or transport error, as text.
    other: std::sync::Mutex<Vec<String>>,
}

impl Statuses {
    fn count(&self, answer: reqwest::Result<u16>) {
        let counter = match answer {
            Ok(202) => &self.accepted,
            Ok(429) => &self.duplicates,
            Ok(503) => &self.queue_full,
            Ok(status) => return self.other(format!("HTTP {status}")),
            Err(err) => return self.other(err.to_string()),
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn other(&self, what: String) {
        if let Ok(mut other) = self.other.lock() {
            other.push(what);
        }
    }
}

/// The i-th event of (b), as kustomize-controller posts the change set of an
/// apply: distinct message and revision per event, 10 Kustomizations taking
/// turns. (Not its "Reconciliation finished" event: that one carries
/// `commit_status: update`, which only Git forge Providers get, in Flux as
/// here.)
fn event(i: usize) -> String {
    let sha = format!("{:040x}", 0x5eed_0000_u64 + i as u64);
    let name = format!("app-{}", i % 10);
    json!({
        "involvedObject": {
            "kind": "Kustomization", "namespace": SYSTEM_NAMESPACE, "name": name,
            "uid": format!("7d0f6ad8-3c8e-4a4b-9f39-{:012x}", i % 10),
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceVersion": (10_000 + i).to_string(),
        },
        "severity": "info",
        "timestamp": k8s_openapi::jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "message": format!("{EVENT_PREFIX}{i}: ConfigMap/{SYSTEM_NAMESPACE}/{name} configured"),
        "reason": "ReconciliationSucceeded",
        "metadata": {
            "kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{sha}"),
        },
        "reportingController": "kustomize-controller",
        "reportingInstance": "kustomize-controller-7d9f",
    })
    .to_string()
}

/// The recorder's requests carrying (b)'s events: message and arrival.
fn bench_events(recorder: &HttpRecorder) -> Vec<(String, Instant)> {
    recorder
        .requests()
        .into_iter()
        .filter_map(|r| {
            let message = r.json()["message"].as_str()?.to_owned();
            message.starts_with(EVENT_PREFIX).then_some((message, r.at))
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn report(f: &Figures) -> Result<String> {
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    let met = |ok: bool| if ok { "yes" } else { "**no**" };
    let mut applied: Vec<Duration> = f.rounds.iter().map(|r| r.applied).collect();
    applied.sort();
    let median = percentile(&applied, 0.5);
    let worst = applied.last().copied().unwrap_or_default();
    let t = &f.throughput;
    // The target is per minute; a run over another span is scaled.
    let per_minute = t.events as f64 * 60.0 / t.over.as_secs_f64();
    let throughput_met = per_minute >= EVENTS_TARGET_PER_MINUTE as f64
        && t.accepted == t.events
        && t.distinct == t.events
        && t.sent_in <= t.over + Duration::from_secs(1);
    let mut out = String::new();
    writeln!(out, "# Benchmark: notification-controller\n")?;
    writeln!(
        out,
        "Machine: {}, shared with other engineers' builds; load average (1, 5, 15 min) {} at the start, {} at the end. \
         Release builds of source-controller, kustomize-controller and notification-controller at their default \
         flags (the first two with `--events-addr` pointing at the third), on a control plane of the benchmark's \
         own (etcd, kube-apiserver, kube-controller-manager) and a Git server over smart HTTP (lighttpd + \
         `git http-backend`), all on loopback.\n",
        machine(),
        f.load_start,
        f.load_end
    )?;
    writeln!(out, "| measure | measured | target | met |")?;
    writeln!(out, "|---|---|---|---|")?;
    writeln!(
        out,
        "| (a) signed GitHub push webhook → Kustomization applied (median of {}) | {} | ≤ 1 s | {} |",
        f.rounds.len(),
        ms(median),
        met(median <= LATENCY_TARGET)
    )?;
    writeln!(out, "| (a) webhook → applied, worst | {} | | |", ms(worst))?;
    writeln!(
        out,
        "| (b) events accepted (202) / sent, over {} s ({:.0} a minute) | {} / {} | {} a minute | {} |",
        t.over.as_secs(),
        per_minute,
        t.accepted,
        t.events,
        EVENTS_TARGET_PER_MINUTE,
        met(throughput_met)
    )?;
    writeln!(
        out,
        "| (b) events dispatched (received by the recorder, distinct) | {} ({} distinct) | all accepted | {} |",
        t.dispatched,
        t.distinct,
        met(t.distinct == t.accepted && t.dispatched == t.accepted)
    )?;
    writeln!(
        out,
        "| (b) 429 / 503 / other answers | {} / {} / {} | 0 | {} |",
        t.duplicates,
        t.queue_full,
        t.other.len(),
        met(t.duplicates + t.queue_full + t.other.len() == 0)
    )?;
    writeln!(
        out,
        "| notification-controller peak RSS (VmHWM, whole run) | {} | ≤ 20 MiB | {} |",
        mib(f.peak_rss),
        met(f.peak_rss <= RSS_TARGET)
    )?;
    writeln!(
        out,
        "| notification-controller CPU during (b) | {:.1} s ({:.0}% of one core) | | |",
        t.cpu.as_secs_f64(),
        100.0 * t.cpu.as_secs_f64() / t.dispatched_by.max(t.sent_in).as_secs_f64().max(0.001)
    )?;

    writeln!(out, "\n## (a) webhook → applied\n")?;
    writeln!(
        out,
        "A GitRepository polling every 60m and a Kustomization (a ConfigMap, `prune: true`, interval 60m) \
         following it; a `github` Receiver (`events: [ping, push]`) of the GitRepository. Each round pushes a \
         commit to `main` over HTTP, then sends GitHub's `push` webhook for it (`X-GitHub-Event: push`, \
         `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the body>`); times are from the send, the GitRepository's \
         artifact and the Kustomization's `status.lastAppliedRevision` seen through watches opened before it.\n"
    )?;
    writeln!(
        out,
        "| round | webhook answered | GitRepository at the commit | Kustomization applied it |"
    )?;
    writeln!(out, "|---|---|---|---|")?;
    for (i, r) in f.rounds.iter().enumerate() {
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            i + 1,
            ms(r.answered),
            ms(r.fetched),
            ms(r.applied)
        )?;
    }

    writeln!(out, "\n## (b) {} events\n", t.events)?;
    writeln!(
        out,
        "Distinct events (message, revision; 10 Kustomizations) in Flux's wire format, as kustomize-controller \
         posts the change set of an apply, sent at an even pace (one every {:.1} ms, at most {SENDERS} in flight) \
         over kept-alive connections; one Alert (`eventSources: Kustomization *`, severity info) to a `generic` \
         Provider whose address is a loopback recorder answering 200. Sending took {:.1} s. Answer times: \
         median {}, p99 {}, worst {}. The recorder had every dispatched event {:.1} s after the first send. \
         Other answers: {}.",
        t.over.as_secs_f64() * 1000.0 / t.events as f64,
        t.sent_in.as_secs_f64(),
        ms(percentile(&t.answers, 0.5)),
        ms(percentile(&t.answers, 0.99)),
        ms(t.answers.last().copied().unwrap_or_default()),
        t.dispatched_by.as_secs_f64(),
        if t.other.is_empty() {
            "none".to_owned()
        } else {
            t.other
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        }
    )?;
    writeln!(
        out,
        "\nnotification-controller memory: VmRSS {} before (a), {} after (b); VmHWM {} over the whole run{}.",
        mib(f.rss_start),
        mib(t.rss_after),
        mib(f.peak_rss),
        match t.window_peak {
            Some(peak) => format!(", {} within (b) alone (reset before it)", mib(peak)),
            None => String::new(),
        }
    )?;
    let by_process = StackCpu::describe(&f.cpu_by_process);
    writeln!(out, "\nCPU used over (a) and (b): {}.", by_process)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_flux_events_and_distinct() {
        let first: api::event::Event = serde_json::from_str(&event(0)).unwrap();
        let second: api::event::Event = serde_json::from_str(&event(1)).unwrap();
        assert_ne!(first.message, second.message);
        assert_ne!(
            first.controller_metadata("revision"),
            second.controller_metadata("revision")
        );
        assert!(first.message.starts_with(EVENT_PREFIX));
    }

    #[test]
    fn percentiles_of_sorted_durations() {
        let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&values, 0.5), Duration::from_millis(51));
        assert_eq!(percentile(&values, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }
}
