//! Following task events: every stored event of a tenant (or of one task) after a given
//! id, each exactly once, then live. The stored events are the source of truth: the event
//! bus only wakes the tail up, and every wake-up (or a periodic poll, in case a bus message
//! was lost) reads the store, so a reconnect or a dropped pub/sub message loses nothing.
//!
//! The tail's cursor is the last id it sent: the store promises that a tenant's event ids
//! become visible in id order ([`morningai_core::TaskStore::task_events`]), so nothing
//! below the cursor can appear later — in this connection or in the next one, which
//! resumes from the client's `Last-Event-ID`.

use morningai_core::events::TaskEvent;
use morningai_core::{Result, Store, TaskId, TenantCtx};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Read the store this often even when the bus says nothing.
const POLL: Duration = Duration::from_secs(2);
/// Events read per store round trip.
const PAGE: u32 = 1000;

/// A cursor over a tenant's (or a task's) events; see the module docs.
pub struct Tail {
    store: Arc<dyn Store>,
    bus: broadcast::Receiver<TaskEvent>,
    cx: TenantCtx,
    task: Option<TaskId>,
    /// The last id sent (or the one the tail started after).
    cursor: i64,
    /// The last read returned a full page: read again before waiting.
    backlog: bool,
}

impl Tail {
    /// Events after `after`; `bus` is a fresh subscription to the event bus (subscribe
    /// before reading, so nothing published in between is missed).
    pub fn new(
        store: Arc<dyn Store>,
        bus: broadcast::Receiver<TaskEvent>,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
    ) -> Self {
        Self {
            store,
            bus,
            cx,
            task,
            cursor: after,
            backlog: true,
        }
    }

    /// The next events not sent yet, in id order; waits for them. `None` when the bus
    /// closed (the process is shutting down).
    pub async fn next(&mut self) -> Option<Result<Vec<TaskEvent>>> {
        loop {
            if !self.backlog && !self.wake().await {
                return None;
            }
            match self.read().await {
                Ok(events) if events.is_empty() => continue,
                other => return Some(other),
            }
        }
    }

    /// Passes each event to `on_event` up to the task's terminal event (a task tail), or
    /// until the bus closes.
    pub async fn until_end(&mut self, mut on_event: impl FnMut(&TaskEvent)) -> Result<()> {
        while let Some(batch) = self.next().await {
            for e in batch? {
                on_event(&e);
                if e.kind.is_terminal() {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Reads the events after the cursor and moves it past them.
    async fn read(&mut self) -> Result<Vec<TaskEvent>> {
        // A failed read waits for the next wake-up rather than retrying at once.
        self.backlog = false;
        let events = self
            .store
            .task_events(self.cx, self.task, self.cursor, PAGE)
            .await?;
        self.backlog = events.len() == PAGE as usize;
        if let Some(last) = events.last() {
            self.cursor = last.id;
        }
        Ok(events)
    }

    /// Waits until the bus announces an event of the tenant (and of the task, if any), the
    /// poll interval passes, or a lagging receiver may have missed one. False when the bus
    /// closed.
    async fn wake(&mut self) -> bool {
        let deadline = tokio::time::sleep(POLL);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                r = self.bus.recv() => match r {
                    Ok(e) if e.tenant_id == self.cx.tenant_id
                        && self.task.is_none_or(|t| t == e.task_id) => return true,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                },
                _ = &mut deadline => return true,
            }
        }
    }
}
