//! The `Checkpointer` port: durable state of workflow runs (threads). A checkpoint is
//! written after every superstep and stores only what that step changed — appended items
//! for append channels, the update for merge channels, the new value otherwise — so a
//! 500-step conversation does not store its history 500 times. A thread's state is the
//! replay of its checkpoint chain (or of its latest snapshot and what followed).

use crate::error::Result;
use crate::store::TenantCtx;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A task scheduled for the next step: a node, or a `Send` to a node with its argument.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingTask {
    pub id: String,
    pub node: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arg: Option<Value>,
}

/// A pause requested by `interrupt(value)` or a breakpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Interrupt {
    pub id: String,
    pub node: String,
    pub task_id: String,
    pub value: Value,
    /// A breakpoint the caller asked for (`interrupt_before`/`interrupt_after`), continued
    /// with no answer; otherwise a node's own `interrupt(value)`, which waits for one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub breakpoint: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: Uuid,
    pub thread_id: String,
    pub parent_id: Option<Uuid>,
    pub step: i64,
    /// Per channel: the delta this step wrote (see the module docs), or the full value
    /// when `snapshot` is set.
    pub writes: serde_json::Map<String, Value>,
    /// True when `writes` holds the complete state (after compaction): replay stops here.
    pub snapshot: bool,
    /// Channel → step of its last write; node → step it last ran ("seen").
    pub versions: serde_json::Map<String, Value>,
    pub next: Vec<PendingTask>,
    pub interrupts: Vec<Interrupt>,
    /// source (input | loop | update | fork), step, which nodes wrote.
    pub metadata: Value,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait Checkpointer: Send + Sync + 'static {
    async fn put(&self, cx: TenantCtx, checkpoint: &Checkpoint) -> Result<()>;
    /// Writes of tasks that finished inside the step that starts at `checkpoint_id`, keyed
    /// `<task>:<kind>`, kept so that a retried or resumed step does not run those tasks
    /// again. All of them are stored in one transaction; a key already stored is replaced,
    /// and within `writes` the last of equal keys wins.
    async fn put_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
        writes: &[(String, Value)],
    ) -> Result<()>;
    async fn pending_writes(
        &self,
        cx: TenantCtx,
        thread: &str,
        checkpoint_id: Uuid,
    ) -> Result<Vec<(String, Value)>>;
    /// Every checkpoint of the thread, oldest first (all branches).
    async fn thread_checkpoints(&self, cx: TenantCtx, thread: &str) -> Result<Vec<Checkpoint>>;
    /// Replaces the checkpoints before `keep_from` (same thread) by `snapshot` (compaction).
    async fn compact(&self, cx: TenantCtx, thread: &str, snapshot: &Checkpoint) -> Result<u64>;
    async fn delete_thread(&self, cx: TenantCtx, thread: &str) -> Result<u64>;
    /// Retention: deletes the checkpoints of threads whose newest checkpoint is older
    /// than `before`. Returns how many checkpoints went.
    async fn expire(&self, cx: TenantCtx, before: DateTime<Utc>) -> Result<u64>;
    /// Bytes the checkpoints of `thread` — or of every thread of the tenant — take in
    /// storage (for the benchmark and the tenant's storage quota).
    async fn stored_bytes(&self, cx: TenantCtx, thread: Option<&str>) -> Result<u64>;
}
