//! API keys: one tenant each, a role no higher than the creator's, secret shown once.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::auth::mint_api_key;
use morningai_core::entities::ApiKey;
use morningai_core::{ApiKeyId, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    /// Defaults to the creator's role; may not exceed it.
    pub role: Option<Role>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret. It is shown only in this response.
    pub secret: String,
}

/// Creates an API key (member+).
#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateApiKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedApiKey>)> {
    who.require(Role::Member)?;
    let name = clean_name("name", &req.name)?;
    let role = req.role.unwrap_or(who.role);
    if role > who.role {
        return Err(ApiError::forbidden(format!(
            "a key cannot have a higher role ({role}) than its creator ({})",
            who.role
        )));
    }
    let (new_key, secret) = mint_api_key(name, role, who.user_id);
    let key = state.store.create_api_key(who.cx(), new_key).await?;
    state
        .audit(
            &who,
            "api_key.create",
            "api_key",
            key.id,
            json!({"name": key.name, "role": key.role}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedApiKey { key, secret }),
    ))
}

/// The tenant's API keys (admin+), without secrets.
#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", responses((status = 200, body = Vec<ApiKey>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<ApiKey>>> {
    who.require(Role::Admin)?;
    Ok(axum::Json(state.store.api_keys(who.cx()).await?))
}

/// Revokes a key (admin+, or its creator).
#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<ApiKeyId>,
) -> ApiResult<StatusCode> {
    if who.role < Role::Admin {
        let keys = state.store.api_keys(who.cx()).await?;
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| ApiError::not_found("api key"))?;
        if key.created_by != who.user_id {
            return Err(ApiError::forbidden(
                "only admins can revoke other people's keys",
            ));
        }
    }
    state.store.revoke_api_key(who.cx(), id).await?;
    state.auth.invalidate();
    state
        .audit(&who, "api_key.revoke", "api_key", id, json!({}))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
