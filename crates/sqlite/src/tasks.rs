//! Tasks, their lifecycle and their events on SQLite (with the embedded queue, a task's job
//! is inserted in the task's own transaction).

use crate::convert::{get, get_opt, json, json_opt, json_text, micros, time};
use crate::db::Res;
use crate::queue::insert_job;
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::entities::*;
use morningai_core::events::{NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::queue::NewJob;
use morningai_core::{Error, Priority, Result, TaskId, TaskStore, TenantCtx, TenantId, now};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

const TASK_COLS: &str = "id, kind, status, priority, project_id, trace_id, input, result, error,
    idempotency_key, created_by, created_at, updated_at";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: get(r, 0)?,
        kind: r.get(1)?,
        status: get(r, 2)?,
        priority: Priority::new(r.get(3)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Integer, e.into())
        })?,
        project_id: get_opt(r, 4)?,
        trace_id: r.get(5)?,
        input: json(r, 6)?,
        result: json_opt(r, 7)?,
        error: r.get(8)?,
        idempotency_key: r.get(9)?,
        created_by: get_opt(r, 10)?,
        created_at: time(r.get(11)?),
        updated_at: time(r.get(12)?),
    })
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskEvent> {
    Ok(TaskEvent {
        id: r.get(0)?,
        tenant_id: get(r, 1)?,
        task_id: get(r, 2)?,
        kind: get(r, 3)?,
        data: json(r, 4)?,
        at: time(r.get(5)?),
    })
}

pub(crate) fn insert_event(tx: &Connection, tenant: TenantId, e: &NewTaskEvent) -> Res<TaskEvent> {
    let at = now();
    let mut st = tx.prepare_cached(
        "INSERT INTO task_events (tenant_id, task_id, kind, data, at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
    let id = st.query_row(
        params![
            tenant.to_string(),
            e.task_id.to_string(),
            e.kind.as_str(),
            json_text(&e.data),
            micros(at)
        ],
        |r| r.get(0),
    )?;
    Ok(TaskEvent {
        id,
        tenant_id: tenant,
        task_id: e.task_id,
        kind: e.kind,
        data: e.data.clone(),
        at,
    })
}

#[async_trait]
impl TaskStore for SqliteStore {
    async fn create_task(&self, cx: TenantCtx, t: NewTask) -> Result<TaskCreated> {
        let jobs_in_db = self.jobs_in_db;
        let created = self.write("create task", move |tx| {
            let tenant = cx.tenant_id.to_string();
            if let Some(key) = &t.idempotency_key {
                let mut st = tx.prepare_cached(&format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND idempotency_key = ?2"
                ))?;
                if let Some(existing) = st.query_row(params![tenant, key], task_row).optional()? {
                    return Ok(TaskCreated::Existing(existing));
                }
            }
            if let Some(p) = t.project_id {
                let found: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM projects WHERE tenant_id = ?1 AND id = ?2)",
                    params![tenant, p.to_string()],
                    |r| r.get(0),
                )?;
                if !found {
                    return Err(Error::invalid("project_id", "no such project in this tenant").into());
                }
            }
            let at = now();
            let task = t.queued(at);
            let mut st = tx.prepare_cached(
                "INSERT INTO tasks (id, tenant_id, project_id, kind, status, priority, trace_id, input,
                                    idempotency_key, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?;
            st.execute(params![
                task.id.to_string(),
                tenant,
                task.project_id.map(|p| p.to_string()),
                task.kind,
                i64::from(task.priority),
                task.trace_id,
                json_text(&task.input),
                task.idempotency_key,
                task.created_by.map(|u| u.to_string()),
                micros(at)
            ])?;
            let event = insert_event(
                tx,
                cx.tenant_id,
                &NewTaskEvent { task_id: task.id, kind: TaskEventKind::Queued, data: task.queued_event_data() },
            )?;
            if jobs_in_db {
                insert_job(tx, &NewJob::for_task(cx.tenant_id, &task), at)?;
            }
            Ok(TaskCreated::New(task, event))
        })
        .await?;
        if jobs_in_db && matches!(created, TaskCreated::New(..)) {
            self.db.work().notify_one();
        }
        Ok(created)
    }

    async fn task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.read("get task", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            st.query_row(params![cx.tenant_id.to_string(), id.to_string()], task_row)
                .optional()?
                .ok_or_else(|| Error::NotFound("task").into())
        })
        .await
    }

    async fn tasks(&self, cx: TenantCtx, f: &TaskFilter) -> Result<Vec<Task>> {
        let f = f.clone();
        self.read("list tasks", move |c| {
            let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![cx.tenant_id.to_string().into()];
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            };
            if let Some(s) = f.status {
                push("status =", s.as_str().to_owned().into());
            }
            if let Some(k) = f.kind {
                push("kind =", k.into());
            }
            if let Some(p) = f.project_id {
                push("project_id =", p.to_string().into());
            }
            if let Some(b) = f.before {
                push("id <", b.to_string().into());
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit));
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), task_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn cancel_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.write("cancel task", move |tx| {
            let args = params![cx.tenant_id.to_string(), id.to_string()];
            let task = tx
                .query_row(&format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND id = ?2"), args, task_row)
                .optional()?
                .ok_or(Error::NotFound("task"))?;
            if task.status.is_terminal() {
                return Err(Error::conflict(
                    "task_finished",
                    format!("the task has already finished ({})", task.status),
                )
                .into());
            }
            let at = now();
            tx.execute(
                "UPDATE tasks SET status = 'cancelled', updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![cx.tenant_id.to_string(), id.to_string(), micros(at)],
            )?;
            Ok(Task { status: TaskStatus::Cancelled, updated_at: at, ..task })
        })
        .await
    }

    async fn start_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        event_data: Value,
    ) -> Result<Option<(Task, TaskEvent)>> {
        self.write("start task", move |tx| {
            let task = tx
                .query_row(
                    &format!(
                        "UPDATE tasks SET status = 'running', updated_at = ?3
                         WHERE tenant_id = ?1 AND id = ?2 AND status IN ('queued', 'retrying', 'running')
                         RETURNING {TASK_COLS}"
                    ),
                    params![cx.tenant_id.to_string(), id.to_string(), micros(now())],
                    task_row,
                )
                .optional()?;
            let Some(task) = task else { return Ok(None) };
            let event = insert_event(tx, cx.tenant_id, &NewTaskEvent { task_id: id, kind: TaskEventKind::Started, data: event_data })?;
            Ok(Some((task, event)))
        })
        .await
    }

    async fn finish_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        o: TaskOutcome,
    ) -> Result<Option<TaskEvent>> {
        self.write("finish task", move |tx| {
            let n = tx.execute(
                "UPDATE tasks SET status = ?3, result = coalesce(?4, result), error = ?5, updated_at = ?6
                 WHERE tenant_id = ?1 AND id = ?2 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                params![
                    cx.tenant_id.to_string(),
                    id.to_string(),
                    o.status.as_str(),
                    o.result.as_ref().map(json_text),
                    o.error,
                    micros(now())
                ],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let e = NewTaskEvent { task_id: id, kind: o.status.event_kind(), data: o.event_data };
            Ok(Some(insert_event(tx, cx.tenant_id, &e)?))
        })
        .await
    }

    async fn reopen_task(&self, cx: TenantCtx, id: TaskId) -> Result<bool> {
        self.write("reopen task", move |tx| {
            Ok(tx.execute(
                "UPDATE tasks SET status = 'queued', error = NULL, updated_at = ?3
                 WHERE tenant_id = ?1 AND id = ?2 AND status = 'failed'",
                params![cx.tenant_id.to_string(), id.to_string(), micros(now())],
            )? == 1)
        })
        .await
    }

    async fn last_task_event_id(&self, cx: TenantCtx) -> Result<i64> {
        self.read("last task event", move |c| {
            Ok(c.query_row(
                "SELECT coalesce(max(id), 0) FROM task_events WHERE tenant_id = ?1",
                [cx.tenant_id.to_string()],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn task_event_bytes(&self, cx: TenantCtx) -> Result<u64> {
        self.read("task event bytes", move |c| {
            Ok(c.query_row(
                "SELECT coalesce(sum(length(data) + length(task_id) + length(kind) + 24), 0) FROM task_events WHERE tenant_id = ?1",
                [cx.tenant_id.to_string()],
                |r| r.get::<_, i64>(0),
            )? as u64)
        })
        .await
    }

    async fn append_task_event(&self, cx: TenantCtx, e: NewTaskEvent) -> Result<TaskEvent> {
        self.write("append task event", move |tx| {
            insert_event(tx, cx.tenant_id, &e)
        })
        .await
    }

    async fn task_events(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>> {
        self.read("read task events", move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, tenant_id, task_id, kind, data, at FROM task_events
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR task_id = ?2) AND id > ?3
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = st.query_map(
                params![
                    cx.tenant_id.to_string(),
                    task.map(|t| t.to_string()),
                    after,
                    limit
                ],
                event_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn unfinished_tasks(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Task)>> {
        self.read("unfinished tasks", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TASK_COLS}, tenant_id FROM tasks
                 WHERE status IN ('queued', 'running', 'retrying') AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2"
            ))?;
            let rows = st.query_map(params![micros(before), limit], |r| {
                Ok((get(r, 13)?, task_row(r)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
