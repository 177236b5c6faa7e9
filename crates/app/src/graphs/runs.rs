//! Runs: created on a thread (applying the multitask strategy), queued as `graph_run`
//! tasks, listed, cancelled, and waited for.

use super::records::{
    Approval, ApprovalStatus, MultitaskStrategy, Run, RunCommand, RunRequest, RunStatus, Thread,
};
use super::{Graphs, delete, get, list, put};
use crate::auth::Principal;
use morningai_core::entities::NewTask;
use morningai_core::events::TaskEvent;
use morningai_core::{Error, Priority, Result, Role, TaskId, TenantCtx};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

/// How long `wait` follows a run before giving up.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
/// Re-read the run this often even without a bus message (one may be lost).
const WAIT_POLL: Duration = Duration::from_secs(2);

/// How a run is started: by a caller, or by an approval decision (which has already
/// applied the approval policy).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    Caller,
    Approval,
}

impl Graphs {
    /// The agents' interrupts are approvals: while one is pending, the thread is resumed
    /// and its state changed only through the approvals API (which applies the approver
    /// rules).
    pub(crate) async fn guard_agent_approval(&self, cx: TenantCtx, t: &Thread) -> Result<()> {
        let graph = t.graph_id().unwrap_or_default();
        if !crate::assistants::AGENT_GRAPHS.contains(&graph) {
            return Ok(());
        }
        let pending = list::<Approval>(
            &*self.store,
            cx,
            Some(t.thread_id),
            Some(ApprovalStatus::Pending.as_str()),
            1,
        )
        .await?;
        match pending.first() {
            None => Ok(()),
            Some(a) => Err(Error::conflict(
                "approval_pending",
                format!(
                    "this {graph} run waits for approval {}: approve or reject it through /api/v1/approvals",
                    a.id
                ),
            )),
        }
    }

    /// The thread's runs that have not finished.
    async fn active_runs(&self, cx: TenantCtx, thread: Uuid) -> Result<Vec<Run>> {
        let mut active = Vec::new();
        for status in [RunStatus::Pending, RunStatus::Running] {
            active.extend(
                list::<Run>(&*self.store, cx, Some(thread), Some(status.as_str()), 100).await?,
            );
        }
        Ok(active)
    }

    /// Applies `strategy` to the thread's active runs before a new one.
    async fn make_room(
        &self,
        cx: TenantCtx,
        thread: Uuid,
        strategy: MultitaskStrategy,
    ) -> Result<()> {
        let active = self.active_runs(cx, thread).await?;
        if active.is_empty() {
            return Ok(());
        }
        match strategy {
            MultitaskStrategy::Reject => Err(Error::conflict(
                "thread_busy",
                "the thread has a run in progress (multitask_strategy=reject)",
            )),
            MultitaskStrategy::Interrupt | MultitaskStrategy::Rollback => {
                for mut r in active {
                    self.cancel_task_of(cx, &r).await?;
                    if strategy == MultitaskStrategy::Rollback {
                        delete::<Run>(&*self.store, cx, r.run_id).await?;
                    } else {
                        r.status = RunStatus::Interrupted;
                        put(&*self.store, cx, &mut r).await?;
                    }
                }
                Ok(())
            }
            MultitaskStrategy::Enqueue => Ok(()),
        }
    }

    /// Creates a run on `thread_id` and queues its job.
    pub async fn create_run(
        &self,
        who: &Principal,
        thread_id: Uuid,
        req: RunRequest,
    ) -> Result<Run> {
        self.start_run(who, thread_id, req, Via::Caller).await
    }

    pub(crate) async fn start_run(
        &self,
        who: &Principal,
        thread_id: Uuid,
        req: RunRequest,
        via: Via,
    ) -> Result<Run> {
        who.require(Role::Member)?;
        let cx = who.cx();
        let mut t = self.thread(cx, thread_id).await?;
        if via == Via::Caller {
            self.guard_agent_approval(cx, &t).await?;
        }
        let resolved = self
            .catalog
            .resolve(&*self.store, cx, &req.assistant_id)
            .await
            .ok_or(Error::NotFound("assistant"))?;
        let strategy = req.multitask_strategy.unwrap_or_default();
        self.make_room(cx, thread_id, strategy).await?;
        if t.graph_id().is_none() {
            t.metadata
                .insert("graph_id".into(), json!(resolved.graph_id));
            t.metadata
                .insert("assistant_id".into(), json!(resolved.assistant_id));
            put(&*self.store, cx, &mut t).await?;
        }
        let now = morningai_core::now();
        let mut run = Run {
            run_id: Uuid::now_v7(),
            thread_id,
            assistant_id: resolved.assistant_id,
            graph_id: resolved.graph_id.clone(),
            created_at: now,
            updated_at: now,
            status: RunStatus::Pending,
            metadata: req.metadata.clone().unwrap_or_default(),
            kwargs: req,
            multitask_strategy: strategy,
            task_id: TaskId::new(),
            created_by: Some(who.user_id),
            error: None,
        };
        put(&*self.store, cx, &mut run).await?;
        let task = NewTask {
            id: run.task_id,
            kind: "graph_run".into(),
            priority: Priority::default(),
            project_id: None,
            trace_id: crate::trace::current_trace_id(),
            input: json!({"run_id": run.run_id}),
            idempotency_key: None,
            created_by: Some(who.user_id),
        };
        self.tasks.submit(cx, task).await?;
        Ok(run)
    }

    /// Resumes a thread's pending interrupt with `answer`, as a new run.
    pub(crate) async fn resume_thread(
        &self,
        who: &Principal,
        thread_id: Uuid,
        graph_id: &str,
        interrupt_id: &str,
        answer: Value,
    ) -> Result<Run> {
        let req = RunRequest {
            assistant_id: graph_id.to_owned(),
            command: Some(RunCommand {
                resume: Some(json!({ interrupt_id: answer })),
            }),
            ..RunRequest::default()
        };
        self.start_run(who, thread_id, req, Via::Approval).await
    }

    async fn cancel_task_of(&self, cx: TenantCtx, run: &Run) -> Result<()> {
        match self.tasks.cancel(cx, run.task_id).await {
            Ok(_) | Err(Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The thread's runs, newest first.
    pub async fn runs(&self, cx: TenantCtx, thread_id: Uuid) -> Result<Vec<Run>> {
        self.thread(cx, thread_id).await?;
        list::<Run>(&*self.store, cx, Some(thread_id), None, 100).await
    }

    /// A run of the thread (another thread's run is not found).
    pub async fn run(&self, cx: TenantCtx, thread_id: Uuid, run_id: Uuid) -> Result<Run> {
        get::<Run>(&*self.store, cx, run_id)
            .await?
            .filter(|r| r.thread_id == thread_id)
            .ok_or(Error::NotFound("run"))
    }

    /// Stops a run: its task is cancelled and an unfinished run becomes `interrupted`.
    pub async fn cancel_run(&self, who: &Principal, thread_id: Uuid, run_id: Uuid) -> Result<()> {
        who.require(Role::Member)?;
        let mut run = self.run(who.cx(), thread_id, run_id).await?;
        self.cancel_task_of(who.cx(), &run).await?;
        if !run.status.is_terminal() {
            run.status = RunStatus::Interrupted;
            put(&*self.store, who.cx(), &mut run).await?;
        }
        Ok(())
    }

    /// Waits until the run has finished: re-read when the event bus announces an event of
    /// its task (or every couple of seconds, in case a bus message was lost).
    pub async fn wait(&self, cx: TenantCtx, run_id: Uuid) -> Result<Run> {
        let mut bus = self.tasks.bus.subscribe();
        let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
        loop {
            let run = get::<Run>(&*self.store, cx, run_id)
                .await?
                .ok_or(Error::NotFound("run"))?;
            if run.status.is_terminal() {
                return Ok(run);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::unavailable(
                    "run_timeout",
                    "the run did not finish within 10 minutes",
                ));
            }
            wake_on_task(&mut bus, run.task_id, deadline).await;
        }
    }

    /// The values a finished run left on its thread, or its error the LangGraph way.
    pub async fn final_values(&self, cx: TenantCtx, run: &Run) -> Result<Value> {
        if run.status == RunStatus::Error {
            return Ok(
                json!({"__error__": {"error": "GraphError", "message": run.error.clone().unwrap_or_default()}}),
            );
        }
        let t = self.thread(cx, run.thread_id).await?;
        Ok(Value::Object(t.values))
    }
}

/// Returns when the bus announces an event of `task`, after [`WAIT_POLL`], at `deadline`,
/// or when the bus lags or closes (the caller re-reads the store in every case).
pub(crate) async fn wake_on_task(
    bus: &mut tokio::sync::broadcast::Receiver<TaskEvent>,
    task: TaskId,
    deadline: tokio::time::Instant,
) {
    let poll = tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + WAIT_POLL));
    tokio::pin!(poll);
    loop {
        tokio::select! {
            r = bus.recv() => match r {
                Ok(e) if e.task_id == task => return,
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => break,
            },
            _ = &mut poll => return,
        }
    }
    // No bus: fall back to the poll interval.
    poll.await;
}
