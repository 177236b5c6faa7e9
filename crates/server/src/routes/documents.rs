//! Documents per project: versions (each based on a parent; a stale base is a conflict),
//! diffs, restore, publish, and search over published documents. Viewers read; members
//! write, publish and restore; admins delete.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use morningai_app::documents::{
    CreateDocument, DocStatus, Document, DocumentHit, PatchDocument, SaveVersion, Version,
};
use morningai_core::ProjectId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct DocumentWithVersion {
    pub document: Document,
    pub version: Version,
}

/// `201 Created` with the document and its new version.
fn created(document: Document, version: Version) -> (StatusCode, axum::Json<DocumentWithVersion>) {
    (
        StatusCode::CREATED,
        axum::Json(DocumentWithVersion { document, version }),
    )
}

#[utoipa::path(post, path = "/api/v1/documents", tag = "documents", request_body = CreateDocument,
    responses((status = 201, body = DocumentWithVersion), (status = 409, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<CreateDocument>,
) -> ApiResult<(StatusCode, axum::Json<DocumentWithVersion>)> {
    let (document, version) = state.create_document(&who, req).await?;
    Ok(created(document, version))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(value_type = Option<String>)]
    pub project_id: Option<ProjectId>,
    #[param(value_type = Option<String>)]
    pub status: Option<DocStatus>,
    /// Search published documents of `project_id` (hybrid, from memory).
    pub q: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentList {
    pub items: Vec<Document>,
    /// With `q`: the matches, best first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<Vec<DocumentHit>>,
}

#[utoipa::path(get, path = "/api/v1/documents", tag = "documents", params(ListQuery),
    responses((status = 200, body = DocumentList), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<DocumentList>> {
    if let Some(query) = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let project = q
            .project_id
            .ok_or_else(|| ApiError::invalid("project_id", "is required with q"))?;
        let k = q.limit.unwrap_or(10);
        if !(1..=50).contains(&k) {
            return Err(ApiError::invalid("limit", "must be between 1 and 50"));
        }
        let hits = state.documents.search(who.cx(), project, query, k).await?;
        return Ok(axum::Json(DocumentList {
            items: hits.iter().map(|h| h.document.clone()).collect(),
            hits: Some(hits),
        }));
    }
    Ok(axum::Json(DocumentList {
        items: state
            .documents
            .list(who.cx(), q.project_id, q.status)
            .await?,
        hits: None,
    }))
}

#[utoipa::path(get, path = "/api/v1/documents/{id}", tag = "documents",
    responses((status = 200, body = Document), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<Document>> {
    Ok(axum::Json(state.documents.get(who.cx(), id).await?))
}

#[utoipa::path(patch, path = "/api/v1/documents/{id}", tag = "documents", request_body = PatchDocument,
    responses((status = 200, body = Document), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<PatchDocument>,
) -> ApiResult<axum::Json<Document>> {
    Ok(axum::Json(state.patch_document(&who, id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/documents/{id}", tag = "documents",
    responses((status = 204), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.delete_document(&who, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
pub struct VersionList {
    pub items: Vec<Version>,
}

#[utoipa::path(get, path = "/api/v1/documents/{id}/versions", tag = "documents",
    responses((status = 200, body = VersionList), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn versions(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
) -> ApiResult<axum::Json<VersionList>> {
    Ok(axum::Json(VersionList {
        items: state.documents.versions(who.cx(), id).await?,
    }))
}

#[utoipa::path(post, path = "/api/v1/documents/{id}/versions", tag = "documents", request_body = SaveVersion,
    responses((status = 201, body = DocumentWithVersion), (status = 409, body = Problem, description = "version_conflict: the base is not the latest")),
    security(("bearer" = [])))]
pub async fn save(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<SaveVersion>,
) -> ApiResult<(StatusCode, axum::Json<DocumentWithVersion>)> {
    let (document, version) = state.save_version(&who, id, req).await?;
    Ok(created(document, version))
}

#[utoipa::path(get, path = "/api/v1/documents/{id}/versions/{n}", tag = "documents",
    responses((status = 200, body = Version), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn version(
    State(state): State<AppState>,
    who: Caller,
    Path((id, n)): Path<(Uuid, u32)>,
) -> ApiResult<axum::Json<Version>> {
    Ok(axum::Json(state.documents.version(who.cx(), id, n).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    pub from: u32,
    pub to: u32,
}

#[derive(Serialize, ToSchema)]
pub struct Diff {
    pub from: u32,
    pub to: u32,
    /// Unified diff of the markdown.
    pub diff: String,
}

#[utoipa::path(get, path = "/api/v1/documents/{id}/diff", tag = "documents", params(DiffQuery),
    responses((status = 200, body = Diff), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn diff(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Query(q): Query<DiffQuery>,
) -> ApiResult<axum::Json<Diff>> {
    let diff = state.documents.diff(who.cx(), id, q.from, q.to).await?;
    Ok(axum::Json(Diff {
        from: q.from,
        to: q.to,
        diff,
    }))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    /// Default: the latest version.
    pub version: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/documents/{id}/publish", tag = "documents", request_body = Publish,
    responses((status = 200, body = Document), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn publish(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<axum::Json<Document>> {
    // The body is optional: no body publishes the latest version.
    let req = crate::extract::optional_json::<Publish>(&body)?.unwrap_or_default();
    Ok(axum::Json(
        state.publish_document(&who, id, req.version).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    pub version: u32,
}

#[utoipa::path(post, path = "/api/v1/documents/{id}/restore", tag = "documents", request_body = Restore,
    responses((status = 201, body = DocumentWithVersion), (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn restore(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<Uuid>,
    Json(req): Json<Restore>,
) -> ApiResult<(StatusCode, axum::Json<DocumentWithVersion>)> {
    let (document, version) = state.restore_document(&who, id, req.version).await?;
    Ok(created(document, version))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProjectQuery {
    #[param(value_type = String)]
    pub project_id: ProjectId,
}

/// A project's published documents as a zip of `docs/<kind>/<slug>.md`.
#[utoipa::path(get, path = "/api/v1/documents/export", tag = "documents", params(ProjectQuery),
    responses((status = 200, content_type = "application/zip", description = "the archive"), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<ProjectQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let files = state.documents.export(who.cx(), q.project_id).await?;
    let zip = morningai_app::documents::zip_files(&files)?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/zip".to_owned(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"documents-{}.zip\"", q.project_id.0),
            ),
        ],
        zip,
    )
        .into_response())
}

/// Imports a zip of markdown files (`[docs/]<kind>/<slug>.md`) as published documents.
#[utoipa::path(post, path = "/api/v1/documents/import", tag = "documents", params(ProjectQuery),
    request_body(content = Vec<u8>, content_type = "application/zip"),
    responses((status = 200, body = morningai_app::documents::ImportReport), (status = 422, body = Problem)), security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    who: Caller,
    Query(q): Query<ProjectQuery>,
    crate::extract::RawBody(body): crate::extract::RawBody,
) -> ApiResult<axum::Json<morningai_app::documents::ImportReport>> {
    Ok(axum::Json(
        state.import_documents(&who, q.project_id, &body).await?,
    ))
}
