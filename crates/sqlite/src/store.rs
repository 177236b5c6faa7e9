use crate::convert::{get, get_opt, is_unique_violation, json, json_opt, json_text, micros, time};
use crate::db::{Db, Fail, Res};
use crate::queue::insert_job;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::entities::*;
use morningai_core::events::{NewTaskEvent, TaskEvent, TaskEventKind};
use morningai_core::queue::NewJob;
use morningai_core::schedules::Schedule;
use morningai_core::store::PoolStats;
use morningai_core::{
    ApiKeyId, Email, Error, Priority, ProjectId, Result, Role, Store, TaskId, TenantCtx, TenantId,
    UserId, now,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// SQLite implementation of [`Store`]. With the embedded queue enabled (the default),
/// creating a task also enqueues its job in the same transaction.
#[derive(Clone)]
pub struct SqliteStore {
    pub(crate) db: Db,
    jobs_in_db: bool,
    pub(crate) vectors: std::sync::Arc<crate::memory::VectorCache>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub async fn open(path: impl Into<PathBuf>) -> Result<Self> {
        Ok(Self {
            db: Db::open(path.into()).await?,
            jobs_in_db: true,
            vectors: Default::default(),
        })
    }

    /// Whether `create_task` also enqueues the task's job in the embedded queue (turn off
    /// when another queue, e.g. Redis, carries the work).
    pub fn with_embedded_queue(mut self, on: bool) -> Self {
        self.jobs_in_db = on;
        self
    }

    pub fn path(&self) -> &Path {
        self.db.path()
    }

    async fn read<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        self.db.read(ctx, f).await
    }

    async fn write<T: Send + 'static>(
        &self,
        ctx: &'static str,
        f: impl FnOnce(&Connection) -> Res<T> + Send + 'static,
    ) -> Result<T> {
        self.db.write(ctx, f).await
    }
}

const USER_COLS: &str = "id, email, name, is_platform_admin, created_at";

fn user_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: get(r, 0)?,
        email: get(r, 1)?,
        name: r.get(2)?,
        is_platform_admin: r.get(3)?,
        created_at: time(r.get(4)?),
    })
}

const TENANT_COLS: &str = "id, slug, name, created_at";

fn tenant_row_at(r: &rusqlite::Row<'_>, o: usize) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: get(r, o)?,
        slug: get(r, o + 1)?,
        name: r.get(o + 2)?,
        created_at: time(r.get(o + 3)?),
    })
}

fn tenant_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Tenant> {
    tenant_row_at(r, 0)
}

const MEMBER_SELECT: &str = "SELECT u.id, u.email, u.name, m.role, m.created_at
    FROM memberships m JOIN users u ON u.id = m.user_id";

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        user_id: get(r, 0)?,
        email: get(r, 1)?,
        name: r.get(2)?,
        role: get(r, 3)?,
        joined_at: time(r.get(4)?),
    })
}

const API_KEY_COLS: &str = "id, name, prefix, role, created_by, created_at, revoked_at";

fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: get(r, 0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        role: get(r, 3)?,
        created_by: get(r, 4)?,
        created_at: time(r.get(5)?),
        revoked_at: r.get::<_, Option<i64>>(6)?.map(time),
    })
}

const PROJECT_COLS: &str = "id, name, description, created_by, created_at, updated_at";

fn project_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: get(r, 0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        created_by: get_opt(r, 3)?,
        created_at: time(r.get(4)?),
        updated_at: time(r.get(5)?),
    })
}

const TASK_COLS: &str = "id, kind, status, priority, project_id, trace_id, input, result, error,
    idempotency_key, created_by, created_at, updated_at";

fn task_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Task> {
    Ok(Task {
        id: get(r, 0)?,
        kind: r.get(1)?,
        status: get(r, 2)?,
        priority: Priority::new(r.get(3)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Integer, e.into())
        })?,
        project_id: get_opt(r, 4)?,
        trace_id: r.get(5)?,
        input: json(r, 6)?,
        result: json_opt(r, 7)?,
        error: r.get(8)?,
        idempotency_key: r.get(9)?,
        created_by: get_opt(r, 10)?,
        created_at: time(r.get(11)?),
        updated_at: time(r.get(12)?),
    })
}

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    let actor = json(r, 1)?;
    Ok(AuditEntry {
        id: get(r, 0)?,
        actor: serde_json::from_value(actor).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, e.into())
        })?,
        action: r.get(2)?,
        resource_type: r.get(3)?,
        resource_id: r.get(4)?,
        ip: r.get(5)?,
        details: json(r, 6)?,
        created_at: time(r.get(7)?),
    })
}

fn event_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TaskEvent> {
    Ok(TaskEvent {
        id: r.get(0)?,
        tenant_id: get(r, 1)?,
        task_id: get(r, 2)?,
        kind: get(r, 3)?,
        data: json(r, 4)?,
        at: time(r.get(5)?),
    })
}

pub(crate) fn insert_event(tx: &Connection, tenant: TenantId, e: &NewTaskEvent) -> Res<TaskEvent> {
    let at = now();
    let mut st = tx.prepare_cached(
        "INSERT INTO task_events (tenant_id, task_id, kind, data, at) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
    )?;
    let id = st.query_row(
        params![
            tenant.to_string(),
            e.task_id.to_string(),
            e.kind.as_str(),
            json_text(&e.data),
            micros(at)
        ],
        |r| r.get(0),
    )?;
    Ok(TaskEvent {
        id,
        tenant_id: tenant,
        task_id: e.task_id,
        kind: e.kind,
        data: e.data.clone(),
        at,
    })
}

const SCHEDULE_COLS: &str = "id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at";

fn schedule_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Schedule> {
    Ok(Schedule {
        id: get(r, 0)?,
        tenant_id: get(r, 1)?,
        name: r.get(2)?,
        cron: r.get(3)?,
        timezone: r.get(4)?,
        kind: r.get(5)?,
        input: json(r, 6)?,
        priority: Priority::new(r.get(7)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Integer, e.into())
        })?,
        next_run_at: time(r.get(8)?),
        created_by: get_opt(r, 9)?,
        created_at: time(r.get(10)?),
    })
}

fn insert_user(tx: &Connection, u: &NewUser) -> Res<User> {
    let user = User {
        id: UserId::new(),
        email: u.email.clone(),
        name: u.name.clone(),
        is_platform_admin: u.is_platform_admin,
        created_at: now(),
    };
    let r = tx.execute(
        "INSERT INTO users (id, email, name, password_hash, is_platform_admin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user.id.to_string(),
            user.email.as_str(),
            user.name,
            u.password_hash,
            user.is_platform_admin,
            micros(user.created_at)
        ],
    );
    match r {
        Ok(_) => Ok(user),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::conflict("email_taken", "a user with this email already exists").into())
        }
        Err(e) => Err(e.into()),
    }
}

fn insert_tenant(tx: &Connection, t: &NewTenant, owner: UserId) -> Res<Tenant> {
    let tenant = Tenant {
        id: TenantId::new(),
        slug: t.slug.clone(),
        name: t.name.clone(),
        created_at: now(),
    };
    let r = tx.execute(
        "INSERT INTO tenants (id, slug, name, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![
            tenant.id.to_string(),
            tenant.slug.as_str(),
            tenant.name,
            micros(tenant.created_at)
        ],
    );
    match r {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => {
            return Err(
                Error::conflict("slug_taken", "a tenant with this slug already exists").into(),
            );
        }
        Err(e) => return Err(e.into()),
    }
    tx.execute(
        "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES (?1, ?2, 'owner', ?3)",
        params![tenant.id.to_string(), owner.to_string(), micros(tenant.created_at)],
    )?;
    Ok(tenant)
}

fn member_in(tx: &Connection, tenant: TenantId, user: UserId) -> Res<Member> {
    tx.query_row(
        &format!("{MEMBER_SELECT} WHERE m.tenant_id = ?1 AND m.user_id = ?2"),
        params![tenant.to_string(), user.to_string()],
        member_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("member").into())
}

fn owner_count(tx: &Connection, tenant: TenantId) -> Res<i64> {
    Ok(tx.query_row(
        "SELECT count(*) FROM memberships WHERE tenant_id = ?1 AND role = 'owner'",
        [tenant.to_string()],
        |r| r.get(0),
    )?)
}

fn last_owner() -> Fail {
    Error::conflict("last_owner", "a tenant must keep at least one owner").into()
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    fn pool_stats(&self) -> PoolStats {
        let (size, busy) = self.db.stats();
        PoolStats {
            size,
            idle: size.saturating_sub(busy),
            waiting: 0,
        }
    }

    async fn create_user_with_tenant(
        &self,
        user: NewUser,
        tenant: NewTenant,
    ) -> Result<(User, Tenant)> {
        self.write("create user with tenant", move |tx| {
            let u = insert_user(tx, &user)?;
            let t = insert_tenant(tx, &tenant, u.id)?;
            Ok((u, t))
        })
        .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User> {
        self.write("create user", move |tx| insert_user(tx, &user))
            .await
    }

    async fn user_by_id(&self, id: UserId) -> Result<Option<User>> {
        self.read("user by id", move |c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS} FROM users WHERE id = ?1"),
                [id.to_string()],
                user_row,
            )
            .optional()?)
        })
        .await
    }

    async fn user_credentials(&self, email: &Email) -> Result<Option<UserCredentials>> {
        let email = email.clone();
        self.read("user credentials", move |c| {
            Ok(c.query_row(
                &format!("SELECT {USER_COLS}, password_hash FROM users WHERE email = ?1"),
                [email.as_str()],
                |r| {
                    Ok(UserCredentials {
                        user: user_row(r)?,
                        password_hash: r.get(5)?,
                    })
                },
            )
            .optional()?)
        })
        .await
    }

    async fn create_tenant(&self, tenant: NewTenant, owner: UserId) -> Result<Tenant> {
        self.write("create tenant", move |tx| {
            let exists: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1)",
                [owner.to_string()],
                |r| r.get(0),
            )?;
            if !exists {
                return Err(Error::NotFound("user").into());
            }
            insert_tenant(tx, &tenant, owner)
        })
        .await
    }

    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let slug = slug.to_owned();
        self.read("tenant by slug", move |c| {
            Ok(c.query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = ?1"),
                [slug],
                tenant_row,
            )
            .optional()?)
        })
        .await
    }

    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>> {
        self.read("memberships of user", move |c| {
            let mut st = c.prepare_cached(
                "SELECT t.id, t.slug, t.name, t.created_at, m.role, m.created_at
                 FROM memberships m JOIN tenants t ON t.id = m.tenant_id
                 WHERE m.user_id = ?1 ORDER BY m.created_at, t.id",
            )?;
            let rows = st.query_map([user.to_string()], |r| {
                Ok(Membership {
                    tenant: tenant_row_at(r, 0)?,
                    role: get(r, 4)?,
                    joined_at: time(r.get(5)?),
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn role_of(&self, tenant: TenantId, user: UserId) -> Result<Option<Role>> {
        self.read("role of user", move |c| {
            let mut st = c.prepare_cached(
                "SELECT role FROM memberships WHERE tenant_id = ?1 AND user_id = ?2",
            )?;
            Ok(st
                .query_row(params![tenant.to_string(), user.to_string()], |r| get(r, 0))
                .optional()?)
        })
        .await
    }

    async fn api_key_grant(&self, key_hash: &[u8]) -> Result<Option<ApiKeyGrant>> {
        let hash = key_hash.to_vec();
        self.read("api key lookup", move |c| {
            let mut st = c.prepare_cached(
                "SELECT k.id, k.tenant_id, k.role, k.created_by, m.role
                 FROM api_keys k
                 LEFT JOIN memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.created_by
                 WHERE k.key_hash = ?1 AND k.revoked_at IS NULL",
            )?;
            Ok(st
                .query_row([hash], |r| {
                    Ok(ApiKeyGrant {
                        key_id: get(r, 0)?,
                        tenant_id: get(r, 1)?,
                        key_role: get(r, 2)?,
                        created_by: get(r, 3)?,
                        creator_role: get_opt(r, 4)?,
                    })
                })
                .optional()?)
        })
        .await
    }

    async fn insert_refresh_token(&self, t: NewRefreshToken) -> Result<()> {
        self.write("insert refresh token", move |tx| {
            tx.execute(
                "INSERT INTO refresh_tokens (token_hash, family_id, user_id, tenant_id, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    t.token_hash,
                    t.family_id.to_string(),
                    t.user_id.to_string(),
                    t.tenant_id.to_string(),
                    micros(now()),
                    micros(t.expires_at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn use_refresh_token(&self, token_hash: &[u8], at: DateTime<Utc>) -> Result<RefreshUse> {
        let hash = token_hash.to_vec();
        self.write("use refresh token", move |tx| {
            let row = tx
                .query_row(
                    "SELECT family_id, user_id, tenant_id, expires_at, used_at, revoked_at
                     FROM refresh_tokens WHERE token_hash = ?1",
                    [&hash],
                    |r| {
                        Ok((
                            get::<Uuid>(r, 0)?,
                            get::<UserId>(r, 1)?,
                            get::<TenantId>(r, 2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, Option<i64>>(4)?,
                            r.get::<_, Option<i64>>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((family_id, user_id, tenant_id, expires_at, used_at, revoked_at)) = row else {
                return Ok(RefreshUse::Invalid);
            };
            if used_at.is_some() || revoked_at.is_some() {
                tx.execute(
                    "UPDATE refresh_tokens SET revoked_at = ?2 WHERE family_id = ?1 AND revoked_at IS NULL",
                    params![family_id.to_string(), micros(at)],
                )?;
                return Ok(RefreshUse::Reused);
            }
            if expires_at <= micros(at) {
                return Ok(RefreshUse::Invalid);
            }
            tx.execute("UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1", params![hash, micros(at)])?;
            Ok(RefreshUse::Rotated { family_id, user_id, tenant_id })
        })
        .await
    }

    async fn revoke_refresh_family(&self, token_hash: &[u8]) -> Result<()> {
        let hash = token_hash.to_vec();
        self.write("revoke refresh family", move |tx| {
            tx.execute(
                "UPDATE refresh_tokens SET revoked_at = ?2
                 WHERE revoked_at IS NULL
                   AND family_id = (SELECT family_id FROM refresh_tokens WHERE token_hash = ?1)",
                params![hash, micros(now())],
            )?;
            Ok(())
        })
        .await
    }

    async fn tenant(&self, cx: TenantCtx) -> Result<Tenant> {
        self.read("get tenant", move |c| {
            c.query_row(
                &format!("SELECT {TENANT_COLS} FROM tenants WHERE id = ?1"),
                [cx.tenant_id.to_string()],
                tenant_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("tenant").into())
        })
        .await
    }

    async fn rename_tenant(&self, cx: TenantCtx, name: &str) -> Result<Tenant> {
        let name = name.to_owned();
        self.write("rename tenant", move |tx| {
            tx.query_row(
                &format!("UPDATE tenants SET name = ?2 WHERE id = ?1 RETURNING {TENANT_COLS}"),
                params![cx.tenant_id.to_string(), name],
                tenant_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("tenant").into())
        })
        .await
    }

    async fn members(&self, cx: TenantCtx) -> Result<Vec<Member>> {
        self.read("list members", move |c| {
            let mut st = c.prepare_cached(&format!(
                "{MEMBER_SELECT} WHERE m.tenant_id = ?1 ORDER BY m.created_at, u.id"
            ))?;
            let rows = st.query_map([cx.tenant_id.to_string()], member_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn add_member(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member> {
        self.write("add member", move |tx| {
            let exists: bool =
                tx.query_row("SELECT EXISTS(SELECT 1 FROM users WHERE id = ?1)", [user.to_string()], |r| r.get(0))?;
            if !exists {
                return Err(Error::NotFound("user").into());
            }
            let r = tx.execute(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![cx.tenant_id.to_string(), user.to_string(), role.as_str(), micros(now())],
            );
            match r {
                Ok(_) => member_in(tx, cx.tenant_id, user),
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::conflict("already_member", "the user is already a member of this tenant").into())
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn set_member_role(&self, cx: TenantCtx, user: UserId, role: Role) -> Result<Member> {
        self.write("set member role", move |tx| {
            let current = member_in(tx, cx.tenant_id, user)?;
            if current.role == Role::Owner
                && role != Role::Owner
                && owner_count(tx, cx.tenant_id)? <= 1
            {
                return Err(last_owner());
            }
            tx.execute(
                "UPDATE memberships SET role = ?3 WHERE tenant_id = ?1 AND user_id = ?2",
                params![cx.tenant_id.to_string(), user.to_string(), role.as_str()],
            )?;
            Ok(Member { role, ..current })
        })
        .await
    }

    async fn remove_member(&self, cx: TenantCtx, user: UserId) -> Result<()> {
        self.write("remove member", move |tx| {
            let current = member_in(tx, cx.tenant_id, user)?;
            if current.role == Role::Owner && owner_count(tx, cx.tenant_id)? <= 1 {
                return Err(last_owner());
            }
            tx.execute(
                "DELETE FROM memberships WHERE tenant_id = ?1 AND user_id = ?2",
                params![cx.tenant_id.to_string(), user.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn create_api_key(&self, cx: TenantCtx, k: NewApiKey) -> Result<ApiKey> {
        self.write("create api key", move |tx| {
            let key = ApiKey {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                role: k.role,
                created_by: k.created_by,
                created_at: now(),
                revoked_at: None,
            };
            tx.execute(
                "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, role, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    key.id.to_string(),
                    cx.tenant_id.to_string(),
                    key.name,
                    key.prefix,
                    k.key_hash,
                    key.role.as_str(),
                    key.created_by.to_string(),
                    micros(key.created_at)
                ],
            )?;
            Ok(key)
        })
        .await
    }

    async fn api_keys(&self, cx: TenantCtx) -> Result<Vec<ApiKey>> {
        self.read("list api keys", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {API_KEY_COLS} FROM api_keys WHERE tenant_id = ?1 ORDER BY id DESC"
            ))?;
            let rows = st.query_map([cx.tenant_id.to_string()], api_key_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn revoke_api_key(&self, cx: TenantCtx, id: ApiKeyId) -> Result<()> {
        self.write("revoke api key", move |tx| {
            let n = tx.execute(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?3) WHERE tenant_id = ?1 AND id = ?2",
                params![cx.tenant_id.to_string(), id.to_string(), micros(now())],
            )?;
            if n == 0 {
                return Err(Error::NotFound("api key").into());
            }
            Ok(())
        })
        .await
    }

    async fn create_project(
        &self,
        cx: TenantCtx,
        name: &str,
        description: Option<&str>,
        created_by: Option<UserId>,
    ) -> Result<Project> {
        let (name, description) = (name.to_owned(), description.map(str::to_owned));
        self.write("create project", move |tx| {
            let t = now();
            let p = Project { id: ProjectId::new(), name, description, created_by, created_at: t, updated_at: t };
            tx.execute(
                "INSERT INTO projects (id, tenant_id, name, description, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![
                    p.id.to_string(),
                    cx.tenant_id.to_string(),
                    p.name,
                    p.description,
                    p.created_by.map(|u| u.to_string()),
                    micros(t)
                ],
            )?;
            Ok(p)
        })
        .await
    }

    async fn project(&self, cx: TenantCtx, id: ProjectId) -> Result<Project> {
        self.read("get project", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            st.query_row(
                params![cx.tenant_id.to_string(), id.to_string()],
                project_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("project").into())
        })
        .await
    }

    async fn projects(&self, cx: TenantCtx) -> Result<Vec<Project>> {
        self.read("list projects", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {PROJECT_COLS} FROM projects WHERE tenant_id = ?1 ORDER BY id DESC"
            ))?;
            let rows = st.query_map([cx.tenant_id.to_string()], project_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn update_project(
        &self,
        cx: TenantCtx,
        id: ProjectId,
        patch: ProjectPatch,
    ) -> Result<Project> {
        self.write("update project", move |tx| {
            let set_desc = patch.description.is_some();
            tx.query_row(
                &format!(
                    "UPDATE projects SET name = coalesce(?3, name),
                         description = CASE WHEN ?4 THEN ?5 ELSE description END,
                         updated_at = ?6
                     WHERE tenant_id = ?1 AND id = ?2 RETURNING {PROJECT_COLS}"
                ),
                params![
                    cx.tenant_id.to_string(),
                    id.to_string(),
                    patch.name,
                    set_desc,
                    patch.description.flatten(),
                    micros(now())
                ],
                project_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("project").into())
        })
        .await
    }

    async fn delete_project(&self, cx: TenantCtx, id: ProjectId) -> Result<()> {
        self.db
            .write_queued("delete project", move |tx| {
                let n = tx.execute(
                    "DELETE FROM projects WHERE tenant_id = ?1 AND id = ?2",
                    params![cx.tenant_id.to_string(), id.to_string()],
                )?;
                if n == 0 {
                    return Err(Error::NotFound("project").into());
                }
                Ok(())
            })
            .await
    }

    async fn create_task(&self, cx: TenantCtx, t: NewTask) -> Result<TaskCreated> {
        let jobs_in_db = self.jobs_in_db;
        let created = self.write("create task", move |tx| {
            let tenant = cx.tenant_id.to_string();
            if let Some(key) = &t.idempotency_key {
                let mut st = tx.prepare_cached(&format!(
                    "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND idempotency_key = ?2"
                ))?;
                if let Some(existing) = st.query_row(params![tenant, key], task_row).optional()? {
                    return Ok(TaskCreated::Existing(existing));
                }
            }
            if let Some(p) = t.project_id {
                let found: bool = tx.query_row(
                    "SELECT EXISTS(SELECT 1 FROM projects WHERE tenant_id = ?1 AND id = ?2)",
                    params![tenant, p.to_string()],
                    |r| r.get(0),
                )?;
                if !found {
                    return Err(Error::invalid("project_id", "no such project in this tenant").into());
                }
            }
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
            let mut st = tx.prepare_cached(
                "INSERT INTO tasks (id, tenant_id, project_id, kind, status, priority, trace_id, input,
                                    idempotency_key, created_by, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?;
            st.execute(params![
                task.id.to_string(),
                tenant,
                task.project_id.map(|p| p.to_string()),
                task.kind,
                i64::from(task.priority),
                task.trace_id,
                json_text(&task.input),
                task.idempotency_key,
                task.created_by.map(|u| u.to_string()),
                micros(at)
            ])?;
            let event = insert_event(
                tx,
                cx.tenant_id,
                &NewTaskEvent { task_id: task.id, kind: TaskEventKind::Queued, data: serde_json::json!({"priority": task.priority}) },
            )?;
            if jobs_in_db {
                insert_job(tx, &NewJob::for_task(cx.tenant_id, &task), at)?;
            }
            Ok(TaskCreated::New(task, event))
        })
        .await?;
        if jobs_in_db && matches!(created, TaskCreated::New(..)) {
            self.db.work().notify_one();
        }
        Ok(created)
    }

    async fn task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.read("get task", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND id = ?2"
            ))?;
            st.query_row(params![cx.tenant_id.to_string(), id.to_string()], task_row)
                .optional()?
                .ok_or_else(|| Error::NotFound("task").into())
        })
        .await
    }

    async fn tasks(&self, cx: TenantCtx, f: &TaskFilter) -> Result<Vec<Task>> {
        let f = f.clone();
        self.read("list tasks", move |c| {
            let mut sql = format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1");
            let mut args: Vec<rusqlite::types::Value> = vec![cx.tenant_id.to_string().into()];
            let mut push = |clause: &str, v: rusqlite::types::Value| {
                args.push(v);
                sql.push_str(&format!(" AND {clause} ?{}", args.len()));
            };
            if let Some(s) = f.status {
                push("status =", s.as_str().to_owned().into());
            }
            if let Some(k) = f.kind {
                push("kind =", k.into());
            }
            if let Some(p) = f.project_id {
                push("project_id =", p.to_string().into());
            }
            if let Some(b) = f.before {
                push("id <", b.to_string().into());
            }
            sql.push_str(&format!(" ORDER BY id DESC LIMIT {}", f.limit));
            let mut st = c.prepare_cached(&sql)?;
            let rows = st.query_map(rusqlite::params_from_iter(args), task_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn cancel_task(&self, cx: TenantCtx, id: TaskId) -> Result<Task> {
        self.write("cancel task", move |tx| {
            let args = params![cx.tenant_id.to_string(), id.to_string()];
            let task = tx
                .query_row(&format!("SELECT {TASK_COLS} FROM tasks WHERE tenant_id = ?1 AND id = ?2"), args, task_row)
                .optional()?
                .ok_or(Error::NotFound("task"))?;
            if task.status.is_terminal() {
                return Err(Error::conflict(
                    "task_finished",
                    format!("the task has already finished ({})", task.status),
                )
                .into());
            }
            let at = now();
            tx.execute(
                "UPDATE tasks SET status = 'cancelled', updated_at = ?3 WHERE tenant_id = ?1 AND id = ?2",
                params![cx.tenant_id.to_string(), id.to_string(), micros(at)],
            )?;
            Ok(Task { status: TaskStatus::Cancelled, updated_at: at, ..task })
        })
        .await
    }

    async fn start_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        event_data: Value,
    ) -> Result<Option<(Task, TaskEvent)>> {
        self.write("start task", move |tx| {
            let task = tx
                .query_row(
                    &format!(
                        "UPDATE tasks SET status = 'running', updated_at = ?3
                         WHERE tenant_id = ?1 AND id = ?2 AND status IN ('queued', 'retrying', 'running')
                         RETURNING {TASK_COLS}"
                    ),
                    params![cx.tenant_id.to_string(), id.to_string(), micros(now())],
                    task_row,
                )
                .optional()?;
            let Some(task) = task else { return Ok(None) };
            let event = insert_event(tx, cx.tenant_id, &NewTaskEvent { task_id: id, kind: TaskEventKind::Started, data: event_data })?;
            Ok(Some((task, event)))
        })
        .await
    }

    async fn finish_task(
        &self,
        cx: TenantCtx,
        id: TaskId,
        o: TaskOutcome,
    ) -> Result<Option<TaskEvent>> {
        self.write("finish task", move |tx| {
            let n = tx.execute(
                "UPDATE tasks SET status = ?3, result = coalesce(?4, result), error = ?5, updated_at = ?6
                 WHERE tenant_id = ?1 AND id = ?2 AND status NOT IN ('succeeded', 'failed', 'cancelled')",
                params![
                    cx.tenant_id.to_string(),
                    id.to_string(),
                    o.status.as_str(),
                    o.result.as_ref().map(json_text),
                    o.error,
                    micros(now())
                ],
            )?;
            if n == 0 {
                return Ok(None);
            }
            let e = NewTaskEvent { task_id: id, kind: o.status.event_kind(), data: o.event_data };
            Ok(Some(insert_event(tx, cx.tenant_id, &e)?))
        })
        .await
    }

    async fn reopen_task(&self, cx: TenantCtx, id: TaskId) -> Result<bool> {
        self.write("reopen task", move |tx| {
            Ok(tx.execute(
                "UPDATE tasks SET status = 'queued', error = NULL, updated_at = ?3
                 WHERE tenant_id = ?1 AND id = ?2 AND status = 'failed'",
                params![cx.tenant_id.to_string(), id.to_string(), micros(now())],
            )? == 1)
        })
        .await
    }

    async fn last_task_event_id(&self, cx: TenantCtx) -> Result<i64> {
        self.read("last task event", move |c| {
            Ok(c.query_row(
                "SELECT coalesce(max(id), 0) FROM task_events WHERE tenant_id = ?1",
                [cx.tenant_id.to_string()],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn append_task_event(&self, cx: TenantCtx, e: NewTaskEvent) -> Result<TaskEvent> {
        self.write("append task event", move |tx| {
            insert_event(tx, cx.tenant_id, &e)
        })
        .await
    }

    async fn task_events(
        &self,
        cx: TenantCtx,
        task: Option<TaskId>,
        after: i64,
        limit: u32,
    ) -> Result<Vec<TaskEvent>> {
        self.read("read task events", move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, tenant_id, task_id, kind, data, at FROM task_events
                 WHERE tenant_id = ?1 AND (?2 IS NULL OR task_id = ?2) AND id > ?3
                 ORDER BY id LIMIT ?4",
            )?;
            let rows = st.query_map(
                params![
                    cx.tenant_id.to_string(),
                    task.map(|t| t.to_string()),
                    after,
                    limit
                ],
                event_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn unfinished_tasks(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(TenantId, Task)>> {
        self.read("unfinished tasks", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {TASK_COLS}, tenant_id FROM tasks
                 WHERE status IN ('queued', 'running', 'retrying') AND updated_at < ?1
                 ORDER BY updated_at LIMIT ?2"
            ))?;
            let rows = st.query_map(params![micros(before), limit], |r| {
                Ok((get(r, 13)?, task_row(r)?))
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn create_schedule(&self, cx: TenantCtx, s: Schedule) -> Result<Schedule> {
        self.write("create schedule", move |tx| {
            tx.execute(
                "INSERT INTO schedules (id, tenant_id, name, cron, timezone, kind, input, priority, next_run_at, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    s.id.to_string(),
                    cx.tenant_id.to_string(),
                    s.name,
                    s.cron,
                    s.timezone,
                    s.kind,
                    json_text(&s.input),
                    i64::from(s.priority),
                    micros(s.next_run_at),
                    s.created_by.map(|u| u.to_string()),
                    micros(s.created_at)
                ],
            )?;
            Ok(Schedule { tenant_id: cx.tenant_id, ..s })
        })
        .await
    }

    async fn schedules(&self, cx: TenantCtx) -> Result<Vec<Schedule>> {
        self.read("list schedules", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLS} FROM schedules WHERE tenant_id = ?1 ORDER BY id"
            ))?;
            let rows = st.query_map([cx.tenant_id.to_string()], schedule_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn delete_schedule(&self, cx: TenantCtx, id: Uuid) -> Result<()> {
        self.write("delete schedule", move |tx| {
            let n = tx.execute(
                "DELETE FROM schedules WHERE tenant_id = ?1 AND id = ?2",
                params![cx.tenant_id.to_string(), id.to_string()],
            )?;
            if n == 0 {
                return Err(Error::NotFound("schedule").into());
            }
            Ok(())
        })
        .await
    }

    async fn due_schedules(&self, at: DateTime<Utc>, limit: u32) -> Result<Vec<Schedule>> {
        self.read("due schedules", move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {SCHEDULE_COLS} FROM schedules WHERE next_run_at <= ?1 ORDER BY next_run_at LIMIT ?2"
            ))?;
            let rows = st.query_map(params![micros(at), limit], schedule_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    async fn advance_schedule(
        &self,
        id: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<bool> {
        self.write("advance schedule", move |tx| {
            let n = tx.execute(
                "UPDATE schedules SET next_run_at = ?3 WHERE id = ?1 AND next_run_at = ?2",
                params![id.to_string(), micros(from), micros(to)],
            )?;
            Ok(n == 1)
        })
        .await
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
        self.write("append audit entry", move |tx| {
            let actor = serde_json::to_string(&e.actor).map_err(|err| Error::internal("encode actor", err))?;
            tx.execute(
                "INSERT INTO audit_log (id, tenant_id, actor, action, resource_type, resource_id, ip, details, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    Uuid::now_v7().to_string(),
                    cx.tenant_id.to_string(),
                    actor,
                    e.action,
                    e.resource_type,
                    e.resource_id,
                    e.ip,
                    json_text(&e.details),
                    micros(now())
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_log(
        &self,
        cx: TenantCtx,
        limit: u32,
        before: Option<Uuid>,
    ) -> Result<Vec<AuditEntry>> {
        self.read("read audit log", move |c| {
            let mut st = c.prepare_cached(
                "SELECT id, actor, action, resource_type, resource_id, ip, details, created_at
                 FROM audit_log WHERE tenant_id = ?1 AND (?2 IS NULL OR id < ?2)
                 ORDER BY id DESC LIMIT ?3",
            )?;
            let rows = st.query_map(
                params![
                    cx.tenant_id.to_string(),
                    before.map(|b| b.to_string()),
                    limit
                ],
                audit_row,
            )?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }
}
