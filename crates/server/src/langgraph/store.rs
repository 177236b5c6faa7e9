//! LangGraph's long-term store over HTTP (`/store/items`, `/store/items/search`,
//! `/store/namespaces`); the semantics are the application's (`store_items`).

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::store_items::{
    DeleteItem, GetItem, ListNamespaces, NamespacesResponse, PutItem, SearchItems,
    SearchItemsResponse, StoreItem,
};

/// Writes an item (embedded for semantic search when a model is configured).
#[utoipa::path(put, path = "/store/items", tag = "store", request_body = PutItem,
    responses((status = 204), (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn put_item(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<PutItem>,
) -> ApiResult<StatusCode> {
    state.store_put(&who, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/store/items", tag = "store", params(GetItem),
    responses((status = 200, body = StoreItem), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get_item(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<GetItem>,
) -> ApiResult<axum::Json<StoreItem>> {
    Ok(axum::Json(state.store_get(&who, &q).await?))
}

#[utoipa::path(delete, path = "/store/items", tag = "store", request_body = DeleteItem,
    responses((status = 204), (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn delete_item(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<DeleteItem>,
) -> ApiResult<StatusCode> {
    state.store_delete(&who, &req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Items under a namespace prefix, filtered, ranked by `query` when given.
#[utoipa::path(post, path = "/store/items/search", tag = "store", request_body = SearchItems,
    responses((status = 200, body = SearchItemsResponse), (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn search_items(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<SearchItems>,
) -> ApiResult<axum::Json<SearchItemsResponse>> {
    Ok(axum::Json(state.store_search(&who, req).await?))
}

#[utoipa::path(post, path = "/store/namespaces", tag = "store", request_body = ListNamespaces,
    responses((status = 200, body = NamespacesResponse), (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn list_namespaces(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<ListNamespaces>,
) -> ApiResult<axum::Json<NamespacesResponse>> {
    Ok(axum::Json(state.store_namespaces(&who, req).await?))
}
