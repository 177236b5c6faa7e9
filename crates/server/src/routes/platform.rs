//! The platform's operators (platform admins, signed in with a session): every tenant with
//! its counts and queue, and a tenant's dead letters — the same operations as that tenant's
//! admins have under /api/v1/queue, audited in that tenant.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Path, Query, limit_param};
use crate::routes::queue::{DeadQuery, Purged};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::platform::PlatformTenant;
use morningai_core::queue::DeadJob;
use morningai_core::{TaskId, TenantId};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TenantsQuery {
    /// The last slug of the previous page.
    pub after: Option<String>,
    /// 1–100, default 50.
    pub limit: Option<String>,
}

/// Tenants in slug order with their members, tasks (all and active) and queue depth.
#[utoipa::path(get, path = "/api/v1/platform/tenants", tag = "platform", params(TenantsQuery),
    responses((status = 200, body = Vec<PlatformTenant>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn tenants(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<TenantsQuery>,
) -> ApiResult<axum::Json<Vec<PlatformTenant>>> {
    let limit = limit_param(q.limit.as_deref(), 50, 100)?;
    Ok(axum::Json(
        state
            .platform_tenants(&who, q.after.as_deref(), limit)
            .await?,
    ))
}

/// A tenant's dead-lettered jobs.
#[utoipa::path(get, path = "/api/v1/platform/tenants/{tenant_id}/queue/dead", tag = "platform",
    params(("tenant_id" = String, Path, format = Uuid), DeadQuery),
    responses((status = 200, body = Vec<DeadJob>), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn dead(
    State(state): State<AppState>,
    who: Caller,
    Path(tenant): Path<TenantId>,
    Query(q): Query<DeadQuery>,
) -> ApiResult<axum::Json<Vec<DeadJob>>> {
    let admin = state.as_tenant_admin(&who, tenant).await?;
    Ok(axum::Json(state.dead_jobs(&admin, q.limit()?).await?))
}

/// Moves one of a tenant's dead-lettered jobs back to its queue.
#[utoipa::path(post, path = "/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}/retry", tag = "platform",
    params(("tenant_id" = String, Path, format = Uuid), ("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn retry(
    State(state): State<AppState>,
    who: Caller,
    Path((tenant, id)): Path<(TenantId, TaskId)>,
) -> ApiResult<StatusCode> {
    let admin = state.as_tenant_admin(&who, tenant).await?;
    state.retry_dead(&admin, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes one of a tenant's dead-lettered jobs.
#[utoipa::path(delete, path = "/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}", tag = "platform",
    params(("tenant_id" = String, Path, format = Uuid), ("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn purge_one(
    State(state): State<AppState>,
    who: Caller,
    Path((tenant, id)): Path<(TenantId, TaskId)>,
) -> ApiResult<StatusCode> {
    let admin = state.as_tenant_admin(&who, tenant).await?;
    state.purge_dead(&admin, Some(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every dead-lettered job of a tenant.
#[utoipa::path(delete, path = "/api/v1/platform/tenants/{tenant_id}/queue/dead", tag = "platform",
    params(("tenant_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Purged), (status = 403, body = Problem), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn purge_all(
    State(state): State<AppState>,
    who: Caller,
    Path(tenant): Path<TenantId>,
) -> ApiResult<axum::Json<Purged>> {
    let admin = state.as_tenant_admin(&who, tenant).await?;
    let purged = state.purge_dead(&admin, None).await?;
    Ok(axum::Json(Purged { purged }))
}
