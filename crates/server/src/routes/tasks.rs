//! Tasks: viewers read, members create, admins (or the creator) cancel.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query, limit_param};
use crate::routes::Page;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use morningai_app::tasks::CreateTask;
use morningai_core::entities::{Task, TaskCreated, TaskFilter, TaskStatus};
use morningai_core::{ProjectId, TaskId};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTasks {
    /// queued, running, retrying, succeeded, failed or cancelled.
    pub status: Option<String>,
    pub kind: Option<String>,
    pub project_id: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn parse_param<T: std::str::FromStr>(name: &str, raw: Option<&str>) -> ApiResult<Option<T>>
where
    T::Err: std::fmt::Display,
{
    raw.map(|s| {
        s.parse::<T>()
            .map_err(|e| ApiError::invalid(name, e.to_string()))
    })
    .transpose()
}

fn encode_cursor(id: TaskId) -> String {
    URL_SAFE_NO_PAD.encode(id.0.as_bytes())
}

fn decode_cursor(c: &str) -> ApiResult<TaskId> {
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| uuid::Uuid::from_slice(&b).ok())
        .map(TaskId)
        .ok_or_else(|| ApiError::invalid("cursor", "not a cursor returned by this API"))
}

/// Creates a task (member+). 201 for a new task; 200 with the first task when the
/// idempotency key was seen before.
#[utoipa::path(post, path = "/api/v1/tasks", tag = "tasks", request_body = CreateTask,
    responses((status = 201, body = Task), (status = 200, body = Task, description = "existing task for this idempotency key"),
              (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateTask>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    Ok(match state.submit_task(&who, req).await? {
        TaskCreated::New(t, _) => (StatusCode::CREATED, axum::Json(t)),
        TaskCreated::Existing(t) => (StatusCode::OK, axum::Json(t)),
    })
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Task), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(state.store.task(who.cx(), id).await?))
}

/// Lists tasks, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListTasks),
    responses((status = 200, body = Page<Task>), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<ListTasks>,
) -> ApiResult<axum::Json<Page<Task>>> {
    let limit = limit_param(q.limit.as_deref(), 50, 200)?;
    let filter = TaskFilter {
        status: parse_param::<TaskStatus>("status", q.status.as_deref())?,
        kind: q.kind,
        project_id: parse_param::<ProjectId>("project_id", q.project_id.as_deref())?,
        before: q.cursor.as_deref().map(decode_cursor).transpose()?,
        limit: limit + 1,
    };
    let mut items = state.store.tasks(who.cx(), &filter).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|t| encode_cursor(t.id))
    } else {
        None
    };
    Ok(axum::Json(Page { items, next_cursor }))
}

/// Cancels a task that has not finished (admin+, or the member who created it).
#[utoipa::path(post, path = "/api/v1/tasks/{id}/cancel", tag = "tasks", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Task), (status = 404, body = Problem), (status = 409, body = Problem, description = "already finished")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(state.cancel_task(&who, id).await?))
}
