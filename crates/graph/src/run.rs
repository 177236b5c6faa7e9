//! Running a graph: supersteps, the barrier, retries, timeouts, interrupts, checkpoints.

use crate::graph::{END, Graph, GraphError, START};
use crate::state::{State, reconstruct};
use async_trait::async_trait;
use morningai_core::TenantCtx;
use morningai_core::checkpoint::{Checkpoint, Checkpointer, Interrupt, PendingTask};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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

type Emit = mpsc::UnboundedSender<StreamEvent>;

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
    resume: Arc<Vec<Value>>,
    interrupts: Arc<AtomicUsize>,
    emit: Option<Emit>,
    ns: Vec<String>,
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
            let _ = e.send(StreamEvent {
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Persist each checkpoint before the next step starts.
    #[default]
    Sync,
    /// Persist in the background, in order, while the next step runs; flushed at the end.
    Async,
    /// Persist once, when the run ends (or pauses): one checkpoint with the combined delta.
    Exit,
}

#[derive(Clone, Debug)]
pub struct RunConfig {
    pub thread_id: String,
    pub recursion_limit: usize,
    pub interrupt_before: Vec<String>,
    pub interrupt_after: Vec<String>,
    pub durability: Durability,
    /// Passed to every node (`configurable` in LangGraph terms).
    pub config: Value,
    /// Start from this checkpoint instead of the latest (time travel / fork).
    pub checkpoint_id: Option<Uuid>,
}

impl RunConfig {
    pub fn new(thread_id: impl Into<String>) -> Self {
        Self {
            thread_id: thread_id.into(),
            recursion_limit: 25,
            interrupt_before: Vec::new(),
            interrupt_after: Vec::new(),
            durability: Durability::Sync,
            config: Value::Null,
            checkpoint_id: None,
        }
    }
}

/// Answers to pending interrupts.
#[derive(Clone, Debug, PartialEq)]
pub enum Resume {
    /// The answer to the only pending interrupt (or to breakpoints: continue).
    Value(Value),
    /// Answers by interrupt id.
    ById(HashMap<String, Value>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub state: State,
    /// Non-empty when the run paused.
    pub interrupts: Vec<Interrupt>,
    pub checkpoint_id: Option<Uuid>,
    pub steps: usize,
}

/// Runs graphs for one tenant against a checkpointer.
#[derive(Clone)]
pub struct Runner {
    pub graph: Arc<Graph>,
    pub checkpointer: Arc<dyn Checkpointer>,
    pub cx: TenantCtx,
    pub events: Option<mpsc::UnboundedSender<StreamEvent>>,
    pub cancel: CancellationToken,
    pub(crate) ns: Vec<String>,
    /// Merged into every checkpoint's metadata (e.g. the run id).
    pub metadata: Value,
}

fn short_hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A checkpointer failure, as the engine reports it.
pub(crate) fn storage(e: morningai_core::Error) -> GraphError {
    GraphError::Storage(e.to_string())
}

/// Pending-write keys: `<task>:writes`, `<task>:interrupt`, `<task>:resume`.
#[derive(Default)]
struct StepMemory {
    done: HashMap<String, Command>,
    interrupts: HashMap<String, Interrupt>,
    resumes: HashMap<String, Vec<Value>>,
}

fn command_to_json(c: &Command) -> Value {
    let goto: Vec<Value> = c
        .goto
        .iter()
        .map(|t| match t {
            Target::Node(n) => json!({"node": n}),
            Target::End => json!({"node": END}),
            Target::Send { node, arg } => json!({"node": node, "arg": arg}),
        })
        .collect();
    json!({"update": c.update, "goto": goto})
}

fn command_from_json(v: &Value) -> Command {
    let update = v["update"].as_object().cloned().unwrap_or_default();
    let goto = v["goto"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let node = g["node"].as_str().unwrap_or(END);
            match g.get("arg") {
                Some(arg) => Target::Send {
                    node: node.to_owned(),
                    arg: arg.clone(),
                },
                None => Target::node(node),
            }
        })
        .collect();
    Command { update, goto }
}

impl Runner {
    pub fn new(graph: Arc<Graph>, checkpointer: Arc<dyn Checkpointer>, cx: TenantCtx) -> Self {
        Self {
            graph,
            checkpointer,
            cx,
            events: None,
            cancel: CancellationToken::new(),
            ns: Vec::new(),
            metadata: Value::Null,
        }
    }

    pub fn with_events(mut self, tx: mpsc::UnboundedSender<StreamEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// Sends a stream event; `data` is built only when someone listens.
    fn emit(&self, mode: &'static str, data: impl FnOnce() -> Value) {
        if let Some(e) = &self.events {
            let _ = e.send(StreamEvent {
                mode,
                ns: self.ns.clone(),
                data: data(),
            });
        }
    }

    async fn step_memory(&self, thread: &str, cp: Uuid) -> Result<StepMemory, GraphError> {
        let mut m = StepMemory::default();
        for (key, v) in self
            .checkpointer
            .pending_writes(self.cx, thread, cp)
            .await
            .map_err(storage)?
        {
            let (task, kind) = key.rsplit_once(':').unwrap_or((&key, ""));
            match kind {
                "writes" => {
                    m.done.insert(task.to_owned(), command_from_json(&v));
                }
                "interrupt" => {
                    if let Ok(i) = serde_json::from_value(v) {
                        m.interrupts.insert(task.to_owned(), i);
                    }
                }
                "resume" => {
                    m.resumes
                        .insert(task.to_owned(), v.as_array().cloned().unwrap_or_default());
                }
                _ => {}
            }
        }
        Ok(m)
    }

    /// Runs (or resumes) the thread in `config` until END, an interrupt, or an error.
    pub async fn run(
        &self,
        input: Option<State>,
        resume: Option<Resume>,
        config: &RunConfig,
    ) -> Result<Outcome, GraphError> {
        let thread = config.thread_id.as_str();
        let all = self
            .checkpointer
            .thread_checkpoints(self.cx, thread)
            .await
            .map_err(storage)?;
        let base =
            match config.checkpoint_id {
                Some(id) => Some(all.iter().find(|c| c.id == id).cloned().ok_or_else(|| {
                    GraphError::Resume(format!("no checkpoint {id} in this thread"))
                })?),
                None => all.iter().max_by_key(|c| c.id).cloned(),
            };
        let mut state = match &base {
            Some(b) => reconstruct(&self.graph, &all, b.id),
            None => self
                .graph
                .channels
                .iter()
                .map(|(k, r)| (k.clone(), r.empty()))
                .collect(),
        };
        let mut writer = Persist::new(
            self.checkpointer.clone(),
            self.cx,
            config.durability,
            &self.graph,
        );
        let mut current: Checkpoint;
        let mut skip_breakpoint = false;
        let mut steps = 0usize;
        // Pending writes exist only for a checkpoint read from storage (a resumed or
        // recovered step); one this run just made has none yet, so its step skips the read.
        let mut stored = input.is_none();
        match (input, &base) {
            (Some(input), _) => {
                // A new input starts a new run on the thread from its current state.
                let writes: BTreeMap<String, Vec<Value>> =
                    input.into_iter().map(|(k, v)| (k, vec![v])).collect();
                let (deltas, versions) = self.apply(
                    &mut state,
                    &writes,
                    base.as_ref().map_or(-1, |b| b.step) + 1,
                )?;
                let next = self.next_tasks_after(&[(START.to_owned(), None)], &state);
                current = self.checkpoint(
                    thread,
                    base.as_ref(),
                    deltas,
                    versions,
                    next,
                    json!({"source": "input", "writes": {START: writes}}),
                );
                writer.put(&current).await?;
                self.emit("values", || Value::Object(state.clone()));
            }
            (None, Some(b)) => {
                current = b.clone();
                let pending = self.step_memory(thread, b.id).await?;
                match &resume {
                    Some(r) => {
                        let by_id: HashMap<String, Value> = match r {
                            Resume::ById(m) => m.clone(),
                            Resume::Value(v) => pending
                                .interrupts
                                .values()
                                .map(|i| (i.id.clone(), v.clone()))
                                .collect(),
                        };
                        let answers: Vec<(String, Value)> = pending
                            .interrupts
                            .iter()
                            .filter_map(|(task, intr)| {
                                let v = by_id.get(&intr.id)?;
                                let mut values =
                                    pending.resumes.get(task).cloned().unwrap_or_default();
                                values.push(v.clone());
                                Some((format!("{task}:resume"), Value::Array(values)))
                            })
                            .collect();
                        let answered = answers.len();
                        if answered > 0 {
                            self.checkpointer
                                .put_writes(self.cx, thread, b.id, &answers)
                                .await
                                .map_err(storage)?;
                        }
                        if answered == 0
                            && b.interrupts.is_empty()
                            && !pending.interrupts.is_empty()
                        {
                            return Err(GraphError::Resume(
                                "no pending interrupt has that id".into(),
                            ));
                        }
                        skip_breakpoint = true;
                    }
                    None => skip_breakpoint = !b.interrupts.is_empty(),
                }
            }
            (None, None) => {
                return Err(GraphError::Resume(
                    "the thread has no state: give an input".into(),
                ));
            }
        }
        loop {
            if current.next.is_empty() {
                writer.finish().await?;
                return Ok(Outcome {
                    state,
                    interrupts: Vec::new(),
                    checkpoint_id: writer.last_id(),
                    steps,
                });
            }
            if self.cancel.is_cancelled() {
                writer.finish().await?;
                return Err(GraphError::Cancelled);
            }
            if steps >= config.recursion_limit {
                writer.finish().await?;
                return Err(GraphError::RecursionLimit {
                    limit: config.recursion_limit,
                });
            }
            if !skip_breakpoint
                && let Some(t) = current
                    .next
                    .iter()
                    .find(|t| config.interrupt_before.contains(&t.node))
            {
                let intr = Interrupt {
                    id: short_hash(&[&current.id.to_string(), &t.id, "before"]),
                    node: t.node.clone(),
                    task_id: t.id.clone(),
                    value: json!({"breakpoint": "before", "node": t.node}),
                };
                current.interrupts = vec![intr.clone()];
                writer.put(&current).await?;
                writer.finish().await?;
                return Ok(Outcome {
                    state,
                    interrupts: vec![intr],
                    checkpoint_id: writer.last_id(),
                    steps,
                });
            }
            skip_breakpoint = false;
            let memory = if std::mem::take(&mut stored) {
                self.step_memory(thread, current.id).await?
            } else {
                StepMemory::default()
            };
            let snapshot = Arc::new(state.clone());
            let step = Step {
                config,
                siblings: current.next.len() > 1,
                pending: PendingWrites::new(
                    self.checkpointer.as_ref(),
                    self.cx,
                    thread,
                    current.id,
                ),
            };
            let mut runs = Vec::new();
            for task in &current.next {
                if memory.done.contains_key(&task.id) {
                    continue; // finished before a crash or an interrupt: never run twice
                }
                let resume = memory.resumes.get(&task.id).cloned().unwrap_or_default();
                runs.push(self.run_task(task.clone(), snapshot.clone(), resume, &step));
            }
            let results = futures_util::future::join_all(runs).await;
            let mut interrupts = Vec::new();
            let mut failure = None;
            let mut done = memory.done;
            for (task, r) in results {
                match r {
                    Ok(cmd) => {
                        done.insert(task.id.clone(), cmd);
                    }
                    Err(TaskError::Interrupt(i)) => interrupts.push(i),
                    Err(TaskError::Graph(e)) => failure = failure.or(Some(e)),
                }
            }
            if let Some(e) = failure {
                writer.finish().await?;
                return Err(e);
            }
            if !interrupts.is_empty() {
                writer.finish().await?;
                return Ok(Outcome {
                    state,
                    interrupts,
                    checkpoint_id: Some(current.id),
                    steps,
                });
            }
            // The barrier: writes of every task, in task order, through the reducers.
            let mut writes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            let mut by_node: Map<String, Value> = Map::new();
            let mut ran = Vec::new();
            for task in &current.next {
                let cmd = &done[&task.id];
                for (k, v) in &cmd.update {
                    writes.entry(k.clone()).or_default().push(v.clone());
                }
                by_node.insert(task.node.clone(), Value::Object(cmd.update.clone()));
                ran.push((
                    task.node.clone(),
                    (!cmd.goto.is_empty()).then(|| cmd.goto.clone()),
                ));
            }
            let step = current.step + 1;
            let (deltas, mut versions) = self.apply(&mut state, &writes, step)?;
            for (node, _) in &ran {
                versions.insert(format!("node:{node}"), json!(step));
            }
            let next = self.next_tasks_after(&ran, &state);
            let after = ran
                .iter()
                .find(|(n, _)| config.interrupt_after.contains(n))
                .map(|(n, _)| n.clone());
            let mut cp = self.checkpoint(
                thread,
                Some(&current),
                deltas,
                versions,
                next,
                json!({"source": "loop", "writes": by_node}),
            );
            steps += 1;
            self.emit("updates", || Value::Object(by_node));
            self.emit("values", || Value::Object(state.clone()));
            if let Some(node) = after {
                let intr = Interrupt {
                    id: short_hash(&[&cp.id.to_string(), &node, "after"]),
                    node: node.clone(),
                    task_id: String::new(),
                    value: json!({"breakpoint": "after", "node": node}),
                };
                cp.interrupts = vec![intr.clone()];
                writer.put(&cp).await?;
                writer.finish().await?;
                return Ok(Outcome {
                    state,
                    interrupts: vec![intr],
                    checkpoint_id: writer.last_id(),
                    steps,
                });
            }
            writer.put(&cp).await?;
            current = cp;
        }
    }

    fn checkpoint(
        &self,
        thread: &str,
        parent: Option<&Checkpoint>,
        writes: State,
        versions: State,
        next: Vec<PendingTask>,
        mut metadata: Value,
    ) -> Checkpoint {
        let step = parent.map_or(-1, |p| p.step) + 1;
        metadata["step"] = json!(step);
        if let Value::Object(extra) = &self.metadata {
            for (k, v) in extra {
                metadata[k] = v.clone();
            }
        }
        let id = Uuid::now_v7();
        let next = next
            .into_iter()
            .enumerate()
            .map(|(i, mut t)| {
                t.id = short_hash(&[&id.to_string(), &t.node, &i.to_string()]);
                t
            })
            .collect();
        Checkpoint {
            id,
            thread_id: thread.to_owned(),
            parent_id: parent.map(|p| p.id),
            step,
            writes,
            snapshot: false,
            versions,
            next,
            interrupts: Vec::new(),
            metadata,
            created_at: morningai_core::now(),
        }
    }

    /// Applies one step's writes; returns the deltas to store and the channel versions.
    fn apply(
        &self,
        state: &mut State,
        writes: &BTreeMap<String, Vec<Value>>,
        step: i64,
    ) -> Result<(State, State), GraphError> {
        let mut deltas = Map::new();
        let mut versions = Map::new();
        for (channel, ws) in writes {
            let reducer =
                self.graph
                    .channels
                    .get(channel)
                    .ok_or_else(|| GraphError::InvalidUpdate {
                        step,
                        message: format!("write to undeclared channel {channel:?}"),
                    })?;
            let current = state
                .get(channel)
                .cloned()
                .unwrap_or_else(|| reducer.empty());
            let (value, delta) = reducer
                .apply(channel, &current, ws)
                .map_err(|message| GraphError::InvalidUpdate { step, message })?;
            state.insert(channel.clone(), value);
            deltas.insert(channel.clone(), delta);
            versions.insert(channel.clone(), json!(step));
        }
        Ok((deltas, versions))
    }

    /// Targets of the nodes that ran: their gotos, or their edges and routers. Plain node
    /// targets are deduplicated (a node triggered by several nodes runs once); every
    /// `Send` is a task of its own.
    fn next_tasks_after(
        &self,
        ran: &[(String, Option<Vec<Target>>)],
        state: &State,
    ) -> Vec<PendingTask> {
        let mut nodes: Vec<String> = Vec::new();
        let mut sends = Vec::new();
        for (node, goto) in ran {
            let targets: Vec<Target> = match goto {
                Some(g) => g.clone(),
                None => {
                    let mut t: Vec<Target> = self
                        .graph
                        .edges
                        .get(node)
                        .into_iter()
                        .flatten()
                        .map(|n| Target::node(n))
                        .collect();
                    if let Some(router) = self.graph.routers.get(node) {
                        t.extend(router(state));
                    }
                    t
                }
            };
            for t in targets {
                match t {
                    Target::Node(n) if !nodes.contains(&n) => nodes.push(n),
                    Target::Send { node, arg } => sends.push(PendingTask {
                        id: String::new(),
                        node,
                        arg: Some(arg),
                    }),
                    _ => {}
                }
            }
        }
        nodes
            .into_iter()
            .map(|node| PendingTask {
                id: String::new(),
                node,
                arg: None,
            })
            .chain(sends)
            .collect()
    }

    async fn run_task(
        &self,
        task: PendingTask,
        state: Arc<State>,
        resume: Vec<Value>,
        step: &Step<'_>,
    ) -> (PendingTask, Result<Command, TaskError>) {
        let r = self.run_task_inner(&task, state, resume, step).await;
        (task, r)
    }

    async fn run_task_inner(
        &self,
        task: &PendingTask,
        state: Arc<State>,
        resume: Vec<Value>,
        step: &Step<'_>,
    ) -> Result<Command, TaskError> {
        let Some(spec) = self.graph.nodes.get(&task.node) else {
            return Err(TaskError::Graph(GraphError::Invalid(format!(
                "no node {:?}",
                task.node
            ))));
        };
        let policy = spec.retry.clone().unwrap_or(crate::graph::RetryPolicy {
            max_attempts: 1,
            ..Default::default()
        });
        let resume = Arc::new(resume);
        let mut attempt = 0;
        let mut backoff = policy.initial_backoff;
        loop {
            attempt += 1;
            self.emit(
                "debug",
                || json!({"type": "task", "node": task.node, "task_id": task.id, "attempt": attempt}),
            );
            let ctx = NodeContext {
                state: state.clone(),
                arg: task.arg.clone(),
                config: Arc::new(step.config.config.clone()),
                node: task.node.clone(),
                task_id: task.id.clone(),
                attempt,
                cancel: self.cancel.child_token(),
                resume: resume.clone(),
                interrupts: Arc::new(AtomicUsize::new(0)),
                emit: self.events.clone(),
                ns: self.ns.clone(),
            };
            let fut = spec.node.run(ctx);
            let r = tokio::select! {
                r = async {
                    match spec.timeout {
                        Some(t) => tokio::time::timeout(t, fut).await.map_err(|_| t),
                        None => Ok(fut.await),
                    }
                } => r,
                _ = self.cancel.cancelled() => return Err(TaskError::Graph(GraphError::Cancelled)),
            };
            let err = match r {
                // Pending writes protect finished siblings when the step cannot complete;
                // a step of one task has none to protect, and its checkpoint follows at once.
                Ok(Ok(cmd)) if !step.siblings => return Ok(cmd),
                Ok(Ok(cmd)) => {
                    let key = format!("{}:writes", task.id);
                    if let Err(e) = step.pending.put(key, command_to_json(&cmd)).await {
                        return Err(TaskError::Graph(e));
                    }
                    self.emit(
                        "debug",
                        || json!({"type": "task_result", "node": task.node, "task_id": task.id}),
                    );
                    return Ok(cmd);
                }
                Ok(Err(NodeError::Interrupt(value))) => {
                    let n = resume.len();
                    let intr = Interrupt {
                        id: short_hash(&[&task.id, &n.to_string()]),
                        node: task.node.clone(),
                        task_id: task.id.clone(),
                        value,
                    };
                    let key = format!("{}:interrupt", task.id);
                    let v = serde_json::to_value(&intr).unwrap_or_default();
                    if let Err(e) = step.pending.put(key, v).await {
                        return Err(TaskError::Graph(e));
                    }
                    return Err(TaskError::Interrupt(intr));
                }
                Ok(Err(NodeError::Failed { message, retryable })) => (
                    GraphError::NodeFailed {
                        node: task.node.clone(),
                        message,
                    },
                    retryable,
                ),
                Err(after) => (
                    GraphError::Timeout {
                        node: task.node.clone(),
                        after,
                    },
                    true,
                ),
            };
            if !err.1 || attempt >= policy.max_attempts {
                return Err(TaskError::Graph(err.0));
            }
            tokio::time::sleep(backoff).await;
            backoff = backoff.mul_f64(policy.factor).min(policy.max_backoff);
        }
    }
}

/// What the tasks of one step share.
struct Step<'a> {
    config: &'a RunConfig,
    /// More than one task in the step: finished ones record pending writes.
    siblings: bool,
    pending: PendingWrites<'a>,
}

type WriteAnswer = tokio::sync::oneshot::Sender<Result<(), String>>;

/// The pending writes of one step, stored in batches: tasks that finish together share
/// one `put_writes` (one commit on SQLite, one round trip on PostgreSQL) instead of one
/// each. The first task to finish flushes; it yields once so that siblings finishing in
/// the same poll join its batch, and keeps flushing while writes arrive.
struct PendingWrites<'a> {
    checkpointer: &'a dyn Checkpointer,
    cx: TenantCtx,
    thread: &'a str,
    checkpoint: Uuid,
    queue: std::sync::Mutex<Vec<(String, Value, WriteAnswer)>>,
    flushing: std::sync::atomic::AtomicBool,
}

impl<'a> PendingWrites<'a> {
    fn new(
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
    async fn put(&self, key: String, value: Value) -> Result<(), GraphError> {
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

enum TaskError {
    Interrupt(Interrupt),
    Graph(GraphError),
}

/// Checkpoint persistence by durability mode.
struct Persist {
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
    fn new(
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

    fn last_id(&self) -> Option<Uuid> {
        self.last
    }

    async fn put(&mut self, c: &Checkpoint) -> Result<(), GraphError> {
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

    async fn finish(&mut self) -> Result<(), GraphError> {
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
