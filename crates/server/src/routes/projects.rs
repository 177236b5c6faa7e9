//! Projects: viewers read, members create and edit, admins delete.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::tenancy::{CreateProject, UpdateProject};
use morningai_core::ProjectId;
use morningai_core::entities::Project;

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateProject>,
) -> ApiResult<(StatusCode, axum::Json<Project>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_project(&who, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", responses((status = 200, body = Vec<Project>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Project>>> {
    Ok(axum::Json(state.store.projects(who.cx()).await?))
}

#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Project), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ProjectId>,
) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(state.store.project(who.cx(), id).await?))
}

#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path, format = Uuid)),
    request_body = UpdateProject, responses((status = 200, body = Project), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ProjectId>,
    Json(req): Json<UpdateProject>,
) -> ApiResult<axum::Json<Project>> {
    Ok(axum::Json(state.update_project(&who, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ProjectId>,
) -> ApiResult<StatusCode> {
    state.delete_project(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
