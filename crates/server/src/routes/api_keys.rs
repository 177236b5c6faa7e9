//! API keys: one tenant each, a role no higher than the creator's, secret shown once.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::tenancy::{CreateApiKey, CreatedApiKey};
use morningai_core::ApiKeyId;
use morningai_core::entities::ApiKey;

/// Creates an API key (member+).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKey>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_api_key(&who, req).await?),
    ))
}

/// The tenant's API keys (admin+), without secrets.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKey>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    Ok(axum::Json(state.api_keys(&who).await?))
}

/// Revokes a key (admin+, or its creator).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ApiKeyId>,
) -> ApiResult<StatusCode> {
    state.revoke_api_key(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
