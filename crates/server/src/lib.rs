//! MorningAI's HTTP API (axum): routes, authentication, problem responses, tracing,
//! metrics and the OpenAPI document. The server is backend-agnostic: it holds an
//! `Arc<dyn Store>` chosen at start-up.

pub mod assistants;
pub mod auth;
pub mod codegen;
pub mod config;
pub mod documents;
pub mod error;
pub mod extract;
pub mod faq;
pub mod indexing;
pub mod langgraph;
pub mod models;
pub mod openapi;
pub mod routes;
pub mod runtime;
pub mod state;
pub mod trace;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use error::ApiError;
use routes::{
    api_keys, assistants as assistant_routes, auth as auth_routes, documents as document_routes,
    events, memory, models as model_routes, projects, queue, schedules, system, tasks, tenant,
};
pub use state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method",
    )
}

/// Turns a handler panic into a problem response instead of a dropped connection.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("handler panicked");
    axum::response::IntoResponse::into_response(ApiError::internal("handler", "panic"))
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/signup", post(auth_routes::signup))
        .route("/auth/login", post(auth_routes::login))
        .route("/auth/refresh", post(auth_routes::refresh))
        .route("/auth/logout", post(auth_routes::logout))
        .route("/auth/switch-tenant", post(auth_routes::switch_tenant))
        .route("/me", get(auth_routes::me))
        .route("/tenant", get(tenant::get).patch(tenant::update))
        .route("/tenants", post(tenant::create))
        .route(
            "/tenant/members",
            get(tenant::members).post(tenant::add_member),
        )
        .route(
            "/tenant/members/{user_id}",
            patch(tenant::update_member).delete(tenant::remove_member),
        )
        .route("/api-keys", get(api_keys::list).post(api_keys::create))
        .route("/api-keys/{id}", axum::routing::delete(api_keys::revoke))
        .route("/projects", get(projects::list).post(projects::create))
        .route(
            "/projects/{id}",
            get(projects::get)
                .patch(projects::update)
                .delete(projects::delete),
        )
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::get))
        .route("/tasks/{id}/cancel", post(tasks::cancel))
        .route("/tasks/{id}/events", get(events::task_events))
        .route("/events", get(events::tenant_events))
        .route("/schedules", get(schedules::list).post(schedules::create))
        .route("/schedules/{id}", axum::routing::delete(schedules::delete))
        .route("/queue", get(queue::depth))
        .route("/queue/dead", get(queue::dead).delete(queue::purge_all))
        .route("/queue/dead/{id}", axum::routing::delete(queue::purge_one))
        .route("/queue/dead/{id}/retry", post(queue::retry))
        .route("/openapi.json", get(system::openapi))
        .route(
            "/memory/collections",
            get(memory::list_collections).post(memory::create_collection),
        )
        .route(
            "/memory/collections/{id}",
            get(memory::get_collection).delete(memory::delete_collection),
        )
        .route(
            "/memory/collections/{id}/items",
            get(memory::list_items).post(memory::add_item),
        )
        .route(
            "/memory/collections/{id}/items/{item_id}",
            axum::routing::delete(memory::delete_item),
        )
        .route("/memory/search", post(memory::search))
        .route("/memory/answer", post(memory::answer))
        .route(
            "/tenant/ai",
            get(model_routes::get_settings).put(model_routes::put_settings),
        )
        .route("/usage", get(model_routes::usage))
        .route(
            "/assistants",
            get(assistant_routes::list).post(assistant_routes::create),
        )
        .route(
            "/assistants/{id}",
            get(assistant_routes::get).patch(assistant_routes::patch),
        )
        .route(
            "/documents",
            get(document_routes::list).post(document_routes::create),
        )
        .route("/documents/export", get(document_routes::export))
        .route("/documents/import", post(document_routes::import))
        .route(
            "/documents/{id}",
            get(document_routes::get)
                .patch(document_routes::patch)
                .delete(document_routes::delete),
        )
        .route(
            "/documents/{id}/versions",
            get(document_routes::versions).post(document_routes::save),
        )
        .route(
            "/documents/{id}/versions/{n}",
            get(document_routes::version),
        )
        .route("/documents/{id}/diff", get(document_routes::diff))
        .route("/documents/{id}/publish", post(document_routes::publish))
        .route("/documents/{id}/restore", post(document_routes::restore));
    let api = api
        .route("/approvals", get(langgraph::approvals::list))
        .route(
            "/approvals/{id}/approve",
            post(langgraph::approvals::approve),
        )
        .route("/approvals/{id}/reject", post(langgraph::approvals::reject))
        .route(
            "/graphs",
            get(langgraph::graphs::list).post(langgraph::graphs::create),
        )
        .route(
            "/graphs/{id}",
            axum::routing::delete(langgraph::graphs::delete),
        );
    use langgraph::routes as lg;
    let langgraph = Router::new()
        .route("/assistants", post(lg::create_assistant))
        .route("/assistants/search", post(lg::search_assistants))
        .route("/assistants/{id}", get(lg::get_assistant))
        .route("/threads", post(lg::create_thread))
        .route("/threads/search", post(lg::search_threads))
        .route(
            "/threads/{id}",
            get(lg::get_thread)
                .patch(lg::patch_thread)
                .delete(lg::delete_thread),
        )
        .route(
            "/threads/{id}/state",
            get(lg::get_thread_state).post(lg::update_thread_state),
        )
        .route(
            "/threads/{id}/state/{checkpoint}",
            get(lg::get_thread_state_at),
        )
        .route(
            "/threads/{id}/history",
            get(lg::thread_history).post(lg::thread_history),
        )
        .route(
            "/threads/{id}/runs",
            get(lg::list_runs).post(lg::create_thread_run),
        )
        .route("/threads/{id}/runs/stream", post(lg::stream_thread_run))
        .route("/threads/{id}/runs/wait", post(lg::wait_thread_run))
        .route("/threads/{id}/runs/{run}", get(lg::get_run))
        .route("/threads/{id}/runs/{run}/cancel", post(lg::cancel_run))
        .route("/threads/{id}/runs/{run}/join", get(lg::join_run))
        .route("/threads/{id}/runs/{run}/stream", get(lg::join_stream))
        .route("/runs/stream", post(lg::stream_stateless))
        .route("/runs/wait", post(lg::wait_stateless))
        .route(
            "/store/items",
            get(langgraph::store::get_item)
                .put(langgraph::store::put_item)
                .delete(langgraph::store::delete_item),
        )
        .route("/store/items/search", post(langgraph::store::search_items))
        .route("/store/namespaces", post(langgraph::store::list_namespaces));
    let body_limit = state.config.body_limit_bytes;
    Router::new()
        .nest("/api/v1", api)
        .merge(langgraph)
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(trace::mark_route))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn(trace::middleware))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
