//! Model usage on PostgreSQL (row-level security like every tenant table).

use crate::store::PgStore;
use crate::tx::one_shot;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::usage::{UsageGroup, UsageLedger, UsageRecord, UsageRow, UsageTotals};
use morningai_core::{Result, TenantCtx};

#[async_trait]
impl UsageLedger for PgStore {
    async fn record_usage(&self, cx: TenantCtx, r: &UsageRecord) -> Result<()> {
        one_shot(
            self.pool(),
            Some(cx),
            "record model usage",
            "INSERT INTO model_usage (tenant_id, at, task_id, provider, model, prompt_tokens, completion_tokens, cost_nanousd)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &cx.tenant_id.0,
                &r.at,
                &r.task_id.map(|t| t.0),
                &r.provider,
                &r.model,
                &(r.usage.prompt_tokens as i64),
                &(r.usage.completion_tokens as i64),
                &r.cost_nanousd,
            ],
        )
        .await?;
        Ok(())
    }

    async fn usage_since(&self, cx: TenantCtx, since: DateTime<Utc>) -> Result<UsageTotals> {
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "sum model usage",
            "SELECT coalesce(sum(prompt_tokens + completion_tokens), 0)::bigint, coalesce(sum(cost_nanousd), 0)::bigint
             FROM model_usage WHERE tenant_id = $1 AND at >= $2",
            &[&cx.tenant_id.0, &since],
        )
        .await?;
        let r = &rows[0];
        Ok(UsageTotals {
            tokens: r.get::<_, i64>(0) as u64,
            cost_nanousd: r.get(1),
        })
    }

    async fn usage_report(
        &self,
        cx: TenantCtx,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        group: UsageGroup,
    ) -> Result<Vec<UsageRow>> {
        let key = match group {
            UsageGroup::Day => "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
            UsageGroup::Model => "model",
            UsageGroup::Task => "coalesce(task_id::text, '')",
        };
        let rows = one_shot(
            self.pool(),
            Some(cx),
            "report model usage",
            &format!(
                "SELECT {key} AS k, count(*), sum(prompt_tokens)::bigint, sum(completion_tokens)::bigint,
                        coalesce(sum(cost_nanousd), 0)::bigint, count(*) FILTER (WHERE cost_nanousd IS NULL)
                 FROM model_usage WHERE tenant_id = $1 AND at >= $2 AND at < $3
                 GROUP BY k ORDER BY k"
            ),
            &[&cx.tenant_id.0, &from, &to],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| UsageRow {
                key: r.get(0),
                calls: r.get::<_, i64>(1) as u64,
                prompt_tokens: r.get::<_, i64>(2) as u64,
                completion_tokens: r.get::<_, i64>(3) as u64,
                cost_nanousd: r.get(4),
                unpriced_calls: r.get::<_, i64>(5) as u64,
            })
            .collect())
    }
}
