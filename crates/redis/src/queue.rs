use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::coalesce::{Batch, Coalescer};
use morningai_core::queue::*;
use morningai_core::{Error, Priority, Result, TaskId, TenantId};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use uuid::Uuid;

const PRELUDE: &str = include_str!("../lua/prelude.lua");

fn script(body: &str) -> Script {
    Script::new(&format!("{PRELUDE}\n{body}"))
}

struct Scripts {
    enqueue: Script,
    dequeue: Script,
    heartbeat: Script,
    complete: Script,
    fail: Script,
    release: Script,
    cancel: Script,
    reclaim: Script,
    retry_dead: Script,
    purge_dead: Script,
}

impl Scripts {
    fn load() -> Self {
        Self {
            enqueue: script(include_str!("../lua/enqueue.lua")),
            dequeue: script(include_str!("../lua/dequeue.lua")),
            heartbeat: script(include_str!("../lua/heartbeat.lua")),
            complete: script(include_str!("../lua/complete.lua")),
            fail: script(include_str!("../lua/fail.lua")),
            release: script(include_str!("../lua/release.lua")),
            cancel: script(include_str!("../lua/cancel.lua")),
            reclaim: script(include_str!("../lua/reclaim.lua")),
            retry_dead: script(include_str!("../lua/retry_dead.lua")),
            purge_dead: script(include_str!("../lua/purge_dead.lua")),
        }
    }
}

/// The Redis `JobQueue`. Clones share connections.
#[derive(Clone)]
pub struct RedisQueue {
    conn: ConnectionManager,
    /// BLPOP blocks its connection, so idle waiting gets a connection of its own.
    waiter: Arc<Mutex<Option<ConnectionManager>>>,
    client: redis::Client,
    prefix: String,
    tenant_limit: u32,
    retry_base: Duration,
    retry_cap: Duration,
    scripts: Arc<Scripts>,
    /// Concurrent enqueues, sent together as one script call.
    enqueues: Coalescer<(), RedisQueue, NewJob, Result<Enqueued>>,
}

/// Enqueue calls in flight at once (Redis runs one at a time; a second overlaps the round
/// trip) and jobs per call.
const ENQUEUES_IN_FLIGHT: usize = 2;
const ENQUEUES_MOST: usize = 256;

fn run_enqueues(
    queue: RedisQueue,
    _: (),
    batch: Batch<NewJob, Result<Enqueued>>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move { queue.enqueue_batch(batch).await })
}

fn err(context: &str) -> impl Fn(redis::RedisError) -> Error + '_ {
    move |e| Error::internal(context, e)
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// `t` in milliseconds, rounded up: a job due at 12.3456 s is not ready at 12.345 s.
fn ms_not_before(t: DateTime<Utc>) -> i64 {
    ms(t) + i64::from(!t.timestamp_subsec_nanos().is_multiple_of(1_000_000))
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn now_ms() -> i64 {
    ms(Utc::now())
}

impl RedisQueue {
    /// Connects; keys live under `{prefix}` (a hash tag, so Redis Cluster keeps them in one slot).
    pub async fn connect(url: &str, prefix: &str, tenant_limit: u32) -> Result<Self> {
        let client = redis::Client::open(url).map_err(err("parse REDIS_URL"))?;
        let conn = ConnectionManager::new(client.clone())
            .await
            .map_err(err("connect to Redis"))?;
        Ok(Self {
            conn,
            waiter: Arc::new(Mutex::new(None)),
            client,
            prefix: format!("{{{prefix}}}"),
            tenant_limit: tenant_limit.max(1),
            retry_base: Duration::from_secs(1),
            retry_cap: Duration::from_secs(600),
            scripts: Arc::new(Scripts::load()),
            enqueues: Coalescer::new(ENQUEUES_IN_FLIGHT, ENQUEUES_MOST, run_enqueues),
        })
    }

    /// Backoff base and cap for retries (tests shorten them).
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.retry_base = base;
        self.retry_cap = cap;
        self
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        for p in parts {
            k.push(':');
            k.push_str(p);
        }
        k
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Enqueues a batch in one script call and answers each job.
    async fn enqueue_batch(&self, batch: Batch<NewJob, Result<Enqueued>>) {
        let now = now_ms();
        let mut call = self.scripts.enqueue.prepare_invoke();
        call.arg(&self.prefix).arg(now);
        for (job, _) in &batch {
            call.arg(job.id.to_string())
                .arg(job.tenant_id.to_string())
                .arg(&job.kind)
                .arg(job.priority.get())
                .arg(job.payload.to_string())
                .arg(job.run_at.map_or(now, ms_not_before))
                .arg(job.max_attempts)
                .arg(job.timeout.as_millis() as u64)
                .arg(job.dedupe_key.as_deref().unwrap_or(""));
        }
        let answers = call
            .invoke_async::<Vec<String>>(&mut self.conn())
            .await
            .map_err(err("enqueue"))
            .and_then(|answers| {
                if answers.len() == batch.len() {
                    Ok(answers)
                } else {
                    let got = format!("{} answers for {} jobs", answers.len(), batch.len());
                    Err(Error::internal("enqueue", got))
                }
            });
        match answers {
            Ok(answers) => {
                for ((_, reply), holder) in batch.into_iter().zip(answers) {
                    let _ = reply.send(if holder.is_empty() {
                        Ok(Enqueued::Queued)
                    } else {
                        holder
                            .parse()
                            .map(Enqueued::Duplicate)
                            .map_err(|e| Error::internal("dedupe holder", e))
                    });
                }
            }
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

fn parse_lease(row: Vec<String>) -> Result<Lease> {
    let bad = |what: &str| Error::internal("decode leased job", what.to_owned());
    let [
        id,
        token,
        attempt,
        deadline,
        tenant,
        kind,
        priority,
        payload,
        run_at,
        max_attempts,
        timeout_ms,
        dedupe,
        enqueued_at,
    ]: [String; 13] = row.try_into().map_err(|_| bad("wrong field count"))?;
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad("number"));
    Ok(Lease {
        job: NewJob {
            id: id.parse().map_err(|_| bad("id"))?,
            tenant_id: tenant.parse().map_err(|_| bad("tenant"))?,
            kind,
            priority: Priority::new(num(&priority)?).map_err(|_| bad("priority"))?,
            payload: serde_json::from_str(&payload).map_err(|_| bad("payload"))?,
            run_at: Some(from_ms(num(&run_at)?)),
            max_attempts: num(&max_attempts)? as u32,
            timeout: Duration::from_millis(num(&timeout_ms)?.max(0) as u64),
            dedupe_key: Some(dedupe).filter(|d| !d.is_empty()),
        },
        attempt: num(&attempt)? as u32,
        token: token.parse().map_err(|_| bad("token"))?,
        deadline: from_ms(num(&deadline)?),
        enqueued_at: from_ms(num(&enqueued_at)?),
    })
}

#[async_trait]
impl JobQueue for RedisQueue {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued> {
        self.enqueues.ask(self, (), job, "enqueue").await?
    }

    async fn dequeue(&self, max: usize, lease: Duration) -> Result<Vec<Lease>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut inv = self.scripts.dequeue.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(max)
            .arg(now_ms())
            .arg(lease.as_millis() as u64)
            .arg(self.tenant_limit);
        for _ in 0..max {
            inv.arg(Uuid::new_v4().to_string());
        }
        let rows: Vec<Vec<String>> = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("dequeue"))?;
        rows.into_iter().map(parse_lease).collect()
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Heartbeat> {
        let r: String = self
            .scripts
            .heartbeat
            .arg(&self.prefix)
            .arg(lease.job.id.to_string())
            .arg(lease.token.to_string())
            .arg(now_ms() + extend.as_millis() as i64)
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("heartbeat"))?;
        Ok(match r.as_str() {
            "extended" => Heartbeat::Extended,
            "cancelled" => Heartbeat::Cancelled,
            _ => Heartbeat::Lost,
        })
    }

    async fn complete(&self, lease: &Lease) -> Result<bool> {
        let n: u64 = self
            .scripts
            .complete
            .arg(&self.prefix)
            .arg(lease.job.id.to_string())
            .arg(lease.token.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("complete"))?;
        Ok(n == 1)
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<()> {
        if leases.is_empty() {
            return Ok(());
        }
        let mut inv = self.scripts.complete.prepare_invoke();
        inv.arg(&self.prefix);
        for l in leases {
            inv.arg(l.job.id.to_string()).arg(l.token.to_string());
        }
        let _: u64 = inv
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("complete many"))?;
        Ok(())
    }

    async fn fail(&self, lease: &Lease, error: &str, retryable: bool) -> Result<Failure> {
        let delay = retry_delay(lease.attempt, self.retry_base, self.retry_cap);
        let r: Vec<String> = self
            .scripts
            .fail
            .arg(&self.prefix)
            .arg(lease.job.id.to_string())
            .arg(lease.token.to_string())
            .arg(error)
            .arg(if retryable { 1 } else { 0 })
            .arg(now_ms())
            .arg(delay.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("fail"))?;
        Ok(match r.as_slice() {
            [s, at] if s == "retry" => Failure::Retrying {
                at: from_ms(at.parse().unwrap_or_default()),
            },
            [s] if s == "dead" => Failure::Dead,
            _ => Failure::Lost,
        })
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let _: u64 = self
            .scripts
            .release
            .arg(&self.prefix)
            .arg(lease.job.id.to_string())
            .arg(lease.token.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("release"))?;
        Ok(())
    }

    async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Cancelled> {
        let r: String = self
            .scripts
            .cancel
            .arg(&self.prefix)
            .arg(tenant.to_string())
            .arg(id.to_string())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("cancel"))?;
        Ok(match r.as_str() {
            "removed" => Cancelled::Removed,
            "signalled" => Cancelled::Signalled,
            _ => Cancelled::NotFound,
        })
    }

    async fn reclaim_expired(&self) -> Result<u64> {
        self.scripts
            .reclaim
            .arg(&self.prefix)
            .arg(now_ms())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("reclaim"))
    }

    async fn contains(&self, id: TaskId) -> Result<bool> {
        self.conn()
            .exists(self.key(&["job", &id.to_string()]))
            .await
            .map_err(err("job exists"))
    }

    async fn wait_for_work(&self, timeout: Duration) {
        let mut guard = self.waiter.lock().await;
        if guard.is_none() {
            match ConnectionManager::new(self.client.clone()).await {
                Ok(c) => *guard = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the Redis wait connection");
                    tokio::time::sleep(timeout).await;
                    return;
                }
            }
        }
        let conn = guard.as_mut().expect("set above");
        let secs = timeout.as_secs_f64().max(0.001);
        let r: redis::RedisResult<Option<(String, String)>> =
            conn.blpop(self.key(&["notify"]), secs).await;
        if let Err(e) = r {
            tracing::debug!(error = %e, "waiting for work failed");
            *guard = None;
            tokio::time::sleep(timeout.min(Duration::from_millis(100))).await;
        }
    }

    async fn depth(&self, tenant: TenantId) -> Result<QueueDepth> {
        let t = tenant.to_string();
        let band = 1u64 << 40;
        let mut pipe = redis::pipe();
        for p in 0..10u64 {
            let lo = (9 - p) * band;
            pipe.zcount(self.key(&["ready", &t]), lo, format!("({}", lo + band));
        }
        pipe.hget(self.key(&["running"]), &t)
            .hget(self.key(&["scheduled"]), &t)
            .zcard(self.key(&["dead", &t]));
        let mut v: Vec<Option<i64>> = pipe
            .query_async(&mut self.conn())
            .await
            .map_err(err("queue depth"))?;
        let count = |x: Option<i64>| x.unwrap_or(0).max(0) as u64;
        let dead = v.pop().flatten();
        let scheduled = v.pop().flatten();
        let running = v.pop().flatten();
        Ok(QueueDepth {
            ready_by_priority: v.into_iter().map(count).collect(),
            running: count(running),
            scheduled: count(scheduled),
            dead: count(dead),
        })
    }

    async fn dead_jobs(&self, tenant: TenantId, limit: u32) -> Result<Vec<DeadJob>> {
        let t = tenant.to_string();
        let mut conn = self.conn();
        let ids: Vec<String> = conn
            .zrevrange(self.key(&["dead", &t]), 0, limit.max(1) as isize - 1)
            .await
            .map_err(err("dead jobs"))?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let (kind, attempts, last_error, failed_at, payload): (
                Option<String>,
                Option<u32>,
                Option<String>,
                Option<i64>,
                Option<String>,
            ) = conn
                .hget(
                    self.key(&["job", &id]),
                    &["kind", "attempts", "last_error", "failed_at", "payload"],
                )
                .await
                .map_err(err("dead job"))?;
            let Some(kind) = kind else { continue };
            out.push(DeadJob {
                id: id.parse().map_err(|e| Error::internal("dead job id", e))?,
                kind,
                attempts: attempts.unwrap_or(0),
                last_error: last_error.unwrap_or_default(),
                failed_at: from_ms(failed_at.unwrap_or(0)),
                payload: payload
                    .and_then(|p| serde_json::from_str(&p).ok())
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    async fn retry_dead(&self, tenant: TenantId, id: TaskId) -> Result<bool> {
        let n: u64 = self
            .scripts
            .retry_dead
            .arg(&self.prefix)
            .arg(tenant.to_string())
            .arg(id.to_string())
            .arg(now_ms())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("retry dead job"))?;
        Ok(n == 1)
    }

    async fn purge_dead(&self, tenant: TenantId, id: Option<TaskId>) -> Result<u64> {
        self.scripts
            .purge_dead
            .arg(&self.prefix)
            .arg(tenant.to_string())
            .arg(id.map(|i| i.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn())
            .await
            .map_err(err("purge dead jobs"))
    }
}
