//! Per-tenant cron schedules that create tasks.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::tasks::CreateSchedule;
use morningai_core::schedules::Schedule;
use uuid::Uuid;

/// Creates a schedule (member+).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = CreateSchedule,
    responses((status = 201, body = Schedule), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateSchedule>,
) -> ApiResult<(StatusCode, axum::Json<Schedule>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_schedule(&who, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules", responses((status = 200, body = Vec<Schedule>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Schedule>>> {
    Ok(axum::Json(state.store.schedules(who.cx()).await?))
}

/// Deletes a schedule (member+).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.delete_schedule(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
