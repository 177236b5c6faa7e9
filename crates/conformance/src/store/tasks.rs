//! Tasks, their lifecycle and events, and schedules.

use super::*;
use chrono::Duration;
use morningai_core::events::{NewTaskEvent, TaskEventKind};
use morningai_core::schedules::Schedule;
use morningai_core::{Error, Priority, TaskId, TenantCtx};
use serde_json::json;
use uuid::Uuid;

pub async fn tasks_create_get_list_cancel(store: DynStore) {
    let (_u, cx) = owner(&store, "tasks").await;
    let (_v, other) = owner(&store, "tasks-other").await;
    let TaskCreated::New(t, _) = store.create_task(cx, new_task("echo", None)).await.unwrap()
    else {
        panic!("expected a new task")
    };
    assert_eq!(t.status, TaskStatus::Queued);
    assert_eq!(t.input, json!({"hello": "world", "n": 1}));
    let got = store.task(cx, t.id).await.unwrap();
    assert_eq!(got.id, t.id);
    assert_eq!(got.input, t.input);
    assert_eq!(got.trace_id, t.trace_id);
    assert_not_found(store.task(other, t.id).await);
    assert_not_found(store.cancel_task(other, t.id).await);
    assert!(
        store
            .tasks(
                other,
                &TaskFilter {
                    limit: 10,
                    ..Default::default()
                }
            )
            .await
            .unwrap()
            .is_empty()
    );
    let cancelled = store.cancel_task(cx, t.id).await.unwrap();
    assert_eq!(cancelled.status, TaskStatus::Cancelled);
    assert_eq!(
        store.task(cx, t.id).await.unwrap().status,
        TaskStatus::Cancelled
    );
    assert_conflict(store.cancel_task(cx, t.id).await, "task_finished");
    let by_status = |s| TaskFilter {
        status: Some(s),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .tasks(cx, &by_status(TaskStatus::Cancelled))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .tasks(cx, &by_status(TaskStatus::Queued))
            .await
            .unwrap()
            .is_empty()
    );
    let by_kind = TaskFilter {
        kind: Some("other".into()),
        limit: 10,
        ..Default::default()
    };
    assert!(store.tasks(cx, &by_kind).await.unwrap().is_empty());
}

/// Many reads at once (which a backend may answer together): each caller gets its own
/// task, another tenant's task or an unknown id is not found even when asked beside the
/// caller's own, and the same id asked twice at once is answered twice.
pub async fn concurrent_task_reads_each_get_their_own(store: DynStore) {
    let (_u, cx) = owner(&store, "reads").await;
    let (_v, other) = owner(&store, "reads-other").await;
    let mut mine = Vec::new();
    for _ in 0..20 {
        mine.push(new_task_in(&store, cx).await);
    }
    let theirs = new_task_in(&store, other).await;
    let mut asks = Vec::new();
    for round in 0..5 {
        for t in &mine {
            asks.push((cx, t.id, Some(t.id)));
        }
        asks.push((cx, theirs.id, None));
        asks.push((other, mine[round].id, None));
        asks.push((other, theirs.id, Some(theirs.id)));
        asks.push((cx, TaskId(Uuid::now_v7()), None));
    }
    let reads: Vec<_> = asks
        .iter()
        .map(|&(cx, id, _)| {
            let store = store.clone();
            tokio::spawn(async move { store.task(cx, id).await })
        })
        .collect();
    for ((cx, id, want), read) in asks.into_iter().zip(reads) {
        match (want, read.await.unwrap()) {
            (Some(want), Ok(task)) => {
                assert_eq!(task.id, want);
                let created = mine.iter().chain([&theirs]).find(|t| t.id == want).unwrap();
                assert_eq!(task.input, created.input);
                assert_eq!(task.trace_id, created.trace_id);
            }
            (None, got) => assert_not_found(got),
            (Some(_), Err(e)) => panic!("{id:?} for {:?}: {e}", cx.tenant_id),
        }
    }
}

/// Many creations at once (which a backend may write together): each lands in its own
/// tenant with its own queued event; one naming another tenant's project fails alone,
/// nothing beside it is lost; one idempotency key asked for many times at once gives one
/// new task and the same task to every other asker, per tenant.
pub async fn concurrent_task_creations_stay_apart(store: DynStore) {
    let (_u, cx) = owner(&store, "creates").await;
    let (_v, other) = owner(&store, "creates-other").await;
    let theirs = store
        .create_project(other, "theirs", None, None)
        .await
        .unwrap();
    let key = format!("k-{}", super::rand_suffix());
    let mut asks = Vec::new();
    for round in 0..4 {
        for _ in 0..15 {
            asks.push((cx, new_task("echo", None)));
            asks.push((other, new_task("echo", None)));
        }
        asks.push((cx, new_task("echo", Some(&key))));
        asks.push((other, new_task("echo", Some(&key))));
        if round == 1 {
            let stray = NewTask {
                project_id: Some(theirs.id),
                ..new_task("echo", None)
            };
            asks.push((cx, stray));
        }
    }
    let creations: Vec<_> = asks
        .iter()
        .map(|(cx, task)| {
            let (store, cx, task) = (store.clone(), *cx, task.clone());
            tokio::spawn(async move { store.create_task(cx, task).await })
        })
        .collect();
    let mut keyed: std::collections::HashMap<_, Vec<TaskCreated>> = Default::default();
    let (mut created, mut refused) = (0, 0);
    for ((at, asked), creation) in asks.into_iter().zip(creations) {
        let result = creation.await.unwrap();
        if asked.project_id.is_some() {
            assert!(
                matches!(result, Err(Error::Invalid { ref field, .. }) if field == "project_id"),
                "{result:?}"
            );
            assert_not_found(store.task(at, asked.id).await);
            refused += 1;
            continue;
        }
        let result = result.unwrap();
        if asked.idempotency_key.is_some() {
            keyed.entry(at.tenant_id).or_default().push(result);
            continue;
        }
        let TaskCreated::New(task, event) = result else {
            panic!("{result:?}")
        };
        assert_eq!((task.id, &task.input), (asked.id, &asked.input));
        assert_eq!(
            (event.task_id, event.kind, event.tenant_id),
            (task.id, TaskEventKind::Queued, at.tenant_id)
        );
        let stored = store.task(at, task.id).await.unwrap();
        assert_eq!((stored.id, stored.trace_id), (task.id, task.trace_id));
        let events = store.task_events(at, Some(task.id), 0, 10).await.unwrap();
        assert_eq!(events.iter().map(|e| e.id).collect::<Vec<_>>(), [event.id]);
        let elsewhere = if at == other { cx } else { other };
        assert_not_found(store.task(elsewhere, task.id).await);
        created += 1;
    }
    assert_eq!((created, refused), (120, 1));
    assert_eq!(keyed.len(), 2);
    for (tenant, results) in keyed {
        let new: Vec<_> = results
            .iter()
            .filter_map(|r| match r {
                TaskCreated::New(t, _) => Some(t.id),
                TaskCreated::Existing(_) => None,
            })
            .collect();
        assert_eq!(new.len(), 1, "one new task under the key in {tenant:?}");
        for r in &results {
            let id = match r {
                TaskCreated::New(t, _) | TaskCreated::Existing(t) => t.id,
            };
            assert_eq!(id, new[0]);
        }
    }
}

/// Creations under an idempotency key while the key's holder is being updated and given an
/// event (a worker starting it) by other transactions at the same time: every creation gets
/// the holder and every start goes through. A backend that took the tenant's event lock
/// before inserting the tasks would deadlock here (the insert waits for the updating
/// transaction, which waits for the lock), as PostgreSQL's once did in CI.
pub async fn creations_under_a_key_beside_its_holders_updates(store: DynStore) {
    let (_u, cx) = owner(&store, "holder").await;
    let key = format!("k-{}", super::rand_suffix());
    let TaskCreated::New(holder, _) = store
        .create_task(cx, new_task("echo", Some(&key)))
        .await
        .unwrap()
    else {
        panic!("expected a new task")
    };
    for _ in 0..20 {
        let mut starts = Vec::new();
        let mut creations = Vec::new();
        for i in 0..6 {
            if i % 3 == 0 {
                let store = store.clone();
                starts.push(tokio::spawn(async move {
                    store.start_task(cx, holder.id, json!({})).await
                }));
            }
            let (keyed, plain) = (store.clone(), store.clone());
            let task = new_task("echo", Some(&key));
            creations.push(tokio::spawn(
                async move { keyed.create_task(cx, task).await },
            ));
            creations.push(tokio::spawn(async move {
                plain.create_task(cx, new_task("echo", None)).await
            }));
        }
        for start in starts {
            let (task, event) = start.await.unwrap().unwrap().expect("the holder runs");
            assert_eq!((task.id, event.kind), (holder.id, TaskEventKind::Started));
        }
        for creation in creations {
            match creation.await.unwrap().unwrap() {
                TaskCreated::Existing(t) => assert_eq!(t.id, holder.id),
                TaskCreated::New(t, _) => assert_eq!(t.idempotency_key, None),
            }
        }
    }
}

pub async fn task_idempotency_keys_are_per_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "idem").await;
    let (_v, other) = owner(&store, "idem-other").await;
    let first = match store
        .create_task(cx, new_task("echo", Some("k1")))
        .await
        .unwrap()
    {
        TaskCreated::New(t, _) => t,
        e => panic!("expected new, got {e:?}"),
    };
    match store
        .create_task(cx, new_task("echo", Some("k1")))
        .await
        .unwrap()
    {
        TaskCreated::Existing(t) => assert_eq!(t.id, first.id),
        n => panic!("expected existing, got {n:?}"),
    }
    assert!(matches!(
        store
            .create_task(other, new_task("echo", Some("k1")))
            .await
            .unwrap(),
        TaskCreated::New(..)
    ));
    assert!(matches!(
        store
            .create_task(cx, new_task("echo", Some("k2")))
            .await
            .unwrap(),
        TaskCreated::New(..)
    ));
}

pub async fn task_pagination_is_newest_first(store: DynStore) {
    let (_u, cx) = owner(&store, "page").await;
    let mut ids = Vec::new();
    for _ in 0..7 {
        match store.create_task(cx, new_task("echo", None)).await.unwrap() {
            TaskCreated::New(t, _) => ids.push(t.id),
            e => panic!("{e:?}"),
        }
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .tasks(
                cx,
                &TaskFilter {
                    before,
                    limit: 3,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        before = page.last().map(|t| t.id);
        seen.extend(page.into_iter().map(|t| t.id));
    }
    assert_eq!(seen, ids);
}

pub async fn task_project_must_belong_to_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "tp").await;
    let (_v, other) = owner(&store, "tp-other").await;
    let theirs = store
        .create_project(other, "theirs", None, None)
        .await
        .unwrap();
    let r = store
        .create_task(
            cx,
            NewTask {
                project_id: Some(theirs.id),
                ..new_task("echo", None)
            },
        )
        .await;
    assert!(
        matches!(r, Err(Error::Invalid { ref field, .. }) if field == "project_id"),
        "{r:?}"
    );
    let mine = store.create_project(cx, "mine", None, None).await.unwrap();
    let TaskCreated::New(t, _) = store
        .create_task(
            cx,
            NewTask {
                project_id: Some(mine.id),
                ..new_task("echo", None)
            },
        )
        .await
        .unwrap()
    else {
        panic!()
    };
    let f = TaskFilter {
        project_id: Some(mine.id),
        limit: 5,
        ..Default::default()
    };
    assert_eq!(store.tasks(cx, &f).await.unwrap().len(), 1);
    // Deleting the project keeps its tasks (they are history), unlinked.
    store.delete_project(cx, mine.id).await.unwrap();
    assert_eq!(store.task(cx, t.id).await.unwrap().project_id, None);
}

async fn new_task_in(store: &DynStore, cx: TenantCtx) -> Task {
    match store.create_task(cx, new_task("echo", None)).await.unwrap() {
        TaskCreated::New(t, ev) => {
            assert_eq!(
                (ev.task_id, ev.kind, ev.tenant_id),
                (t.id, TaskEventKind::Queued, cx.tenant_id)
            );
            t
        }
        e => panic!("{e:?}"),
    }
}

fn outcome(
    status: TaskStatus,
    result: Option<serde_json::Value>,
    error: Option<&str>,
) -> TaskOutcome {
    TaskOutcome {
        status,
        result,
        error: error.map(str::to_owned),
        event_data: json!({"by": "test"}),
    }
}

pub async fn task_lifecycle_writes_the_result_once(store: DynStore) {
    let (_u, cx) = owner(&store, "life").await;
    let (_v, other) = owner(&store, "life-other").await;
    let t = new_task_in(&store, cx).await;
    assert!(
        store
            .start_task(other, t.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "other tenant"
    );
    let (running, started) = store
        .start_task(cx, t.id, json!({"attempt": 1}))
        .await
        .unwrap()
        .expect("startable");
    assert_eq!(running.status, TaskStatus::Running);
    assert_eq!(
        (started.kind, started.data.clone()),
        (TaskEventKind::Started, json!({"attempt": 1}))
    );
    let ev = store
        .finish_task(cx, t.id, outcome(TaskStatus::Retrying, None, Some("flaky")))
        .await
        .unwrap()
        .expect("changed");
    assert_eq!(ev.kind, TaskEventKind::Retrying);
    assert_eq!(
        store.task(cx, t.id).await.unwrap().error.as_deref(),
        Some("flaky")
    );
    assert!(
        store
            .start_task(cx, t.id, json!({}))
            .await
            .unwrap()
            .is_some(),
        "a retrying task starts again"
    );
    let ev = store
        .finish_task(
            cx,
            t.id,
            outcome(TaskStatus::Succeeded, Some(json!({"ok": 1})), None),
        )
        .await
        .unwrap();
    assert_eq!(ev.map(|e| e.kind), Some(TaskEventKind::Succeeded));
    // A duplicate run (at-least-once delivery) cannot overwrite the visible result, and
    // records no second event.
    assert!(
        store
            .finish_task(
                cx,
                t.id,
                outcome(TaskStatus::Succeeded, Some(json!({"ok": 2})), None)
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .finish_task(cx, t.id, outcome(TaskStatus::Failed, None, Some("late")))
            .await
            .unwrap()
            .is_none()
    );
    let done = store.task(cx, t.id).await.unwrap();
    assert_eq!(
        (done.status, done.result, done.error),
        (TaskStatus::Succeeded, Some(json!({"ok": 1})), None)
    );
    let kinds: Vec<_> = store
        .task_events(cx, Some(t.id), 0, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    use TaskEventKind as K;
    assert_eq!(
        kinds,
        [K::Queued, K::Started, K::Retrying, K::Started, K::Succeeded]
    );
    assert!(
        store
            .start_task(cx, t.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "finished tasks never start again"
    );
    let c = new_task_in(&store, cx).await;
    store.cancel_task(cx, c.id).await.unwrap();
    assert!(
        store
            .start_task(cx, c.id, json!({}))
            .await
            .unwrap()
            .is_none(),
        "cancelled tasks never start"
    );
    assert!(
        !store.reopen_task(cx, c.id).await.unwrap(),
        "only failed tasks reopen"
    );
    let f = new_task_in(&store, cx).await;
    store
        .finish_task(cx, f.id, outcome(TaskStatus::Failed, None, Some("dead")))
        .await
        .unwrap();
    assert!(!store.reopen_task(other, f.id).await.unwrap());
    assert!(store.reopen_task(cx, f.id).await.unwrap());
    let reopened = store.task(cx, f.id).await.unwrap();
    assert_eq!(
        (reopened.status, reopened.error),
        (TaskStatus::Queued, None)
    );
}

pub async fn task_events_are_stored_in_order_per_tenant(store: DynStore) {
    let (_u, cx) = owner(&store, "ev").await;
    let (_v, other) = owner(&store, "ev-other").await;
    let (a, b) = (new_task_in(&store, cx).await, new_task_in(&store, cx).await);
    let theirs = new_task_in(&store, other).await;
    let (mine_before, theirs_before) = (
        store.task_event_bytes(cx).await.unwrap(),
        store.task_event_bytes(other).await.unwrap(),
    );
    let e1 = store
        .append_task_event(
            cx,
            NewTaskEvent {
                task_id: a.id,
                kind: TaskEventKind::Progress,
                data: json!({"pct": 50}),
            },
        )
        .await
        .unwrap();
    let e2 = store
        .append_task_event(
            cx,
            NewTaskEvent {
                task_id: b.id,
                kind: TaskEventKind::Log,
                data: json!({"message": "hi"}),
            },
        )
        .await
        .unwrap();
    assert!(e2.id > e1.id, "ids grow");
    assert!(
        store.task_event_bytes(cx).await.unwrap() > mine_before,
        "the tenant's events take bytes"
    );
    assert_eq!(
        store.task_event_bytes(other).await.unwrap(),
        theirs_before,
        "another tenant's bytes are its own"
    );
    let of_a = store.task_events(cx, Some(a.id), 0, 100).await.unwrap();
    assert_eq!(
        of_a.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [TaskEventKind::Queued, TaskEventKind::Progress]
    );
    assert_eq!(of_a[1].data, json!({"pct": 50}));
    let all = store.task_events(cx, None, 0, 100).await.unwrap();
    assert_eq!(all.len(), 4, "two queued events and two appended");
    assert_eq!(store.last_task_event_id(cx).await.unwrap(), e2.id);
    let (_w, empty) = owner(&store, "ev-empty").await;
    assert_eq!(store.last_task_event_id(empty).await.unwrap(), 0);
    assert!(all.iter().all(|e| e.tenant_id == cx.tenant_id));
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    let after = store.task_events(cx, None, e1.id, 100).await.unwrap();
    assert_eq!(after.iter().map(|e| e.id).collect::<Vec<_>>(), vec![e2.id]);
    assert!(
        store
            .task_events(cx, Some(theirs.id), 0, 100)
            .await
            .unwrap()
            .is_empty(),
        "other tenant's task"
    );
    assert_eq!(
        store.task_events(other, None, 0, 100).await.unwrap().len(),
        1
    );
}

/// The port's ordering promise: a tenant's event ids become visible in id order, so a
/// reader whose cursor is the last id it saw loses nothing — even while writers commit
/// concurrently (on PostgreSQL a transaction holding a lower id could otherwise commit
/// after a higher one was read).
pub async fn task_event_ids_become_visible_in_order(store: DynStore) {
    const WRITERS: usize = 8;
    const EACH: usize = 40;
    let (_u, cx) = owner(&store, "ev-order").await;
    let task = new_task_in(&store, cx).await;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    let e = NewTaskEvent {
                        task_id: task.id,
                        kind: TaskEventKind::Log,
                        data: json!({"writer": w, "n": n}),
                    };
                    store.append_task_event(cx, e).await.unwrap();
                }
            })
        })
        .collect();
    let (mut seen, mut cursor) = (Vec::new(), 0);
    loop {
        // Checked before the read, so the last read starts after every commit.
        let finished = writers.iter().all(|w| w.is_finished());
        let batch = store.task_events(cx, None, cursor, 1000).await.unwrap();
        if let Some(last) = batch.last() {
            cursor = last.id;
        }
        seen.extend(batch.into_iter().map(|e| e.id));
        if finished {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    let stored: Vec<i64> = store
        .task_events(cx, None, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(
        stored.len(),
        WRITERS * EACH + 1,
        "every event and the queued one"
    );
    let missed: Vec<&i64> = stored.iter().filter(|id| !seen.contains(id)).collect();
    assert!(
        missed.is_empty(),
        "a reader following the last id it saw missed {} of {} events: {missed:?}",
        missed.len(),
        stored.len()
    );
    assert_eq!(seen, stored, "each event once, in id order");
}

pub async fn unfinished_tasks_span_tenants(store: DynStore) {
    let (_u, a) = owner(&store, "unf-a").await;
    let (_v, b) = owner(&store, "unf-b").await;
    let (ta, tb, done) = (
        new_task_in(&store, a).await,
        new_task_in(&store, b).await,
        new_task_in(&store, a).await,
    );
    store.start_task(a, done.id, json!({})).await.unwrap();
    store
        .finish_task(
            a,
            done.id,
            outcome(TaskStatus::Succeeded, Some(json!(1)), None),
        )
        .await
        .unwrap();
    let soon = chrono::Utc::now() + Duration::seconds(1);
    let found: Vec<(morningai_core::TenantId, TaskId)> = store
        .unfinished_tasks(soon, 100_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(t, task)| (t, task.id))
        .collect();
    assert!(
        found.contains(&(a.tenant_id, ta.id)) && found.contains(&(b.tenant_id, tb.id)),
        "both tenants"
    );
    assert!(
        !found.iter().any(|(_, id)| *id == done.id),
        "finished tasks are not listed"
    );
    let past = chrono::Utc::now() - Duration::hours(1);
    assert!(
        !store
            .unfinished_tasks(past, 100_000)
            .await
            .unwrap()
            .iter()
            .any(|(_, t)| t.id == ta.id),
        "too recent"
    );
}

pub async fn schedules_fire_once_by_compare_and_set(store: DynStore) {
    let (u, cx) = owner(&store, "sched").await;
    let (_v, other) = owner(&store, "sched-other").await;
    let due = morningai_core::now() - Duration::seconds(5);
    let s = Schedule {
        id: Uuid::now_v7(),
        tenant_id: cx.tenant_id,
        name: "nightly".into(),
        cron: "0 3 * * *".into(),
        timezone: "Europe/Paris".into(),
        kind: "echo".into(),
        input: json!({"x": 1}),
        priority: Priority::new(7).unwrap(),
        next_run_at: due,
        created_by: Some(u.id),
        created_at: morningai_core::now(),
    };
    let created = store.create_schedule(cx, s.clone()).await.unwrap();
    assert_eq!(created, s);
    assert_eq!(store.schedules(cx).await.unwrap(), vec![s.clone()]);
    assert!(store.schedules(other).await.unwrap().is_empty());
    let found = store
        .due_schedules(morningai_core::now(), 100_000)
        .await
        .unwrap();
    assert!(
        found
            .iter()
            .any(|x| x.id == s.id && x.tenant_id == cx.tenant_id)
    );
    let next = due + Duration::days(1);
    assert!(store.advance_schedule(s.id, due, next).await.unwrap());
    assert!(
        !store.advance_schedule(s.id, due, next).await.unwrap(),
        "the second process loses"
    );
    assert!(
        !store
            .due_schedules(morningai_core::now(), 100_000)
            .await
            .unwrap()
            .iter()
            .any(|x| x.id == s.id)
    );
    assert!(matches!(
        store.delete_schedule(other, s.id).await,
        Err(Error::NotFound(_))
    ));
    store.delete_schedule(cx, s.id).await.unwrap();
    assert!(store.schedules(cx).await.unwrap().is_empty());
}

pub async fn tenants_overview_counts_members_and_tasks(store: DynStore) {
    let (_u, cx) = owner(&store, "overview").await;
    let slug = store.tenant(cx).await.unwrap().slug.as_str().to_owned();
    let guest = store.create_user(new_user("guest")).await.unwrap();
    store
        .add_member(cx, guest.id, morningai_core::Role::Viewer)
        .await
        .unwrap();
    let done = new_task_in(&store, cx).await;
    new_task_in(&store, cx).await;
    store.start_task(cx, done.id, json!({})).await.unwrap();
    store
        .finish_task(
            cx,
            done.id,
            outcome(TaskStatus::Succeeded, Some(json!(1)), None),
        )
        .await
        .unwrap();
    // The slug minus its last character sorts right before it (the rest is random).
    let before = &slug[..slug.len() - 1];
    let page = store.tenants_overview(Some(before), 1).await.unwrap();
    assert_eq!(page.len(), 1);
    let o = &page[0];
    assert_eq!(o.tenant, store.tenant(cx).await.unwrap());
    assert_eq!((o.members, o.tasks, o.active_tasks), (2, 2, 1));
    // Keyset paging: after the slug itself, the tenant is not listed again.
    let next = store.tenants_overview(Some(&slug), 50).await.unwrap();
    assert!(next.iter().all(|t| t.tenant.slug.as_str() > slug.as_str()));
    assert!(next.len() <= 50);
    let first = store.tenants_overview(None, 2).await.unwrap();
    assert!(!first.is_empty() && first.len() <= 2);
    assert!(
        first
            .windows(2)
            .all(|w| w[0].tenant.slug.as_str() < w[1].tenant.slug.as_str())
    );
}
