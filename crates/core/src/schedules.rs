//! Per-tenant cron schedules that create tasks.

use crate::ids::{TenantId, UserId};
use crate::values::Priority;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    pub id: Uuid,
    #[serde(skip)]
    pub tenant_id: TenantId,
    pub name: String,
    /// Standard 5-field cron expression.
    pub cron: String,
    /// IANA time zone the expression is read in, e.g. `Europe/Paris`.
    pub timezone: String,
    pub kind: String,
    pub input: Value,
    pub priority: Priority,
    pub next_run_at: DateTime<Utc>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
}
