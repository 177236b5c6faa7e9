use crate::rows::{
    self, API_KEY_COLS, EVENT_COLS, MEMBER_SELECT, PROJECT_COLS, SCHEDULE_COLS, TASK_COLS,
    TENANT_COLS, USER_COLS,
};
use crate::tx::{Tx, conn, db_err, one_shot};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use morningai_core::entities::*;
use morningai_core::events::{NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::schedules::Schedule;
use morningai_core::store::PoolStats;
use morningai_core::{
    ApiKeyId, Email, Error, ProjectId, Result, Role, Store, TaskId, TenantCtx, TenantId, UserId,
    now,
};
use serde_json::Value;
use std::str::FromStr;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
    /// Dense searches over fewer vectors than this scan exactly instead of using HNSW.
    pub(crate) exact_below: i64,
}

pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

fn last_owner() -> Error {
    Error::conflict("last_owner", "a tenant must keep at least one owner")
}

impl PgStore {
    /// Connects (pool of `max_connections`) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| Error::internal("parse DATABASE_URL", e))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_connections)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::internal("build postgres pool", e))?;
        let mut client = conn(&pool).await?;
        crate::migrate::run(&mut client)
            .await
            .map_err(db_err("postgres migrations"))?;
        Ok(Self {
            pool,
            exact_below: crate::memory::EXACT_BELOW,
        })
    }

    /// Sets the scope size from which dense search walks the HNSW index (tests force the
    /// index with 0).
    pub fn with_exact_below(mut self, vectors: i64) -> Self {
        self.exact_below = vectors;
        self
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    async fn scoped(
        &self,
        cx: TenantCtx,
        context: &str,
        sql: &str,
        params: crate::tx::Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        one_shot(&self.pool, Some(cx), context, sql, params).await
    }

    async fn platform(
        &self,
        context: &str,
        sql: &str,
        params: crate::tx::Params<'_>,
    ) -> Result<Vec<tokio_postgres::Row>> {
        one_shot(&self.pool, None, context, sql, params).await
    }
}

async fn insert_user(tx: &Tx, u: &NewUser) -> Result<User> {
    let user = User {
        id: UserId::new(),
        email: u.email.clone(),
        name: u.name.clone(),
        is_platform_admin: u.is_platform_admin,
        created_at: now(),
    };
    tx.execute(
        "INSERT INTO users (id, email, name, password_hash, is_platform_admin, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &user.id.0,
            &user.email.as_str(),
            &user.name,
            &u.password_hash,
            &user.is_platform_admin,
            &user.created_at,
        ],
    )
    .await
    .map_err(|e| {
        if unique_violation(&e) {
            Error::conflict("email_taken", "a user with this email already exists")
        } else {
            db_err("insert user")(e)
        }
    })?;
    Ok(user)
}

async fn insert_tenant(tx: &Tx, t: &NewTenant, owner: UserId) -> Result<Tenant> {
    let tenant = Tenant {
        id: TenantId::new(),
        slug: t.slug.clone(),
        name: t.name.clone(),
        created_at: now(),
    };
    tx.execute(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &tenant.id.0,
            &tenant.slug.as_str(),
            &tenant.name,
            &tenant.created_at,
        ],
    )
    .await
    .map_err(|e| {
        if unique_violation(&e) {
            Error::conflict("slug_taken", "a tenant with this slug already exists")
        } else {
            db_err("insert tenant")(e)
        }
    })?;
    tx.execute(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, 'owner', $3)",
        &[&tenant.id.0, &owner.0, &tenant.created_at],
    )
    .await
    .map_err(db_err("insert owner membership"))?;
    Ok(tenant)
}

async fn insert_event(tx: &Tx, tenant: TenantId, e: &NewTaskEvent) -> Result<TaskEvent> {
    let at = now();
    let row = tx
        .query_opt(
            "INSERT INTO task_events (tenant_id, task_id, kind, data, at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&tenant.0, &e.task_id.0, &e.kind.as_str(), &e.data, &at],
        )
        .await
        .map_err(db_err("insert task event"))?
        .ok_or_else(|| Error::internal("insert task event", "no id returned"))?;
    Ok(TaskEvent {
        id: row.get(0),
        tenant_id: tenant,
        task_id: e.task_id,
        kind: e.kind,
        data: e.data.clone(),
        at,
    })
}

/// Locks the tenant's memberships for the rest of the transaction (owner-count checks).
async fn member_for_update(tx: &Tx, user: UserId) -> Result<(Member, i64)> {
    let rows = tx
        .query(
            "SELECT user_id, role FROM memberships WHERE tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid FOR UPDATE",
            &[],
        )
        .await
        .map_err(db_err("lock memberships"))?;
    let owners = rows
        .iter()
        .filter(|r| r.get::<_, &str>(1) == "owner")
        .count() as i64;
    let row = tx
        .query_opt(&format!("{MEMBER_SELECT} WHERE m.user_id = $1"), &[&user.0])
        .await
        .map_err(db_err("get member"))?
        .ok_or(Error::NotFound("member"))?;
    Ok((rows::member(&row)?, owners))
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        let client = conn(&self.pool).await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(db_err("ping"))?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let s = self.pool.status();
        PoolStats {
            size: s.size as u64,
            idle: s.available as u64,
            waiting: s.waiting as u64,
        }
    }

    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
    ) -> Result<(User, Tenant)> {
        let tx = Tx::begin(&self.pool, None).await?;
        let u = insert_user(&tx, &user).await?;
        let t = insert_tenant(&tx, &tenant, u.id).await?;
        tx.commit().await?;
        Ok((u, t))
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        let tx = Tx::begin(&self.pool, None).await?;
        let u = insert_user(&tx, &user).await?;
        tx.commit().await?;
        Ok(u)
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        let rows = self
            .platform(
                "user by id",
                &format!("SELECT {USER_COLS} FROM users WHERE id = $1"),
                &[&id.0],
            )
            .await?;
        rows.first().map(rows::user).transpose()
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let rows = self
            .platform(
                "user credentials",
                &format!(
                    "SELECT {USER_COLS}, password_hash FROM users WHERE lower(email) = lower($1)"
                ),
                &[&email.as_str()],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(UserCredentials {
                    user: rows::user(r)?,
                    password_hash: r.get(5),
                })
            })
            .transpose()
    }

    async fn create_tenant(&self, tenant: NewTenant, owner: UserId) -> Result<Tenant> {
        let tx = Tx::begin(&self.pool, None).await?;
        let exists = tx
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&owner.0])
            .await
            .map_err(db_err("find owner"))?
            .is_some();
        if !exists {
            return Err(Error::NotFound("user"));
        }
        let t = insert_tenant(&tx, &tenant, owner).await?;
        tx.commit().await?;
        Ok(t)
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let rows = self
            .platform(
                "tenant by slug",
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = $1"),
                &[&slug],
            )
            .await?;
        rows.first().map(rows::tenant).transpose()
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>> {
        let rows = self
            .platform(
                "memberships of user",
                "SELECT t.id, t.slug, t.name, t.created_at, m.role, m.created_at
                 FROM memberships m JOIN tenants t ON t.id = m.tenant_id
                 WHERE m.user_id = $1 ORDER BY m.created_at, t.id",
                &[&user.0],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Membership {
                    tenant: rows::tenant_at(r, 0)?,
                    role: rows::role(r, 4)?,
                    joined_at: r.get(5),
                })
            })
            .collect()
    }

    async fn role_of(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>> {
        let rows = self
            .platform(
                "role of user",
                "SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2",
                &[&tenant.0, &user.0],
            )
            .await?;
        rows.first().map(|r| rows::role(r, 0)).transpose()
    }

    async fn api_key_grant(&self, key_hash: &[u8]) -> Result<Option<ApiKeyGrant>> {
        let rows = self
            .platform(
                "api key lookup",
                "SELECT k.id, k.tenant_id, k.role, k.created_by, m.role
                 FROM api_keys k
                 LEFT JOIN memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
                 WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
                &[&key_hash],
            )
            .await?;
        rows.first()
            .map(|r| {
                Ok(ApiKeyGrant {
                    key_id: r.get::<_, Uuid>(0).into(),
                    tenant_id: r.get::<_, Uuid>(1).into(),
                    key_role: rows::role(r, 2)?,
                    created_by: r.get::<_, Uuid>(3).into(),
                    creator_role: r
                        .get::<_, Option<&str>>(4)
                        .map(Role::from_str)
                        .transpose()
                        .map_err(|e| Error::internal("bad stored role", e))?,
                })
            })
            .transpose()
    }

    async fn insert_refresh_token(&self, t: NewRefreshToken) -> Result<()> {
        self.platform(
            "insert refresh token",
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&t.token_hash, &t.family_id, &t.user_id.0, &t.tenant_id.0, &now(), &t.expires_at],
        )
        .await?;
        Ok(())
    }

    async fn use_refresh_token(&self, token_hash: &[u8], at: DateTime<Utc>) -> Result<RefreshUse> {
        let tx = Tx::begin(&self.pool, None).await?;
        let row = tx
            .query_opt(
                "SELECT family_id, user_id, tenant_id, expires_at, used_at, revoked_at
                 FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
                &[&token_hash],
            )
            .await
            .map_err(db_err("find refresh token"))?;
        let Some(row) = row else {
            return Ok(RefreshUse::Invalid);
        };
        let family_id: Uuid = row.get(0);
        let expires_at: DateTime<Utc> = row.get(3);
        let consumed = row.get::<_, Option<DateTime<Utc>>>(4).is_some()
            || row.get::<_, Option<DateTime<Utc>>>(5).is_some();
        let outcome = if consumed {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
                &[&family_id, &at],
            )
            .await
            .map_err(db_err("revoke refresh family"))?;
            RefreshUse::Reused
        } else if expires_at <= at {
            RefreshUse::Invalid
        } else {
            tx.execute(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1",
                &[&token_hash, &at],
            )
            .await
            .map_err(db_err("consume refresh token"))?;
            RefreshUse::Rotated {
                family_id,
                user_id: row.get::<_, Uuid>(1).into(),
                tenant_id: row.get::<_, Uuid>(2).into(),
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn revoke_refresh_family(&self, token_hash: &[u8]) -> Result<()> {
        self.platform(
            "revoke refresh family",
            "UPDATE refresh_tokens SET revoked_at = $2
             WHERE revoked_at IS NULL
               AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
            &[&token_hash, &now()],
        )
        .await?;
        Ok(())
    }

    async fn tenant(&self, cx: TenantCtx) -> Result<Tenant> {
        let rows = self
            .scoped(
                cx,
                "get tenant",
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1"),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows.first()
            .map(rows::tenant)
            .transpose()?
            .ok_or(Error::NotFound("tenant"))
    }

    async fn rename_tenant(&self, cx: TenantCtx, name: &str) -> Result<Tenant> {
        let rows = self
            .scoped(
                cx,
                "rename tenant",
                &format!("UPDATE tenants SET name = $2 WHERE id = $1 RETURNING {TENANT_COLS}"),
                &[&cx.tenant_id.0, &name],
            )
            .await?;
        rows.first()
            .map(rows::tenant)
            .transpose()?
            .ok_or(Error::NotFound("tenant"))
    }

    async fn members(&self, cx: TenantCtx) -> Result<Vec<Member>> {
        let rows = self
            .scoped(
                cx,
                "list members",
                &format!("{MEMBER_SELECT} WHERE m.tenant_id = $1 ORDER BY m.created_at, u.id"),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows::all(rows, rows::member)
    }

    async fn add_member(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let exists = tx
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user.0])
            .await
            .map_err(db_err("find user"))?;
        if exists.is_none() {
            return Err(Error::NotFound("user"));
        }
        tx.execute(
            "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)",
            &[&cx.tenant_id.0, &user.0, &role.as_str(), &now()],
        )
        .await
        .map_err(|e| {
            if unique_violation(&e) {
                Error::conflict("already_member", "the user is already a member of this tenant")
            } else {
                db_err("add member")(e)
            }
        })?;
        let row = tx
            .query_opt(
                &format!("{MEMBER_SELECT} WHERE m.tenant_id = $1 AND m.user_id = $2"),
                &[&cx.tenant_id.0, &user.0],
            )
            .await
            .map_err(db_err("read member"))?
            .ok_or(Error::NotFound("member"))?;
        let m = rows::member(&row)?;
        tx.commit().await?;
        Ok(m)
    }

    async fn set_member_role(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let (current, owners) = member_for_update(&tx, user).await?;
        if current.role == Role::Owner && role != Role::Owner && owners <= 1 {
            return Err(last_owner());
        }
        tx.execute(
            "UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2",
            &[&cx.tenant_id.0, &user.0, &role.as_str()],
        )
        .await
        .map_err(db_err("set member role"))?;
        tx.commit().await?;
        Ok(Member { role, ..current })
    }

    async fn remove_member(&self, cx: TenantCtx, user: UserId) -> Result<()> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let (current, owners) = member_for_update(&tx, user).await?;
        if current.role == Role::Owner && owners <= 1 {
            return Err(last_owner());
        }
        tx.execute(
            "DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2",
            &[&cx.tenant_id.0, &user.0],
        )
        .await
        .map_err(db_err("remove member"))?;
        tx.commit().await
    }

    async fn create_api_key(&self, cx: TenantCtx, k: NewApiKey) -> Result<ApiKey> {
        let key = ApiKey {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            role: k.role,
            created_by: k.created_by,
            created_at: now(),
            revoked_at: None,
        };
        self.scoped(
            cx,
            "create api key",
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&key.id.0, &cx.tenant_id.0, &key.name, &key.prefix, &k.key_hash, &key.role.as_str(), &key.created_by.0, &key.created_at],
        )
        .await?;
        Ok(key)
    }

    async fn api_keys(&self, cx: TenantCtx) -> Result<Vec<ApiKey>> {
        let rows = self
            .scoped(
                cx,
                "list api keys",
                &format!(
                    "SELECT {API_KEY_COLS} FROM api_keys WHERE tenant_id = $1 ORDER BY id DESC"
                ),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows::all(rows, rows::api_key)
    }

    async fn revoke_api_key(&self, cx: TenantCtx, id: ApiKeyId) -> Result<()> {
        let rows = self
            .scoped(
                cx,
                "revoke api key",
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $3) WHERE tenant_id = $1 AND id = $2 RETURNING id",
                &[&cx.tenant_id.0, &id.0, &now()],
            )
            .await?;
        if rows.is_empty() {
            Err(Error::NotFound("api key"))
        } else {
            Ok(())
        }
    }

    async fn create_project(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        created_by: Option<UserId>,
    ) -> Result<Project> {
        let t = now();
        let p = Project {
            id: ProjectId::new(),
            name: name.to_owned(),
            description: description.map(str::to_owned),
            created_by,
            created_at: t,
            updated_at: t,
        };
        self.scoped(
            cx,
            "create project",
            "INSERT INTO projects (id, tenant_id, name, description, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
            &[&p.id.0, &cx.tenant_id.0, &p.name, &p.description, &p.created_by.map(|u| u.0), &t],
        )
        .await?;
        Ok(p)
    }

    async fn project(&self, cx: TenantCtx, id: ProjectId) -> Result<Project> {
        let rows = self
            .scoped(
                cx,
                "get project",
                &format!("SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = $1 AND id = $2"),
                &[&cx.tenant_id.0, &id.0],
            )
            .await?;
        rows.first()
            .map(rows::project)
            .transpose()?
            .ok_or(Error::NotFound("project"))
    }

    async fn projects(&self, cx: TenantCtx) -> Result<Vec<Project>> {
        let rows = self
            .scoped(
                cx,
                "list projects",
                &format!(
                    "SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = $1 ORDER BY id DESC"
                ),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows::all(rows, rows::project)
    }

    async fn update_project(
        &self,
        cx: TenantCtx,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<Project> {
        let set_desc = patch.description.is_some();
        let rows = self
            .scoped(
                cx,
                "update project",
                &format!(
                    "UPDATE projects SET name = coalesce($3, name),
                         description = CASE WHEN $4 THEN $5 ELSE description END,
                         updated_at = $6
                     WHERE tenant_id = $1 AND id = $2 RETURNING {PROJECT_COLS}"
                ),
                &[
                    &cx.tenant_id.0,
                    &id.0,
                    &patch.name,
                    &set_desc,
                    &patch.description.flatten(),
                    &now(),
                ],
            )
            .await?;
        rows.first()
            .map(rows::project)
            .transpose()?
            .ok_or(Error::NotFound("project"))
    }

    async fn delete_project(&self, cx: TenantCtx, id: ProjectId) -> Result<()> {
        let rows = self
            .scoped(
                cx,
                "delete project",
                "DELETE FROM projects WHERE tenant_id = $1 AND id = $2 RETURNING id",
                &[&cx.tenant_id.0, &id.0],
            )
            .await?;
        if rows.is_empty() {
            Err(Error::NotFound("project"))
        } else {
            Ok(())
        }
    }

    async fn create_task(&self, cx: TenantCtx, t: NewTask) -> Result<TaskCreated> {
        let at = now();
        let task = Task {
            id: t.id,
            kind: t.kind,
            status: TaskStatus::Queued,
            priority: t.priority,
            project_id: t.project_id,
            trace_id: t.trace_id,
            input: t.input,
            result: None,
            error: None,
            idempotency_key: t.idempotency_key,
            created_by: t.created_by,
            created_at: at,
            updated_at: at,
        };
        // ON CONFLICT DO NOTHING keeps the first task under concurrent retries; the
        // existing one is then read back in the same transaction.
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let inserted = tx
            .query_opt(
                "INSERT INTO tasks (id, tenant_id, project_id, kind, status, priority, trace_id, input,
                                    idempotency_key, created_by, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, $9, $10, $10)
                 ON CONFLICT (tenant_id, idempotency_key) DO NOTHING
                 RETURNING id",
                &[
                    &task.id.0,
                    &cx.tenant_id.0,
                    &task.project_id.map(|p| p.0),
                    &task.kind,
                    &(task.priority.get() as i16),
                    &task.trace_id,
                    &task.input,
                    &task.idempotency_key,
                    &task.created_by.map(|u| u.0),
                    &at,
                ],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    Error::invalid("project_id", "no such project in this tenant")
                } else {
                    db_err("insert task")(e)
                }
            })?;
        let created = if inserted.is_some() {
            let event = insert_event(
                &tx,
                cx.tenant_id,
                &NewTaskEvent {
                    task_id: task.id,
                    kind: TaskEventKind::Queued,
                    data: serde_json::json!({"priority": task.priority}),
                },
            )
            .await?;
            TaskCreated::New(task, event)
        } else {
            let row = tx
                .query_opt(
                    &format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND idempotency_key = $2"),
                    &[&cx.tenant_id.0, &task.idempotency_key],
                )
                .await
                .map_err(db_err("read task by idempotency key"))?
                .ok_or_else(|| Error::internal("idempotent task", "conflicting task not visible"))?;
            TaskCreated::Existing(rows::task(&row)?)
        };
        tx.commit().await?;
        Ok(created)
    }

    async fn task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        let rows = self
            .scoped(
                cx,
                "get task",
                &format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND id = $2"),
                &[&cx.tenant_id.0, &id.0],
            )
            .await?;
        rows.first()
            .map(rows::task)
            .transpose()?
            .ok_or(Error::NotFound("task"))
    }

    async fn tasks(&self, cx: TenantCtx, f: &TaskFilter) -> Result<Vec<Task>> {
        // NULL parameters disable their filter, so one prepared statement serves every query.
        let rows = self
            .scoped(
                cx,
                "list tasks",
                &format!(
                    "SELECT {TASK_COLS} FROM tasks
                     WHERE tenant_id = $1
                       AND ($2::text IS NULL OR status = $2)
                       AND ($3::text IS NULL OR kind = $3)
                       AND ($4::uuid IS NULL OR project_id = $4)
                       AND ($5::uuid IS NULL OR id < $5)
                     ORDER BY id DESC LIMIT $6"
                ),
                &[
                    &cx.tenant_id.0,
                    &f.status.map(|s| s.as_str()),
                    &f.kind,
                    &f.project_id.map(|p| p.0),
                    &f.before.map(|b| b.0),
                    &i64::from(f.limit),
                ],
            )
            .await?;
        rows::all(rows, rows::task)
    }

    async fn cancel_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
                ),
                &[&cx.tenant_id.0, &id.0],
            )
            .await
            .map_err(db_err("get task"))?
            .ok_or(Error::NotFound("task"))?;
        let task = rows::task(&row)?;
        if task.status.is_terminal() {
            return Err(Error::conflict(
                "task_finished",
                format!("the task has already finished ({})", task.status),
            ));
        }
        let at = now();
        tx.execute("UPDATE tasks SET status = 'cancelled', updated_at = $3 WHERE tenant_id = $1 AND id = $2", &[&cx.tenant_id.0, &id.0, &at])
            .await
            .map_err(db_err("cancel task"))?;
        tx.commit().await?;
        Ok(Task {
            status: TaskStatus::Cancelled,
            updated_at: at,
            ..task
        })
    }

    async fn start_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        event_data: Value,
    ) -> Result<Option<(Task, TaskEvent)>> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE tasks SET status = 'running', updated_at = $3
                     WHERE tenant_id = $1 AND id = $2 AND status IN ('queued', 'retrying', 'running')
                     RETURNING {TASK_COLS}"
                ),
                &[&cx.tenant_id.0, &id.0, &now()],
            )
            .await
            .map_err(db_err("start task"))?;
        let Some(row) = row else { return Ok(None) };
        let task = rows::task(&row)?;
        let event = insert_event(
            &tx,
            cx.tenant_id,
            &NewTaskEvent {
                task_id: id,
                kind: TaskEventKind::Started,
                data: event_data,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some((task, event)))
    }

    async fn finish_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        o: TaskOutcome,
    ) -> Result<Option<TaskEvent>> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let changed = tx
            .query_opt(
                "UPDATE tasks SET status = $3, result = coalesce($4, result), error = $5, updated_at = $6
                 WHERE tenant_id = $1 AND id = $2 AND status NOT IN ('succeeded', 'failed', 'cancelled')
                 RETURNING id",
                &[&cx.tenant_id.0, &id.0, &o.status.as_str(), &o.result, &o.error, &now()],
            )
            .await
            .map_err(db_err("finish task"))?;
        if changed.is_none() {
            return Ok(None);
        }
        let e = NewTaskEvent {
            task_id: id,
            kind: o.status.event_kind(),
            data: o.event_data,
        };
        let event = insert_event(&tx, cx.tenant_id, &e).await?;
        tx.commit().await?;
        Ok(Some(event))
    }

    async fn reopen_task(&self, cx: TenantCtx, id: TaskId) -> Result<bool> {
        let rows = self
            .scoped(
                cx,
                "reopen task",
                "UPDATE tasks SET status = 'queued', error = NULL, updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND status = 'failed' RETURNING id",
                &[&cx.tenant_id.0, &id.0, &now()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn last_task_event_id(&self, cx: TenantCtx) -> Result<i64> {
        let rows = self
            .scoped(
                cx,
                "last task event",
                "SELECT coalesce(max(id), 0)::bigint FROM task_events WHERE tenant_id = $1",
                &[&cx.tenant_id.0],
            )
            .await?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    async fn append_task_event(&self, cx: TenantCtx, e: NewTaskEvent) -> Result<TaskEvent> {
        let tx = Tx::begin(&self.pool, Some(cx)).await?;
        let ev = insert_event(&tx, cx.tenant_id, &e).await?;
        tx.commit().await?;
        Ok(ev)
    }

    async fn task_events(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>> {
        let rows = self
            .scoped(
                cx,
                "read task events",
                &format!(
                    "SELECT {EVENT_COLS} FROM task_events
                     WHERE tenant_id = $1 AND ($2::uuid IS NULL OR task_id = $2) AND id > $3
                     ORDER BY id LIMIT $4"
                ),
                &[
                    &cx.tenant_id.0,
                    &task.map(|t| t.0),
                    &after,
                    &i64::from(limit),
                ],
            )
            .await?;
        rows::all(rows, rows::event)
    }

    async fn unfinished_tasks(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Task)>> {
        let rows = self
            .platform(
                "unfinished tasks",
                &format!(
                    "SELECT {TASK_COLS}, tenant_id FROM tasks
                     WHERE status IN ('queued', 'running', 'retrying') AND updated_at < $1
                     ORDER BY updated_at LIMIT $2"
                ),
                &[&before, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.get::<_, Uuid>(13).into(), rows::task(r)?)))
            .collect()
    }

    async fn create_schedule(&self, cx: TenantCtx, s: Schedule) -> Result<Schedule> {
        self.scoped(
            cx,
            "create schedule",
            "INSERT INTO schedules (id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            &[
                &s.id,
                &cx.tenant_id.0,
                &s.name,
                &s.cron,
                &s.timezone,
                &s.kind,
                &s.input,
                &(s.priority.get() as i16),
                &s.next_run_at,
                &s.created_by.map(|u| u.0),
                &s.created_at,
            ],
        )
        .await?;
        Ok(Schedule {
            tenant_id: cx.tenant_id,
            ..s
        })
    }

    async fn schedules(&self, cx: TenantCtx) -> Result<Vec<Schedule>> {
        let rows = self
            .scoped(
                cx,
                "list schedules",
                &format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = $1 ORDER BY id"),
                &[&cx.tenant_id.0],
            )
            .await?;
        rows::all(rows, rows::schedule)
    }

    async fn delete_schedule(&self, cx: TenantCtx, id: Uuid) -> Result<()> {
        let rows = self
            .scoped(
                cx,
                "delete schedule",
                "DELETE FROM schedules WHERE tenant_id = $1 AND id = $2 RETURNING id",
                &[&cx.tenant_id.0, &id],
            )
            .await?;
        if rows.is_empty() {
            Err(Error::NotFound("schedule"))
        } else {
            Ok(())
        }
    }

    async fn due_schedules(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        let rows = self
            .platform(
                "due schedules",
                &format!("SELECT {SCHEDULE_COLS} FROM schedules WHERE next_run_at <= $1 ORDER BY next_run_at LIMIT $2"),
                &[&at, &i64::from(limit)],
            )
            .await?;
        rows::all(rows, rows::schedule)
    }

    async fn advance_schedule(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        let rows = self
            .platform(
                "advance schedule",
                "UPDATE schedules SET next_run_at = $3 WHERE id = $1 AND next_run_at = $2 RETURNING id",
                &[&id, &from, &to],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn put_object(
        &self,
        cx: TenantCtx,
        object: &morningai_core::objects::StoredObject,
    ) -> Result<()> {
        self.put_object_impl(cx, object, true).await.map(drop)
    }

    async fn insert_object(
        &self,
        cx: TenantCtx,
        object: &morningai_core::objects::StoredObject,
    ) -> Result<bool> {
        self.put_object_impl(cx, object, false).await
    }

    async fn get_object(
        &self,
        cx: TenantCtx,
        kind: &str,
        id: Uuid,
    ) -> Result<Option<morningai_core::objects::StoredObject>> {
        self.get_object_impl(cx, kind, id).await
    }

    async fn list_objects(
        &self,
        cx: TenantCtx,
        kind: &str,
        parent: Option<Uuid>,
        status: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<morningai_core::objects::StoredObject>> {
        self.list_objects_impl(cx, kind, parent, status, limit, offset)
            .await
    }

    async fn objects_everywhere(
        &self,
        kind: &str,
        status: &str,
        limit: u32,
    ) -> Result<Vec<(TenantId, morningai_core::objects::StoredObject)>> {
        self.objects_everywhere_impl(kind, status, limit).await
    }

    async fn delete_object(&self, cx: TenantCtx, kind: &str, id: Uuid) -> Result<bool> {
        self.delete_object_impl(cx, kind, id).await
    }

    async fn audit(&self, cx: TenantCtx, e: NewAuditEntry) -> Result<()> {
        let actor =
            serde_json::to_value(&e.actor).map_err(|err| Error::internal("encode actor", err))?;
        self.scoped(
            cx,
            "append audit entry",
            "INSERT INTO audit_log (id, tenant_id, actor, action, resource_type, resource_id, ip, details, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[&Uuid::now_v7(), &cx.tenant_id.0, &actor, &e.action, &e.resource_type, &e.resource_id, &e.ip, &e.details, &now()],
        )
        .await?;
        Ok(())
    }

    async fn audit_log(
        &self,
        cx: TenantCtx,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>> {
        let rows = self
            .scoped(
                cx,
                "read audit log",
                "SELECT id, actor, action, resource_type, resource_id, ip, details, created_at
                 FROM audit_log WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
                &[&cx.tenant_id.0, &before, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    id: r.get(0),
                    actor: serde_json::from_value(r.get(1))
                        .map_err(|e| Error::internal("bad stored actor", e))?,
                    action: r.get(2),
                    resource_type: r.get(3),
                    resource_id: r.get(4),
                    ip: r.get(5),
                    details: r.get(6),
                    created_at: r.get(7),
                })
            })
            .collect()
    }
}
