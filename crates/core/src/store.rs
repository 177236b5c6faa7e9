//! The `Store` port: the repositories the services need, by concern — accounts and
//! tenancy, tasks and their events, schedules, workflow records, the audit log — and
//! `Store` as their sum. Tenant-owned data is reachable only through methods that take a
//! [`TenantCtx`]; the few unscoped methods are the explicit platform path (sign-up, login,
//! credential lookup, the background loops) and say so in their docs.

use crate::entities::*;
use crate::error::Result;
use crate::events::{NewTaskEvent, TaskEvent};
use crate::ids::{ApiKeyId, ProjectId, TaskId, TenantId, UserId};
use crate::schedules::Schedule;
use crate::values::{Email, Role};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// The tenant a tenant-scoped operation runs in. On PostgreSQL every such operation runs
/// inside a transaction that has switched to the `morningai_tenant` role with
/// `app.tenant_id` set, so row-level security holds even if a query forgot its filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TenantCtx {
    pub tenant_id: TenantId,
}

impl TenantCtx {
    pub fn new(tenant_id: TenantId) -> Self {
        Self { tenant_id }
    }
}

/// Pool gauges for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PoolStats {
    pub size: u64,
    pub idle: u64,
    pub waiting: u64,
}

/// Users, tenants, memberships, credentials (refresh tokens, API keys) and projects.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    // The platform path: users, tenants, credentials.

    /// Creates a user, a tenant and the user's owner membership in one transaction.
    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
    ) -> Result<(User, Tenant)>;
    async fn create_user(&self, user: NewUser) -> Result<User>;
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>>;
    /// Platform path: a login looks the user up before any tenant is known.
    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>>;
    /// Creates a tenant owned by `owner`.
    async fn create_tenant(&self, tenant: NewTenant, owner: UserId) -> Result<Tenant>;
    /// Platform path: finds a tenant by slug (CLI administration).
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    /// Platform path (platform admins): tenants in slug order after `after`, at most
    /// `limit`, with their member and task counts.
    async fn tenants_overview(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TenantOverview>>;
    /// Every tenant the user belongs to, with the role there.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>>;
    /// The user's role in the tenant, read from the membership row.
    async fn role_of(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>>;
    /// Platform path: resolves an API key by the hash of its secret (revoked keys: None).
    async fn api_key_grant(&self, key_hash: &[u8]) -> Result<Option<ApiKeyGrant>>;

    async fn insert_refresh_token(&self, token: NewRefreshToken) -> Result<()>;
    /// Atomically consumes a refresh token. Presenting one that was already consumed or
    /// revoked revokes its whole family.
    async fn use_refresh_token(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<RefreshUse>;
    /// Revokes the family of this token (logout). Unknown tokens are ignored.
    async fn revoke_refresh_family(&self, token_hash: &[u8]) -> Result<()>;

    // Tenant-scoped.

    async fn tenant(&self, cx: TenantCtx) -> Result<Tenant>;
    async fn rename_tenant(&self, cx: TenantCtx, name: &str) -> Result<Tenant>;

    async fn members(&self, cx: TenantCtx) -> Result<Vec<Member>>;
    /// Adds an existing user; conflict `already_member` when they are one.
    async fn add_member(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member>;
    /// Changes a role; refuses (conflict `last_owner`) to leave the tenant without an owner.
    async fn set_member_role(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member>;
    /// Removes a member; refuses (conflict `last_owner`) to remove the last owner.
    async fn remove_member(&self, cx: TenantCtx, user: UserId) -> Result<()>;

    async fn create_api_key(&self, cx: TenantCtx, key: NewApiKey) -> Result<ApiKey>;
    async fn api_keys(&self, cx: TenantCtx) -> Result<Vec<ApiKey>>;
    async fn revoke_api_key(&self, cx: TenantCtx, id: ApiKeyId) -> Result<()>;

    async fn create_project(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        created_by: Option<UserId>,
    ) -> Result<Project>;
    async fn project(&self, cx: TenantCtx, id: ProjectId) -> Result<Project>;
    async fn projects(&self, cx: TenantCtx) -> Result<Vec<Project>>;
    async fn update_project(
        &self,
        cx: TenantCtx,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<Project>;
    async fn delete_project(&self, cx: TenantCtx, id: ProjectId) -> Result<()>;
}

/// Tasks, their lifecycle and their events.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// Creates a task, or returns the existing one with the same idempotency key.
    async fn create_task(&self, cx: TenantCtx, task: NewTask) -> Result<TaskCreated>;
    async fn task(&self, cx: TenantCtx, id: TaskId) -> Result<Task>;
    /// Newest first.
    async fn tasks(&self, cx: TenantCtx, filter: &TaskFilter) -> Result<Vec<Task>>;
    /// Cancels a task that has not finished; conflict `task_finished` otherwise.
    async fn cancel_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task>;

    // The lifecycle the worker runtime drives.

    /// Marks a task running for a new attempt and stores its `started` event, in one
    /// transaction. None when it has already finished or was cancelled (the job must then
    /// not run).
    async fn start_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        event_data: Value,
    ) -> Result<Option<(Task, TaskEvent)>>;
    /// Records an outcome (status, result or error) unless the task already finished — a
    /// task's visible result is written once — together with its event, in one
    /// transaction. None when the task had already finished.
    async fn finish_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        outcome: TaskOutcome,
    ) -> Result<Option<TaskEvent>>;
    /// Puts a failed task back to `queued` (its dead job is being retried). False when the
    /// task is not failed.
    async fn reopen_task(&self, cx: TenantCtx, id: TaskId) -> Result<bool>;
    async fn append_task_event(&self, cx: TenantCtx, event: NewTaskEvent) -> Result<TaskEvent>;
    /// The id of the tenant's newest event (0 when none): where a live stream starts.
    async fn last_task_event_id(&self, cx: TenantCtx) -> Result<i64>;
    /// Bytes the tenant's task events take in storage (the tenant's storage quota).
    async fn task_event_bytes(&self, cx: TenantCtx) -> Result<u64>;
    /// Events after `after` (an event id), oldest first; of one task or the whole tenant.
    /// A tenant's event ids become visible in id order: once an id has been read, no
    /// event of that tenant with a lower id appears later, so a reader whose cursor is the
    /// last id it saw (a stream, a resume with `Last-Event-ID`) loses nothing.
    async fn task_events(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>>;
    /// Platform path (reconciler): tasks of every tenant not finished and last updated
    /// before `before`, oldest first.
    async fn unfinished_tasks(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Task)>>;
}

/// Per-tenant cron schedules.
#[async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    async fn create_schedule(&self, cx: TenantCtx, schedule: Schedule) -> Result<Schedule>;
    async fn schedules(&self, cx: TenantCtx) -> Result<Vec<Schedule>>;
    async fn delete_schedule(&self, cx: TenantCtx, id: Uuid) -> Result<()>;
    /// Platform path (scheduler): schedules of every tenant due at `now`.
    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>>;
    /// Platform path: moves `next_run_at` from `from` to `to` only if it still is `from`;
    /// the one process that wins this compare-and-set fires the schedule.
    async fn advance_schedule(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool>;
}

/// Workflow records kept as JSON documents (threads, runs, approvals, documents, …).
#[async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// Inserts or replaces a document (created_at is kept on replace).
    async fn put_object(&self, cx: TenantCtx, object: &crate::objects::StoredObject) -> Result<()>;
    /// Inserts a document unless one of that kind and id exists: false then, and nothing
    /// changes (a compare-and-set for versions and uniqueness guards).
    async fn insert_object(
        &self,
        cx: TenantCtx,
        object: &crate::objects::StoredObject,
    ) -> Result<bool>;
    async fn get_object(
        &self,
        cx: TenantCtx,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<crate::objects::StoredObject>>;
    /// Records of a kind matching `query`, newest first.
    async fn list_objects(
        &self,
        cx: TenantCtx,
        kind: &str,
        query: &crate::objects::ObjectQuery,
    ) -> Result<Vec<crate::objects::StoredObject>>;
    /// Platform path (sweepers): records of every tenant of a kind and status whose
    /// `due_at` is at or before `now`, the longest overdue first.
    async fn due_objects(
        &self,
        kind: &str,
        status: &str,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, crate::objects::StoredObject)>>;
    /// Platform path (sweepers): the tenants that have records of a kind.
    async fn tenants_with_objects(&self, kind: &str) -> Result<Vec<TenantId>>;
    /// Platform path (inbound webhooks, which name a record before anyone is
    /// authenticated): the tenant that holds the record of this kind and id, if any.
    async fn object_tenant(&self, kind: &str, id: Uuid) -> Result<Option<TenantId>>;
    async fn delete_object(&self, cx: TenantCtx, kind: &str, id: Uuid) -> Result<bool>;
}

/// The tenant's audit log.
#[async_trait]
pub trait AuditLog: Send + Sync + 'static {
    async fn audit(&self, cx: TenantCtx, entry: NewAuditEntry) -> Result<()>;
    /// Newest first.
    async fn audit_log(
        &self,
        cx: TenantCtx,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>>;
}

/// Every repository of one database.
#[async_trait]
pub trait Store: AccountStore + TaskStore + ScheduleStore + ObjectStore + AuditLog {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Round trip to the database (readiness).
    async fn ping(&self) -> Result<()>;

    fn pool_stats(&self) -> PoolStats;
}
