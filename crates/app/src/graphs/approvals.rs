//! Human approvals of graph interrupts. Who may decide comes from the graph's policy
//! (minimum role, raised by an assistant's approver role; whether the requester may approve
//! their own run); one decision wins when two arrive at once; every decision is audited
//! and resumes the run with `{approved, comment}`.
//!
//! The approvals API is not the only way past an interrupt: a LangGraph client resumes with
//! `command.resume`, rewrites state with `update_state`, or forks from a checkpoint. Each of
//! those goes through the same policy (see [`Graphs::answers_of`] and
//! [`Graphs::guard_rewrite`]) for every graph, built-in or uploaded.

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
        self.authorize(who, &a).await?;
        let (thread, graph, interrupt) = (a.thread_id, a.graph_id.clone(), a.interrupt_id.clone());
        let status = self.settle(who, a, approved, comment.clone()).await?;
        let answer = json!({"approved": approved, "comment": comment});
        let run = self
            .resume_thread(who, thread, &graph, &interrupt, answer)
            .await?;
        self.audit_decision(who, id, status, comment, run.run_id, "approvals")
            .await?;
        Ok(Decided {
            approval_id: id,
            status,
            run,
        })
    }

    /// Whether `who` may decide `a`, by the graph's policy: the minimum role (raised by an
    /// assistant's approver role, never lowered) and whether the requester may approve
    /// their own run. Every path that answers an approval asks this first.
    pub(crate) async fn authorize(&self, who: &Principal, a: &Approval) -> Result<()> {
        if a.status != ApprovalStatus::Pending {
            return Err(Error::conflict(
                "approval_decided",
                format!("this approval is already {}", a.status.as_str()),
            ));
        }
        let policy = self
            .catalog
            .resolve(&*self.store, who.cx(), &a.graph_id)
            .await
            .map(|r| r.approvals)
            .ok_or(Error::NotFound("graph"))?;
        who.require(
            a.asked_role()
                .map_or(policy.min_role, |r| r.max(policy.min_role)),
        )?;
        if !policy.allow_self && a.requested_by == Some(who.user_id) {
            return Err(Error::forbidden(
                "you started this run; someone else must decide (self-approval is off for this graph)",
            ));
        }
        Ok(())
    }

    /// Records the decision on an authorized approval. One decision per approval, even when
    /// two arrive at once: the first to claim it wins.
    pub(crate) async fn settle(
        &self,
        who: &Principal,
        a: Approval,
        approved: bool,
        comment: Option<String>,
    ) -> Result<ApprovalStatus> {
        let cx = who.cx();
        let status = if approved {
            ApprovalStatus::Approved
        } else {
            ApprovalStatus::Rejected
        };
        if !self.claim(cx, &a, status, Some(who.user_id)).await? {
            return Err(Error::conflict(
                "approval_decided",
                "this approval was decided by someone else a moment ago",
            ));
        }
        self.close(cx, a, status, Some(who.user_id), comment)
            .await?;
        Ok(status)
    }

    /// The insert-only claim that makes one outcome of an approval win — a decision or its
    /// expiry, whichever comes first; false when another already has.
    pub(crate) async fn claim(
        &self,
        cx: TenantCtx,
        a: &Approval,
        status: ApprovalStatus,
        by: Option<UserId>,
    ) -> Result<bool> {
        let now = morningai_core::now();
        let claim = StoredObject {
            kind: DECISION.into(),
            id: a.id,
            parent: Some(a.thread_id),
            status: status.as_str().into(),
            body: json!({"decided_by": by}),
            due_at: None,
            created_at: now,
            updated_at: now,
        };
        self.store.insert_object(cx, &claim).await
    }

    /// The audit entry of a decision, naming the path it came by (`approvals` or `langgraph`).
    pub(crate) async fn audit_decision(
        &self,
        who: &Principal,
        id: Uuid,
        status: ApprovalStatus,
        comment: Option<String>,
        run_id: Uuid,
        via: &str,
    ) -> Result<()> {
        let action = if status == ApprovalStatus::Approved {
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
            json!({"comment": comment, "run_id": run_id, "via": via}),
        )
        .await
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
