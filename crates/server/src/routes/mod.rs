//! HTTP routes under `/api/v1`, one module per resource.

pub mod api_keys;
pub mod assistants;
pub mod auth;
pub mod documents;
pub mod events;
pub mod memory;
pub mod models;
pub mod projects;
pub mod queue;
pub mod schedules;
pub mod system;
pub mod tasks;
pub mod tenant;

use crate::auth::Principal;
use crate::error::ApiResult;
use crate::state::AppState;
use morningai_core::entities::NewAuditEntry;
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
    let s = raw.trim();
    if s.is_empty() {
        return Err(crate::error::ApiError::invalid(field, "must not be empty"));
    }
    if s.chars().count() > 200 {
        return Err(crate::error::ApiError::invalid(
            field,
            "must be at most 200 characters",
        ));
    }
    Ok(s.to_owned())
}

impl AppState {
    /// Appends to the tenant's audit log on behalf of the caller.
    pub async fn audit(
        &self,
        who: &Principal,
        action: &str,
        resource_type: &str,
        resource_id: impl ToString,
        details: serde_json::Value,
    ) -> ApiResult<()> {
        let entry = NewAuditEntry {
            actor: who.actor(),
            action: action.to_owned(),
            resource_type: resource_type.to_owned(),
            resource_id: Some(resource_id.to_string()),
            ip: who.ip.clone(),
            details,
        };
        Ok(self.store.audit(who.cx(), entry).await?)
    }
}
