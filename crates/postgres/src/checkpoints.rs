//! The `Checkpointer` port on PostgreSQL, tenant-scoped under row-level security.

use crate::store::PgStore;
use crate::tx::{Tx, db_err, one_shot};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::checkpoint::{Checkpoint, Checkpointer};
use morningai_core::{Error, Result, TenantCtx};
use serde_json::Value;
use std::collections::BTreeMap;
use uuid::Uuid;

fn encode(c: &Checkpoint) -> Result<Value> {
    serde_json::to_value(c).map_err(|e| Error::internal("encode checkpoint", e))
}

#[async_trait]
impl Checkpointer for PgStore {
    async fn put(&self, cx: TenantCtx, c: &Checkpoint) -> Result<()> {
        one_shot(
            self.pool(),
            Some(cx),
            "put checkpoint",
            "INSERT INTO checkpoints (tenant_id, thread_id, id, parent_id, step, body, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (tenant_id, thread_id, id) DO UPDATE SET body = excluded.body",
            &[
                &cx.tenant_id.0,
                &c.thread_id,
                &c.id,
                &c.parent_id,
                &c.step,
                &encode(c)?,
                &c.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn put_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
        writes: &[(String, Value)],
    ) -> Result<()> {
        // One statement for the batch; ON CONFLICT may touch a row once per statement, so
        // equal keys are folded first (the last wins).
        let mut last: BTreeMap<&str, &Value> = BTreeMap::new();
        for (task, value) in writes {
            last.insert(task, value);
        }
        let (tasks, values): (Vec<&str>, Vec<&Value>) = last.into_iter().unzip();
        one_shot(
            self.pool(),
            Some(cx),
            "put pending writes",
            "INSERT INTO checkpoint_writes (tenant_id, thread_id, checkpoint_id, task, value)
             SELECT $1, $2, $3, w.task, w.value FROM unnest($4::text[], $5::jsonb[]) AS w(task, value)
             ON CONFLICT (tenant_id, thread_id, checkpoint_id, task) DO UPDATE SET value = excluded.value",
            &[&cx.tenant_id.0, &thread, &checkpoint_id, &tasks, &values],
        )
        .await?;
        Ok(())
    }

    async fn pending_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
    ) -> Result<Vec<(String, Value)>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "pending writes",
            "SELECT task, value FROM checkpoint_writes WHERE tenant_id = $1 AND thread_id = $2 AND checkpoint_id = $3 ORDER BY task",
            &[&cx.tenant_id.0, &thread, &checkpoint_id],
        )
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn thread_checkpoints(&self, cx: TenantCtx, thread: &str) -> Result<Vec<Checkpoint>> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "thread checkpoints",
            "SELECT body FROM checkpoints WHERE tenant_id = $1 AND thread_id = $2 ORDER BY id",
            &[&cx.tenant_id.0, &thread],
        )
        .await?;
        rows.iter()
            .map(|r| {
                serde_json::from_value(r.get(0))
                    .map_err(|e| Error::internal("decode checkpoint", e))
            })
            .collect()
    }

    async fn compact(&self, cx: TenantCtx, thread: &str, snapshot: &Checkpoint) -> Result<u64> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&cx.tenant_id.0, &thread, &snapshot.id];
        let n = tx
            .execute(
                "DELETE FROM checkpoints WHERE tenant_id = $1 AND thread_id = $2 AND id < $3",
                &args,
            )
            .await
            .map_err(db_err("compact checkpoints"))?;
        tx.execute("DELETE FROM checkpoint_writes WHERE tenant_id = $1 AND thread_id = $2 AND checkpoint_id < $3", &args)
            .await
            .map_err(db_err("compact pending writes"))?;
        tx.execute(
            "UPDATE checkpoints SET body = $4, parent_id = NULL WHERE tenant_id = $1 AND thread_id = $2 AND id = $3",
            &[&cx.tenant_id.0, &thread, &snapshot.id, &encode(snapshot)?],
        )
        .await
        .map_err(db_err("write snapshot"))?;
        tx.commit().await?;
        Ok(n)
    }

    async fn delete_thread(&self, cx: TenantCtx, thread: &str) -> Result<u64> {
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        tx.execute(
            "DELETE FROM checkpoint_writes WHERE tenant_id = $1 AND thread_id = $2",
            &[&cx.tenant_id.0, &thread],
        )
        .await
        .map_err(db_err("delete pending writes"))?;
        let n = tx
            .execute(
                "DELETE FROM checkpoints WHERE tenant_id = $1 AND thread_id = $2",
                &[&cx.tenant_id.0, &thread],
            )
            .await
            .map_err(db_err("delete checkpoints"))?;
        tx.commit().await?;
        Ok(n)
    }

    async fn expire(&self, cx: TenantCtx, before: DateTime<Utc>) -> Result<u64> {
        let stale = "SELECT thread_id FROM checkpoints WHERE tenant_id = $1 GROUP BY thread_id HAVING max(created_at) < $2";
        let tx = Tx::begin(self.pool(), Some(cx)).await?;
        tx.execute(
            &format!(
                "DELETE FROM checkpoint_writes WHERE tenant_id = $1 AND thread_id IN ({stale})"
            ),
            &[&cx.tenant_id.0, &before],
        )
        .await
        .map_err(db_err("expire pending writes"))?;
        let n = tx
            .execute(
                &format!("DELETE FROM checkpoints WHERE tenant_id = $1 AND thread_id IN ({stale})"),
                &[&cx.tenant_id.0, &before],
            )
            .await
            .map_err(db_err("expire checkpoints"))?;
        tx.commit().await?;
        Ok(n)
    }

    async fn stored_bytes(&self, cx: TenantCtx, thread: Option<&str>) -> Result<u64> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "stored bytes",
            "SELECT coalesce(sum(pg_column_size(c.*)), 0)::bigint FROM checkpoints c WHERE tenant_id = $1 AND ($2::text IS NULL OR thread_id = $2)",
            &[&cx.tenant_id.0, &thread],
        )
        .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }
}
