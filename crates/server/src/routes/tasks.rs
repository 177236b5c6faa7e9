//! Tasks: viewers read, members create, admins (or the creator) cancel.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::routes::Page;
use crate::state::AppState;
use crate::trace::current_trace_id;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use morningai_core::entities::{NewTask, Task, TaskCreated, TaskFilter, TaskStatus};
use morningai_core::{Priority, ProjectId, Role, TaskId};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// A registered task kind, e.g. `echo`.
    pub kind: String,
    #[serde(default)]
    pub input: Value,
    pub project_id: Option<ProjectId>,
    /// 0 (lowest) to 9 (highest); 5 by default.
    pub priority: Option<Priority>,
    /// Repeating a key returns the first task instead of creating another.
    pub idempotency_key: Option<String>,
}

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
    who: Principal,
    Json(req): Json<CreateTask>,
) -> ApiResult<(StatusCode, axum::Json<Task>)> {
    who.require(Role::Member)?;
    state.registry.kinds().validate(&req.kind, &req.input)?;
    if let Some(k) = &req.idempotency_key
        && (k.is_empty() || k.len() > 200)
    {
        return Err(ApiError::invalid("idempotency_key", "must be 1-200 bytes"));
    }
    let new = NewTask {
        id: TaskId::new(),
        kind: req.kind,
        priority: req.priority.unwrap_or_default(),
        project_id: req.project_id,
        trace_id: current_trace_id(),
        input: req.input,
        idempotency_key: req.idempotency_key,
        created_by: Some(who.user_id),
    };
    Ok(match state.tasks.submit(who.cx(), new).await? {
        TaskCreated::New(t, _) => (StatusCode::CREATED, axum::Json(t)),
        TaskCreated::Existing(t) => (StatusCode::OK, axum::Json(t)),
    })
}

#[utoipa::path(get, path = "/api/v1/tasks/{id}", tag = "tasks", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Task), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<Task>> {
    Ok(axum::Json(state.store.task(who.cx(), id).await?))
}

/// Lists tasks, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/v1/tasks", tag = "tasks", params(ListTasks),
    responses((status = 200, body = Page<Task>), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Principal,
    Query(q): Query<ListTasks>,
) -> ApiResult<axum::Json<Page<Task>>> {
    let limit: u32 = parse_param("limit", q.limit.as_deref())?.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 200"));
    }
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
    who: Principal,
    Path(id): Path<TaskId>,
) -> ApiResult<axum::Json<Task>> {
    who.require(Role::Member)?;
    if who.role < Role::Admin {
        let task = state.store.task(who.cx(), id).await?;
        if task.created_by != Some(who.user_id) {
            return Err(ApiError::forbidden(
                "members can cancel only their own tasks",
            ));
        }
    }
    let t = state.tasks.cancel(who.cx(), id).await?;
    state
        .audit(&who, "task.cancel", "task", t.id, json!({"kind": t.kind}))
        .await?;
    Ok(axum::Json(t))
}
