//! The Redis event bus across two processes' worth of connections (REDIS_URL).

use chrono::Utc;
use morningai_core::events::{EventBus, TaskEvent, TaskEventKind};
use morningai_core::{TaskId, TenantId};
use morningai_redis::RedisBus;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

fn event(id: i64) -> TaskEvent {
    TaskEvent {
        id,
        tenant_id: TenantId::new(),
        task_id: TaskId::new(),
        kind: TaskEventKind::Queued,
        data: serde_json::json!({"n": id}),
        at: Utc::now(),
    }
}

/// Concurrent publications (sent together) reach another process's subscribers one event
/// at a time, each once; a message in the one-event form older versions publish is
/// delivered too, and an undecodable one is skipped without stopping the subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_events_reach_every_process_once() {
    let url = std::env::var("REDIS_URL")
        .expect("REDIS_URL is not set: run the suite with scripts/test.sh, which starts Redis");
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let sender = Arc::new(RedisBus::connect(&url, &prefix).await.unwrap());
    let receiver = RedisBus::connect(&url, &prefix).await.unwrap();
    let mut heard = receiver.subscribe();

    let sent: Vec<TaskEvent> = (1..=200).map(event).collect();
    let publications: Vec<_> = sent
        .iter()
        .map(|e| {
            let (bus, e) = (sender.clone(), e.clone());
            tokio::spawn(async move { bus.publish(&e).await })
        })
        .collect();
    for p in publications {
        p.await.unwrap().unwrap();
    }
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let channel = format!("{{{prefix}}}:events");
    let older = event(201);
    let messages = [
        "{not json".to_owned(),
        serde_json::to_string(&older).unwrap(),
    ];
    for message in messages {
        let _: i64 = redis::cmd("PUBLISH")
            .arg(&channel)
            .arg(message)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let mut got = Vec::new();
    while got.len() < 201 {
        let e = tokio::time::timeout(Duration::from_secs(5), heard.recv())
            .await
            .expect("every event arrives")
            .unwrap();
        got.push(e);
    }
    let ids: HashSet<i64> = got.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 201, "each event once");
    assert_eq!(ids, (1..=201).collect());
    let by_id = |id: i64| got.iter().find(|e| e.id == id).unwrap();
    assert_eq!(by_id(7), &sent[6]);
    assert_eq!(by_id(201), &older);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), heard.recv())
            .await
            .is_err(),
        "nothing more"
    );
}
