//! Waiting for an object to reach a state, as every e2e test does.

use std::fmt::Debug;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use kube::Api;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Polls the object `name` every `poll` until `check` returns something,
/// for at most `timeout`; on time-out the error shows the object as last
/// seen and `context()` (controller logs, say).
pub async fn for_object<K, T>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    poll: Duration,
    mut check: impl FnMut(&K) -> Option<T>,
    context: impl FnOnce() -> String,
) -> Result<T>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        if let Some(obj) = api.get_opt(name).await? {
            if let Some(found) = check(&obj) {
                return Ok(found);
            }
            last = Some(obj);
        }
        if Instant::now() > deadline {
            bail!(
                "timed out after {timeout:?} waiting for {name}; last seen:\n{}\n{}",
                serde_json::to_string_pretty(&last).unwrap_or_default(),
                context()
            );
        }
        tokio::time::sleep(poll).await;
    }
}

/// [`for_object`] in a test of one controller: polled every 200 ms, and on
/// time-out the error also shows the last 40 lines of the controller's `log`.
pub async fn for_object_logged<K, T>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    log: &Path,
    check: impl FnMut(&K) -> Option<T>,
) -> Result<T>
where
    K: kube::Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    for_object(
        api,
        name,
        timeout,
        Duration::from_millis(200),
        check,
        || format!("controller log:\n{}", crate::process::tail(log, 40)),
    )
    .await
}
