//! Reads of one tenant's tasks by id, coalesced (`coalesce.rs`): concurrent reads go
//! together as one statement (`id = ANY($2)`).

use crate::rows::{self, TASK_COLS};
use crate::store::PgStore;
use morningai_core::coalesce::{Batch, Coalescer};
use morningai_core::entities::Task;
use morningai_core::{Error, Result, TaskId, TenantCtx};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

/// Statements in flight per tenant: more would only queue on the pool.
const IN_FLIGHT: usize = 4;
/// Ids per statement.
const MOST: usize = 256;

pub(crate) type TaskReads = Coalescer<TenantCtx, PgStore, TaskId, Result<Option<Task>>>;

pub(crate) fn task_reads() -> TaskReads {
    Coalescer::new(IN_FLIGHT, MOST, run)
}

fn run(
    store: PgStore,
    cx: TenantCtx,
    batch: Batch<TaskId, Result<Option<Task>>>,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move { store.read_batch(cx, batch).await })
}

impl PgStore {
    /// The task `id` of `cx`'s tenant, read together with the tenant's concurrent reads.
    pub(crate) async fn coalesced_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.reads
            .ask(self, cx, id, "get task")
            .await??
            .ok_or(Error::NotFound("task"))
    }

    async fn read_batch(&self, cx: TenantCtx, batch: Batch<TaskId, Result<Option<Task>>>) {
        let ids: Vec<uuid::Uuid> = batch.iter().map(|(id, _)| id.0).collect();
        let read = self
            .scoped(
                cx,
                "get task",
                &format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND id = ANY($2)"),
                &[&cx.tenant_id.0, &ids],
            )
            .await
            .and_then(|rows| {
                rows.iter()
                    .map(|r| rows::task(r).map(|t| (t.id, t)))
                    .collect::<Result<HashMap<TaskId, Task>>>()
            });
        match read {
            Ok(found) => {
                for (id, reply) in batch {
                    // The same id asked twice in one batch: each asker gets a copy.
                    let _ = reply.send(Ok(found.get(&id).cloned()));
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
