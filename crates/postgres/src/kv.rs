//! LangGraph's long-term store on PostgreSQL (row-level security like every tenant table).

use crate::store::PgStore;
use crate::tx::one_shot;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::kv::{KeyValueStore, KvItem, decode_namespace, encode_namespace, prefix_end};
use morningai_core::{Result, TenantCtx};
use tokio_postgres::Row;

const COLS: &str =
    "namespace, key, value, created_at, updated_at, ttl_minutes, expires_at, embedding";
const LIVE: &str = "(expires_at IS NULL OR expires_at > $2)";

fn row(r: &Row) -> KvItem {
    KvItem {
        namespace: decode_namespace(r.get(0)),
        key: r.get(1),
        value: r.get(2),
        created_at: r.get(3),
        updated_at: r.get(4),
        ttl_minutes: r.get(5),
        expires_at: r.get(6),
        embedding: r.get(7),
    }
}

#[async_trait]
impl KeyValueStore for PgStore {
    async fn kv_put(&self, cx: TenantCtx, i: &KvItem) -> Result<()> {
        one_shot(
            self.pool(),
            Some(cx),
            "put store item",
            "INSERT INTO kv_items (tenant_id, namespace, key, value, created_at, updated_at, ttl_minutes, expires_at, embedding)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET
               value = excluded.value, updated_at = excluded.updated_at, ttl_minutes = excluded.ttl_minutes,
               expires_at = excluded.expires_at, embedding = excluded.embedding,
               created_at = CASE WHEN kv_items.expires_at IS NOT NULL AND kv_items.expires_at <= excluded.updated_at
                                 THEN excluded.created_at ELSE kv_items.created_at END",
            &[
                &cx.tenant_id.0,
                &encode_namespace(&i.namespace),
                &i.key,
                &i.value,
                &i.created_at,
                &i.updated_at,
                &i.ttl_minutes,
                &i.expires_at,
                &i.embedding,
            ],
        )
        .await?;
        Ok(())
    }

    async fn kv_get(
        &self,
        cx: TenantCtx,
        namespace: &[String],
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<KvItem>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "get store item",
            &format!("SELECT {COLS} FROM kv_items WHERE tenant_id = $1 AND {LIVE} AND namespace = $3 AND key = $4"),
            &[&cx.tenant_id.0, &now, &encode_namespace(namespace), &key],
        )
        .await?;
        Ok(rows.first().map(row))
    }

    async fn kv_delete(&self, cx: TenantCtx, namespace: &[String], key: &str) -> Result<bool> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "delete store item",
            "DELETE FROM kv_items WHERE tenant_id = $1 AND namespace = $2 AND key = $3 RETURNING key",
            &[&cx.tenant_id.0, &encode_namespace(namespace), &key],
        )
        .await?;
        Ok(!rows.is_empty())
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
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "scan store items",
            &format!(
                "SELECT {COLS} FROM kv_items WHERE tenant_id = $1 AND {LIVE}
                   AND namespace >= $3 AND namespace < $4
                 ORDER BY updated_at DESC, namespace, key LIMIT $5"
            ),
            &[&cx.tenant_id.0, &now, &start, &end, &i64::from(limit)],
        )
        .await?;
        Ok(rows.iter().map(row).collect())
    }

    async fn kv_namespaces(&self, cx: TenantCtx, now: DateTime<Utc>) -> Result<Vec<Vec<String>>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "list store namespaces",
            &format!("SELECT DISTINCT namespace FROM kv_items WHERE tenant_id = $1 AND {LIVE} ORDER BY namespace"),
            &[&cx.tenant_id.0, &now],
        )
        .await?;
        Ok(rows.iter().map(|r| decode_namespace(r.get(0))).collect())
    }

    async fn kv_refresh(
        &self,
        cx: TenantCtx,
        items: &[(Vec<String>, String)],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let (namespaces, keys): (Vec<String>, Vec<String>) = items
            .iter()
            .map(|(ns, k)| (encode_namespace(ns), k.clone()))
            .unzip();
        one_shot(
            self.pool(),
            Some(cx),
            "refresh store items",
            "UPDATE kv_items SET expires_at = $2::timestamptz + ttl_minutes * interval '1 minute'
             FROM unnest($3::text[], $4::text[]) AS t(namespace, key)
             WHERE kv_items.tenant_id = $1 AND kv_items.namespace = t.namespace AND kv_items.key = t.key
               AND ttl_minutes IS NOT NULL",
            &[&cx.tenant_id.0, &now, &namespaces, &keys],
        )
        .await?;
        Ok(())
    }
}
