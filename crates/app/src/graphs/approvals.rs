//! Human approvals of graph interrupts. Who may decide comes from the graph's policy
//! (minimum role, raised by an assistant's approver role; whether the requester may approve
//! their own run); one decision wins when two arrive at once; every decision is audited
//! and resumes the run with `{approved, comment}`.

use super::records::{Approval, ApprovalStatus, Decided};
use super::{Graphs, get, list, put};
use crate::auth::Principal;
use morningai_core::objects::StoredObject;
use morningai_core::{Error, Result, TenantCtx, UserId};
use serde_json::json;
use uuid::Uuid;

/// The kind of the insert-only claim that makes one decision win.
const DECISION: &str = "approval_decision";

impl Graphs {
    /// The tenant's approvals, newest first, optionally by status.
    pub async fn approvals(
        &self,
        cx: TenantCtx,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>> {
        list::<Approval>(
            &*self.store,
            cx,
            None,
            status.map(ApprovalStatus::as_str),
            500,
        )
        .await
    }

    /// Approves or rejects a pending approval and resumes its run; returns that run.
    pub async fn decide(
        &self,
        who: &Principal,
        id: Uuid,
        approved: bool,
        comment: Option<String>,
    ) -> Result<Decided> {
        let cx = who.cx();
        let a = get::<Approval>(&*self.store, cx, id)
            .await?
            .ok_or(Error::NotFound("approval"))?;
        if a.status != ApprovalStatus::Pending {
            return Err(Error::conflict(
                "approval_decided",
                format!("this approval is already {}", a.status.as_str()),
            ));
        }
        let policy = self
            .catalog
            .resolve(&*self.store, cx, &a.graph_id)
            .await
            .map(|r| r.approvals)
            .ok_or(Error::NotFound("graph"))?;
        // An assistant may require a higher role than its graph (never a lower one).
        who.require(
            a.asked_role()
                .map_or(policy.min_role, |r| r.max(policy.min_role)),
        )?;
        if !policy.allow_self && a.requested_by == Some(who.user_id) {
            return Err(Error::forbidden(
                "you started this run; someone else must decide (self-approval is off for this graph)",
            ));
        }
        let status = if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        // One decision per approval, even when two arrive at once: the first to claim it wins.
        let now = morningai_core::now();
        let claim = StoredObject {
            kind: DECISION.into(),
            id,
            parent: Some(a.thread_id),
            status: status.as_str().into(),
            body: json!({"decided_by": who.user_id}),
            due_at: None,
            created_at: now,
            updated_at: now,
        };
        if !self.store.insert_object(cx, &claim).await? {
            return Err(Error::conflict(
                "approval_decided",
                "this approval was decided by someone else a moment ago",
            ));
        }
        let (thread, graph, interrupt) = (a.thread_id, a.graph_id.clone(), a.interrupt_id.clone());
        self.close(cx, a, status, Some(who.user_id), comment.clone())
            .await?;
        let answer = json!({"approved": approved, "comment": comment});
        let run = self
            .resume_thread(who, thread, &graph, &interrupt, answer)
            .await?;
        let action = if approved {
            "approval.approve"
        } else {
            "approval.reject"
        };
        crate::audit(
            &*self.store,
            who,
            action,
            "approval",
            id,
            json!({"comment": comment, "run_id": run.run_id}),
        )
        .await?;
        Ok(Decided {
            approval_id: id,
            status,
            run,
        })
    }

    /// Marks an approval decided (or expired) and stamps who and when.
    pub(crate) async fn close(
        &self,
        cx: TenantCtx,
        mut a: Approval,
        status: ApprovalStatus,
        by: Option<UserId>,
        comment: Option<String>,
    ) -> Result<()> {
        a.status = status;
        a.decided_by = by;
        a.decided_at = Some(morningai_core::now());
        a.comment = comment;
        put(&*self.store, cx, &mut a).await
    }
}
