//! Row-level security holds below the repositories: a query through `morningai_tenant`
//! with no tenant filter sees only the current tenant's rows, and none at all when
//! `app.tenant_id` is unset, on every tenant table.

use morningai_conformance::{DynStore, owner};
use morningai_core::entities::NewTask;
use morningai_postgres::PgStore;
use std::sync::Arc;
use tokio_postgres::NoTls;

const TENANT_TABLES: &[(&str, &str)] = &[
    ("tenants", "id"),
    ("memberships", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("projects", "tenant_id"),
    ("tasks", "tenant_id"),
    ("audit_log", "tenant_id"),
];

fn url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL is not set: run the suite with scripts/test.sh")
}

async fn raw() -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(&url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
}

async fn seeded() -> (
    DynStore,
    morningai_core::TenantCtx,
    morningai_core::TenantCtx,
) {
    let store: DynStore = Arc::new(PgStore::connect(&url(), 2).await.expect("connect"));
    let (ua, a) = owner(&store, "rls-a").await;
    let (_ub, b) = owner(&store, "rls-b").await;
    for cx in [a, b] {
        store.create_project(cx, "p", None, Some(ua.id)).await.ok();
        store.create_task(cx, echo(None)).await.unwrap();
    }
    (store, a, b)
}

fn echo(created_by: Option<morningai_core::UserId>) -> NewTask {
    NewTask {
        id: Default::default(),
        kind: "echo".into(),
        priority: Default::default(),
        project_id: None,
        trace_id: "t".into(),
        input: serde_json::json!({}),
        idempotency_key: None,
        created_by,
    }
}

/// Rows of `table` (tasks or task_events) under `tenant`, read on the platform path.
async fn rows_of(client: &tokio_postgres::Client, table: &str, tenant: uuid::Uuid) -> i64 {
    client
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"),
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0)
}

/// Tasks and their events carry no per-row foreign-key checks (migration 15: they were a
/// quarter of PostgreSQL's time on the write path); deleting a tenant still removes its
/// tasks and events, and deleting a user still clears the tasks' `created_by`, as the
/// cascades did — and touches no other tenant's rows.
#[tokio::test]
async fn deleting_a_tenant_or_a_user_still_reaches_its_tasks_and_events() {
    let store: DynStore = Arc::new(PgStore::connect(&url(), 2).await.expect("connect"));
    let (ua, a) = owner(&store, "gone-a").await;
    let (ub, b) = owner(&store, "gone-b").await;
    store.create_task(a, echo(Some(ua.id))).await.unwrap();
    let kept = match store.create_task(b, echo(Some(ub.id))).await.unwrap() {
        morningai_core::entities::TaskCreated::New(task, _) => task.id,
        other => panic!("a new task expected, got {other:?}"),
    };
    let client = raw().await;
    for table in ["tasks", "task_events"] {
        assert_eq!(rows_of(&client, table, a.tenant_id.0).await, 1, "{table}");
    }
    client
        .execute("DELETE FROM tenants WHERE id = $1", &[&a.tenant_id.0])
        .await
        .unwrap();
    for table in ["tasks", "task_events"] {
        assert_eq!(rows_of(&client, table, a.tenant_id.0).await, 0, "{table}");
        assert_eq!(rows_of(&client, table, b.tenant_id.0).await, 1, "{table}");
    }
    client
        .execute("DELETE FROM users WHERE id = $1", &[&ub.id.0])
        .await
        .unwrap();
    let creator: Option<uuid::Uuid> = client
        .query_one("SELECT created_by FROM tasks WHERE id = $1", &[&kept.0])
        .await
        .unwrap()
        .get(0);
    assert_eq!(creator, None);
    assert_eq!(rows_of(&client, "task_events", b.tenant_id.0).await, 1);
}

#[tokio::test]
async fn tenant_role_sees_only_the_current_tenant_without_any_filter() {
    let (_store, a, _b) = seeded().await;
    let mut client = raw().await;
    for (table, col) in TENANT_TABLES {
        let tx = client.transaction().await.unwrap();
        tx.query(
            "SELECT set_config('role', 'morningai_tenant', true), set_config('app.tenant_id', $1, true)",
            &[&a.tenant_id.to_string()],
        )
        .await
        .unwrap();
        let who: String = tx
            .query_one("SELECT current_user::text", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(who, "morningai_tenant");
        let rows = tx
            .query(&format!("SELECT {col} FROM {table}"), &[])
            .await
            .unwrap();
        assert!(
            !rows.is_empty() || *table == "api_keys" || *table == "audit_log",
            "{table}: tenant sees its own rows"
        );
        for r in rows {
            let t: uuid::Uuid = r.get(0);
            assert_eq!(t, a.tenant_id.0, "{table} leaked another tenant's row");
        }
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn tenant_role_sees_nothing_when_the_tenant_is_unset() {
    let (_store, a, _b) = seeded().await;
    let mut client = raw().await;
    // Once with the setting never set, once after an earlier transaction set it (it then
    // reads back as '' rather than NULL).
    for round in 0..2 {
        for (table, _) in TENANT_TABLES {
            let tx = client.transaction().await.unwrap();
            tx.query("SELECT set_config('role', 'morningai_tenant', true)", &[])
                .await
                .unwrap();
            let n: i64 = tx
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 0, "{table} visible without a tenant (round {round})");
            tx.rollback().await.unwrap();
        }
        let tx = client.transaction().await.unwrap();
        tx.query(
            "SELECT set_config('app.tenant_id', $1, true)",
            &[&a.tenant_id.to_string()],
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test]
async fn tenant_role_cannot_write_into_another_tenant() {
    let (_store, a, b) = seeded().await;
    let mut client = raw().await;
    let tx = client.transaction().await.unwrap();
    tx.query(
        "SELECT set_config('role', 'morningai_tenant', true), set_config('app.tenant_id', $1, true)",
        &[&a.tenant_id.to_string()],
    )
    .await
    .unwrap();
    let err = tx
        .execute(
            "INSERT INTO projects (id, tenant_id, name, created_at, updated_at) VALUES (gen_random_uuid(), $1, 'x', now(), now())",
            &[&b.tenant_id.0],
        )
        .await
        .expect_err("insert into another tenant must fail");
    assert!(
        err.to_string().contains("row-level security")
            || format!("{err:?}").contains("row-level security"),
        "{err:?}"
    );
    drop(tx);
    // Updates and deletes of another tenant's rows touch nothing.
    let tx = client.transaction().await.unwrap();
    tx.query(
        "SELECT set_config('role', 'morningai_tenant', true), set_config('app.tenant_id', $1, true)",
        &[&a.tenant_id.to_string()],
    )
    .await
    .unwrap();
    let n = tx
        .execute(
            "UPDATE tasks SET kind = 'hacked' WHERE tenant_id = $1",
            &[&b.tenant_id.0],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n = tx
        .execute(
            "DELETE FROM projects WHERE tenant_id = $1",
            &[&b.tenant_id.0],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    // And the tenant role cannot read password hashes or refresh tokens at all.
    assert!(
        tx.query("SELECT password_hash FROM users", &[])
            .await
            .is_err()
    );
}

#[tokio::test]
async fn policies_and_force_are_on_every_tenant_table() {
    PgStore::connect(&url(), 1)
        .await
        .expect("connect and migrate");
    let client = raw().await;
    // Every table with a tenant_id column, read from the catalog, so a new table cannot
    // be forgotten here.
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'tenant_id'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .chain(["tenants".to_owned()])
        .collect();
    for expected in [
        "checkpoints",
        "objects",
        "memory_chunks",
        "memory_items",
        "refresh_tokens",
    ] {
        assert!(
            tables.iter().any(|t| t == expected),
            "{expected} has a tenant_id column"
        );
    }
    for table in &tables {
        let row = client
            .query_one(
                "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = $1",
                &[table],
            )
            .await
            .unwrap();
        assert!(
            row.get::<_, bool>(0) && row.get::<_, bool>(1),
            "{table}: RLS not enabled and forced"
        );
    }
    let bypass: bool = client
        .query_one(
            "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'morningai_tenant'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!bypass);
}
