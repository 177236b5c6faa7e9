//! Workflow records in the objects table.

use super::*;
use serde_json::json;
use uuid::Uuid;

pub async fn workflow_documents_are_tenant_scoped(store: DynStore) {
    use morningai_core::objects::StoredObject;
    let (_u, cx) = owner(&store, "docs").await;
    let (_v, other) = owner(&store, "docs-other").await;
    let thread = Uuid::now_v7();
    let obj = |kind: &str, id: Uuid, parent: Option<Uuid>, status: &str| StoredObject {
        kind: kind.into(),
        id,
        parent,
        status: status.into(),
        body: json!({"id": id, "n": 1}),
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
        .list_objects(cx, "run", Some(thread), None, 10, 0)
        .await
        .unwrap();
    assert_eq!(
        runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![r2, r1],
        "newest first"
    );
    assert_eq!(
        store
            .list_objects(cx, "run", Some(thread), Some("pending"), 10, 0)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store
            .list_objects(cx, "run", None, None, 1, 1)
            .await
            .unwrap()[0]
            .id,
        r1,
        "limit and offset"
    );
    assert!(
        store
            .list_objects(other, "run", None, None, 10, 0)
            .await
            .unwrap()
            .is_empty()
    );
    let everywhere = store
        .objects_everywhere("run", "pending", 100_000)
        .await
        .unwrap();
    assert!(
        everywhere
            .iter()
            .any(|(tenant, o)| *tenant == cx.tenant_id && o.id == r2)
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
