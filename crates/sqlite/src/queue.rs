//! The embedded `JobQueue`: a `jobs` table in the same SQLite file as the tasks.
//!
//! Dequeue runs in one write transaction: it counts running jobs per tenant, walks ready
//! jobs by (priority desc, rowid) skipping tenants at their limit, and leases what it took.

use crate::convert::{get, json, json_text, micros, time};
use crate::db::{Db, Res};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::queue::*;
use morningai_core::{Error, Priority, Result, TaskId, TenantId, now};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

pub struct SqliteQueue {
    db: Db,
    tenant_limit: u32,
    retry_base: Duration,
    retry_cap: Duration,
}

impl SqliteQueue {
    /// A queue in the store's database file. At most `tenant_limit` jobs of one tenant run
    /// at once.
    pub fn new(store: &SqliteStore, tenant_limit: u32) -> Self {
        Self {
            db: store.db.clone(),
            tenant_limit: tenant_limit.max(1),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(600),
        }
    }

    /// Backoff base and cap for retries (tests shorten them).
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.retry_base = base;
        self.retry_cap = cap;
        self
    }
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365))
}

/// Inserts a job; also used by `create_task` inside its transaction. Re-inserting a known
/// id is a no-op (enqueue is idempotent per job).
pub(crate) fn insert_job(tx: &Connection, job: &NewJob, at: DateTime<Utc>) -> Res<Enqueued> {
    if let Some(key) = &job.dedupe_key {
        let holder: Option<String> = tx
            .query_row(
                "SELECT id FROM jobs WHERE tenant_id = ?1 AND dedupe_key = ?2 AND state <> 'dead'",
                params![job.tenant_id.to_string(), key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(h) = holder {
            let id = h
                .parse()
                .map_err(|e| Error::internal("bad stored job id", e))?;
            return Ok(Enqueued::Duplicate(id));
        }
    }
    let mut st = tx.prepare_cached(
        "INSERT INTO jobs (id, tenant_id, kind, priority, payload, state, run_at, max_attempts, timeout_ms,
                           dedupe_key, enqueued_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'ready', ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO NOTHING",
    )?;
    st.execute(params![
        job.id.to_string(),
        job.tenant_id.to_string(),
        job.kind,
        i64::from(job.priority),
        json_text(&job.payload),
        micros(job.run_at.unwrap_or(at)),
        job.max_attempts,
        job.timeout.as_millis() as i64,
        job.dedupe_key,
        micros(at)
    ])?;
    Ok(Enqueued::Queued)
}

const LEASE_COLS: &str = "id, tenant_id, kind, priority, payload, run_at, max_attempts, timeout_ms, dedupe_key, attempts, lease_token, lease_deadline, enqueued_at";

fn lease_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lease> {
    let bad = |i, e: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Integer, e.into())
    };
    Ok(Lease {
        job: NewJob {
            id: get(r, 0)?,
            tenant_id: get(r, 1)?,
            kind: r.get(2)?,
            priority: Priority::new(r.get(3)?).map_err(|e| bad(3, e))?,
            payload: json(r, 4)?,
            run_at: Some(time(r.get(5)?)),
            max_attempts: r.get(6)?,
            timeout: Duration::from_millis(r.get::<_, i64>(7)?.max(0) as u64),
            dedupe_key: r.get(8)?,
        },
        attempt: r.get(9)?,
        token: get(r, 10)?,
        deadline: time(r.get(11)?),
        enqueued_at: time(r.get(12)?),
    })
}

/// Dead-letters or reschedules a failed attempt inside `tx`.
fn fail_in(
    tx: &Connection,
    id: &str,
    attempts: u32,
    max: u32,
    error: &str,
    retryable: bool,
    delay: Duration,
) -> Res<Failure> {
    let at = now();
    if retryable && attempts < max {
        let when = add(at, delay);
        tx.execute(
            "UPDATE jobs SET state = 'ready', run_at = ?2, lease_token = NULL, lease_deadline = NULL, last_error = ?3
             WHERE id = ?1",
            params![id, micros(when), error],
        )?;
        Ok(Failure::Retrying { at: when })
    } else {
        tx.execute(
            "UPDATE jobs SET state = 'dead', lease_token = NULL, lease_deadline = NULL, last_error = ?2, failed_at = ?3
             WHERE id = ?1",
            params![id, error, micros(at)],
        )?;
        Ok(Failure::Dead)
    }
}

#[async_trait]
impl JobQueue for SqliteQueue {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        let r = self
            .db
            .write("enqueue", move |tx| insert_job(tx, &job, now()))
            .await?;
        self.db.work().notify_one();
        Ok(r)
    }

    async fn dequeue(&self, max: usize, lease: Duration) -> Result<Vec<Lease>> {
        let limit = self.tenant_limit;
        self.db
            .write("dequeue", move |tx| {
                let at = now();
                let mut running: HashMap<String, u32> = HashMap::new();
                {
                    let mut st = tx.prepare_cached("SELECT tenant_id, count(*) FROM jobs WHERE state = 'running' GROUP BY tenant_id")?;
                    let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?)))?;
                    for row in rows {
                        let (t, n) = row?;
                        running.insert(t, n);
                    }
                }
                // Walk the tenants that have ready jobs (one index seek each), take up to
                // each unsaturated tenant's free slots from its head, then keep the best
                // `max` overall. A saturated tenant's backlog is never scanned.
                let mut candidates: Vec<(i64, i64, String)> = Vec::new();
                {
                    let mut next_tenant = tx.prepare_cached(
                        "SELECT min(tenant_id) FROM jobs INDEXED BY jobs_tenant_ready WHERE state = 'ready' AND tenant_id > ?1",
                    )?;
                    let mut heads = tx.prepare_cached(
                        "SELECT id, priority, rowid FROM jobs
                         WHERE state = 'ready' AND tenant_id = ?1 AND run_at <= ?2
                         ORDER BY priority DESC, rowid LIMIT ?3",
                    )?;
                    let mut after = String::new();
                    while let Some(tenant) = next_tenant.query_row([&after], |r| r.get::<_, Option<String>>(0))? {
                        let free = limit.saturating_sub(running.get(&tenant).copied().unwrap_or(0)) as usize;
                        if free > 0 {
                            let rows = heads.query_map(params![tenant, micros(at), free.min(max)], |r| {
                                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, String>(0)?))
                            })?;
                            for row in rows {
                                candidates.push(row?);
                            }
                        }
                        after = tenant;
                    }
                }
                candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                let picked: Vec<String> = candidates.into_iter().take(max).map(|c| c.2).collect();
                let deadline = add(at, lease);
                let mut out = Vec::with_capacity(picked.len());
                let mut st = tx.prepare_cached(&format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_token = ?2, lease_deadline = ?3
                     WHERE id = ?1 RETURNING {LEASE_COLS}"
                ))?;
                for id in picked {
                    out.push(st.query_row(params![id, Uuid::new_v4().to_string(), micros(deadline)], lease_row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Heartbeat> {
        let (id, token) = (lease.job.id.to_string(), lease.token.to_string());
        self.db
            .write("heartbeat", move |tx| {
                let r: Option<bool> = tx
                    .query_row(
                        "UPDATE jobs SET lease_deadline = ?3 WHERE id = ?1 AND lease_token = ?2 AND state = 'running'
                         RETURNING cancel_requested",
                        params![id, token, micros(add(now(), extend))],
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(match r {
                    None => Heartbeat::Lost,
                    Some(true) => Heartbeat::Cancelled,
                    Some(false) => Heartbeat::Extended,
                })
            })
            .await
    }

    async fn complete(&self, lease: &Lease) -> Result<bool> {
        let (id, token) = (lease.job.id.to_string(), lease.token.to_string());
        self.db
            .write("complete", move |tx| {
                Ok(tx.execute(
                    "DELETE FROM jobs WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                    params![id, token],
                )? == 1)
            })
            .await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<()> {
        let pairs: Vec<(String, String)> = leases
            .iter()
            .map(|l| (l.job.id.to_string(), l.token.to_string()))
            .collect();
        self.db
            .write("complete many", move |tx| {
                let mut st = tx.prepare_cached(
                    "DELETE FROM jobs WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                )?;
                for (id, token) in pairs {
                    st.execute(params![id, token])?;
                }
                Ok(())
            })
            .await
    }

    async fn fail(&self, lease: &Lease, error: &str, retryable: bool) -> Result<Failure> {
        let (id, token, error) = (
            lease.job.id.to_string(),
            lease.token.to_string(),
            error.to_owned(),
        );
        let delay = retry_delay(lease.attempt, self.retry_base, self.retry_cap);
        self.db
            .write("fail", move |tx| {
                let row: Option<(u32, u32)> = tx
                    .query_row(
                        "SELECT attempts, max_attempts FROM jobs WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                        params![id, token],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                match row {
                    None => Ok(Failure::Lost),
                    Some((attempts, max)) => fail_in(tx, &id, attempts, max, &error, retryable, delay),
                }
            })
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let (id, token) = (lease.job.id.to_string(), lease.token.to_string());
        self.db
            .write("release", move |tx| {
                tx.execute(
                    "UPDATE jobs SET state = 'ready', attempts = max(attempts - 1, 0), lease_token = NULL, lease_deadline = NULL
                     WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
                    params![id, token],
                )?;
                Ok(())
            })
            .await?;
        self.db.work().notify_one();
        Ok(())
    }

    async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Cancelled> {
        self.db
            .write("cancel job", move |tx| {
                let args = params![tenant.to_string(), id.to_string()];
                let state: Option<String> = tx
                    .query_row(
                        "SELECT state FROM jobs WHERE tenant_id = ?1 AND id = ?2",
                        args,
                        |r| r.get(0),
                    )
                    .optional()?;
                Ok(match state.as_deref() {
                    Some("ready") => {
                        tx.execute("DELETE FROM jobs WHERE tenant_id = ?1 AND id = ?2", args)?;
                        Cancelled::Removed
                    }
                    Some("running") => {
                        tx.execute(
                            "UPDATE jobs SET cancel_requested = 1 WHERE tenant_id = ?1 AND id = ?2",
                            args,
                        )?;
                        Cancelled::Signalled
                    }
                    _ => Cancelled::NotFound,
                })
            })
            .await
    }

    async fn reclaim_expired(&self) -> Result<u64> {
        let n = self
            .db
            .write_queued("reclaim expired leases", move |tx| {
                let at = now();
                let expired: Vec<(String, u32, u32)> = {
                    let mut st = tx.prepare_cached(
                        "SELECT id, attempts, max_attempts FROM jobs WHERE state = 'running' AND lease_deadline < ?1",
                    )?;
                    st.query_map([micros(at)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?
                };
                for (id, attempts, max) in &expired {
                    // A lost worker counts as a failed attempt, so a job that kills its
                    // worker every time ends in the dead-letter store instead of looping.
                    fail_in(tx, id, *attempts, *max, "lease expired: the worker stopped heartbeating", true, Duration::ZERO)?;
                }
                Ok(expired.len() as u64)
            })
            .await?;
        if n > 0 {
            self.db.work().notify_waiters();
        }
        Ok(n)
    }

    async fn contains(&self, id: TaskId) -> Result<bool> {
        self.db
            .read("job exists", move |c| {
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM jobs WHERE id = ?1)",
                    [id.to_string()],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let _ = tokio::time::timeout(timeout, self.db.work().notified()).await;
    }

    async fn depth(&self, tenant: TenantId) -> Result<QueueDepth> {
        self.db
            .read("queue depth", move |c| {
                let mut d = QueueDepth { ready_by_priority: vec![0; 10], ..Default::default() };
                let mut st = c.prepare_cached(
                    "SELECT state, priority, run_at > ?2, count(*) FROM jobs WHERE tenant_id = ?1 GROUP BY 1, 2, 3",
                )?;
                let rows = st.query_map(params![tenant.to_string(), micros(now())], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, usize>(1)?, r.get::<_, bool>(2)?, r.get::<_, u64>(3)?))
                })?;
                for row in rows {
                    match row? {
                        (s, _, _, n) if s == "running" => d.running += n,
                        (s, _, _, n) if s == "dead" => d.dead += n,
                        (_, _, true, n) => d.scheduled += n,
                        (_, p, false, n) => d.ready_by_priority[p.min(9)] += n,
                    }
                }
                Ok(d)
            })
            .await
    }

    async fn dead_jobs(&self, tenant: TenantId, limit: u32) -> Result<Vec<DeadJob>> {
        self.db
            .read("dead jobs", move |c| {
                let mut st = c.prepare_cached(
                    "SELECT id, kind, attempts, last_error, failed_at, payload FROM jobs
                     WHERE tenant_id = ?1 AND state = 'dead' ORDER BY failed_at DESC LIMIT ?2",
                )?;
                let rows = st.query_map(params![tenant.to_string(), limit], |r| {
                    Ok(DeadJob {
                        id: get(r, 0)?,
                        kind: r.get(1)?,
                        attempts: r.get(2)?,
                        last_error: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
                        failed_at: time(r.get::<_, Option<i64>>(4)?.unwrap_or_default()),
                        payload: json(r, 5)?,
                    })
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn retry_dead(&self, tenant: TenantId, id: TaskId) -> Result<bool> {
        let n = self
            .db
            .write("retry dead job", move |tx| {
                Ok(tx.execute(
                    "UPDATE jobs SET state = 'ready', attempts = 0, run_at = ?3, failed_at = NULL, cancel_requested = 0
                     WHERE tenant_id = ?1 AND id = ?2 AND state = 'dead'",
                    params![tenant.to_string(), id.to_string(), micros(now())],
                )?)
            })
            .await?;
        self.db.work().notify_one();
        Ok(n == 1)
    }

    async fn purge_dead(&self, tenant: TenantId, id: Option<TaskId>) -> Result<u64> {
        self.db
            .write_queued("purge dead jobs", move |tx| {
                Ok(tx.execute(
                    "DELETE FROM jobs WHERE tenant_id = ?1 AND state = 'dead' AND (?2 IS NULL OR id = ?2)",
                    params![tenant.to_string(), id.map(|i| i.to_string())],
                )? as u64)
            })
            .await
    }
}
