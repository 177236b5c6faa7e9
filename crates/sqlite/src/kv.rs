//! LangGraph's long-term store on SQLite.

use crate::convert::{json, micros, time};
use crate::memory::{floats, to_blob};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::kv::{KeyValueStore, KvItem, decode_namespace, encode_namespace, prefix_end};
use morningai_core::{Result, TenantCtx};
use rusqlite::params;

const COLS: &str =
    "namespace, key, value, created_at, updated_at, ttl_minutes, expires_at, embedding";
const LIVE: &str = "(expires_at IS NULL OR expires_at > ?2)";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<KvItem> {
    Ok(KvItem {
        namespace: decode_namespace(&r.get::<_, String>(0)?),
        key: r.get(1)?,
        value: json(r, 2)?,
        created_at: time(r.get(3)?),
        updated_at: time(r.get(4)?),
        ttl_minutes: r.get(5)?,
        expires_at: r.get::<_, Option<i64>>(6)?.map(time),
        embedding: r
            .get::<_, Option<Vec<u8>>>(7)?
            .map(|b| floats(&b).collect()),
    })
}

#[async_trait]
impl KeyValueStore for SqliteStore {
    async fn kv_put(&self, cx: TenantCtx, item: &KvItem) -> Result<()> {
        let i = item.clone();
        self.db
            .write("put store item", move |tx| {
                tx.prepare_cached(
                    "INSERT INTO kv_items (tenant_id, namespace, key, value, created_at, updated_at, ttl_minutes, expires_at, embedding)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET
                       value = excluded.value, updated_at = excluded.updated_at, ttl_minutes = excluded.ttl_minutes,
                       expires_at = excluded.expires_at, embedding = excluded.embedding,
                       created_at = CASE WHEN kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= excluded.updated_at
                                         THEN excluded.created_at ELSE kv_items.created_at END",
                )?
                .execute(params![
                    cx.tenant_id.to_string(),
                    encode_namespace(&i.namespace),
                    i.key,
                    i.value.to_string(),
                    micros(i.created_at),
                    micros(i.updated_at),
                    i.ttl_minutes,
                    i.expires_at.map(micros),
                    i.embedding.as_deref().map(to_blob),
                ])?;
                Ok(())
            })
            .await
    }

    async fn kv_get(
        &self,
        cx: TenantCtx,
        namespace: &[String],
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvItem>> {
        let (ns, key) = (encode_namespace(namespace), key.to_owned());
        self.db
            .read_now("get store item", move |c| {
                use rusqlite::OptionalExtension;
                Ok(c.prepare_cached(&format!(
                    "SELECT {COLS} FROM kv_items WHERE tenant_id = ?1 AND {LIVE} AND namespace = ?3 AND key = ?4"
                ))?
                .query_row(params![cx.tenant_id.to_string(), micros(now), ns, key], row)
                .optional()?)
            })
            .await
    }

    async fn kv_delete(&self, cx: TenantCtx, namespace: &[String], key: &str) -> Result<bool> {
        let (ns, key) = (encode_namespace(namespace), key.to_owned());
        self.db
            .write("delete store item", move |tx| {
                Ok(tx
                    .prepare_cached(
                        "DELETE FROM kv_items WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3",
                    )?
                    .execute(params![cx.tenant_id.to_string(), ns, key])?
                    > 0)
            })
            .await
    }

    async fn kv_scan(
        &self,
        cx: TenantCtx,
        prefix: &[String],
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<KvItem>> {
        let start = encode_namespace(prefix);
        let end = prefix_end(&start);
        self.db
            .read("scan store items", move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT {COLS} FROM kv_items WHERE tenant_id = ?1 AND {LIVE}
                       AND namespace >= ?3 AND namespace < ?4
                     ORDER BY updated_at DESC, namespace, key LIMIT ?5"
                ))?;
                let rows = stmt.query_map(
                    params![cx.tenant_id.to_string(), micros(now), start, end, limit],
                    row,
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn kv_namespaces(&self, cx: TenantCtx, now: DateTime<Utc>) -> Result<Vec<Vec<String>>> {
        self.db
            .read("list store namespaces", move |c| {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT DISTINCT namespace FROM kv_items WHERE tenant_id = ?1 AND {LIVE} ORDER BY namespace"
                ))?;
                let rows = stmt.query_map(params![cx.tenant_id.to_string(), micros(now)], |r| {
                    Ok(decode_namespace(&r.get::<_, String>(0)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn kv_refresh(
        &self,
        cx: TenantCtx,
        items: &[(Vec<String>, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let items: Vec<(String, String)> = items
            .iter()
            .map(|(ns, k)| (encode_namespace(ns), k.clone()))
            .collect();
        if items.is_empty() {
            return Ok(());
        }
        self.db
            .write("refresh store items", move |tx| {
                let mut stmt = tx.prepare_cached(
                    "UPDATE kv_items SET expires_at = ?4 + CAST(ttl_minutes * 60000000 AS INTEGER)
                     WHERE tenant_id = ?1 AND namespace = ?2 AND key = ?3 AND ttl_minutes IS NOT NULL",
                )?;
                for (ns, key) in &items {
                    stmt.execute(params![cx.tenant_id.to_string(), ns, key, micros(now)])?;
                }
                Ok(())
            })
            .await
    }
}
