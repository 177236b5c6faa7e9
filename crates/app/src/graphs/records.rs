//! The LangGraph Server records, typed: threads, runs, assistants, approvals, thread states,
//! and the requests that create and change them. Their JSON is what the official
//! `langgraph-sdk` clients parse; requests ignore fields we do not use (the clients send
//! many) but reject wrong types, naming the field.

use chrono::{DateTime, Utc};
use morningai_core::{Error, Result, Role, TaskId, UserId};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use uuid::Uuid;

/// Free-form metadata (a JSON object).
pub type Metadata = Map<String, Value>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThreadStatus {
    Idle,
    Busy,
    Interrupted,
    Error,
}

impl ThreadStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Interrupted => "interrupted",
            Self::Error => "error",
        }
    }
}

/// A pending interrupt: what the graph asked, and the id that answers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InterruptView {
    #[schema(value_type = Object)]
    pub value: Value,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Thread {
    pub thread_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    pub status: ThreadStatus,
    /// The state after the last run.
    #[schema(value_type = Object)]
    pub values: Metadata,
    /// Pending interrupts by task id.
    pub interrupts: BTreeMap<String, Vec<InterruptView>>,
    /// Why the thread is in `error` (an approval that expired, say).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Thread {
    pub fn new(id: Uuid, metadata: Metadata) -> Self {
        let now = morningai_core::now();
        Self {
            thread_id: id,
            created_at: now,
            updated_at: now,
            metadata,
            status: ThreadStatus::Idle,
            values: Metadata::new(),
            interrupts: BTreeMap::new(),
            error: None,
        }
    }

    /// The graph this thread runs (set by its first run).
    pub fn graph_id(&self) -> Option<&str> {
        self.metadata.get("graph_id").and_then(Value::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Pending,
    Running,
    Error,
    Success,
    Timeout,
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Error => "error",
            Self::Success => "success",
            Self::Timeout => "timeout",
            Self::Interrupted => "interrupted",
        }
    }

    /// Finished: it will not change again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Pending | Self::Running)
    }
}

/// What to do with a new run while the thread has one in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MultitaskStrategy {
    /// Refuse the new run.
    Reject,
    /// Stop the active run, keeping its progress.
    Interrupt,
    /// Stop the active run and delete it.
    Rollback,
    /// Run the new one afterwards.
    #[default]
    Enqueue,
}

/// A stream mode of the LangGraph API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum StreamMode {
    /// The whole state after each step.
    Values,
    /// What each node wrote.
    Updates,
    /// Token deltas as `{node, content}`.
    Messages,
    /// Token deltas as `[message chunk, metadata]` (event name `messages`).
    MessagesTuple,
    /// What nodes emitted with their stream writer.
    Custom,
    Tasks,
    Checkpoints,
    Debug,
    Events,
}

impl StreamMode {
    /// The engine's event mode this stream mode carries.
    pub fn engine_mode(self) -> &'static str {
        match self {
            Self::Values => "values",
            Self::Updates => "updates",
            Self::Messages | Self::MessagesTuple => "messages",
            Self::Custom => "custom",
            Self::Tasks => "tasks",
            Self::Checkpoints => "checkpoints",
            Self::Debug => "debug",
            Self::Events => "events",
        }
    }
}

/// One mode or several.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StreamModes {
    One(StreamMode),
    Many(Vec<StreamMode>),
}

impl StreamModes {
    /// The modes asked for (`values` when none).
    pub fn list(modes: Option<&Self>) -> Vec<StreamMode> {
        match modes {
            Some(Self::One(m)) => vec![*m],
            Some(Self::Many(v)) if !v.is_empty() => v.clone(),
            _ => vec![StreamMode::Values],
        }
    }
}

/// Nodes to stop before or after: a list of node names, or `"*"` for every node.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum NodeSelection {
    #[schema(value_type = String, example = "*")]
    All(AllNodes),
    Nodes(Vec<String>),
}

/// The literal `"*"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub enum AllNodes {
    #[serde(rename = "*")]
    All,
}

impl<'de> Deserialize<'de> for NodeSelection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Nodes(Vec<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) if s == "*" => Ok(Self::All(AllNodes::All)),
            Raw::Text(s) => Err(serde::de::Error::custom(format!(
                "expected \"*\" or a list of node names, got {s:?}"
            ))),
            Raw::Nodes(v) => Ok(Self::Nodes(v)),
        }
    }
}

impl NodeSelection {
    /// The node names, given the graph's nodes for `"*"`.
    pub fn resolve<'a>(sel: Option<&Self>, nodes: impl Iterator<Item = &'a str>) -> Vec<String> {
        match sel {
            None => Vec::new(),
            Some(Self::All(_)) => nodes.map(str::to_owned).collect(),
            Some(Self::Nodes(v)) => v.clone(),
        }
    }
}

/// `command` of a run request: an answer to pending interrupts (`resume`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunCommand {
    /// The answer to the single pending interrupt, or answers keyed by interrupt id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub resume: Option<Value>,
}

/// `config` of a run request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunConfigRequest {
    /// Most supersteps the run may take (default 25).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recursion_limit: Option<u32>,
    /// Passed to every node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub configurable: Option<Metadata>,
}

/// `POST /threads/{id}/runs` (and `/stream`, `/wait`, the stateless `/runs/*`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunRequest {
    /// An assistant id, or a graph id.
    pub assistant_id: String,
    /// The input state (absent when resuming).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<RunCommand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<RunConfigRequest>,
    /// Start from this checkpoint (time travel / fork).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_before: Option<NodeSelection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt_after: Option<NodeSelection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_mode: Option<StreamModes>,
    /// Stream events of subgraphs too (named `mode|namespace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_subgraphs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multitask_strategy: Option<MultitaskStrategy>,
}

impl RunRequest {
    /// The input as a state object (none when absent or not an object).
    pub fn input_state(&self) -> Option<Metadata> {
        self.input.as_ref().and_then(Value::as_object).cloned()
    }

    pub fn resume(&self) -> Option<&Value> {
        self.command
            .as_ref()
            .and_then(|c| c.resume.as_ref())
            .filter(|v| !v.is_null())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub run_id: Uuid,
    pub thread_id: Uuid,
    pub assistant_id: Uuid,
    pub graph_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status: RunStatus,
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// The request that created the run.
    pub kwargs: RunRequest,
    pub multitask_strategy: MultitaskStrategy,
    /// The queued task that executes the run.
    #[schema(value_type = String)]
    pub task_id: TaskId,
    #[schema(value_type = Option<String>)]
    pub created_by: Option<UserId>,
    /// Why the run failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For a run that carries approval decisions: the answer to each interrupt, by id. It
    /// answers exactly those, and fails if one is no longer pending when its turn comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub answers: Option<BTreeMap<String, Value>>,
}

/// A checkpoint's address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointRef {
    pub thread_id: Uuid,
    pub checkpoint_ns: String,
    pub checkpoint_id: Uuid,
    #[schema(value_type = Option<Object>)]
    pub checkpoint_map: Option<Value>,
}

impl CheckpointRef {
    pub fn new(thread_id: Uuid, checkpoint_id: Uuid) -> Self {
        Self {
            thread_id,
            checkpoint_ns: String::new(),
            checkpoint_id,
            checkpoint_map: None,
        }
    }
}

/// A task the next step will run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThreadTask {
    pub id: String,
    pub name: String,
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
    pub interrupts: Vec<InterruptView>,
    #[schema(value_type = Option<Object>)]
    pub checkpoint: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub state: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
}

/// A thread's state at a checkpoint (`GET /threads/{id}/state`, history entries).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ThreadState {
    #[schema(value_type = Object)]
    pub values: Value,
    /// The nodes the next step runs.
    pub next: Vec<String>,
    pub tasks: Vec<ThreadTask>,
    pub checkpoint: Option<CheckpointRef>,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub created_at: Option<DateTime<Utc>>,
    pub parent_checkpoint: Option<CheckpointRef>,
    pub interrupts: Vec<InterruptView>,
}

impl ThreadState {
    /// A thread that has not run yet.
    pub fn empty() -> Self {
        Self {
            values: Value::Object(Metadata::new()),
            next: Vec::new(),
            tasks: Vec::new(),
            checkpoint: None,
            metadata: Value::Object(Metadata::new()),
            created_at: None,
            parent_checkpoint: None,
            interrupts: Vec::new(),
        }
    }
}

/// An assistant in the LangGraph shape: a graph and its configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AssistantView {
    pub assistant_id: Uuid,
    pub graph_id: String,
    #[schema(value_type = Object)]
    pub config: Value,
    #[schema(value_type = Object)]
    pub context: Value,
    #[schema(value_type = Object)]
    pub metadata: Value,
    pub version: u32,
    pub name: String,
    pub description: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
        }
    }
}

impl std::str::FromStr for ApprovalStatus {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected,
            "expired" => Self::Expired,
            _ => {
                return Err(Error::invalid(
                    "status",
                    "pending, approved, rejected or expired",
                ));
            }
        })
    }
}

/// A person's decision on a graph interrupt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: Uuid,
    pub thread_id: Uuid,
    pub run_id: Uuid,
    pub graph_id: String,
    pub assistant_id: Uuid,
    pub interrupt_id: String,
    /// What the graph asked (for the agents: the draft or the diff).
    #[schema(value_type = Object)]
    pub value: Value,
    #[schema(value_type = Option<String>)]
    pub requested_by: Option<UserId>,
    pub status: ApprovalStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub decided_by: Option<UserId>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub comment: Option<String>,
}

impl Approval {
    /// A role the interrupt itself asks for (an assistant's approver role).
    pub fn asked_role(&self) -> Option<Role> {
        self.value
            .get("min_role")
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok())
    }
}

/// The outcome of a decision: the approval and the run that resumed the thread.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Decided {
    pub approval_id: Uuid,
    pub status: ApprovalStatus,
    pub run: Run,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn run_requests_take_what_the_sdk_sends_and_name_bad_fields() {
        let r: RunRequest = serde_json::from_value(json!({
            "assistant_id": "echo", "input": {"x": 1}, "stream_mode": ["values", "messages-tuple"],
            "stream_resumable": false, "on_disconnect": "cancel", "interrupt_before": "*",
        }))
        .unwrap();
        assert_eq!(
            StreamModes::list(r.stream_mode.as_ref()),
            [StreamMode::Values, StreamMode::MessagesTuple]
        );
        assert_eq!(
            NodeSelection::resolve(r.interrupt_before.as_ref(), ["a", "b"].into_iter()),
            ["a", "b"]
        );
        for bad in [
            json!({"assistant_id": 5}),
            json!({"assistant_id": "echo", "multitask_strategy": "later"}),
            json!({"assistant_id": "echo", "interrupt_after": "some"}),
            json!({"assistant_id": "echo", "stream_mode": "tokens"}),
        ] {
            assert!(
                serde_json::from_value::<RunRequest>(bad.clone()).is_err(),
                "{bad}"
            );
        }
    }
}
