//! Entities as the API and the stores see them. Timestamps are UTC and serialise as RFC 3339.

use crate::ids::{ApiKeyId, ProjectId, TaskId, TenantId, UserId};
use crate::values::{Email, Priority, Role, Slug};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub slug: Slug,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A tenant as the platform's operators see it: who is in it and how much work it holds.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct TenantOverview {
    pub tenant: Tenant,
    pub members: u64,
    pub tasks: u64,
    /// Queued, running or retrying.
    pub active_tasks: u64,
}

/// A user as shown to clients (no password hash).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub is_platform_admin: bool,
    pub created_at: DateTime<Utc>,
}

/// A user with the secret needed to check a login; never serialised.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Debug)]
pub struct NewUser {
    pub email: Email,
    pub name: Option<String>,
    pub password_hash: String,
    pub is_platform_admin: bool,
}

#[derive(Clone, Debug)]
pub struct NewTenant {
    pub slug: Slug,
    pub name: String,
}

/// One of a user's tenants with the user's role there.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Membership {
    pub tenant: Tenant,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

/// One member of a tenant.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Member {
    pub user_id: UserId,
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the secret, to recognise a key in lists.
    pub prefix: String,
    pub role: Role,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub name: String,
    pub prefix: String,
    pub key_hash: Vec<u8>,
    pub role: Role,
    pub created_by: UserId,
}

/// What authenticating with an API key yields: the key's tenant, its role and its creator's
/// *current* role in that tenant (None when the creator is no longer a member).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKeyGrant {
    pub key_id: ApiKeyId,
    pub tenant_id: TenantId,
    pub key_role: Role,
    pub created_by: UserId,
    pub creator_role: Option<Role>,
}

#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    pub token_hash: Vec<u8>,
    pub family_id: Uuid,
    pub user_id: UserId,
    pub tenant_id: TenantId,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Clone, Debug, PartialEq)]
pub enum RefreshUse {
    /// Valid and now consumed; issue a successor in the same family.
    Rotated {
        family_id: Uuid,
        user_id: UserId,
        tenant_id: TenantId,
    },
    /// Already rotated or revoked: the whole family has been revoked.
    Reused,
    /// Unknown or expired.
    Invalid,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub description: Option<String>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    Queued,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Cancelled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Retrying => "retrying",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => TaskStatus::Queued,
            "running" => TaskStatus::Running,
            "retrying" => TaskStatus::Retrying,
            "succeeded" => TaskStatus::Succeeded,
            "failed" => TaskStatus::Failed,
            "cancelled" => TaskStatus::Cancelled,
            other => {
                return Err(format!(
                    "{other:?} is not a task status (queued, running, retrying, succeeded, failed, cancelled)"
                ));
            }
        })
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker records when an attempt ends.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskOutcome {
    /// Retrying, Succeeded, Failed or Cancelled.
    pub status: TaskStatus,
    pub result: Option<Value>,
    pub error: Option<String>,
    /// Data of the event stored with the outcome (its kind follows the status).
    pub event_data: Value,
}

impl TaskStatus {
    /// The event that records a move to this status.
    pub fn event_kind(self) -> crate::events::TaskEventKind {
        use crate::events::TaskEventKind as K;
        match self {
            TaskStatus::Queued => K::Queued,
            TaskStatus::Running => K::Started,
            TaskStatus::Retrying => K::Retrying,
            TaskStatus::Succeeded => K::Succeeded,
            TaskStatus::Failed => K::Failed,
            TaskStatus::Cancelled => K::Cancelled,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Task {
    pub id: TaskId,
    pub kind: String,
    pub status: TaskStatus,
    pub priority: Priority,
    pub project_id: Option<ProjectId>,
    /// W3C trace id of the request that created the task.
    pub trace_id: String,
    pub input: Value,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub idempotency_key: Option<String>,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewTask {
    pub id: TaskId,
    pub kind: String,
    pub priority: Priority,
    pub project_id: Option<ProjectId>,
    pub trace_id: String,
    pub input: Value,
    pub idempotency_key: Option<String>,
    pub created_by: Option<UserId>,
}

impl NewTask {
    /// The task as it is first stored: queued, created and last updated at `at`.
    pub fn queued(self, at: DateTime<Utc>) -> Task {
        Task {
            id: self.id,
            kind: self.kind,
            status: TaskStatus::Queued,
            priority: self.priority,
            project_id: self.project_id,
            trace_id: self.trace_id,
            input: self.input,
            result: None,
            error: None,
            idempotency_key: self.idempotency_key,
            created_by: self.created_by,
            created_at: at,
            updated_at: at,
        }
    }
}

impl Task {
    /// The data of the task's `queued` event.
    pub fn queued_event_data(&self) -> Value {
        serde_json::json!({"priority": self.priority})
    }
}

/// Result of creating a task: a repeated idempotency key returns the first task. A new
/// task comes with its stored `queued` event (written in the same transaction).
#[derive(Clone, Debug, PartialEq)]
pub enum TaskCreated {
    New(Task, crate::events::TaskEvent),
    Existing(Task),
}

#[derive(Clone, Debug, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub kind: Option<String>,
    pub project_id: Option<ProjectId>,
    /// Only tasks older (smaller id) than this one: cursor pagination, newest first.
    pub before: Option<TaskId>,
    pub limit: u32,
}

/// Who did something, for the audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User { id: UserId },
    ApiKey { id: ApiKeyId, created_by: UserId },
    System,
}

#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub actor: Actor,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub details: Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: Uuid,
    pub actor: Actor,
    pub action: String,
    pub resource_type: String,
    pub resource_id: Option<String>,
    pub ip: Option<String>,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}
