//! Workflow documents on SQLite.

use crate::convert::{get, get_opt, json, micros, time};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::objects::{ObjectQuery, StoredObject};
use morningai_core::{Error, ObjectStore, Result, TenantCtx, TenantId};
use rusqlite::{OptionalExtension, params};
use uuid::Uuid;

const COLS: &str = "kind, id, parent, status, body, due_at, created_at, updated_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredObject> {
    Ok(StoredObject {
        kind: r.get(0)?,
        id: get(r, 1)?,
        parent: get_opt(r, 2)?,
        status: r.get(3)?,
        body: json(r, 4)?,
        due_at: r.get::<_, Option<i64>>(5)?.map(time),
        created_at: time(r.get(6)?),
        updated_at: time(r.get(7)?),
    })
}

/// `["metadata", "k"]` → `$."metadata"."k"` (quoted, so keys may hold dots).
fn json_path(path: &[String]) -> Result<String> {
    let mut out = String::from("$");
    for key in path {
        if key.contains('"') {
            return Err(Error::invalid(
                "fields",
                format!("key {key:?} contains '\"'"),
            ));
        }
        out.push_str(&format!(".\"{key}\""));
    }
    Ok(out)
}

impl SqliteStore {
    /// Upserts (`replace`) or inserts only if absent; true when a row was written.
    async fn write_object(&self, cx: TenantCtx, o: &StoredObject, replace: bool) -> Result<bool> {
        let o = o.clone();
        let on_conflict = if replace {
            "DO UPDATE SET parent = excluded.parent, status = excluded.status, body = excluded.body,
               due_at = excluded.due_at, updated_at = excluded.updated_at"
        } else {
            "DO NOTHING"
        };
        self.db
            .write("put object", move |tx| {
                Ok(tx.prepare_cached(&format!(
                    "INSERT INTO objects (tenant_id, kind, id, parent, status, body, due_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant_id, kind, id) {on_conflict}"
                ))?
                .execute(params![
                    cx.tenant_id.to_string(),
                    o.kind,
                    o.id.to_string(),
                    o.parent.map(|p| p.to_string()),
                    o.status,
                    o.body.to_string(),
                    o.due_at.map(micros),
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
        query: &ObjectQuery,
    ) -> Result<Vec<StoredObject>> {
        let fields = query
            .fields
            .iter()
            .map(|(path, value)| Ok((json_path(path)?, value.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let mut sql = format!(
            "SELECT {COLS} FROM objects WHERE tenant_id = ?1 AND kind = ?2
               AND (?3 IS NULL OR parent = ?3) AND (?4 IS NULL OR status = ?4)"
        );
        for i in 0..fields.len() {
            let (p, v) = (7 + 2 * i, 8 + 2 * i);
            sql.push_str(&format!(
                " AND json_extract(body, ?{p}) IS json_extract(?{v}, '$')"
            ));
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?5 OFFSET ?6");
        let mut args: Vec<rusqlite::types::Value> = vec![
            cx.tenant_id.to_string().into(),
            kind.to_owned().into(),
            query.parent.map(|p| p.to_string()).into(),
            query.status.clone().into(),
            i64::from(query.limit).into(),
            i64::from(query.offset).into(),
        ];
        for (path, value) in fields {
            args.push(path.into());
            args.push(value.into());
        }
        self.db
            .read("list objects", move |c| {
                let mut st = c.prepare_cached(&sql)?;
                let rows = st.query_map(rusqlite::params_from_iter(args), row)?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn due_objects(
        &self,
        kind: &str,
        status: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, StoredObject)>> {
        let (kind, status) = (kind.to_owned(), status.to_owned());
        self.db
            .read("due objects", move |c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLS}, tenant_id FROM objects
                     WHERE kind = ?1 AND status = ?2 AND due_at IS NOT NULL AND due_at <= ?3
                     ORDER BY due_at LIMIT ?4"
                ))?;
                let rows = st.query_map(params![kind, status, micros(now), limit], |r| {
                    Ok((get(r, 8)?, row(r)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn tenants_with_objects(&self, kind: &str) -> Result<Vec<TenantId>> {
        let kind = kind.to_owned();
        self.db
            .read("tenants with objects", move |c| {
                let mut st =
                    c.prepare_cached("SELECT DISTINCT tenant_id FROM objects WHERE kind = ?1")?;
                let rows = st.query_map(params![kind], |r| get(r, 0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn object_tenant(&self, kind: &str, id: Uuid) -> Result<Option<TenantId>> {
        let kind = kind.to_owned();
        self.db
            .read("object tenant", move |c| {
                let mut st = c.prepare_cached(
                    "SELECT tenant_id FROM objects WHERE kind = ?1 AND id = ?2 LIMIT 1",
                )?;
                Ok(st
                    .query_row(params![kind, id.to_string()], |r| get(r, 0))
                    .optional()?)
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
