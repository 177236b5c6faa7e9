//! Runs of graphs as queued jobs (task kind `graph_run`), and the thread and run records
//! they update. A worker killed mid-run leaves its checkpoints behind; the job runs again
//! elsewhere and continues from the last checkpoint instead of starting over.

use super::catalog::{Catalog, Resolved};
use super::records::{
    Approval, ApprovalStatus, InterruptView, NodeSelection, Run, RunStatus, Thread, ThreadStatus,
};
use super::runs::wake_on_task;
use super::{get, insert, list, put};
use async_trait::async_trait;
use morningai_core::checkpoint::{Checkpointer, Interrupt};
use morningai_core::events::EventBus;
use morningai_core::{Error, Store, TenantCtx};
use morningai_graph::{GraphError, Outcome, Resume, RunConfig, Runner};
use morningai_worker::{Handler, JobContext, JobError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use uuid::Uuid;

/// The `graph_run` handler.
#[derive(Clone)]
pub struct GraphRuns {
    pub store: Arc<dyn Store>,
    pub checkpointer: Arc<dyn Checkpointer>,
    pub catalog: Arc<Catalog>,
    pub bus: Arc<dyn EventBus>,
    pub limits: super::RunLimits,
    /// Told about every approval a run asks for (`approval.requested`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Told about every codegen run that ends (its GitHub pull request).
    pub followups: Arc<crate::integrations::Followups>,
}

pub(crate) fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::fatal(e.to_string())
}

pub(crate) fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::retryable(e.to_string())
}

/// Interrupts grouped by task id, as threads show them.
fn by_task(interrupts: &[Interrupt]) -> BTreeMap<String, Vec<InterruptView>> {
    let mut out: BTreeMap<String, Vec<InterruptView>> = BTreeMap::new();
    for i in interrupts {
        out.entry(i.task_id.clone())
            .or_default()
            .push(InterruptView {
                value: i.value.clone(),
                id: i.id.clone(),
            });
    }
    out
}

/// Writes the run's stream events as the task's progress events, in order, until the run
/// ends — at most `limits.max_events` of them (the engine stops the run at that count).
/// Stops writing the moment the run is cancelled: what is still queued is dropped. Stops
/// the run when its events reach `limits.max_event_bytes`, and returns that reason.
async fn forward_events(
    ctx: JobContext,
    mut rx: morningai_graph::events::EventReceiver,
    stop: tokio_util::sync::CancellationToken,
    limits: super::RunLimits,
) -> Option<String> {
    let mut bytes = 0u64;
    for _ in 0..limits.max_events {
        let e = tokio::select! {
            biased;
            () = stop.cancelled() => return None,
            e = rx.recv() => e?,
        };
        let event = json!({"mode": e.mode, "ns": e.ns, "data": e.data});
        bytes += morningai_graph::json_size(&event) as u64;
        if bytes > limits.max_event_bytes {
            stop.cancel();
            return Some(format!(
                "its stream events passed {} bytes, this server's limit per run (run_max_event_bytes)",
                limits.max_event_bytes
            ));
        }
        ctx.progress(event).await;
    }
    None
}

/// Checks a `graph_run` task's input when it is submitted.
pub fn validate(input: &Value) -> Result<(), String> {
    input
        .get("run_id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok())
        .map(|_| ())
        .ok_or_else(|| "graph_run needs run_id (a UUID)".to_owned())
}

#[async_trait]
impl Handler for GraphRuns {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let run_id: Uuid = ctx.input["run_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fatal("graph_run needs run_id"))?;
        self.execute(&ctx, run_id).await
    }
}

impl GraphRuns {
    /// Runs (or resumes) the run `run_id` as the job `ctx`.
    pub async fn execute(&self, ctx: &JobContext, run_id: Uuid) -> Result<Value, JobError> {
        let cx = TenantCtx::new(ctx.tenant_id);
        let store = self.store.as_ref();
        let Some(mut run) = get::<Run>(store, cx, run_id).await.map_err(retry)? else {
            return Err(fatal("the run no longer exists"));
        };
        if run.status.is_terminal() {
            return Ok(json!({"run_id": run_id, "status": run.status}));
        }
        self.wait_turn(ctx, cx, &run).await?;
        self.still_allowed(cx, &run).await?;
        let entry = self
            .catalog
            .resolve(store, cx, &run.graph_id)
            .await
            .ok_or_else(|| fatal(format!("unknown graph {:?}", run.graph_id)))?;
        run.status = RunStatus::Running;
        put(store, cx, &mut run).await.map_err(retry)?;
        let mut thread = get::<Thread>(store, cx, run.thread_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| fatal("the thread no longer exists"))?;
        thread.status = ThreadStatus::Busy;
        put(store, cx, &mut thread).await.map_err(retry)?;

        let outcome = self.step_through(ctx, cx, &run, &entry).await?;
        let (run_status, thread_status, result) = match &outcome {
            Ok(o) if !o.interrupts.is_empty() => {
                (RunStatus::Interrupted, ThreadStatus::Interrupted, Ok(()))
            }
            Ok(_) => (RunStatus::Success, ThreadStatus::Idle, Ok(())),
            Err(GraphError::Cancelled) => (
                RunStatus::Interrupted,
                ThreadStatus::Idle,
                Err(fatal("cancelled")),
            ),
            Err(e) => (RunStatus::Error, ThreadStatus::Error, Err(fatal(e))),
        };
        let interrupts = outcome
            .as_ref()
            .map(|o| o.interrupts.clone())
            .unwrap_or_default();
        // The approvals exist before the thread says it is interrupted: whoever sees that
        // status finds them (and a retried job writes the same ones again, no doubles).
        self.request_approvals(cx, &run, &entry, &interrupts)
            .await?;
        thread.status = thread_status;
        if let Ok(o) = &outcome {
            thread.values = o.state.clone();
        }
        thread.interrupts = by_task(&interrupts);
        put(store, cx, &mut thread).await.map_err(retry)?;
        run.status = run_status;
        if let Err(e) = &outcome {
            run.error = Some(e.to_string());
        }
        // Before the run is final: a crash here runs this again, never skips it.
        if run.graph_id == "codegen" && matches!(run_status, RunStatus::Success | RunStatus::Error)
        {
            self.followups
                .codegen_finished(cx, &run, &thread.values)
                .await
                .map_err(retry)?;
        }
        put(store, cx, &mut run).await.map_err(retry)?;
        result.map(|()| {
            let mut out = json!({"run_id": run_id, "status": run_status});
            if !interrupts.is_empty() {
                // The nodes the run waits in (an approval, a breakpoint), for whoever shows it.
                out["waiting_on"] = json!(interrupts.iter().map(|i| &i.node).collect::<Vec<_>>());
            }
            out
        })
    }

    /// A run queued before an approval appeared on its thread must not move the thread past
    /// it: when its turn comes, only a decision (a run answering approvals by interrupt id)
    /// goes ahead while one is pending.
    async fn still_allowed(&self, cx: TenantCtx, run: &Run) -> Result<(), JobError> {
        if run.answers.is_some() {
            return Ok(());
        }
        let pending = list::<Approval>(
            &*self.store,
            cx,
            Some(run.thread_id),
            Some(ApprovalStatus::Pending.as_str()),
            1,
        )
        .await
        .map_err(retry)?;
        match pending.first() {
            None => Ok(()),
            Some(a) => {
                let mut run = run.clone();
                run.status = RunStatus::Error;
                run.error = Some(format!(
                    "approval {} became pending on this thread before the run's turn; answer it first",
                    a.id
                ));
                put(&*self.store, cx, &mut run).await.map_err(retry)?;
                Err(fatal(run.error.unwrap_or_default()))
            }
        }
    }

    /// One run at a time per thread, in order: waits while an older run of the thread is
    /// still pending or running (multitask strategy `enqueue`), woken by the event bus when
    /// the older run's task finishes.
    async fn wait_turn(&self, ctx: &JobContext, cx: TenantCtx, run: &Run) -> Result<(), JobError> {
        let mut bus = self.bus.subscribe();
        loop {
            let mut older: Option<Run> = None;
            for status in [RunStatus::Running, RunStatus::Pending] {
                let active = list::<Run>(
                    &*self.store,
                    cx,
                    Some(run.thread_id),
                    Some(status.as_str()),
                    100,
                )
                .await
                .map_err(retry)?;
                older = older.or(active.into_iter().find(|r| r.run_id < run.run_id));
            }
            let Some(older) = older else {
                return Ok(());
            };
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3600);
            tokio::select! {
                _ = wake_on_task(&mut bus, older.task_id, deadline) => {}
                _ = ctx.cancel.cancelled() => return Err(fatal("cancelled while waiting for the thread")),
            }
        }
    }

    /// Runs the graph from the run's input, its resume command, or — when this run already
    /// wrote checkpoints (a crash) — from its last checkpoint; streams the engine's events as
    /// the task's progress events.
    async fn step_through(
        &self,
        ctx: &JobContext,
        cx: TenantCtx,
        run: &Run,
        entry: &Resolved,
    ) -> Result<Result<Outcome, GraphError>, JobError> {
        let mut config = self.run_config(cx, ctx, run, entry).await?;
        let latest = self
            .checkpointer
            .thread_checkpoints(cx, &config.thread_id)
            .await
            .map_err(retry)?;
        let already_started = latest
            .iter()
            .max_by_key(|c| c.id)
            .is_some_and(|c| c.metadata["run_id"] == json!(run.run_id));
        let resume = self.resume_of(cx, run, entry, &config.thread_id).await?;
        let (tx, rx) = morningai_graph::events::channel();
        let mut runner =
            Runner::new(entry.graph.clone(), self.checkpointer.clone(), cx).with_events(tx);
        // The run stops when the job is cancelled, or when it reaches a limit.
        let stop = ctx.cancel.child_token();
        runner.cancel = stop.clone();
        runner.metadata = json!({"run_id": run.run_id});
        let forward = tokio::spawn(forward_events(ctx.clone(), rx, stop.clone(), self.limits));
        let work = async {
            if already_started {
                config.checkpoint_id = None;
                runner.run(None, None, &config).await
            } else if resume.is_some() {
                runner.run(None, resume, &config).await
            } else if run.kwargs.input.as_ref().is_none_or(Value::is_null) && !latest.is_empty() {
                // No input on a thread with state: continue from it (past a breakpoint).
                runner.run(None, None, &config).await
            } else {
                let input = run.kwargs.input_state().unwrap_or_default();
                runner.run(Some(input), None, &config).await
            }
        };
        let max_time = self.limits.max_time;
        let outcome = tokio::time::timeout(max_time, work)
            .await
            .unwrap_or_else(|_| {
                stop.cancel();
                Err(GraphError::Stopped(format!(
                    "it ran for {} s, this server's limit per run (run_max_secs)",
                    max_time.as_secs()
                )))
            });
        drop(runner);
        // A run the event writer stopped reports why, not just "cancelled".
        Ok(match (outcome, forward.await) {
            (Err(GraphError::Cancelled), Ok(Some(why))) => Err(GraphError::Stopped(why)),
            (outcome, _) => outcome,
        })
    }

    /// The engine's configuration of a run: the caller's `configurable`, with the tenant,
    /// the task and the assistant's configuration set from trusted sources (the job and the
    /// tenant's own store), never from the caller.
    async fn run_config(
        &self,
        cx: TenantCtx,
        ctx: &JobContext,
        run: &Run,
        entry: &Resolved,
    ) -> Result<RunConfig, JobError> {
        let kwargs = &run.kwargs;
        let mut config = RunConfig::new(run.thread_id.to_string());
        let requested = kwargs.config.clone().unwrap_or_default();
        if let Some(limit) = requested.recursion_limit {
            // Checked when the run was created; a lowered ceiling applies to queued runs too.
            config.recursion_limit = limit.min(self.limits.max_steps) as usize;
        }
        let mut configurable = requested.configurable.unwrap_or_default();
        configurable.insert("tenant_id".into(), json!(cx.tenant_id));
        configurable.insert("task_id".into(), json!(ctx.task_id));
        let assistant = match crate::assistants::get(&*self.store, cx, run.assistant_id).await {
            Ok(a) => serde_json::to_value(a.config).unwrap_or_default(),
            Err(Error::NotFound(_)) => Value::Null,
            Err(e) => return Err(retry(e)),
        };
        configurable.insert("assistant".into(), assistant);
        config.config = Value::Object(configurable);
        let nodes = || entry.graph.node_names();
        config.interrupt_before = NodeSelection::resolve(kwargs.interrupt_before.as_ref(), nodes());
        config.interrupt_after = NodeSelection::resolve(kwargs.interrupt_after.as_ref(), nodes());
        config.checkpoint_id = kwargs.checkpoint_id;
        config.max_state_bytes = Some(self.limits.max_state_bytes);
        config.max_events = Some(self.limits.max_events);
        Ok(config)
    }

    /// The ids of the interrupts the thread's latest checkpoint waits on.
    async fn pending_interrupts(
        &self,
        cx: TenantCtx,
        entry: &Resolved,
        thread: &str,
    ) -> Result<Vec<String>, JobError> {
        let snap = morningai_graph::get_state(&entry.graph, &*self.checkpointer, cx, thread, None)
            .await
            .map_err(retry)?;
        Ok(snap
            .map(|s| s.interrupts.into_iter().map(|i| i.id).collect())
            .unwrap_or_default())
    }

    /// A run carrying decisions answers exactly the interrupts decided. Otherwise, as in
    /// LangGraph, a resume object keyed by pending interrupt ids answers them one by one; any
    /// other value answers the single pending interrupt.
    async fn resume_of(
        &self,
        cx: TenantCtx,
        run: &Run,
        entry: &Resolved,
        thread: &str,
    ) -> Result<Option<Resume>, JobError> {
        if let Some(answers) = &run.answers {
            let pending = self.pending_interrupts(cx, entry, thread).await?;
            if let Some(gone) = answers.keys().find(|k| !pending.contains(k)) {
                return Err(fatal(format!(
                    "interrupt {gone} that this decision answers is no longer pending"
                )));
            }
            return Ok(Some(Resume::ById(answers.clone().into_iter().collect())));
        }
        let Some(answer) = run.kwargs.resume() else {
            return Ok(None);
        };
        if let Value::Object(m) = answer
            && !m.is_empty()
        {
            let pending = self.pending_interrupts(cx, entry, thread).await?;
            if m.keys().all(|k| pending.contains(k)) {
                return Ok(Some(Resume::ById(
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                )));
            }
        }
        Ok(Some(Resume::Value(answer.clone())))
    }

    /// Each interrupt a node raised becomes an approval a person decides (a breakpoint the
    /// caller asked for is continued by the caller, with no answer).
    async fn request_approvals(
        &self,
        cx: TenantCtx,
        run: &Run,
        entry: &Resolved,
        interrupts: &[Interrupt],
    ) -> Result<(), JobError> {
        for i in interrupts.iter().filter(|i| !i.breakpoint) {
            let now = morningai_core::now();
            let approval = Approval {
                id: crate::derived_id(run.run_id, &i.id),
                thread_id: run.thread_id,
                run_id: run.run_id,
                graph_id: entry.graph_id.clone(),
                assistant_id: entry.assistant_id,
                interrupt_id: i.id.clone(),
                value: i.value.clone(),
                requested_by: run.created_by,
                status: ApprovalStatus::Pending,
                created_at: now,
                updated_at: now,
                expires_at: entry
                    .approvals
                    .expires_after
                    .map(|d| now + chrono::Duration::from_std(d).unwrap_or_default()),
                decided_by: None,
                decided_at: None,
                comment: None,
            };
            // A retried attempt finds its approval there already: one event per approval.
            if insert(&*self.store, cx, &approval).await.map_err(retry)? {
                let data = serde_json::json!({"approval_id": approval.id, "thread_id": approval.thread_id,
                    "run_id": approval.run_id, "graph_id": approval.graph_id, "value": approval.value});
                self.webhooks.emit(cx, "approval.requested", data).await;
            }
            // Queued whether or not this attempt made the approval (once per connection).
            self.followups
                .approval_requested(cx, &approval)
                .await
                .map_err(retry)?;
        }
        Ok(())
    }
}
