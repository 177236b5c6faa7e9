//! The database is the system of record. The reconciler (1) returns jobs whose worker
//! stopped heartbeating to the queue and (2) re-enqueues tasks the database says are
//! unfinished but the queue no longer knows (a flushed or restarted Redis), so no task is
//! ever lost because a broker lost its memory.

use morningai_core::Store;
use morningai_core::queue::{JobQueue, NewJob};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct ReconcilerConfig {
    pub every: Duration,
    /// Only tasks untouched for this long are checked, so a task between its insert and
    /// its enqueue is never enqueued twice.
    pub min_age: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            min_age: Duration::from_secs(30),
        }
    }
}

/// One pass; returns (reclaimed leases, re-enqueued tasks).
pub async fn reconcile_once(
    store: &dyn Store,
    queue: &dyn JobQueue,
    min_age: Duration,
) -> morningai_core::Result<(u64, u64)> {
    let reclaimed = queue.reclaim_expired().await?;
    let before = chrono::Utc::now() - chrono::Duration::from_std(min_age).unwrap_or_default();
    let mut requeued = 0;
    for (tenant, task) in store.unfinished_tasks(before, 1000).await? {
        if !queue.contains(task.id).await? {
            queue.enqueue(NewJob::for_task(tenant, &task)).await?;
            requeued += 1;
        }
    }
    if reclaimed + requeued > 0 {
        tracing::info!(reclaimed, requeued, "reconciler repaired the queue");
        metrics::counter!("morningai_jobs_reclaimed_total").increment(reclaimed);
        metrics::counter!("morningai_jobs_requeued_total").increment(requeued);
    }
    Ok((reclaimed, requeued))
}

pub async fn run_reconciler(
    store: Arc<dyn Store>,
    queue: Arc<dyn JobQueue>,
    config: ReconcilerConfig,
    stop: CancellationToken,
) {
    loop {
        if let Err(e) = reconcile_once(&*store, &*queue, config.min_age).await {
            tracing::warn!(error = %e, "reconciler pass failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(config.every) => {},
            _ = stop.cancelled() => return,
        }
    }
}
