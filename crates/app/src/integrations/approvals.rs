//! Approvals from Slack. When a run asks for an approval, each Slack connection that takes
//! approvals posts it to its channel (an `approval_notice` task) with Approve and Reject
//! buttons. A click comes back signed like every Slack request; it decides only for a
//! Slack user who linked their account, as the member who linked it: that member's role
//! and the graph's policy apply exactly as in the dashboard, and the decision is audited
//! under their name. A member links themselves — a short-lived code from
//! `POST /api/v1/integrations/{id}/link`, typed as `/morningai link <code>` in Slack — so
//! nobody, an admin included, can make a Slack account decide as someone else.

use super::{ApprovalSettings, Integrations, Platform, Stored};
use crate::auth::Principal;
use crate::graphs::records::{Approval, ApprovalStatus};
use morningai_core::UserId;
use morningai_core::objects::StoredObject;
use morningai_core::{Error, Result, Store, TenantCtx};
use morningai_platforms::{Attempt, slack};
use morningai_worker::{Handler, JobContext, JobError};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use uuid::Uuid;

pub const NOTICE_KIND: &str = "approval_notice";
/// A Slack account linked to a member, per connection (id: the connection and Slack user).
const LINK: &str = "integration_link";
/// A link code not yet used (id: the connection and the code).
const LINK_CODE: &str = "integration_link_code";
/// How long a link code may wait to be typed.
const CODE_TTL_MINS: i64 = 10;

/// A code that links a Slack account to the member who asked for it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LinkCode {
    /// Type `command` in the Slack workspace, within ten minutes; it works once.
    pub code: String,
    pub command: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

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
    /// Checks a connection's approval settings: Slack only, a channel id.
    pub(super) fn clean_approvals(
        &self,
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
        Ok(Some(a))
    }
}

impl crate::Application {
    /// A code the caller types as `/morningai link <code>` in the Slack workspace of
    /// connection `id`, so that their clicks on approval buttons there decide as them (any
    /// member; what they may decide is still their role's). Single use, ten minutes.
    pub async fn integration_link_code(&self, who: &Principal, id: Uuid) -> Result<LinkCode> {
        let cx = who.cx();
        let (s, _) = self.integrations.load(cx, id).await?;
        if s.platform != Platform::Slack || s.approvals.is_none() {
            return Err(Error::invalid(
                "integration",
                "only a Slack connection that takes approvals links accounts",
            ));
        }
        let code: String = crate::auth::random_secret("").chars().take(16).collect();
        let now = morningai_core::now();
        let expires_at = now + chrono::Duration::minutes(CODE_TTL_MINS);
        self.store
            .put_object(
                cx,
                &StoredObject {
                    kind: LINK_CODE.into(),
                    id: crate::derived_id(id, &code),
                    parent: Some(id),
                    status: "active".into(),
                    body: json!({"user_id": who.user_id}),
                    due_at: Some(expires_at),
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        Ok(LinkCode {
            command: format!("/morningai link {code}"),
            code,
            expires_at,
        })
    }

    /// `/morningai link <code>` from Slack user `user`: links them to the member who made
    /// the code, which is used up. Returns what the Slack user is told.
    pub(super) async fn link_from_slack(
        &self,
        cx: TenantCtx,
        id: Uuid,
        s: &Stored,
        code: &str,
        user: &str,
    ) -> Result<String> {
        if s.approvals.is_none() || !slack_id(user) || code.len() > 100 {
            return Ok("This connection does not take approvals.".into());
        }
        let unknown =
            || Ok("This code is unknown, used or expired: make a new one in MorningAI.".to_owned());
        let key = crate::derived_id(id, code);
        let Some(o) = self.store.get_object(cx, LINK_CODE, key).await? else {
            return unknown();
        };
        // Used once: whoever deletes it first links.
        if !self.store.delete_object(cx, LINK_CODE, key).await?
            || o.due_at.is_none_or(|t| t < morningai_core::now())
        {
            return unknown();
        }
        let Some(who) = self.member_of(cx, &o.body).await? else {
            return unknown();
        };
        let member = who.user_id;
        let now = morningai_core::now();
        self.store
            .put_object(
                cx,
                &StoredObject {
                    kind: LINK.into(),
                    id: crate::derived_id(id, user),
                    parent: Some(id),
                    status: "active".into(),
                    body: json!({"user_id": member, "slack_user": user}),
                    due_at: None,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
        self.audit(
            &who,
            "integration.link",
            "integration",
            id,
            json!({"slack_user": user}),
        )
        .await?;
        Ok("Linked: approvals you decide from this workspace are recorded as your MorningAI account.".into())
    }

    /// A click on an approval message's button: decided when the Slack user linked their
    /// account and, as that member, may decide it. The message then shows the outcome
    /// instead of its buttons; a refusal is shown to the clicker only. Returns the
    /// metric's outcome.
    pub(super) async fn decide_from_slack(
        &self,
        cx: TenantCtx,
        id: Uuid,
        d: slack::Decision,
    ) -> Result<&'static str> {
        let response_url = json!({"response_url": d.response_url});
        self.integrations.check_response_url(&response_url)?;
        let (outcome, message) = match self.slack_decision(cx, id, &d).await {
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

    /// The member a link or link code names (`user_id`), as they are now: None when they
    /// left the tenant.
    async fn member_of(&self, cx: TenantCtx, body: &Value) -> Result<Option<Principal>> {
        let user: UserId = serde_json::from_value(body["user_id"].clone())
            .map_err(|e| Error::internal("read the user of a Slack link or link code", e))?;
        Ok(self
            .store
            .role_of(cx.tenant_id, user)
            .await?
            .map(|role| Principal {
                user_id: user,
                tenant_id: cx.tenant_id,
                role,
                api_key: None,
                ip: None,
            }))
    }

    async fn slack_decision(
        &self,
        cx: TenantCtx,
        id: Uuid,
        d: &slack::Decision,
    ) -> Result<ApprovalStatus> {
        let not_linked = || {
            Error::forbidden(
                "your Slack account is not linked to a MorningAI account here: make a code with POST /api/v1/integrations/{id}/link and type /morningai link <code>",
            )
        };
        if !slack_id(&d.user) {
            return Err(not_linked());
        }
        let link = self
            .store
            .get_object(cx, LINK, crate::derived_id(id, &d.user))
            .await?
            .ok_or_else(not_linked)?;
        let who = self
            .member_of(cx, &link.body)
            .await?
            .ok_or_else(|| Error::forbidden("your MorningAI account is no longer a member"))?;
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
        let answer = posted.map_err(|e| super::delivery_error("slack", e))?;
        Ok(json!({"outcome": "posted", "channel": settings.channel, "ts": answer["ts"]}))
    }
}
