//! Reads of one tenant's tasks by id, coalesced: requests that arrive while a read of the
//! same tenant is in flight wait for it and then go together, as one statement
//! (`id = ANY($2)`) in one round trip. Under load a statement answers tens of requests;
//! alone, a request goes at once (one task hop more than a direct read).
//!
//! The statements run on tasks of their own, so a caller that gives up (a client that
//! disconnects) cannot cancel a read other callers wait for. Tenants never share a
//! statement: each runs under its own tenant's row-level security.

use crate::rows::{self, TASK_COLS};
use crate::store::PgStore;
use morningai_core::entities::Task;
use morningai_core::{Error, Result, TaskId, TenantCtx, TenantId};
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::oneshot;

/// Statements in flight per tenant: more would only queue on the pool.
const IN_FLIGHT: usize = 4;
/// Ids per statement.
const MOST: usize = 256;

type Reply = oneshot::Sender<Result<Option<Task>>>;

#[derive(Default)]
pub(crate) struct TaskReads {
    tenants: Mutex<HashMap<TenantId, Waiting>>,
}

#[derive(Default)]
struct Waiting {
    ids: Vec<(TaskId, Reply)>,
    in_flight: usize,
}

impl TaskReads {
    fn tenants(&self) -> std::sync::MutexGuard<'_, HashMap<TenantId, Waiting>> {
        self.tenants
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives a reader's slot back; `false` (the slot kept) when reads still wait.
    fn give_back(tenants: &mut HashMap<TenantId, Waiting>, tenant: TenantId) -> bool {
        let Some(waiting) = tenants.get_mut(&tenant) else {
            return true;
        };
        if !waiting.ids.is_empty() {
            return false;
        }
        waiting.in_flight -= 1;
        if waiting.in_flight == 0 {
            tenants.remove(&tenant);
        }
        true
    }

    /// The next batch of `tenant`'s waiting reads; none, and the reader's slot given back,
    /// when nothing waits (under one lock, so no read can arrive unseen in between).
    fn next_batch(&self, tenant: TenantId) -> Option<Vec<(TaskId, Reply)>> {
        let mut tenants = self.tenants();
        if Self::give_back(&mut tenants, tenant) {
            return None;
        }
        let waiting = tenants.get_mut(&tenant)?;
        let take = waiting.ids.len().min(MOST);
        Some(waiting.ids.drain(..take).collect())
    }
}

/// A reader's slot. A reader that ends without giving it back (it panicked, or the runtime
/// is shutting down) gives it back on drop and, when reads still wait, starts another.
struct Slot {
    store: PgStore,
    cx: TenantCtx,
    held: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let restart = !TaskReads::give_back(&mut self.store.reads.tenants(), self.cx.tenant_id);
        if restart && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(read_while_waiting(self.store.clone(), self.cx));
        }
    }
}

/// Reads `cx`'s tenant's waiting tasks, batch after batch, until none wait.
async fn read_while_waiting(store: PgStore, cx: TenantCtx) {
    let mut slot = Slot {
        store,
        cx,
        held: true,
    };
    while let Some(batch) = slot.store.reads.next_batch(cx.tenant_id) {
        slot.store.read_batch(cx, batch).await;
    }
    slot.held = false; // given back by `next_batch`
}

impl PgStore {
    /// The task `id` of `cx`'s tenant, read together with the tenant's concurrent reads.
    pub(crate) async fn coalesced_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        let (reply, answer) = oneshot::channel();
        let start_reader = {
            let mut tenants = self.reads.tenants();
            let waiting = tenants.entry(cx.tenant_id).or_default();
            waiting.ids.push((id, reply));
            let start = waiting.in_flight < IN_FLIGHT;
            if start {
                waiting.in_flight += 1;
            }
            start
        };
        if start_reader {
            tokio::spawn(read_while_waiting(self.clone(), cx));
        }
        answer
            .await
            .map_err(|_| Error::internal("get task", "the read was dropped"))??
            .ok_or(Error::NotFound("task"))
    }

    async fn read_batch(&self, cx: TenantCtx, batch: Vec<(TaskId, Reply)>) {
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
