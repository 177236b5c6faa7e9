//! Liveness, readiness, Prometheus metrics and the OpenAPI document.

use crate::error::{ApiError, Problem};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub database: &'static str,
    pub backend: &'static str,
    /// The embedding model's name, or `lexical-only` when none is configured.
    pub embeddings: String,
    /// What works in a degraded way (the process is still ready).
    pub warnings: Vec<String>,
}

#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// 200 when the database answers, 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = Ready), (status = 503, body = Problem)))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Ready>, ApiError> {
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(axum::Json(Ready {
            status: "ok",
            database: "ok",
            backend: state.store.backend(),
            embeddings: state
                .embedder
                .as_ref()
                .map_or_else(|| "lexical-only".to_owned(), |e| e.model().to_owned()),
            warnings: state
                .embedder
                .is_none()
                .then(|| {
                    "no embedding model configured (MORNINGAI_EMBED_MODEL_DIR): memory search is lexical only".to_owned()
                })
                .into_iter()
                .collect(),
        })),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "readiness: database check failed");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is not reachable",
            ))
        }
        Err(_) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database did not answer within 2 s",
        )),
    }
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", content_type = "text/plain"),
    (status = 401, body = Problem, description = "the metrics token is configured and was not sent"),
    (status = 403, body = Problem, description = "production without a metrics token")))]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    if let Err(e) = metrics_allowed(&state, &headers) {
        return e.into_response();
    }
    let pool = state.store.pool_stats();
    let backend = state.store.backend();
    metrics::gauge!("db_pool_connections", "backend" => backend).set(pool.size as f64);
    metrics::gauge!("db_pool_idle_connections", "backend" => backend).set(pool.idle as f64);
    metrics::gauge!("db_pool_waiting", "backend" => backend).set(pool.waiting as f64);
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `/metrics` tells an outsider how busy the server is and which routes exist: with
/// `metrics_token` set it takes that bearer token; in production it is never open.
fn metrics_allowed(state: &AppState, headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match (&state.config.metrics_token, sent) {
        (Some(want), Some(got))
            if morningai_app::auth::same_secret(want.as_bytes(), got.as_bytes()) =>
        {
            Ok(())
        }
        (Some(_), _) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send the metrics token as Authorization: Bearer <token>",
        )),
        (None, _) if state.config.env == morningai_app::config::Environment::Production => {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "metrics_closed",
                "set metrics_token to scrape /metrics in production",
            ))
        }
        (None, _) => Ok(()),
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, description = "this document")))]
pub async fn openapi() -> Response {
    axum::Json(crate::openapi::document()).into_response()
}
