//! Per-tenant cron schedules that create tasks.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::schedules::Schedule;
use morningai_core::{Priority, Role, now};
use morningai_worker::scheduler::next_after;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    pub name: String,
    /// Standard 5-field cron: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// IANA time zone, default `UTC`.
    pub timezone: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub input: Value,
    pub priority: Option<Priority>,
}

/// Creates a schedule (member+).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = CreateSchedule,
    responses((status = 201, body = Schedule), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateSchedule>,
) -> ApiResult<(StatusCode, axum::Json<Schedule>)> {
    who.require(Role::Member)?;
    let name = clean_name("name", &req.name)?;
    state.registry.kinds().validate(&req.kind, &req.input)?;
    let timezone = req.timezone.unwrap_or_else(|| "UTC".to_owned());
    let at = now();
    let next_run_at = next_after(req.cron.trim(), &timezone, at)
        .map_err(|(field, msg)| ApiError::invalid(field, msg))?;
    let s = Schedule {
        id: Uuid::now_v7(),
        tenant_id: who.tenant_id,
        name,
        cron: req.cron.trim().to_owned(),
        timezone,
        kind: req.kind,
        input: req.input,
        priority: req.priority.unwrap_or_default(),
        next_run_at,
        created_by: Some(who.user_id),
        created_at: at,
    };
    let s = state.store.create_schedule(who.cx(), s).await?;
    state
        .audit(
            &who,
            "schedule.create",
            "schedule",
            s.id,
            json!({"cron": s.cron, "kind": s.kind}),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(s)))
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
    who.require(Role::Member)?;
    state.store.delete_schedule(who.cx(), id).await?;
    state
        .audit(&who, "schedule.delete", "schedule", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
