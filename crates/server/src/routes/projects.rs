//! Projects: viewers read, members create and edit, admins delete.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::entities::{Project, ProjectPatch};
use morningai_core::{ProjectId, Role};
use serde::{Deserialize, Deserializer};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    pub name: String,
    pub description: Option<String>,
}

/// Omitted fields stay; `"description": null` clears the description.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

/// Distinguishes an explicit null (Some(None)) from an absent field (None).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

fn clean_description(d: Option<String>) -> ApiResult<Option<String>> {
    match d {
        Some(d) if d.chars().count() > 10_000 => Err(crate::error::ApiError::invalid(
            "description",
            "must be at most 10000 characters",
        )),
        other => Ok(other),
    }
}

#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    responses((status = 201, body = Project), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateProject>,
) -> ApiResult<(StatusCode, axum::Json<Project>)> {
    who.require(Role::Member)?;
    let name = clean_name("name", &req.name)?;
    let description = clean_description(req.description)?;
    let p = state
        .store
        .create_project(who.cx(), &name, description.as_deref(), Some(who.user_id))
        .await?;
    state
        .audit(
            &who,
            "project.create",
            "project",
            p.id,
            json!({"name": p.name}),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(p)))
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
    who.require(Role::Member)?;
    let name = req
        .name
        .as_deref()
        .map(|n| clean_name("name", n))
        .transpose()?;
    let description = req.description.map(clean_description).transpose()?;
    let p = state
        .store
        .update_project(who.cx(), id, ProjectPatch { name, description })
        .await?;
    state
        .audit(
            &who,
            "project.update",
            "project",
            p.id,
            json!({"name": p.name}),
        )
        .await?;
    Ok(axum::Json(p))
}

#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ProjectId>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    state.store.delete_project(who.cx(), id).await?;
    state
        .audit(&who, "project.delete", "project", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
