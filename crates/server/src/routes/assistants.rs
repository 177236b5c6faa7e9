//! Assistants: a tenant's configuration of an agent (`faq`, `codegen`). Members read;
//! admins create and change them. The same assistants are served through LangGraph's
//! `/assistants`, and tasks and runs name them with `assistant_id`.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::assistants::{self, Assistant, CreateAssistant, PatchAssistant};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct AssistantList {
    pub items: Vec<Assistant>,
}

#[utoipa::path(post, path = "/api/v1/assistants", tag = "assistants", request_body = CreateAssistant,
    responses((status = 201, body = Assistant), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateAssistant>,
) -> ApiResult<(StatusCode, axum::Json<Assistant>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(assistants::create(&*state.store, &who, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/assistants", tag = "assistants",
    responses((status = 200, body = AssistantList)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<AssistantList>> {
    Ok(axum::Json(AssistantList {
        items: assistants::list(&*state.store, who.cx()).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/assistants/{id}", tag = "assistants",
    responses((status = 200, body = Assistant), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Assistant>> {
    Ok(axum::Json(
        assistants::get(&*state.store, who.cx(), id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/assistants/{id}", tag = "assistants", request_body = PatchAssistant,
    responses((status = 200, body = Assistant), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<PatchAssistant>,
) -> ApiResult<axum::Json<Assistant>> {
    Ok(axum::Json(
        assistants::patch(&*state.store, &who, id, req).await?,
    ))
}
