//! Cron schedules on SQLite.

use crate::convert::{get, get_opt, json, json_text, micros, time};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::schedules::Schedule;
use morningai_core::{Error, Priority, Result, ScheduleStore, TenantCtx};
use rusqlite::params;
use uuid::Uuid;

const SCHEDULE_COLS: &str = "id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at";

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: get(r, 0)?,
        tenant_id: get(r, 1)?,
        name: r.get(2)?,
        cron: r.get(3)?,
        timezone: r.get(4)?,
        kind: r.get(5)?,
        input: json(r, 6)?,
        priority: Priority::new(r.get(7)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Integer, e.into())
        })?,
        next_run_at: time(r.get(8)?),
        created_by: get_opt(r, 9)?,
        created_at: time(r.get(10)?),
    })
}

#[async_trait]
impl ScheduleStore for SqliteStore {
    async fn create_schedule(&self, cx: TenantCtx, s: Schedule) -> Result<Schedule> {
        self.write("create schedule", move |tx| {
            tx.execute(
                "INSERT INTO schedules (id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s.id.to_string(),
                    cx.tenant_id.to_string(),
                    s.name,
                    s.cron,
                    s.timezone,
                    s.kind,
                    json_text(&s.input),
                    i64::from(s.priority),
                    micros(s.next_run_at),
                    s.created_by.map(|u| u.to_string()),
                    micros(s.created_at)
                ],
            )?;
            Ok(Schedule { tenant_id: cx.tenant_id, ..s })
        })
        .await
    }

    async fn schedules(&self, cx: TenantCtx) -> Result<Vec<Schedule>> {
        self.read("list schedules", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([cx.tenant_id.to_string()], schedule_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn delete_schedule(&self, cx: TenantCtx, id: Uuid) -> Result<()> {
        self.write("delete schedule", move |tx| {
            let n = tx.execute(
                "DELETE FROM schedules WHERE tenant_id = ?1 AND id = ?2",
                params![cx.tenant_id.to_string(), id.to_string()],
            )?;
            if n == 0 {
                return Err(Error::NotFound("schedule").into());
            }
            Ok(())
        })
        .await
    }

    async fn due_schedules(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        self.read("due schedules", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLS} FROM schedules WHERE next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2"
            ))?;
            let rows = st.query_map(params![micros(at), limit], schedule_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn advance_schedule(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        self.write("advance schedule", move |tx| {
            let n = tx.execute(
                "UPDATE schedules SET next_run_at = ?3 WHERE id = ?1 AND next_run_at = ?2",
                params![id.to_string(), micros(from), micros(to)],
            )?;
            Ok(n == 1)
        })
        .await
    }
}
