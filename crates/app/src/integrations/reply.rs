//! `chat_reply`: a question asked on a platform, answered by the connection's assistant and
//! delivered in the platform's format. The answer is in the task's events before the
//! delivery starts, so a platform that is down loses nothing: the task fails with the
//! delivery's attempts recorded, and the answer stays readable.

use super::{Integrations, Platform, job_error};
use crate::agents::AgentDeps;
use morningai_core::{Error, Store, TenantCtx};
use morningai_platforms::{Attempt, slack, telegram};
use morningai_worker::{Handler, JobContext, JobError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub const REPLY_KIND: &str = "chat_reply";

/// The input the webhook writes.
#[derive(serde::Deserialize)]
struct ReplyInput {
    integration: Uuid,
    question: String,
    reply_to: serde_json::Map<String, Value>,
}

fn reply_input(input: &Value) -> Result<ReplyInput, String> {
    ReplyInput::deserialize(input)
        .map_err(|e| format!("chat_reply needs integration, question and reply_to: {e}"))
}

pub fn validate_reply(input: &Value) -> Result<(), String> {
    reply_input(input).map(|_| ())
}

pub struct ReplyTask {
    pub deps: Arc<AgentDeps>,
    pub store: Arc<dyn Store>,
    pub integrations: Arc<Integrations>,
}

#[async_trait::async_trait]
impl Handler for ReplyTask {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let input = reply_input(&ctx.input).map_err(JobError::fatal)?;
        let cx = TenantCtx::new(ctx.tenant_id);
        let (id, question) = (input.integration, input.question.as_str());
        let reply_to = &Value::Object(input.reply_to);
        let (platform, assistant) = self.integrations.route(cx, id).await.map_err(|e| match e {
            Error::NotFound(_) => JobError::fatal("the integration was deleted"),
            e => job_error(e),
        })?;
        let reply = crate::chat::answer(
            &self.deps,
            &*self.store,
            cx,
            Some(ctx.task_id),
            &assistant,
            question,
            None,
        )
        .await
        .map_err(job_error)?;
        let mut sources: Vec<String> = Vec::new();
        for c in &reply.answer.citations {
            let s = format!("{}:{}-{}", c.source, c.start_line, c.end_line);
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        let link = self.integrations.task_link(ctx.task_id);
        let text = match platform {
            Platform::Slack => slack::format(&reply.answer.text, &sources, link.as_deref()),
            Platform::Telegram => telegram::format(&reply.answer.text, &sources, link.as_deref()),
            Platform::Github => {
                morningai_platforms::github::format(&reply.answer.text, &sources, link.as_deref())
            }
            Platform::Line | Platform::Messenger => {
                morningai_platforms::plain(&reply.answer.text, &sources, link.as_deref())
            }
            Platform::Discord => morningai_platforms::plain(
                &morningai_platforms::discord::escape(&reply.answer.text),
                &sources,
                link.as_deref(),
            ),
        };
        ctx.progress(json!({"answer": reply.answer.text, "citations": sources}))
            .await;
        let mut attempts: Vec<Attempt> = Vec::new();
        let delivered = self
            .integrations
            .deliver(cx, id, reply_to, &text, &mut |a| attempts.push(a.clone()))
            .await
            .map_err(job_error)?;
        for a in &attempts {
            ctx.progress(json!({"delivery": {
                "platform": platform.as_str(), "attempt": a.number, "status": a.status, "outcome": a.outcome,
            }}))
            .await;
        }
        let sent = delivered.map_err(|e| {
            JobError::fatal(format!("delivery to {} failed: {e}", platform.as_str()))
        })?;
        Ok(json!({
            "platform": platform.as_str(),
            "assistant": reply.assistant,
            "answer": reply.answer,
            "searched": reply.searched,
            "cost_usd": reply.cost_usd,
            "messages": sent.len(),
        }))
    }
}
