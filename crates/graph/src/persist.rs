//! Writing what a run produces: the pending writes of a step (batched across siblings) and
//! checkpoints by durability mode.

use crate::graph::{Graph, GraphError};
use crate::run::{Durability, RunConfig, storage};
use crate::state::State;
use morningai_core::TenantCtx;
use morningai_core::checkpoint::{Checkpoint, Checkpointer, Interrupt};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use uuid::Uuid;

/// What the tasks of one step share.
pub(crate) struct Step<'a> {
    pub(crate) config: &'a RunConfig,
    /// More than one task in the step: finished ones record pending writes.
    pub(crate) siblings: bool,
    pub(crate) pending: PendingWrites<'a>,
}

type WriteAnswer = tokio::sync::oneshot::Sender<Result<(), String>>;

/// The pending writes of one step, stored in batches: tasks that finish together share
/// one `put_writes` (one commit on SQLite, one round trip on PostgreSQL) instead of one
/// each. The first task to finish flushes; it yields once so that siblings finishing in
/// the same poll join its batch, and keeps flushing while writes arrive.
pub(crate) struct PendingWrites<'a> {
    checkpointer: &'a dyn Checkpointer,
    cx: TenantCtx,
    thread: &'a str,
    checkpoint: Uuid,
    queue: std::sync::Mutex<Vec<(String, Value, WriteAnswer)>>,
    flushing: std::sync::atomic::AtomicBool,
}

impl<'a> PendingWrites<'a> {
    pub(crate) fn new(
        checkpointer: &'a dyn Checkpointer,
        cx: TenantCtx,
        thread: &'a str,
        checkpoint: Uuid,
    ) -> Self {
        Self {
            checkpointer,
            cx,
            thread,
            checkpoint,
            queue: Default::default(),
            flushing: Default::default(),
        }
    }

    fn take(&self) -> Vec<(String, Value, WriteAnswer)> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Stores `key → value`; returns once it is stored.
    pub(crate) async fn put(&self, key: String, value: Value) -> Result<(), GraphError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((key, value, tx));
        if !self.flushing.swap(true, Ordering::AcqRel) {
            tokio::task::yield_now().await;
            loop {
                let batch = self.take();
                if batch.is_empty() {
                    self.flushing.store(false, Ordering::Release);
                    // A write queued after the take found a flusher: flush it unless a
                    // newer flusher already took over.
                    let waiting = !self
                        .queue
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_empty();
                    if waiting && !self.flushing.swap(true, Ordering::AcqRel) {
                        continue;
                    }
                    break;
                }
                let (writes, answers): (Vec<_>, Vec<_>) =
                    batch.into_iter().map(|(k, v, a)| ((k, v), a)).unzip();
                let r = self
                    .checkpointer
                    .put_writes(self.cx, self.thread, self.checkpoint, &writes)
                    .await
                    .map_err(|e| e.to_string());
                for a in answers {
                    let _ = a.send(r.clone());
                }
            }
        }
        match rx.await {
            Ok(r) => r.map_err(GraphError::Storage),
            Err(_) => Err(GraphError::Storage(
                "pending writes were dropped unstored".into(),
            )),
        }
    }
}

pub(crate) enum TaskError {
    Interrupt(Interrupt),
    Graph(GraphError),
}

/// Checkpoint persistence by durability mode.
pub(crate) struct Persist {
    checkpointer: Arc<dyn Checkpointer>,
    cx: TenantCtx,
    mode: Durability,
    /// Async: checkpoints handed to the background writer; Exit: accumulated in memory.
    queue: Option<mpsc::UnboundedSender<Checkpoint>>,
    background: Option<tokio::task::JoinHandle<Result<(), GraphError>>>,
    held: Vec<Checkpoint>,
    last: Option<Uuid>,
    reducers: BTreeMap<String, crate::channels::Reducer>,
}

impl Persist {
    pub(crate) fn new(
        checkpointer: Arc<dyn Checkpointer>,
        cx: TenantCtx,
        mode: Durability,
        graph: &Graph,
    ) -> Self {
        let mut p = Self {
            checkpointer,
            cx,
            mode,
            queue: None,
            background: None,
            held: Vec::new(),
            last: None,
            reducers: graph.channels.clone(),
        };
        if mode == Durability::Async {
            let (tx, mut rx) = mpsc::unbounded_channel::<Checkpoint>();
            let cp = p.checkpointer.clone();
            p.background = Some(tokio::spawn(async move {
                while let Some(c) = rx.recv().await {
                    cp.put(cx, &c).await.map_err(storage)?;
                }
                Ok(())
            }));
            p.queue = Some(tx);
        }
        p
    }

    pub(crate) fn last_id(&self) -> Option<Uuid> {
        self.last
    }

    pub(crate) async fn put(&mut self, c: &Checkpoint) -> Result<(), GraphError> {
        self.last = Some(c.id);
        match self.mode {
            Durability::Sync => self.checkpointer.put(self.cx, c).await.map_err(storage),
            Durability::Async => {
                if let Some(q) = &self.queue {
                    // A closed queue means the background writer failed; finish() reports it.
                    let _ = q.send(c.clone()).is_ok();
                }
                Ok(())
            }
            Durability::Exit => {
                self.held.push(c.clone());
                Ok(())
            }
        }
    }

    /// Exit mode stores one checkpoint whose writes combine the held ones' deltas.
    async fn write_held(&mut self) -> Result<(), GraphError> {
        let held = std::mem::take(&mut self.held);
        let Some(last) = held.last().cloned() else {
            return Ok(());
        };
        let first = &held[0];
        let mut writes: State = Map::new();
        let mut versions: State = Map::new();
        for c in &held {
            for (k, d) in &c.writes {
                let merged = match (writes.get(k), self.reducers.get(k)) {
                    (Some(prev), Some(r)) => r.replay(prev, d),
                    _ => d.clone(),
                };
                writes.insert(k.clone(), merged);
            }
            versions.extend(c.versions.clone());
        }
        let combined = Checkpoint {
            parent_id: first.parent_id,
            writes,
            versions,
            ..last
        };
        self.checkpointer
            .put(self.cx, &combined)
            .await
            .map_err(storage)
    }

    pub(crate) async fn finish(&mut self) -> Result<(), GraphError> {
        match self.mode {
            Durability::Sync => Ok(()),
            Durability::Async => {
                self.queue = None;
                match self.background.take() {
                    Some(h) => h.await.map_err(|e| GraphError::Storage(e.to_string()))?,
                    None => Ok(()),
                }
            }
            Durability::Exit => self.write_held().await,
        }
    }
}
