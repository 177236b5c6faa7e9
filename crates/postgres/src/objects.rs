//! Workflow documents on PostgreSQL (row-level security like every tenant table).

use crate::store::PgStore;
use crate::tx::one_shot;
use async_trait::async_trait;
use morningai_core::objects::StoredObject;
use morningai_core::{ObjectStore, Result, TenantCtx, TenantId};
use tokio_postgres::Row;
use uuid::Uuid;

const COLS: &str = "kind, id, parent, status, body, created_at, updated_at";

fn row(r: &Row) -> StoredObject {
    StoredObject {
        kind: r.get(0),
        id: r.get(1),
        parent: r.get(2),
        status: r.get(3),
        body: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

impl PgStore {
    /// Upserts (`replace`) or inserts only if absent; true when a row was written.
    async fn write_object(&self, cx: TenantCtx, o: &StoredObject, replace: bool) -> Result<bool> {
        let on_conflict = if replace {
            "DO UPDATE SET parent = excluded.parent, status = excluded.status, body = excluded.body, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "put object",
            &format!(
                "INSERT INTO objects (tenant_id, kind, id, parent, status, body, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant_id, kind, id) {on_conflict} RETURNING id"
            ),
            &[&cx.tenant_id.0, &o.kind, &o.id, &o.parent, &o.status, &o.body, &o.created_at, &o.updated_at],
        )
        .await?;
        Ok(!rows.is_empty())
    }
}

#[async_trait]
impl ObjectStore for PgStore {
    async fn put_object(&self, cx: TenantCtx, object: &StoredObject) -> Result<()> {
        self.write_object(cx, object, true).await.map(drop)
    }

    async fn insert_object(&self, cx: TenantCtx, object: &StoredObject) -> Result<bool> {
        self.write_object(cx, object, false).await
    }

    async fn get_object(
        &self,
        cx: TenantCtx,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<StoredObject>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "get object",
            &format!("SELECT {COLS} FROM objects WHERE tenant_id = $1 AND kind = $2 AND id = $3"),
            &[&cx.tenant_id.0, &kind, &id],
        )
        .await?;
        Ok(rows.first().map(row))
    }

    async fn list_objects(
        &self,
        cx: TenantCtx,
        kind: &str,
        parent: Option<Uuid>,
        status: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<StoredObject>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "list objects",
            &format!(
                "SELECT {COLS} FROM objects WHERE tenant_id = $1 AND kind = $2
                   AND ($3::uuid IS NULL OR parent = $3) AND ($4::text IS NULL OR status = $4)
                 ORDER BY id DESC LIMIT $5 OFFSET $6"
            ),
            &[
                &cx.tenant_id.0,
                &kind,
                &parent,
                &status,
                &i64::from(limit),
                &i64::from(offset),
            ],
        )
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    async fn objects_everywhere(
        &self,
        kind: &str,
        status: &str,
        limit: u32,
    ) -> Result<Vec<(TenantId, StoredObject)>> {
        let rows = one_shot(
            self.pool(),
            None,
            "objects everywhere",
            &format!("SELECT {COLS}, tenant_id FROM objects WHERE kind = $1 AND status = $2 ORDER BY id LIMIT $3"),
            &[&kind, &status, &i64::from(limit)],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, Uuid>(7).into(), row(r)))
            .collect())
    }

    async fn delete_object(&self, cx: TenantCtx, kind: &str, id: Uuid) -> Result<bool> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "delete object",
            "DELETE FROM objects WHERE tenant_id = $1 AND kind = $2 AND id = $3 RETURNING id",
            &[&cx.tenant_id.0, &kind, &id],
        )
        .await?;
        Ok(!rows.is_empty())
    }
}
