//! Tenant webhooks (admin+): subscriptions, their delivery log, redelivery.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::webhooks::{CreateWebhook, Delivery, Webhook};
use uuid::Uuid;

/// Subscribes a URL to events (admin+). The answer's `secret` (`whsec_…`) signs every
/// delivery (Standard Webhooks) and is not shown again.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = CreateWebhook,
    responses((status = 201, body = Webhook), (status = 403, body = Problem), (status = 422, body = Problem),
        (status = 409, body = Problem, description = "the tenant has 20 webhooks already")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateWebhook>,
) -> ApiResult<(StatusCode, axum::Json<Webhook>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_webhook(&who, req).await?),
    ))
}

/// The tenant's webhooks (admin+).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = Vec<Webhook>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Webhook>>> {
    Ok(axum::Json(state.webhooks(&who).await?))
}

/// One webhook (admin+).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Webhook), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Webhook>> {
    Ok(axum::Json(state.webhook(&who, id).await?))
}

/// Unsubscribes (admin+).
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.delete_webhook(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The webhook's latest 100 deliveries, newest first, each with its attempts (admin+).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<Delivery>), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<Delivery>>> {
    Ok(axum::Json(state.webhook_deliveries(&who, id).await?))
}

/// Sends a delivery again, with the same `webhook-id` (admin+).
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(("id" = String, Path, format = Uuid), ("delivery" = String, Path, format = Uuid)),
    responses((status = 202, body = Delivery), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn redeliver(
    State(state): State<AppState>,
    who: Caller,
    Path((id, delivery)): Path<(Uuid, Uuid)>,
) -> ApiResult<(StatusCode, axum::Json<Delivery>)> {
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(state.redeliver(&who, id, delivery).await?),
    ))
}
