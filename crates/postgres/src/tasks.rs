//! Tasks, their lifecycle and their events on PostgreSQL.

use crate::rows::{self, EVENT_COLS, TASK_COLS};
use crate::store::PgStore;
use crate::tx::{Tx, db_err, one_shot_pair};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::coalesce::{Batch, Coalescer};
use morningai_core::entities::*;
use morningai_core::events::{NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::{Error, Result, TaskId, TaskStore, TenantCtx, TenantId, now};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// Stores a task event as the transaction's last statement, pipelined with its COMMIT. The
/// insert takes the tenant's event lock (migrations 11 and 14: ids in commit order), so it must
/// come last, and pipelining holds that lock for the server's commit alone.
async fn insert_event_and_commit(tx: Tx, tenant: TenantId, e: &NewTaskEvent) -> Result<TaskEvent> {
    let at = now();
    let rows = tx
        .commit_with(
            "insert task event",
            "INSERT INTO task_events (tenant_id, task_id, kind, data, at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&tenant.0, &e.task_id.0, &e.kind.as_str(), &e.data, &at],
        )
        .await?;
    let row = rows
        .first()
        .ok_or_else(|| Error::internal("insert task event", "no id returned"))?;
    Ok(TaskEvent {
        id: row.get(0),
        tenant_id: tenant,
        task_id: e.task_id,
        kind: e.kind,
        data: e.data.clone(),
        at,
    })
}

/// Task creations in flight per tenant: more would only queue on the pool (and on the
/// tenant's event lock, which each holds for its commit).
const CREATES_IN_FLIGHT: usize = 2;
/// Tasks per statement.
const CREATES_MOST: usize = 256;

/// A task to create, as stored, and its queued event's data.
pub(crate) type Creation = (Task, Value);

pub(crate) type TaskCreates = Coalescer<TenantCtx, PgStore, Creation, Result<TaskCreated>>;

pub(crate) fn task_creates() -> TaskCreates {
    Coalescer::new(CREATES_IN_FLIGHT, CREATES_MOST, run_creates)
}

fn run_creates(
    store: PgStore,
    cx: TenantCtx,
    batch: Batch<Creation, Result<TaskCreated>>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move { store.create_batch(cx, batch).await })
}

impl PgStore {
    /// Creates a batch of one tenant's tasks in one transaction. When it fails (a task
    /// names another tenant's project), each task is created on its own, so only the bad
    /// one fails and nothing is lost.
    async fn create_batch(&self, cx: TenantCtx, mut batch: Batch<Creation, Result<TaskCreated>>) {
        // Concurrent batches insert idempotency keys in one order: they wait on each
        // other's keys rather than deadlock.
        batch.sort_by(|a, b| a.0.0.idempotency_key.cmp(&b.0.0.idempotency_key));
        let creations: Vec<&Creation> = batch.iter().map(|(c, _)| c).collect();
        match self.insert_tasks(cx, &creations).await {
            Ok(events) => {
                let (creations, replies): (Vec<Creation>, Vec<_>) = batch.into_iter().unzip();
                let answers = self.answers(cx, creations, &events).await;
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) if batch.len() == 1 => {
                let (_, reply) = batch.remove(0);
                let _ = reply.send(Err(e));
            }
            Err(_) => {
                for (creation, reply) in batch {
                    let store = self.clone();
                    tokio::spawn(async move {
                        let _ = reply.send(store.create_alone(cx, creation).await);
                    });
                }
            }
        }
    }

    async fn create_alone(&self, cx: TenantCtx, creation: Creation) -> Result<TaskCreated> {
        let events = self.insert_tasks(cx, &[&creation]).await?;
        let mut answers = self.answers(cx, vec![creation], &events).await;
        answers.remove(0)
    }

    /// What each creation a statement ran gets: a new task with its event, or, when its
    /// idempotency key was taken, the task that holds the key (all such read in one
    /// statement).
    async fn answers(
        &self,
        cx: TenantCtx,
        creations: Vec<Creation>,
        events: &HashMap<TaskId, i64>,
    ) -> Vec<Result<TaskCreated>> {
        let taken: Vec<&str> = creations
            .iter()
            .filter(|(t, _)| !events.contains_key(&t.id))
            .filter_map(|(t, _)| t.idempotency_key.as_deref())
            .collect();
        let holders = if taken.is_empty() {
            Ok(HashMap::new())
        } else {
            self.tasks_by_keys(cx, &taken).await
        };
        creations
            .into_iter()
            .map(|(task, data)| match (events.get(&task.id), &holders) {
                (Some(&id), _) => Ok(created(cx, task, data, id)),
                (None, Ok(holders)) => task
                    .idempotency_key
                    .as_ref()
                    .and_then(|k| holders.get(k))
                    .map(|t| TaskCreated::Existing(t.clone()))
                    .ok_or_else(|| {
                        Error::internal("idempotent task", "conflicting task not visible")
                    }),
                (None, Err(e)) => Err(e.clone()),
            })
            .collect()
    }

    /// Inserts the tasks, then their queued events: two statements in one transaction,
    /// pipelined with BEGIN and COMMIT (one round trip). ON CONFLICT DO NOTHING keeps the
    /// first task under an idempotency key (in this batch or an earlier one); an event is
    /// stored only for a task inserted here. The events are a statement of their own, the
    /// last: it takes the tenant's event lock when it starts (migration 14), so the lock is
    /// never held while the task inserts wait on another transaction (a key's holder being
    /// updated by a worker that then waits for the same lock: a deadlock, seen in CI when
    /// both were one statement). Answers the event id of each task inserted.
    async fn insert_tasks(
        &self,
        cx: TenantCtx,
        creations: &[&Creation],
    ) -> Result<HashMap<TaskId, i64>> {
        let ids: Vec<Uuid> = creations.iter().map(|(t, _)| t.id.0).collect();
        let projects: Vec<Option<Uuid>> = creations
            .iter()
            .map(|(t, _)| t.project_id.map(|p| p.0))
            .collect();
        let kinds: Vec<&str> = creations.iter().map(|(t, _)| t.kind.as_str()).collect();
        let priorities: Vec<i16> = creations
            .iter()
            .map(|(t, _)| t.priority.get() as i16)
            .collect();
        let traces: Vec<&str> = creations.iter().map(|(t, _)| t.trace_id.as_str()).collect();
        let inputs: Vec<&Value> = creations.iter().map(|(t, _)| &t.input).collect();
        let keys: Vec<Option<&str>> = creations
            .iter()
            .map(|(t, _)| t.idempotency_key.as_deref())
            .collect();
        let creators: Vec<Option<Uuid>> = creations
            .iter()
            .map(|(t, _)| t.created_by.map(|u| u.0))
            .collect();
        let ats: Vec<DateTime<Utc>> = creations.iter().map(|(t, _)| t.created_at).collect();
        let events: Vec<&Value> = creations.iter().map(|(_, data)| data).collect();
        let keyed: Vec<bool> = keys.iter().map(Option::is_some).collect();
        let rows = one_shot_pair(
            &self.pool,
            Some(cx),
            (
                "INSERT INTO tasks (id, tenant_id, project_id, kind, status, priority, trace_id, input,
                                    idempotency_key, created_by, created_at, updated_at)
                 SELECT id, $1, project_id, kind, 'queued', priority, trace_id, input,
                        idempotency_key, created_by, at, at
                 FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int2[], $6::text[],
                             $7::jsonb[], $8::text[], $9::uuid[], $10::timestamptz[])
                     AS n (id, project_id, kind, priority, trace_id, input, idempotency_key,
                           created_by, at)
                 ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
                &[
                    &cx.tenant_id.0,
                    &ids,
                    &projects,
                    &kinds,
                    &priorities,
                    &traces,
                    &inputs,
                    &keys,
                    &creators,
                    &ats,
                ],
            ),
            // A task without an idempotency key was inserted (the statement would have
            // failed otherwise); one with a key was if it exists under its id (a fresh
            // UUID: a key conflict kept it out). Only those are looked up.
            (
                "INSERT INTO task_events (tenant_id, task_id, kind, data, at)
                 SELECT $1, n.id, 'queued', n.event, n.at
                 FROM unnest($2::uuid[], $3::jsonb[], $4::timestamptz[], $5::bool[])
                     AS n (id, event, at, keyed)
                 WHERE NOT n.keyed
                    OR EXISTS (SELECT 1 FROM tasks t WHERE t.tenant_id = $1 AND t.id = n.id)
                 RETURNING task_id, id",
                &[&cx.tenant_id.0, &ids, &events, &ats, &keyed],
            ),
            |e| {
                if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    Error::invalid("project_id", "no such project in this tenant")
                } else {
                    db_err("insert task")(e)
                }
            },
        )
        .await?;
        Ok(rows.iter().map(|r| (TaskId(r.get(0)), r.get(1))).collect())
    }

    /// The tasks that hold `keys`, by key.
    async fn tasks_by_keys(&self, cx: TenantCtx, keys: &[&str]) -> Result<HashMap<String, Task>> {
        let rows = self
            .scoped(
                cx,
                "read tasks by idempotency key",
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND idempotency_key = ANY($2)"
                ),
                &[&cx.tenant_id.0, &keys],
            )
            .await?;
        let mut holders = HashMap::new();
        for row in &rows {
            let task = rows::task(row)?;
            if let Some(key) = task.idempotency_key.clone() {
                holders.insert(key, task);
            }
        }
        Ok(holders)
    }
}

/// A task this store inserted, with its queued event.
fn created(cx: TenantCtx, task: Task, data: Value, event_id: i64) -> TaskCreated {
    let event = TaskEvent {
        id: event_id,
        tenant_id: cx.tenant_id,
        task_id: task.id,
        kind: TaskEventKind::Queued,
        data,
        at: task.created_at,
    };
    TaskCreated::New(task, event)
}

#[async_trait]
impl TaskStore for PgStore {
    async fn create_task(&self, cx: TenantCtx, t: NewTask) -> Result<TaskCreated> {
        let task = t.queued(now());
        let event_data = task.queued_event_data();
        self.creates
            .ask(self, cx, (task, event_data), "create task")
            .await?
    }

    async fn task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.coalesced_task(cx, id).await
    }

    async fn tasks(&self, cx: TenantCtx, f: &TaskFilter) -> Result<Vec<Task>> {
        // NULL parameters disable their filter, so one prepared statement serves every query.
        let rows = self
            .scoped(
                cx,
                "list tasks",
                &format!(
                    "SELECT {TASK_COLS} FROM tasks
                     WHERE tenant_id = $1
                       AND ($2::text IS NULL OR status = $2)
                       AND ($3::text IS NULL OR kind = $3)
                       AND ($4::uuid IS NULL OR project_id = $4)
                       AND ($5::uuid IS NULL OR id < $5)
                     ORDER BY id DESC LIMIT $6"
                ),
                &[
                    &cx.tenant_id.0,
                    &f.status.map(|s| s.as_str()),
                    &f.kind,
                    &f.project_id.map(|p| p.0),
                    &f.before.map(|b| b.0),
                    &i64::from(f.limit),
                ],
            )
            .await?;
        rows::all(rows, rows::task)
    }

    async fn cancel_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
                ),
                &[&cx.tenant_id.0, &id.0],
            )
            .await
            .map_err(db_err("get task"))?
            .ok_or(Error::NotFound("task"))?;
        let task = rows::task(&row)?;
        if task.status.is_terminal() {
            return Err(Error::conflict(
                "task_finished",
                format!("the task has already finished ({})", task.status),
            ));
        }
        let at = now();
        tx.execute("UPDATE tasks SET status = 'cancelled', updated_at = $3 WHERE tenant_id = $1 AND id = $2", &[&cx.tenant_id.0, &id.0, &at])
            .await
            .map_err(db_err("cancel task"))?;
        tx.commit().await?;
        Ok(Task {
            status: TaskStatus::Cancelled,
            updated_at: at,
            ..task
        })
    }

    async fn start_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        event_data: Value,
    ) -> Result<Option<(Task, TaskEvent)>> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE tasks SET status = 'running', updated_at = $3
                     WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'retrying', 'running')
                     RETURNING {TASK_COLS}"
                ),
                &[&cx.tenant_id.0, &id.0, &now()],
            )
            .await
            .map_err(db_err("start task"))?;
        let Some(row) = row else { return Ok(None) };
        let task = rows::task(&row)?;
        let event = insert_event_and_commit(
            tx,
            cx.tenant_id,
            &NewTaskEvent {
                task_id: id,
                kind: TaskEventKind::Started,
                data: event_data,
            },
        )
        .await?;
        Ok(Some((task, event)))
    }

    async fn finish_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        o: TaskOutcome,
    ) -> Result<Option<TaskEvent>> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let changed = tx
            .query_opt(
                "UPDATE tasks SET status = $3, result = coalesce($4, result), error = $5, updated_at = $6
                 WHERE tenant_id = $1 AND id = $2 AND status NOT IN ('succeeded', 'failed', 'cancelled')
                 RETURNING id",
                &[&cx.tenant_id.0, &id.0, &o.status.as_str(), &o.result, &o.error, &now()],
            )
            .await
            .map_err(db_err("finish task"))?;
        if changed.is_none() {
            return Ok(None);
        }
        let e = NewTaskEvent {
            task_id: id,
            kind: o.status.event_kind(),
            data: o.event_data,
        };
        let event = insert_event_and_commit(tx, cx.tenant_id, &e).await?;
        Ok(Some(event))
    }

    async fn reopen_task(&self, cx: TenantCtx, id: TaskId) -> Result<bool> {
        let rows = self
            .scoped(
                cx,
                "reopen task",
                "UPDATE tasks SET status = 'queued', error = NULL, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND status = 'failed' RETURNING id",
                &[&cx.tenant_id.0, &id.0, &now()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn last_task_event_id(&self, cx: TenantCtx) -> Result<i64> {
        let rows = self
            .scoped(
                cx,
                "last task event",
                "SELECT coalesce(max(id), 0)::bigint FROM task_events WHERE tenant_id = $1",
                &[&cx.tenant_id.0],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    async fn task_event_bytes(&self, cx: TenantCtx) -> Result<u64> {
        let rows = self
            .scoped(
                cx,
                "task event bytes",
                "SELECT coalesce(sum(pg_column_size(e.*)), 0)::bigint FROM task_events e WHERE tenant_id = $1",
                &[&cx.tenant_id.0],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get::<_, i64>(0)) as u64)
    }

    async fn append_task_event(&self, cx: TenantCtx, e: NewTaskEvent) -> Result<TaskEvent> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        insert_event_and_commit(tx, cx.tenant_id, &e).await
    }

    async fn task_events(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>> {
        let rows = self
            .scoped(
                cx,
                "read task events",
                &format!(
                    "SELECT {EVENT_COLS} FROM task_events
                     WHERE tenant_id = $1 AND ($2::uuid IS NULL OR task_id = $2) AND id > $3
                     ORDER BY id LIMIT $4"
                ),
                &[
                    &cx.tenant_id.0,
                    &task.map(|t| t.0),
                    &after,
                    &i64::from(limit),
                ],
            )
            .await?;
        rows::all(rows, rows::event)
    }

    async fn unfinished_tasks(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Task)>> {
        let rows = self
            .platform(
                "unfinished tasks",
                &format!(
                    "SELECT {TASK_COLS}, tenant_id FROM tasks
                     WHERE status IN ('queued', 'running', 'retrying') AND updated_at < $1
                     ORDER BY updated_at LIMIT $2"
                ),
                &[&before, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.get::<_, Uuid>(13).into(), rows::task(r)?)))
            .collect()
    }
}
