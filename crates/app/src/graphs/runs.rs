//! Runs: created on a thread (applying the multitask strategy), queued as `graph_run`
//! tasks, listed, cancelled, and waited for.

use super::records::{
    Approval, ApprovalStatus, MultitaskStrategy, Run, RunCommand, RunRequest, RunStatus, Thread,
    ThreadStatus,
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
    /// The thread's pending approvals (interrupts waiting for a person).
    async fn pending_approvals(&self, cx: TenantCtx, thread: Uuid) -> Result<Vec<Approval>> {
        list::<Approval>(
            &*self.store,
            cx,
            Some(thread),
            Some(ApprovalStatus::Pending.as_str()),
            100,
        )
        .await
    }

    /// Which pending approvals a caller's run answers, each with its answer, after checking
    /// that the caller may decide every one of them. A `command.resume` is a decision: keyed
    /// by interrupt ids it answers those, otherwise it answers the only pending one. While
    /// an approval is pending, nothing else moves the thread (no new input, no fork); with
    /// none pending there is nothing to resume (a decided approval is final).
    async fn answers_of(
        &self,
        who: &Principal,
        t: &Thread,
        req: &RunRequest,
    ) -> Result<Vec<(Approval, Value)>> {
        let pending = self.pending_approvals(who.cx(), t.thread_id).await?;
        let answers = match (req.resume(), pending.first()) {
            (None, None) => return Ok(Vec::new()),
            // A breakpoint the caller asked for (it is no approval): continued as asked.
            (Some(_), None) if t.status == ThreadStatus::Interrupted => return Ok(Vec::new()),
            (Some(_), None) => {
                return Err(Error::conflict(
                    "nothing_to_resume",
                    "no interrupt of this thread waits for an answer (a decided approval is final)",
                ));
            }
            (None, Some(a)) => return Err(approval_pending(t, a)),
            (Some(_), Some(a)) if req.checkpoint_id.is_some() => {
                return Err(approval_pending(t, a));
            }
            (Some(Value::Object(m)), _)
                if !m.is_empty()
                    && m.keys()
                        .all(|k| pending.iter().any(|a| a.interrupt_id == *k)) =>
            {
                pending
                    .into_iter()
                    .filter_map(|a| m.get(&a.interrupt_id).cloned().map(|v| (a, v)))
                    .collect::<Vec<_>>()
            }
            (Some(answer), Some(_)) if pending.len() == 1 => {
                let answer = answer.clone();
                pending.into_iter().map(|a| (a, answer.clone())).collect()
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "command.resume",
                    "several interrupts wait: answer each one, keyed by its interrupt id",
                ));
            }
        };
        for (a, _) in &answers {
            self.authorize(who, a).await?;
        }
        Ok(answers)
    }

    /// A state update can write as any node, so it could step past an interrupt: it takes
    /// the role that decides the graph's approvals, never while one is pending, and not
    /// from the requester of an approval on the thread when self-approval is off.
    pub(crate) async fn guard_rewrite(&self, who: &Principal, t: &Thread) -> Result<()> {
        let cx = who.cx();
        if let Some(a) = self.pending_approvals(cx, t.thread_id).await?.first() {
            return Err(approval_pending(t, a));
        }
        let Some(graph) = t.graph_id() else {
            return Ok(());
        };
        let policy = self
            .catalog
            .resolve(&*self.store, cx, graph)
            .await
            .ok_or(Error::NotFound("graph"))?
            .approvals;
        who.require(policy.min_role)?;
        for a in list::<Approval>(&*self.store, cx, Some(t.thread_id), None, 100).await? {
            if let Some(role) = a.asked_role() {
                who.require(role)?;
            }
            if !policy.allow_self && a.requested_by == Some(who.user_id) {
                return Err(Error::forbidden(
                    "you started a run this thread's approvals guard; someone else must change its state (self-approval is off for this graph)",
                ));
            }
        }
        Ok(())
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
        let max = self.limits.max_steps;
        if let Some(asked) = req.config.as_ref().and_then(|c| c.recursion_limit)
            && asked > max
        {
            return Err(Error::invalid(
                "config.recursion_limit",
                format!("{asked} is over this server's ceiling of {max} steps per run"),
            ));
        }
        let cx = who.cx();
        let mut t = self.thread(cx, thread_id).await?;
        if via == Via::Caller && req.resume().is_none() {
            // New work; a decision on work already started is never refused for storage.
            self.check_storage(cx).await?;
        }
        let answers = match via {
            Via::Caller => self.answers_of(who, &t, &req).await?,
            Via::Approval => Vec::new(),
        };
        // The interrupts this run answers, by id: its decisions, or the one an approval
        // decision resumes.
        let by_id: Option<std::collections::BTreeMap<String, Value>> = match via {
            Via::Caller => (!answers.is_empty()).then(|| {
                answers
                    .iter()
                    .map(|(a, v)| (a.interrupt_id.clone(), v.clone()))
                    .collect()
            }),
            Via::Approval => req
                .resume()
                .and_then(Value::as_object)
                .map(|m| m.clone().into_iter().collect()),
        };
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
            answers: by_id,
        };
        // The caller's resume decides the approvals it answers, as the approvals API would.
        let mut decided = Vec::with_capacity(answers.len());
        for (a, answer) in answers {
            let id = a.id;
            let comment = answer
                .get("comment")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let status = self
                .settle(who, a, super::catalog::approved(&answer), comment.clone())
                .await?;
            decided.push((id, status, comment));
        }
        put(&*self.store, cx, &mut run).await?;
        for (id, status, comment) in decided {
            self.audit_decision(who, id, status, comment, run.run_id, "langgraph")
                .await?;
        }
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

fn approval_pending(t: &Thread, a: &Approval) -> Error {
    Error::conflict(
        "approval_pending",
        format!(
            "this {} run waits for approval {}: answer it (POST /api/v1/approvals/{}/approve or /reject, or a run with command.resume) before anything else moves the thread",
            t.graph_id().unwrap_or("graph"),
            a.id,
            a.id
        ),
    )
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
