//! Workflow records in the objects table.

use super::*;
use morningai_core::objects::{ObjectQuery, StoredObject};
use serde_json::{Value, json};
use uuid::Uuid;

fn record(kind: &str, parent: Option<Uuid>, status: &str, body: Value) -> StoredObject {
    StoredObject {
        kind: kind.into(),
        id: Uuid::now_v7(),
        parent,
        status: status.into(),
        body,
        due_at: None,
        created_at: morningai_core::now(),
        updated_at: morningai_core::now(),
    }
}

pub async fn workflow_documents_are_tenant_scoped(store: DynStore) {
    let (_u, cx) = owner(&store, "docs").await;
    let (_v, other) = owner(&store, "docs-other").await;
    let thread = Uuid::now_v7();
    let obj = |kind: &str, id: Uuid, parent: Option<Uuid>, status: &str| StoredObject {
        kind: kind.into(),
        id,
        parent,
        status: status.into(),
        body: json!({"id": id, "n": 1}),
        due_at: None,
        created_at: morningai_core::now(),
        updated_at: morningai_core::now(),
    };
    let t = obj("thread", thread, None, "idle");
    store.put_object(cx, &t).await.unwrap();
    let (r1, r2) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .put_object(cx, &obj("run", r1, Some(thread), "success"))
        .await
        .unwrap();
    store
        .put_object(cx, &obj("run", r2, Some(thread), "pending"))
        .await
        .unwrap();
    assert_eq!(
        store.get_object(cx, "thread", thread).await.unwrap(),
        Some(t.clone())
    );
    assert_eq!(
        store.get_object(other, "thread", thread).await.unwrap(),
        None
    );
    let runs = store
        .list_objects(cx, "run", &ObjectQuery::first(10).parent(thread))
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r2, r1],
        "newest first"
    );
    assert_eq!(
        store
            .list_objects(
                cx,
                "run",
                &ObjectQuery::first(10).parent(thread).status("pending")
            )
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_objects(
                cx,
                "run",
                &ObjectQuery {
                    offset: 1,
                    ..ObjectQuery::first(1)
                }
            )
            .await
            .unwrap()[0]
            .id,
        r1,
        "limit and offset"
    );
    assert!(
        store
            .list_objects(other, "run", &ObjectQuery::first(10))
            .await
            .unwrap()
            .is_empty()
    );
    let tenants = store.tenants_with_objects("run").await.unwrap();
    assert!(tenants.contains(&cx.tenant_id) && !tenants.contains(&other.tenant_id));
    // The platform path names the holder of a record by kind and id, and nothing for
    // another kind or an unknown id.
    assert_eq!(
        store.object_tenant("thread", thread).await.unwrap(),
        Some(cx.tenant_id)
    );
    assert_eq!(store.object_tenant("run", thread).await.unwrap(), None);
    assert_eq!(
        store.object_tenant("thread", Uuid::new_v4()).await.unwrap(),
        None
    );
    let updated = StoredObject {
        status: "busy".into(),
        body: json!({"n": 2}),
        updated_at: morningai_core::now(),
        ..t.clone()
    };
    store.put_object(cx, &updated).await.unwrap();
    let got = store
        .get_object(cx, "thread", thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.status.as_str(), got.body, got.created_at),
        ("busy", json!({"n": 2}), t.created_at)
    );
    // Insert-only: refused for an existing id (nothing changes), taken for a new one, and
    // ids are per tenant.
    let mut again = updated.clone();
    again.body = json!({"n": 3});
    assert!(!store.insert_object(cx, &again).await.unwrap());
    let got = store
        .get_object(cx, "thread", thread)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.body, json!({"n": 2}));
    let fresh = StoredObject {
        id: uuid::Uuid::now_v7(),
        ..again.clone()
    };
    assert!(store.insert_object(cx, &fresh).await.unwrap());
    assert!(
        store.insert_object(other, &again).await.unwrap(),
        "another tenant's id space"
    );
    // Deleting the other tenant's copy leaves this one.
    assert!(store.delete_object(other, "thread", thread).await.unwrap());
    assert!(
        store
            .get_object(cx, "thread", thread)
            .await
            .unwrap()
            .is_some()
    );
    assert!(!store.delete_object(other, "thread", thread).await.unwrap());
    assert!(store.delete_object(cx, "thread", thread).await.unwrap());
    assert_eq!(store.get_object(cx, "thread", thread).await.unwrap(), None);
}

/// Equality on body fields is evaluated by the database, on every backend alike: strings,
/// numbers, booleans, nested objects, keys with dots; a missing field never matches.
pub async fn records_are_found_by_body_fields(store: DynStore) {
    let (_u, cx) = owner(&store, "fields").await;
    let (_v, other) = owner(&store, "fields-other").await;
    let a = record(
        "thread",
        None,
        "idle",
        json!({"metadata": {"suite": "sdk", "n": 2, "ok": true, "nested": {"x": [1, 2]}, "a.b": "dot"}}),
    );
    let b = record(
        "thread",
        None,
        "idle",
        json!({"metadata": {"suite": "sdk", "n": 3}}),
    );
    let c = record(
        "thread",
        None,
        "busy",
        json!({"metadata": {"suite": "other"}}),
    );
    for r in [&a, &b, &c] {
        store.put_object(cx, r).await.unwrap();
    }
    store.put_object(other, &a).await.unwrap();
    let find = |fields: Vec<(Vec<&str>, Value)>, status: Option<&str>| {
        let store = store.clone();
        let q = ObjectQuery {
            status: status.map(str::to_owned),
            fields: fields
                .into_iter()
                .map(|(p, v)| (p.into_iter().map(str::to_owned).collect(), v))
                .collect(),
            ..ObjectQuery::first(100)
        };
        async move {
            store
                .list_objects(cx, "thread", &q)
                .await
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    let meta = |k: &'static str| vec!["metadata", k];
    assert_eq!(
        find(vec![(meta("suite"), json!("sdk"))], None).await,
        [b.id, a.id]
    );
    assert_eq!(
        find(
            vec![(meta("suite"), json!("sdk")), (meta("n"), json!(2))],
            None
        )
        .await,
        [a.id]
    );
    assert_eq!(
        find(vec![(meta("n"), json!(2.0))], None).await,
        [a.id],
        "2 = 2.0"
    );
    assert_eq!(find(vec![(meta("ok"), json!(true))], None).await, [a.id]);
    assert_eq!(
        find(vec![(meta("nested"), json!({"x": [1, 2]}))], None).await,
        [a.id]
    );
    assert_eq!(find(vec![(meta("a.b"), json!("dot"))], None).await, [a.id]);
    assert!(
        find(vec![(meta("n"), json!("2"))], None).await.is_empty(),
        "2 ≠ \"2\""
    );
    assert!(
        find(vec![(meta("missing"), json!("x"))], None)
            .await
            .is_empty()
    );
    assert_eq!(
        find(vec![(meta("suite"), json!("other"))], Some("busy")).await,
        [c.id]
    );
    assert!(
        find(vec![(meta("suite"), json!("other"))], Some("idle"))
            .await
            .is_empty()
    );
    let bad = ObjectQuery {
        fields: vec![(vec!["a\"b".to_owned()], json!(1))],
        ..ObjectQuery::first(1)
    };
    assert!(matches!(
        store.list_objects(cx, "thread", &bad).await,
        Err(Error::Invalid { .. })
    ));
}

/// Records fall due: the platform pass finds those of every tenant whose `due_at` has come,
/// the longest overdue first, and none that are not due or in another status.
pub async fn due_records_are_found_across_tenants(store: DynStore) {
    let (_u, a) = owner(&store, "due-a").await;
    let (_v, b) = owner(&store, "due-b").await;
    let now = morningai_core::now();
    let kind = format!("due-{}", rand_suffix());
    let at = |secs: i64, status: &str| StoredObject {
        due_at: Some(now + chrono::Duration::seconds(secs)),
        ..record(&kind, None, status, json!({}))
    };
    let (late, later, future, decided, undated) = (
        at(-60, "pending"),
        at(-10, "pending"),
        at(3600, "pending"),
        at(-120, "approved"),
        record(&kind, None, "pending", json!({})),
    );
    store.put_object(a, &late).await.unwrap();
    store.put_object(b, &later).await.unwrap();
    store.put_object(a, &future).await.unwrap();
    store.put_object(a, &decided).await.unwrap();
    store.put_object(a, &undated).await.unwrap();
    let due = store.due_objects(&kind, "pending", now, 100).await.unwrap();
    assert_eq!(
        due.iter().map(|(t, o)| (*t, o.id)).collect::<Vec<_>>(),
        [(a.tenant_id, late.id), (b.tenant_id, later.id)]
    );
    assert_eq!(due[0].1.due_at, late.due_at, "due_at round-trips");
    // Once decided (status changes), it is no longer due.
    let done = StoredObject {
        status: "approved".into(),
        ..late.clone()
    };
    store.put_object(a, &done).await.unwrap();
    let due = store.due_objects(&kind, "pending", now, 100).await.unwrap();
    assert_eq!(
        due.iter().map(|(_, o)| o.id).collect::<Vec<_>>(),
        [later.id]
    );
}
