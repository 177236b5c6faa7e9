//! The `JobQueue` port. A job is one execution of a task (same id). The queue only carries
//! work: the task row in the `Store` is the system of record, and a reconciler re-enqueues
//! tasks that the database says are pending but the queue has lost.
//!
//! Semantics every backend implements (and the conformance suite checks):
//! - priority 0–9 (9 first), FIFO within a priority, delayed jobs (`run_at`);
//! - leases with a deadline, heartbeats that extend them, reclamation of expired leases by
//!   any worker (a killed worker's job runs again);
//! - retries with exponential backoff and jitter up to `max_attempts`, then a dead-letter
//!   store (job, attempts, last error) with retry and purge;
//! - cancellation: a queued job never runs; a running job's heartbeat reports it;
//! - dedupe: a key rejects duplicates while a job holding it is pending or running;
//! - fairness: at most `tenant_limit` running jobs per tenant.

use crate::error::Result;
use crate::ids::{TaskId, TenantId};
use crate::values::Priority;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    pub id: TaskId,
    pub tenant_id: TenantId,
    pub kind: String,
    pub priority: Priority,
    pub payload: Value,
    /// Not before this time (None: now).
    pub run_at: Option<DateTime<Utc>>,
    pub max_attempts: u32,
    /// Per-attempt time limit.
    pub timeout: Duration,
    pub dedupe_key: Option<String>,
}

impl NewJob {
    /// The job that runs a task.
    pub fn for_task(tenant: TenantId, task: &crate::entities::Task) -> Self {
        Self {
            priority: task.priority,
            ..Self::new(task.id, tenant, task.kind.clone(), task.input.clone())
        }
    }

    pub fn new(id: TaskId, tenant_id: TenantId, kind: impl Into<String>, payload: Value) -> Self {
        Self {
            id,
            tenant_id,
            kind: kind.into(),
            priority: Priority::default(),
            payload,
            run_at: None,
            max_attempts: 3,
            timeout: Duration::from_secs(300),
            dedupe_key: None,
        }
    }
}

/// A job handed to a worker, valid until `deadline` unless extended by heartbeats.
#[derive(Clone, Debug, PartialEq)]
pub struct Lease {
    pub job: NewJob,
    /// 1 for the first run.
    pub attempt: u32,
    /// Identifies this lease; a reclaimed job gets a new token and the old one stops working.
    pub token: Uuid,
    pub deadline: DateTime<Utc>,
    pub enqueued_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enqueued {
    Queued,
    /// A pending job already holds the dedupe key.
    Duplicate(TaskId),
}

/// What a heartbeat learns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heartbeat {
    Extended,
    /// Cancellation was requested: stop at the next await point.
    Cancelled,
    /// The lease is gone (expired and reclaimed, or the job finished elsewhere).
    Lost,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// Scheduled again at this time (attempt n+1).
    Retrying { at: DateTime<Utc> },
    /// Out of attempts (or not retryable): kept in the dead-letter store.
    Dead,
    /// The lease was no longer ours; nothing changed.
    Lost,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancelled {
    /// It was waiting; it will never run.
    Removed,
    /// It is running; its worker is told through the heartbeat.
    Signalled,
    NotFound,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct QueueDepth {
    /// Ready jobs per priority, index = priority.
    pub ready_by_priority: Vec<u64>,
    pub running: u64,
    /// Delayed or backing off.
    pub scheduled: u64,
    pub dead: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadJob {
    pub id: TaskId,
    pub kind: String,
    pub attempts: u32,
    pub last_error: String,
    pub failed_at: DateTime<Utc>,
    pub payload: Value,
}

/// Backoff before attempt `attempt + 1`: base·2^(attempt-1), capped, with ±25 % jitter.
pub fn backoff(attempt: u32, base: Duration, cap: Duration, jitter_unit: f64) -> Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(cap.as_secs_f64());
    let jitter = 1.0 + (jitter_unit.clamp(0.0, 1.0) - 0.5) * 0.5;
    Duration::from_secs_f64(capped * jitter)
}

/// The delay before the retry of a failed attempt: [`backoff`] with random jitter. Every
/// backend uses it, so they retry on the same schedule.
pub fn retry_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    // The low 53 bits of a v4 UUID are random (its version and variant bits sit higher).
    let bits = Uuid::new_v4().as_u64_pair().1 & ((1u64 << 53) - 1);
    backoff(attempt, base, cap, bits as f64 / (1u64 << 53) as f64)
}

#[async_trait]
pub trait JobQueue: Send + Sync + 'static {
    fn backend(&self) -> &'static str;

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued>;
    /// Leases up to `max` ready jobs for `lease` (highest priority first, FIFO within a
    /// priority, never more than the tenant limit running per tenant).
    async fn dequeue(&self, max: usize, lease: Duration) -> Result<Vec<Lease>>;
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Heartbeat>;
    /// Done: removes the job. False when the lease was lost.
    async fn complete(&self, lease: &Lease) -> Result<bool>;
    async fn complete_many(&self, leases: &[Lease]) -> Result<()> {
        for l in leases {
            self.complete(l).await?;
        }
        Ok(())
    }
    /// Failed attempt: retry with backoff, or dead-letter when out of attempts or
    /// `retryable` is false.
    async fn fail(&self, lease: &Lease, error: &str, retryable: bool) -> Result<Failure>;
    /// Gives a leased job back untouched (graceful shutdown); the attempt does not count.
    async fn release(&self, lease: &Lease) -> Result<()>;
    async fn cancel(&self, tenant: TenantId, id: TaskId) -> Result<Cancelled>;
    /// Re-queues jobs whose lease deadline has passed; returns how many.
    async fn reclaim_expired(&self) -> Result<u64>;
    /// Whether the queue knows the job (pending, scheduled, running or dead).
    async fn contains(&self, id: TaskId) -> Result<bool>;
    /// Waits until work may be available (a job was enqueued) or `timeout` passes.
    async fn wait_for_work(&self, timeout: Duration);
    async fn depth(&self, tenant: TenantId) -> Result<QueueDepth>;
    async fn dead_jobs(&self, tenant: TenantId, limit: u32) -> Result<Vec<DeadJob>>;
    /// Moves a dead job back to the ready queue with fresh attempts.
    async fn retry_dead(&self, tenant: TenantId, id: TaskId) -> Result<bool>;
    /// Deletes one dead job, or all of the tenant's when `id` is None; returns how many.
    async fn purge_dead(&self, tenant: TenantId, id: Option<TaskId>) -> Result<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let b = Duration::from_millis(100);
        let cap = Duration::from_secs(10);
        assert_eq!(backoff(1, b, cap, 0.5), Duration::from_millis(100));
        assert_eq!(backoff(3, b, cap, 0.5), Duration::from_millis(400));
        assert_eq!(backoff(30, b, cap, 0.5), cap);
        assert!(backoff(3, b, cap, 0.0) < backoff(3, b, cap, 1.0));
        assert_eq!(backoff(3, b, cap, 0.0), Duration::from_millis(300));
    }
}
