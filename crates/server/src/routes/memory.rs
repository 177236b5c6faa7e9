//! Vector memory over HTTP: collections, items (texts, chunked and embedded on upload) and
//! hybrid search with citations. Viewers search, members add and remove items, admins
//! create and delete collections.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::memory::{
    AddItem, AnswerResponse, CollectionStatus, SearchRequest, SearchResponse,
};
use morningai_core::memory::{Collection, Item};
use morningai_core::{CollectionId, ItemId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[utoipa::path(post, path = "/api/v1/memory/collections", tag = "memory", request_body = CreateCollection,
    responses((status = 201, body = Collection), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateCollection>,
) -> ApiResult<(StatusCode, axum::Json<Collection>)> {
    let c = state
        .create_collection(&who, &req.name, req.description.as_deref())
        .await?;
    Ok((StatusCode::CREATED, axum::Json(c)))
}

#[utoipa::path(get, path = "/api/v1/memory/collections", tag = "memory",
    responses((status = 200, body = Items<Collection>)), security(("bearer" = [])))]
pub async fn list_collections(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Items<Collection>>> {
    Ok(axum::Json(Items {
        items: state.memory.list_collections(who.cx()).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/memory/collections/{id}", tag = "memory",
    responses((status = 200, body = CollectionStatus), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<CollectionId>,
) -> ApiResult<axum::Json<CollectionStatus>> {
    Ok(axum::Json(state.collection_status(&who, id).await?))
}

#[utoipa::path(delete, path = "/api/v1/memory/collections/{id}", tag = "memory",
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<CollectionId>,
) -> ApiResult<StatusCode> {
    state.delete_collection(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/memory/collections/{id}/items", tag = "memory", request_body = AddItem,
    responses((status = 201, body = Item), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn add_item(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<CollectionId>,
    Json(req): Json<AddItem>,
) -> ApiResult<(StatusCode, axum::Json<Item>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.add_item(&who, id, req).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/memory/collections/{id}/items", tag = "memory",
    responses((status = 200, body = Items<Item>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_items(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<CollectionId>,
) -> ApiResult<axum::Json<Items<Item>>> {
    Ok(axum::Json(Items {
        items: state.memory.list_items(who.cx(), id).await?,
    }))
}

#[utoipa::path(delete, path = "/api/v1/memory/collections/{id}/items/{item_id}", tag = "memory",
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_item(
    State(state): State<AppState>,
    who: Caller,
    Path((id, item)): Path<(CollectionId, ItemId)>,
) -> ApiResult<StatusCode> {
    state.delete_item(&who, id, item).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/memory/search", tag = "memory", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<SearchRequest>,
) -> ApiResult<axum::Json<SearchResponse>> {
    Ok(axum::Json(state.search(&who, &req).await?))
}

/// Answers a question from memory: with the tenant's chat model when one is configured
/// (metered against its budget), otherwise extractively.
#[utoipa::path(post, path = "/api/v1/memory/answer", tag = "memory", request_body = SearchRequest,
    responses((status = 200, body = AnswerResponse), (status = 422, body = Problem),
              (status = 429, body = Problem, description = "the tenant's model budget would be exceeded; nothing was sent"),
              (status = 503, body = Problem, description = "the model provider is failing")), security(("bearer" = [])))]
pub async fn answer(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<SearchRequest>,
) -> ApiResult<axum::Json<AnswerResponse>> {
    Ok(axum::Json(state.answer(&who, &req).await?))
}
