//! The event tail on PostgreSQL while another transaction holds an uncommitted event of the
//! tenant: later events wait for it (ids are taken in commit order), and every event
//! reaches the reader exactly once, in id order, across more than one page.

use morningai_app::events::Tail;
use morningai_core::entities::{NewTask, TaskCreated};
use morningai_core::events::{EventBus, LocalBus, NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::{Priority, TaskId, TaskStore, TenantCtx};
use morningai_postgres::PgStore;
use serde_json::json;
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
async fn events_arrive_once_in_commit_order() {
    let url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh");
    let store = Arc::new(PgStore::connect(&url, 4).await.unwrap());
    let (cx, _) = morningai_conformance::two_tenants(store.clone()).await;
    let bus = Arc::new(LocalBus::default());
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

    // A transaction inserts an event and holds it, uncommitted …
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
    // … so the store's next event of the tenant waits for it, on the tenant's lock.
    let early = tokio::spawn({
        let (store, bus) = (store.clone(), bus.clone());
        async move { log(&store, &bus, cx, task.id, 1).await }
    });
    let (watch, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let waiting: i64 = watch
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'
                       AND query LIKE 'INSERT INTO task_events%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the second insert waits for the first transaction");
    assert!(!early.is_finished());
    assert!(
        store
            .task_events(cx, Some(task.id), queued.id, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing after the queued event is visible yet"
    );

    // The held transaction commits: the waiting event takes the next id, and the tail
    // delivers both in id order.
    late.batch_execute("COMMIT").await.unwrap();
    let early = early.await.unwrap();
    assert!(early.id > late_id, "{} > {late_id}", early.id);
    let mut batch: Vec<i64> = Vec::new();
    while !batch.contains(&early.id) {
        batch.extend(next(&mut tail).await.iter().map(|e| e.id));
    }
    assert_eq!(batch, [late_id, early.id]);
    seen.extend(batch);

    // More events than one page of the tail's reads: each once, in order.
    let mut last = early.id;
    for n in 0..1_050 {
        last = log(&store, &bus, cx, task.id, 10 + n).await.id;
    }
    while seen.last() != Some(&last) {
        seen.extend(next(&mut tail).await.iter().map(|e| e.id));
    }
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "in id order, once");
    let stored: Vec<i64> = store
        .task_events(cx, Some(task.id), 0, 10_000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(seen, stored, "every stored event was delivered");
}
