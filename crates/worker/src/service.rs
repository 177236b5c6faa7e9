//! The task service keeps the task row (system of record), the stored events, the event
//! bus and the queue in step. The API, the scheduler and the worker pool all go through it.

use crate::pool::{Hooks, Started};
use async_trait::async_trait;
use morningai_core::entities::{NewTask, Task, TaskCreated, TaskOutcome, TaskStatus};
use morningai_core::events::{EventBus, NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::queue::{Failure, JobQueue, Lease, NewJob, retry_delay};
use morningai_core::{Result, Store, TaskId, TenantCtx, TenantId};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// Attempts of a lifecycle write (a task marked running, an outcome) before it is given up:
/// with backoff from 100 ms capped at 2 s, about 9 s — longer than a database restart, so
/// a job that ends during one still records its outcome (otherwise only the reconciler,
/// much later, would run the task again).
const LIFECYCLE_ATTEMPTS: u32 = 8;

/// `write` until it succeeds or [`LIFECYCLE_ATTEMPTS`] have failed (the last error).
async fn with_retries<T, F>(what: &str, task: TaskId, mut write: impl FnMut() -> F) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match write().await {
            Err(e) if attempt < LIFECYCLE_ATTEMPTS => {
                tracing::warn!(error = %e, task = %task, attempt, "{what} failed; retrying");
                let delay =
                    retry_delay(attempt, Duration::from_millis(100), Duration::from_secs(2));
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// Told once about each task that reached `succeeded` or `failed` (the tenant webhooks).
#[async_trait]
pub trait Finished: Send + Sync + 'static {
    async fn finished(
        &self,
        cx: TenantCtx,
        task: TaskId,
        kind: &str,
        status: TaskStatus,
        error: Option<&str>,
    );
}

pub struct TaskService {
    pub store: Arc<dyn Store>,
    pub queue: Arc<dyn JobQueue>,
    pub bus: Arc<dyn EventBus>,
    /// True when `Store::create_task` enqueues the job itself (embedded SQLite: one
    /// transaction); false when the queue is separate (Redis).
    queue_in_store: bool,
    finished: std::sync::OnceLock<Arc<dyn Finished>>,
    /// Room for enqueues and publications that outlive the request that made them.
    after_commit: Arc<tokio::sync::Semaphore>,
}

/// Enqueues (with their event's publication) running after their requests were answered,
/// at most: past it, a new task's request waits for one to end, so a stalled Redis slows
/// the API down rather than filling memory.
const AFTER_COMMIT: usize = 4096;

impl TaskService {
    /// Tells `observer` about every task that finishes from now on (set once).
    pub fn on_finished(&self, observer: Arc<dyn Finished>) {
        let _ = self.finished.set(observer);
    }

    pub fn new(
        store: Arc<dyn Store>,
        queue: Arc<dyn JobQueue>,
        bus: Arc<dyn EventBus>,
        queue_in_store: bool,
    ) -> Self {
        Self {
            store,
            queue,
            bus,
            queue_in_store,
            finished: std::sync::OnceLock::new(),
            after_commit: Arc::new(tokio::sync::Semaphore::new(AFTER_COMMIT)),
        }
    }

    /// Creates a task and enqueues its job. With a separate queue (Redis) the answer does
    /// not wait for the enqueue: the task is committed, and if the enqueue fails (Redis
    /// unreachable) or never happens (this process dies first), the reconciler enqueues it
    /// from the database. Embedded, the job is already in the task's transaction and only
    /// the in-process publication is left, which is done before answering.
    pub async fn submit(&self, cx: TenantCtx, task: NewTask) -> Result<TaskCreated> {
        let created = self.store.create_task(cx, task).await?;
        if let TaskCreated::New(task, event) = &created {
            let job = (!self.queue_in_store).then(|| NewJob::for_task(cx.tenant_id, task));
            let (queue, bus, event) = (self.queue.clone(), self.bus.clone(), event.clone());
            let kind = task.kind.clone();
            let follow = async move {
                // The enqueue and the event's publication go out together (each coalesced
                // with other requests' into one Redis call).
                let enqueue = async {
                    if let Some(job) = job
                        && let Err(e) = queue.enqueue(job).await
                    {
                        tracing::warn!(error = %e, task = %event.task_id, "enqueue failed; the reconciler will retry");
                    }
                };
                tokio::join!(enqueue, publish(&*bus, &event));
                metrics::counter!("morningai_jobs_enqueued_total", "kind" => kind).increment(1);
            };
            if self.queue_in_store {
                follow.await;
            } else {
                let permit = self
                    .after_commit
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| morningai_core::Error::internal("enqueue", e))?;
                tokio::spawn(async move {
                    follow.await;
                    drop(permit);
                });
            }
        }
        Ok(created)
    }

    /// Cancels a task: a queued one never runs; a running one is told to stop.
    pub async fn cancel(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        let task = self.store.cancel_task(cx, id).await?;
        if let Err(e) = self.queue.cancel(cx.tenant_id, id).await {
            tracing::warn!(error = %e, task = %id, "cancelling the job failed; the worker will see the cancelled task");
        }
        self.record(cx, id, TaskEventKind::Cancelled, json!({}))
            .await;
        Ok(task)
    }

    /// Stores an event and publishes it. Event delivery is best effort: a failure is logged,
    /// never turned into a failed task.
    pub async fn record(
        &self,
        cx: TenantCtx,
        task: TaskId,
        kind: TaskEventKind,
        data: Value,
    ) -> Option<TaskEvent> {
        match self
            .store
            .append_task_event(
                cx,
                NewTaskEvent {
                    task_id: task,
                    kind,
                    data,
                },
            )
            .await
        {
            Ok(ev) => {
                self.publish(&ev).await;
                Some(ev)
            }
            Err(e) => {
                tracing::warn!(error = %e, task = %task, "storing a task event failed");
                None
            }
        }
    }

    async fn publish(&self, event: &TaskEvent) {
        publish(&*self.bus, event).await
    }

    /// Records an attempt's outcome and its event atomically, then publishes the event.
    /// Nothing happens when the task already finished (a duplicate run).
    async fn finish(&self, lease: &Lease, outcome: TaskOutcome) {
        let cx = TenantCtx::new(lease.job.tenant_id);
        let id = lease.job.id;
        let write = || self.store.finish_task(cx, id, outcome.clone());
        match with_retries("recording the task outcome", id, write).await {
            Ok(Some(event)) => {
                self.publish(&event).await;
                if matches!(outcome.status, TaskStatus::Succeeded | TaskStatus::Failed)
                    && let Some(observer) = self.finished.get()
                {
                    let error = outcome.error.as_deref();
                    observer
                        .finished(cx, id, &lease.job.kind, outcome.status, error)
                        .await;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, task = %lease.job.id, "recording the task outcome failed")
            }
        }
    }
}

async fn publish(bus: &dyn EventBus, event: &TaskEvent) {
    if let Err(e) = bus.publish(event).await {
        tracing::warn!(error = %e, "publishing a task event failed; clients catch up from the store");
    }
}

#[async_trait]
impl Hooks for TaskService {
    async fn started(&self, lease: &Lease) -> Option<Started> {
        let cx = TenantCtx::new(lease.job.tenant_id);
        let (id, data) = (lease.job.id, json!({"attempt": lease.attempt}));
        let write = || self.store.start_task(cx, id, data.clone());
        match with_retries("marking the task running", id, write).await {
            Ok(Some((task, event))) => {
                self.publish(&event).await;
                Some(Started {
                    trace_id: task.trace_id,
                    created_by: task.created_by,
                })
            }
            Ok(None) => None,
            Err(e) => {
                // Not knowing is not a reason to skip: run it (handlers are at-least-once).
                tracing::warn!(error = %e, task = %lease.job.id, "marking the task running failed");
                Some(Started::default())
            }
        }
    }

    async fn succeeded(&self, lease: &Lease, result: Value) {
        let event_data = json!({"attempt": lease.attempt});
        let outcome = TaskOutcome {
            status: TaskStatus::Succeeded,
            result: Some(result),
            error: None,
            event_data,
        };
        self.finish(lease, outcome).await;
    }

    async fn failed(&self, lease: &Lease, error: &str, outcome: &Failure) {
        let (status, event_data) = match outcome {
            Failure::Retrying { at } => (
                TaskStatus::Retrying,
                json!({"attempt": lease.attempt, "error": error, "retry_at": at}),
            ),
            Failure::Dead => (
                TaskStatus::Failed,
                json!({"attempt": lease.attempt, "error": error}),
            ),
            Failure::Lost => return,
        };
        self.finish(
            lease,
            TaskOutcome {
                status,
                result: None,
                error: Some(error.to_owned()),
                event_data,
            },
        )
        .await;
    }

    async fn cancelled(&self, lease: &Lease) {
        // The API already marked the row cancelled and recorded the event; this only
        // covers a cancellation that reached the worker some other way.
        let outcome = TaskOutcome {
            status: TaskStatus::Cancelled,
            result: None,
            error: None,
            event_data: json!({}),
        };
        self.finish(lease, outcome).await;
    }

    async fn emit(&self, tenant: TenantId, task: TaskId, kind: TaskEventKind, data: Value) {
        self.record(TenantCtx::new(tenant), task, kind, data).await;
    }
}
