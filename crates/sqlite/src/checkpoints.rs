//! The `Checkpointer` port on SQLite (same file as everything else).

use crate::convert::micros;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::checkpoint::{Checkpoint, Checkpointer};
use morningai_core::{Error, Result, TenantCtx};
use rusqlite::params;
use serde_json::Value;
use uuid::Uuid;

fn encode(c: &Checkpoint) -> Result<String> {
    serde_json::to_string(c).map_err(|e| Error::internal("encode checkpoint", e))
}

#[async_trait]
impl Checkpointer for SqliteStore {
    async fn put(&self, cx: TenantCtx, c: &Checkpoint) -> Result<()> {
        let body = encode(c)?;
        let (thread, id, parent, step, at) = (
            c.thread_id.clone(),
            c.id.to_string(),
            c.parent_id.map(|p| p.to_string()),
            c.step,
            micros(c.created_at),
        );
        self.db
            .write("put checkpoint", move |tx| {
                tx.prepare_cached(
                    "INSERT INTO checkpoints (tenant_id, thread_id, id, parent_id, step, body, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (tenant_id, thread_id, id) DO UPDATE SET body = excluded.body",
                )?
                .execute(params![cx.tenant_id.to_string(), thread, id, parent, step, body, at])?;
                Ok(())
            })
            .await
    }

    async fn put_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
        writes: &[(String, Value)],
    ) -> Result<()> {
        let (thread, checkpoint) = (thread.to_owned(), checkpoint_id.to_string());
        let writes: Vec<(String, String)> = writes
            .iter()
            .map(|(t, v)| (t.clone(), v.to_string()))
            .collect();
        self.db
            .write("put pending writes", move |tx| {
                let mut st = tx.prepare_cached(
                    "INSERT INTO checkpoint_writes (tenant_id, thread_id, checkpoint_id, task, value) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (tenant_id, thread_id, checkpoint_id, task) DO UPDATE SET value = excluded.value",
                )?;
                let tenant = cx.tenant_id.to_string();
                for (task, value) in writes {
                    st.execute(params![tenant, thread, checkpoint, task, value])?;
                }
                Ok(())
            })
            .await
    }

    async fn pending_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
    ) -> Result<Vec<(String, Value)>> {
        let thread = thread.to_owned();
        self.db
            .read_now("pending writes", move |c| {
                let mut st = c.prepare_cached(
                    "SELECT task, value FROM checkpoint_writes WHERE tenant_id = ?1 AND thread_id = ?2 AND checkpoint_id = ?3 ORDER BY task",
                )?;
                let rows = st.query_map(params![cx.tenant_id.to_string(), thread, checkpoint_id.to_string()], |r| {
                    Ok((r.get::<_, String>(0)?, crate::convert::json(r, 1)?))
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn thread_checkpoints(&self, cx: TenantCtx, thread: &str) -> Result<Vec<Checkpoint>> {
        let thread = thread.to_owned();
        let bodies = self
            .db
            .read_now("thread checkpoints", move |c| {
                let mut st = c.prepare_cached("SELECT body FROM checkpoints WHERE tenant_id = ?1 AND thread_id = ?2 ORDER BY id")?;
                let rows = st.query_map(params![cx.tenant_id.to_string(), thread], |r| r.get::<_, String>(0))?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await?;
        bodies
            .iter()
            .map(|b| serde_json::from_str(b).map_err(|e| Error::internal("decode checkpoint", e)))
            .collect()
    }

    async fn compact(&self, cx: TenantCtx, thread: &str, snapshot: &Checkpoint) -> Result<u64> {
        let body = encode(snapshot)?;
        let (thread, id) = (thread.to_owned(), snapshot.id.to_string());
        self.db
            .write_queued("compact checkpoints", move |tx| {
                let t = cx.tenant_id.to_string();
                let n = tx.execute("DELETE FROM checkpoints WHERE tenant_id = ?1 AND thread_id = ?2 AND id < ?3", params![t, thread, id])?;
                tx.execute(
                    "DELETE FROM checkpoint_writes WHERE tenant_id = ?1 AND thread_id = ?2 AND checkpoint_id < ?3",
                    params![t, thread, id],
                )?;
                tx.execute(
                    "UPDATE checkpoints SET body = ?4, parent_id = NULL WHERE tenant_id = ?1 AND thread_id = ?2 AND id = ?3",
                    params![t, thread, id, body],
                )?;
                Ok(n as u64)
            })
            .await
    }

    async fn delete_thread(&self, cx: TenantCtx, thread: &str) -> Result<u64> {
        let thread = thread.to_owned();
        self.db
            .write_queued("delete thread checkpoints", move |tx| {
                let t = cx.tenant_id.to_string();
                tx.execute(
                    "DELETE FROM checkpoint_writes WHERE tenant_id = ?1 AND thread_id = ?2",
                    params![t, thread],
                )?;
                Ok(tx.execute(
                    "DELETE FROM checkpoints WHERE tenant_id = ?1 AND thread_id = ?2",
                    params![t, thread],
                )? as u64)
            })
            .await
    }

    async fn expire(&self, cx: TenantCtx, before: DateTime<Utc>) -> Result<u64> {
        self.db
            .write_queued("expire checkpoints", move |tx| {
                let t = cx.tenant_id.to_string();
                let stale = "SELECT thread_id FROM checkpoints WHERE tenant_id = ?1 GROUP BY thread_id HAVING max(created_at) < ?2";
                tx.execute(&format!("DELETE FROM checkpoint_writes WHERE tenant_id = ?1 AND thread_id IN ({stale})"), params![t, micros(before)])?;
                Ok(tx.execute(&format!("DELETE FROM checkpoints WHERE tenant_id = ?1 AND thread_id IN ({stale})"), params![t, micros(before)])? as u64)
            })
            .await
    }

    async fn stored_bytes(&self, cx: TenantCtx, thread: Option<&str>) -> Result<u64> {
        let thread = thread.map(str::to_owned);
        self.db
            .read("stored bytes", move |c| {
                Ok(c.query_row(
                    "SELECT coalesce(sum(length(body) + length(id) + length(thread_id) + 24), 0) FROM checkpoints WHERE tenant_id = ?1 AND (?2 IS NULL OR thread_id = ?2)",
                    params![cx.tenant_id.to_string(), thread],
                    |r| r.get::<_, i64>(0),
                )? as u64)
            })
            .await
    }
}
