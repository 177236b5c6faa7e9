//! Human approvals of graph interrupts: `GET /api/v1/approvals?status=pending`,
//! `POST /api/v1/approvals/{id}/approve|reject {comment}`. The policy — who may decide,
//! one decision winning, the audit, the resumed run — is the application's.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Path, Query, optional_json};
use crate::state::AppState;
use axum::extract::State;
use morningai_app::graphs::records::{Approval, ApprovalStatus, Decided};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// pending, approved, rejected or expired.
    #[param(value_type = Option<ApprovalStatus>)]
    pub status: Option<String>,
}

/// The optional body of a decision.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    #[serde(default)]
    pub comment: Option<String>,
}

/// Approvals of the caller's tenant, newest first, by status.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ListQuery),
    responses((status = 200, body = Vec<Approval>), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Vec<Approval>>> {
    let status = q.status.as_deref().map(str::parse).transpose()?;
    Ok(axum::Json(state.graphs.approvals(who.cx(), status).await?))
}

async fn decide(
    state: &AppState,
    who: &Caller,
    id: Uuid,
    approved: bool,
    body: &[u8],
) -> ApiResult<Decided> {
    let comment = optional_json::<Decision>(body)?.unwrap_or_default().comment;
    Ok(state.graphs.decide(who, id, approved, comment).await?)
}

/// Approves a pending interrupt and resumes the run with `{approved: true, comment}`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<Decision>),
    responses((status = 200, body = Decided), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<axum::Json<Decided>> {
    Ok(axum::Json(decide(&state, &who, id, true, &body).await?))
}

/// Rejects a pending interrupt and resumes the run with `{approved: false, comment}`.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/reject", tag = "approvals", params(("id" = Uuid, Path)),
    request_body(content = Option<Decision>),
    responses((status = 200, body = Decided), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = [])))]
pub async fn reject(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<axum::Json<Decided>> {
    Ok(axum::Json(decide(&state, &who, id, false, &body).await?))
}
