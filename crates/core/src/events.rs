//! Task events and the `EventBus` port. Events are stored per task (so they can be
//! replayed after a reconnect) and published on a bus (so live clients see them from any
//! API process, whichever worker ran the task).

use crate::error::Result;
use crate::ids::{TaskId, TenantId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskEventKind {
    Queued,
    Started,
    Progress,
    Log,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskEventKind {
    /// The event that ends a task: nothing follows it.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Started => "started",
            Self::Progress => "progress",
            Self::Log => "log",
            Self::Retrying => "retrying",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl FromStr for TaskEventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => Self::Queued,
            "started" => Self::Started,
            "progress" => Self::Progress,
            "log" => Self::Log,
            "retrying" => Self::Retrying,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(format!("unknown task event kind {other:?}")),
        })
    }
}

impl fmt::Display for TaskEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored event. `id` increases monotonically per database, so it serves as the SSE
/// event id and as the resume point for `Last-Event-ID`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskEvent {
    pub id: i64,
    pub tenant_id: TenantId,
    pub task_id: TaskId,
    pub kind: TaskEventKind,
    pub data: Value,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NewTaskEvent {
    pub task_id: TaskId,
    pub kind: TaskEventKind,
    pub data: Value,
}

/// Publish/subscribe for task events across processes.
#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, event: &TaskEvent) -> Result<()>;
    /// Every event published from now on, by any process (lagging receivers lose the
    /// oldest; SSE clients then catch up from the store).
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TaskEvent>;
}

/// The embedded bus: an in-process broadcast channel.
pub struct LocalBus {
    tx: tokio::sync::broadcast::Sender<TaskEvent>,
}

impl LocalBus {
    pub fn new(capacity: usize) -> Self {
        Self {
            tx: tokio::sync::broadcast::channel(capacity).0,
        }
    }

    /// Delivers to local subscribers (also used by the Redis bus for incoming messages).
    pub fn deliver(&self, event: TaskEvent) {
        let _ = self.tx.send(event);
    }
}

impl Default for LocalBus {
    fn default() -> Self {
        Self::new(4096)
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: &TaskEvent) -> Result<()> {
        self.deliver(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TaskEvent> {
        self.tx.subscribe()
    }
}
