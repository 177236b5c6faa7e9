//! What nodes see and return: the context of a task (state, config, interrupts, stream
//! writers), commands, targets, errors, and the `Node` trait.

use crate::graph::END;
use crate::state::State;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio_util::sync::CancellationToken;

/// Where to go next.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Node(String),
    End,
    /// Run `node` once with `arg` as its input (map-reduce fan-out).
    Send {
        node: String,
        arg: Value,
    },
}

impl Target {
    pub fn node(name: &str) -> Self {
        if name == END {
            Target::End
        } else {
            Target::Node(name.to_owned())
        }
    }
}

/// What a node returns: writes to channels and, optionally, where to go (overriding the
/// node's edges).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Command {
    pub update: State,
    pub goto: Vec<Target>,
}

impl Command {
    pub fn update(update: State) -> Self {
        Self {
            update,
            goto: Vec::new(),
        }
    }

    pub fn goto(mut self, t: Target) -> Self {
        self.goto.push(t);
        self
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum NodeError {
    Failed {
        message: String,
        retryable: bool,
    },
    /// Raised by [`NodeContext::interrupt`]: pause the run until resumed.
    Interrupt(Value),
}

impl NodeError {
    pub fn retryable(m: impl Into<String>) -> Self {
        Self::Failed {
            message: m.into(),
            retryable: true,
        }
    }

    pub fn fatal(m: impl Into<String>) -> Self {
        Self::Failed {
            message: m.into(),
            retryable: false,
        }
    }
}

/// A streamed run event: `values` (state after a step), `updates` (what each node wrote),
/// `custom` (from nodes), `messages` (LLM token deltas from nodes), `debug` (tasks).
#[derive(Clone, Debug, PartialEq)]
pub struct StreamEvent {
    pub mode: &'static str,
    /// Subgraph path, outermost first (empty for the root graph).
    pub ns: Vec<String>,
    pub data: Value,
}

pub(crate) type Emit = crate::events::EventSender;

#[derive(Clone)]
pub struct NodeContext {
    /// The state at the start of this step.
    pub state: Arc<State>,
    /// The argument of a `Send`, if this task came from one.
    pub arg: Option<Value>,
    pub config: Arc<Value>,
    pub node: String,
    pub task_id: String,
    pub attempt: u32,
    pub cancel: CancellationToken,
    pub(crate) resume: Arc<Vec<Value>>,
    pub(crate) interrupts: Arc<AtomicUsize>,
    pub(crate) emit: Option<Emit>,
    pub(crate) ns: Vec<String>,
}

impl NodeContext {
    /// Pauses the run with `value` for a human (or another system) to answer; once resumed,
    /// returns the answer. A node with several interrupts gets their answers in order (the
    /// node re-runs on resume, so code before an interrupt must be idempotent).
    pub fn interrupt(&self, value: Value) -> Result<Value, NodeError> {
        let i = self.interrupts.fetch_add(1, Ordering::SeqCst);
        match self.resume.get(i) {
            Some(v) => Ok(v.clone()),
            None => Err(NodeError::Interrupt(value)),
        }
    }

    pub fn custom(&self, data: Value) {
        self.send("custom", data);
    }

    /// An LLM token delta for the `messages` stream.
    pub fn message_delta(&self, content: &str) {
        self.send("messages", json!({"node": self.node, "content": content}));
    }

    fn send(&self, mode: &'static str, data: Value) {
        if let Some(e) = &self.emit {
            e.send(StreamEvent {
                mode,
                ns: self.ns.clone(),
                data,
            });
        }
    }

    /// Context for running a subgraph from inside this node.
    pub(crate) fn child_emit(&self) -> (Option<Emit>, Vec<String>) {
        let mut ns = self.ns.clone();
        ns.push(format!("{}:{}", self.node, self.task_id));
        (self.emit.clone(), ns)
    }

    pub(crate) fn resume_values(&self) -> Vec<Value> {
        self.resume.as_ref().clone()
    }
}

#[async_trait]
pub trait Node: Send + Sync + 'static {
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError>;
}

/// A node from an async closure.
pub struct NodeFn<F>(pub F);

#[async_trait]
impl<F, Fut> Node for NodeFn<F>
where
    F: Fn(NodeContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Command, NodeError>> + Send + 'static,
{
    async fn run(&self, ctx: NodeContext) -> Result<Command, NodeError> {
        (self.0)(ctx).await
    }
}
