//! Queue operations for the caller's tenant (admin+): depth, dead letters, retry, purge.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::events::TaskEventKind;
use morningai_core::queue::{DeadJob, QueueDepth};
use morningai_core::{Role, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadQuery {
    /// 1–500, default 100.
    pub limit: Option<String>,
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
    who.require(Role::Admin)?;
    Ok(axum::Json(state.tasks.queue.depth(who.tenant_id).await?))
}

#[utoipa::path(get, path = "/api/v1/queue/dead", tag = "queue", params(DeadQuery),
    responses((status = 200, body = Vec<DeadJob>)), security(("bearer" = [])))]
pub async fn dead(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<DeadQuery>,
) -> ApiResult<axum::Json<Vec<DeadJob>>> {
    who.require(Role::Admin)?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::invalid("limit", "must be between 1 and 500"))?,
    };
    Ok(axum::Json(
        state.tasks.queue.dead_jobs(who.tenant_id, limit).await?,
    ))
}

/// Moves a dead-lettered job back to the queue with fresh attempts; its task is queued again.
#[utoipa::path(post, path = "/api/v1/queue/dead/{id}/retry", tag = "queue", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    // Reopen the task first: a worker that picks the job up must find it runnable.
    let reopened = state.store.reopen_task(who.cx(), id).await?;
    if !state.tasks.queue.retry_dead(who.tenant_id, id).await? {
        return Err(ApiError::not_found("dead job"));
    }
    if reopened {
        state
            .tasks
            .record(
                who.cx(),
                id,
                TaskEventKind::Queued,
                json!({"retry_of_dead_letter": true}),
            )
            .await;
    }
    state
        .audit(&who, "queue.retry_dead", "task", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/queue/dead/{id}", tag = "queue", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn purge_one(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    if state
        .tasks
        .queue
        .purge_dead(who.tenant_id, Some(id))
        .await?
        == 0
    {
        return Err(ApiError::not_found("dead job"));
    }
    state
        .audit(&who, "queue.purge_dead", "task", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/queue/dead", tag = "queue", responses((status = 200, body = Purged)), security(("bearer" = [])))]
pub async fn purge_all(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Purged>> {
    who.require(Role::Admin)?;
    let purged = state.tasks.queue.purge_dead(who.tenant_id, None).await?;
    state
        .audit(
            &who,
            "queue.purge_dead",
            "queue",
            "all",
            json!({"purged": purged}),
        )
        .await?;
    Ok(axum::Json(Purged { purged }))
}
