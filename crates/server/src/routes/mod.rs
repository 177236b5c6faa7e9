//! HTTP routes under `/api/v1`, one module per resource.

pub mod api_keys;
pub mod assistants;
pub mod auth;
pub mod documents;
pub mod events;
pub mod integrations;
pub mod memory;
pub mod models;
pub mod platform;
pub mod projects;
pub mod queue;
pub mod schedules;
pub mod system;
pub mod tasks;
pub mod tenant;
pub mod webhooks;

use crate::error::ApiResult;
use serde::Serialize;

/// A page of a cursor-paginated list.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Trims a required display name and bounds its length.
pub fn clean_name(field: &str, raw: &str) -> ApiResult<String> {
    Ok(morningai_app::clean_name(field, raw)?)
}
