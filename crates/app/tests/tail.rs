//! The event tail on PostgreSQL, where a transaction that took an event id may commit after
//! one that took a later id: every event still reaches the reader, exactly once.

use morningai_app::events::{LOOKBACK, Tail};
use morningai_core::entities::{NewTask, TaskCreated};
use morningai_core::events::{EventBus, LocalBus, NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::{Priority, TaskId, TaskStore, TenantCtx};
use morningai_postgres::PgStore;
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

async fn next(tail: &mut Tail) -> Vec<TaskEvent> {
    tokio::time::timeout(Duration::from_secs(10), tail.next())
        .await
        .expect("the tail delivers within 10 s")
        .expect("the bus is open")
        .expect("the store answers")
}

async fn log(store: &PgStore, bus: &LocalBus, cx: TenantCtx, task: TaskId, n: u32) -> TaskEvent {
    let e = store
        .append_task_event(
            cx,
            NewTaskEvent {
                task_id: task,
                kind: TaskEventKind::Log,
                data: json!({"n": n}),
            },
        )
        .await
        .unwrap();
    bus.publish(&e).await.unwrap();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_committed_out_of_id_order_arrive_exactly_once() {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let store = Arc::new(PgStore::connect(&url, 4).await.unwrap());
    let (cx, _) = morningai_conformance::two_tenants(store.clone()).await;
    let bus = LocalBus::default();
    let created = store
        .create_task(
            cx,
            NewTask {
                id: TaskId::new(),
                kind: "echo".into(),
                priority: Priority::default(),
                project_id: None,
                trace_id: String::new(),
                input: json!({}),
                idempotency_key: None,
                created_by: None,
            },
        )
        .await
        .unwrap();
    let TaskCreated::New(task, queued) = created else {
        panic!("a new task")
    };
    let mut tail = Tail::new(store.clone(), bus.subscribe(), cx, Some(task.id), 0);
    let mut seen: Vec<i64> = next(&mut tail).await.iter().map(|e| e.id).collect();
    assert_eq!(seen, [queued.id]);

    // A transaction takes an id and holds it, uncommitted …
    let (late, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    late.batch_execute("BEGIN").await.unwrap();
    let late_id: i64 = late
        .query_one(
            "INSERT INTO task_events (tenant_id, task_id, kind, data, at)
             VALUES ($1, $2, 'log', $3, now()) RETURNING id",
            &[&cx.tenant_id.0, &task.id.0, &json!({"late": true})],
        )
        .await
        .unwrap()
        .get(0);
    // … while a later id commits and is read.
    let early = log(&store, &bus, cx, task.id, 1).await;
    assert!(early.id > late_id, "{} > {late_id}", early.id);
    let batch: Vec<i64> = next(&mut tail).await.iter().map(|e| e.id).collect();
    assert_eq!(batch, [early.id], "only the committed event is visible yet");
    seen.extend(batch);

    // The held transaction commits: the tail still delivers its event, once.
    late.batch_execute("COMMIT").await.unwrap();
    let after = log(&store, &bus, cx, task.id, 2).await;
    let mut batch: Vec<i64> = Vec::new();
    while !batch.contains(&after.id) || !batch.contains(&late_id) {
        batch.extend(next(&mut tail).await.iter().map(|e| e.id));
    }
    seen.extend(batch);

    // Many more events, past the look-back window: nothing is delivered twice.
    let mut last = after.id;
    for n in 0..(LOOKBACK as u32 + 50) {
        last = log(&store, &bus, cx, task.id, 10 + n).await.id;
    }
    while seen.last() != Some(&last) {
        seen.extend(next(&mut tail).await.iter().map(|e| e.id));
    }
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an event was delivered twice");
    let stored: BTreeSet<i64> = store
        .task_events(cx, Some(task.id), 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(unique, stored, "every stored event was delivered");
}
