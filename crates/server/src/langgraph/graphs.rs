//! Uploading declarative graphs: `POST /api/v1/graphs` with a JSON `definition` (or a YAML
//! `definition_yaml`), validated on upload — every problem reported with the path of the
//! offending field — then served as an assistant like the built-in graphs.

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::graphs::uploads::{UploadGraph, UploadedGraph};
use uuid::Uuid;

/// Uploads a declarative graph (admin+).
#[utoipa::path(post, path = "/api/v1/graphs", tag = "graphs", request_body = UploadGraph,
    responses((status = 201, body = UploadedGraph), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<UploadGraph>,
) -> ApiResult<(StatusCode, axum::Json<UploadedGraph>)> {
    Ok((
        StatusCode::CREATED,
        axum::Json(state.graphs.upload(&who, req).await?),
    ))
}

/// The tenant's uploaded graphs, newest first.
#[utoipa::path(get, path = "/api/v1/graphs", tag = "graphs", responses((status = 200, body = Vec<UploadedGraph>)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
) -> ApiResult<axum::Json<Vec<UploadedGraph>>> {
    Ok(axum::Json(state.graphs.uploaded(who.cx()).await?))
}

/// Deletes an uploaded graph (admin+).
#[utoipa::path(delete, path = "/api/v1/graphs/{id}", tag = "graphs", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.graphs.delete_upload(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
