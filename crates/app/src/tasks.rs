//! Tasks as use cases: submitting one (its kind and input checked, the caller's trace id
//! carried into the queue) and cancelling one.

use crate::Application;
use crate::auth::Principal;
use morningai_core::entities::{NewTask, Task, TaskCreated};
use morningai_core::{Error, Priority, ProjectId, Result, Role, TaskId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

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

    /// Cancels a task that has not finished (admin+, or the member who created it).
    pub async fn cancel_task(&self, who: &Principal, id: TaskId) -> Result<Task> {
        who.require(Role::Member)?;
        if who.role < Role::Admin {
            let task = self.store.task(who.cx(), id).await?;
            if task.created_by != Some(who.user_id) {
                return Err(Error::Forbidden(
                    "members can cancel only their own tasks".into(),
                ));
            }
        }
        let t = self.tasks.cancel(who.cx(), id).await?;
        self.audit(who, "task.cancel", "task", t.id, json!({"kind": t.kind}))
            .await?;
        Ok(t)
    }
}
