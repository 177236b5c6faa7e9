//! Cron schedules on PostgreSQL.

use crate::rows::{self, SCHEDULE_COLS};
use crate::store::PgStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::schedules::Schedule;
use morningai_core::{Error, Result, ScheduleStore, TenantCtx};
use uuid::Uuid;

#[async_trait]
impl ScheduleStore for PgStore {
    async fn create_schedule(&self, cx: TenantCtx, s: Schedule) -> Result<Schedule> {
        self.scoped(
            cx,
            "create schedule",
            "INSERT INTO schedules (id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &s.id,
                &cx.tenant_id.0,
                &s.name,
                &s.cron,
                &s.timezone,
                &s.kind,
                &s.input,
                &(s.priority.get() as i16),
                &s.next_run_at,
                &s.created_by.map(|u| u.0),
                &s.created_at,
            ],
        )
        .await?;
        Ok(Schedule {
            tenant_id: cx.tenant_id,
            ..s
        })
    }

    async fn schedules(&self, cx: TenantCtx) -> Result<Vec<Schedule>> {
        let rows = self
            .scoped(
                cx,
                "list schedules",
                &format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = $1 ORDER BY id"),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows::all(rows, rows::schedule)
    }

    async fn delete_schedule(&self, cx: TenantCtx, id: Uuid) -> Result<()> {
        let rows = self
            .scoped(
                cx,
                "delete schedule",
                "DELETE FROM schedules WHERE tenant_id = $1 AND id = $2 RETURNING id",
                &[&cx.tenant_id.0, &id],
            )
            .await?;
        if rows.is_empty() {
            Err(Error::NotFound("schedule"))
        } else {
            Ok(())
        }
    }

    async fn due_schedules(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        let rows = self
            .platform(
                "due schedules",
                &format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2"),
                &[&at, &i64::from(limit)],
            )
            .await?;
        rows::all(rows, rows::schedule)
    }

    async fn advance_schedule(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let rows = self
            .platform(
                "advance schedule",
                "UPDATE schedules SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2 RETURNING id",
                &[&id, &from, &to],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
