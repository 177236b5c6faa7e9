//! The current tenant, new tenants, and membership management.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::tenancy::{CreateTenant, UpdateTenant};
use morningai_core::entities::{Member, Tenant};
use morningai_core::{Email, Role, UserId};
use serde::Deserialize;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    pub email: Email,
    pub role: Role,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    pub role: Role,
}

/// The caller's current tenant.
#[utoipa::path(get, path = "/api/v1/tenant", tag = "tenants", responses((status = 200, body = Tenant)), security(("bearer" = [])))]
pub async fn get(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(state.store.tenant(who.cx()).await?))
}

/// Renames the current tenant (admin+).
#[utoipa::path(patch, path = "/api/v1/tenant", tag = "tenants", request_body = UpdateTenant,
    responses((status = 200, body = Tenant), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<UpdateTenant>,
) -> ApiResult<axum::Json<Tenant>> {
    Ok(axum::Json(state.update_tenant(&who, req).await?))
}

/// Creates a tenant; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_tenant(&who, req).await?),
    ))
}

/// Members of the current tenant.
#[utoipa::path(get, path = "/api/v1/tenant/members", tag = "tenants", responses((status = 200, body = Vec<Member>)), security(("bearer" = [])))]
pub async fn members(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Member>>> {
    Ok(axum::Json(state.store.members(who.cx()).await?))
}

/// Adds an existing user to the tenant (admin+; only owners grant owner).
#[utoipa::path(post, path = "/api/v1/tenant/members", tag = "tenants", request_body = AddMember,
    responses((status = 201, body = Member), (status = 404, body = Problem, description = "no such user"),
              (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<AddMember>,
) -> ApiResult<(StatusCode, axum::Json<Member>)> {
    let m = state.add_member(&who, &req.email, req.role).await?;
    Ok((StatusCode::CREATED, axum::Json(m)))
}

/// Changes a member's role (admin+; only owners grant or take away owner).
#[utoipa::path(patch, path = "/api/v1/tenant/members/{user_id}", tag = "tenants", request_body = UpdateMember,
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Member), (status = 404, body = Problem), (status = 409, body = Problem, description = "last owner")),
    security(("bearer" = [])))]
pub async fn update_member(
    State(state): State<AppState>,
    who: Caller,
    Path(user_id): Path<UserId>,
    Json(req): Json<UpdateMember>,
) -> ApiResult<axum::Json<Member>> {
    Ok(axum::Json(
        state.set_member_role(&who, user_id, req.role).await?,
    ))
}

/// Removes a member (admin+, or anyone removing themselves; only owners remove owners).
#[utoipa::path(delete, path = "/api/v1/tenant/members/{user_id}", tag = "tenants",
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem, description = "last owner")),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    who: Caller,
    Path(user_id): Path<UserId>,
) -> ApiResult<StatusCode> {
    state.remove_member(&who, user_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
