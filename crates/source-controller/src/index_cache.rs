//! Flux's Helm index cache (`--helm-cache-max-size`, `--helm-cache-ttl`,
//! `--helm-cache-purge-interval`): parsed repository indexes kept in memory,
//! so HelmCharts of one repository do not each read and parse the stored
//! index. Off at size 0 (Flux's default). Hits and misses are counted in
//! `gotk_cache_events_total{event_type, name, namespace}` (the HelmChart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::Value;

use crate::Error;

/// Labels of `gotk_cache_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheEventLabels {
    /// `cache_hit` or `cache_miss`.
    pub event_type: String,
    /// The HelmChart's name.
    pub name: String,
    /// The HelmChart's namespace.
    pub namespace: String,
}

/// Parsed indexes by artifact path, each valid for one digest.
pub struct IndexCache {
    max_size: usize,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
    events: Family<CacheEventLabels, Counter>,
}

struct Entry {
    digest: String,
    index: Arc<Value>,
    expires: Instant,
}

impl IndexCache {
    /// A cache of at most `max_size` indexes (0: none), each kept `ttl`
    /// after its last use.
    pub fn new(max_size: usize, ttl: Duration) -> Self {
        IndexCache {
            max_size,
            ttl,
            entries: Mutex::new(HashMap::new()),
            events: Family::default(),
        }
    }

    /// The counter family to register as `gotk_cache_events`.
    pub fn events(&self) -> Family<CacheEventLabels, Counter> {
        self.events.clone()
    }

    /// Whether indexes are kept at all.
    pub fn enabled(&self) -> bool {
        self.max_size > 0
    }

    /// The index stored at `path` with `digest`, for the HelmChart
    /// `namespace/name`: from the cache (its expiry renewed), or `load`ed and
    /// kept, making room by dropping the entry closest to expiry.
    pub fn get_or_load(
        &self,
        path: &str,
        digest: &str,
        (namespace, name): (&str, &str),
        load: impl FnOnce() -> Result<Value, Error>,
    ) -> Result<Arc<Value>, Error> {
        if !self.enabled() {
            return load().map(Arc::new);
        }
        let count = |event_type: &str| {
            self.events
                .get_or_create(&CacheEventLabels {
                    event_type: event_type.to_string(),
                    name: name.to_string(),
                    namespace: namespace.to_string(),
                })
                .inc();
        };
        let now = Instant::now();
        {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = entries.get_mut(path)
                && entry.digest == digest
                && entry.expires > now
            {
                entry.expires = now + self.ttl;
                count("cache_hit");
                return Ok(entry.index.clone());
            }
        }
        count("cache_miss");
        let index = Arc::new(load()?);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(path);
        while entries.len() >= self.max_size {
            let Some(first) = entries
                .iter()
                .min_by_key(|(_, e)| e.expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            entries.remove(&first);
        }
        entries.insert(
            path.to_string(),
            Entry {
                digest: digest.to_string(),
                index: index.clone(),
                expires: now + self.ttl,
            },
        );
        Ok(index)
    }

    /// Drops the expired entries (every `--helm-cache-purge-interval`).
    pub fn purge_expired(&self) {
        let now = Instant::now();
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, e| e.expires > now);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHART: (&str, &str) = ("apps", "podinfo");

    #[test]
    fn hits_misses_digests_expiry_and_size() {
        let cache = IndexCache::new(2, Duration::from_millis(200));
        let loads = std::cell::Cell::new(0);
        let get = |path: &str, digest: &str| {
            cache
                .get_or_load(path, digest, CHART, || {
                    loads.set(loads.get() + 1);
                    Ok(serde_json::json!({"path": path, "digest": digest}))
                })
                .unwrap()
        };
        get("a", "d1");
        get("a", "d1");
        assert_eq!(loads.get(), 1, "the second read is a hit");
        get("a", "d2");
        assert_eq!(loads.get(), 2, "another digest is another index");
        get("b", "d1");
        get("c", "d1");
        assert_eq!(loads.get(), 4);
        assert_eq!(cache.len(), 2, "never more than --helm-cache-max-size");
        std::thread::sleep(Duration::from_millis(250));
        cache.purge_expired();
        assert_eq!(cache.len(), 0, "expired entries are purged");
        let events = cache.events();
        let hits = events
            .get_or_create(&CacheEventLabels {
                event_type: "cache_hit".into(),
                name: "podinfo".into(),
                namespace: "apps".into(),
            })
            .get();
        assert_eq!(hits, 1);
    }

    #[test]
    fn size_zero_keeps_nothing() {
        let cache = IndexCache::new(0, Duration::from_secs(60));
        for _ in 0..2 {
            cache
                .get_or_load("a", "d", CHART, || Ok(Value::Null))
                .unwrap();
        }
        assert_eq!(cache.len(), 0);
    }
}
