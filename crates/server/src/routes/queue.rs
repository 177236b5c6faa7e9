//! Queue operations for the caller's tenant (admin+): depth, dead letters, retry, purge.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Path, Query, limit_param};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::TaskId;
use morningai_core::queue::{DeadJob, QueueDepth};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// 1–500, default 100.
    pub limit: Option<String>,
}

impl DeadQuery {
    pub fn limit(&self) -> ApiResult<u32> {
        limit_param(self.limit.as_deref(), 100, 500)
    }
}

#[derive(Serialize, ToSchema)]
pub struct Purged {
    pub purged: u64,
}

/// Ready jobs by priority, running, scheduled (delayed or backing off) and dead-lettered.
#[utoipa::path(get, path = "/api/v1/queue", tag = "queue", responses((status = 200, body = QueueDepth)), security(("bearer" = [])))]
pub async fn depth(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<QueueDepth>> {
    Ok(axum::Json(state.queue_depth(&who).await?))
}

#[utoipa::path(get, path = "/api/v1/queue/dead", tag = "queue", params(DeadQuery),
    responses((status = 200, body = Vec<DeadJob>)), security(("bearer" = [])))]
pub async fn dead(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<DeadQuery>,
) -> ApiResult<axum::Json<Vec<DeadJob>>> {
    Ok(axum::Json(state.dead_jobs(&who, q.limit()?).await?))
}

/// Moves a dead-lettered job back to the queue with fresh attempts; its task is queued again.
#[utoipa::path(post, path = "/api/v1/queue/dead/{id}/retry", tag = "queue", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<StatusCode> {
    state.retry_dead(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/queue/dead/{id}", tag = "queue", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn purge_one(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<StatusCode> {
    state.purge_dead(&who, Some(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/queue/dead", tag = "queue", responses((status = 200, body = Purged)), security(("bearer" = [])))]
pub async fn purge_all(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Purged>> {
    let purged = state.purge_dead(&who, None).await?;
    Ok(axum::Json(Purged { purged }))
}
