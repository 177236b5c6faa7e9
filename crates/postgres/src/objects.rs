//! Workflow documents on PostgreSQL (row-level security like every tenant table).

use crate::store::PgStore;
use crate::tx::one_shot;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::{Error, ObjectStore, Result, TenantCtx, TenantId};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

const COLS: &str = "kind, id, parent, status, body, due_at, created_at, updated_at";

fn row(r: &Row) -> StoredObject {
    StoredObject {
        kind: r.get(0),
        id: r.get(1),
        parent: r.get(2),
        status: r.get(3),
        body: r.get(4),
        due_at: r.get(5),
        created_at: r.get(6),
        updated_at: r.get(7),
    }
}

impl PgStore {
    /// Upserts (`replace`) or inserts only if absent; true when a row was written.
    async fn write_object(&self, cx: TenantCtx, o: &StoredObject, replace: bool) -> Result<bool> {
        let on_conflict = if replace {
            "DO UPDATE SET parent = excluded.parent, status = excluded.status, body = excluded.body,
               due_at = excluded.due_at, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "put object",
            &format!(
                "INSERT INTO objects (tenant_id, kind, id, parent, status, body, due_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (tenant_id, kind, id) {on_conflict} RETURNING id"
            ),
            &[&cx.tenant_id.0, &o.kind, &o.id, &o.parent, &o.status, &o.body, &o.due_at, &o.created_at, &o.updated_at],
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
        query: &ObjectQuery,
    ) -> Result<Vec<StoredObject>> {
        if let Some(key) = query
            .fields
            .iter()
            .flat_map(|(p, _)| p)
            .find(|k| k.contains('"'))
        {
            return Err(Error::invalid(
                "fields",
                format!("key {key:?} contains '\"'"),
            ));
        }
        let mut sql = format!(
            "SELECT {COLS} FROM objects WHERE tenant_id = $1 AND kind = $2
               AND ($3::uuid IS NULL OR parent = $3) AND ($4::text IS NULL OR status = $4)"
        );
        for i in 0..query.fields.len() {
            sql.push_str(&format!(
                " AND body #> ${}::text[] = ${}::jsonb",
                7 + 2 * i,
                8 + 2 * i
            ));
        }
        sql.push_str(" ORDER BY id DESC LIMIT $5 OFFSET $6");
        let (limit, offset) = (i64::from(query.limit), i64::from(query.offset));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &cx.tenant_id.0,
            &kind,
            &query.parent,
            &query.status,
            &limit,
            &offset,
        ];
        for (path, value) in &query.fields {
            params.push(path);
            params.push(value);
        }
        let rows = one_shot(self.pool(), Some(cx), "list objects", &sql, &params).await?;
        Ok(rows.iter().map(row).collect())
    }

    async fn due_objects(
        &self,
        kind: &str,
        status: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, StoredObject)>> {
        let rows = one_shot(
            self.pool(),
            None,
            "due objects",
            &format!(
                "SELECT {COLS}, tenant_id FROM objects
                 WHERE kind = $1 AND status = $2 AND due_at IS NOT NULL AND due_at <= $3
                 ORDER BY due_at LIMIT $4"
            ),
            &[&kind, &status, &now, &i64::from(limit)],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, Uuid>(8).into(), row(r)))
            .collect())
    }

    async fn tenants_with_objects(&self, kind: &str) -> Result<Vec<TenantId>> {
        let rows = one_shot(
            self.pool(),
            None,
            "tenants with objects",
            "SELECT DISTINCT tenant_id FROM objects WHERE kind = $1",
            &[&kind],
        )
        .await?;
        Ok(rows.iter().map(|r| r.get::<_, Uuid>(0).into()).collect())
    }

    async fn object_tenant(&self, kind: &str, id: Uuid) -> Result<Option<TenantId>> {
        let rows = one_shot(
            self.pool(),
            None,
            "object tenant",
            "SELECT tenant_id FROM objects WHERE kind = $1 AND id = $2 LIMIT 1",
            &[&kind, &id],
        )
        .await?;
        Ok(rows.first().map(|r| r.get::<_, Uuid>(0).into()))
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
