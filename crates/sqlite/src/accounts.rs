//! Users, tenants, memberships, credentials and projects on SQLite.

use crate::convert::{get, get_opt, is_unique_violation, micros, time};
use crate::db::{Fail, Res};
use crate::store::SqliteStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::entities::*;
use morningai_core::{
    AccountStore, ApiKeyId, Email, Error, ProjectId, Result, Role, TenantCtx, TenantId, UserId, now,
};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

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
impl AccountStore for SqliteStore {
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

    async fn tenants_overview(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TenantOverview>> {
        let after = after.map(str::to_owned);
        self.read("tenants overview", move |c| {
            let mut st = c.prepare_cached(
                "SELECT t.id, t.slug, t.name, t.created_at,
                   (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id),
                   (SELECT count(*) FROM tasks k WHERE k.tenant_id = t.id),
                   (SELECT count(*) FROM tasks k WHERE k.tenant_id = t.id
                      AND k.status IN ('queued', 'running', 'retrying'))
                 FROM tenants t WHERE ?1 IS NULL OR t.slug > ?1 ORDER BY t.slug LIMIT ?2",
            )?;
            let rows = st.query_map(params![after, limit], |r| {
                Ok(TenantOverview {
                    tenant: tenant_row_at(r, 0)?,
                    members: r.get(4)?,
                    tasks: r.get(5)?,
                    active_tasks: r.get(6)?,
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
}
