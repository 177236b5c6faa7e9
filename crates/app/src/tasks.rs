//! Tasks as use cases: submitting one (its kind and input checked, the caller's trace id
//! carried into the queue), cancelling one, cron schedules that create them, and the
//! queue's operations (dead letters retried or purged).

use crate::Application;
use crate::auth::Principal;
use crate::events::Tail;
use morningai_core::entities::{NewTask, Task, TaskCreated};
use morningai_core::events::{TaskEvent, TaskEventKind};
use morningai_core::queue::{DeadJob, QueueDepth};
use morningai_core::schedules::Schedule;
use morningai_core::{Error, Priority, ProjectId, Result, Role, TaskId};
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// A registered task kind, e.g. `echo`.
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<String>)]
    pub project_id: Option<ProjectId>,
    /// 0 (lowest) to 9 (highest); 5 by default.
    #[schema(value_type = Option<u8>)]
    pub priority: Option<Priority>,
    /// Repeating a key returns the first task instead of creating another.
    pub idempotency_key: Option<String>,
}

/// The prefix of the idempotency keys the platform gives its own tasks (a chat platform's
/// event, a pull request, an approval message): refused to callers.
pub(crate) const INTERNAL_KEY: &str = "morningai:";

impl Application {
    /// Creates a task (member+) and queues its job.
    pub async fn submit_task(&self, who: &Principal, req: CreateTask) -> Result<TaskCreated> {
        who.require(Role::Member)?;
        self.registry.kinds().validate(&req.kind, &req.input)?;
        if let Some(k) = &req.idempotency_key
            && (k.is_empty() || k.len() > 200)
        {
            return Err(Error::invalid("idempotency_key", "must be 1-200 bytes"));
        }
        if let Some(k) = &req.idempotency_key
            && k.starts_with(INTERNAL_KEY)
        {
            // Taken first, such a key would swallow the platform's own task.
            return Err(Error::invalid(
                "idempotency_key",
                format!("keys starting with {INTERNAL_KEY:?} are the platform's own"),
            ));
        }
        let new = NewTask {
            id: TaskId::new(),
            kind: req.kind,
            priority: req.priority.unwrap_or_default(),
            project_id: req.project_id,
            trace_id: crate::trace::current_trace_id(),
            input: req.input,
            idempotency_key: req.idempotency_key,
            created_by: Some(who.user_id),
        };
        self.tasks.submit(who.cx(), new).await
    }

    /// Submits a task and follows it: `on_event` sees each of its events as it is stored,
    /// until the task ends or `wait` has passed. Returns the task as it then is (still
    /// running when the wait ran out: the caller can follow it by its id).
    pub async fn run_task(
        &self,
        who: &Principal,
        req: CreateTask,
        wait: Duration,
        on_event: impl FnMut(&TaskEvent) + Send,
    ) -> Result<Task> {
        // Subscribed before submitting: nothing published in between is missed.
        let bus = self.tasks.bus.subscribe();
        let id = match self.submit_task(who, req).await? {
            TaskCreated::New(task, _) => task.id,
            TaskCreated::Existing(task) if task.status.is_terminal() => return Ok(task),
            TaskCreated::Existing(task) => task.id,
        };
        let mut tail = Tail::new(self.store.clone(), bus, who.cx(), Some(id), 0);
        if let Ok(followed) = tokio::time::timeout(wait, tail.until_end(on_event)).await {
            followed?;
        }
        self.store.task(who.cx(), id).await
    }

    /// Cancels a task that has not finished (admin+, or the member who created it).
    pub async fn cancel_task(&self, who: &Principal, id: TaskId) -> Result<Task> {
        who.require(Role::Member)?;
        if who.role < Role::Admin {
            let task = self.store.task(who.cx(), id).await?;
            if task.created_by != Some(who.user_id) {
                return Err(Error::forbidden("members can cancel only their own tasks"));
            }
        }
        let t = self.tasks.cancel(who.cx(), id).await?;
        self.audit(who, "task.cancel", "task", t.id, json!({"kind": t.kind}))
            .await?;
        Ok(t)
    }
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    pub name: String,
    /// Standard 5-field cron: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// IANA time zone, default `UTC`.
    pub timezone: Option<String>,
    pub kind: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub input: Value,
    #[schema(value_type = Option<u8>)]
    pub priority: Option<Priority>,
}

impl Application {
    /// A cron schedule that creates tasks of `kind` (member+).
    pub async fn create_schedule(&self, who: &Principal, req: CreateSchedule) -> Result<Schedule> {
        who.require(Role::Member)?;
        let name = crate::clean_name("name", &req.name)?;
        self.registry.kinds().validate(&req.kind, &req.input)?;
        let timezone = req.timezone.unwrap_or_else(|| "UTC".to_owned());
        let at = morningai_core::now();
        let next_run_at = morningai_worker::scheduler::next_after(req.cron.trim(), &timezone, at)
            .map_err(|(field, msg)| Error::invalid(field, msg))?;
        let s = Schedule {
            id: Uuid::now_v7(),
            tenant_id: who.tenant_id,
            name,
            cron: req.cron.trim().to_owned(),
            timezone,
            kind: req.kind,
            input: req.input,
            priority: req.priority.unwrap_or_default(),
            next_run_at,
            created_by: Some(who.user_id),
            created_at: at,
        };
        let s = self.store.create_schedule(who.cx(), s).await?;
        self.audit(
            who,
            "schedule.create",
            "schedule",
            s.id,
            json!({"cron": s.cron, "kind": s.kind}),
        )
        .await?;
        Ok(s)
    }

    pub async fn delete_schedule(&self, who: &Principal, id: Uuid) -> Result<()> {
        who.require(Role::Member)?;
        self.store.delete_schedule(who.cx(), id).await?;
        self.audit(who, "schedule.delete", "schedule", id, json!({}))
            .await
    }

    /// Ready jobs by priority, running, scheduled and dead-lettered (admin+).
    pub async fn queue_depth(&self, who: &Principal) -> Result<QueueDepth> {
        who.require(Role::Admin)?;
        self.queue.depth(who.tenant_id).await
    }

    /// Dead-lettered jobs, 1–500 at a time (admin+).
    pub async fn dead_jobs(&self, who: &Principal, limit: u32) -> Result<Vec<DeadJob>> {
        who.require(Role::Admin)?;
        if !(1..=500).contains(&limit) {
            return Err(Error::invalid("limit", "must be between 1 and 500"));
        }
        self.queue.dead_jobs(who.tenant_id, limit).await
    }

    /// Moves a dead-lettered job back to the queue with fresh attempts; its task is
    /// queued again (admin+).
    pub async fn retry_dead(&self, who: &Principal, id: TaskId) -> Result<()> {
        who.require(Role::Admin)?;
        // Reopen the task first: a worker that picks the job up must find it runnable.
        let reopened = self.store.reopen_task(who.cx(), id).await?;
        if !self.queue.retry_dead(who.tenant_id, id).await? {
            return Err(Error::NotFound("dead job"));
        }
        if reopened {
            self.tasks
                .record(
                    who.cx(),
                    id,
                    TaskEventKind::Queued,
                    json!({"retry_of_dead_letter": true}),
                )
                .await;
        }
        self.audit(who, "queue.retry_dead", "task", id, json!({}))
            .await
    }

    /// Deletes one dead-lettered job, or all of them; returns how many (admin+).
    pub async fn purge_dead(&self, who: &Principal, id: Option<TaskId>) -> Result<u64> {
        who.require(Role::Admin)?;
        let purged = self.queue.purge_dead(who.tenant_id, id).await?;
        match id {
            Some(_) if purged == 0 => return Err(Error::NotFound("dead job")),
            Some(id) => {
                self.audit(who, "queue.purge_dead", "task", id, json!({}))
                    .await?
            }
            None => {
                self.audit(
                    who,
                    "queue.purge_dead",
                    "queue",
                    "all",
                    json!({"purged": purged}),
                )
                .await?
            }
        }
        Ok(purged)
    }
}
