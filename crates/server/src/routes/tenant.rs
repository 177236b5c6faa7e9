//! The current tenant, new tenants, and membership management.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::clean_name;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_core::entities::{Member, NewTenant, Tenant};
use morningai_core::{Email, Role, Slug, UserId};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub name: Option<String>,
    /// Days an idle thread keeps its checkpoints (0: forever).
    pub checkpoint_ttl_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    /// Derived from the name when omitted.
    pub slug: Option<Slug>,
}

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
    who.require(Role::Admin)?;
    if let Some(days) = req.checkpoint_ttl_days {
        morningai_app::graphs::sweeper::set_checkpoint_ttl(&*state.store, who.cx(), days).await?;
    }
    let t = match req.name.as_deref() {
        Some(n) => {
            state
                .store
                .rename_tenant(who.cx(), &clean_name("name", n)?)
                .await?
        }
        None => state.store.tenant(who.cx()).await?,
    };
    state
        .audit(
            &who,
            "tenant.update",
            "tenant",
            t.id,
            json!({"name": t.name, "checkpoint_ttl_days": req.checkpoint_ttl_days}),
        )
        .await?;
    Ok(axum::Json(t))
}

/// Creates a tenant; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 409, body = Problem)), security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateTenant>,
) -> ApiResult<(StatusCode, axum::Json<Tenant>)> {
    if who.api_key.is_some() {
        return Err(ApiError::forbidden(
            "API keys belong to one tenant; create tenants with a user session",
        ));
    }
    let name = clean_name("name", &req.name)?;
    let slug = req
        .slug
        .unwrap_or_else(|| Slug::from_name(&name, &uuid::Uuid::new_v4().simple().to_string()[..6]));
    let t = state
        .store
        .create_tenant(NewTenant { slug, name }, who.user_id)
        .await?;
    let owner = morningai_app::auth::Principal {
        tenant_id: t.id,
        role: Role::Owner,
        ..who.0
    };
    state
        .audit(
            &owner,
            "tenant.create",
            "tenant",
            t.id,
            json!({"name": t.name, "slug": t.slug}),
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(t)))
}

/// Members of the current tenant.
#[utoipa::path(get, path = "/api/v1/tenant/members", tag = "tenants", responses((status = 200, body = Vec<Member>)), security(("bearer" = [])))]
pub async fn members(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Member>>> {
    Ok(axum::Json(state.store.members(who.cx()).await?))
}

/// The member `who` wants to change; only owners may change owners.
async fn member_to_change(
    state: &AppState,
    who: &Caller,
    user_id: UserId,
    action: &str,
) -> ApiResult<Member> {
    let found = state
        .store
        .members(who.cx())
        .await?
        .into_iter()
        .find(|m| m.user_id == user_id);
    let member = found.ok_or_else(|| ApiError::not_found("member"))?;
    if member.role == Role::Owner && who.role != Role::Owner {
        return Err(ApiError::forbidden(format!("only owners can {action}")));
    }
    Ok(member)
}

fn check_grant(who: &Caller, role: Role) -> ApiResult<()> {
    who.require(Role::Admin)?;
    if role == Role::Owner && who.role != Role::Owner {
        return Err(ApiError::forbidden("only owners can grant the owner role"));
    }
    Ok(())
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
    check_grant(&who, req.role)?;
    let user = state
        .store
        .user_credentials(&req.email)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?
        .user;
    let m = state.store.add_member(who.cx(), user.id, req.role).await?;
    state.auth.invalidate();
    state
        .audit(
            &who,
            "member.add",
            "user",
            m.user_id,
            json!({"role": m.role}),
        )
        .await?;
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
    check_grant(&who, req.role)?;
    let current = member_to_change(&state, &who, user_id, "change an owner's role").await?;
    let m = state
        .store
        .set_member_role(who.cx(), user_id, req.role)
        .await?;
    state.auth.invalidate();
    state
        .audit(
            &who,
            "member.update",
            "user",
            user_id,
            json!({"from": current.role, "to": m.role}),
        )
        .await?;
    Ok(axum::Json(m))
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
    if user_id != who.user_id {
        who.require(Role::Admin)?;
    }
    let current = member_to_change(&state, &who, user_id, "remove an owner").await?;
    state.store.remove_member(who.cx(), user_id).await?;
    state.auth.invalidate();
    state
        .audit(
            &who,
            "member.remove",
            "user",
            user_id,
            json!({"role": current.role}),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
