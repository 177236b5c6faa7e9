//! Users, tenants, memberships, credentials and projects on PostgreSQL.

use crate::rows::{self, API_KEY_COLS, MEMBER_SELECT, PROJECT_COLS, TENANT_COLS, USER_COLS};
use crate::store::{PgStore, unique_violation};
use crate::tx::{Tx, db_err};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use morningai_core::entities::*;
use morningai_core::{
    AccountStore, ApiKeyId, Email, Error, ProjectId, Result, Role, TenantCtx, TenantId, UserId, now,
};
use std::str::FromStr;
use uuid::Uuid;

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

fn last_owner() -> Error {
    Error::conflict("last_owner", "a tenant must keep at least one owner")
}

#[async_trait]
impl AccountStore for PgStore {
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

    async fn tenants_overview(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<TenantOverview>> {
        let rows = self
            .platform(
                "tenants overview",
                "SELECT t.id, t.slug, t.name, t.created_at,
                   (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id),
                   (SELECT count(*) FROM tasks k WHERE k.tenant_id = t.id),
                   (SELECT count(*) FROM tasks k WHERE k.tenant_id = t.id
                      AND k.status IN ('queued', 'running', 'retrying'))
                 FROM tenants t WHERE $1::text IS NULL OR t.slug > $1 COLLATE \"C\"
                 ORDER BY t.slug COLLATE \"C\" LIMIT $2",
                &[&after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TenantOverview {
                    tenant: rows::tenant_at(r, 0)?,
                    members: r.get::<_, i64>(4) as u64,
                    tasks: r.get::<_, i64>(5) as u64,
                    active_tasks: r.get::<_, i64>(6) as u64,
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
}
