//! Running a graph: supersteps, the barrier, retries, timeouts, interrupts, checkpoints.

use crate::events::EventSender;
use crate::graph::{END, Graph, GraphError, START};
use crate::node::{Command, NodeContext, NodeError, StreamEvent, Target};
use crate::persist::{PendingWrites, Persist, Step, TaskError};
use crate::state::{State, reconstruct};
use morningai_core::TenantCtx;
use morningai_core::checkpoint::{Checkpoint, Checkpointer, Interrupt, PendingTask};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

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
    /// The run stops before a step whose state is larger than this, as JSON …
    pub max_state_bytes: Option<usize>,
    /// … or once it has sent this many stream events.
    pub max_events: Option<u64>,
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
            max_state_bytes: None,
            max_events: None,
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
    pub events: Option<EventSender>,
    pub cancel: CancellationToken,
    pub(crate) ns: Vec<String>,
    /// Merged into every checkpoint's metadata (e.g. the run id).
    pub metadata: Value,
}

/// A value's size as JSON, counted without building the text.
pub fn json_size(value: &impl serde::Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    let _ = serde_json::to_writer(&mut n, value);
    n.0
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

/// A run in progress: its state, the checkpoint it stands at, and its checkpoint writer.
struct Progress {
    thread: String,
    state: State,
    current: Checkpoint,
    writer: Persist,
    /// Resuming past the breakpoint the current checkpoint stopped at.
    skip_breakpoint: bool,
    /// The current checkpoint was read from storage, so its step may have pending writes.
    stored: bool,
    steps: usize,
}

impl Progress {
    /// The run's outcome as it stands.
    fn outcome(&mut self, interrupts: Vec<Interrupt>, checkpoint_id: Option<Uuid>) -> Outcome {
        Outcome {
            state: std::mem::take(&mut self.state),
            interrupts,
            checkpoint_id,
            steps: self.steps,
        }
    }
}

/// What a superstep's tasks did.
enum Superstep {
    /// Every task finished: their commands by task id.
    Ran(HashMap<String, Command>),
    /// A task interrupted (or the step paused): the run's outcome.
    Paused(Outcome),
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

    pub fn with_events(mut self, tx: EventSender) -> Self {
        self.events = Some(tx);
        self
    }

    /// Sends a stream event; `data` is built only when someone listens.
    fn emit(&self, mode: &'static str, data: impl FnOnce() -> Value) {
        if let Some(e) = &self.events {
            e.send(StreamEvent {
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
        let mut p = self.begin(input, resume, config).await?;
        loop {
            if let Some(outcome) = self.before_step(&mut p, config).await? {
                return Ok(outcome);
            }
            let done = match self.superstep(&mut p, config).await? {
                Superstep::Ran(done) => done,
                Superstep::Paused(outcome) => return Ok(outcome),
            };
            if let Some(outcome) = self.barrier(&mut p, config, done).await? {
                return Ok(outcome);
            }
        }
    }

    /// Where the run starts: a new input on top of the thread's current (or chosen) state,
    /// or the stored checkpoint it continues from — answering pending interrupts first.
    async fn begin(
        &self,
        input: Option<State>,
        resume: Option<Resume>,
        config: &RunConfig,
    ) -> Result<Progress, GraphError> {
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
        let (current, skip_breakpoint, stored) = match (input, base) {
            (Some(input), base) => {
                // A new input starts a new run on the thread from its current state.
                let writes: BTreeMap<String, Vec<Value>> =
                    input.into_iter().map(|(k, v)| (k, vec![v])).collect();
                let (deltas, versions) = self.apply(
                    &mut state,
                    &writes,
                    base.as_ref().map_or(-1, |b| b.step) + 1,
                )?;
                let next = self.next_tasks_after(&[(START.to_owned(), None)], &state);
                let current = self.checkpoint(
                    thread,
                    base.as_ref(),
                    deltas,
                    versions,
                    next,
                    json!({"source": "input", "writes": {START: writes}}),
                );
                writer.put(&current).await?;
                self.emit("values", || Value::Object(state.clone()));
                // Pending writes exist only for a checkpoint read from storage; one this
                // run just made has none yet, so its step skips the read.
                (current, false, false)
            }
            (None, Some(b)) => {
                let skip = match &resume {
                    Some(r) => {
                        self.answer_interrupts(thread, &b, r).await?;
                        true
                    }
                    None => !b.interrupts.is_empty(),
                };
                (b, skip, true)
            }
            (None, None) => {
                return Err(GraphError::Resume(
                    "the thread has no state: give an input".into(),
                ));
            }
        };
        Ok(Progress {
            thread: thread.to_owned(),
            state,
            current,
            writer,
            skip_breakpoint,
            stored,
            steps: 0,
        })
    }

    /// Stores the answers to the interrupts pending at `b` as the interrupted tasks'
    /// resume values.
    async fn answer_interrupts(
        &self,
        thread: &str,
        b: &Checkpoint,
        resume: &Resume,
    ) -> Result<(), GraphError> {
        let pending = self.step_memory(thread, b.id).await?;
        let by_id: HashMap<String, Value> = match resume {
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
                let mut values = pending.resumes.get(task).cloned().unwrap_or_default();
                values.push(v.clone());
                Some((format!("{task}:resume"), Value::Array(values)))
            })
            .collect();
        if !answers.is_empty() {
            self.checkpointer
                .put_writes(self.cx, thread, b.id, &answers)
                .await
                .map_err(storage)?;
        } else if b.interrupts.is_empty() && !pending.interrupts.is_empty() {
            return Err(GraphError::Resume(
                "no pending interrupt has that id".into(),
            ));
        }
        Ok(())
    }

    /// Before a superstep: the run ends (END reached), stops (cancelled, over the
    /// recursion limit) or pauses at an `interrupt_before` breakpoint.
    async fn before_step(
        &self,
        p: &mut Progress,
        config: &RunConfig,
    ) -> Result<Option<Outcome>, GraphError> {
        if p.current.next.is_empty() {
            p.writer.finish().await?;
            return Ok(Some(p.outcome(Vec::new(), p.writer.last_id())));
        }
        if self.cancel.is_cancelled() {
            p.writer.finish().await?;
            return Err(GraphError::Cancelled);
        }
        if p.steps >= config.recursion_limit {
            p.writer.finish().await?;
            return Err(GraphError::RecursionLimit {
                limit: config.recursion_limit,
            });
        }
        if let Some(limit) = config.max_state_bytes {
            let size = json_size(&p.state);
            if size > limit {
                p.writer.finish().await?;
                return Err(GraphError::StateTooLarge { limit, size });
            }
        }
        if let Some(events) = &self.events {
            if let Some(limit) = config.max_events
                && events.sent() >= limit
            {
                p.writer.finish().await?;
                return Err(GraphError::TooManyEvents { limit });
            }
            // Backpressure: a consumer that writes events slower than the graph makes them
            // holds the run here, not in an ever-growing queue.
            events.room(crate::events::MAX_BACKLOG).await;
        }
        let breakpoint = if std::mem::take(&mut p.skip_breakpoint) {
            None
        } else {
            p.current
                .next
                .iter()
                .find(|t| config.interrupt_before.contains(&t.node))
                .cloned()
        };
        let Some(t) = breakpoint else {
            return Ok(None);
        };
        let intr = Interrupt {
            id: short_hash(&[&p.current.id.to_string(), &t.id, "before"]),
            node: t.node.clone(),
            task_id: t.id.clone(),
            value: json!({"breakpoint": "before", "node": t.node}),
            breakpoint: true,
        };
        p.current.interrupts = vec![intr.clone()];
        p.writer.put(&p.current).await?;
        p.writer.finish().await?;
        Ok(Some(p.outcome(vec![intr], p.writer.last_id())))
    }

    /// Runs every task of the step in parallel on the same snapshot; tasks that finished
    /// before a crash or an interrupt are not run again.
    async fn superstep(
        &self,
        p: &mut Progress,
        config: &RunConfig,
    ) -> Result<Superstep, GraphError> {
        let memory = if std::mem::take(&mut p.stored) {
            self.step_memory(&p.thread, p.current.id).await?
        } else {
            StepMemory::default()
        };
        let snapshot = Arc::new(p.state.clone());
        let step = Step {
            config,
            siblings: p.current.next.len() > 1,
            pending: PendingWrites::new(
                self.checkpointer.as_ref(),
                self.cx,
                &p.thread,
                p.current.id,
            ),
        };
        let mut runs = Vec::new();
        for task in &p.current.next {
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
            p.writer.finish().await?;
            return Err(e);
        }
        if !interrupts.is_empty() {
            p.writer.finish().await?;
            return Ok(Superstep::Paused(p.outcome(interrupts, Some(p.current.id))));
        }
        Ok(Superstep::Ran(done))
    }

    /// The barrier: writes of every task, in task order, through the reducers, into the
    /// next checkpoint; pauses there at an `interrupt_after` breakpoint.
    async fn barrier(
        &self,
        p: &mut Progress,
        config: &RunConfig,
        done: HashMap<String, Command>,
    ) -> Result<Option<Outcome>, GraphError> {
        let mut writes: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut by_node: Map<String, Value> = Map::new();
        let mut ran = Vec::new();
        for task in &p.current.next {
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
        let step = p.current.step + 1;
        let (deltas, mut versions) = self.apply(&mut p.state, &writes, step)?;
        for (node, _) in &ran {
            versions.insert(format!("node:{node}"), json!(step));
        }
        let next = self.next_tasks_after(&ran, &p.state);
        let after = ran
            .iter()
            .find(|(n, _)| config.interrupt_after.contains(n))
            .map(|(n, _)| n.clone());
        let mut cp = self.checkpoint(
            &p.thread,
            Some(&p.current),
            deltas,
            versions,
            next,
            json!({"source": "loop", "writes": by_node}),
        );
        p.steps += 1;
        self.emit("updates", || Value::Object(by_node));
        self.emit("values", || Value::Object(p.state.clone()));
        if let Some(node) = after {
            let intr = Interrupt {
                id: short_hash(&[&cp.id.to_string(), &node, "after"]),
                node: node.clone(),
                task_id: String::new(),
                value: json!({"breakpoint": "after", "node": node}),
                breakpoint: true,
            };
            cp.interrupts = vec![intr.clone()];
            p.writer.put(&cp).await?;
            p.writer.finish().await?;
            return Ok(Some(p.outcome(vec![intr], p.writer.last_id())));
        }
        p.writer.put(&cp).await?;
        p.current = cp;
        Ok(None)
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
                        breakpoint: false,
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
