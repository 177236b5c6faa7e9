//! Chat-platform connections (admin+), and the webhooks the platforms post to.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use morningai_app::integrations::{
    CreateIntegration, HookReply, Integration, IntegrationCheck, LinkCode,
};
use uuid::Uuid;

/// Connects a chat platform (admin+). Its secrets are sealed and never returned; Telegram
/// is told the webhook URL at once (the deployment's `public_url` must be set).
#[utoipa::path(post, path = "/api/v1/integrations", tag = "integrations", request_body = CreateIntegration,
    responses((status = 201, body = Integration), (status = 403, body = Problem), (status = 422, body = Problem),
        (status = 409, body = Problem, description = "the tenant has 100 connections already"),
        (status = 503, body = Problem, description = "the platform refused the webhook registration")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateIntegration>,
) -> ApiResult<(StatusCode, axum::Json<Integration>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.create_integration(&who, req).await?),
    ))
}

/// The tenant's connections (admin+), newest first.
#[utoipa::path(get, path = "/api/v1/integrations", tag = "integrations",
    responses((status = 200, body = Vec<Integration>), (status = 403, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<Integration>>> {
    Ok(axum::Json(state.integrations(&who).await?))
}

/// One connection (admin+).
#[utoipa::path(get, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = Integration), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Integration>> {
    Ok(axum::Json(state.integration(&who, id).await?))
}

/// Disconnects (admin+): the webhook answers 404 from then on.
#[utoipa::path(delete, path = "/api/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.delete_integration(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Asks the platform whether the connection's token works (admin+).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/test", tag = "integrations", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = IntegrationCheck), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn test(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<IntegrationCheck>> {
    Ok(axum::Json(state.check_integration(&who, id).await?))
}

/// A code that links the caller's Slack account to them on this connection: type
/// `/morningai link <code>` in the workspace within ten minutes, and the approval buttons
/// you click there decide as you (any member; your role still says what you may decide).
#[utoipa::path(post, path = "/api/v1/integrations/{id}/link", tag = "integrations", params(("id" = String, Path, format = Uuid)),
    responses((status = 200, body = LinkCode), (status = 404, body = Problem),
        (status = 422, body = Problem, description = "not a Slack connection that takes approvals")),
    security(("bearer" = [])))]
pub async fn link(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<LinkCode>> {
    Ok(axum::Json(state.integration_link_code(&who, id).await?))
}

/// Messenger's subscription handshake: echoes `hub.challenge` when `hub.verify_token` is
/// the connection's.
#[utoipa::path(get, path = "/hooks/{platform}/{id}", tag = "integrations",
    params(("platform" = String, Path, description = "messenger"), ("id" = String, Path, format = Uuid),
        ("hub.mode" = Option<String>, Query), ("hub.verify_token" = Option<String>, Query), ("hub.challenge" = Option<String>, Query)),
    responses((status = 200, description = "the challenge", content_type = "text/plain"),
        (status = 401, body = Problem, description = "wrong or missing verify token"),
        (status = 404, body = Problem, description = "no such Messenger connection")))]
pub async fn handshake(
    State(state): State<AppState>,
    Path((platform, id)): Path<(String, String)>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<String> {
    let get = |k: &str| query.get(k).cloned();
    Ok(state.hook_handshake(&platform, &id, &get).await?)
}

/// A platform's webhook (Slack Events API, Telegram updates, LINE and Messenger events), verified with the
/// connection's secret before anything in it is read. A question is answered in its
/// thread by a `chat_reply` task; a platform's retries of one event make one task.
#[utoipa::path(post, path = "/hooks/{platform}/{id}", tag = "integrations",
    params(("platform" = String, Path, description = "slack, telegram, line or messenger"), ("id" = String, Path, format = Uuid)),
    request_body(content = Object, description = "the platform's event, as it sends it"),
    responses((status = 200, description = "accepted (Slack's url_verification gets its challenge back)"),
        (status = 401, body = Problem, description = "missing, wrong or stale signature"),
        (status = 404, body = Problem, description = "no such connection"),
        (status = 422, body = Problem, description = "verified but malformed")))]
pub async fn hook(
    State(state): State<AppState>,
    Path((platform, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Ok(
        match state.receive_hook(&platform, &id, &header, &body).await? {
            HookReply::Json(v) => axum::Json(v).into_response(),
            HookReply::Empty => StatusCode::OK.into_response(),
        },
    )
}
