//! Vector memory over HTTP: collections, items (texts, chunked and embedded on upload) and
//! hybrid search with citations. Viewers search, members add and remove items, admins
//! create and delete collections.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::memory::{ChunkHit, Collection, Item, SearchMode, SearchScope};
use morningai_core::{CollectionId, ItemId, Role};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollection {
    pub name: String,
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// A path or label; adding the same source again replaces the item.
    pub source: String,
    pub text: String,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub query: String,
    pub collection: Option<CollectionId>,
    /// Results to return, 1–50 (default 8).
    pub k: Option<usize>,
    /// Items whose metadata has each of these keys with exactly this value.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Map<String, Value>>,
    #[serde(default)]
    pub mode: SearchMode,
}

#[derive(Serialize, ToSchema)]
pub struct SearchResponse {
    /// The mode that ran (hybrid runs as lexical when no embedding model is configured).
    pub mode: SearchMode,
    pub warning: Option<String>,
    pub hits: Vec<Hit>,
}

#[derive(Serialize, ToSchema)]
pub struct Hit {
    #[serde(flatten)]
    pub chunk: ChunkHit,
    /// `source:start-end`, for citing the passage.
    pub citation: String,
}

#[derive(Serialize, ToSchema)]
pub struct Items<T> {
    pub items: Vec<T>,
}

#[utoipa::path(post, path = "/api/v1/memory/collections", tag = "memory", request_body = CreateCollection,
    responses((status = 201, body = Collection), (status = 409, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn create_collection(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<CreateCollection>,
) -> ApiResult<(StatusCode, axum::Json<Collection>)> {
    who.require(Role::Admin)?;
    let name = clean_name("name", &req.name)?;
    // Vectors of a collection all come from one model: the one configured now.
    let c = state
        .retriever
        .create_collection(who.cx(), &name, req.description.as_deref())
        .await?;
    state
        .audit(
            &who,
            "memory.collection.create",
            "collection",
            c.id,
            json!({"name": c.name}),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(c)))
}

#[utoipa::path(get, path = "/api/v1/memory/collections", tag = "memory",
    responses((status = 200, body = Items<Collection>)), security(("bearer" = [])))]
pub async fn list_collections(
    State(state): State<AppState>,
    who: Principal,
) -> ApiResult<axum::Json<Items<Collection>>> {
    Ok(axum::Json(Items {
        items: state.memory.list_collections(who.cx()).await?,
    }))
}

#[utoipa::path(get, path = "/api/v1/memory/collections/{id}", tag = "memory",
    responses((status = 200, body = Collection), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get_collection(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<CollectionId>,
) -> ApiResult<axum::Json<Collection>> {
    Ok(axum::Json(state.memory.get_collection(who.cx(), id).await?))
}

#[utoipa::path(delete, path = "/api/v1/memory/collections/{id}", tag = "memory",
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete_collection(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<CollectionId>,
) -> ApiResult<StatusCode> {
    who.require(Role::Admin)?;
    state.memory.delete_collection(who.cx(), id).await?;
    state
        .audit(
            &who,
            "memory.collection.delete",
            "collection",
            id,
            json!({}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/memory/collections/{id}/items", tag = "memory", request_body = AddItem,
    responses((status = 201, body = Item), (status = 404, body = Problem), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn add_item(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<CollectionId>,
    Json(req): Json<AddItem>,
) -> ApiResult<(StatusCode, axum::Json<Item>)> {
    who.require(Role::Member)?;
    let source = req.source.trim();
    if source.is_empty() || source.chars().count() > 1000 {
        return Err(ApiError::invalid("source", "1 to 1000 characters"));
    }
    if req.text.trim().is_empty() {
        return Err(ApiError::invalid("text", "must not be empty"));
    }
    let metadata = match req.metadata {
        None => json!({}),
        Some(m @ Value::Object(_)) => m,
        Some(_) => return Err(ApiError::invalid("metadata", "must be an object")),
    };
    let collection = state.memory.get_collection(who.cx(), id).await?;
    let item = state
        .retriever
        .add_text(who.cx(), &collection, source, &req.text, metadata)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(item)))
}

#[utoipa::path(get, path = "/api/v1/memory/collections/{id}/items", tag = "memory",
    responses((status = 200, body = Items<Item>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn list_items(
    State(state): State<AppState>,
    who: Principal,
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
    who: Principal,
    Path((id, item)): Path<(CollectionId, ItemId)>,
) -> ApiResult<StatusCode> {
    who.require(Role::Member)?;
    state.memory.delete_item(who.cx(), id, item).await?;
    Ok(StatusCode::NO_CONTENT)
}

impl SearchRequest {
    fn scope(&self) -> ApiResult<SearchScope> {
        let k = self.k.unwrap_or(8);
        if !(1..=50).contains(&k) {
            return Err(ApiError::invalid("k", "must be between 1 and 50"));
        }
        if self.query.chars().count() > 2000 {
            return Err(ApiError::invalid(
                "query",
                "must be at most 2000 characters",
            ));
        }
        Ok(SearchScope {
            collection: self.collection,
            filter: self.filter.clone().unwrap_or_default(),
            k,
        })
    }
}

fn cite(hits: Vec<ChunkHit>) -> Vec<Hit> {
    hits.into_iter()
        .map(|chunk| Hit {
            citation: morningai_agents::answer::Citation::of(&chunk).to_string(),
            chunk,
        })
        .collect()
}

#[utoipa::path(post, path = "/api/v1/memory/search", tag = "memory", request_body = SearchRequest,
    responses((status = 200, body = SearchResponse), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn search(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<SearchRequest>,
) -> ApiResult<axum::Json<SearchResponse>> {
    let scope = req.scope()?;
    let found = state
        .retriever
        .search(who.cx(), &req.query, req.mode, scope)
        .await?;
    Ok(axum::Json(SearchResponse {
        mode: found.mode,
        warning: found.warning,
        hits: cite(found.hits),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct AnswerResponse {
    pub answer: morningai_agents::answer::Answer,
    /// The retrieval the answer rests on.
    #[serde(flatten)]
    pub search: SearchResponse,
}

/// Answers a question from memory: with the tenant's chat model when one is configured
/// (metered against its budget), otherwise extractively.
#[utoipa::path(post, path = "/api/v1/memory/answer", tag = "memory", request_body = SearchRequest,
    responses((status = 200, body = AnswerResponse), (status = 422, body = Problem),
              (status = 429, body = Problem, description = "the tenant's model budget would be exceeded; nothing was sent"),
              (status = 503, body = Problem, description = "the model provider is failing")), security(("bearer" = [])))]
pub async fn answer(
    State(state): State<AppState>,
    who: Principal,
    Json(req): Json<SearchRequest>,
) -> ApiResult<axum::Json<AnswerResponse>> {
    if req.query.trim().is_empty() {
        return Err(ApiError::invalid("query", "must not be empty"));
    }
    let scope = req.scope()?;
    let found = state
        .retriever
        .search(who.cx(), &req.query, req.mode, scope)
        .await?;
    let answer = match state.models.chat(who.cx(), None).await? {
        Some(model) => {
            morningai_agents::answer::grounded(model.as_ref(), &req.query, &found.hits, None)
                .await?
        }
        None => morningai_agents::answer::extractive(&req.query, &found.hits, 4_000),
    };
    Ok(axum::Json(AnswerResponse {
        answer,
        search: SearchResponse {
            mode: found.mode,
            warning: found.warning,
            hits: cite(found.hits),
        },
    }))
}
