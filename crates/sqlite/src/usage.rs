//! Model usage on SQLite.

use crate::convert::micros;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::usage::{UsageGroup, UsageLedger, UsageRecord, UsageRow, UsageTotals};
use morningai_core::{Result, TenantCtx};
use rusqlite::params;

#[async_trait]
impl UsageLedger for SqliteStore {
    async fn record_usage(&self, cx: TenantCtx, r: &UsageRecord) -> Result<()> {
        let r = r.clone();
        self.db
            .write("record model usage", move |tx| {
                tx.prepare_cached(
                    "INSERT INTO model_usage (tenant_id, at, task_id, provider, model, prompt_tokens, completion_tokens, cost_nanousd)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    cx.tenant_id.to_string(),
                    micros(r.at),
                    r.task_id.map(|t| t.to_string()),
                    r.provider,
                    r.model,
                    r.usage.prompt_tokens as i64,
                    r.usage.completion_tokens as i64,
                    r.cost_nanousd
                ])?;
                Ok(())
            })
            .await
    }

    async fn usage_since(&self, cx: TenantCtx, since: DateTime<Utc>) -> Result<UsageTotals> {
        self.db
            .read_now("sum model usage", move |c| {
                Ok(c.prepare_cached(
                    "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0), coalesce(sum(cost_nanousd), 0)
                     FROM model_usage WHERE tenant_id = ?1 AND at >= ?2",
                )?
                .query_row(params![cx.tenant_id.to_string(), micros(since)], |r| {
                    Ok(UsageTotals {
                        tokens: r.get::<_, i64>(0)? as u64,
                        cost_nanousd: r.get(1)?,
                    })
                })?)
            })
            .await
    }

    async fn usage_report(
        &self,
        cx: TenantCtx,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>> {
        let key = match group {
            UsageGroup::Day => "strftime('%Y-%m-%d', at / 1000000, 'unixepoch')",
            UsageGroup::Model => "model",
            UsageGroup::Task => "coalesce(task_id, '')",
        };
        let sql = format!(
            "SELECT {key} AS k, count(*), sum(prompt_tokens), sum(completion_tokens),
                    coalesce(sum(cost_nanousd), 0), sum(cost_nanousd IS NULL)
             FROM model_usage WHERE tenant_id = ?1 AND at >= ?2 AND at < ?3
             GROUP BY k ORDER BY k"
        );
        self.db
            .read("report model usage", move |c| {
                let mut stmt = c.prepare_cached(&sql)?;
                let rows = stmt.query_map(
                    params![cx.tenant_id.to_string(), micros(from), micros(to)],
                    |r| {
                        Ok(UsageRow {
                            key: r.get(0)?,
                            calls: r.get::<_, i64>(1)? as u64,
                            prompt_tokens: r.get::<_, i64>(2)? as u64,
                            completion_tokens: r.get::<_, i64>(3)? as u64,
                            cost_nanousd: r.get(4)?,
                            unpriced_calls: r.get::<_, i64>(5)? as u64,
                        })
                    },
                )?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }
}
