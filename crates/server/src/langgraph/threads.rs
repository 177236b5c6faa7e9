//! LangGraph assistants and threads (state, history, edits) over HTTP.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::graphs::assistants::CreateAssistantRequest;
use morningai_app::graphs::records::{AssistantView, CheckpointRef, Thread, ThreadState};
use morningai_app::graphs::threads::{
    CreateThread, HistoryRequest, PatchThread, ThreadSearch, UpdateState,
};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Every assistant the tenant can run: the built-in graphs, uploaded graphs, configured
/// agents.
#[utoipa::path(post, path = "/assistants/search", tag = "langgraph",
    responses((status = 200, body = Vec<AssistantView>)), security(("bearer" = []), ("api_key" = [])))]
pub async fn search_assistants(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<AssistantView>>> {
    Ok(axum::Json(state.graphs.search_assistants(who.cx()).await?))
}

/// A tenant assistant of an agent graph, configured by `config.configurable` (admin+).
#[utoipa::path(post, path = "/assistants", tag = "langgraph", request_body = CreateAssistantRequest,
    responses((status = 200, body = AssistantView), (status = 403, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn create_assistant(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateAssistantRequest>,
) -> ApiResult<axum::Json<AssistantView>> {
    Ok(axum::Json(state.graphs.create_assistant(&who, req).await?))
}

/// An assistant by id, or a built-in graph by name.
#[utoipa::path(get, path = "/assistants/{id}", tag = "langgraph", params(("id" = String, Path, description = "assistant id or graph id")),
    responses((status = 200, body = AssistantView), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get_assistant(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<AssistantView>> {
    Ok(axum::Json(state.graphs.assistant(who.cx(), &id).await?))
}

#[utoipa::path(post, path = "/threads", tag = "langgraph", request_body = CreateThread,
    responses((status = 200, body = Thread), (status = 409, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn create_thread(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateThread>,
) -> ApiResult<axum::Json<Thread>> {
    Ok(axum::Json(state.graphs.create_thread(&who, req).await?))
}

#[utoipa::path(get, path = "/threads/{id}", tag = "langgraph", params(("id" = Uuid, Path)),
    responses((status = 200, body = Thread), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get_thread(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Thread>> {
    Ok(axum::Json(state.graphs.thread(who.cx(), id).await?))
}

/// Merges metadata into the thread's.
#[utoipa::path(patch, path = "/threads/{id}", tag = "langgraph", params(("id" = Uuid, Path)), request_body = PatchThread,
    responses((status = 200, body = Thread), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn patch_thread(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<PatchThread>,
) -> ApiResult<axum::Json<Thread>> {
    Ok(axum::Json(state.graphs.patch_thread(&who, id, req).await?))
}

/// Deletes the thread with its runs and checkpoints.
#[utoipa::path(delete, path = "/threads/{id}", tag = "langgraph", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_thread(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.graphs.delete_thread(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/threads/search", tag = "langgraph", request_body = ThreadSearch,
    responses((status = 200, body = Vec<Thread>), (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn search_threads(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<ThreadSearch>,
) -> ApiResult<axum::Json<Vec<Thread>>> {
    Ok(axum::Json(
        state.graphs.search_threads(who.cx(), req).await?,
    ))
}

/// The thread's current state.
#[utoipa::path(get, path = "/threads/{id}/state", tag = "langgraph", params(("id" = Uuid, Path)),
    responses((status = 200, body = ThreadState), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get_state(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<ThreadState>> {
    Ok(axum::Json(
        state.graphs.thread_state(who.cx(), id, None).await?,
    ))
}

/// The thread's state at a checkpoint.
#[utoipa::path(get, path = "/threads/{id}/state/{checkpoint}", tag = "langgraph",
    params(("id" = Uuid, Path), ("checkpoint" = Uuid, Path)),
    responses((status = 200, body = ThreadState), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get_state_at(
    State(state): State<AppState>,
    who: Caller,
    Path((id, cp)): Path<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<ThreadState>> {
    Ok(axum::Json(
        state.graphs.thread_state(who.cx(), id, Some(cp)).await?,
    ))
}

/// The checkpoint an edit wrote.
#[derive(Serialize, ToSchema)]
pub struct StateUpdated {
    pub checkpoint: CheckpointRef,
}

/// Writes values into the thread's state as a new checkpoint (from `checkpoint_id`: a fork).
#[utoipa::path(post, path = "/threads/{id}/state", tag = "langgraph", params(("id" = Uuid, Path)), request_body = UpdateState,
    responses((status = 200, body = StateUpdated), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn update_state(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<UpdateState>,
) -> ApiResult<axum::Json<StateUpdated>> {
    let checkpoint = state.graphs.update_state(&who, id, req).await?;
    Ok(axum::Json(StateUpdated { checkpoint }))
}

/// The thread's states, newest first (GET takes no body; POST may give `limit`).
#[utoipa::path(post, path = "/threads/{id}/history", tag = "langgraph", params(("id" = Uuid, Path)),
    request_body(content = Option<HistoryRequest>),
    responses((status = 200, body = Vec<ThreadState>), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn history(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<axum::Json<Vec<ThreadState>>> {
    let req = crate::extract::optional_json::<HistoryRequest>(&body)?.unwrap_or_default();
    Ok(axum::Json(state.graphs.history(who.cx(), id, req).await?))
}

/// As `POST /threads/{id}/history`, with the default limit.
#[utoipa::path(get, path = "/threads/{id}/history", tag = "langgraph", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<ThreadState>), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn history_get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<ThreadState>>> {
    Ok(axum::Json(
        state
            .graphs
            .history(who.cx(), id, HistoryRequest::default())
            .await?,
    ))
}
