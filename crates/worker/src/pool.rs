//! The worker pool: leases jobs, runs their handlers with a timeout, heartbeats long
//! jobs, reports the outcome, and on shutdown stops taking work, lets in-flight jobs
//! finish within a grace period and releases the rest.

use crate::handlers::{Emitter, JobContext, JobError, Registry};
use async_trait::async_trait;
use morningai_core::events::TaskEventKind;
use morningai_core::queue::{Failure, Heartbeat, JobQueue, Lease};
use morningai_core::{TaskId, TenantId, UserId};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Jobs run at once in this process.
    pub concurrency: usize,
    /// Lease length; heartbeats renew it every third of it.
    pub lease: Duration,
    /// Longest wait for work before polling again when idle.
    pub idle_poll: Duration,
    /// After shutdown is requested, how long in-flight jobs may take before being released.
    pub grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            concurrency: 32,
            lease: Duration::from_secs(30),
            idle_poll: Duration::from_millis(500),
            grace: Duration::from_secs(20),
        }
    }
}

/// What the pool reports about each job. The task service records it on the task row and
/// the event stream; benchmarks use [`NoHooks`].
#[async_trait]
pub trait Hooks: Send + Sync + 'static {
    /// Before running: what the task row says about it. None: the task already finished
    /// or was cancelled; the job is acknowledged without running.
    async fn started(&self, lease: &Lease) -> Option<Started>;
    async fn succeeded(&self, lease: &Lease, result: Value);
    async fn failed(&self, lease: &Lease, error: &str, outcome: &Failure);
    async fn cancelled(&self, lease: &Lease);
    async fn emit(&self, tenant: TenantId, task: TaskId, kind: TaskEventKind, data: Value);
}

/// What the pool learns about a task when its job starts.
#[derive(Clone, Debug, Default)]
pub struct Started {
    pub trace_id: String,
    pub created_by: Option<UserId>,
}

/// Runs jobs without recording anything (benchmarks, queue-only use).
pub struct NoHooks;

#[async_trait]
impl Hooks for NoHooks {
    async fn started(&self, _: &Lease) -> Option<Started> {
        Some(Started::default())
    }
    async fn succeeded(&self, _: &Lease, _: Value) {}
    async fn failed(&self, _: &Lease, _: &str, _: &Failure) {}
    async fn cancelled(&self, _: &Lease) {}
    async fn emit(&self, _: TenantId, _: TaskId, _: TaskEventKind, _: Value) {}
}

struct HookEmitter(Arc<dyn Hooks>);

#[async_trait]
impl Emitter for HookEmitter {
    async fn emit(&self, tenant: TenantId, task: TaskId, kind: TaskEventKind, data: Value) {
        self.0.emit(tenant, task, kind, data).await;
    }
}

struct Shared {
    queue: Arc<dyn JobQueue>,
    registry: Registry,
    hooks: Arc<dyn Hooks>,
    config: WorkerConfig,
    /// Fired when the grace period is over: running handlers stop and leases are released.
    hard_stop: CancellationToken,
    done: mpsc::UnboundedSender<Lease>,
}

/// Runs until `shutdown` fires, then drains (see the module docs). Returns the number of
/// jobs that were released unfinished at the end of the grace period.
pub async fn run_pool(
    queue: Arc<dyn JobQueue>,
    registry: Registry,
    hooks: Arc<dyn Hooks>,
    config: WorkerConfig,
    shutdown: CancellationToken,
) -> usize {
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        queue: queue.clone(),
        registry,
        hooks,
        config: config.clone(),
        hard_stop: CancellationToken::new(),
        done: done_tx,
    });
    let completer = tokio::spawn(complete_in_batches(queue.clone(), done_rx));
    let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let released = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut idle = Duration::from_millis(1);
    while !shutdown.is_cancelled() {
        // Wait for at least one free slot.
        let first = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = shutdown.cancelled() => break,
        };
        let free = slots.available_permits() + 1;
        let leases = match queue.dequeue(free.min(256), config.lease).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "dequeue failed; backing off");
                drop(first);
                tokio::select! { _ = tokio::time::sleep(Duration::from_millis(500)) => {}, _ = shutdown.cancelled() => {} }
                continue;
            }
        };
        if leases.is_empty() {
            drop(first);
            tokio::select! {
                _ = queue.wait_for_work(idle.min(config.idle_poll)) => {},
                _ = shutdown.cancelled() => {},
            }
            idle = (idle * 2).min(config.idle_poll);
            continue;
        }
        idle = Duration::from_millis(1);
        let mut first = Some(first);
        for lease in leases {
            let permit = match first.take() {
                Some(p) => p,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore is never closed"),
            };
            let shared = shared.clone();
            let released = released.clone();
            tokio::spawn(async move {
                if !run_one(&shared, lease).await {
                    released.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                drop(permit);
            });
        }
    }
    // Drain: wait for every slot to come back, up to the grace period, then stop the rest.
    let all = config.concurrency.max(1) as u32;
    if tokio::time::timeout(config.grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        shared.hard_stop.cancel();
        let _ = slots.acquire_many(all).await;
    }
    drop(shared);
    let _ = completer.await;
    released.load(std::sync::atomic::Ordering::Relaxed)
}

/// Acknowledges finished jobs in batches: one round trip for many jobs under load.
async fn complete_in_batches(queue: Arc<dyn JobQueue>, mut rx: mpsc::UnboundedReceiver<Lease>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        if let Err(e) = queue.complete_many(&batch).await {
            // The jobs' leases will expire and the reconciler sees their tasks finished.
            tracing::warn!(error = %e, n = batch.len(), "acknowledging finished jobs failed");
        }
        batch.clear();
    }
}

enum Outcome {
    Done(Result<Value, JobError>),
    CancelRequested,
    LeaseLost,
    Stopped,
}

/// Runs one leased job. Returns false when it was released unfinished (shutdown).
async fn run_one(shared: &Shared, lease: Lease) -> bool {
    let start = Instant::now();
    let kind = lease.job.kind.clone();
    let queue_latency = (chrono::Utc::now()
        - lease
            .job
            .run_at
            .unwrap_or(lease.enqueued_at)
            .max(lease.enqueued_at))
    .to_std()
    .unwrap_or_default();
    let Some(started) = shared.hooks.started(&lease).await else {
        let _ = shared.done.send(lease);
        return true;
    };
    // Everything the handler logs carries the task and the trace id of the request that
    // created it (the id the user sees on the result).
    let span = tracing::info_span!(
        "job",
        task_id = %lease.job.id,
        tenant_id = %lease.job.tenant_id,
        kind = %kind,
        attempt = lease.attempt,
        trace_id = %started.trace_id,
    );
    metrics::counter!("morningai_jobs_started_total", "kind" => kind.clone()).increment(1);
    metrics::histogram!("morningai_job_queue_latency_seconds", "kind" => kind.clone())
        .record(queue_latency.as_secs_f64());
    let Some(handler) = shared.registry.get(&kind) else {
        let outcome = shared
            .queue
            .fail(&lease, &format!("no handler for task kind {kind:?}"), false)
            .await;
        report_failure(
            shared,
            &lease,
            "no handler registered for this task kind",
            outcome,
        )
        .await;
        return true;
    };
    let cancel = shared.hard_stop.child_token();
    let ctx = JobContext {
        task_id: lease.job.id,
        tenant_id: lease.job.tenant_id,
        input: lease.job.payload.clone(),
        attempt: lease.attempt,
        max_attempts: lease.job.max_attempts,
        trace_id: started.trace_id,
        created_by: started.created_by,
        cancel: cancel.clone(),
        emitter: Arc::new(HookEmitter(shared.hooks.clone())),
    };
    let run = tracing::Instrument::instrument(handler.run(ctx), span.clone());
    tokio::pin!(run);
    let deadline = tokio::time::sleep(lease.job.timeout);
    tokio::pin!(deadline);
    let beat_every = shared.config.lease / 3;
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + beat_every, beat_every);
    let outcome = loop {
        tokio::select! {
            r = &mut run => break Outcome::Done(r),
            _ = &mut deadline => break Outcome::Done(Err(JobError::retryable(format!("timed out after {:?}", lease.job.timeout)))),
            _ = beat.tick() => match shared.queue.heartbeat(&lease, shared.config.lease).await {
                Ok(Heartbeat::Extended) => {}
                Ok(Heartbeat::Cancelled) => break Outcome::CancelRequested,
                Ok(Heartbeat::Lost) => break Outcome::LeaseLost,
                Err(e) => tracing::warn!(error = %e, task = %lease.job.id, "heartbeat failed"),
            },
            _ = cancel.cancelled() => break Outcome::Stopped,
        }
    };
    cancel.cancel();
    metrics::histogram!("morningai_job_run_seconds", "kind" => kind.clone())
        .record(start.elapsed().as_secs_f64());
    match outcome {
        Outcome::Done(Ok(value)) => {
            shared.hooks.succeeded(&lease, value).await;
            metrics::counter!("morningai_jobs_succeeded_total", "kind" => kind).increment(1);
            let _ = shared.done.send(lease);
        }
        Outcome::Done(Err(e)) => {
            let outcome = shared.queue.fail(&lease, &e.message, e.retryable).await;
            report_failure(shared, &lease, &e.message, outcome).await;
        }
        Outcome::CancelRequested => {
            shared.hooks.cancelled(&lease).await;
            let _ = shared.done.send(lease);
        }
        Outcome::LeaseLost => {
            tracing::warn!(task = %lease.job.id, "lease lost; another worker owns the job now");
        }
        Outcome::Stopped => {
            if let Err(e) = shared.queue.release(&lease).await {
                tracing::warn!(error = %e, task = %lease.job.id, "releasing the job failed; its lease will expire");
            }
            return false;
        }
    }
    true
}

async fn report_failure(
    shared: &Shared,
    lease: &Lease,
    error: &str,
    outcome: morningai_core::Result<Failure>,
) {
    let kind = lease.job.kind.clone();
    match outcome {
        Ok(f) => {
            match f {
                Failure::Retrying { .. } => {
                    metrics::counter!("morningai_jobs_retried_total", "kind" => kind).increment(1)
                }
                Failure::Dead => {
                    metrics::counter!("morningai_jobs_failed_total", "kind" => kind.clone())
                        .increment(1);
                    metrics::counter!("morningai_jobs_dead_lettered_total", "kind" => kind)
                        .increment(1);
                }
                Failure::Lost => {}
            }
            shared.hooks.failed(lease, error, &f).await;
        }
        Err(e) => {
            tracing::warn!(error = %e, task = %lease.job.id, "recording a failed attempt failed; the lease will expire")
        }
    }
}
