//! Workflow documents on SQLite.

use crate::convert::{get, get_opt, json, micros, time};
use crate::store::SqliteStore;
use async_trait::async_trait;
use morningai_core::objects::StoredObject;
use morningai_core::{ObjectStore, Result, TenantCtx, TenantId};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

const COLS: &str = "kind, id, parent, status, body, created_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredObject> {
    Ok(StoredObject {
        kind: r.get(0)?,
        id: get(r, 1)?,
        parent: get_opt(r, 2)?,
        status: r.get(3)?,
        body: json(r, 4)?,
        created_at: time(r.get(5)?),
        updated_at: time(r.get(6)?),
    })
}

impl SqliteStore {
    /// Upserts (`replace`) or inserts only if absent; true when a row was written.
    async fn write_object(&self, cx: TenantCtx, o: &StoredObject, replace: bool) -> Result<bool> {
        let o = o.clone();
        let on_conflict = if replace {
            "DO UPDATE SET parent = excluded.parent, status = excluded.status, body = excluded.body, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        self.db
            .write("put object", move |tx| {
                Ok(tx.prepare_cached(&format!(
                    "INSERT INTO objects (tenant_id, kind, id, parent, status, body, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (tenant_id, kind, id) {on_conflict}"
                ))?
                .execute(params![
                    cx.tenant_id.to_string(),
                    o.kind,
                    o.id.to_string(),
                    o.parent.map(|p| p.to_string()),
                    o.status,
                    o.body.to_string(),
                    micros(o.created_at),
                    micros(o.updated_at)
                ])? > 0)
            })
            .await
    }
}

#[async_trait]
impl ObjectStore for SqliteStore {
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
        let kind = kind.to_owned();
        self.db
            .read("get object", move |c| {
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLS} FROM objects WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3"
                ))?
                .query_row(params![cx.tenant_id.to_string(), kind, id.to_string()], row)
                .optional()?)
            })
            .await
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
        let (kind, status) = (kind.to_owned(), status.map(str::to_owned));
        self.db
            .read("list objects", move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLS} FROM objects WHERE tenant_id = ?1 AND kind = ?2
                       AND (?3 IS NULL OR parent = ?3) AND (?4 IS NULL OR status = ?4)
                     ORDER BY id DESC LIMIT ?5 OFFSET ?6"
                ))?;
                let rows = st.query_map(
                    params![
                        cx.tenant_id.to_string(),
                        kind,
                        parent.map(|p| p.to_string()),
                        status,
                        limit,
                        offset
                    ],
                    row,
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn objects_everywhere(
        &self,
        kind: &str,
        status: &str,
        limit: u32,
    ) -> Result<Vec<(TenantId, StoredObject)>> {
        let (kind, status) = (kind.to_owned(), status.to_owned());
        self.db
            .read("objects everywhere", move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLS}, tenant_id FROM objects WHERE kind = ?1 AND status = ?2 ORDER BY id LIMIT ?3"
                ))?;
                let rows = st.query_map(params![kind, status, limit], |r| Ok((get(r, 7)?, row(r)?)))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn delete_object(&self, cx: TenantCtx, kind: &str, id: Uuid) -> Result<bool> {
        let kind = kind.to_owned();
        self.db
            .write("delete object", move |tx| {
                Ok(tx.execute(
                    "DELETE FROM objects WHERE tenant_id = ?1 AND kind = ?2 AND id = ?3",
                    params![cx.tenant_id.to_string(), kind, id.to_string()],
                )? == 1)
            })
            .await
    }
}
