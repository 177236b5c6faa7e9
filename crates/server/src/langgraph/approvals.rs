//! Human approvals of graph interrupts: `GET /api/v1/approvals?status=pending`,
//! `POST /api/v1/approvals/{id}/approve|reject {comment}`. Who may decide comes from the
//! graph's policy (minimum role; whether the requester may approve their own run); every
//! decision is audited; a decision resumes the run with `{approved, comment}`.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::langgraph::routes::resume_thread;
use crate::langgraph::runs::{APPROVAL, save};
use crate::state::AppState;
use axum::extract::State;
use morningai_core::TenantCtx;
use morningai_core::objects::StoredObject;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub comment: Option<String>,
}

/// Approvals of the caller's tenant, by status.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(("status" = Option<String>, Query, description = "pending, approved, rejected or expired")),
    responses((status = 200, description = "approvals")), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Value>> {
    if let Some(s) = q.status.as_deref()
        && !["pending", "approved", "rejected", "expired"].contains(&s)
    {
        return Err(ApiError::invalid(
            "status",
            "pending, approved, rejected or expired",
        ));
    }
    let items = state
        .store
        .list_objects(who.cx(), APPROVAL, None, q.status.as_deref(), 500, 0)
        .await?;
    Ok(axum::Json(Value::Array(
        items.into_iter().map(|a| a.body).collect(),
    )))
}

async fn decide(
    state: &AppState,
    who: &Principal,
    id: Uuid,
    approved: bool,
    comment: Option<String>,
) -> ApiResult<Value> {
    let a = state
        .store
        .get_object(who.cx(), APPROVAL, id)
        .await?
        .ok_or_else(|| ApiError::not_found("approval"))?;
    if a.status != "pending" {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "approval_decided",
            format!("this approval is already {}", a.status),
        ));
    }
    let graph_id = a.body["graph_id"].as_str().unwrap_or_default().to_owned();
    let policy = state
        .catalog
        .resolve(&*state.store, who.cx(), &graph_id)
        .await
        .map(|r| r.approvals)
        .ok_or_else(|| ApiError::not_found("graph"))?;
    // An assistant may require a higher role than its graph (never a lower one).
    let asked: Option<morningai_core::Role> = a.body["value"]["min_role"]
        .as_str()
        .and_then(|r| r.parse().ok());
    who.require(asked.map_or(policy.min_role, |r| r.max(policy.min_role)))?;
    if !policy.allow_self && a.body["requested_by"] == json!(who.user_id) {
        return Err(ApiError::forbidden(
            "you started this run; someone else must decide (self-approval is off for this graph)",
        ));
    }
    // One decision per approval, even when two arrive at once: the first to claim it wins.
    let now = morningai_core::now();
    let claim = StoredObject {
        kind: "approval_decision".into(),
        id,
        parent: a.parent,
        status: if approved { "approved" } else { "rejected" }.into(),
        body: json!({"decided_by": who.user_id}),
        created_at: now,
        updated_at: now,
    };
    if !state.store.insert_object(who.cx(), &claim).await? {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "approval_decided",
            "this approval was decided by someone else a moment ago",
        ));
    }
    finish(
        state,
        who.cx(),
        a.clone(),
        if approved { "approved" } else { "rejected" },
        Some(who),
        comment.clone(),
    )
    .await?;
    let answer = json!({"approved": approved, "comment": comment});
    let thread = a
        .parent
        .ok_or_else(|| ApiError::internal("approval", "no thread"))?;
    let interrupt = a.body["interrupt_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let run = resume_thread(state, who, thread, &graph_id, &interrupt, answer).await?;
    state
        .audit(
            who,
            if approved {
                "approval.approve"
            } else {
                "approval.reject"
            },
            "approval",
            id,
            json!({"comment": comment, "run_id": run.id}),
        )
        .await?;
    Ok(
        json!({"approval_id": id, "status": if approved { "approved" } else { "rejected" }, "run": run.body}),
    )
}

/// Marks an approval decided (or expired) and stamps who and when.
pub async fn finish(
    state: &AppState,
    cx: TenantCtx,
    mut a: StoredObject,
    status: &str,
    who: Option<&Principal>,
    comment: Option<String>,
) -> ApiResult<()> {
    a.status = status.into();
    a.body["decided_by"] = json!(who.map(|w| w.user_id));
    a.body["decided_at"] = json!(morningai_core::now());
    a.body["comment"] = json!(comment);
    save(&*state.store, cx, a).await?;
    Ok(())
}

/// The optional `{comment}` body (an empty body is fine).
fn comment(body: &[u8]) -> ApiResult<Option<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    Ok(crate::extract::parse_json::<Decision>(body)?.comment)
}

/// Approves a pending interrupt and resumes the run with `{approved: true, comment}`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, description = "decided; the resumed run"), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        decide(&state, &who, id, true, comment(&body)?).await?,
    ))
}

/// Rejects a pending interrupt and resumes the run with `{approved: false, comment}`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, description = "decided; the resumed run"), (status = 403, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
    body: axum::body::Bytes,
) -> ApiResult<axum::Json<Value>> {
    Ok(axum::Json(
        decide(&state, &who, id, false, comment(&body)?).await?,
    ))
}
