//! Assistants: a tenant's configuration of an agent (`faq`, `codegen`). Members read;
//! admins create and change them. The same assistants are served through LangGraph's
//! `/assistants`, and tasks and runs name them with `assistant_id`.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::assistants::{self, Assistant, AssistantConfig};
use morningai_core::Role;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAssistant {
    /// `faq` or `codegen`.
    pub graph_id: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub config: AssistantConfig,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAssistant {
    pub name: Option<String>,
    pub description: Option<String>,
    pub config: Option<AssistantConfig>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

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
    who.require(Role::Admin)?;
    let a = assistants::create(
        &*state.store,
        who.cx(),
        &req.graph_id,
        &req.name,
        req.description,
        req.config,
        req.metadata.unwrap_or(Value::Null),
    )
    .await?;
    state
        .audit(
            &who,
            "assistant.create",
            "assistant",
            a.assistant_id,
            json!({"graph_id": a.graph_id}),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(a)))
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
    who.require(Role::Admin)?;
    let a = assistants::patch(
        &*state.store,
        who.cx(),
        id,
        req.name,
        req.description,
        req.config,
        req.metadata,
    )
    .await?;
    state
        .audit(
            &who,
            "assistant.update",
            "assistant",
            id,
            json!({"version": a.version}),
        )
        .await?;
    Ok(axum::Json(a))
}
