//! MorningAI's HTTP surface (axum): the `/api/v1` REST API, the LangGraph Server API, SSE
//! streams, problem responses, tracing, metrics and the OpenAPI document. It is an adapter
//! over the application (`morningai_app`): handlers parse and authenticate, call a use
//! case, and map its domain errors to problems.

pub mod auth;
pub mod error;
pub mod extract;
pub mod langgraph;
pub mod mcp;
pub mod openai;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod trace;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, StatusCode};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use error::ApiError;
use langgraph::{approvals, graphs, runs, store as lg_store, threads};
use morningai_app::Application;
use routes::{
    api_keys, assistants, auth as auth_routes, documents, events, integrations, memory, models,
    platform, projects, queue, schedules, system, tasks, tenant, webhooks,
};
pub use state::AppState;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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

/// One route: method, path (axum and OpenAPI write parameters alike, `{id}`), handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

macro_rules! routes {
    ($($method:ident $path:literal => $handler:expr),* $(,)?) => {
        vec![$(Route {
            method: Method::from_bytes(stringify!($method).to_uppercase().as_bytes())
                .expect("an HTTP method"),
            path: $path,
            handler: $method($handler),
        }),*]
    };
}

/// Every route the server answers. The router is built from this table and only from it,
/// and a test checks that the OpenAPI document describes exactly these routes.
pub fn route_table() -> Vec<Route> {
    routes![
        post "/api/v1/auth/signup" => auth_routes::signup,
        post "/api/v1/auth/login" => auth_routes::login,
        post "/api/v1/auth/refresh" => auth_routes::refresh,
        post "/api/v1/auth/logout" => auth_routes::logout,
        post "/api/v1/auth/switch-tenant" => auth_routes::switch_tenant,
        get "/api/v1/me" => auth_routes::me,
        get "/api/v1/tenant" => tenant::get,
        patch "/api/v1/tenant" => tenant::update,
        post "/api/v1/tenants" => tenant::create,
        get "/api/v1/tenant/members" => tenant::members,
        post "/api/v1/tenant/members" => tenant::add_member,
        patch "/api/v1/tenant/members/{user_id}" => tenant::update_member,
        delete "/api/v1/tenant/members/{user_id}" => tenant::remove_member,
        get "/api/v1/tenant/ai" => models::get_settings,
        put "/api/v1/tenant/ai" => models::put_settings,
        get "/api/v1/usage" => models::usage,
        get "/api/v1/api-keys" => api_keys::list,
        post "/api/v1/api-keys" => api_keys::create,
        delete "/api/v1/api-keys/{id}" => api_keys::revoke,
        get "/api/v1/integrations" => integrations::list,
        post "/api/v1/integrations" => integrations::create,
        get "/api/v1/integrations/{id}" => integrations::get,
        delete "/api/v1/integrations/{id}" => integrations::delete,
        post "/api/v1/integrations/{id}/test" => integrations::test,
        post "/api/v1/integrations/{id}/link" => integrations::link,
        get "/hooks/{platform}/{id}" => integrations::handshake,
        post "/hooks/{platform}/{id}" => integrations::hook,
        get "/api/v1/webhooks" => webhooks::list,
        post "/api/v1/webhooks" => webhooks::create,
        get "/api/v1/webhooks/{id}" => webhooks::get,
        delete "/api/v1/webhooks/{id}" => webhooks::delete,
        get "/api/v1/webhooks/{id}/deliveries" => webhooks::deliveries,
        post "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver" => webhooks::redeliver,
        get "/api/v1/projects" => projects::list,
        post "/api/v1/projects" => projects::create,
        get "/api/v1/projects/{id}" => projects::get,
        patch "/api/v1/projects/{id}" => projects::update,
        delete "/api/v1/projects/{id}" => projects::delete,
        get "/api/v1/tasks" => tasks::list,
        post "/api/v1/tasks" => tasks::create,
        get "/api/v1/tasks/{id}" => tasks::get,
        post "/api/v1/tasks/{id}/cancel" => tasks::cancel,
        get "/api/v1/tasks/{id}/events" => events::task_events,
        get "/api/v1/events" => events::tenant_events,
        get "/api/v1/schedules" => schedules::list,
        post "/api/v1/schedules" => schedules::create,
        delete "/api/v1/schedules/{id}" => schedules::delete,
        get "/api/v1/queue" => queue::depth,
        get "/api/v1/queue/dead" => queue::dead,
        delete "/api/v1/queue/dead" => queue::purge_all,
        delete "/api/v1/queue/dead/{id}" => queue::purge_one,
        post "/api/v1/queue/dead/{id}/retry" => queue::retry,
        get "/api/v1/platform/tenants" => platform::tenants,
        get "/api/v1/platform/tenants/{tenant_id}/queue/dead" => platform::dead,
        delete "/api/v1/platform/tenants/{tenant_id}/queue/dead" => platform::purge_all,
        delete "/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}" => platform::purge_one,
        post "/api/v1/platform/tenants/{tenant_id}/queue/dead/{id}/retry" => platform::retry,
        get "/api/v1/memory/collections" => memory::list_collections,
        post "/api/v1/memory/collections" => memory::create_collection,
        get "/api/v1/memory/collections/{id}" => memory::get_collection,
        delete "/api/v1/memory/collections/{id}" => memory::delete_collection,
        get "/api/v1/memory/collections/{id}/items" => memory::list_items,
        post "/api/v1/memory/collections/{id}/items" => memory::add_item,
        delete "/api/v1/memory/collections/{id}/items/{item_id}" => memory::delete_item,
        post "/api/v1/memory/search" => memory::search,
        post "/api/v1/memory/answer" => memory::answer,
        get "/api/v1/assistants" => assistants::list,
        post "/api/v1/assistants" => assistants::create,
        get "/api/v1/assistants/{id}" => assistants::get,
        patch "/api/v1/assistants/{id}" => assistants::patch,
        get "/api/v1/documents" => documents::list,
        post "/api/v1/documents" => documents::create,
        get "/api/v1/documents/export" => documents::export,
        post "/api/v1/documents/import" => documents::import,
        get "/api/v1/documents/{id}" => documents::get,
        patch "/api/v1/documents/{id}" => documents::patch,
        delete "/api/v1/documents/{id}" => documents::delete,
        get "/api/v1/documents/{id}/versions" => documents::versions,
        post "/api/v1/documents/{id}/versions" => documents::save,
        get "/api/v1/documents/{id}/versions/{n}" => documents::version,
        get "/api/v1/documents/{id}/diff" => documents::diff,
        post "/api/v1/documents/{id}/publish" => documents::publish,
        post "/api/v1/documents/{id}/restore" => documents::restore,
        get "/api/v1/approvals" => approvals::list,
        post "/api/v1/approvals/{id}/approve" => approvals::approve,
        post "/api/v1/approvals/{id}/reject" => approvals::reject,
        get "/api/v1/graphs" => graphs::list,
        post "/api/v1/graphs" => graphs::create,
        delete "/api/v1/graphs/{id}" => graphs::delete,
        get "/api/v1/openapi.json" => system::openapi,
        post "/assistants" => threads::create_assistant,
        post "/assistants/search" => threads::search_assistants,
        get "/assistants/{id}" => threads::get_assistant,
        post "/threads" => threads::create_thread,
        post "/threads/search" => threads::search_threads,
        get "/threads/{id}" => threads::get_thread,
        patch "/threads/{id}" => threads::patch_thread,
        delete "/threads/{id}" => threads::delete_thread,
        get "/threads/{id}/state" => threads::get_state,
        post "/threads/{id}/state" => threads::update_state,
        get "/threads/{id}/state/{checkpoint}" => threads::get_state_at,
        get "/threads/{id}/history" => threads::history_get,
        post "/threads/{id}/history" => threads::history,
        get "/threads/{id}/runs" => runs::list,
        post "/threads/{id}/runs" => runs::create,
        post "/threads/{id}/runs/stream" => runs::stream_thread,
        post "/threads/{id}/runs/wait" => runs::wait,
        get "/threads/{id}/runs/{run}" => runs::get,
        post "/threads/{id}/runs/{run}/cancel" => runs::cancel,
        get "/threads/{id}/runs/{run}/join" => runs::join,
        get "/threads/{id}/runs/{run}/stream" => runs::join_stream,
        post "/runs/stream" => runs::stream_stateless,
        post "/runs/wait" => runs::wait_stateless,
        get "/store/items" => lg_store::get_item,
        put "/store/items" => lg_store::put_item,
        delete "/store/items" => lg_store::delete_item,
        post "/store/items/search" => lg_store::search_items,
        post "/store/namespaces" => lg_store::list_namespaces,
        get "/healthz" => system::healthz,
        get "/readyz" => system::readyz,
        get "/metrics" => system::metrics,
    ]
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit_bytes;
    route_table()
        .into_iter()
        .fold(Router::new(), |r, route| r.route(route.path, route.handler))
        .merge(openai::router())
        .merge(mcp::router(state.clone()))
        .fallback(web::fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(axum::middleware::from_fn(trace::mark_route))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            trace::Edge {
                body_limit,
                trust_forwarded: state.config.trust_forwarded_for,
            },
            trace::middleware,
        ))
        .layer(axum::middleware::from_fn(openai::openai_errors))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<Application>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = AppState::new(app);
    let closing = state.closing.clone();
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closing.cancel();
        })
        .await
}
