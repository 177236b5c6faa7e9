//! Sessions: sign-up (a user and the tenant they own), login into one of the user's
//! tenants, refresh-token rotation (reuse revokes the whole family), logout, switching
//! tenants, and who the caller is.

use crate::Application;
use crate::auth::{
    ACCESS_TTL_SECS, Principal, REFRESH_TTL_DAYS, check_password_policy, hash_password,
    random_secret, sha256, verify_password,
};
use morningai_core::entities::{
    Membership, NewRefreshToken, NewTenant, NewUser, RefreshUse, Tenant, User,
};
use morningai_core::{Email, Error, Result, Role, Slug, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    pub email: Email,
    pub password: String,
    pub name: Option<String>,
    pub tenant_name: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: Email,
    pub password: String,
    pub tenant_id: Option<TenantId>,
}

/// Tokens for a session in one tenant.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Session {
    pub user: User,
    pub tenant: Tenant,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    /// The tenant of the current credential and the caller's role there.
    pub current_tenant_id: TenantId,
    pub current_role: Role,
}

fn slug_suffix() -> String {
    Uuid::new_v4().simple().to_string()[..6].to_owned()
}

/// Runs argon2 off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("password hashing task", e))
}

impl Application {
    /// New tokens for `user` in `tenant`; `family` continues a rotated refresh token's.
    async fn start_session(
        &self,
        user: User,
        tenant: Tenant,
        family: Option<Uuid>,
    ) -> Result<Session> {
        let refresh = random_secret("mrt_");
        self.store
            .insert_refresh_token(NewRefreshToken {
                token_hash: sha256(refresh.as_bytes()),
                family_id: family.unwrap_or_else(Uuid::new_v4),
                user_id: user.id,
                tenant_id: tenant.id,
                expires_at: chrono::Utc::now() + chrono::Duration::days(REFRESH_TTL_DAYS),
            })
            .await?;
        let access = self.auth.tokens.issue(user.id, tenant.id)?;
        Ok(Session {
            user,
            tenant,
            access_token: access,
            refresh_token: refresh,
            token_type: "Bearer",
            expires_in: ACCESS_TTL_SECS,
        })
    }

    /// The user's tenant `tenant`, if they belong to it.
    async fn tenant_of(&self, user: UserId, tenant: TenantId) -> Result<Option<Tenant>> {
        Ok(self
            .store
            .memberships_of(user)
            .await?
            .into_iter()
            .find(|m| m.tenant.id == tenant)
            .map(|m| m.tenant))
    }

    async fn user(&self, id: UserId) -> Result<User> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(|| Error::unauthorized("the user no longer exists"))
    }

    /// Creates a user and a tenant the user owns.
    pub async fn signup(&self, req: SignupRequest) -> Result<Session> {
        if !self.config.signup_enabled {
            return Err(Error::Forbidden {
                code: "signup_disabled",
                message: "sign-up is disabled on this server".into(),
            });
        }
        check_password_policy(&req.password)?;
        let name = req
            .name
            .as_deref()
            .map(|n| crate::clean_name("name", n))
            .transpose()?;
        let tenant_name = match req.tenant_name.as_deref() {
            Some(t) => crate::clean_name("tenant_name", t)?,
            None => format!(
                "{}'s workspace",
                name.as_deref().unwrap_or(req.email.as_str())
            ),
        };
        let password = req.password;
        let hash = blocking(move || hash_password(&password)).await??;
        let user = NewUser {
            email: req.email,
            name,
            password_hash: hash,
            is_platform_admin: false,
        };
        let tenant = NewTenant {
            slug: Slug::from_name(&tenant_name, &slug_suffix()),
            name: tenant_name,
        };
        let (user, tenant) = self.store.create_user_with_tenant(user, tenant).await?;
        self.start_session(user, tenant, None).await
    }

    /// Logs in with email and password, into `tenant_id` or the user's first tenant. An
    /// unknown email costs the same time as a wrong password.
    pub async fn login(&self, req: LoginRequest) -> Result<Session> {
        let creds = self.store.user_credentials(&req.email).await?;
        let stored = creds.as_ref().map(|c| c.password_hash.clone());
        let password = req.password;
        let ok = blocking(move || verify_password(stored.as_deref(), &password)).await?;
        let Some(user) = creds.filter(|_| ok).map(|c| c.user) else {
            return Err(Error::unauthorized("wrong email or password"));
        };
        let memberships = self.store.memberships_of(user.id).await?;
        let tenant = match req.tenant_id {
            Some(t) => memberships
                .into_iter()
                .find(|m| m.tenant.id == t)
                .map(|m| m.tenant)
                .ok_or(Error::NotFound("tenant"))?,
            None => memberships
                .into_iter()
                .next()
                .map(|m| m.tenant)
                .ok_or_else(|| Error::Forbidden {
                    code: "no_tenant",
                    message: "you are not a member of any tenant".into(),
                })?,
        };
        self.start_session(user, tenant, None).await
    }

    /// Rotates a refresh token. Presenting an already-rotated token revokes its family.
    pub async fn refresh_session(&self, token: &str) -> Result<Session> {
        match self
            .store
            .use_refresh_token(&sha256(token.as_bytes()), chrono::Utc::now())
            .await?
        {
            RefreshUse::Rotated {
                family_id,
                user_id,
                tenant_id,
            } => {
                let user = self.user(user_id).await?;
                let tenant = self.tenant_of(user_id, tenant_id).await?.ok_or_else(|| {
                    Error::unauthorized("you are no longer a member of this tenant")
                })?;
                self.start_session(user, tenant, Some(family_id)).await
            }
            RefreshUse::Reused => {
                tracing::warn!("refresh token reuse detected; the token family was revoked");
                Err(Error::Unauthorized {
                    code: "refresh_token_reused",
                    message: "this refresh token was already used; the session has been revoked"
                        .into(),
                })
            }
            RefreshUse::Invalid => Err(Error::unauthorized(
                "the refresh token is invalid or expired",
            )),
        }
    }

    /// Ends the session of a refresh token (its whole family).
    pub async fn logout(&self, token: &str) -> Result<()> {
        self.store
            .revoke_refresh_family(&sha256(token.as_bytes()))
            .await
    }

    /// New tokens for another tenant the caller belongs to.
    pub async fn switch_tenant(&self, who: &Principal, tenant: TenantId) -> Result<Session> {
        if who.api_key.is_some() {
            return Err(Error::forbidden(
                "an API key belongs to one tenant and cannot switch",
            ));
        }
        let user = self.user(who.user_id).await?;
        let tenant = self
            .tenant_of(who.user_id, tenant)
            .await?
            .ok_or(Error::NotFound("tenant"))?;
        self.start_session(user, tenant, None).await
    }

    /// The caller and all their memberships.
    pub async fn me(&self, who: &Principal) -> Result<Me> {
        Ok(Me {
            user: self.user(who.user_id).await?,
            memberships: self.store.memberships_of(who.user_id).await?,
            current_tenant_id: who.tenant_id,
            current_role: who.role,
        })
    }
}
