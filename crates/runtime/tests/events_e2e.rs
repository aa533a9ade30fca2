//! Kubernetes events against a real API server: the same event again is one
//! more in its series, another note is another event.

// Test code: a failing unwrap is a failing test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use anyhow::Result;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, PostParams};
use runtime::events::EventRecorder;

#[tokio::test]
async fn repeats_fold_into_a_series_and_new_notes_are_new_events() -> Result<()> {
    let cluster = e2e::cluster::shared().await?;
    let ns = cluster.test_namespace("events").await?;
    let client = cluster.client().await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    let object = config_maps
        .create(
            &PostParams::default(),
            &ConfigMap {
                metadata: ObjectMeta {
                    name: Some("subject".into()),
                    ..ObjectMeta::default()
                },
                ..ConfigMap::default()
            },
        )
        .await?;

    let recorder = EventRecorder::new(client.clone(), "test-controller");
    recorder
        .normal(&object, "NewArtifact", "stored revision 1")
        .await;
    recorder
        .normal(&object, "NewArtifact", "stored revision 1")
        .await;
    recorder
        .normal(&object, "NewArtifact", "stored revision 1")
        .await;
    recorder
        .normal(&object, "NewArtifact", "stored revision 2")
        .await;
    recorder
        .warning(&object, "NewArtifact", "stored revision 2")
        .await;

    let events: Api<Event> = Api::namespaced(client, ns.name());
    let mut listed = events.list(&ListParams::default()).await?.items;
    listed.sort_by_key(|e| e.event_time.as_ref().map(|t| t.0));
    let seen: Vec<(String, String, i32)> = listed
        .iter()
        .map(|e| {
            (
                e.type_.clone().unwrap_or_default(),
                e.note.clone().unwrap_or_default(),
                e.series.as_ref().map_or(1, |s| s.count),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Normal".to_string(), "stored revision 1".to_string(), 3),
            ("Normal".to_string(), "stored revision 2".to_string(), 1),
            ("Warning".to_string(), "stored revision 2".to_string(), 1),
        ]
    );
    let first = &listed[0];
    assert_eq!(first.reason.as_deref(), Some("NewArtifact"));
    assert_eq!(
        first.reporting_controller.as_deref(),
        Some("test-controller")
    );
    assert_eq!(
        first.regarding.as_ref().and_then(|r| r.uid.clone()),
        object.metadata.uid
    );
    Ok(())
}
