//! What connections do after the platform's own work: a GitHub pull request when a codegen
//! run asked for from GitHub ends or a document is published, a Slack message with
//! Approve and Reject buttons when a run asks for an approval.
//!
//! Each is a task queued where the work becomes final, in the step that makes it so (a
//! run's last write, a publication, an approval's creation), so a crash in between redoes
//! the step and queues it then; idempotency keys make one task per run, per published
//! version, per approval and connection.

use super::{KIND, MAX_PER_TENANT, Platform, Stored};
use crate::documents::Document;
use crate::graphs::records::{Approval, Run, RunStatus};
use crate::tasks::INTERNAL_KEY;
use morningai_core::entities::NewTask;
use morningai_core::objects::ObjectQuery;
use morningai_core::values::Priority;
use morningai_core::{Error, ProjectId, Result, Store, TaskId, TenantCtx, UserId};
use morningai_worker::TaskService;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

/// Queues what the connections do after the platform's own work.
pub struct Followups {
    pub store: Arc<dyn Store>,
    pub tasks: Arc<TaskService>,
}

impl Followups {
    async fn queue(
        &self,
        kind: &str,
        cx: TenantCtx,
        project: Option<ProjectId>,
        by: Option<UserId>,
        input: Value,
        key: String,
    ) -> Result<()> {
        self.tasks
            .submit(
                cx,
                NewTask {
                    id: TaskId::new(),
                    kind: kind.into(),
                    priority: Priority::default(),
                    project_id: project,
                    trace_id: crate::trace::current_trace_id(),
                    input,
                    idempotency_key: Some(key),
                    created_by: by,
                },
            )
            .await
            .map(|_| ())
    }

    /// A codegen run ended (succeeded or failed): when its task came from a GitHub comment,
    /// the pull request (or the comment saying why there is none) is queued with the change
    /// as the run left it. Only the task's own run, or one answering its approvals (which
    /// the approval policy checked), speaks for the comment: a run someone starts on the
    /// thread with new input does not. One per task.
    pub(crate) async fn codegen_finished(
        &self,
        cx: TenantCtx,
        run: &Run,
        values: &serde_json::Map<String, Value>,
    ) -> Result<()> {
        if run.run_id != run.thread_id && run.answers.is_none() {
            return Ok(());
        }
        let task = match self.store.task(cx, TaskId(run.thread_id)).await {
            Ok(t) => t,
            // A thread of the LangGraph API, not a task's.
            Err(Error::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let integration = task
            .input
            .pointer("/github/integration")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Uuid>().ok());
        let Some(integration) = integration.filter(|_| task.kind == "codegen") else {
            return Ok(());
        };
        let v = |k: &str| values.get(k).cloned().unwrap_or_default();
        let status = match run.status {
            RunStatus::Success => v("status"),
            _ => json!("failed"),
        };
        let change = json!({
            "status": status, "diff": v("diff"), "explanation": v("explanation"),
            "plan": v("plan"), "request": v("request"), "comment": v("decision")["comment"],
        });
        let input = json!({"source": "codegen", "integration": integration, "task": run.thread_id, "change": change});
        let key = format!("{INTERNAL_KEY}github_pr:{}", run.thread_id);
        self.queue(
            super::PR_KIND,
            cx,
            task.project_id,
            task.created_by,
            input,
            key,
        )
        .await
    }

    /// A document was published: each GitHub connection of its project that proposes
    /// published documents gets a pull request of this version.
    pub(crate) async fn document_published(
        &self,
        cx: TenantCtx,
        doc: &Document,
        version: u32,
    ) -> Result<()> {
        for (id, s) in self.connections(cx).await? {
            let proposes = s.platform == Platform::Github
                && s.project_id == Some(doc.project_id)
                && s.github.as_ref().is_some_and(|g| g.publish_documents);
            if proposes {
                let input = json!({"source": "document", "integration": id, "document": doc.id, "version": version});
                let key = format!("{INTERNAL_KEY}github_pr:{id}:{}:{version}", doc.id);
                self.queue(
                    super::PR_KIND,
                    cx,
                    Some(doc.project_id),
                    Some(s.created_by),
                    input,
                    key,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// A run asks for an approval: each Slack connection that takes approvals gets a
    /// message with the buttons.
    pub(crate) async fn approval_requested(&self, cx: TenantCtx, a: &Approval) -> Result<()> {
        for (id, s) in self.connections(cx).await? {
            if s.platform == Platform::Slack && s.approvals.is_some() {
                let input = json!({"integration": id, "approval": a.id});
                let key = format!("{INTERNAL_KEY}approval_notice:{id}:{}", a.id);
                self.queue(super::NOTICE_KIND, cx, None, a.requested_by, input, key)
                    .await?;
            }
        }
        Ok(())
    }

    async fn connections(&self, cx: TenantCtx) -> Result<Vec<(Uuid, Stored)>> {
        let rows = self
            .store
            .list_objects(cx, KIND, &ObjectQuery::first(MAX_PER_TENANT))
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|o| Some((o.id, serde_json::from_value(o.body).ok()?)))
            .collect())
    }
}
