//! `.status.history`: the last distinct reconciled states, newest first.
//! A state is the digest of the applied manifests plus the outcome; seeing
//! it again updates its snapshot and moves it to the front.

use std::collections::BTreeMap;
use std::time::Duration;

use api::meta::Snapshot;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// How many snapshots are kept (Flux's limit).
pub const MAX_SNAPSHOTS: usize = 5;

/// Records one reconciliation of the manifests with `digest` ending in
/// `status` (a Ready reason).
pub fn upsert(
    history: &mut Vec<Snapshot>,
    digest: &str,
    now: Timestamp,
    took: Duration,
    status: &str,
    metadata: BTreeMap<String, String>,
) {
    let duration = api::Duration::from_std(took);
    let metadata = (!metadata.is_empty()).then_some(metadata);
    let existing = history
        .iter()
        .position(|s| s.digest == digest && s.last_reconciled_status == status);
    let snapshot = match existing {
        Some(index) => {
            let mut snapshot = history.remove(index);
            snapshot.last_reconciled = Time(now);
            snapshot.last_reconciled_duration = duration;
            snapshot.total_reconciliations = snapshot.total_reconciliations.saturating_add(1);
            snapshot.metadata = metadata;
            snapshot
        }
        None => Snapshot {
            digest: digest.to_owned(),
            first_reconciled: Time(now),
            last_reconciled: Time(now),
            last_reconciled_duration: duration,
            last_reconciled_status: status.to_owned(),
            total_reconciliations: 1,
            metadata,
        },
    };
    history.insert(0, snapshot);
    history.truncate(MAX_SNAPSHOTS);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("timestamp")
    }

    #[test]
    fn repeats_update_and_new_states_go_first() {
        let mut history = Vec::new();
        let meta = BTreeMap::from([("revision".to_owned(), "main@sha1:abc".to_owned())]);
        upsert(
            &mut history,
            "sha256:a",
            at(10),
            Duration::from_secs(2),
            "ReconciliationSucceeded",
            meta.clone(),
        );
        upsert(
            &mut history,
            "sha256:a",
            at(20),
            Duration::from_secs(1),
            "ReconciliationSucceeded",
            meta.clone(),
        );
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].total_reconciliations, 2);
        assert_eq!(history[0].first_reconciled, Time(at(10)));
        assert_eq!(history[0].last_reconciled, Time(at(20)));

        upsert(
            &mut history,
            "sha256:a",
            at(30),
            Duration::ZERO,
            "HealthCheckFailed",
            meta.clone(),
        );
        upsert(
            &mut history,
            "sha256:b",
            at(40),
            Duration::ZERO,
            "ReconciliationSucceeded",
            meta.clone(),
        );
        let order: Vec<(&str, &str)> = history
            .iter()
            .map(|s| (s.digest.as_str(), s.last_reconciled_status.as_str()))
            .collect();
        assert_eq!(
            order,
            [
                ("sha256:b", "ReconciliationSucceeded"),
                ("sha256:a", "HealthCheckFailed"),
                ("sha256:a", "ReconciliationSucceeded"),
            ]
        );
        upsert(
            &mut history,
            "sha256:a",
            at(50),
            Duration::ZERO,
            "ReconciliationSucceeded",
            meta,
        );
        assert_eq!(history[0].digest, "sha256:a");
        assert_eq!(history[0].total_reconciliations, 3);
    }

    #[test]
    fn keeps_five() {
        let mut history = Vec::new();
        for i in 0..8 {
            upsert(
                &mut history,
                &format!("sha256:{i}"),
                at(i),
                Duration::ZERO,
                "ReconciliationSucceeded",
                BTreeMap::new(),
            );
        }
        assert_eq!(history.len(), MAX_SNAPSHOTS);
        assert_eq!(history[0].digest, "sha256:7");
        assert!(history[0].metadata.is_none());
    }
}
