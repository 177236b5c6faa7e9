//! Coalescing: requests under one key (a tenant, or one for all) that arrive while a batch
//! under the same key is in flight wait for it and then go together, as one batch: one
//! statement, one script, one message, in one round trip. Under load a batch answers tens
//! of requests; alone, a request goes at once (one task hop more than a direct call).
//!
//! Batches run on tasks of their own, so a caller that gives up (a client that
//! disconnects) cannot cancel a batch other callers wait for. Requests under different keys
//! never share a batch (on PostgreSQL the key is the tenant, whose row-level security the
//! batch runs under).
//!
//! Used by the PostgreSQL store (reads of tasks by id, task creation) and the Redis queue
//! and event bus (enqueues, publications).

use crate::{Error, Result};
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

/// A batch of one key's requests, each with where its answer goes.
pub type Batch<I, A> = Vec<(I, oneshot::Sender<A>)>;

/// Runs one batch with the resource it needs (a store, a connection): answers every
/// request in it (a request left unanswered is told its batch was dropped).
pub type Run<K, R, I, A> = fn(R, K, Batch<I, A>) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a key must be: copied into each runner, and a map key.
pub trait Key: Copy + Eq + Hash + Send + Sync + 'static {}
impl<T: Copy + Eq + Hash + Send + Sync + 'static> Key for T {}

pub struct Coalescer<K, R, I, A> {
    shared: Arc<Shared<K, R, I, A>>,
}

impl<K, R, I, A> Clone for Coalescer<K, R, I, A> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<K, R, I, A> {
    keys: Mutex<HashMap<K, Waiting<I, A>>>,
    /// Batches in flight per key.
    in_flight: usize,
    /// Requests per batch.
    most: usize,
    run: Run<K, R, I, A>,
}

struct Waiting<I, A> {
    items: Batch<I, A>,
    in_flight: usize,
}

impl<K: Key, R: Clone + Send + 'static, I: Send + 'static, A: Send + 'static>
    Coalescer<K, R, I, A>
{
    /// Runs at most `in_flight` batches per key at once, of at most `most` requests each.
    pub fn new(in_flight: usize, most: usize, run: Run<K, R, I, A>) -> Self {
        assert!(in_flight > 0 && most > 0, "a coalescer must be able to run");
        Self {
            shared: Arc::new(Shared {
                keys: Mutex::default(),
                in_flight,
                most,
                run,
            }),
        }
    }

    /// `item`'s answer, from a batch run on `resource` with the concurrent requests under
    /// `key`. `context` names the operation in the error of a batch that was dropped.
    pub async fn ask(&self, resource: &R, key: K, item: I, context: &'static str) -> Result<A> {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut keys = self.shared.keys();
            let waiting = keys.entry(key).or_insert_with(|| Waiting {
                items: Vec::new(),
                in_flight: 0,
            });
            waiting.items.push((item, reply));
            let start = waiting.in_flight < self.shared.in_flight;
            if start {
                waiting.in_flight += 1;
            }
            start
        };
        if start {
            tokio::spawn(run_while_waiting(
                self.shared.clone(),
                resource.clone(),
                key,
            ));
        }
        answer
            .await
            .map_err(|_| Error::internal(context, "the batch was dropped"))
    }
}

impl<K: Key, R, I, A> Shared<K, R, I, A> {
    fn keys(&self) -> MutexGuard<'_, HashMap<K, Waiting<I, A>>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives a runner's slot back; `false` (the slot kept) when requests still wait.
    fn give_back(keys: &mut HashMap<K, Waiting<I, A>>, key: K) -> bool {
        let Some(waiting) = keys.get_mut(&key) else {
            return true;
        };
        if !waiting.items.is_empty() {
            return false;
        }
        waiting.in_flight -= 1;
        if waiting.in_flight == 0 {
            keys.remove(&key);
        }
        true
    }

    /// The next batch of `key`'s waiting requests; none, and the runner's slot given back,
    /// when nothing waits (under one lock, so no request can arrive unseen between).
    fn next_batch(&self, key: K) -> Option<Batch<I, A>> {
        let mut keys = self.keys();
        if Self::give_back(&mut keys, key) {
            return None;
        }
        let waiting = keys.get_mut(&key)?;
        let take = waiting.items.len().min(self.most);
        Some(waiting.items.drain(..take).collect())
    }
}

/// A runner's slot. A runner that ends without giving it back (it panicked, or the runtime
/// is shutting down) gives it back on drop and, when requests still wait, starts another.
struct Slot<K: Key, R: Clone + Send + 'static, I: Send + 'static, A: Send + 'static> {
    shared: Arc<Shared<K, R, I, A>>,
    resource: R,
    key: K,
    held: bool,
}

impl<K: Key, R: Clone + Send + 'static, I: Send + 'static, A: Send + 'static> Drop
    for Slot<K, R, I, A>
{
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let restart = !Shared::<K, R, I, A>::give_back(&mut self.shared.keys(), self.key);
        if restart && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(run_while_waiting(
                self.shared.clone(),
                self.resource.clone(),
                self.key,
            ));
        }
    }
}

/// Runs `key`'s waiting requests, batch after batch, until none wait.
async fn run_while_waiting<
    K: Key,
    R: Clone + Send + 'static,
    I: Send + 'static,
    A: Send + 'static,
>(
    shared: Arc<Shared<K, R, I, A>>,
    resource: R,
    key: K,
) {
    let mut slot = Slot {
        shared,
        resource,
        key,
        held: true,
    };
    while let Some(batch) = slot.shared.next_batch(key) {
        (slot.shared.run)(slot.resource.clone(), key, batch).await;
    }
    slot.held = false; // given back by `next_batch`
}
