//! Approvals from Slack. When a run asks for an approval, each Slack connection that takes
//! approvals posts it to its channel (an `approval_notice` task) with Approve and Reject
//! buttons. A click comes back signed like every Slack request; it decides only for a
//! Slack user the connection names as an approver, as the tenant member they are mapped
//! to: that member's role and the graph's policy apply exactly as in the dashboard, and
//! the decision is audited under their name.

use super::{ApprovalSettings, Integrations, Platform, Stored};
use crate::auth::Principal;
use crate::graphs::records::{Approval, ApprovalStatus};
use morningai_core::{Error, Result, Store, TenantCtx};
use morningai_platforms::{Attempt, slack};
use morningai_worker::{Handler, JobContext, JobError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub const NOTICE_KIND: &str = "approval_notice";
/// Approvers one connection may name.
const MAX_APPROVERS: usize = 100;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoticeInput {
    integration: Uuid,
    approval: Uuid,
}

fn notice_input(input: &Value) -> std::result::Result<NoticeInput, String> {
    NoticeInput::deserialize(input).map_err(|e| format!("approval_notice: {e}"))
}

pub fn validate_notice(input: &Value) -> std::result::Result<(), String> {
    notice_input(input).map(|_| ())
}

/// Slack's ids (channels `C…`/`G…`, users `U…`/`W…`): upper-case letters and digits.
fn slack_id(s: &str) -> bool {
    (1..=30).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// What the message says of an approval: the graph and the agents' request, title, files.
fn details(a: &Approval) -> String {
    let v = &a.value;
    let mut lines = vec![format!("Graph: {}", a.graph_id)];
    for (label, key) in [("Request", "request"), ("Title", "title")] {
        if let Some(text) = v.get(key).and_then(Value::as_str) {
            lines.push(format!("{label}: {}", text.lines().next().unwrap_or("")));
        }
    }
    if let Some(files) = v.get("files").and_then(Value::as_array) {
        let names: Vec<&str> = files.iter().filter_map(Value::as_str).collect();
        lines.push(format!("Files: {}", names.join(", ")));
    }
    lines.join("\n")
}

impl Integrations {
    /// Checks a connection's approval settings: Slack only, a channel id, approvers that
    /// are Slack user ids mapped to members of the tenant.
    pub(super) async fn clean_approvals(
        &self,
        cx: TenantCtx,
        platform: Platform,
        given: Option<ApprovalSettings>,
    ) -> Result<Option<ApprovalSettings>> {
        let Some(mut a) = given else {
            return Ok(None);
        };
        if platform != Platform::Slack {
            return Err(Error::invalid(
                "approvals",
                "only Slack connections take approvals (their messages carry the buttons)",
            ));
        }
        a.channel = a.channel.trim().to_owned();
        if !slack_id(&a.channel) {
            return Err(Error::invalid(
                "approvals.channel",
                "a Slack channel id (C…), from the channel's details; the app must be in the channel",
            ));
        }
        if a.approvers.is_empty() || a.approvers.len() > MAX_APPROVERS {
            return Err(Error::invalid(
                "approvals.approvers",
                format!(
                    "1 to {MAX_APPROVERS} Slack user ids (U…), each mapped to a member of this tenant"
                ),
            ));
        }
        let members: Vec<_> = self
            .store
            .members(cx)
            .await?
            .into_iter()
            .map(|m| m.user_id)
            .collect();
        for (slack_user, member) in &a.approvers {
            if !slack_id(slack_user) {
                return Err(Error::invalid(
                    format!("approvals.approvers.{slack_user}"),
                    "a Slack user id (U…), from the person's profile",
                ));
            }
            if !members.contains(member) {
                return Err(Error::invalid(
                    format!("approvals.approvers.{slack_user}"),
                    "not a member of this tenant",
                ));
            }
        }
        Ok(Some(a))
    }
}

impl crate::Application {
    /// A click on an approval message's button: decided when the Slack user is one of the
    /// connection's approvers and, as the member they are mapped to, may decide it. The
    /// message then shows the outcome instead of its buttons; a refusal is shown to the
    /// clicker only. Returns the metric's outcome.
    pub(super) async fn decide_from_slack(
        &self,
        cx: TenantCtx,
        s: &Stored,
        d: slack::Decision,
    ) -> Result<&'static str> {
        let response_url = json!({"response_url": d.response_url});
        self.integrations.check_response_url(&response_url)?;
        let (outcome, message) = match self.slack_decision(cx, s, &d).await {
            Ok(status) => (
                "decided",
                json!({"replace_original": true, "text": format!(
                    "{} by <@{}> from Slack.",
                    if status == ApprovalStatus::Approved { "✅ Approved" } else { "❌ Rejected" },
                    d.user
                )}),
            ),
            Err(e) => (
                "refused",
                json!({"response_type": "ephemeral", "replace_original": false,
                       "text": format!("Not recorded: {e}")}),
            ),
        };
        // Slack waits 3 s for the click's answer: the message is updated after it, with
        // the usual retries. The decision itself is already stored.
        let outbound = self.integrations.outbound.clone();
        tokio::spawn(async move {
            if let Err(e) = outbound
                .post(&d.response_url, None, &message, &mut |_| {})
                .await
            {
                tracing::warn!(error = %e, "updating a Slack approval message failed");
            }
        });
        Ok(outcome)
    }

    async fn slack_decision(
        &self,
        cx: TenantCtx,
        s: &Stored,
        d: &slack::Decision,
    ) -> Result<ApprovalStatus> {
        let member = s
            .approvals
            .as_ref()
            .and_then(|a| a.approvers.get(&d.user))
            .ok_or_else(|| {
                Error::forbidden(
                    "you may not decide approvals from this Slack workspace: an admin adds your Slack user id to the connection's approvers",
                )
            })?;
        let role = self
            .store
            .role_of(cx.tenant_id, *member)
            .await?
            .ok_or_else(|| Error::forbidden("your MorningAI account is no longer a member"))?;
        let who = Principal {
            user_id: *member,
            tenant_id: cx.tenant_id,
            role,
            api_key: None,
            ip: None,
        };
        let id = Uuid::parse_str(&d.approval).map_err(|_| Error::NotFound("approval"))?;
        let decided = self
            .graphs
            .decide(&who, id, d.approve, Some("from Slack".into()))
            .await?;
        Ok(decided.status)
    }
}

/// The `approval_notice` task: the approval's message in the connection's channel.
pub struct NoticeTask {
    pub store: Arc<dyn Store>,
    pub integrations: Arc<Integrations>,
}

#[async_trait::async_trait]
impl Handler for NoticeTask {
    async fn run(&self, ctx: JobContext) -> std::result::Result<Value, JobError> {
        let input = notice_input(&ctx.input).map_err(JobError::fatal)?;
        let cx = TenantCtx::new(ctx.tenant_id);
        let gone = |what: &str| JobError::fatal(format!("the {what} is gone"));
        let retry = |e: Error| JobError::retryable(e.to_string());
        let a = crate::graphs::get::<Approval>(&*self.store, cx, input.approval)
            .await
            .map_err(retry)?
            .ok_or_else(|| gone("approval"))?;
        let it = &self.integrations;
        let (s, _) = it.load(cx, input.integration).await.map_err(|e| match e {
            Error::NotFound(_) => gone("integration"),
            e => retry(e),
        })?;
        let (Some(settings), ApprovalStatus::Pending) = (&s.approvals, a.status) else {
            return Ok(json!({"outcome": "skipped"}));
        };
        let token = it.secret(cx, &s, "bot_token").map_err(retry)?;
        let title = a
            .value
            .get("question")
            .and_then(Value::as_str)
            .unwrap_or("Approve this step?");
        let link = it.public_url.as_deref().map(|u| format!("{u}/approvals"));
        let message =
            slack::approval_message(title, &details(&a), &a.id.to_string(), link.as_deref());
        let mut attempts: Vec<Attempt> = Vec::new();
        let posted = slack::post(
            &it.client(Platform::Slack, &token),
            &settings.channel,
            &message,
            &mut |at| attempts.push(at.clone()),
        )
        .await;
        for at in attempts.iter().filter(|at| at.outcome != "delivered") {
            ctx.progress(json!({"delivery": {
                "platform": "slack", "attempt": at.number, "status": at.status, "outcome": at.outcome,
            }}))
            .await;
        }
        let answer =
            posted.map_err(|e| JobError::fatal(format!("delivery to slack failed: {e}")))?;
        Ok(json!({"outcome": "posted", "channel": settings.channel, "ts": answer["ts"]}))
    }
}
